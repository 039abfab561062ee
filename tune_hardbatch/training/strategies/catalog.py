"""The built-in strategies' declarations (torch-free): each one's config section, rules and registration.

Adding a strategy inside the package is its implementation module (pure functions and a `base.Strategy`)
plus its section and `Declaration` here, listed in `BUILTIN`; `registry` derives the rest. The order of
`BUILTIN` is the order of a label's parts ('delta=0.5+trim-linear') and of the hooks' composition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

from ...errors import UserError
from ..ranges import Range
from ..schedules import TRIM_SCHEDULES
from . import plan
from .declaration import Declaration


@dataclass(frozen=True)
class HardBatchConfig:
    delta: Optional[float] = None  # None: reshuffled SGD; 1.0: fixed partition; <1: hardest fraction
    select: str = "hardest"  # hardest | random: the random control trains k batches drawn uniformly


@dataclass(frozen=True)
class TrimConfig:
    schedule: str = "none"  # none | constant | linear | cosine | step
    p_start: float = 1.0  # fraction of each batch kept at the first epoch (Fassold's default)
    p_end: float = 0.2  # fraction kept at the last epoch (and throughout for `constant`)
    step_at: float = 0.5  # step schedule: training progress at which p drops from p_start to p_end
    select: str = "largest"  # largest | random: the random control averages r losses drawn uniformly


@dataclass(frozen=True)
class StepwiseConfig:
    fractions: Union[str, tuple[float, ...], None] = None  # a named plan ("A-B-C-D-O") or fractions
    epochs: Optional[tuple[int, ...]] = None  # None: equal per stage, total compute ~= `epochs`
    batch_multipliers: Optional[tuple[int, ...]] = None  # None: f_i / f_1 rounded, 1 in the last stage
    lr_multipliers: Optional[tuple[float, ...]] = None  # None: 1 first and last, 1/(10 n) between


@dataclass(frozen=True)
class SelectiveBackpropConfig:
    keep: Optional[float] = None  # fraction of each batch back-propagated; None or 1: off (Composer: 0.5)
    start: float = 0.5  # training progress (epochs done / E) from which it is active: Composer's default
    end: float = 0.9  # ... and until which: the last 10% train on whole batches, as in Composer
    interrupt: int = 2  # every interrupt-th step of an epoch trains the whole batch (0: never): Composer's


@dataclass(frozen=True)
class InfoBatchConfig:
    prune_ratio: Optional[float] = None  # share of the below-mean-score samples pruned per epoch; None: off
    anneal: float = 0.875  # epochs e <= anneal x E prune, later ones train on all data: the paper's default


def _random(select: str) -> str:
    return "-random" if select == "random" else ""


def _hard_batch(cfg) -> None:
    if cfg.hard_batch.select == "random" and cfg.hard_batch.delta is None:
        raise UserError("hard_batch.select", "random needs hard_batch.delta (the fraction of batches drawn); "
                        "allowed with delta null: hardest")


def _trim(cfg) -> None:
    t = cfg.trim
    if t.schedule in ("linear", "cosine", "step") and t.p_end > t.p_start:
        raise UserError("trim.p_end", f"got {t.p_end} > trim.p_start {t.p_start}; the {t.schedule} "
                        "schedule decreases p (keep fewer samples later): p_end <= p_start")
    if t.select == "random" and t.schedule == "none":
        raise UserError("trim.select", "random needs a trim.schedule (the fraction p drawn); "
                        "allowed with trim.schedule none: largest")


def _trim_applies(name: str, t) -> bool:
    """trim.* only with a schedule; p_start not for `constant` (p_end throughout), step_at only for `step`."""
    if t.schedule == "none":
        return False
    return (name != "step_at" or t.schedule == "step") and (name != "p_start" or t.schedule != "constant")


def _selective_backprop(cfg) -> None:
    s = cfg.selective_backprop
    if not s.start < s.end:
        raise UserError("selective_backprop.end", f"got {s.end}; allowed: selective_backprop.start < end <= 1")


def _infobatch(cfg) -> None:
    ib = cfg.infobatch
    if ib.prune_ratio is None:
        return
    if cfg.hard_batch.delta is not None:
        raise UserError("infobatch.prune_ratio", "InfoBatch chooses each epoch's samples itself; allowed with "
                        "hard_batch.delta set: null (hard-batch selection chooses the batches)")
    if cfg.stepwise.fractions is not None:
        raise UserError("infobatch.prune_ratio", "InfoBatch prunes epochs of the whole training set; allowed "
                        "with stepwise.fractions set: null (step-wise stages choose their own subsets)")


def _splits(s) -> str:
    f = s.fractions
    return "splits=" + (f if isinstance(f, str) else "-".join(f"{x:g}" for x in f))


def _stepwise_rules(cfg) -> None:
    plan.validate(cfg)


IMPL = "tune_hardbatch.training.strategies"
BUILTIN = (
    Declaration(
        "hard_batch", HardBatchConfig, gate="delta", off=(None,), impl=f"{IMPL}.hard_batch:HardBatch",
        label=lambda s: f"delta={s.delta:g}" + _random(s.select),
        family=lambda s: "delta=1" if s.delta == 1.0 and s.select != "random" else "delta" + _random(s.select),
        choices={"select": ("hardest", "random")}, rules=_hard_batch,
        ranges={"delta": Range(0, 1, low_open=True, null="reshuffled SGD", why="the share of batches trained")}, selects=("select",), samples=True,
        stream=100,  # + the stage: each stage's random control draws its own stream
        examples={"delta=1": {"hard_batch": {"delta": 1.0}}, "delta<1": {"hard_batch": {"delta": 0.5}},
                  "delta<1-random": {"hard_batch": {"delta": 0.5, "select": "random"}}}),
    Declaration(
        "trim", TrimConfig, gate="schedule", off=("none",), impl=f"{IMPL}.trim:Trim",
        label=lambda s: f"trim-{s.schedule}" + _random(s.select), family=lambda s: "trim" + _random(s.select),
        choices={"schedule": tuple(TRIM_SCHEDULES), "select": ("largest", "random")}, rules=_trim,
        ranges={"p_start": Range(0, 1, low_open=True, why="the share of each batch kept at the start"),
                "p_end": Range(0, 1, low_open=True, why="the share of each batch kept at the end"),
                "step_at": Range(0, 1, low_open=True, high_open=True, why="training progress of the step")},
        applies=_trim_applies, selects=("select",), sets_loss=True, stream=200,
        examples={"trim": {"trim": {"schedule": "linear", "p_end": 0.3}},
                  "trim-random": {"trim": {"schedule": "linear", "p_end": 0.3, "select": "random"}}}),
    Declaration(
        "stepwise", StepwiseConfig, gate="fractions", off=(None,), impl=f"{IMPL}.stepwise:Stepwise",
        label=_splits, family=lambda s: "splits", rules=_stepwise_rules,
        ranges={"fractions": Range(0, 1, low_open=True, null="off: one stage of the whole set",
                                   text="a named plan (A-B-C-D-O)", why="each stage's share of the training set"),
                "epochs": Range(1, integer=True, null="equal per stage", why="epochs of each stage"),
                "batch_multipliers": Range(1, integer=True, null="f_i / f_1 rounded, 1 in the last stage",
                                           why="each stage's batch size over optim.batch_size"),
                "lr_multipliers": Range(0, low_open=True, null="1 first and last, 1/(10 n) between",
                                        why="each stage's learning rate over optim.lr")},
        applies=lambda name, s: s.fractions is not None,
        examples={"splits": {"stepwise": {"fractions": "A-C-O"}}}),
    Declaration(
        "selective_backprop", SelectiveBackpropConfig, gate="keep", off=(None, 1.0),
        impl=f"{IMPL}.selective_backprop:SelectiveBackprop", label=lambda s: f"sb={s.keep:g}",
        family=lambda s: "sb", rules=_selective_backprop, saves_compute=True, stream=300,
        ranges={"keep": Range(0, 1, low_open=True, null="off", why="the share of each batch back-propagated"),
                "start": Range(0, 1, high_open=True, why="training progress from which it selects"),
                "end": Range(0, 1, low_open=True, why="training progress until which it selects"),
                "interrupt": Range(0, integer=True, why="every interrupt-th step trains the whole batch; 0: never")},
        examples={"sb": {"selective_backprop": {"keep": 0.5, "start": 0.0}}}),
    Declaration(
        "infobatch", InfoBatchConfig, gate="prune_ratio", off=(None,), impl=f"{IMPL}.infobatch:InfoBatch",
        label=lambda s: f"infobatch={s.prune_ratio:g}", family=lambda s: "infobatch", rules=_infobatch,
        ranges={"prune_ratio": Range(0, 1, high_open=True, null="off", why="the share of well-learnt samples pruned"),
                "anneal": Range(0, 1, low_open=True, why="training progress after which nothing is pruned")},
        saves_compute=True, samples=True, stream=400,
        examples={"infobatch": {"infobatch": {"prune_ratio": 0.5}}}),
)
