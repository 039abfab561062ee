"""A search-space YAML (or mapping) becomes a validated `SearchSpace`: every section checked, nothing started.

A search-space file (all sections optional; unknown keys are errors)::

    # first line(s): a comment saying what question this space answers
    base: {...}       # a training config: the keys of `tune-hardbatch train` (nested or dotted)
    space: {...}      # dotted config key -> exactly one distribution (`distributions.py`); with arms,
                      # the dimensions every arm searches alike
    arms: {...}       # optional: the arms compared, each its fixed part and own dimensions (`arms.py`)
    search: {...}     # searcher, scheduler, metric, ... (`sections.py`)
    confirm: {...}    # seeds, max_arms: the confirmation of the best arm of each strategy family
    resources: {...}  # cpu, gpu per trial
    tracking: {...}   # MLflow
    run: {...}        # storage, name, max_failures

A key in both `base` and `space` is searched (the trial's value wins). `data.root` and `data.cache_dir`
are made absolute (trials change directory).
"""

from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional, Union

from ...errors import UserError
from ...files import parse_yaml, read_text
from ...training.config import Config, base_config, build_config, closest, flatten
from ...training.datasets import DATASETS
from ..rungs import first_rung, first_useful, milestones
from .arms import Arm, parse_arms, union_dims
from .corners import validate_corners
from .dims import Dim, StrategyLabel, active_params
from .distributions import dim_raw, parse_dims
from .schema import DEFAULT_SPACE, SECTIONS, TEST_METRICS, VAL_METRICS
from .sections import (
    ConfirmSection,
    ResourcesSection,
    RunSection,
    SearchSection,
    TrackingSection,
    as_dict,
    pair_names,
    parse_section,
)
from .sets import apply_space_sets


@dataclass
class SearchSpace:
    """A validated search space: everything `run_search` needs, nothing started."""

    question: str  # the leading comment of the file ("" for a dict)
    source: str  # file path or "<dict>"
    raw: dict  # the resolved mapping (after --set), as saved to search_space.yaml
    base_flat: dict  # dotted training-config keys given in `base` (paths made absolute)
    base_cfg: Config
    dims: list[Dim]
    search: SearchSection
    confirm: ConfirmSection
    resources: ResourcesSection
    tracking: TrackingSection
    run: RunSection
    budget: float  # largest epoch-equivalent budget of any trial
    num_trials: int  # trials the search will run
    corners: list = field(default_factory=list)  # (active space values, Config) of every corner
    notes: list[str] = field(default_factory=list)
    arms: list[Arm] = field(default_factory=list)  # declared arms (each tuned alike); [] for a joint search
    rungs: tuple = ()  # synchronous halving's rung milestones (epoch-equivalents of compute); () with fifo
    useful_from: float = 0.0  # where values start to predict the end (`search.rungs.first_useful`)

    @property
    def group_sizes(self) -> dict[str, int]:
        """Trials per group the early stopper compares within: each declared arm, or the whole search."""
        if self.arms:
            return {a.name: self.search.trials_per_arm for a in self.arms}
        return {"all": self.num_trials}

    @property
    def dim_keys(self) -> list[str]:
        return [d.key for d in self.dims]

    def describe(self, params: dict) -> tuple[str, str, dict]:
        """(strategy label, strategy family, the params that apply, encoded) of a trial's sampled params;
        ("invalid", "invalid", its params) when they make no valid config."""
        params = {k: params[k] for k in self.dim_keys if k in params}
        label, family = StrategyLabel(self.dims, self.base_flat).both(params)
        return label, family, params if label == "invalid" else active_params(params, self.dims, self.base_cfg)

    @property
    def self_confirming(self) -> bool:
        """A grid over every arm with several seeds selects nothing: its own trials give the verdict."""
        return seed_grid(self.search, self.dims)

    @property
    def confirms(self) -> bool:
        """Whether a confirmation phase follows the search."""
        return self.confirm.seeds > 0 and not self.self_confirming


def load_space(space: Union[str, os.PathLike, dict, None] = None, sets: Optional[list[str] | dict] = None
               ) -> SearchSpace:
    """Read (path), copy (dict) or take the default space; apply `--set` overrides; validate it all."""
    if space is None:
        space = DEFAULT_SPACE
    if isinstance(space, dict):
        raw, question, source = copy.deepcopy(space), "", "<dict>"
    else:
        path = Path(space)
        text = read_text(path)  # read once: its YAML, and its leading comment (the question it answers)
        raw = parse_yaml(text, str(path))
        raw = {} if raw is None else raw
        question, source = _leading_comment(text), str(path)
        if not isinstance(raw, dict):
            raise UserError(str(path), f"must be a YAML mapping with sections {', '.join(SECTIONS)}, "
                            f"got {type(raw).__name__}")
    notes: list[str] = []
    if sets:
        raw = apply_space_sets(raw, sets, notes)
    search_space = validate_space(raw, question, source)
    search_space.notes[:0] = notes
    return search_space


def _leading_comment(text: str) -> str:
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    return " ".join(x for x in lines if x)


def validate_space(raw: dict, question: str = "", source: str = "<dict>") -> SearchSpace:
    """Check every section of a raw space mapping; return the validated `SearchSpace`."""
    unknown = [k for k in raw if k not in SECTIONS]
    if unknown:
        hint = closest(str(unknown[0]), SECTIONS)
        raise UserError(str(unknown[0]), f"unknown section; {f'did you mean {hint}? ' if hint else ''}"
                        f"allowed: {', '.join(SECTIONS)}")
    base_flat, base_cfg = _validate_base(raw.get("base"))
    search, confirm, resources, tracking, run = (parse_section(raw, name) for name in
                                                 ("search", "confirm", "resources", "tracking", "run"))
    shared = parse_dims(raw.get("space"), search.searcher)
    arms = parse_arms(raw.get("arms"), shared, search.searcher)
    search = _check_trials_per_arm(search, arms, raw.get("search") or {})
    _check_primary(confirm, arms)
    if arms:
        budget, corners = _arm_corners(base_flat, arms)
        dims = union_dims(shared, arms)
        num_trials = search.trials_per_arm * len(arms)
    else:
        dims = shared
        budget, corners = validate_corners(base_cfg, dims)
        num_trials = _num_trials(search, dims)
    useful = max((first_useful(cfg) for _, cfg in corners), default=0.0)
    _check_search_against_space(search, budget, corners, first_rung(search.grace_period, useful))
    _check_test_metric(search, dims)
    rungs = milestones(first_rung(search.grace_period, useful), search.reduction_factor, budget) \
        if search.scheduler == "halving" else ()
    notes = _grace_notes(search, useful, rungs)
    resolved = {"base": _nest(base_flat), "space": {d.key: dim_raw(d) for d in shared}}
    if arms:
        resolved["arms"] = {a.name: _arm_raw(a) for a in arms}
    resolved.update({"search": as_dict(search), "confirm": as_dict(confirm), "resources": as_dict(resources),
                     "tracking": as_dict(tracking), "run": as_dict(run)})
    return SearchSpace(question=question, source=source, raw=resolved, base_flat=base_flat, base_cfg=base_cfg,
                      dims=dims, search=search, confirm=confirm, resources=resources, tracking=tracking, run=run,
                      budget=budget, num_trials=num_trials, corners=corners, notes=notes, arms=arms,
                      rungs=rungs, useful_from=useful)


def seed_grid(search: SearchSection, dims: list[Dim]) -> bool:
    """The grid searcher over a seed dimension of 2 or more values: every arm with several seeds."""
    seeds = [d for d in dims if d.key == "seed"]
    return search.searcher == "grid" and bool(seeds) and len(seeds[0].values) >= 2


def _num_trials(search: SearchSection, dims: list[Dim]) -> int:
    if search.searcher == "grid":
        return math.prod(len(d.values) for d in dims)
    return math.prod(len(d.values) for d in dims if d.kind == "grid") * search.num_samples


def _check_trials_per_arm(search: SearchSection, arms: list[Arm], given: dict) -> SearchSection:
    """With arms: trials_per_arm (default 6) sets the trial count; a num_samples given (e.g. `--set
    search.num_samples=8` to shorten a search) is the total, shared equally, so a multiple of the arms.
    Without arms: trials_per_arm is refused."""
    if not arms:
        if search.trials_per_arm is not None:
            raise UserError("search.trials_per_arm", "needs an arms section (the arms to give that many trials "
                            "each); allowed: null, or declare arms")
        return search
    per_arm = 6 if search.trials_per_arm is None else search.trials_per_arm
    total = given.get("num_samples")
    if total is not None and total != per_arm * len(arms):
        if total % len(arms):
            raise UserError("search.num_samples", f"got {total}; the {len(arms)} arms get the same number of trials "
                            f"each; allowed: a multiple of {len(arms)}, or set search.trials_per_arm")
        per_arm = total // len(arms)
    return replace(search, trials_per_arm=per_arm, num_samples=per_arm * len(arms))


def _check_primary(confirm: ConfirmSection, arms: list[Arm]) -> None:
    """With declared arms, `confirm.primary` names comparisons of declared arms (a budget-matched run,
    `plain@C`, is named after the search: it is allowed on the right)."""
    if not arms:  # a joint search's families are known only after it: `comparisons` notes unknown names
        return
    names = {a.name for a in arms}
    for pair in confirm.primary or []:
        left, right = pair_names(pair)
        unknown = [x for x in (left, right) if x not in names and not (x == right and x.startswith("plain@"))]
        if unknown:
            raise UserError("confirm.primary", f"got {pair!r}: no arm named {unknown[0]!r}; allowed: 'ARM vs OTHER' "
                            f"of the arms {', '.join(sorted(names))}")


def _arm_corners(base_flat: dict, arms: list[Arm]) -> tuple[float, list]:
    """Every arm's corners validated (its base: the search's with its fixed part); the largest budget."""
    budget, corners = 0.0, []
    for arm in arms:
        flat = arm.base_flat(base_flat)
        try:
            # the fixed part may need the arm's own dimensions (a random control fixes hard_batch.select and
            # searches delta): its corners decide; when they fail, the fixed part's own error is the one to show
            arm_budget, arm_corners = validate_corners(base_config(flat), list(arm.dims))
        except UserError as exc:
            try:
                build_config(None, flat)
            except UserError as fixed:
                raise _rekey(fixed, f"arms.{arm.name}.fixed.") from None
            raise exc from None
        budget = max(budget, arm_budget)
        corners += [({**arm.fixed_values, **values}, cfg) for values, cfg in arm_corners]
    return budget, corners


def _arm_raw(arm: Arm) -> dict:
    out: dict = {}
    if arm.fixed:
        out["fixed"] = arm.fixed_values
    if arm.own:
        out["space"] = {d.key: dim_raw(d) for d in arm.own}
    return out


def _check_test_metric(search: SearchSection, dims: list[Dim]) -> None:
    """A test metric may only be the search's metric where nothing is chosen by it: a seed grid."""
    if search.metric not in TEST_METRICS:
        return
    if not seed_grid(search, dims) or search.scheduler != "fifo":
        raise UserError("search.allow_test_metric", f"lets {search.metric} be the metric only of a search that "
                        "selects nothing: searcher grid, scheduler fifo and a seed grid of 2 or more values (the "
                        "verdict is its own trials); here the searcher or scheduler would choose on the test set; "
                        "allowed: a validation metric (val_top1, val_top5, val_loss)")


def _check_search_against_space(search: SearchSection, budget: float, corners: list, first: float) -> None:
    """What the search section asks of the trials must be possible in every corner of the space (`first`:
    the first rung)."""
    if search.scheduler == "halving" and search.grace_period is not None and search.grace_period > budget:
        raise UserError("search.grace_period", f"got {search.grace_period}, more than the budget of "
                        f"{budget:g} epoch-equivalents; allowed: 0 < grace_period <= {budget:g}")
    configs = [cfg for _, cfg in corners]
    if search.metric in VAL_METRICS:
        blind = [c for c in configs if not has_validation(c.data)]
        if blind:
            raise UserError("search.metric", f"{search.metric} needs validation data, which "
                            f"{blind[0].data.name} has not here; set base.data.val_fraction (e.g. 0.1: a stratified "
                            "hold-out of the training set) or give the image folder a val/ beside test/")
    if search.metric == "epochs_to_target" and any(c.target_top1 is None for c in configs):
        raise UserError("search.metric", "epochs_to_target is NaN for every trial without a target: set "
                        "base.target_top1 (a test top-1 in %), or choose another metric")
    patience = max(c.convergence.patience for c in configs)
    if search.metric == "convergence_epoch" and search.scheduler == "halving" and first < patience + 1:
        raise UserError("search.grace_period", f"got {search.grace_period} (the first rung at {first:g}): "
                        f"convergence_epoch is NaN until convergence.patience ({patience}) reports after it, so the "
                        "rungs would compare NaNs; "
                        f"allowed: grace_period >= {patience + 1}, or search.scheduler fifo")


def has_validation(data) -> bool:
    """A held-out fraction, or an image folder with its own val/ beside test/ (when the root is visible here;
    a root only worker nodes see is trusted: if it has no val/ there, the trials report NaN validation
    metrics and end failed, each with its reason)."""
    if data.val_fraction > 0:
        return True
    if DATASETS[data.name].source != "folder" or not data.root:
        return False
    if not os.path.isdir(data.root):
        return True  # a root only the workers see: trusted here
    return os.path.isdir(os.path.join(data.root, "val")) and os.path.isdir(os.path.join(data.root, "test"))


def _grace_notes(search: SearchSection, useful: float, rungs: tuple) -> list[str]:
    """Where the rungs fall when the grace period was moved past where values start to predict the end
    (`rungs.first_useful`), or when none fits below the budget."""
    if search.scheduler != "halving":
        return []
    if not rungs:
        return [f"no rung fits between the first useful point ({useful:.3g} epoch-equivalents: step-wise stages, "
                "the learning rate's high phase) and the budget: no trial is stopped early"]
    if search.grace_period is not None and useful > search.grace_period:
        return [f"search.grace_period {search.grace_period:g} moved to {rungs[0]:.3g} epoch-equivalents: values "
                "taken before a step-wise plan's last stage, or while the learning rate is above half its peak, "
                "do not predict the end"]
    return []


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
    flat = flatten(base, where="base.")
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
