"""uvicorn's server, remembering the signal that stopped it, so `avflow serve` exits 128 + signal.

uvicorn re-raises a captured signal once the server has stopped: a Ctrl-C through asyncio's own
SIGINT handler, which only cancels the main task (when that task has already finished, the
interrupt is lost and the process exited 0, seen under load), and a SIGTERM through the default
action, which kills the process on the spot — before the exit status is set and before any
cleanup (temporary folders, the jobs folder's lock) runs. Here SIGINT and SIGTERM both stop the
server gracefully (queued jobs recorded as interrupted, the running one given time to finish),
nothing is re-raised, and ``avflow serve`` exits 128 + signal itself, every time.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

import uvicorn

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SignalledServer(uvicorn.Server):
    """A :class:`uvicorn.Server` whose ``stop_signal`` is the first signal that asked it to stop."""

    stop_signal: int | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.stop_signal is None:
            self.stop_signal = int(sig)
        super().handle_exit(sig, frame)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """SIGINT and SIGTERM stop the server gracefully; unlike uvicorn's, nothing is re-raised."""
        if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
            yield
            return
        original = {sig: signal.signal(sig, self.handle_exit) for sig in STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)
