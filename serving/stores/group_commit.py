"""Group commit: one background thread writes everything submitted since its last transaction in
the next one, and each submitter learns (a future) when its rows are committed.

The decision log uses it: a recommend answer is sent only after its decision's future resolves,
so the log still holds every decision before its answer leaves (the durability the API
promises), while decisions made meanwhile on the event loop or other threads share one
transaction instead of paying ``BEGIN``/``COMMIT`` each. Waiting is the submitter's choice:
``Future.result()`` on a thread, ``await asyncio.wrap_future(...)`` on the event loop (which keeps
serving other requests while the write happens off the loop, in SQLite code that releases the
GIL).

The queue is bounded by the callers themselves (each waits for its own commit, so at most one
submission per request in flight is pending) and by ``max_pending_rows``: a submitter beyond it
waits for room. A transaction that fails is retried per submission, so one bad submission fails
alone. ``close`` commits what is pending and stops the thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

Row = TypeVar("Row")

#: Rows waiting for the writer beyond which a submitter waits (back-pressure).
MAX_PENDING_ROWS = 10_000


class WriterClosedError(RuntimeError):
    """The writer was closed: nothing more can be submitted."""


class GroupCommitter(Generic[Row]):
    """Commits submitted rows with ``commit(rows)`` on one background thread, in groups."""

    def __init__(
        self,
        commit: Callable[[Sequence[Row]], None],
        *,
        name: str = "group-commit",
        max_pending_rows: int = MAX_PENDING_ROWS,
    ) -> None:
        self._commit = commit
        self._name = name
        self._max_pending_rows = max_pending_rows
        self._pending: list[tuple[Sequence[Row], Future[None]]] = []
        self._pending_rows = 0
        self._changed = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    def submit(self, rows: Sequence[Row]) -> Future[None]:
        """Queue ``rows`` for the next transaction; the future resolves once they are committed
        (or carries the error that stopped them)."""
        future: Future[None] = Future()
        if not rows:
            future.set_result(None)
            return future
        with self._changed:
            while self._pending_rows >= self._max_pending_rows and not self._closed:
                self._changed.wait()
            if self._closed:
                raise WriterClosedError(f"{self._name} is closed")
            if self._thread is None:  # started on first use: after any fork of the process
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._pending.append((rows, future))
            self._pending_rows += len(rows)
            self._changed.notify_all()
        return future

    def close(self, timeout: float = 30.0) -> None:
        """Commit everything pending, then stop the thread."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                logger.error("%s did not finish its pending commits in %.0f s", self._name, timeout)

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._pending and not self._closed:
                    self._changed.wait()
                if not self._pending:
                    return
                group, self._pending, self._pending_rows = self._pending, [], 0
                self._changed.notify_all()  # room for submitters waiting on the bound
            self._write(group)

    def _write(self, group: list[tuple[Sequence[Row], Future[None]]]) -> None:
        try:
            self._commit([row for rows, _ in group for row in rows])
        except Exception as exc:
            if len(group) == 1:
                group[0][1].set_exception(exc)
                return
            logger.warning("%s: a group of %d failed (%s); committing each alone",
                           self._name, len(group), exc)
            for rows, future in group:  # the failing submission fails alone
                try:
                    self._commit(rows)
                except Exception as alone:
                    future.set_exception(alone)
                else:
                    future.set_result(None)
        else:
            for _, future in group:
                future.set_result(None)
