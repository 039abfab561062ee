"""The `search`, `confirm`, `resources`, `tracking` and `run` sections: frozen dataclasses, read by
attribute like the training config; their keys, defaults and allowed values.

    search:                     # the defaults:
      searcher: optuna          # optuna | random | grid
      scheduler: halving        # halving (synchronous successive halving within each arm) | fifo (none)
      num_samples: null         # null = 12 (optuna, random; random runs grid x num_samples), 1 (grid: only 1);
                                # with declared arms: trials_per_arm x arms (leave it out)
      trials_per_arm: null      # with an arms section: every arm gets exactly this many trials (null = 6)
      max_concurrent: null      # null = as many trials as the resources fit
      metric: val_top1          # val_top1 | val_top5 | val_loss | train_top1 | train_loss | ... (validation:
                                # base.data.val_fraction, or an image folder's own val/)
      allow_test_metric: false  # true: the space means it when metric is a test metric; only for a search that
                                # selects nothing (searcher grid, scheduler fifo, a seed grid: the DyBAT table)
      mode: null                # max | min; null: min for losses and epochs, max for accuracies
      grace_period: null        # halving: the first rung, in epoch-equivalents of compute (<= the budget),
                                # moved past a learning-rate warm-up and a step-wise plan's last stage start;
                                # null: there (at least 1)
      reduction_factor: 2       # halving: > 1; a rung keeps the best 1/reduction_factor of its entrants
      seed: 0                   # Optuna TPE / random sampling seed (null: unseeded)
      startup_trials: null      # TPE's random start-up trials; null = num_samples / 3, within 2..10
                                # (never fewer than the concurrent trials)
    confirm:                    # after the search: the best config of each strategy family, re-trained
      seeds: 3                  # with these many seeds (shared by all arms; 0: no confirmation)
      max_arms: null            # at most this many arms (the baselines and the best by validation first)
      equivalence_margin: null  # points of test top-1: a fixed design decides "equivalent within +-m" (TOST)
      resolution: null          # points of test top-1 (0 < R < 100): seeds come in looks until each primary
                                # comparison differs or is equivalent within +-R (sequential; null: fixed)
      max_seeds: null           # with a resolution: at most this many seeds per arm (null = 12; >= 2)
      looks: 3                  # with a resolution: looks evenly spaced up to max_seeds (1..5)
      test_limit: null          # confirmation runs' test images (null: the whole test set)
      primary: null             # comparisons that carry words, ["trim vs plain", ...]; null: every arm
                                # against the baseline and against its random control
    resources: {cpu: 1, gpu: 0}  # per trial; gpu may be a fraction (0.25 = four trials per GPU)
    tracking:                   # MLflow: one parent run per search, a nested child run per trial
      enabled: true
      uri: null                 # null: sqlite:///<storage>/mlflow.db, artifacts in <storage>/mlartifacts
      experiment: tune-hardbatch
      log_checkpoint: false     # also log each trial's final checkpoint as an artifact
    run:                        # storage: --out, else this, else ./tune_results
      storage: null
      name: null                # null = <space file stem>-<date-time>
      max_failures: 1           # retries of a crashed trial, from its last checkpoint (-1: forever)
      checkpoint_every: null    # epoch-equivalents between checkpoints; null = auto (see ray_backend.checkpoints)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

from ...errors import UserError
from ...files import as_text
from ...training.config import closest
from ...training.ranges import Range, check_all, describe
from .names import check_experiment_name, check_run_name
from .schema import METRICS, MINIMISED, SCHEDULERS, SEARCHERS, TEST_METRICS
from .uris import resolve_uri


@dataclass(frozen=True)
class SearchSection:
    searcher: str = "optuna"
    scheduler: str = "halving"
    num_samples: Optional[int] = None  # resolved by `validate_search`: an int afterwards
    max_concurrent: Optional[int] = None
    metric: str = "val_top1"
    mode: Optional[str] = None  # resolved by `validate_search`: max | min afterwards
    grace_period: Optional[float] = None  # None: the first point where values predict the end (`rungs.first_rung`)
    reduction_factor: float = 2
    seed: Optional[int] = 0
    startup_trials: Optional[int] = None
    allow_test_metric: bool = False
    trials_per_arm: Optional[int] = None  # resolved by `load.validate_space`: an int with arms


@dataclass(frozen=True)
class ConfirmSection:
    seeds: int = 3
    max_arms: Optional[int] = None
    equivalence_margin: Optional[float] = None
    resolution: Optional[float] = None
    max_seeds: Optional[int] = None
    looks: int = 3
    test_limit: Optional[int] = None
    primary: Optional[list] = None


@dataclass(frozen=True)
class ResourcesSection:
    cpu: float = 1
    gpu: float = 0


@dataclass(frozen=True)
class TrackingSection:
    enabled: bool = True
    uri: Optional[str] = None
    experiment: str = "tune-hardbatch"
    log_checkpoint: bool = False


@dataclass(frozen=True)
class RunSection:
    storage: Optional[str] = None
    name: Optional[str] = None
    max_failures: int = 1
    checkpoint_every: Optional[float] = None


SECTION_TYPES = {"search": SearchSection, "confirm": ConfirmSection, "resources": ResourcesSection,
                 "tracking": TrackingSection, "run": RunSection}
SECTION_DEFAULTS = {name: dataclasses.asdict(cls()) for name, cls in SECTION_TYPES.items()}


def parse_section(raw: dict, name: str):
    """The section `name` of a raw space mapping: known keys only, defaults filled in, validated, frozen."""
    defaults = SECTION_DEFAULTS[name]
    given = raw.get(name)
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise UserError(name, f"must be a mapping with keys {', '.join(defaults)}, got {type(given).__name__}")
    unknown = [k for k in given if k not in defaults]
    if unknown:
        hint = closest(f"{name}.{unknown[0]}", [f"{name}.{k}" for k in defaults])
        raise UserError(f"{name}.{unknown[0]}", f"unknown key; {f'did you mean {hint}? ' if hint else ''}"
                        f"allowed: {', '.join(defaults)}")
    values = {**defaults, **{k: _typed(k, v, SECTION_TYPES[name]) for k, v in given.items()}}
    VALIDATORS[name](values)
    return SECTION_TYPES[name](**values)


def _typed(key: str, value, cls):
    """A text field (a name, a path, a URI) that YAML typed as a number or boolean: the text the user typed."""
    hint = str(cls.__dataclass_fields__[key].type)
    return as_text(value) if hint in ("str", "Optional[str]") else value


def as_dict(section) -> dict:
    """A section as the mapping a space file holds (for search_space.yaml and MLflow params)."""
    return dataclasses.asdict(section)


def validate_search(s: dict) -> None:
    if s["searcher"] not in SEARCHERS:
        raise UserError("search.searcher", f"got {s['searcher']!r}; allowed: {', '.join(SEARCHERS)}")
    if s["scheduler"] == "asha":
        raise UserError("search.scheduler", "got 'asha'; allowed: halving, fifo (asynchronous ASHA let each "
                        "arm's first trial pass every rung it reached first; halving decides a rung once all "
                        "the arm's trials are there)")
    if s["scheduler"] not in SCHEDULERS:
        raise UserError("search.scheduler", f"got {s['scheduler']!r}; allowed: {', '.join(SCHEDULERS)}")
    if s["num_samples"] is None:  # default: 12 samples; the grid searcher runs each point once
        s["num_samples"] = 1 if s["searcher"] == "grid" else 12
    check_all(s, SECTION_RANGES["search"], "search.")
    if s["searcher"] == "grid" and s["num_samples"] != 1:
        raise UserError("search.num_samples", f"got {s['num_samples']}; the grid searcher runs each point "
                        "once (allowed: 1, or leave it out); repeat with a grid over seed")
    if s["metric"] not in METRICS:
        raise UserError("search.metric", f"got {s['metric']!r}; allowed: {', '.join(METRICS)}")
    if not isinstance(s["allow_test_metric"], bool):
        raise UserError("search.allow_test_metric", f"got {s['allow_test_metric']!r}; allowed: true, false")
    if s["metric"] in TEST_METRICS and not s["allow_test_metric"]:
        raise UserError("search.metric", f"got {s['metric']}, a test-set metric: choosing on the test set makes its "
                        "score optimistic; allowed: val_top1, val_top5, val_loss (with base.data.val_fraction), "
                        "or set search.allow_test_metric: true if the search selects nothing (a seed grid)")
    natural = "min" if s["metric"] in MINIMISED else "max"
    if s["mode"] is None:  # inferred: losses and epochs are minimised, accuracies maximised
        s["mode"] = natural
    if s["mode"] not in ("max", "min"):
        raise UserError("search.mode", f"got {s['mode']!r}; allowed: max, min (or null: {natural} for {s['metric']})")
    if s["mode"] != natural:
        raise UserError("search.mode", f"got {s['mode']} for {s['metric']}, which is better when "
                        f"{'smaller' if natural == 'min' else 'larger'}; allowed: {natural} (or leave mode out)")


def validate_confirm(c: dict) -> None:
    check_all(c, SECTION_RANGES["confirm"], "confirm.")
    p = c["primary"]
    if p is not None and (not isinstance(p, (list, tuple)) or not all(_is_pair(x) for x in p)):
        raise UserError("confirm.primary", f"got {p!r}; allowed: a list of comparisons 'ARM vs OTHER' (e.g. "
                        "['trim vs plain']), or null (every arm against the baseline and its random control)")


def _is_pair(x) -> bool:
    return isinstance(x, str) and len(parts := x.split(" vs ")) == 2 and all(part.strip() for part in parts)


def pair_names(comparison: str) -> tuple[str, str]:
    """The two arm names of a `confirm.primary` entry 'A vs B' (checked by `validate_confirm`)."""
    left, right = comparison.split(" vs ")
    return left.strip(), right.strip()


def validate_resources(r: dict) -> None:
    check_all(r, SECTION_RANGES["resources"], "resources.")
    gpu = r["gpu"]
    if gpu > 1 and not float(gpu).is_integer():
        raise UserError("resources.gpu", f"got {gpu!r}; allowed: 0, a fraction of one GPU (0 < gpu <= 1) "
                        "or a whole number of GPUs per trial")


def validate_tracking(t: dict) -> None:
    if t["uri"] is not None and (not isinstance(t["uri"], str) or not t["uri"].strip()):
        raise UserError("tracking.uri", f"got {t['uri']!r}; allowed: an MLflow tracking URI string, or null")
    if not isinstance(t["experiment"], str) or not t["experiment"].strip():
        raise UserError("tracking.experiment", f"got {t['experiment']!r}; allowed: a non-empty string")
    check_experiment_name(t["experiment"])
    for key in ("enabled", "log_checkpoint"):
        if not isinstance(t[key], bool):
            raise UserError(f"tracking.{key}", f"got {t[key]!r}; allowed: true, false")
    if t["uri"] is not None:
        resolve_uri(t["uri"], ".")  # the scheme is checked here


def validate_run(r: dict) -> None:
    if r["storage"] is not None and (not isinstance(r["storage"], str) or not r["storage"].strip()):
        raise UserError("run.storage", f"got {r['storage']!r}; allowed: a directory path, or null")
    name = r["name"]
    if name is not None:
        if not isinstance(name, str) or not name.strip() or "/" in name or name in (".", ".."):
            raise UserError("run.name", f"got {name!r}; allowed: a directory name (no '/'), or null")
        check_run_name(name)
    check_all(r, SECTION_RANGES["run"], "run.")


SECTION_RANGES = {
    "search": {
        "num_samples": Range(1, integer=True, why="trials; null: 12, 1 with the grid searcher"),
        "max_concurrent": Range(1, integer=True, null="as many as the resources fit", why="trials at once"),
        "grace_period": Range(0, low_open=True, null="where values start to predict the end",
                              why="the first rung, in epoch-equivalents of compute"),
        "reduction_factor": Range(1, low_open=True, why="a rung keeps the best 1/reduction_factor"),
        "seed": Range(0, integer=True, null="unseeded", why="the sampler's seed"),
        "startup_trials": Range(0, integer=True, null="a third of num_samples, 2..10",
                                why="Optuna TPE's random start-up trials"),
        "trials_per_arm": Range(1, integer=True, null="6", why="trials each declared arm gets"),
    },
    "confirm": {
        "seeds": Range(0, integer=True, why="seeds per arm; 0: no confirmation, 2 or more give intervals"),
        "max_arms": Range(1, integer=True, null="all", why="arms confirmed"),
        "equivalence_margin": Range(0, 100, low_open=True, high_open=True, null="no equivalence test",
                                    why="points of test top-1, within the metric's 0..100"),
        "resolution": Range(0, 100, low_open=True, high_open=True, null="a fixed design of confirm.seeds",
                            why="points of test top-1, within the metric's 0..100"),
        "max_seeds": Range(2, integer=True, null="12", why="seeds per arm at most; a difference needs 2"),
        "looks": Range(1, 5, integer=True, why="looks at the data, evenly spaced up to max_seeds"),
        "test_limit": Range(1, integer=True, null="the whole test set", why="test images"),
    },
    "resources": {
        "cpu": Range(0, low_open=True, why="CPUs per trial"),
        "gpu": Range(0, why="GPUs per trial: a fraction of one, or whole GPUs"),
    },
    "run": {
        "max_failures": Range(-1, integer=True, why="retries of a crashed trial; -1: forever"),
        "checkpoint_every": Range(0, low_open=True, null="auto: checkpoints cost at most 2% of a trial's time",
                                  why="epoch-equivalents between checkpoints"),
    },
}

VALIDATORS = {"search": validate_search, "confirm": validate_confirm, "resources": validate_resources,
              "tracking": validate_tracking, "run": validate_run}

__doc__ += "\nRanges (`SECTION_RANGES`, checked by `training.ranges.check`; every setting's: `range_table.table()`)::\n\n" + \
    "".join(f"    {s}.{k}: {describe(r, k)}\n" for s, ranges in SECTION_RANGES.items() for k, r in ranges.items())
