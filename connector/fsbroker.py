"""kombu's filesystem transport (the embedded default broker), with each message written whole
before any worker can see it.

kombu creates the message file under its final name and then writes it, so a worker listing the
folder in between takes an empty file, fails to decode it, and the worker process dies
("Unrecoverable error: JSONDecodeError"), losing its in-flight work until it is restarted. It
happens under load (two cores busy, several processes sending). Here a message is written under a
name the transport's reader skips (it reads only ``<stamp>.<queue>.msg``) and renamed into place:
a rename within one folder is atomic, so a reader sees no file or the whole file."""

from __future__ import annotations

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        # The same name (and so the same order) as kombu's: milliseconds of the monotonic clock first.
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out, f"~{name}.part")  # not "<stamp>.<queue>.msg": never read
        try:
            with open(partial, "wb") as handle:
                handle.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as error:
            raise ChannelError(f"Cannot add file {final!r} to directory") from error


class Transport(filesystem.Transport):
    Channel = Channel
