"""MLflow tracking of a search: one parent run per search, one nested child run per trial. Imports no Ray.

- `client`: `SearchTracker`, the parent and child runs, each MLflow call guarded so training never stops;
- `recorder`: `TrialRecorder`, a phase's trial events (start, result, end) made into child runs;
- `background`: `BackgroundTracker`, the one thread that runs the recorders' calls in order (and a trial's
  buffered results a little later);
- `session`: `LocalTracking`, tracker, thread and recorders together behind the interface the driver uses;
- `process`: `TrackingProcess`, the same in a child process of the driver, which a search uses; `child`:
  that process's side (run as `python -m`, not imported here);
- `records`: what a search logs (params, tags, per-trial config and curves, the verdict's metrics and note);
- `sync`: `report NAME --sync`, uploading what an outage of the server left out.
Runs on the driver's machine only (trials never talk to MLflow).
"""

from ..search.prepare.reachable import check_reachable
from ..search.space.uris import default_uri, resolve_uri, tracking_uri
from .background import BackgroundTracker
from .client import (
    KIND_TAG,
    MAP_FILE,
    SEND_S,
    STATUS_TO_RUN,
    STEP_KEY,
    TRAINING_KIND,
    VERDICT_FILE,
    SearchTracker,
    check_experiment,
    trial_key,
)
from .process import TrackingProcess, tracker_setup
from .recorder import TrialRecorder
from .records import (
    CURVES_FILE,
    described_config,
    search_params,
    search_tags,
    slug,
    trial_artifacts,
    trial_files,
    trial_record,
    verdict_metrics,
    verdict_note,
)
from .session import LocalTracking
from .sync import parent_files, sync_experiment, sync_search

__all__ = ["BackgroundTracker", "CURVES_FILE", "KIND_TAG", "LocalTracking", "MAP_FILE", "SEND_S", "STATUS_TO_RUN",
           "STEP_KEY", "SearchTracker", "TRAINING_KIND", "TrackingProcess", "TrialRecorder", "tracker_setup", "VERDICT_FILE", "check_experiment", "check_reachable", "default_uri",
           "described_config", "parent_files", "resolve_uri", "search_params", "search_tags", "slug", "sync_experiment",
           "sync_search", "tracking_uri", "trial_artifacts", "trial_files", "trial_key", "trial_record", "verdict_metrics",
           "verdict_note"]
