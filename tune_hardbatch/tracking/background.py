"""Tracking off the driver's loop: MLflow calls and per-trial plots run on one background thread.

A function trainable waits in `tune.report` until the driver has handled its result, so nothing slow
may run on Ray Tune's controller loop. `BackgroundTracker.submit(fn, *args)` queues the call and returns
at once; one thread runs the calls in order (so a trial's run exists before its metrics are logged and
MLflow sees every call in the order the search made it). The queue is bounded (`MAX_PENDING`): past that,
`submit` waits for room instead of growing without end. `drain()` waits until everything queued ran
(before the parent run is finished). A call that fails is reported once on stderr and the thread goes
on; MLflow's own failures are handled by `SearchTracker` (it marks the server down and warns once).
"""

from __future__ import annotations

import queue
import sys
import threading
import time

MAX_PENDING = 10000  # queued calls; a result costs ~1 kB, so the bound is a few MB of memory


class BackgroundTracker:
    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.calls: queue.Queue = queue.Queue(maxsize=MAX_PENDING)
        self.busy_s = 0.0  # time spent running calls (the work taken off the driver's loop)
        self.ran = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._loop, name="tune-hardbatch-tracking", daemon=True)
        self._thread.start()

    def submit(self, fn, *args, **kwargs) -> None:
        self.calls.put((fn, args, kwargs))

    def drain(self, timeout_s: float = 600.0) -> bool:
        """Wait until every queued call has run; False if that took longer than `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while self.calls.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)
        return not self.calls.unfinished_tasks

    def _loop(self) -> None:
        while True:
            fn, args, kwargs = self.calls.get()
            start = time.perf_counter()
            try:
                fn(*args, **kwargs)
                self.ran += 1
            except Exception as exc:  # noqa: BLE001 - tracking must never stop the search
                self.failed += 1
                if self.failed == 1:
                    print(f"warning: tracking call {getattr(fn, '__name__', fn)} failed ({type(exc).__name__}: "
                          f"{str(exc)[:200]}); later failures are not shown", file=self.stream, flush=True)
            finally:
                self.busy_s += time.perf_counter() - start
                self.calls.task_done()
