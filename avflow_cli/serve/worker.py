"""One generation at a time per device: a single worker thread fed by a bounded queue.

The model lives on one device and a second concurrent forward pass would only slow both down
(and double the memory), so every generation — a job, a stream, a listening request — is a
task run by one thread in arrival order. When ``capacity`` tasks are already waiting,
:meth:`GenerationWorker.submit` raises :class:`QueueFull` at once and the API answers 429, so a
burst of clients gets a clear "busy" instead of an ever-growing wait.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

log = logging.getLogger("avflow.serve")


class QueueFull(Exception):
    """Every place in the queue is taken."""


class Ticket:
    """A submitted task: cancel it to drop it from the queue or ask a running stream to stop."""

    def __init__(self, run: Callable[["Ticket"], None], label: str, on_drop: Callable[[], None] | None) -> None:
        self.run = run
        self.label = label
        self.on_drop = on_drop  # called when the task is dropped without running (cancel, shutdown)
        self.cancelled = threading.Event()
        self.started = threading.Event()
        self.done = threading.Event()

    def cancel(self) -> None:
        self.cancelled.set()


class GenerationWorker:
    """Runs submitted tasks one at a time on a daemon thread."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._pending: deque[Ticket] = deque()
        self._cond = threading.Condition()
        self._current: Ticket | None = None
        self._stopping = False
        self.completed = 0
        self._thread = threading.Thread(target=self._loop, name="avflow-generation", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------------------------------
    def submit(self, run: Callable[[Ticket], None], *, label: str = "task",
               on_drop: Callable[[], None] | None = None, continuation: bool = False) -> Ticket:
        """Queue ``run(ticket)`` at the back; raises :class:`QueueFull` when ``capacity`` tasks already
        wait. A ``continuation`` (the next chunk of an accepted stream) is never refused for space:
        each stream holds at most one place, so the queue stays bounded by capacity + streams."""
        ticket = Ticket(run, label, on_drop)
        with self._cond:
            if self._stopping:
                raise QueueFull("the server is shutting down")
            if not continuation and len(self._pending) >= self.capacity:
                raise QueueFull(f"{len(self._pending)} requests are already waiting for the model")
            self._pending.append(ticket)
            self._cond.notify()
        return ticket

    def position(self, ticket: Ticket) -> int | None:
        """0 while running, k ≥ 1 when k-th in line, None when finished or dropped."""
        with self._cond:
            if ticket is self._current:
                return 0
            for i, other in enumerate(self._pending, start=1):
                if other is ticket:
                    return i
        return None

    def drop(self, ticket: Ticket) -> bool:
        """Remove a task that has not started; True when it was removed."""
        ticket.cancel()
        with self._cond:
            try:
                self._pending.remove(ticket)
            except ValueError:
                return False
        self._dropped(ticket)
        return True

    @property
    def waiting(self) -> int:
        with self._cond:
            return len(self._pending)

    @property
    def busy(self) -> bool:
        with self._cond:
            return self._current is not None

    def stop(self, timeout: float = 30.0) -> None:
        """Drop every waiting task and wait (up to ``timeout``) for the running one to finish."""
        with self._cond:
            self._stopping = True
            dropped = list(self._pending)
            self._pending.clear()
            current = self._current
            self._cond.notify_all()
        for ticket in dropped:
            ticket.cancel()
            self._dropped(ticket)
        if current is not None:
            current.cancel()
        self._thread.join(timeout)

    # ------------------------------------------------------------------------------------------
    @staticmethod
    def _dropped(ticket: Ticket) -> None:
        if ticket.on_drop is not None:
            try:
                ticket.on_drop()
            except Exception:  # noqa: BLE001 (a failing callback must not kill the caller)
                log.exception("dropping %s failed", ticket.label)
        ticket.done.set()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                ticket = self._pending.popleft()
                self._current = ticket
            ticket.started.set()
            try:
                ticket.run(ticket)
            except Exception:  # noqa: BLE001 (tasks report their own errors; this keeps the worker alive)
                log.exception("generation task %s failed", ticket.label)
            finally:
                with self._cond:
                    self._current = None
                    self.completed += 1
                ticket.done.set()
