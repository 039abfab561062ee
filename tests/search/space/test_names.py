"""`space.names`: what MLflow, Ray and the file system can carry, checked before anything starts."""

from __future__ import annotations

import pytest
from search_helpers import BASE

from tune_hardbatch.errors import UserError
from tune_hardbatch.search import space as SP
from tune_hardbatch.search.space import names as N


def test_the_limits_are_mlflows():
    from mlflow.utils import validation as V

    assert N.MLFLOW_KEY_LIMIT == V.MAX_ENTITY_KEY_LENGTH
    assert N.MLFLOW_EXPERIMENT_LIMIT == V.MAX_EXPERIMENT_NAME_LENGTH
    longest = f"{'x' * N.ARM_NAME_LIMIT}.diff_vs_{'y' * N.ARM_NAME_LIMIT}_2_ci95"
    assert len(longest) <= V.MAX_ENTITY_KEY_LENGTH  # two arm names in one metric key, with a clash suffix


def space(arms):
    return {"base": BASE, "space": {"optim.lr": {"choice": [0.05, 0.1]}}, "arms": arms}


@pytest.mark.parametrize("arms, key, fragment", [
    ({"x" * 101: {}}, "arms", "101 characters; allowed: at most 100"),
    ({"a=1": {}, "a_1": {}}, "arms.a_1", "both spelt 'a_1'"),
    ({"a/b": {}}, "arms", "holds '/'"),
    ({'say "hi"': {}}, "arms", "holds '\"'"),
    ({" padded": {}}, "arms", "spaces at its ends"),
])
def test_arm_names_that_cannot_be_carried_are_refused(arms, key, fragment):
    with pytest.raises(UserError) as info:
        SP.validate_space(space({"plain": {}, **arms}))
    assert info.value.key == key and fragment in str(info.value)


def test_names_that_can_be_carried_are_taken_as_typed():
    spec = SP.validate_space(space({"plain": {}, "0.5": {}, "x" * 100: {}, "delta<1": {}, "delta=1": {}}))
    assert [a.name for a in spec.arms] == ["plain", "0.5", "x" * 100, "delta<1", "delta=1"]


def test_run_and_experiment_names_within_the_limits():
    with pytest.raises(UserError, match="run.name: got .* of 201 bytes"):
        SP.validate_space({"base": BASE, "run": {"name": "é" * 100 + "x"}})
    with pytest.raises(UserError, match="tracking.experiment: got .* of 501 characters"):
        SP.validate_space({"base": BASE, "tracking": {"experiment": "e" * 501}})
    SP.validate_space({"base": BASE, "run": {"name": "é" * 100}, "tracking": {"experiment": "e" * 500}})


def test_the_default_run_name_is_cut_to_fit_at_a_character():
    name = N.default_run_name("é" * 150, "20261207-031500")
    assert len(name.encode()) <= N.RUN_NAME_BYTES and name.endswith("-20261207-031500")
    assert name.startswith("é" * 92)  # 200 - 16 bytes left: 92 two-byte characters, none cut in half
    assert N.default_run_name("space", "s") == "space-s"


def test_slug_keeps_declared_arms_apart():
    assert N.slug("delta=0.5+trim-linear") == "delta_0.5_trim-linear"
    assert N.slug("delta<1") != N.slug("delta=1")
