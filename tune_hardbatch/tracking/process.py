"""The tracking process: a search's MLflow work in a child process of the driver, so that the driver's
interpreter spends its time on Ray Tune's controller, not on MLflow's store (SQLAlchemy's sessions cost
several times the CPU of the rest of the driver per result, and a thread of the driver would hold its GIL).

`TrackingProcess` (the driver's side, a `session.TrackingSession`) starts `python -m
tune_hardbatch.tracking.child` and pickles each request onto its stdin from a feeding thread, so a Ray
callback only queues; the child runs a `session.LocalTracking` and answers `finish` on a pipe of its own
(`child.py`). A child that dies is one warning line; training goes on and `report --sync` uploads what is
missing.
"""

from __future__ import annotations

import os
import pickle
import queue
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

from ..output.logs import tool_logger
from .background import MAX_PENDING
from .session import CLOSE_TIMEOUT_S, FINISH_TIMEOUT_S

CHILD = "tune_hardbatch.tracking.child"  # the module the child runs (not imported by the package)
FINISH_MARGIN_S = 300.0  # past the queue's own timeout: the end's own calls (statuses, verdict, artifacts)

log = tool_logger(__name__)


class TrackingProcess:
    """`TrackingSession` in a child process. `setup`: the `SearchTracker`'s settings as `tracker_setup`
    gives them; `space`: the search's `SearchSpace`; `log_file`: where the child's library logs go."""

    def __init__(self, setup: dict, space, log_file: Path):
        self.exp_dir = setup["exp_dir"]
        read_fd, write_fd = os.pipe()
        env = dict(os.environ)  # the package as the driver imports it, installed or not
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]),
                                                          env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen([sys.executable, "-m", CHILD, str(write_fd)], stdin=subprocess.PIPE,
                                     pass_fds=(write_fd,), env=env)
        os.close(write_fd)
        self.replies = os.fdopen(read_fd, "rb")
        self.outbox: queue.Queue = queue.Queue(maxsize=MAX_PENDING)
        self.lost = False  # the child died: requests are dropped, and a warning said so
        self._lock = threading.Lock()  # the feeder and `finish` may both find it dead: one warning
        self._feeder = threading.Thread(target=self._feed, name="tune-hardbatch-tracking-feed", daemon=True)
        self._feeder.start()
        self.outbox.put(("setup", setup, space, str(log_file)))

    # ------------------------------------------------------------------------------ the session
    def open_phase(self, name, exp_dir, phase="search", describe=None) -> None:
        self.outbox.put(("phase", name, Path(exp_dir), phase, describe))

    def call(self, name: str, method: str, *args) -> None:
        self.outbox.put(("call", name, method, args))

    def finish(self, statuses, verdict, files, status, timeout_s=FINISH_TIMEOUT_S) -> dict:
        self.outbox.put(("finish", statuses, verdict, [str(f) for f in files], status, timeout_s))
        reply = self._reply(time.monotonic() + timeout_s + FINISH_MARGIN_S)
        return reply if reply is not None else {"drained": False, "down": True}

    def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        self.outbox.put(("close", timeout_s))
        self.outbox.put(None)  # the feeder stops after it
        self._feeder.join(timeout=timeout_s)
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=timeout_s + 10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.replies.close()

    # ------------------------------------------------------------------------------ the pipe
    def _feed(self) -> None:
        """Pickle each request onto the child's stdin, flushing whenever nothing else is waiting."""
        out = self.proc.stdin
        while True:
            msg = self.outbox.get()
            if msg is None:
                return
            if self.lost:
                continue
            try:
                pickle.dump(msg, out, protocol=pickle.HIGHEST_PROTOCOL)
                if self.outbox.empty():
                    out.flush()
            except (OSError, ValueError):  # the child is gone (a broken pipe)
                self._lose()
            except (pickle.PicklingError, TypeError, AttributeError) as exc:  # one request the child cannot get
                log.warning("a tracking request (%s %s) could not be sent (%s: %s)", msg[0],
                            msg[2] if len(msg) > 2 else "", type(exc).__name__, exc)

    def _lose(self) -> None:
        with self._lock:
            if self.lost:
                return
            self.lost = True
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        log.warning("the MLflow tracking process ended (exit status %s); training goes on, and "
                    "`tune-hardbatch report %s --sync` uploads what is missing later", code, self.exp_dir)

    def _reply(self, deadline: float):
        """The child's answer, or None when it died or said nothing before `deadline`."""
        while not self.lost:
            ready, _, _ = select.select([self.replies], [], [], max(0.0, min(1.0, deadline - time.monotonic())))
            if ready:
                try:
                    return pickle.load(self.replies)
                except (EOFError, pickle.UnpicklingError):
                    self._lose()
                    return None
            if time.monotonic() >= deadline:
                return None
        return None


def tracker_setup(tracker) -> dict:
    """What the tracking process needs to make the same `SearchTracker` as the driver's (which opened the
    parent run and wrote the mapping)."""
    return {"uri": tracker.uri, "experiment": tracker.experiment_name, "exp_dir": tracker.exp_dir,
            "artifact_location": tracker.artifact_location, "log_checkpoint": tracker.log_checkpoint,
            "fresh": tracker.fresh, "dataset": tracker.dataset, "down": tracker.down}
