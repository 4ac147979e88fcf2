"""Ctrl-C counted instead of raised, so the follow loop decides what a press means (cancel, detach)."""

from __future__ import annotations

import _thread
import signal
import threading
from typing import Any, Callable


class Sigint:
    """Counts Ctrl-C presses instead of raising KeyboardInterrupt at a random spot."""

    def __init__(self) -> None:
        self.count = 0
        self.event = threading.Event()
        self.wake: Callable[[], Any] | None = None  # called (in a helper thread) on each press: wakes a loop blocked on a queue
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> "Sigint":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def press(self) -> None:
        """What one Ctrl-C does (also callable by tests and by a host that owns SIGINT itself)."""
        self.count += 1
        self.event.set()
        if self.wake is not None:
            # not from here: the interrupted code may hold the lock wake() needs. A bare thread, not
            # threading.Thread: its start() waits on locks the interrupted code may hold too.
            _thread.start_new_thread(self.wake, ())

    def _handle(self, signum: int, frame: Any) -> None:
        self.press()

    def __exit__(self, *exc: Any) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous or signal.default_int_handler)
            self._installed = False
