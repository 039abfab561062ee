"""The Tuner's parts from a space (`ray_backend.tuner`), built without starting Ray: domains, searchers, the
early stopper's settings. The Tuner itself runs in tests/ray_backend/test_driver.py."""

import pytest
from optuna.samplers import RandomSampler, TPESampler
from ray.tune.schedulers import FIFOScheduler
from ray.tune.search import ConcurrencyLimiter
from ray.tune.search.basic_variant import BasicVariantGenerator
from ray.tune.search.sample import Categorical, Float, Integer
from search_helpers import space

from tune_hardbatch.ray_backend.arm_search import ArmSearch
from tune_hardbatch.ray_backend.halving import HeldLimiter, SyncHalving
from tune_hardbatch.ray_backend.tuner import build_scheduler, build_searcher, ray_domain
from tune_hardbatch.search.space import Dim, load_space


@pytest.mark.parametrize("dim, kind", [(Dim("optim.lr", "loguniform", 0.01, 0.1), Float),
                                       (Dim("trim.p_end", "uniform", 0.1, 0.5), Float),
                                       (Dim("optim.batch_size", "int", 32, 128, 32), Integer),
                                       (Dim("hard_batch.delta", "choice", values=(None, 0.5)), Categorical)])
def test_ray_domains_keep_the_bounds(dim, kind):
    domain = ray_domain(dim)
    assert isinstance(domain, kind)
    if kind is not Categorical:
        assert (domain.lower, domain.upper) == (dim.low, dim.high)
    else:
        assert domain.categories == [None, 0.5]
    assert ray_domain(Dim("seed", "grid", values=(0, 1))) == {"grid_search": [0, 1]}


JOINT = {"space": {"optim.lr": {"loguniform": [0.01, 0.3]}, "hard_batch.delta": {"choice": [None, 0.5]}},
         "search": {"num_samples": 5}}  # a joint search: the sampler picks the family


def test_halving_judges_at_equal_compute_and_never_cuts_a_trial_short(tmp_path):
    spec = load_space(space(**{**JOINT, "search": {"num_samples": 5, "grace_period": 2, "reduction_factor": 3}}))
    halving = build_scheduler(spec, tmp_path)
    assert isinstance(halving, SyncHalving) and halving.time_attr == "asha_time"
    assert halving.sizes == {"all": 5} and all(m < spec.budget for m in halving.milestones)  # a trial ends by its
    assert isinstance(build_scheduler(load_space(None, ["search.scheduler=fifo"]), tmp_path), FIFOScheduler)  # budget


def test_declared_arms_get_rungs_each_and_their_own_seeded_searchers(tmp_path):
    spec = load_space(None)  # the default declares its arms
    per_arm = build_scheduler(spec, tmp_path)
    assert isinstance(per_arm, SyncHalving) and per_arm.sizes == {a.name: 3 for a in spec.arms}
    assert {per_arm.ladder(a.name).milestones for a in spec.arms} == {spec.rungs[:1]}  # 3 -> 1: one rung
    limiter, param_space, n = build_searcher(spec, 2, tmp_path)
    assert isinstance(limiter, HeldLimiter) and param_space is None and n == spec.num_trials
    arms = limiter.searcher
    assert isinstance(arms, ArmSearch) and arms.trials_per_arm == spec.search.trials_per_arm
    samplers = [s._sampler for s in arms.searchers.values()]
    assert all(isinstance(x, TPESampler) for x in samplers) and len({id(x) for x in samplers}) == len(samplers)
    random = build_searcher(load_space(None, ["search.searcher=random"]), 2, tmp_path)[0].searcher
    assert all(isinstance(s._sampler, RandomSampler) for s in random.searchers.values())


def test_grid_and_random_searchers(tmp_path):
    grid = load_space(space(space={"optim.lr": {"grid": [0.05, 0.1]}}, search={"searcher": "grid"}))
    searcher, param_space, n = build_searcher(grid, 2, tmp_path)
    assert isinstance(searcher, BasicVariantGenerator) and n == 1
    assert param_space == {"optim.lr": {"grid_search": [0.05, 0.1]}}
    random = load_space(space(**{**JOINT, "search": {"searcher": "random", "num_samples": 5}}))
    _, param_space, n = build_searcher(random, 2, tmp_path)
    assert n == 5 and set(param_space) == set(random.dim_keys)


def test_optuna_searcher_is_limited_to_the_concurrency(tmp_path):
    spec = load_space(space(**JOINT))
    searcher, param_space, n = build_searcher(spec, 3, tmp_path)
    assert isinstance(searcher, ConcurrencyLimiter) and searcher.max_concurrent == 3 and param_space is None
    assert n == spec.search.num_samples == 5


def test_trials_waiting_at_a_rung_do_not_hold_the_searchers_slots(tmp_path):
    """Two slots, both trials paused at a rung: a third is suggested (a plain limiter would wait forever)."""
    from ray.tune.search import Searcher

    from tune_hardbatch.ray_backend import halving

    class Count(Searcher):
        def suggest(self, trial_id):
            return {"x": 1}

    limiter = HeldLimiter(Count(metric="val_top1", mode="max"), 2, tmp_path)
    assert limiter.suggest("a") and limiter.suggest("b") and limiter.suggest("c") is None
    halving.HELD[str(tmp_path)] = {"a", "b"}
    try:
        assert limiter.suggest("c") and limiter.suggest("d")
        assert limiter.suggest("e") is None  # c and d run: the two slots are theirs
    finally:
        halving.HELD.pop(str(tmp_path))
    fifo = load_space(space(**{**JOINT, "search": {"scheduler": "fifo", "num_samples": 5}}))
    plain = build_searcher(fifo, 2, tmp_path)[0]
    assert isinstance(plain, ConcurrencyLimiter) and not isinstance(plain, HeldLimiter)
