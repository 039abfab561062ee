"""Search spaces: a search-space YAML becomes a validated `SearchSpace`, with nothing started.

Pure schema and validation: no Ray, no torch, no network, no disk beyond reading the file. The rooms, in
dependency order:

- `schema`: sections, their keys and defaults, the names of a search's files;
- `dims`: a search dimension (`Dim`), which parameters are active, a trial's training config, Optuna's
  define-by-run space and strategy labels of trials;
- `distributions`: the `space` section parsed into `Dim`s and checked against each config field;
- `corners`: every corner of the space validated, and the epoch-equivalent budget;
- `arms`: declared arms; `design`: the scrambled Sobol' design of the shared dimensions that every arm's
  k-th start-up trial takes (numpy/scipy only);
- `sections`: the `search`, `confirm`, `resources`, `tracking`, `run` sections as frozen dataclasses;
  `uris`: MLflow URIs made absolute;
- `sets`: `--set` overrides of a space file;
- `load`: `load_space` / `validate_space` -> `SearchSpace` (with the rungs of synchronous halving placed).

Each problem is one `UserError` naming the dotted key and what is allowed. What a search checks against
the machine, the cluster and the disk before Ray starts is `tune_hardbatch.search.prepare`.
"""

from .dims import (
                   DefineByRun,
                   Dim,
                   StrategyLabel,
                   active_params,
                   baseline_points,
                   decode,
                   encode,
                   is_active,
                   trial_config,
)
from .load import SearchSpace, load_space, validate_space
from .schema import BEST_FILE, DEFAULT_SPACE, RESULTS_FILE, SPACE_DIR, SPACE_FILE, STATUSES
from .sets import apply_space_sets
from .uris import resolve_uri, tracking_uri

__all__ = ["active_params", "apply_space_sets", "baseline_points", "BEST_FILE", "decode", "DEFAULT_SPACE",
           "DefineByRun", "Dim", "encode", "is_active", "load_space", "resolve_uri", "RESULTS_FILE", "SearchSpace",
           "SPACE_DIR", "SPACE_FILE", "STATUSES", "StrategyLabel", "tracking_uri", "trial_config", "validate_space"]
