"""The search phase on Ray Tune: the Tuner (new, or restored for --resume) with the live view, the caller's
callbacks, the result loggers, checkpoint pruning and MLflow tracking (the parent run opens here);
`search` returns the trials' records. `Run` is what the phases of one search share.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..output.console import print_header, space_yaml
from ..output.logs import LOG_FILE
from ..search.results import search_trials
from ..search.space import SPACE_FILE, SearchSpace, StrategyLabel
from ..search.space.arms import TrialLabel
from ..search.trials import Trial
from ..tracking import SearchTracker, TrackingProcess, search_params, search_tags, tracker_setup
from ..tracking.records import dataset_record
from . import ray_private
from .callbacks import CheckpointPruner, ForgetAnalysis, LiveCallback, TrackingCallback
from .tuner import decided_by, new_tuner, restored_tuner


@dataclass
class Run:
    """One search as its phases share it: space, directory, trials at a time, output and MLflow tracking."""
    space: SearchSpace
    exp_dir: Path
    concurrency: int
    live_interval_s: float = 10.0
    stream: Any = sys.stdout
    tracking_session: Optional[TrackingProcess] = None  # once the parent run is open (tracking on)

    def live(self, dim_keys: list[str], metric: str, mode: str, num_trials: int, label) -> LiveCallback:
        """A phase's live view (`label`: a trial config -> its strategy or arm)."""
        return LiveCallback(dim_keys, metric, mode, num_trials, interval_s=self.live_interval_s, stream=self.stream,
                            label=label)

    def tracking(self, trial_root: Path, **phase) -> Optional[TrackingCallback]:
        """A phase's MLflow callback for the trials under `trial_root` (None with tracking off)."""
        if self.tracking_session is None:
            return None
        return TrackingCallback(self.tracking_session, self.space, trial_root, **phase)

    def close(self) -> None:
        """Stop the tracking process (after `publish.finish_tracking`, or in its place after an error)."""
        if self.tracking_session is not None:
            self.tracking_session.close()
            self.tracking_session = None


def search(run: Run, resuming: bool, callbacks, tracking: tuple) -> list[Trial]:
    """Run (or continue) the Tuner; one record per trial. `callbacks`: extra Ray Tune callbacks, or a function
    `(SearchSpace, experiment_dir) -> [callbacks]`; `tracking`: (MLflow URI or None, artifact location)."""
    space, exp_dir = run.space, run.exp_dir
    live = run.live(space.dim_keys, space.search.metric, space.search.mode, space.num_trials,
                    TrialLabel(StrategyLabel(space.dims, space.base_flat)))
    extra = callbacks(space, exp_dir) if callable(callbacks) else list(callbacks or [])
    all_callbacks = [live, *extra, *ray_private.history_loggers(), CheckpointPruner(exp_dir),
                     ForgetAnalysis(decided_by(space))]
    print_header(space, exp_dir, resuming, run.concurrency, run.stream)
    if resuming:
        tuner = restored_tuner(space, exp_dir, all_callbacks)
    else:
        tuner = new_tuner(space, exp_dir, run.concurrency, all_callbacks, space_yaml(space))
    start_tracking(run, *tracking)  # after search_space.yaml exists: it is logged
    tracking_callback = run.tracking(exp_dir)
    if tracking_callback is not None:  # the Tuner holds this very list
        all_callbacks.append(tracking_callback)
    ray_private.install_trial_error_filter()
    trials = search_trials(space, tuner.fit(), live.final_status)
    if tracking_callback is not None:
        tracking_callback.end_the_rest(trials)
    return trials


def start_tracking(run: Run, uri: Optional[str], artifact_location: Optional[str]) -> None:
    """Open (or, resuming, reopen) the search's MLflow parent run, say where to see it, and start the
    tracking process that makes the trials' runs from here on."""
    if uri is None:
        return
    space, exp_dir = run.space, run.exp_dir
    tracker = SearchTracker(uri, space.tracking.experiment, exp_dir, artifact_location,
                            log_checkpoint=space.tracking.log_checkpoint)
    tracker.dataset = dataset_record(space.base_cfg.data)
    tracker.start(exp_dir.name, search_tags(space), search_params(space), exp_dir / SPACE_FILE)
    print(f"  MLflow: {mlflow_link(tracker)}", file=run.stream, flush=True)
    run.tracking_session = TrackingProcess(tracker_setup(tracker), space, exp_dir / LOG_FILE)


def mlflow_link(tracker) -> str:
    """Where to see the search in MLflow's UI (opening on the runs: `?workflowType=machine_learning`)."""
    url = tracker.ui_url()
    if url is not None:
        return url
    local = tracker.ui_url(server="http://127.0.0.1:5000")
    return f"mlflow ui --backend-store-uri {tracker.uri} --port 5000" + (f", then {local}" if local else "")
