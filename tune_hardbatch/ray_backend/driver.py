"""The driver side: `run_search` connects to (or starts) Ray and runs a search's phases: the search
(`search.py`), the confirmation (`confirm.py`), the verdict (`judgement.judge`), and what is written and
printed (`publish.py`), each taking and giving trial records (`trials.Trial`).

Results: `<storage>/<name>/results.csv` (one row per trial: id, status in {finished, stopped_early,
diverged, failed}, strategy label, the sampled parameters, final validation and test metrics (test
recorded, never used to choose), convergence_epoch, epoch_equiv, backprops, samples_forward, time),
`best_config.yaml` (the full training config of the best finished trial by the search's validation
metric, for `tune-hardbatch train`) and `search_space.yaml` (the resolved space, used by --resume).
Then the confirmation phase (`ray_backend/confirm.py`: `confirm_arms.json`, `confirm/`, the budget-matched
runs' `budget_matched/confirm/`, `confirm_results.csv`) and `verdict.json`. Printed: the results table, the
best configuration, and the verdict last.

Interruptions: `--resume NAME` continues `<storage>/NAME` after the driver died (even by SIGKILL) or was
stopped with Ctrl-C, in the search or in the confirmation phase: finished trials are kept, unfinished and errored ones continue from their last
checkpoint; with a SPACE or --set, they must match what NAME was started with. Ctrl-C writes a partial
results.csv (status `unfinished`) and exits 130. A crashed trial (an exception, or its worker process
killed) is retried `run.max_failures` times from its last checkpoint (see `worker.py` for what is not).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Callable, Optional, Union

import ray

from ..errors import UserError
from ..output.logs import LOG_FILE, library_logs, route, tool_logger
from ..search.prepare import Prepared, check_resources, lock, prepare_search
from ..search.space import SearchSpace
from ..tracking import check_experiment
from ..training.strategies.plugins import import_paths
from ..verdict.judgement import judge
from . import ray_private
from .confirm import confirm
from .publish import SearchFailed, publish, publish_search, stopped
from .search import Run, search

__all__ = ["SearchFailed", "run_search"]

log = tool_logger(__name__)


def run_search(space: Union[str, os.PathLike, dict, None] = None, sets: Optional[list[str] | dict] = None,
               address: Optional[str] = None, resume: Optional[str] = None, out: Optional[str] = None,
               callbacks: Union[list, Callable[[SearchSpace, Path], list], None] = None,
               live_interval_s: float = 10.0, stream=None, prepared: Optional[Prepared] = None) -> Path:
    """Run (or with `resume`, continue) a search; return the path of its results.csv.

    `space`: a YAML path, a mapping, or None for the packaged default. `sets`: `--set` overrides.
    `address`: "auto" or "HOST:PORT" joins a Ray cluster; otherwise a local Ray sized to this machine
    (an already initialised Ray in this process is used as it is). `out`: the storage directory.
    `callbacks`: extra `ray.tune.Callback`s, or a function `(SearchSpace, experiment_dir) -> [callbacks]`
    (e.g. MLflow tracking). `prepared`: the result of `search.prepare.prepare_search` when the caller (the CLI)
    already ran it. Raises `UserError` for bad input before anything starts.
    """
    p = prepared or prepare_search(space, sets, resume, out, address)
    with library_logs(p.exp_dir / LOG_FILE) as to_file:
        p.checked()  # data and models (a child process since prepare_search): a mistake starts nothing
        tracking_checked = _while_ray_starts(check_experiment, p.tracking[0], p.search_space.tracking.experiment) \
            if p.tracking[0] is not None else None
        ray_private.tolerate_pruned_checkpoints()
        started, concurrency = connect(p.search_space, p.address, p.local)
        try:
            if tracking_checked is not None:
                tracking_checked.result()  # a store that refuses the experiment: one error line, nothing written
        except BaseException:
            if started:
                ray.shutdown()
            raise
        route(to_file)  # Ray's init gave its loggers a handler on stderr again
        p.exp_dir.mkdir(parents=True, exist_ok=True)
        (p.exp_dir / LOG_FILE).touch()  # the file the header names exists even while no library has spoken
        lock.acquire(p.exp_dir)
        try:
            return _run(p.search_space, p.exp_dir, p.resuming, concurrency, callbacks, live_interval_s,
                        stream or sys.stdout, p.tracking)
        finally:
            lock.release(p.exp_dir)
            if started:
                ray.shutdown()


def _while_ray_starts(fn, *args):
    """`fn(*args)` on a thread beside Ray's start (MLflow's import and its store's schema set-up take seconds
    that Ray's start would otherwise wait for); its future."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tracking-check")
    future = pool.submit(fn, *args)
    pool.shutdown(wait=False)
    return future


def connect(space: SearchSpace, address: Optional[str], local: Optional[tuple]) -> tuple[bool, int]:
    """Start a local Ray (or join `address`); (whether this started Ray, concurrent trials)."""
    modules = import_paths(space.base_cfg.plugins)
    if address is None and not ray.is_initialized():
        ray_env(local=True)
        if modules:  # local workers inherit this environment: the plug-ins' modules are on their path
            parents = [str(Path(m).parent) for m in modules]
            os.environ["PYTHONPATH"] = os.pathsep.join(parents + [p for p in [os.environ.get("PYTHONPATH")] if p])
        init_ray(None, *local)
        return True, check_resources(space, *local)
    ray_env(local=False)  # a cluster (or a Ray this process already runs): check against what it has
    started = not ray.is_initialized()
    if started:
        try:
            init_ray(address, None, None, modules)
        except ConnectionError as exc:  # e.g. --address auto with no Ray running on this machine
            raise UserError("--address", f"{str(exc).strip().splitlines()[0][:200]}; start a cluster "
                            "(ray start --head) or give its HOST:PORT") from None
    try:
        return started, cluster_concurrency(space)
    except UserError as exc:
        if space.search.max_concurrent:  # an autoscaling cluster (workers from zero) grows on demand
            log.warning("%s now; waiting for the autoscaler to add nodes (search.max_concurrent %s)", exc,
                        space.search.max_concurrent)
            return started, space.search.max_concurrent
        if started:
            ray.shutdown()
        raise UserError(exc.key, f"{str(exc).partition(': ')[2]} (on an autoscaling cluster, set "
                        "search.max_concurrent to wait for nodes)") from None


def cluster_concurrency(space: SearchSpace) -> int:
    """`check_resources` against the live nodes of the Ray cluster this process is connected to."""
    nodes = [(float(n.get("Resources", {}).get("CPU", 0)), float(n.get("Resources", {}).get("GPU", 0)))
             for n in ray.nodes() if n.get("Alive")]
    return check_resources(
        space, max((c for c, _ in nodes), default=0.0), max((g for _, g in nodes), default=0.0),
        where="the largest node of the Ray cluster" if len(nodes) > 1 else "the Ray cluster", nodes=nodes)


def ray_env(local: bool) -> None:
    if local:
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # the result loggers are ours (ray_private.history_loggers): no TensorBoard logger on top of them
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    # experiment snapshots (for --resume): Ray's own period ("auto": at most ~5% of the driver's time)
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    os.environ.setdefault("TUNE_WARN_SLOW_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "600")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # Ray's record of each checkpoint a trial saved holds a copy of that report (~45 metrics), kept to the end of
    # the search (a checkpoint every epoch or two on `auto`): only Result.best_checkpoints reads it, and we rank
    # no checkpoints by score (checkpoints.checkpoint_config), so the records keep their paths alone
    os.environ.setdefault("TUNE_ONLY_STORE_CHECKPOINT_SCORE_ATTRIBUTE", "1")


def init_ray(address: Optional[str], cpus: Optional[float], gpus: Optional[float], modules: list = ()) -> None:
    """Start a local Ray, or join the cluster at `address`, shipping the plug-in modules that are not installed
    (`modules`: their package directories) to its nodes with the job (Ray's `py_modules`)."""
    if address is not None:
        runtime_env = {"py_modules": list(modules)} if modules else None
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False, runtime_env=runtime_env)
        return
    ray.init(address="local", include_dashboard=False, num_cpus=int(cpus), num_gpus=int(gpus),
             object_store_memory=256 * 1024**2, logging_level=logging.WARNING, log_to_driver=False)


def _run(space: SearchSpace, exp_dir: Path, resuming: bool, concurrency: int, callbacks, live_interval_s,
         stream, tracking: tuple) -> Path:
    """The phases, each taking and giving trial records: search, then (unless it was interrupted or every
    trial failed) confirm and judge, then publish."""
    run = Run(space, exp_dir, concurrency, live_interval_s, stream)
    try:
        trials = search(run, resuming, callbacks, tracking)
        path = publish_search(run, trials)
        confirmed, verdict = [], None
        if not stopped(trials):
            plan, confirmed = confirm(run, trials)
            verdict = judge(space, trials, plan, confirmed, exp_dir)
        publish(run, trials, confirmed, verdict)
        return path
    finally:
        run.close()  # the tracking process: after publishing, or after an error
