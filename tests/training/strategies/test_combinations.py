"""Every pair and triple of declared strategies: trained together, or refused by a rule that says why.

The combinations come from the registry (`registry.declarations()`), not from a list here, so an installed
plug-in's strategy is combined with the built-ins too. Each strategy is turned on by each of its
declaration's `examples` in turn (hard-batch selection's fixed partition, hardest and random batches;
trimming's largest and random losses): the random controls change no rule, but they take code paths of their
own (their generators, a random draw from a batch another strategy has shrunk), and all of them together
still train in 12-25 s on 2 cores.

A combination either
- is refused by `build_config`: one `UserError` naming a key of one of the combined strategies, followed by a
  reason that says what is allowed. The refusal must be meant: `REFUSED` lists the combinations the rules
  exist to refuse (and any combination holding one of them is refused too), so a rule that starts refusing
  another combination of built-ins, or stops refusing one of these, fails here; or
- trains on a few digits and finishes with finite losses, compute accounting that adds up to the plan, and
  every combined strategy visibly at work in the reports (`EFFECTS`; a plug-in's: built and, if it owns the
  sampler, sampling). Two epochs, not one: trimming's p leaves p_start only after the first epoch, InfoBatch
  prunes nothing in its first (every score starts equal) and hard-batch selection's first round is the
  whole partition.
"""

from __future__ import annotations

import itertools
import math

import pytest

from tune_hardbatch.errors import UserError
from tune_hardbatch.training.config import build_config
from tune_hardbatch.training.loop import Trainer
from tune_hardbatch.training.strategies.base import ShuffledSampler
from tune_hardbatch.training.strategies.catalog import BUILTIN
from tune_hardbatch.training.strategies.plan import resolve_fractions
from tune_hardbatch.training.strategies.registry import declarations

# 96 digits in batches of 16: step-wise A-C-O still gets a full batch in every stage (19 samples for B = 16,
# 57 for its second stage's 3 x 16), and 2 x 6 steps keep a run near a fifth of a second
BASE = {"device": "cpu", "epochs": 2, "data": {"train_limit": 96, "test_limit": 50}, "optim": {"batch_size": 16}}

# the combinations the rules are meant to refuse (and every larger one holding one), each with the start of
# its refusal: both choose which samples an epoch trains
REFUSED = {
    frozenset({"hard_batch", "infobatch"}): "infobatch.prune_ratio: InfoBatch chooses each epoch's samples itself",
    frozenset({"stepwise", "infobatch"}): "infobatch.prune_ratio: InfoBatch prunes epochs of the whole training set",
}
BUILTIN_NAMES = {d.name for d in BUILTIN}


def combinations() -> list:
    """(declarations, their example mappings) for every pair and triple, each strategy by each example."""
    out = []
    for size in (2, 3):
        for decls in itertools.combinations(declarations(), size):
            for chosen in itertools.product(*(d.examples.items() for d in decls)):
                out.append(pytest.param(decls, [m for _, m in chosen], id="+".join(name for name, _ in chosen)))
    return out


def merged(*mappings: dict) -> dict:
    """The mappings' sections merged key by key (each example sets its own section)."""
    out: dict = {}
    for mapping in mappings:
        for key, value in mapping.items():
            out[key] = {**out.get(key, {}), **value} if isinstance(value, dict) else value
    return out


def planned_equiv(trainer) -> float:
    """Epoch-equivalents the plan loads when nothing is pruned or skipped: N full batches per stage epoch."""
    b = trainer.cfg.optim.batch_size
    return sum(s.num_batches * st.epochs * b * st.batch_multiplier
               for s, st in zip(trainer.samplers, trainer.plan)) / trainer.num_train


# What each built-in strategy changes in the reports of any run it is part of: (its section, trainer, reports).


def _hard_batch(section, trainer, reports):
    assert all(r["delta"] == section.delta for r in reports)


def _trim(section, trainer, reports):  # every schedule ends at p_end; the kept samples are fewer than trained
    last = reports[-1]
    assert last["p"] == pytest.approx(section.p_end) and last["p"] < 1
    assert last["samples_with_grad"] < last["samples_backward"]


def _stepwise(section, trainer, reports):  # reports from every stage, in order
    stages = [r["stage"] for r in reports]
    assert stages == sorted(stages) and set(stages) == set(range(1, len(resolve_fractions(section.fractions)) + 1))


def _selective_backprop(section, trainer, reports):  # scored samples that were not back-propagated
    assert reports[-1]["samples_backward"] < reports[-1]["samples_forward"]


def _infobatch(section, trainer, reports):  # a pruned epoch trains fewer than its N batches
    assert reports[-1]["backprops"] < trainer.planned_steps


EFFECTS = {"hard_batch": _hard_batch, "trim": _trim, "stepwise": _stepwise,
           "selective_backprop": _selective_backprop, "infobatch": _infobatch}


def test_every_built_in_strategy_has_its_effect_check_and_the_refusals_name_declared_strategies():
    assert set(EFFECTS) == BUILTIN_NAMES
    assert all(names <= BUILTIN_NAMES for names in REFUSED)


@pytest.mark.parametrize("decls, mappings", combinations())
def test_each_combination_trains_with_every_strategy_at_work_or_is_refused_with_a_reason(decls, mappings):
    names = {d.name for d in decls}
    expected = [reason for combo, reason in REFUSED.items() if combo <= names]
    try:
        cfg = build_config(merged(BASE, *mappings))
    except UserError as err:
        check_refusal(err, decls, expected)
        return
    assert not expected, f"REFUSED says {sorted(names)} is refused ({expected}), but build_config accepted it"
    trainer = Trainer(cfg)
    reports = list(trainer.run())
    assert trainer.pos.finished and not trainer.pos.diverged
    assert all(math.isfinite(r["train_loss"]) for r in reports)
    assert set(trainer.strategies.members) == names
    check_accounting(trainer, reports, saves=any(d.saves_compute for d in decls))
    if any(d.samples for d in decls):  # the sampler's owner samples every stage, not plain SGD
        assert not any(isinstance(s, ShuffledSampler) for s in trainer.samplers)
    for d in decls:
        if d.name in EFFECTS:
            EFFECTS[d.name](getattr(cfg, d.name), trainer, reports)


def check_refusal(err: UserError, decls, expected: list[str]) -> None:
    """One line naming a combined strategy's key, a reason saying what is allowed, and a refusal REFUSED
    expects (a plug-in's own rules may refuse a combination this file cannot know of)."""
    names = {d.name for d in decls}
    assert err.key in {k for d in decls for k in d.keys}, str(err)
    reason = str(err).removeprefix(f"{err.key}: ")
    assert reason and reason != str(err) and "allowed" in reason and "\n" not in reason, str(err)
    if not expected and not names <= BUILTIN_NAMES:
        return
    assert expected, f"{sorted(names)} is refused, but REFUSED does not list it: {err}"
    assert any(str(err).startswith(r) for r in expected), (str(err), expected)


def check_accounting(trainer, reports: list[dict], saves: bool) -> None:
    """Counts that add up in every report; all of the plan loaded unless a strategy saves compute."""
    m = trainer.num_train
    for r in reports:
        assert r["epoch_equiv"] == r["samples_forward"] / m
        assert r["compute_equiv"] == pytest.approx((r["samples_forward"] + 2 * r["samples_backward"]) / (3 * m))
        assert 0 < r["samples_with_grad"] <= r["samples_backward"] <= r["samples_forward"]
    for a, b in zip(reports, reports[1:]):
        assert all(a[k] < b[k] for k in ("backprops", "samples_forward", "samples_backward", "compute_equiv"))
    last = reports[-1]
    if saves:
        assert last["compute_equiv"] < planned_equiv(trainer)
    else:
        assert all(r["compute_equiv"] == r["epoch_equiv"] for r in reports)
        assert last["epoch_equiv"] == pytest.approx(planned_equiv(trainer))
        assert last["backprops"] == trainer.planned_steps
