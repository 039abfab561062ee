"""Declared arms (`space.arms`): the section checked key by key, the arms' trial configs, the union of their
dimensions, and the trial count (`search.trials_per_arm` each). No Ray here."""

from __future__ import annotations

import pytest
import yaml
from search_helpers import BASE

from tune_hardbatch.errors import UserError
from tune_hardbatch.search import space as SP
from tune_hardbatch.search.space.arms import ARM_KEY, TrialLabel, arm_of, arm_summary

ARMS = {"plain": {}, "delta=1": {"fixed": {"hard_batch.delta": 1.0}},
        "delta<1": {"space": {"hard_batch.delta": {"choice": [0.5, 0.3]}}},
        "trim": {"fixed": {"trim.schedule": "linear"}, "space": {"trim.p_end": {"uniform": [0.3, 0.8]}}},
        "splits": {"fixed": {"stepwise.fractions": "A-O"}}}


def arms_space(arms=None, **search) -> dict:
    return {"base": dict(BASE, epochs=4), "space": {"optim.lr": {"loguniform": [0.01, 0.3]}},
            "arms": ARMS if arms is None else arms, "search": {"trials_per_arm": 3, **search}}


def test_arms_give_trials_per_arm_each_and_their_own_dimensions():
    spec = SP.validate_space(arms_space())
    assert [a.name for a in spec.arms] == list(ARMS)
    assert spec.num_trials == 15 and spec.search.num_samples == 15 and spec.search.trials_per_arm == 3
    trim = spec.arms[3]
    assert [d.key for d in trim.dims] == ["optim.lr", "trim.p_end"]  # the shared dimension first, searched alike
    assert trim.base_flat(spec.base_flat)["trim.schedule"] == "linear"
    by_key = {d.key: d for d in spec.dims}  # one dimension per key any arm may carry
    assert by_key["hard_batch.delta"].kind == "choice" and set(by_key["hard_batch.delta"].values) == {1.0, 0.5, 0.3}
    assert by_key["trim.p_end"].kind == "uniform"
    assert spec.budget == 4.0


def test_an_arms_trial_config_is_its_fixed_part_and_its_draws():
    spec = SP.validate_space(arms_space())
    trim = spec.arms[3]
    config = trim.config({"optim.lr": 0.1, "trim.p_end": 0.5})
    assert config == {ARM_KEY: "trim", "trim.schedule": "linear", "optim.lr": 0.1, "trim.p_end": 0.5}
    label, family, active = spec.describe(config)
    assert label == "trim-linear" and family == "trim" and active == {"optim.lr": 0.1, "trim.schedule": "linear", "trim.p_end": 0.5}
    cfg = SP.trial_config(spec.base_flat, config, spec.dims)
    assert cfg.trim.schedule == "linear" and cfg.trim.p_end == 0.5 and cfg.hard_batch.delta is None
    splits = spec.arms[4].config({"optim.lr": 0.1})
    assert SP.trial_config(spec.base_flat, splits, spec.dims).stepwise.fractions == "A-O"
    assert arm_of(config) == "trim" and arm_of({"optim.lr": 0.1}) is None
    label = TrialLabel(SP.StrategyLabel(spec.dims, spec.base_flat))
    assert label(config) == "trim" and label({"hard_batch.delta": 0.5}) == "delta=0.5"
    assert arm_summary(trim) == "fixed trim.schedule=linear; searches trim.p_end uniform [0.3, 0.8]"
    assert arm_summary(spec.arms[0]) == "the base config"


def test_a_random_controls_fixed_part_is_completed_by_the_arms_own_dimensions():
    """`hard_batch.select: random` alone is invalid (no delta); the arm that searches delta makes it valid,
    and an arm that does not is refused on its fixed part, naming it."""
    control = {"fixed": {"hard_batch.select": "random"}, "space": {"hard_batch.delta": {"choice": [0.5, 0.3]}}}
    spec = SP.validate_space(arms_space({"plain": {}, "delta<1-random": control}))
    cfg = SP.trial_config(spec.base_flat, spec.arms[1].config({"optim.lr": 0.1, "hard_batch.delta": 0.3}), spec.dims)
    assert (cfg.hard_batch.select, cfg.hard_batch.delta) == ("random", 0.3)
    bad = {"fixed": {"hard_batch.select": "random"}, "space": {"trim.p_end": {"uniform": [0.3, 0.8]}}}
    with pytest.raises(UserError) as err:
        SP.validate_space(arms_space({"plain": {}, "x": bad}))
    assert err.value.key == "arms.x.fixed.hard_batch.select" and "needs hard_batch.delta" in str(err.value)


def test_the_resolved_space_round_trips(tmp_path):
    """search_space.yaml (what --resume and the report load) gives the same arms and trial count."""
    spec = SP.validate_space(arms_space())
    path = tmp_path / "search_space.yaml"
    path.write_text(yaml.safe_dump(spec.raw, sort_keys=False))
    again = SP.load_space(path)
    assert again.arms == spec.arms and again.num_trials == spec.num_trials and again.dims == spec.dims


@pytest.mark.parametrize("change, key, allowed", [
    ({"arms": {"a": {"fixed": {"optim.lr": 0.1}}}}, "arms.a.optim.lr", "keys the shared space does not search"),
    ({"arms": {"a": {"fixed": {"hard_batch.delat": 0.5}}}}, "arms.a.fixed.hard_batch.delat", "did you mean"),
    ({"arms": {"a": {"fixd": {}}}}, "arms.a.fixd", "allowed keys: fixed, space"),
    ({"arms": {"a": {"fixed": {"hard_batch.delta": 0.0}}}}, "arms.a.fixed.hard_batch.delta", ""),
    ({"arms": {"a": {"space": {"hard_batch.delta": {"uniform": [0, 1]}}}}}, "space.hard_batch.delta", "allows 0"),
    ({"arms": {"a": {"fixed": {"hard_batch.delta": 0.5}, "space": {"hard_batch.delta": {"choice": [0.5]}}}}},
     "arms.a.space.hard_batch.delta", "one of the two"),
    ({"arms": {"a": {"space": {"seed": {"grid": [0, 1]}}}}, "search": {"searcher": "random", "trials_per_arm": 2}},
     "arms.a.space.seed", "allowed: uniform, loguniform, int, choice"),
    ({"arms": {}}, "arms", "at least one"),
    ({"arms": {"a/b": {}}}, "arms", "without '/'"),
    ({"search": {"searcher": "grid"}, "space": {"optim.lr": {"choice": [0.1]}}}, "arms", "searcher optuna or random"),
    ({"search": {"trials_per_arm": 3, "num_samples": 7}}, "search.num_samples", "a multiple of 5"),
    ({"search": {"trials_per_arm": 0}}, "search.trials_per_arm", "an integer >= 1"),
])
def test_bad_arms_are_one_line_naming_the_key(change, key, allowed):
    raw = {**arms_space(), **change}
    with pytest.raises(UserError) as err:
        SP.validate_space(raw)
    assert err.value.key == key and allowed in str(err.value)
    assert "\n" not in str(err.value)


def test_num_samples_is_the_total_shared_equally():
    assert SP.validate_space(arms_space(num_samples=10)).search.trials_per_arm == 2  # the total wins
    assert SP.validate_space(arms_space(num_samples=15)).num_trials == 15


def test_trials_per_arm_needs_arms_and_defaults_to_six():
    with pytest.raises(UserError, match=r"^search\.trials_per_arm: needs an arms section"):
        SP.validate_space({"base": BASE, "search": {"trials_per_arm": 2}})
    spec = SP.validate_space({**arms_space(), "search": {}})
    assert spec.search.trials_per_arm == 6 and spec.num_trials == 30
