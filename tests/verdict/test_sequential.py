"""The confirmation's group-sequential decisions: the boundaries spend what the spending function says, and
whole simulated campaigns (the same `replay` the confirmation runs) keep their error rates: the familywise
error of "helps"/"hurts" under no difference, of "equivalent" at a difference of exactly the resolution, and
the coverage of the intervals the decisions rest on. Each simulation allows its Monte Carlo error (3 se)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tune_hardbatch.verdict.sequential import (
    UNRESOLVED,
    Comparison,
    Design,
    detectable,
    error_term,
    judge,
    needed,
    plan_looks,
    replay,
    spent,
    z_bounds,
)

ARMS = ["base", "a0", "a1", "a2", "a3", "c0", "c1"]
FAMILY = [Comparison(f"a{i} vs base", f"a{i}", "base") for i in range(4)] + \
    [Comparison(f"a{i} vs c{i}", f"a{i}", f"c{i}", kind="random control") for i in range(2)]
DESIGN = Design(tuple(range(12)), (4, 8, 12), 0.05)


def campaign(rng, shift: dict, sd: float = 1.0, design: Design = DESIGN, comparisons=FAMILY) -> dict:
    values = {a: {s: float(x) + shift.get(a, 0.0) for s, x in enumerate(rng.normal(0, sd, len(design.seeds)))}
              for a in ARMS}
    return replay(design, values, comparisons, len(design.looks))


def mc_limit(rate: float, n: int) -> float:
    return rate + 3 * math.sqrt(rate * (1 - rate) / n)


@pytest.mark.parametrize("fractions", [(1 / 3, 2 / 3, 1.0), (0.25, 0.5, 0.75, 1.0), (0.4, 1.0)])
def test_boundaries_spend_the_spending_function_look_by_look(fractions):
    c = np.array(z_bounds(fractions, 0.05))
    rng = np.random.default_rng(0)
    n = 400_000
    z = (rng.standard_normal((n, len(fractions))) * np.sqrt(np.diff((0.0, *fractions)))).cumsum(1) / np.sqrt(fractions)
    for k, t in enumerate(fractions):
        crossed = (np.abs(z[:, : k + 1]) >= c[: k + 1]).any(1).mean()
        assert abs(crossed - spent(t, 0.05)) < 4 * math.sqrt(spent(t, 0.05) / n) + 1e-4
    assert c[0] > c[-1] > 1.96  # O'Brien-Fleming: strict early, near the fixed test at the end


def test_one_look_is_the_fixed_two_sided_test():
    assert z_bounds((1.0,), 0.05)[0] == pytest.approx(1.959964, abs=1e-5)


def test_looks_are_evenly_spaced_and_distinct():
    assert plan_looks(12, 3) == (4, 8, 12)
    assert plan_looks(5, 3) == (2, 4, 5)
    assert plan_looks(3, 5) == (2, 3)


def test_familywise_error_under_no_difference_stays_at_alpha():
    rng, n = np.random.default_rng(1), 2000
    wrong = sum(any(d["decision"] in ("helps", "hurts") for d in campaign(rng, {}).values()) for _ in range(n))
    assert wrong / n <= mc_limit(0.05, n)


def test_familywise_error_of_equivalence_at_the_margin_stays_at_alpha():
    design = Design(DESIGN.seeds, DESIGN.looks, 0.05, margin=1.0)
    family = FAMILY[:4]  # each arm exactly the margin above the baseline: "equivalent" is always wrong
    rng, n = np.random.default_rng(2), 2000
    shift = {f"a{i}": 1.0 for i in range(4)}
    wrong = sum(any(d["decision"] == "equivalent" for d in campaign(rng, shift, 0.8, design, family).values())
                for _ in range(n))
    assert wrong / n <= mc_limit(0.05, n)


def test_decisions_intervals_cover_the_truth_at_their_stated_rate():
    design = Design(DESIGN.seeds, DESIGN.looks, 0.05, margin=1.5)
    rng, n, truth = np.random.default_rng(3), 2000, 0.6
    one = [Comparison("a0 vs base", "a0", "base")]
    covered, levels = 0, []
    for _ in range(n):
        d = campaign(rng, {"a0": truth}, 1.0, design, one)["a0 vs base"]
        covered += d["low"] <= truth <= d["high"]
        levels.append(d["level"])
    assert covered / n >= np.mean(levels) - 3 * math.sqrt(0.05 * 0.95 / n)


def test_a_clear_difference_stops_at_the_first_look_and_a_small_one_runs_on():
    rng = np.random.default_rng(4)
    decided = campaign(rng, {"a0": 4.0, "a1": -4.0}, 0.5)
    assert decided["a0 vs base"]["decision"] == "helps" and decided["a0 vs base"]["look"] == 1
    assert decided["a1 vs base"]["decision"] == "hurts" and decided["a1 vs base"]["look"] == 1
    values = {a: {s: float(x) for s, x in enumerate(rng.normal(0, 1, 12))} for a in ARMS}
    first = judge(DESIGN, {a: {s: v for s, v in by.items() if s < 4} for a, by in values.items()}, FAMILY, 1, {})
    assert not first  # nothing decided from noise at the first look ...
    assert set(needed(FAMILY, first)) == set(ARMS)  # ... so every arm trains the next look
    last = replay(DESIGN, values, FAMILY, 3)
    unresolved = [d for d in last.values() if d["decision"] == UNRESOLVED]
    assert unresolved and all(d["look"] == 3 and math.isfinite(detectable(d)) for d in unresolved)


def test_an_arm_whose_comparisons_are_decided_is_not_trained_again():
    decided = {"a0 vs base": {"decision": "helps"}, "a0 vs c0": {"decision": "hurts"}}
    arms = needed(FAMILY, decided)
    assert "a0" not in arms and "c0" not in arms and "base" in arms and "c1" in arms


def test_pooled_error_term_is_the_two_way_tables_residual():
    rng = np.random.default_rng(5)
    table = rng.normal(0, 1, (5, 6)) + np.arange(6)[None, :]  # arms x seeds, a seed effect
    values = {f"x{i}": {s: float(table[i, s]) for s in range(6)} for i in range(5)}
    comps = [Comparison(f"x{i} vs x0", f"x{i}", "x0") for i in range(1, 5)]
    resid = table - table.mean(1, keepdims=True) - table.mean(0, keepdims=True) + table.mean()
    e = error_term(values, comps)
    assert e["df"] == 4 * 5
    assert e["sd_pair"] == pytest.approx(math.sqrt(2 * (resid ** 2).sum() / 20))


def test_incompatible_variances_keep_each_comparisons_own_error_term():
    rng = np.random.default_rng(6)
    values = {"x0": {s: 0.0 for s in range(8)}, "x1": {s: float(v) for s, v in enumerate(rng.normal(0, 0.01, 8))},
              "x2": {s: float(v) for s, v in enumerate(rng.normal(0, 10, 8))}}
    comps = [Comparison("x1 vs x0", "x1", "x0"), Comparison("x2 vs x0", "x2", "x0")]
    assert not math.isfinite(error_term(values, comps)["sd_pair"])
    d = judge(Design(tuple(range(8)), (8,)), values, comps, 1, {})
    assert {x["error"] for x in d.values()} == {"own"} and {x["df"] for x in d.values()} == {7}
