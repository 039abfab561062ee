"""The driver side's Tuner: searcher, scheduler and trainable from a `SearchSpec`, new or restored.

Searchers: `optuna` (Optuna TPE, seeded, through Ray's OptunaSearch with the define-by-run space
`spec.DefineByRun`, so a strategy's parameters are only sampled when the strategy is on), `random` (Ray's
BasicVariantGenerator; `grid` dimensions give grid x num_samples trials), `grid` (every point once: the
papers' tables). Schedulers: `asha` (time attribute `epoch_equiv`, max_t = the space's largest
epoch-equivalent budget) and `fifo`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from ray import tune

from ..errors import UserError
from ..spec import SPACE_FILE, DefineByRun, Dim, SearchSpec
from . import ray_private
from .faults import CRASH_ENV
from .worker import trainable


def ray_domain(dim: Dim):
    """The Ray Tune domain of a dimension (random / grid searchers)."""
    if dim.kind == "uniform":
        return tune.uniform(dim.low, dim.high)
    if dim.kind == "loguniform":
        return tune.loguniform(dim.low, dim.high)
    if dim.kind == "int":
        return tune.qrandint(dim.low, dim.high, dim.step or 1)
    if dim.kind == "choice":
        return tune.choice(list(dim.values))
    return tune.grid_search(list(dim.values))


def build_searcher(spec: SearchSpec, concurrency: int):
    """(search algorithm, param_space or None, num_samples)."""
    s = spec.search
    if s["searcher"] == "optuna":
        import optuna
        from optuna.samplers import TPESampler
        from ray.tune.search import ConcurrencyLimiter
        from ray.tune.search.optuna import OptunaSearch

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        startup = s["startup_trials"]
        if startup is None:  # a third of the budget explores at random, at least 2, at most 10
            startup = min(10, max(2, s["num_samples"] // 3))
        sampler = TPESampler(seed=s["seed"], n_startup_trials=startup)
        searcher = OptunaSearch(DefineByRun(spec.dims, spec.base_flat), metric=s["metric"], mode=s["mode"],
                                sampler=sampler)
        return ConcurrencyLimiter(searcher, max_concurrent=concurrency), None, s["num_samples"]
    from ray.tune.search.basic_variant import BasicVariantGenerator

    if s["searcher"] == "grid":
        param_space = {d.key: tune.grid_search(list(d.values)) for d in spec.dims}
        num_samples = 1
    else:
        param_space = {d.key: ray_domain(d) for d in spec.dims}
        num_samples = s["num_samples"]
    searcher = BasicVariantGenerator(max_concurrent=concurrency, random_state=s["seed"])
    return searcher, param_space, num_samples


def build_scheduler(spec: SearchSpec):
    s = spec.search
    if s["scheduler"] == "fifo":
        from ray.tune.schedulers import FIFOScheduler

        return FIFOScheduler()
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(time_attr="epoch_equiv", metric=s["metric"], mode=s["mode"],
                         max_t=max(1, math.ceil(spec.budget)), grace_period=s["grace_period"],
                         reduction_factor=s["reduction_factor"])


def wrapped_trainable(spec: SearchSpec, exp_dir: Path):
    """`worker.trainable` with its setup (base config, dims, resources, test hook) and resources."""
    setup = {"base": spec.base_flat, "dims": spec.dims, "cpu": spec.resources["cpu"],
             "gpu": spec.resources["gpu"], "crash": os.environ.get(CRASH_ENV),
             "checkpoint_every": spec.run["checkpoint_every"], "exp_dir": str(exp_dir)}
    wrapped = tune.with_parameters(trainable, setup=setup)
    return tune.with_resources(wrapped, {"cpu": spec.resources["cpu"], "gpu": spec.resources["gpu"]})


def _trial_dirname(trial) -> str:
    return trial.trial_id


def new_tuner(spec: SearchSpec, exp_dir: Path, concurrency: int, callbacks: list, space_yaml: str):
    """A fresh Tuner; writes the resolved space (`search_space.yaml`, used by --resume) first."""
    searcher, param_space, num_samples = build_searcher(spec, concurrency)
    exp_dir.mkdir(parents=True, exist_ok=True)
    (exp_dir / SPACE_FILE).write_text(space_yaml)
    return tune.Tuner(
        wrapped_trainable(spec, exp_dir),
        param_space=param_space,
        tune_config=tune.TuneConfig(search_alg=searcher, scheduler=build_scheduler(spec),
                                    num_samples=num_samples, reuse_actors=True,
                                    trial_dirname_creator=_trial_dirname),
        run_config=tune.RunConfig(
            name=exp_dir.name, storage_path=str(exp_dir.parent), verbose=0, callbacks=callbacks,
            checkpoint_config=tune.CheckpointConfig(num_to_keep=None),  # the worker prunes (worker.py)
            failure_config=tune.FailureConfig(max_failures=spec.run["max_failures"])),
    )


def restored_tuner(spec: SearchSpec, exp_dir: Path, callbacks: list):
    """The Tuner of an interrupted search, continuing unfinished and errored trials, with fresh callbacks
    (the pickled ones hold the old run's state)."""
    if not tune.Tuner.can_restore(str(exp_dir)):
        raise UserError("--resume", f"{exp_dir} holds no Ray Tune experiment state to resume")
    tuner = tune.Tuner.restore(str(exp_dir), trainable=wrapped_trainable(spec, exp_dir), resume_unfinished=True,
                               resume_errored=True)
    run_config = ray_private.restored_run_config(tuner)
    run_config.callbacks = callbacks
    run_config.failure_config = tune.FailureConfig(max_failures=spec.run["max_failures"])  # may change
    return tuner
