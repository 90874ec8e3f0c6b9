"""Reading a request body from an ASGI ``receive`` callable, for the direct lanes in front of
Django (connector/bigcommerce/ingest_asgi.py, agentapi/lane.py)."""

from __future__ import annotations


async def read_body(receive, limit: int | None) -> tuple[bytes, bool]:
    """(what was read, whether it is the whole body). Reading stops once more than ``limit`` bytes
    came (None: no limit); the caller refuses such a body or hands what was read on. Raises
    ConnectionError when the client goes away first."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionError("client went away")
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if limit is not None and size > limit:
            return b"".join(chunks), False
        if not message.get("more_body", False):
            return b"".join(chunks), True
