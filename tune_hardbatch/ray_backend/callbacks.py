"""The driver's Ray Tune callbacks: the live view and MLflow tracking (the MLflow side is `tracking.py`).

`TrackingCallback` adapts Ray Tune's callback events to `tracking.SearchTracker`: one nested MLflow child
run per trial (params, every result at step = backprops, status, artifacts); `start_tracking` and
`finish_tracking` open and close the parent run; the work runs on `tracking.BackgroundTracker`'s thread.
The result loggers are `ray_private.history_loggers`.
"""

from __future__ import annotations

import shutil
import sys
import threading
from pathlib import Path

from ray import tune

from ..errors import UserError
from ..history import read_history
from ..live import LiveView
from ..report import PLOTS, REPORT_FILE, build_report
from ..results import trial_status
from ..spec import BEST_FILE, RESULTS_FILE, SPACE_FILE, SearchSpec
from ..tracking import BackgroundTracker, SearchTracker, search_params, search_tags, trial_artifacts, trial_record
from . import ray_private
from .worker import hollow_older


class LiveCallback(LiveView, tune.Callback):
    """The live view as a Ray Tune callback."""


def start_tracking(spec: SearchSpec, exp_dir: Path, tracking: tuple):
    uri, artifact_location = tracking
    if uri is None:
        return None
    tracker = SearchTracker(uri, spec.tracking["experiment"], exp_dir, artifact_location,
                            log_checkpoint=spec.tracking["log_checkpoint"])
    tracker.start(exp_dir.name, search_tags(spec), search_params(spec), exp_dir / SPACE_FILE)
    return tracker


def finish_tracking(tracker, rows: list[dict], exp_dir: Path, status: str, background=None) -> None:
    """Final statuses from results.csv, then the parent's artifacts: results, report, plots, best config.

    Waits first for the tracking calls still queued (`background`), so the parent run ends last."""
    try:
        build_report(exp_dir)
    except UserError:  # no trial reported anything
        pass
    if tracker is None:
        return
    if background is not None and not background.drain():
        print("warning: MLflow tracking calls were still queued after 10 minutes; their runs may be "
              f"incomplete: tune-hardbatch report {exp_dir} --sync uploads the rest", file=sys.stderr, flush=True)
    for row in rows:
        tracker.set_status(row["trial_id"], row["status"])
    tracker.finish([exp_dir / f for f in (RESULTS_FILE, REPORT_FILE, BEST_FILE, *PLOTS)], status=status)
    if tracker.down:
        print(f"MLflow was unreachable during the search; upload what is missing with: tune-hardbatch report "
              f"{exp_dir} --sync", file=sys.stderr, flush=True)


class CheckpointPruner(tune.Callback):
    """Disk: a trial that ended (finished, stopped early, diverged) keeps only its newest checkpoint
    (nothing resumes an ended trial; the others are emptied); `prune_ended` removes the folders, that one
    too, at the end of the search, except for the trials worth keeping (the best). Errored trials keep
    theirs: `--resume` retries them."""

    def __init__(self, exp_dir: Path):
        self.exp_dir = Path(exp_dir)

    def on_trial_complete(self, iteration, trials, trial, **info):  # off the controller loop: disk I/O
        # emptied, not deleted: a stale snapshot restored by --resume may still name one of these folders
        threading.Thread(target=hollow_older, args=(self.exp_dir / trial.trial_id, 1), daemon=True).start()


def keep_newest(trial_dir: Path, keep: int) -> int:
    """Delete all but the `keep` newest checkpoint folders of a trial; the bytes freed."""
    freed = 0
    for path in ray_private.trial_checkpoints(trial_dir)[keep:]:
        freed += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        shutil.rmtree(path, ignore_errors=True)
    return freed


def prune_ended(exp_dir: Path, rows: list[dict], keep_ids: set) -> int:
    """At the end of a search: ended trials lose their last checkpoint too, except `keep_ids`."""
    ended = [r["trial_id"] for r in rows if r["status"] in ("finished", "stopped_early", "diverged")
             or (r["status"] == "failed" and not r.get("_errored"))]
    return sum(keep_newest(Path(exp_dir) / t, 1 if t in keep_ids else 0) for t in ended)


class TrackingCallback(tune.Callback):
    """One nested MLflow child run per trial: params, every result at step = backprops, status, artifacts.

    Ray calls these methods on its controller loop, which trials wait on (`tune.report`): each method
    only copies what it needs and queues the work on `BackgroundTracker`'s thread (MLflow calls, the
    learning-curve PNG); `histories` and the tracker's mapping are touched by that thread only.
    """

    def __init__(self, tracker, spec: SearchSpec, exp_dir: Path, background: BackgroundTracker):
        self.tracker, self.spec, self.exp_dir = tracker, spec, Path(exp_dir)
        self.background = background
        self.histories: dict[str, list] = {}

    def __getstate__(self):  # Ray pickles callbacks into its experiment state; --resume makes fresh ones
        return {"tracker": None, "spec": None, "exp_dir": self.exp_dir, "histories": {}, "background": None}

    def _params(self, trial) -> dict:
        return {k: trial.config[k] for k in self.spec.dim_keys if k in trial.config}

    def on_trial_start(self, iteration, trials, trial, **info):
        self.background.submit(self._ensure_run, trial.trial_id, self._params(trial))

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.background.submit(self._log, trial.trial_id, self._params(trial), dict(result))

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.background.submit(self._end, trial.trial_id, self._params(trial), None, _checkpoint_path(trial))

    def on_trial_error(self, iteration, trials, trial, **info):
        self.background.submit(self._end, trial.trial_id, self._params(trial), "failed", _checkpoint_path(trial))

    def end_the_rest(self, rows: list[dict]) -> None:
        """After the search: end (with artifacts) every trial whose run was not ended, e.g. those that
        finished just before an earlier driver was killed with their end still queued."""
        for row in rows:
            if row["status"] != "unfinished":
                self.background.submit(self._end_if_open, row["trial_id"], row["_params"], row["status"])

    def _end_if_open(self, trial_id: str, params: dict, status: str) -> None:
        if not self.tracker.ended(trial_id):
            self._end(trial_id, params, status, None)

    # ------------------------------------------------------------------ on the background thread
    def _ensure_run(self, trial_id: str, params: dict) -> None:
        if trial_id not in self.tracker.mapping["trials"]:
            run_params, tags, _ = trial_record(self.spec, params)
            self.tracker.trial_run(trial_id, run_params, tags)
        if trial_id not in self.histories:  # a restored trial: what it reported before, uploaded if an
            self.histories[trial_id] = read_history(self.exp_dir / trial_id)  # earlier driver died first
            for result in self.histories[trial_id]:
                self.tracker.log_result(trial_id, result)  # steps MLflow already has are skipped

    def _log(self, trial_id: str, params: dict, result: dict) -> None:
        self._ensure_run(trial_id, params)
        history = self.histories[trial_id]
        if not any(h.get("backprops") == result.get("backprops") for h in history):  # read from disk already
            history.append(result)
        self.tracker.log_result(trial_id, result)

    def _end(self, trial_id: str, params: dict, status, checkpoint) -> None:
        self._ensure_run(trial_id, params)
        history = self.histories[trial_id]
        status = status or trial_status(None, history[-1] if history else {}, False)
        _, tags, cfg = trial_record(self.spec, params)
        files = trial_artifacts(cfg, history, self.exp_dir / trial_id, f"trial {trial_id} {tags['strategy']}")
        if self.tracker.log_checkpoint and checkpoint:
            files.append(Path(checkpoint))
        self.tracker.end_trial(trial_id, status, files)


def _checkpoint_path(trial):
    checkpoint = getattr(trial, "checkpoint", None)
    return getattr(checkpoint, "path", None) if checkpoint is not None else None
