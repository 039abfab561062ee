"""Search specs: a search-space YAML becomes a validated `SearchSpec`, with nothing started (no Ray, no torch).

The rooms, in dependency order:

- `schema`: sections, their keys and defaults, file names;
- `dims`: a search dimension (`Dim`), which parameters are active, a trial's training config, Optuna's
  define-by-run space and strategy labels of trials;
- `distributions`: the `space` section parsed into `Dim`s and checked against each config field;
- `corners`: every corner of the space validated, and the epoch-equivalent budget;
- `sections`: the `search`, `resources`, `tracking`, `run` sections; `uris`: MLflow URIs made absolute;
- `sets`: `--set` overrides of a space file;
- `load`: `load_space` / `validate_space` -> `SearchSpec`;
- `resources`: a trial's resources against this machine or a cluster;
- `resume`: the storage directory and name of a search, and `--resume`; `lock`: which driver runs it;
- `prepare`: everything `search` checks before Ray starts, in order of cost.

Everything is checked before Ray starts: keys, types, the bounds of every distribution against the config
rules, and the resources against the machine (or the cluster given by `--address`). Each problem is one
`UserError` naming the dotted key and what is allowed.
"""

from .dims import (Dim, DefineByRun, StrategyLabel, active_params, baseline_points, decode, encode, is_active,
                   trial_config)
from .load import SearchSpec, load_space, validate_space
from .prepare import Prepared, prepare_search
from .resources import check_resources, local_resources, preflight
from .resume import abs_storage, check_writable, resolve_run
from .schema import BEST_FILE, DEFAULT_SPACE, RESULTS_FILE, SPACE_DIR, SPACE_FILE, STATUSES
from .sets import apply_space_sets
from .uris import check_reachable, resolve_uri, tracking_uri

__all__ = ["abs_storage", "active_params", "apply_space_sets", "baseline_points", "BEST_FILE", "check_reachable",
           "check_resources", "check_writable", "decode", "DEFAULT_SPACE", "DefineByRun", "Dim", "encode",
           "is_active", "load_space", "local_resources", "preflight", "prepare_search", "Prepared",
           "resolve_run", "resolve_uri", "RESULTS_FILE", "SearchSpec", "SPACE_DIR", "SPACE_FILE", "STATUSES",
           "StrategyLabel", "tracking_uri", "trial_config", "validate_space"]
