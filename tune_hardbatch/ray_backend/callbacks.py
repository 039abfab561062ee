"""The driver's Ray Tune callbacks: the live view and MLflow tracking (the MLflow side is `tracking.py`).

`TrackingCallback` adapts Ray Tune's callback events to `tracking.SearchTracker`: one nested MLflow child
run per trial (params, every result at step = backprops, status, artifacts); `start_tracking` and
`finish_tracking` open and close the parent run. The result loggers are `ray_private.history_loggers`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ray import tune

from ..errors import UserError
from ..history import read_history
from ..live import LiveView
from ..report import PLOTS, REPORT_FILE, build_report
from ..results import trial_status
from ..spec import BEST_FILE, RESULTS_FILE, SPACE_FILE, SearchSpec
from ..tracking import SearchTracker, search_params, search_tags, trial_artifacts, trial_record


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


def finish_tracking(tracker, rows: list[dict], exp_dir: Path, status: str) -> None:
    """Final statuses from results.csv, then the parent's artifacts: results, report, plots, best config."""
    try:
        build_report(exp_dir)
    except UserError:  # no trial reported anything
        pass
    if tracker is None:
        return
    for row in rows:
        tracker.set_status(row["trial_id"], row["status"])
    tracker.finish([exp_dir / f for f in (RESULTS_FILE, REPORT_FILE, BEST_FILE, *PLOTS)], status=status)
    if tracker.down:
        print(f"MLflow was unreachable during the search; upload what is missing with: tune-hardbatch report "
              f"{exp_dir} --sync", file=sys.stderr, flush=True)


class TrackingCallback(tune.Callback):
    """One nested MLflow child run per trial: params, every result at step = backprops, status, artifacts."""

    def __init__(self, tracker, spec: SearchSpec, exp_dir: Path):
        self.tracker, self.spec, self.exp_dir = tracker, spec, Path(exp_dir)
        self.histories: dict[str, list] = {}

    def __getstate__(self):  # Ray pickles callbacks into its experiment state; --resume makes fresh ones
        return {"tracker": None, "spec": None, "exp_dir": self.exp_dir, "histories": {}}

    def _ensure_run(self, trial) -> bool:
        if self.tracker is None:
            return False
        if trial.trial_id not in self.histories:  # a restored trial: what it reported before
            self.histories[trial.trial_id] = read_history(self.exp_dir / trial.trial_id)
        if trial.trial_id not in self.tracker.mapping["trials"]:
            params, tags, _ = trial_record(self.spec, self._params(trial))
            self.tracker.trial_run(trial.trial_id, params, tags)
        return True

    def _params(self, trial) -> dict:
        return {k: trial.config[k] for k in self.spec.dim_keys if k in trial.config}

    def on_trial_start(self, iteration, trials, trial, **info):
        self._ensure_run(trial)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if self._ensure_run(trial):
            self.histories[trial.trial_id].append(result)
            self.tracker.log_result(trial.trial_id, result)

    def on_trial_complete(self, iteration, trials, trial, **info):
        if self._ensure_run(trial):
            history = self.histories[trial.trial_id]
            self._end(trial, trial_status(None, history[-1] if history else {}, False))

    def on_trial_error(self, iteration, trials, trial, **info):
        if self._ensure_run(trial):
            self._end(trial, "failed")

    def _end(self, trial, status: str) -> None:
        _, tags, cfg = trial_record(self.spec, self._params(trial))
        files = trial_artifacts(cfg, self.histories[trial.trial_id], self.exp_dir / trial.trial_id,
                                f"trial {trial.trial_id} {tags['strategy']}")
        checkpoint = getattr(trial, "checkpoint", None)
        if self.tracker.log_checkpoint and checkpoint is not None and getattr(checkpoint, "path", None):
            files.append(Path(checkpoint.path))
        self.tracker.end_trial(trial.trial_id, status, files)
