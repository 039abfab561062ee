"""MLflow tracking of a search: one parent run per search, one nested child run per trial. Imports no Ray.

- `client`: `SearchTracker`, the parent and child runs, each MLflow call guarded so training never stops;
- `background`: `BackgroundTracker`, one thread that runs tracking calls and per-trial plots off the
  driver's loop (the Ray callback only queues them);
- `records`: what a search logs (params, tags, per-trial config and curves);
- `sync`: `report NAME --sync`, uploading what an outage of the server left out.
Runs on the driver only (trials never talk to MLflow).
"""

from ..spec.uris import check_reachable, default_uri, resolve_uri, tracking_uri
from .background import BackgroundTracker
from .client import MAP_FILE, STATUS_TO_RUN, STEP_KEY, SearchTracker, check_experiment
from .records import search_params, search_tags, trial_artifacts, trial_record
from .sync import sync_experiment, sync_search

__all__ = ["BackgroundTracker", "MAP_FILE", "STATUS_TO_RUN", "STEP_KEY", "SearchTracker", "check_experiment",
           "check_reachable", "default_uri", "resolve_uri", "search_params", "search_tags", "sync_experiment",
           "sync_search", "tracking_uri", "trial_artifacts", "trial_record"]
