"""A search's tracking as the driver uses it: `TrackingSession` names the four things the driver asks of
tracking (a phase's recorder, a trial event, the end, closing), and `LocalTracking` does them in this
process: a `SearchTracker`, one `BackgroundTracker` thread and one `TrialRecorder` per phase. A search runs
`LocalTracking` inside the tracking process (`process.TrackingProcess`, the same interface), so MLflow's
work never shares the driver's interpreter; tests drive `LocalTracking` directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional, Protocol

from .background import BackgroundTracker
from .recorder import TrialRecorder

FINISH_TIMEOUT_S = 600.0  # the end waits this long for queued tracking calls, then warns and goes on
CLOSE_TIMEOUT_S = 60.0  # closing without `finish` (the search ended by an error): queued calls get this long


class TrackingSession(Protocol):
    def open_phase(self, name: str, exp_dir: Path, phase: str = "search",
                   describe: Optional[Callable] = None) -> None:
        """A recorder called `name` for the phase whose trial folders are under `exp_dir`."""

    def call(self, name: str, method: str, *args) -> None:
        """Queue `TrialRecorder.<method>(*args)` on recorder `name`; returns at once."""

    def finish(self, statuses: list[tuple[str, str]], verdict: Optional[dict], files: list, status: str,
               timeout_s: float = FINISH_TIMEOUT_S) -> dict:
        """After every queued call: each trial's final status ((key, status) pairs), the verdict, the
        parent's `files`, the parent's `status`. {"drained": whether the queue emptied in time, "down":
        whether MLflow went away during the search}."""

    def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """Stop (after `finish`, or instead of it when the search ended by an error), after every queued call
        (waiting at most `timeout_s`)."""


class LocalTracking:
    """`TrackingSession` in this process."""

    def __init__(self, tracker, space):
        self.tracker, self.space = tracker, space
        self.background = BackgroundTracker()
        self.recorders: dict[str, TrialRecorder] = {}

    def open_phase(self, name, exp_dir, phase="search", describe=None) -> None:
        self.background.submit(self._open, name, exp_dir, phase, describe)

    def _open(self, name, exp_dir, phase, describe) -> None:
        self.recorders[name] = TrialRecorder(self.tracker, self.space, exp_dir, self.background, phase, describe)

    def call(self, name: str, method: str, *args) -> None:
        self.background.submit(self._call, name, method, args)

    def _call(self, name: str, method: str, args: tuple) -> None:
        getattr(self.recorders[name], method)(*args)

    def finish(self, statuses, verdict, files, status, timeout_s=FINISH_TIMEOUT_S) -> dict:
        drained = self.background.drain(timeout_s)
        for key, trial_status in statuses:
            self.tracker.set_status(key, trial_status)
        if verdict is not None:
            self.tracker.log_verdict(verdict)
        self.tracker.finish(files, status=status)
        return {"drained": drained, "down": self.tracker.down}

    def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        self.background.submit(self.tracker.flush)  # after what is queued: the mapping as the calls left it
        self.background.drain(timeout_s)

    def abandon(self) -> None:
        """The driver is gone: the mapping as it is now, and no further call (a resumed driver does the rest)."""
        self.background.abandon(self.tracker.flush)
