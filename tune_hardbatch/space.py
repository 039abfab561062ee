"""Search spaces: a search-space YAML becomes a validated `SearchSpec` (no Ray here).

A search-space file (all sections optional; unknown keys are errors)::

    # first line(s): a comment saying what question this space answers
    base: {...}                 # a training config: the keys of `tune-hardbatch train` (nested or dotted)
    space:                      # dotted config key -> exactly one distribution
      optim.lr: {loguniform: [0.01, 0.3]}         # low > 0, low < high
      trim.p_end: {uniform: [0.1, 0.8]}           # low < high
      optim.batch_size: {int: [32, 128, 32]}      # [low, high] or [low, high, step]; high - low a multiple of step
      hard_batch.delta: {choice: [null, 1.0, 0.5]}  # non-empty, no duplicates
      stepwise.fractions: {choice: [null, A-C-O, [0.5, 1.0]]}  # named plans or explicit lists
      seed: {grid: [0, 1, 2]}                     # every value once (searcher random or grid only)
    search:                     # the defaults:
      searcher: optuna          # optuna | random | grid
      scheduler: asha           # asha | fifo
      num_samples: null         # null = 12 (optuna, random; random runs grid x num_samples), 1 (grid: only 1)
      max_concurrent: null      # null = as many trials as the resources fit
      metric: test_top1         # test_top1 | test_top5 | test_loss | train_top1 | train_loss | ...
      mode: max                 # max | min
      grace_period: 1           # ASHA: epoch-equivalents before a trial can be stopped (<= the budget)
      reduction_factor: 2       # ASHA: > 1
      seed: 0                   # Optuna TPE / random sampling seed (null: unseeded)
      startup_trials: null      # TPE's random start-up trials; null = num_samples / 3, within 2..10
    resources: {cpu: 1, gpu: 0}  # per trial; gpu may be a fraction (0.25 = four trials per GPU)
    tracking:                   # MLflow: one parent run per search, a nested child run per trial
      enabled: true
      uri: null                 # null: sqlite:///<storage>/mlflow.db, artifacts in <storage>/mlartifacts
      experiment: tune-hardbatch
      log_checkpoint: false     # also log each trial's final checkpoint as an artifact
    run: {storage: null, name: null, max_failures: 1}  # storage: --out, else this, else ./tune_results;
                                                      # name: null = <space file stem>-<date-time>

A key in both `base` and `space` is searched (the trial's value wins). Relative paths (data.root,
data.cache_dir, run.storage, --out) are taken from the current directory and made absolute, since
trials run in their own directories. Remote storage URIs are not supported (use a shared filesystem).
The storage directory must be writable with at least 16 MiB free (`check_writable`, before anything
starts: a full disk or a read-only path is one error line, not a failure of every trial).

Everything is checked before Ray starts: keys, types, the bounds of every distribution against the config
rules (every corner of the space is built and validated, so e.g. `hard_batch.delta: {uniform: [0, 1]}` is
rejected because 0 is not a valid delta), and the resources against the machine (or the cluster given by
`--address`). Each problem is one `UserError` naming the dotted key and what is allowed.

Searchers: `optuna` (Optuna TPE, seeded, through Ray's OptunaSearch with a define-by-run function so that a
strategy's parameters are only sampled when the strategy is on: `trim.*` only when `trim.schedule` is not
none (`trim.p_start` not for `constant`, `trim.step_at` only for `step`), `stepwise.*` only when
`stepwise.fractions` is set); `random` (Ray's BasicVariantGenerator; `grid` dimensions give grid x
num_samples trials); `grid` (every dimension grid or choice, each point once: the papers' tables).
The same conditions hold for every searcher when a trial's config is built: inactive parameters are not
applied and are left empty in results.csv. Schedulers: `asha` (time attribute `epoch_equiv`, max_t = the
largest epoch-equivalent budget in the space) and `fifo`.

`--set` (and the `sets` argument of `run_search`) overrides keys of the space file before validation:
`search.num_samples=4`, `resources.cpu=1`, `run.name=x`, `tracking.uri=...`, `base.epochs=3`,
`base.data.root=/data/cifar10`, `space.optim.lr={loguniform: [0.01, 0.1]}` (a new distribution),
`space.trim.p_end=null` (drops that dimension). A key whose first part is not one of the sections is a
training-config key and means `base.<key>` (`--set epochs=3` == `--set base.epochs=3`). A `base` override
of a key that is also a space dimension fixes it: the dimension is dropped (a note says so).
"""

from __future__ import annotations

import copy
import datetime
import itertools
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Union

from .config import Config, all_keys, apply_overrides, build_config, flatten, load_yaml, parse_sets, validate
from .errors import UserError

SPACE_DIR = Path(__file__).resolve().parent / "search_spaces"
DEFAULT_SPACE = SPACE_DIR / "default.yaml"
RESULTS_FILE = "results.csv"
SPACE_FILE = "search_space.yaml"
BEST_FILE = "best_config.yaml"

SECTIONS = ("base", "space", "search", "resources", "tracking", "run")
KINDS = ("uniform", "loguniform", "int", "choice", "grid")
SEARCHERS = ("optuna", "random", "grid")
SCHEDULERS = ("asha", "fifo")
METRICS = ("test_top1", "test_top5", "test_loss", "train_top1", "train_loss", "convergence_epoch",
           "epochs_to_target")
SEARCH_DEFAULTS = {"searcher": "optuna", "scheduler": "asha", "num_samples": None, "max_concurrent": None,
                   "metric": "test_top1", "mode": "max", "grace_period": 1, "reduction_factor": 2, "seed": 0,
                   "startup_trials": None}
RESOURCE_DEFAULTS = {"cpu": 1, "gpu": 0}
TRACKING_DEFAULTS = {"enabled": True, "uri": None, "experiment": "tune-hardbatch", "log_checkpoint": False}
RUN_DEFAULTS = {"storage": None, "name": None, "max_failures": 1}
STATUSES = ("finished", "stopped_early", "diverged", "failed")
GATE_KEYS = ("trim.schedule", "stepwise.fractions")  # sampled first: other trim.*/stepwise.* depend on them
_MAX_CORNERS = 20000  # corner combinations validated exhaustively up to this many


# ---------------------------------------------------------------------------------------------------
# The space


@dataclass(frozen=True)
class Dim:
    """One search dimension. `values` hold choice/grid values encoded for Optuna (lists -> JSON strings)."""

    key: str
    kind: str  # uniform | loguniform | int | choice | grid
    low: Any = None
    high: Any = None
    step: Optional[int] = None
    values: tuple = ()

    def describe(self) -> str:
        if self.kind in ("choice", "grid"):
            return f"{self.kind} {json.dumps([decode(v) for v in self.values])}"
        args = [self.low, self.high] + ([self.step] if self.step not in (None, 1) else [])
        return f"{self.kind} {args}"

    def corners(self) -> list:
        """Decoded values that bound what this dimension can produce (every value of a choice/grid)."""
        if self.kind in ("choice", "grid"):
            return [decode(v) for v in self.values]
        if self.kind == "int":
            top = self.low + (self.high - self.low) // (self.step or 1) * (self.step or 1)
            return [self.low, top]
        return [self.low, self.high]

    def suggest(self, trial):
        """Optuna define-by-run sampling (the value stays encoded)."""
        if self.kind == "uniform":
            return trial.suggest_float(self.key, self.low, self.high)
        if self.kind == "loguniform":
            return trial.suggest_float(self.key, self.low, self.high, log=True)
        if self.kind == "int":
            return trial.suggest_int(self.key, self.low, self.high, step=self.step or 1)
        return trial.suggest_categorical(self.key, list(self.values))

    def domain(self):
        """The Ray Tune domain (random / grid searchers)."""
        from ray import tune

        if self.kind == "uniform":
            return tune.uniform(self.low, self.high)
        if self.kind == "loguniform":
            return tune.loguniform(self.low, self.high)
        if self.kind == "int":
            return tune.qrandint(self.low, self.high, self.step or 1)
        if self.kind == "choice":
            return tune.choice(list(self.values))
        return tune.grid_search(list(self.values))


@dataclass
class SearchSpec:
    """A validated search space: everything `run_search` needs, nothing started."""

    question: str  # the leading comment of the file ("" for a dict)
    source: str  # file path or "<dict>"
    raw: dict  # the resolved mapping (after --set), as saved to search_space.yaml
    base_flat: dict  # dotted training-config keys given in `base` (paths made absolute)
    base_cfg: Config
    dims: list[Dim]
    search: dict
    resources: dict
    tracking: dict
    run: dict
    budget: float  # largest epoch-equivalent budget of any trial: ASHA's max_t
    num_trials: int  # trials the search will run
    notes: list[str] = field(default_factory=list)

    @property
    def dim_keys(self) -> list[str]:
        return [d.key for d in self.dims]


def encode(value):
    """Optuna categoricals hold scalars only: an explicit list becomes its JSON string ('[0.5, 1.0]')."""
    if isinstance(value, (list, tuple)):
        return json.dumps(list(value))
    return value


def decode(value):
    """Inverse of `encode` (named step-wise plans never start with '[')."""
    if isinstance(value, str) and value.startswith("["):
        return json.loads(value)
    return value


def is_active(key: str, values: dict, base: Config) -> bool:
    """Whether a parameter matters given the (decoded) values sampled so far and the base config."""
    if key.startswith("trim.") and key != "trim.schedule":
        schedule = values.get("trim.schedule", base.trim.schedule)
        if schedule == "none":
            return False
        if key == "trim.step_at":
            return schedule == "step"
        if key == "trim.p_start":
            return schedule != "constant"
        return True
    if key.startswith("stepwise.") and key != "stepwise.fractions":
        return values.get("stepwise.fractions", base.stepwise.fractions) is not None
    return True


def active_params(params: dict, dims: Iterable[Dim], base: Config) -> dict:
    """The dimensions of a trial's params that apply (in dimension order), values still encoded."""
    out, decoded = {}, {}
    for dim in sampling_order(dims):
        if dim.key in params and is_active(dim.key, decoded, base):
            out[dim.key] = params[dim.key]
            decoded[dim.key] = decode(params[dim.key])
    return {d.key: out[d.key] for d in dims if d.key in out}


def trial_config(base: Union[Config, dict], params: dict, dims: Iterable[Dim]) -> Config:
    """The training config of one trial: `apply_overrides(base, active params)`, then `validate`."""
    base_cfg = build_config(None, base) if isinstance(base, dict) else base
    active = active_params(params, dims, base_cfg)
    cfg = apply_overrides(base_cfg, {k: decode(v) for k, v in active.items()})
    validate(cfg)
    return cfg


class DefineByRun:
    """Optuna define-by-run space: samples gate keys first and a strategy's parameters only when it is on.

    A picklable object (Ray saves the searcher for --resume). The strategy label is not part of a trial's
    config (Ray restores unresolved `sample_from` values as placeholders): `StrategyLabel` derives it.
    """

    def __init__(self, dims: list[Dim], base_flat: dict):
        self.dims = dims
        self.base_flat = base_flat
        self._base = None

    def __getstate__(self):
        return {"dims": self.dims, "base_flat": self.base_flat}

    def __setstate__(self, state):
        self.__init__(state["dims"], state["base_flat"])

    def base(self) -> Config:
        if self._base is None:
            self._base = build_config(None, self.base_flat)
        return self._base

    def __call__(self, trial) -> dict:
        base, decoded, params = self.base(), {}, {}
        for dim in sampling_order(self.dims):
            if is_active(dim.key, decoded, base):
                params[dim.key] = dim.suggest(trial)
                decoded[dim.key] = decode(params[dim.key])
        return None


class StrategyLabel:
    """`train.strategy_name` of a trial's sampled params (the live view, results, report)."""

    def __init__(self, dims: list[Dim], base_flat: dict):
        self.dims = dims
        self.base_flat = base_flat

    def __call__(self, config: dict) -> str:
        from .train import strategy_name

        params = {d.key: config[d.key] for d in self.dims if d.key in config}
        try:
            return strategy_name(trial_config(self.base_flat, params, self.dims))
        except UserError:
            return "invalid"


# ---------------------------------------------------------------------------------------------------
# Loading and validation (no Ray)


def load_space(space: Union[str, os.PathLike, dict, None] = None, sets: Optional[list[str] | dict] = None
               ) -> SearchSpec:
    """Read (path), copy (dict) or take the default space; apply `--set` overrides; validate it all."""
    if space is None:
        space = DEFAULT_SPACE
    if isinstance(space, dict):
        raw, question, source = copy.deepcopy(space), "", "<dict>"
    else:
        path = Path(space)
        raw = load_yaml(str(path))
        raw = {} if raw is None else raw
        question, source = _leading_comment(path), str(path)
        if not isinstance(raw, dict):
            raise UserError(str(path), f"must be a YAML mapping with sections {', '.join(SECTIONS)}, "
                            f"got {type(raw).__name__}")
    notes: list[str] = []
    if sets:
        raw = apply_space_sets(raw, sets, notes)
    spec = validate_space(raw, question, source)
    spec.notes[:0] = notes
    return spec


def _leading_comment(path: Path) -> str:
    lines = []
    try:
        for line in path.read_text().splitlines():
            if not line.startswith("#"):
                break
            lines.append(line.lstrip("#").strip())
    except OSError:
        pass
    return " ".join(x for x in lines if x)


def apply_space_sets(raw: dict, sets: Union[list[str], dict], notes: Optional[list[str]] = None) -> dict:
    """Apply `--set` overrides to a raw space mapping (see the module docstring for the rules)."""
    raw = copy.deepcopy(raw)
    items = parse_sets(sets) if isinstance(sets, list) else dict(sets)
    for key, value in items.items():
        section, _, rest = key.partition(".")
        if section not in SECTIONS:
            section, rest = "base", key
        if section in ("base", "space", "search", "resources", "tracking", "run") and not rest:
            raise UserError(key, f"--set needs a key inside the section, e.g. {section}.<key>=value")
        target = raw.get(section)
        if target is None:
            target = raw[section] = {}
        if not isinstance(target, dict):
            raise UserError(section, f"must be a mapping, got {type(target).__name__}")
        if section == "base":
            flat = flatten(target)
            flat[rest] = value
            raw["base"] = flat
            dims = raw.get("space")
            if isinstance(dims, dict) and rest in dims:
                del dims[rest]
                if notes is not None:
                    notes.append(f"--set {key} fixes {rest}: dimension removed from the space")
        elif section == "space":
            if value is None:
                target.pop(rest, None)
            else:
                target[rest] = value
        else:
            if "." in rest:
                raise UserError(key, f"unknown key; allowed: {', '.join(_section_keys(section))}")
            target[rest] = value
    return raw


def _section_keys(section: str) -> list[str]:
    return list({"search": SEARCH_DEFAULTS, "resources": RESOURCE_DEFAULTS, "tracking": TRACKING_DEFAULTS,
                 "run": RUN_DEFAULTS}[section])


def validate_space(raw: dict, question: str = "", source: str = "<dict>") -> SearchSpec:
    """Check every section of a raw space mapping; return the validated `SearchSpec`."""
    unknown = [k for k in raw if k not in SECTIONS]
    if unknown:
        raise UserError(str(unknown[0]), f"unknown section; allowed: {', '.join(SECTIONS)}")
    base_flat, base_cfg = _validate_base(raw.get("base"))
    search = _section(raw, "search", SEARCH_DEFAULTS)
    resources = _section(raw, "resources", RESOURCE_DEFAULTS)
    tracking = _section(raw, "tracking", TRACKING_DEFAULTS)
    run = _section(raw, "run", RUN_DEFAULTS)
    _validate_search(search)
    _validate_resources(resources)
    _validate_tracking(tracking)
    _validate_run(run)
    dims = _parse_dims(raw.get("space"), search["searcher"])
    budget = _validate_corners(base_cfg, dims)
    if search["scheduler"] == "asha" and search["grace_period"] > budget:
        raise UserError("search.grace_period", f"got {search['grace_period']}, more than the budget of "
                        f"{budget:g} epoch-equivalents; allowed: 0 < grace_period <= {budget:g}")
    if search["searcher"] == "grid":
        num_trials = math.prod(len(d.values) for d in dims)
    else:
        grid = math.prod(len(d.values) for d in dims if d.kind == "grid")
        num_trials = grid * search["num_samples"]
    resolved = {"base": _nest(base_flat), "space": {d.key: _dim_raw(d) for d in dims}, "search": search,
                "resources": resources, "tracking": tracking, "run": run}
    return SearchSpec(question=question, source=source, raw=resolved, base_flat=base_flat, base_cfg=base_cfg,
                      dims=dims, search=search, resources=resources, tracking=tracking, run=run,
                      budget=budget, num_trials=num_trials)


def _rekey(exc: UserError, prefix: str) -> UserError:
    message = str(exc)
    if exc.key and message.startswith(f"{exc.key}: "):
        message = message[len(exc.key) + 2:]
    return UserError(f"{prefix}{exc.key}" if exc.key else prefix.rstrip("."), message)


def _validate_base(base) -> tuple[dict, Config]:
    if base is None:
        base = {}
    if not isinstance(base, dict):
        raise UserError("base", f"must be a mapping of training-config keys, got {type(base).__name__}")
    flat = flatten(base)
    for key in ("data.root", "data.cache_dir"):  # trials change directory: make paths absolute
        if isinstance(flat.get(key), str):
            flat[key] = os.path.abspath(os.path.expanduser(flat[key]))
    try:
        cfg = build_config(None, flat)
    except UserError as exc:
        raise _rekey(exc, "base.") from None
    return flat, cfg


def _nest(flat: dict) -> dict:
    out: dict = {}
    for key, value in flat.items():
        section, _, name = key.rpartition(".")
        (out.setdefault(section, {}) if section else out)[name] = list(value) if isinstance(value, tuple) \
            else value
    return out


def _section(raw: dict, name: str, defaults: dict) -> dict:
    given = raw.get(name)
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise UserError(name, f"must be a mapping with keys {', '.join(defaults)}, got {type(given).__name__}")
    unknown = [k for k in given if k not in defaults]
    if unknown:
        raise UserError(f"{name}.{unknown[0]}", f"unknown key; allowed: {', '.join(defaults)}")
    return {**defaults, **given}


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _validate_search(s: dict) -> None:
    if s["searcher"] not in SEARCHERS:
        raise UserError("search.searcher", f"got {s['searcher']!r}; allowed: {', '.join(SEARCHERS)}")
    if s["scheduler"] not in SCHEDULERS:
        raise UserError("search.scheduler", f"got {s['scheduler']!r}; allowed: {', '.join(SCHEDULERS)}")
    if s["num_samples"] is None:  # default: 12 samples; the grid searcher runs each point once
        s["num_samples"] = 1 if s["searcher"] == "grid" else 12
    if not _is_int(s["num_samples"]) or s["num_samples"] < 1:
        raise UserError("search.num_samples", f"got {s['num_samples']!r}; allowed: an integer >= 1")
    if s["searcher"] == "grid" and s["num_samples"] != 1:
        raise UserError("search.num_samples", f"got {s['num_samples']}; the grid searcher runs each point "
                        "once (allowed: 1, or leave it out); repeat with a grid over seed")
    if s["max_concurrent"] is not None and (not _is_int(s["max_concurrent"]) or s["max_concurrent"] < 1):
        raise UserError("search.max_concurrent", f"got {s['max_concurrent']!r}; allowed: an integer >= 1, "
                        "or null (as many as the resources fit)")
    if s["metric"] not in METRICS:
        raise UserError("search.metric", f"got {s['metric']!r}; allowed: {', '.join(METRICS)}")
    if s["mode"] not in ("max", "min"):
        raise UserError("search.mode", f"got {s['mode']!r}; allowed: max, min")
    if not _is_num(s["grace_period"]) or s["grace_period"] <= 0:
        raise UserError("search.grace_period", f"got {s['grace_period']!r}; allowed: a number of "
                        "epoch-equivalents > 0")
    if not _is_num(s["reduction_factor"]) or s["reduction_factor"] <= 1:
        raise UserError("search.reduction_factor", f"got {s['reduction_factor']!r}; allowed: a number > 1")
    if s["seed"] is not None and (not _is_int(s["seed"]) or s["seed"] < 0):
        raise UserError("search.seed", f"got {s['seed']!r}; allowed: an integer >= 0, or null")
    if s["startup_trials"] is not None and (not _is_int(s["startup_trials"]) or s["startup_trials"] < 0):
        raise UserError("search.startup_trials", f"got {s['startup_trials']!r}; allowed: an integer >= 0 "
                        "(Optuna TPE's random start-up trials), or null (a third of num_samples, 2..10)")


def _validate_resources(r: dict) -> None:
    if not _is_num(r["cpu"]) or r["cpu"] <= 0:
        raise UserError("resources.cpu", f"got {r['cpu']!r}; allowed: a number of CPUs per trial > 0")
    gpu = r["gpu"]
    if not _is_num(gpu) or gpu < 0 or (gpu > 1 and not float(gpu).is_integer()):
        raise UserError("resources.gpu", f"got {gpu!r}; allowed: 0, a fraction of one GPU (0 < gpu <= 1) "
                        "or a whole number of GPUs per trial")


def _validate_tracking(t: dict) -> None:
    if t["uri"] is not None and (not isinstance(t["uri"], str) or not t["uri"].strip()):
        raise UserError("tracking.uri", f"got {t['uri']!r}; allowed: an MLflow tracking URI string, or null")
    if not isinstance(t["experiment"], str) or not t["experiment"].strip():
        raise UserError("tracking.experiment", f"got {t['experiment']!r}; allowed: a non-empty string")
    for key in ("enabled", "log_checkpoint"):
        if not isinstance(t[key], bool):
            raise UserError(f"tracking.{key}", f"got {t[key]!r}; allowed: true, false")
    if t["uri"] is not None:
        from .tracking import resolve_uri

        resolve_uri(t["uri"], ".")  # the scheme is checked here


def _validate_run(r: dict) -> None:
    if r["storage"] is not None and (not isinstance(r["storage"], str) or not r["storage"].strip()):
        raise UserError("run.storage", f"got {r['storage']!r}; allowed: a directory path, or null")
    name = r["name"]
    if name is not None:
        if not isinstance(name, str) or not name.strip() or "/" in name or name in (".", ".."):
            raise UserError("run.name", f"got {name!r}; allowed: a directory name (no '/'), or null")
    if not _is_int(r["max_failures"]) or r["max_failures"] < -1:
        raise UserError("run.max_failures", f"got {r['max_failures']!r}; allowed: an integer >= 0 "
                        "(retries of a crashed trial), or -1 (retry forever)")


def _dim_raw(d: Dim):
    if d.kind in ("choice", "grid"):
        return {d.kind: [decode(v) for v in d.values]}
    return {d.kind: [d.low, d.high] + ([d.step] if d.step is not None else [])}


def _parse_dims(space, searcher: str) -> list[Dim]:
    if space is None:
        space = {}
    if not isinstance(space, dict):
        raise UserError("space", f"must be a mapping of dotted config keys to distributions, "
                        f"got {type(space).__name__}")
    probe = Config()
    config_keys = all_keys()
    dims = []
    usage = "one of {uniform: [low, high]}, {loguniform: [low, high]}, {int: [low, high(, step)]}, " \
            "{choice: [values]}, {grid: [values]}"
    for key, spec in space.items():
        where = f"space.{key}"
        if key not in config_keys:
            raise UserError(where, f"unknown config key; allowed: {', '.join(config_keys)}")
        if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in KINDS:
            raise UserError(where, f"got {spec!r}; allowed: {usage}")
        kind, args = next(iter(spec.items()))
        if kind in ("choice", "grid"):
            dims.append(_parse_values(key, kind, args))
        else:
            dims.append(_parse_range(key, kind, args))
        dim = dims[-1]
        if searcher == "optuna" and kind == "grid":
            raise UserError(where, "grid needs search.searcher random or grid (Optuna samples: use choice, "
                            "or searcher grid for a full table); allowed with optuna: uniform, loguniform, "
                            "int, choice")
        if searcher == "grid" and kind not in ("grid", "choice"):
            raise UserError(where, f"the grid searcher needs grid or choice values, got {dim.describe()}; "
                            "allowed: grid, choice (or search.searcher optuna/random)")
        if kind in ("uniform", "loguniform"):
            try:  # the field must take non-integer floats
                apply_overrides(probe, {key: 0.5})
            except UserError:
                raise UserError(where, f"{kind} gives non-integer values but {key} takes "
                                f"{_type_name(probe, key)}; allowed here: int, choice, grid") from None
        elif kind == "int":
            try:
                apply_overrides(probe, {key: 1})
            except UserError:
                raise UserError(where, f"int gives integers but {key} takes {_type_name(probe, key)}; "
                                "allowed here: choice, grid") from None
    return dims


def sampling_order(dims: Iterable[Dim]) -> list[Dim]:
    """Gate keys (trim.schedule, stepwise.fractions) first: the others' activity depends on them."""
    dims = list(dims)
    return [d for d in dims if d.key in GATE_KEYS] + [d for d in dims if d.key not in GATE_KEYS]


def _type_name(cfg, key) -> str:
    import typing

    section, _, name = key.rpartition(".")
    owner = type(getattr(cfg, section)) if section else type(cfg)
    hint = typing.get_type_hints(owner).get(name)
    return str(hint).replace("typing.", "") if hint is not None else "?"


def _parse_range(key: str, kind: str, args) -> Dim:
    where = f"space.{key}"
    shape = "[low, high] or [low, high, step] (integers)" if kind == "int" else "[low, high]"
    if not isinstance(args, list) or len(args) not in ((2, 3) if kind == "int" else (2,)):
        raise UserError(where, f"{kind} got {args!r}; allowed: {shape}")
    if kind == "int":
        if not all(_is_int(a) for a in args):
            raise UserError(where, f"int got {args!r}; allowed: integers {shape}")
        low, high = args[0], args[1]
        step = args[2] if len(args) == 3 else None
        if step is not None and step < 1:
            raise UserError(where, f"int step got {step}; allowed: an integer >= 1")
        if low >= high:
            raise UserError(where, f"int low {low} >= high {high}; allowed: low < high")
        if step is not None and (high - low) % step:
            raise UserError(where, f"int [{low}, {high}, {step}]: high - low must be a multiple of the step; "
                            f"allowed e.g. high = {low + (high - low) // step * step}")
        return Dim(key, kind, low, high, step)
    if not all(_is_num(a) for a in args):
        raise UserError(where, f"{kind} got {args!r}; allowed: two finite numbers {shape}")
    low, high = float(args[0]), float(args[1])
    if low >= high:
        raise UserError(where, f"{kind} low {args[0]} >= high {args[1]}; allowed: low < high "
                        "(use choice for a single value)")
    if kind == "loguniform" and low <= 0:
        raise UserError(where, f"loguniform low {args[0]} <= 0; allowed: 0 < low < high")
    return Dim(key, kind, low, high)


def _parse_values(key: str, kind: str, args) -> Dim:
    where = f"space.{key}"
    if not isinstance(args, list) or not args:
        raise UserError(where, f"{kind} got {args!r}; allowed: a non-empty list of values")
    values = []
    for v in args:
        if isinstance(v, dict) or (isinstance(v, list) and any(isinstance(x, (dict, list)) for x in v)):
            raise UserError(where, f"{kind} value {v!r}; allowed: null, numbers, strings, booleans or "
                            "flat lists (e.g. step-wise fractions)")
        values.append(encode(v))
    seen = set()
    for v in values:
        marker = (type(v).__name__ if v is not None else "null", v)
        if marker in seen or (v in seen):
            raise UserError(where, f"{kind} lists {decode(v)!r} twice; allowed: distinct values")
        seen.add(marker)
        seen.add(v)
    return Dim(key, kind, values=tuple(values))


def _validate_corners(base: Config, dims: list[Dim]) -> float:
    """Build and validate every combination of corner values; return the largest epoch-equivalent budget.

    Inactive parameters are skipped exactly as in a trial. Above `_MAX_CORNERS` combinations, each
    dimension's corners are checked with the other dimensions at their first corner.
    """
    dims = sampling_order(dims)
    corners = [d.corners() for d in dims]
    total = math.prod(len(c) for c in corners)
    if total <= _MAX_CORNERS:
        combos: Iterable = itertools.product(*corners)
    else:
        first = [c[0] for c in corners]
        combos = (tuple(first[:i] + [v] + first[i + 1:]) for i, c in enumerate(corners) for v in c)
    budget, seen = float(base.epochs), set()
    for combo in combos:
        values: dict = {}
        for dim, value in zip(dims, combo):
            if is_active(dim.key, values, base):
                values[dim.key] = value
        marker = json.dumps(values, sort_keys=True, default=str)
        if marker in seen:
            continue
        seen.add(marker)
        try:
            cfg = apply_overrides(base, values)
            validate(cfg)
        except UserError as exc:
            raise _corner_error(exc, values, dims) from None
        budget = max(budget, _plan_budget(cfg))
    return budget


def _corner_error(exc: UserError, values: dict, dims: list[Dim]) -> UserError:
    message = str(exc)[len(exc.key) + 2:] if exc.key and str(exc).startswith(f"{exc.key}: ") else str(exc)
    by_key = {d.key: d for d in dims}
    others = {k: v for k, v in values.items() if k != exc.key}
    context = f" (with {', '.join(f'{k}={v!r}' for k, v in others.items())})" if others else ""
    if exc.key in by_key:
        dim = by_key[exc.key]
        return UserError(f"space.{exc.key}", f"{dim.describe()} allows {values[exc.key]!r}{context}: {message}")
    return UserError(exc.key, f"{message}; with space values {', '.join(f'{k}={v!r}' for k, v in values.items())}"
                     if values else message)


def _plan_budget(cfg: Config) -> float:
    from .strategies.stepwise import make_plan

    return float(sum(st.epochs * st.fraction for st in make_plan(cfg)))


# ---------------------------------------------------------------------------------------------------
# Resources (no Ray for a local run)


def local_resources() -> tuple[float, float]:
    """(CPUs, GPUs) of this machine."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    try:
        import torch

        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:
        gpus = 0
    return float(cpus), float(gpus)


def check_resources(spec: SearchSpec, cpus: float, gpus: float, where: str = "this machine",
                    total_cpus: Optional[float] = None, total_gpus: Optional[float] = None) -> int:
    """Reject what cannot run; return the number of concurrent trials (search.max_concurrent or what fits).

    `cpus`/`gpus`: what the largest node has (a trial runs on one node); `total_*`: the whole cluster.
    """
    cpu, gpu = spec.resources["cpu"], spec.resources["gpu"]
    total_cpus = cpus if total_cpus is None else total_cpus
    total_gpus = gpus if total_gpus is None else total_gpus
    if cpu > cpus:
        raise UserError("resources.cpu", f"{cpu:g} CPUs per trial but {where} has {cpus:g}; "
                        f"allowed: 0 < cpu <= {cpus:g}")
    if gpu > 0 and gpus == 0:
        raise UserError("resources.gpu", f"{gpu:g} GPU per trial but {where} has 0 GPUs; allowed: 0")
    if gpu > gpus:
        raise UserError("resources.gpu", f"{gpu:g} GPUs per trial but {where} has {gpus:g}; "
                        f"allowed: 0 <= gpu <= {gpus:g}")
    if spec.base_cfg.device == "cuda" and gpu == 0:
        raise UserError("resources.gpu", "base.device is cuda but resources.gpu is 0: a trial sees no GPU; "
                        "allowed: a GPU share > 0, or base.device auto/cpu")
    fits = int(total_cpus / cpu + 1e-9)
    if gpu > 0:
        fits = min(fits, int(total_gpus / gpu + 1e-9))
    fits = max(1, fits)
    return spec.search["max_concurrent"] or fits


def preflight(spec: SearchSpec) -> None:
    """Local checks of the data location (a cluster's workers may see other paths)."""
    d = spec.base_cfg.data
    if d.name == "imagefolder" and d.root is not None and not os.path.isdir(d.root):
        raise UserError("base.data.root", f"{d.root} does not exist; point it at the image folder "
                        "(ROOT/train/<class>/*, ROOT/test/<class>/*) with --set base.data.root=ROOT")


# ---------------------------------------------------------------------------------------------------
# Where a search runs


def resolve_run(space, sets, resume, out) -> tuple[SearchSpec, str, str, bool]:
    """The spec, absolute storage directory, run name and whether this resumes an existing search."""
    if resume is None:
        spec = load_space(space, sets)
        storage = abs_storage(out or spec.run["storage"] or "tune_results", "--out" if out else "run.storage")
        name = spec.run["name"] or default_name(spec)
        if (Path(storage) / name).exists():
            raise UserError("run.name", f"{Path(storage) / name} already exists; continue it with "
                            f"--resume {name}, or choose another run.name")
        check_writable(storage, "--out" if out else "run.storage")
        spec.run["storage"], spec.run["name"] = storage, name
        spec.raw["run"] = dict(spec.run)
        return spec, storage, name, False
    given = space is not None or bool(sets)
    new = load_space(space, sets) if given else None
    storage = abs_storage(out or (new.run["storage"] if new else None) or "tune_results", "--out" if out else "run.storage")
    exp_dir = Path(storage) / resume
    saved_path = exp_dir / SPACE_FILE
    if not saved_path.is_file():
        found = sorted(p.parent.name for p in Path(storage).glob(f"*/{SPACE_FILE}")) \
            if Path(storage).is_dir() else []
        raise UserError("--resume", f"no search named {resume!r} under {storage}"
                        + (f"; found: {', '.join(found)}" if found else ""))
    check_writable(str(exp_dir), "--resume")
    saved = load_space(str(saved_path))
    saved.question = (new.question if new else "") or saved.question
    if new is not None:
        for section in ("base", "space", "search", "resources"):
            if new.raw[section] != saved.raw[section]:
                raise UserError("--resume", f"the space's {section} differs from the one {resume!r} was started "
                                "with; resume with the same SPACE and --set, or with neither")
    return saved, storage, resume, True


def abs_storage(path: str, key: str = "run.storage") -> str:
    if "://" in path:
        raise UserError(key, f"got {path!r}: remote storage URIs are not supported; allowed: a directory "
                        "path (on a multi-node cluster, one that every node mounts, e.g. NFS)")
    return os.path.abspath(os.path.expanduser(path))


MIN_FREE_BYTES = 16 * 1024**2  # a search writes checkpoints, results and (by default) an MLflow sqlite file


def check_writable(storage: str, key: str) -> None:
    """A full disk or a path that cannot be written is one error line before anything starts, not a crash
    of every trial: the storage directory (or, until it exists, its nearest existing parent, so nothing
    is created here) must be a directory where a small file can be written and synced, with at least
    `MIN_FREE_BYTES` free."""
    probe = Path(storage)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise UserError(key, f"cannot create {storage}: {probe} is a file, not a directory; allowed: a "
                        "directory path that can be written")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tune-hardbatch-write-test-", dir=probe)
        try:
            os.write(fd, b"\0" * 4096)
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(tmp)
        st = os.statvfs(probe)
    except OSError as exc:
        raise UserError(key, f"cannot write to {probe} ({exc.strerror or exc}); allowed: a writable directory "
                        "with free space") from None
    free = st.f_bavail * st.f_frsize
    if free < MIN_FREE_BYTES:
        raise UserError(key, f"only {free / 1024**2:.1f} MiB free on the file system of {probe}; a search needs "
                        f"at least {MIN_FREE_BYTES // 1024**2} MiB (checkpoints, results, MLflow): free some "
                        "space or choose another directory")


def default_name(spec: SearchSpec) -> str:
    stem = Path(spec.source).stem if spec.source != "<dict>" else "search"
    return f"{stem}-{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}"
