"""uvicorn's server, remembering the signal that stopped it, so `avflow serve` exits 128 + signal.

uvicorn re-raises a captured Ctrl-C through asyncio's own SIGINT handler, which only cancels the
main task; when that task has already finished, the interrupt is lost and the process exited 0
(seen under load). The exit code is then set here, every time.
"""

from __future__ import annotations

from types import FrameType

import uvicorn


class SignalledServer(uvicorn.Server):
    """A :class:`uvicorn.Server` whose ``stop_signal`` is the first signal that asked it to stop."""

    stop_signal: int | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.stop_signal is None:
            self.stop_signal = int(sig)
        super().handle_exit(sig, frame)
