"""The embedded broker writes a message whole before a worker can take it: kombu's own transport
created the file under its final name and then wrote it, and a worker reading in between died on
the empty file (JSONDecodeError, "Unrecoverable error")."""

from __future__ import annotations

import os
from queue import Empty

import pytest
from kombu import Connection

from connector import fsbroker


@pytest.fixture
def channel(tmp_path):
    folder = tmp_path / "queue"
    folder.mkdir()
    connection = Connection("filesystem://localhost/", transport=fsbroker.Transport, transport_options={
        "data_folder_in": str(folder), "data_folder_out": str(folder), "store_processed": False})
    channel = connection.channel()
    yield channel
    connection.release()


def test_a_message_being_written_is_invisible_then_whole(channel, monkeypatch):
    seen_while_writing = []
    rename = os.replace

    def replace(source, target):
        # The moment kombu's transport exposed an empty file: the reader finds nothing yet.
        with pytest.raises(Empty):
            channel._get("celery")
        seen_while_writing.append(channel._size("celery"))
        rename(source, target)

    monkeypatch.setattr(fsbroker.os, "replace", replace)
    channel._put("celery", {"body": "x" * 10_000})
    assert seen_while_writing == [0]
    assert channel._size("celery") == 1
    assert channel._get("celery") == {"body": "x" * 10_000}


def test_the_embedded_default_uses_it():
    from django.conf import settings

    if not settings.CELERY_BROKER_URL.startswith("filesystem"):
        pytest.skip("a Redis broker is configured")
    from connector.celery import app

    with app.connection_for_write() as connection:
        assert isinstance(connection.transport, fsbroker.Transport)
