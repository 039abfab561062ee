"""Strategies from outside the package: a throwaway strategy in a temporary module, named by `plugins`,
validates, is searched as an arm, trains, counts the compute its varying mask keeps (on the device, read
with the report) and resumes bit for bit, with no file of the package changed; a plug-in that cannot be
imported, names no strategy or takes a built-in's name is one `UserError`."""

import textwrap

import pytest
from search_helpers import BASE

from tune_hardbatch.errors import UserError
from tune_hardbatch.metrics import json_safe
from tune_hardbatch.search import space as SP
from tune_hardbatch.training.config import build_config, flat_dict
from tune_hardbatch.training.loop import Trainer
from tune_hardbatch.training.strategies import registry
from tune_hardbatch.training.strategies.labels import strategy_family, strategy_keys, strategy_name

MODULE = '''
from dataclasses import dataclass
from typing import Optional

import torch

from tune_hardbatch.errors import UserError
from tune_hardbatch.training.strategies.base import Strategy
from tune_hardbatch.training.strategies.declaration import Declaration


@dataclass(frozen=True)
class AboveConfig:
    factor: Optional[float] = None


class Above(Strategy):
    """Keeps the samples whose loss is above factor x the batch mean: a count only the device knows."""

    def __init__(self, cfg, context=None):
        self.factor = cfg.above.factor

    def reduce(self, terms):
        mask = terms.detach() > self.factor * terms.detach().mean()
        kept = mask.sum()
        return (terms * mask).sum() / kept.clamp(min=1), kept


def _rules(cfg):
    if cfg.above.factor is not None and not cfg.above.factor > 0:
        raise UserError("above.factor", f"got {cfg.above.factor}; allowed: > 0, or null (off)")


DECLARATION = Declaration("above", AboveConfig, gate="factor", off=(None,), impl=Above,
                          label=lambda s: f"above={s.factor:g}", family=lambda s: "above", rules=_rules,
                          sets_loss=True, examples={"above": {"above": {"factor": 1.0}}})
'''


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """The throwaway module on the path; the registry as it was afterwards (other tests see no `above`)."""
    (tmp_path / "throwaway_strategy.py").write_text(textwrap.dedent(MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_DECLARED", dict(registry._DECLARED))
    monkeypatch.setattr(registry, "_SOURCES", dict(registry._SOURCES))
    monkeypatch.delitem(__import__("sys").modules, "throwaway_strategy", raising=False)
    return ["throwaway_strategy:DECLARATION"]


def test_a_plugin_validates_and_labels_like_a_builtin(plugin):
    cfg = build_config({"plugins": plugin, "above": {"factor": 0.8}})
    assert cfg.above.factor == 0.8 and flat_dict(cfg)["above.factor"] == 0.8
    assert strategy_name(cfg) == "above=0.8" and strategy_family(cfg) == "above"
    assert "above.factor" in strategy_keys() and registry.baseline_off()["above.factor"] is None
    with pytest.raises(UserError, match=r"^above\.factor: got -1"):
        build_config({"plugins": plugin, "above": {"factor": -1}})
    with pytest.raises(UserError, match="above would both set the loss"):
        build_config({"plugins": plugin, "above": {"factor": 1}, "trim": {"schedule": "linear"}})


def test_a_plugin_is_searched_as_an_arm(plugin):
    space = SP.validate_space({"base": {**BASE, "plugins": plugin, "epochs": 2},
                               "space": {"optim.lr": {"loguniform": [0.01, 0.3]}},
                               "arms": {"plain": {}, "above": {"space": {"above.factor": {"uniform": [0.5, 1.5]}}}},
                               "search": {"trials_per_arm": 2}})
    assert [a.name for a in space.arms] == ["plain", "above"]
    config = space.arms[1].config({"optim.lr": 0.1, "above.factor": 1.2})
    label, family, active = space.describe(config)
    assert (label, family) == ("above=1.2", "above") and active["above.factor"] == 1.2
    assert SP.trial_config(space.base_flat, config, space.dims).above.factor == 1.2


def test_a_plugin_trains_counts_its_masks_compute_and_resumes_exactly(plugin):
    mapping = {"plugins": plugin, "device": "cpu", "epochs": 3, "data": {"train_limit": 600},
               "above": {"factor": 1.0}}
    straight = list(Trainer(build_config(mapping)).run())
    last = straight[-1]
    assert last["test_top1"] > 30  # chance is 10%
    assert 0 < last["samples_with_grad"] < last["samples_backward"] == last["samples_forward"]
    first = Trainer(build_config(mapping))
    run = first.run()
    resumed = [next(run)]
    second = Trainer(build_config(mapping))
    second.load_state_dict(first.state_dict())
    resumed += list(second.run())
    times = ("time_train_s", "time_eval_s", "img_per_s")
    assert [json_safe(r) | {k: 0 for k in times} for r in resumed] == \
        [json_safe(r) | {k: 0 for k in times} for r in straight]


@pytest.mark.parametrize("ref, fragment", [
    ("no_such_module_xyz:Thing", "cannot import no_such_module_xyz"),
    ("throwaway_strategy:Missing", "module throwaway_strategy has no 'Missing'"),
    ("throwaway_strategy:AboveConfig", "names a type, not a strategy"),
    ("throwaway_strategy", "allowed: a reference module:Name"),
])
def test_a_bad_plugin_is_one_user_error_naming_it(plugin, ref, fragment):
    with pytest.raises(UserError) as info:
        build_config({"plugins": [ref]})
    assert info.value.key == f"plugins: {ref}" and fragment in str(info.value)


def test_a_plugin_that_takes_a_builtins_section_is_refused(plugin, tmp_path):
    (tmp_path / "clash_strategy.py").write_text(textwrap.dedent(MODULE).replace('Declaration("above"',
                                                                                'Declaration("trim"'))
    with pytest.raises(UserError, match="declares the section 'trim', which is the built-in strategy 'trim'"):
        build_config({"plugins": ["clash_strategy:DECLARATION"]})
