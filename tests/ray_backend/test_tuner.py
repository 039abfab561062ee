"""The Tuner's parts from a space (`ray_backend.tuner`), built without starting Ray: domains, searchers,
ASHA's settings. The Tuner itself runs in tests/ray_backend/test_driver.py."""

import pytest
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search import ConcurrencyLimiter
from ray.tune.search.basic_variant import BasicVariantGenerator
from ray.tune.search.sample import Categorical, Float, Integer

from tune_hardbatch.ray_backend.tuner import build_scheduler, build_searcher, ray_domain
from tune_hardbatch.space import Dim, load_space


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


def test_asha_judges_at_equal_compute_and_never_cuts_a_trial_short():
    spec = load_space(None, ["search.grace_period=2", "search.reduction_factor=3"])
    asha = build_scheduler(spec)
    assert isinstance(asha, ASHAScheduler) and asha._time_attr == "asha_time"
    assert asha._max_t > spec.budget  # a trial ends by its own budget, not by the scheduler
    assert isinstance(build_scheduler(load_space(None, ["search.scheduler=fifo"])), FIFOScheduler)


def test_grid_and_random_searchers(tmp_path):
    grid = load_space(None, ["search.searcher=grid", "search.num_samples=null", "space.optim.lr={grid: [0.05, 0.1]}",
                             "space.hard_batch.delta=null", "space.trim.schedule=null", "space.trim.p_end=null",
                             "space.stepwise.fractions=null"])
    searcher, param_space, n = build_searcher(grid, 2, tmp_path)
    assert isinstance(searcher, BasicVariantGenerator) and n == 1
    assert param_space == {"optim.lr": {"grid_search": [0.05, 0.1]}}
    _, param_space, n = build_searcher(load_space(None, ["search.searcher=random", "search.num_samples=5"]), 2,
                                       tmp_path)
    assert n == 5 and set(param_space) == set(load_space(None).dim_keys)


def test_optuna_searcher_is_limited_to_the_concurrency(tmp_path):
    searcher, param_space, n = build_searcher(load_space(None), 3, tmp_path)
    assert isinstance(searcher, ConcurrencyLimiter) and searcher.max_concurrent == 3 and param_space is None
    assert n == load_space(None).search.num_samples
