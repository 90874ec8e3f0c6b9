"""Group commit for async request handlers: many requests, one transaction.

A handler ``await``s :meth:`GroupCommit.submit` with its row; rows that arrive while a write is
in flight wait for the next one, so under load each database round trip (and each broker
message) carries a whole batch, while a lone request is written at once (no timer, no added
latency when idle). The caller is answered only after its batch's ``flush`` returned, i.e. after
the transaction committed.

``flush`` runs on ONE dedicated thread per process: a single writer keeps one persistent
database connection (Django's connections are per thread) instead of one per request, and
SQLite sees no lock contention from inside the process.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")
logger = logging.getLogger(__name__)

MAX_BATCH = 500


class GroupCommit(Generic[T, R]):
    """``flush(items) -> results`` (same length, same order) runs on the writer thread."""

    def __init__(self, flush: Callable[[list[T]], Sequence[R]], *, max_batch: int = MAX_BATCH,
                 name: str = "group-commit"):
        self._flush = flush
        self._max_batch = max_batch
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=name)
        # Futures belong to one event loop; a process normally has one (uvicorn), tests may make more.
        self._queues: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self.batches = 0  # flushes done, for tests and the benchmark
        self.items = 0

    async def submit(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        with self._lock:
            state = self._queues.get(loop)
            if state is None:
                state = self._queues[loop] = _LoopState()
        future = loop.create_future()
        state.pending.append((item, future))
        if state.drainer is None:
            state.drainer = loop.create_task(self._drain(loop, state))
        # A cancelled request (client went away) does not cancel the write: its row is stored
        # anyway and the sender's retry is a duplicate, answered 200.
        return await future

    async def run(self, fn: Callable[..., R], *args) -> R:
        """Run ``fn`` on the writer thread (its database connection), outside any batch."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _drain(self, loop, state: _LoopState) -> None:
        try:
            while state.pending:
                batch = state.pending[:self._max_batch]
                del state.pending[:self._max_batch]
                items = [item for item, _ in batch]
                try:
                    results = await loop.run_in_executor(self._executor, self._flush, items)
                    if len(results) != len(items):
                        raise RuntimeError(f"flush returned {len(results)} results for {len(items)} items")
                except asyncio.CancelledError:  # the loop is shutting down: nobody gets a 2xx
                    for _, future in batch:
                        future.cancel()
                    raise
                except Exception as error:
                    logger.exception("group commit of %d item(s) failed", len(items))
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                self.batches += 1
                self.items += len(items)
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            state.drainer = None

    def in_writer(self, fn: Callable[[], R]) -> R:
        """Run ``fn`` synchronously on the writer thread (from sync code, e.g. tests)."""
        return self._executor.submit(fn).result()


class _LoopState:
    __slots__ = ("pending", "drainer", "__weakref__")

    def __init__(self):
        self.pending: list = []
        self.drainer: asyncio.Task | None = None
