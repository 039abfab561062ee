"""The confirmation's tests' shared parts (tests/verdict/test_confirm_plan.py, test_budget.py,
test_judgement.py): search spaces (a joint one, one of declared arms), confirmed arms and their runs."""

from search_helpers import BASE

from tune_hardbatch.search.space import validate_space
from tune_hardbatch.search.trials import Trial


def spec(**confirm):
    return validate_space({"base": BASE, "space": {"hard_batch.delta": {"choice": [None, 1.0, 0.5]},
                                                    "optim.lr": {"loguniform": [0.01, 0.3]}},
                           "confirm": confirm or {"seeds": 3}})


def arms_spec(**confirm):
    return validate_space({"base": BASE, "space": {"optim.lr": {"loguniform": [0.01, 0.3]}},
                           "arms": {"plain": {}, "half": {"fixed": {"hard_batch.delta": 0.5}},
                                    "sel": {"space": {"hard_batch.delta": {"choice": [0.5, 0.2]}}}},
                           "search": {"trials_per_arm": 2}, "confirm": confirm or {"seeds": 2}})


def _arm(label, family, params=None):
    params = params or {}
    return {"arm": label, "family": family, "strategy": label, "trial_id": f"s-{label}", "value": 90.0,
            "params": {"optim.lr": 0.1, **params}, "config": {"optim.lr": 0.1, "data.val_fraction": 0.0, **params}}


ARMS = [_arm("plain", "plain"), _arm("sb=0.5", "sb", {"selective_backprop.keep": 0.5}),
        _arm("delta=0.5", "delta", {"hard_batch.delta": 0.5}),
        _arm("infobatch=0.5", "infobatch", {"infobatch.prune_ratio": 0.5}),
        _arm("sb=0.3", "sb", {"selective_backprop.keep": 0.3})]


def runs_of(label, family, computes, top1=90.0, status="finished", i_arm=0):
    """Confirmation records of one arm, one per seed (1, 2, ...), with their final compute and test top-1."""
    return [Trial(f"{label}-{s}", status, "confirmation", strategy=label, arm=label, family=family, seed=s,
                  params={"arm": i_arm, "seed": s},
                  last={"compute_equiv": c, "epoch_equiv": 10.0, "test_top1": top1 + s} if c is not None else {})
            for s, c in enumerate(computes, start=1)]


def arm_runs(computes: dict, statuses=None) -> list[Trial]:
    return [t for i, a in enumerate(ARMS) if a["arm"] in computes
            for t in runs_of(a["arm"], a["family"], computes[a["arm"]],
                             status=(statuses or {}).get(a["arm"], "finished"), i_arm=i)]
