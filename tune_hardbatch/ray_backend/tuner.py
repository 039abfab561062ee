"""The driver side's Tuner: searcher, scheduler and trainable from a `SearchSpace`, new or restored.

Searchers: `optuna` (Optuna TPE, seeded, through Ray's OptunaSearch with the define-by-run space
`search.space.DefineByRun`, so a strategy's parameters are only sampled when the strategy is on), `random` (Ray's
BasicVariantGenerator; `grid` dimensions give grid x num_samples trials), `grid` (every point once: the
papers' tables). With declared arms (`space.arms`), `arm_search.ArmSearch`: each arm its own Optuna study (TPE,
or Optuna's random sampler for `random`) and `trials_per_arm` trials, the shared dimensions of every arm's
k-th start-up trial from one design (`search.space.design`). Schedulers: `halving` (synchronous
successive halving within each arm, `halving.SyncHalving`, on `asha_time`: compute_equiv plus half a report's
compute, so rungs fall at equal compute) and `fifo`. The confirmation phase is a second Tuner
(`confirm_tuner`) in `<experiment>/confirm`: a grid of arms x seeds.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from ray import tune

from ..errors import UserError
from ..search.space import SPACE_FILE, DefineByRun, Dim, SearchSpace, baseline_points
from ..search.space.schema import CONFIRM_DIR
from . import ray_private
from .checkpoints import checkpoint_config
from .faults import CRASH_ENV
from .simulated import SIMULATE_ENV
from .worker import trainable

TIME_ATTR = "asha_time"  # the rungs' clock: a report's compute_equiv plus half the next report's compute


def decided_by(space: SearchSpace) -> tuple[str, str]:
    """The reported keys Ray's searcher and scheduler decide by (what `ForgetAnalysis` keeps)."""
    return space.search.metric, TIME_ATTR


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


def build_searcher(space: SearchSpace, concurrency: int, exp_dir: Path):
    """(search algorithm, param_space or None, num_samples)."""
    s = space.search
    if space.arms:
        from .arm_search import ArmSearch

        searchers = {arm.name: (_optuna_search(space, arm.dims, arm.base_flat(space.base_flat), s.trials_per_arm,
                                               concurrency, exp_dir, f"{exp_dir.name}.{arm.name}"), arm.fixed)
                     for arm in space.arms}
        # the shared dimensions of each arm's start-up trials (as many as its sampler draws at random) come from
        # one design: equal values in every arm, whatever the arm's own dimensions do to its sampler's stream
        startup = {name: ray_private.startup_trials(searcher, s.trials_per_arm)
                   for name, (searcher, _) in searchers.items()}
        arms = ArmSearch(searchers, s.trials_per_arm, s.metric, s.mode, shared=space.arms[0].shared, seed=s.seed,
                         startup=startup)
        return limited(space, arms, concurrency, exp_dir), None, s.num_samples
    if s.searcher == "optuna":
        searcher = _optuna_search(space, space.dims, space.base_flat, s.num_samples, concurrency, exp_dir, exp_dir.name,
                                  points=baseline_points(space.dims, space.base_flat))
        return limited(space, searcher, concurrency, exp_dir), None, s.num_samples
    from ray.tune.search.basic_variant import BasicVariantGenerator

    if s.searcher == "grid":
        param_space = {d.key: tune.grid_search(list(d.values)) for d in space.dims}
        num_samples = 1
    else:
        param_space = {d.key: ray_domain(d) for d in space.dims}
        num_samples = s.num_samples
    points = baseline_points(space.dims, space.base_flat) if s.searcher == "random" else []
    # with halving, trials waiting at a rung count as live here: no limit but the resources (0)
    searcher = BasicVariantGenerator(max_concurrent=0 if space.rungs else concurrency, random_state=s.seed,
                                     points_to_evaluate=points or None)  # values encoded, like the space
    return searcher, param_space, num_samples


def limited(space: SearchSpace, searcher, concurrency: int, exp_dir: Path):
    """`searcher` proposing at most `concurrency` trials at a time; with halving, trials waiting at a rung
    are not counted (`halving.HeldLimiter`): they wait for trials not yet started."""
    if space.rungs:
        from .halving import HeldLimiter

        return HeldLimiter(searcher, concurrency, exp_dir)
    from ray.tune.search import ConcurrencyLimiter

    return ConcurrencyLimiter(searcher, max_concurrent=concurrency)


def _optuna_search(space: SearchSpace, dims, base_flat: dict, trials: int, concurrency: int, exp_dir: Path,
                   study_name: str, points: Optional[list] = None):
    """A TruthfulOptunaSearch over `dims` (TPE, or Optuna's random sampler for searcher random), its study
    `study_name` in the experiment's journal."""
    import optuna

    from .optuna_search import TruthfulOptunaSearch, random_sampler, study_storage, tpe_sampler

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    s = space.search
    startup = s.startup_trials
    if startup is None:  # a third of the budget explores at random, at least 2, at most 10
        startup = min(10, max(2, trials // 3))
    sampler = random_sampler(s.seed) if s.searcher == "random" else tpe_sampler(s.seed, startup, concurrency)
    return TruthfulOptunaSearch(DefineByRun(list(dims), base_flat), metric=s.metric, mode=s.mode, sampler=sampler,
                                study_name=study_name, storage=study_storage(exp_dir),
                                points_to_evaluate=points or None)


def build_scheduler(space: SearchSpace, exp_dir: Path):
    """FIFO, or synchronous successive halving within each arm (`halving.SyncHalving`) on `TIME_ATTR`: a
    report's compute_equiv plus half a report's compute, so each rung decides at the report nearest its
    milestone, and a batch size that does not divide M (reports at 0.9933, 1.987, ...) is judged at the same
    compute."""
    s = space.search
    if s.scheduler == "fifo" or not space.rungs:
        from ray.tune.schedulers import FIFOScheduler

        return FIFOScheduler()
    from .halving import SyncHalving

    return SyncHalving(space.group_sizes, space.rungs, s.reduction_factor, s.metric, s.mode, TIME_ATTR, exp_dir)


def wrapped_trainable(space: SearchSpace, exp_dir: Path, arms: Optional[list] = None):
    """`worker.trainable` with its setup (base config, dims, resources, test hooks, whether it writes MLflow
    artifacts) and resources; with `arms` (the confirmation's arms: label and full flat config), the
    confirmation phase's trainable (trial config {"arm": i, "seed": s})."""
    setup = {"base": space.base_flat, "dims": space.dims, "cpu": space.resources.cpu,
             "gpu": space.resources.gpu, "crash": os.environ.get(CRASH_ENV),
             "simulate": os.environ.get(SIMULATE_ENV), "artifacts": space.tracking.enabled,
             "checkpoint_every": space.run.checkpoint_every, "exp_dir": str(exp_dir), "rungs": space.rungs}
    if arms is not None:
        setup["arms"], setup["arm_labels"] = [a["config"] for a in arms], [a["arm"] for a in arms]
    wrapped = tune.with_parameters(trainable, setup=setup)
    return tune.with_resources(wrapped, {"cpu": space.resources.cpu, "gpu": space.resources.gpu})


def _trial_dirname(trial) -> str:
    return trial.trial_id


def new_tuner(space: SearchSpace, exp_dir: Path, concurrency: int, callbacks: list, space_yaml: str):
    """A fresh Tuner; writes the resolved space (`search_space.yaml`, used by --resume) first."""
    exp_dir.mkdir(parents=True, exist_ok=True)
    searcher, param_space, num_samples = build_searcher(space, concurrency, exp_dir)
    (exp_dir / SPACE_FILE).write_text(space_yaml)
    return _tuner(space, exp_dir, wrapped_trainable(space, exp_dir), param_space, callbacks,
                  tune.TuneConfig(search_alg=searcher, scheduler=build_scheduler(space, exp_dir),
                                  num_samples=num_samples,
                                  reuse_actors=True, trial_dirname_creator=_trial_dirname))


def confirm_tuner(space: SearchSpace, exp_dir: Path, arms: list[dict], seeds: list[int], concurrency: int,
                  callbacks: list, indexes: Optional[list[int]] = None):
    """A look of the confirmation: the arms at `indexes` of `arms` (None: all) x `seeds`, no early stopping,
    in `<exp_dir>/confirm`; restored (unfinished and errored trials continued) when an earlier driver
    started it."""
    from ray.tune.schedulers import FIFOScheduler
    from ray.tune.search.basic_variant import BasicVariantGenerator

    confirm_dir = exp_dir / CONFIRM_DIR
    trainable = wrapped_trainable(space, confirm_dir, arms)
    if tune.Tuner.can_restore(str(confirm_dir)):
        return _restored(space, confirm_dir, trainable, callbacks)
    chosen = list(range(len(arms))) if indexes is None else list(indexes)
    param_space = {"seed": tune.grid_search(list(seeds)), "arm": tune.grid_search(chosen)}
    return _tuner(space, confirm_dir, trainable, param_space, callbacks,
                  tune.TuneConfig(search_alg=BasicVariantGenerator(max_concurrent=concurrency),
                                  scheduler=FIFOScheduler(), num_samples=1, reuse_actors=True,
                                  trial_dirname_creator=_trial_dirname))


def _tuner(space: SearchSpace, exp_dir: Path, trainable, param_space, callbacks: list, tune_config):
    return tune.Tuner(
        trainable, param_space=param_space, tune_config=tune_config,
        run_config=tune.RunConfig(
            name=exp_dir.name, storage_path=str(exp_dir.parent), verbose=0, callbacks=callbacks,
            checkpoint_config=checkpoint_config(),
            failure_config=tune.FailureConfig(max_failures=space.run.max_failures)),
    )


def restored_tuner(space: SearchSpace, exp_dir: Path, callbacks: list):
    """The Tuner of an interrupted search, continuing unfinished and errored trials, with fresh callbacks
    (the pickled ones hold the old run's state)."""
    if not tune.Tuner.can_restore(str(exp_dir)):
        raise UserError("--resume", f"{exp_dir} holds no Ray Tune experiment state to resume")
    return _restored(space, exp_dir, wrapped_trainable(space, exp_dir), callbacks)


def _restored(space: SearchSpace, exp_dir: Path, trainable, callbacks: list):
    tuner = tune.Tuner.restore(str(exp_dir), trainable=trainable, resume_unfinished=True, resume_errored=True)
    run_config = ray_private.restored_run_config(tuner)
    run_config.callbacks = callbacks
    run_config.failure_config = tune.FailureConfig(max_failures=space.run.max_failures)  # may change
    return tuner
