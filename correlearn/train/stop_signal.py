"""Stop a training run at the next step boundary on SIGTERM or Ctrl-C (SIGINT), with a checkpoint.

SIGTERM comes from preemption and ``prefect cancel``; Ctrl-C from a user at the terminal. Both set
a flag that :func:`correlearn.train.loop.fit` reads after every step; a second Ctrl-C aborts at once
(KeyboardInterrupt), as users expect.
"""

from __future__ import annotations

import signal
import threading
from typing import Any


class StopSignal:
    """Context manager that turns SIGTERM/SIGINT into the flag ``hit`` while it is active.

    Handlers are installed only in the main thread (Python allows no other) and the former
    handlers are restored on exit.

    Attributes:
        hit: a stop signal arrived.
    """

    def __init__(self) -> None:
        self.hit = False
        self._old: dict[int, Any] = {}

    def _on_signal(self, signum: int, _frame: Any) -> None:
        if signum == signal.SIGINT and self.hit:
            raise KeyboardInterrupt("second Ctrl-C: stopped without a checkpoint")
        self.hit = True
        if signum == signal.SIGINT:
            print("\nCtrl-C: stopping at the next step boundary with a checkpoint", flush=True)

    def __enter__(self) -> StopSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
