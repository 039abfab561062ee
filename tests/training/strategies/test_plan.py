"""Step-wise plans (`strategies.plan`, pure arithmetic, no torch): named plans, the paper's default multipliers
and epochs, stage sizes, and the plan's config rules."""

import pytest

from tune_hardbatch.errors import UserError
from tune_hardbatch.training.config import Config, apply_overrides, build_config
from tune_hardbatch.training.strategies import plan as P
from tune_hardbatch.training.strategies.plan import (
    Stage,
    default_batch_multipliers,
    default_epochs,
    default_lr_multipliers,
    make_plan,
    resolve_fractions,
    stage_epoch_equivs,
    stage_sizes,
)


def test_named_plans_resolve_to_the_papers_fractions():
    assert resolve_fractions("A-B-C-D-O") == (0.2, 0.4, 0.6, 0.8, 1.0)
    assert resolve_fractions("A-C-O") == (0.2, 0.6, 1.0)
    assert resolve_fractions(None) == (1.0,)
    with pytest.raises(ValueError, match="unknown split 'X'"):
        resolve_fractions("A-X-O")


def test_paper_defaults_for_multipliers():
    assert default_batch_multipliers((0.2, 0.4, 0.6, 0.8, 1.0)) == (1, 2, 3, 4, 1)
    assert default_batch_multipliers((0.2, 0.6, 1.0)) == (1, 3, 1)
    assert default_lr_multipliers(5) == (1.0, 0.02, 0.02, 0.02, 1.0)
    assert default_lr_multipliers(2) == (1.0, 1.0)


def test_plan_from_config_and_default_epochs_give_equal_compute():
    cfg = build_config({"epochs": 9, "stepwise": {"fractions": "A-B-C-D-O"}})
    plan = make_plan(cfg)
    assert [st.epochs for st in plan] == [3] * 5  # 3 epochs x (0.2+0.4+0.6+0.8+1.0) = 9 epoch-equivalents
    explicit = build_config({"stepwise": {"fractions": [0.5, 1.0], "epochs": [2, 4],
                                          "batch_multipliers": [2, 1], "lr_multipliers": [0.5, 1.0]}})
    assert [(s.fraction, s.epochs, s.batch_multiplier, s.lr_multiplier) for s in make_plan(explicit)] == \
        [(0.5, 2, 2, 0.5), (1.0, 4, 1, 1.0)]
    single = make_plan(build_config({"epochs": 7}))
    assert len(single) == 1 and single[0].epochs == 7 and single[0].fraction == 1.0


# cases at 15 epochs: (plan, M, B, epoch-equivalents forwarded with equal epochs per stage, round(15 / sum(f)))
BUDGET_CASES = [("A-C-O", 50000, 512, 14.172), ("A-B-C-D-O", 1437, 64, 13.807), ("B-O", 50000, 512, 15.319)]


def forwarded(plan, num_train, batch) -> float:
    """Epoch-equivalents a plan forwards, from what the samplers do: floor(size / b) batches of b per epoch."""
    return sum(st.epochs * (size // (batch * st.batch_multiplier)) * batch * st.batch_multiplier
               for st, size in zip(plan, [int(st.fraction * num_train + 1e-9) for st in plan])) / num_train


@pytest.mark.parametrize("splits, m, b, equal_ee", BUDGET_CASES)
def test_default_epochs_match_the_budget_as_whole_epochs_allow(splits, m, b, equal_ee):
    cfg = build_config({"epochs": 15, "optim": {"batch_size": b}, "stepwise": {"fractions": splits}})
    equal = [max(1, round(15 / sum(resolve_fractions(splits))))] * len(resolve_fractions(splits))
    assert forwarded([st.__class__(st.index, st.fraction, e, st.batch_multiplier, st.lr_multiplier)
                      for st, e in zip(make_plan(cfg), equal)], m, b) == pytest.approx(equal_ee, abs=1e-3)
    plan = make_plan(cfg, m)
    plan_ee = forwarded(plan, m, b)
    assert abs(plan_ee - 15) < abs(equal_ee - 15) and abs(plan_ee - 15) < 0.1, (plan_ee, [st.epochs for st in plan])
    epochs = [st.epochs for st in plan]
    assert max(epochs) - min(epochs) <= 1  # near-equal
    # no other choice of e / e + 1 per stage comes closer
    import itertools


    e = min(epochs)
    best = min(abs(forwarded([st.__class__(st.index, st.fraction, e + x, st.batch_multiplier, 1.0)
                              for st, x in zip(plan, extra)], m, b) - 15)
               for extra in itertools.product((0, 1), repeat=len(plan)))
    assert abs(plan_ee - 15) == pytest.approx(best)


def test_default_epochs_ties_and_the_fraction_approximation():
    # fractions only (the search side): 15 / (0.2 + 0.6 + 1.0) = 8.33 -> 8 each (14.4), +1 on C gives 15.0
    assert default_epochs((0.2, 0.6, 1.0), 15) == (8, 9, 8)
    assert make_plan(build_config({"epochs": 15, "stepwise": {"fractions": "A-C-O"}}))[1].epochs == 9
    assert default_epochs((0.2, 0.4, 0.6, 0.8, 1.0), 9) == (3,) * 5  # exact: no extra epoch
    # ties: fewer extra epochs first (e + 1 everywhere == e + 1 with none extra), then later stages first
    assert default_epochs((0.5, 1.0), 3) == (2, 2) and default_epochs((0.5, 0.5, 1.0), 5) == (2, 2, 3)
    assert default_epochs((0.5, 0.5, 1.0), 4.5) == (2, 3, 2)
    assert default_epochs((0.5, 0.5), 1.5) == (1, 2)
    assert default_epochs((0.2, 1.0), 0.5) == (1, 1)  # at least one epoch per stage
    assert default_epochs((0.2, 1.0), 15, stage_ee=(0.0, 0.0)) == default_epochs((0.2, 1.0), 15)


def test_stage_epoch_equivs_count_whole_batches():
    cfg = build_config({"optim": {"batch_size": 64}, "stepwise": {"fractions": "A-B-C-D-O"}})
    assert stage_epoch_equivs(make_plan(cfg), 1437, 64) == pytest.approx(
        [256 / 1437, 512 / 1437, 768 / 1437, 1024 / 1437, 1408 / 1437])  # 4 batches of 64, 128, 192, 256; 22
    explicit = build_config({"stepwise": {"fractions": "A-O", "epochs": [3, 4]}})
    assert [st.epochs for st in make_plan(explicit, 1437)] == [3, 4]  # explicit epochs are kept


def test_plan_letters_ignore_case_and_spaces_and_explicit_fractions_become_floats():
    assert resolve_fractions(" a - c - o ") == (0.2, 0.6, 1.0)
    assert resolve_fractions("B-O") == (0.4, 1.0)
    out = resolve_fractions([0.5, 1])
    assert out == (0.5, 1.0) and all(isinstance(f, float) for f in out)
    with pytest.raises(ValueError, match="unknown split ''"):
        resolve_fractions("A--O")


@pytest.mark.parametrize("n, expected", [
    (1, (1.0,)),
    (3, (1.0, 1 / 30, 1.0)),  # 1 / (10 * 3) in the one middle stage
    (4, (1.0, 1 / 40, 1 / 40, 1.0)),
])
def test_lr_multipliers_are_1_first_and_last_and_1_over_10n_between(n, expected):
    assert default_lr_multipliers(n) == pytest.approx(expected)


@pytest.mark.parametrize("fractions, expected", [
    ((0.25, 0.5, 0.75, 1.0), (1, 2, 3, 1)),  # f_i / f_1 exactly
    ((0.3, 0.5, 1.0), (1, 2, 1)),  # 0.5 / 0.3 = 1.67 rounds to 2
    ((0.1, 1.0), (1, 1)),  # the last stage is 1 whatever its ratio (10 here)
    ((1.0,), (1,)),
])
def test_batch_multipliers_round_f_over_f1_and_end_at_1(fractions, expected):
    assert default_batch_multipliers(fractions) == expected


def test_stage_sizes_floor_f_times_m():
    plan = [Stage(0, 0.36, 1, 1, 1.0), Stage(1, 0.29, 1, 1, 1.0), Stage(2, 1.0, 1, 1, 1.0)]
    # 3.6 -> 3 (floor, not round); 0.29 * 10 = 2.9 -> 2; all of it
    assert stage_sizes(10, plan) == [3, 2, 10]
    # 0.29 * 100 is 28.999999999999996 in floating point: still 29 samples
    assert stage_sizes(100, plan) == [36, 29, 100]


@pytest.mark.parametrize("fractions", [(0.2, 0.4, 0.6, 0.8, 1.0), (0.2, 0.6, 1.0), (0.4, 1.0), (0.1, 0.3, 1.0)])
@pytest.mark.parametrize("total", [3, 7, 10, 15, 23, 50])
def test_default_epochs_forward_the_budget_to_within_half_an_epoch(fractions, total):
    """Each stage gets e or e + 1 epochs (e >= 1). Adding the extra epochs smallest stage first, the forwarded
    total rises from e * sum(f) to (e + 1) * sum(f) in steps of at most 1 (no fraction exceeds 1), so the best
    choice is within 0.5 of any budget of at least sum(f)."""
    epochs = default_epochs(fractions, total)
    assert len(epochs) == len(fractions) and min(epochs) >= 1 and max(epochs) - min(epochs) <= 1
    assert abs(sum(e * f for e, f in zip(epochs, fractions)) - total) <= 0.5 + 1e-9
    plan = make_plan(build_config({"epochs": total, "stepwise": {"fractions": list(fractions)}}))
    assert [st.epochs for st in plan] == list(epochs)  # the search side: fractions only, no training-set size


def test_make_plan_takes_given_multipliers_and_fills_the_rest_with_the_defaults():
    cfg = build_config({"epochs": 10, "stepwise": {"fractions": "A-C-O", "batch_multipliers": [1, 2, 1]}})
    plan = make_plan(cfg)
    assert [st.batch_multiplier for st in plan] == [1, 2, 1]
    assert [st.lr_multiplier for st in plan] == pytest.approx([1.0, 1 / 30, 1.0])
    assert [st.index for st in plan] == [0, 1, 2]


@pytest.mark.parametrize("values, key, fragment", [
    ({"stepwise.epochs": [1, 2]}, "stepwise.epochs", "needs stepwise.fractions"),
    ({"stepwise.lr_multipliers": [1.0]}, "stepwise.lr_multipliers", "needs stepwise.fractions"),
    ({"stepwise.fractions": "A-X-O"}, "stepwise.fractions", "unknown split 'X'"),
    ({"stepwise.fractions": [0.0, 1.0]}, "stepwise.fractions", "in (0, 1]"),
    ({"stepwise.fractions": [0.5, 1.5]}, "stepwise.fractions", "in (0, 1]"),
    ({"stepwise.fractions": [0.5, 0.4, 1.0]}, "stepwise.fractions", "strictly increase"),
    ({"stepwise.fractions": "A-A-O"}, "stepwise.fractions", "strictly increase"),
    ({"stepwise.fractions": [0.5, 0.8]}, "stepwise.fractions", "last fraction must be 1.0"),
    ({"stepwise.fractions": "A-O", "stepwise.epochs": [3]}, "stepwise.epochs", "has 1 entries but"),
])
def test_plan_rules_name_the_key(values, key, fragment):
    cfg = apply_overrides(Config(), values)  # not validated yet
    with pytest.raises(UserError) as info:
        P.validate(cfg)
    assert info.value.key == key and fragment in str(info.value)


def test_valid_plans_pass_the_rules():
    for values in ({}, {"stepwise.fractions": "O"}, {"stepwise.fractions": "A-O", "stepwise.epochs": [1, 1],
                                                       "stepwise.batch_multipliers": [1, 1],
                                                       "stepwise.lr_multipliers": [0.01, 1.0]}):
        P.validate(apply_overrides(Config(), values))


def test_a_compute_budget_is_one_stage_of_round_budget_m_over_b_steps():
    from tune_hardbatch.training.strategies.plan import budget_stage

    st = budget_stage(2.5, 1437, 64)  # 56 steps in epochs of 22: 3 epochs, the last one partial
    assert (st.steps, st.epochs, st.fraction, st.batch_multiplier, st.lr_multiplier) == (56, 3, 1.0, 1, 1.0)
    assert budget_stage(2.0, 1408, 64).epochs == 2  # exactly two epochs
    assert budget_stage(0.001, 1437, 64).steps == 1  # at least one step
    assert budget_stage(2.5, None, 64) == budget_stage(2.5, 0, 64) and budget_stage(2.5, None, 64).epochs == 3
