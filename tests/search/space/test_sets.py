"""`--set` overrides of a space (`space.sets`): what a key means in each section, fixing a searched key drops its
dimension, unknown keys are refused. No Ray here."""

from __future__ import annotations

import pytest

from tune_hardbatch.errors import UserError
from tune_hardbatch.search import space as SP


def test_set_rules():
    spec = SP.load_space(None, ["epochs=3", "arms.trim=null", "search.num_samples=8", "base.optim.lr=0.05",
                               "run.name=x", "resources.cpu=2", "space.optim.momentum={uniform: [0.5, 0.9]}",
                               "arms.partition={fixed: {hard_batch.delta: 1.0}}"])
    assert spec.base_cfg.epochs == 3 and spec.search.num_samples == 8 and spec.run.name == "x"
    assert spec.resources.cpu == 2 and spec.search.trials_per_arm == 2  # 8 trials over 4 arms
    assert "optim.lr" not in spec.dim_keys and spec.base_cfg.optim.lr == 0.05  # fixing a key drops its dim
    assert any("optim.lr" in note for note in spec.notes)
    assert "trim.p_end" not in spec.dim_keys and "optim.momentum" in spec.dim_keys  # arms.trim=null drops the arm
    assert [a.name for a in spec.arms] == ["plain", "delta<1", "splits", "partition"]
    with pytest.raises(UserError, match=r"^search\.nope: unknown key"):
        SP.load_space(None, ["search.nope=1"])
    with pytest.raises(UserError, match=r"^base\.optim\.lr"):
        SP.load_space(None, ["optim.lr=-1"])
