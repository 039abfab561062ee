"""Tracking off the driver's loop: MLflow calls run on one background thread.

A function trainable waits in `tune.report` until the driver has handled its result, so nothing slow
may run on Ray Tune's controller loop. `BackgroundTracker.submit(fn, *args)` queues the call and returns
at once; one thread runs the calls in order (so a trial's run exists before its metrics are logged and
MLflow sees every call in the order the search made it). `later(delay_s, fn, *args)` runs a call on the
same thread once `delay_s` has passed (a trial's end waiting for the curves its worker is still drawing).
The queue is bounded (`MAX_PENDING`): past that, `submit` waits for room instead of growing without end.
`drain()` waits until everything queued or delayed ran (before the parent run is finished): delayed calls
then run as soon as they are next, without waiting for their time (the search is over; nothing is coming).
`abandon(last)` drops every call not yet run and runs `last` next (the tracking process when its driver died:
the mapping is saved as it is, and a resumed driver redoes the rest). The first call that fails is one warning
on stderr (`output.logs.tool_logger`), later ones none, and the thread goes on; MLflow's own failures are
handled by `SearchTracker` (it marks the server down and warns once).
"""

from __future__ import annotations

import heapq
import itertools
import queue
import threading
import time

from ..output.logs import tool_logger

MAX_PENDING = 10000  # queued calls; a result costs ~1 kB, so the bound is a few MB of memory

log = tool_logger(__name__)


class BackgroundTracker:
    def __init__(self):
        self.calls: queue.Queue = queue.Queue(maxsize=MAX_PENDING)
        self.delayed: list = []  # heap of (due, order, call), touched by the thread only
        self._order = itertools.count()
        self._delayed_left = 0  # delayed calls not yet run (drain waits for them too)
        self.hurry = False  # set while draining: delayed calls are due at once
        self.dropping = False  # set by `abandon`: calls not yet run are skipped
        self.busy_s = 0.0  # time spent running calls (the work taken off the driver's loop)
        self.ran = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._loop, name="tune-hardbatch-tracking", daemon=True)
        self._thread.start()

    def submit(self, fn, *args, **kwargs) -> None:
        self.calls.put((fn, args, kwargs))

    def drain(self, timeout_s: float = 600.0) -> bool:
        """Wait until every queued and delayed call has run; False if that took longer than `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        self.hurry = True
        self.submit(_nothing)  # wakes the thread if it sleeps until a delayed call's time
        while self._pending() and time.monotonic() < deadline:
            time.sleep(0.02)
        self.hurry = False
        return not self._pending()

    def abandon(self, last, timeout_s: float = 10.0) -> bool:
        """Skip every queued and delayed call not yet run, then run `last` on this thread (after the call it
        runs now, so nothing else touches what `last` reads); False if that took longer than `timeout_s`."""
        done = threading.Event()
        self.dropping = True
        self.submit(_final, last, done)
        return done.wait(timeout_s)

    def _pending(self) -> int:
        return self.calls.unfinished_tasks + self._delayed_left

    def later(self, delay_s: float, fn, *args, **kwargs) -> None:
        """From a call on this thread: run `fn(*args, **kwargs)` here once `delay_s` has passed."""
        self._delayed_left += 1
        heapq.heappush(self.delayed, (time.monotonic() + delay_s, next(self._order), (fn, args, kwargs)))

    def _loop(self) -> None:
        while True:
            while self.delayed and (self.hurry or self.dropping or self.delayed[0][0] <= time.monotonic()):
                self._run(heapq.heappop(self.delayed)[2])
                self._delayed_left -= 1
            wait = max(0.0, self.delayed[0][0] - time.monotonic()) if self.delayed else None
            try:
                call = self.calls.get(timeout=wait)
            except queue.Empty:
                continue
            try:
                self._run(call)
            finally:
                self.calls.task_done()

    def _run(self, call) -> None:
        fn, args, kwargs = call
        if self.dropping and fn is not _final:
            return
        start = time.perf_counter()
        try:
            fn(*args, **kwargs)
            self.ran += 1
        except Exception as exc:  # noqa: BLE001 - tracking must never stop the search
            self.failed += 1
            if self.failed == 1:
                log.warning("tracking call %s failed (%s: %s); later failures are not shown",
                            getattr(fn, "__name__", fn), type(exc).__name__, str(exc)[:200])
        finally:
            self.busy_s += time.perf_counter() - start


def _nothing() -> None:
    """A call that only wakes the thread."""


def _final(last, done: threading.Event) -> None:
    """`abandon`'s last call."""
    try:
        last()
    finally:
        done.set()
