"""Preparing a search before Ray starts: everything `search` checks against the world, in order of cost.

- `resume`: the storage directory and name of a new search, or the saved space of `--resume NAME`;
- `lock`: which driver process runs a search (`driver.json`), for `--resume` and `report --sync`;
- `resources`: a trial's CPUs and GPUs against this machine or a cluster's nodes, and the preflight that
  builds the data and models of every corner (this one imports torch and timm);
- `preflight`: that check in a child process, so the driver never imports torch;
- `reachable`: whether the MLflow tracking server answers;
- `checks`: `prepare_search`, all of the above in order, and the `--address` check.

The space itself is validated by `tune_hardbatch.search.space`; where the storage is and whether it can be
written, by `tune_hardbatch.search.storage`. Each problem is one `UserError` (exit 2) before anything starts.
"""

from .checks import Prepared, check_address, prepare_search
from .reachable import check_reachable
from .resources import check_resources, local_resources
from .resume import resolve_run

__all__ = ["check_address", "check_reachable", "check_resources", "local_resources",
           "prepare_search", "Prepared", "resolve_run"]
