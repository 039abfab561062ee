"""`tune-hardbatch search`: a search space (validated by `space.py`) becomes a Ray Tune run.

This is the only module of the package that imports Ray (the CLI imports it only after the space and
the resources have been validated).

Results: `<storage>/<name>/results.csv` (one row per trial: id, status in {finished, stopped_early,
diverged, failed}, strategy label, the sampled parameters, final and best test_top1, convergence_epoch,
epoch_equiv, backprops, samples_forward, time), `best_config.yaml` (the full training config of the best
finished trial, for `tune-hardbatch train`) and `search_space.yaml` (the resolved space, used by --resume).
The results table and then the best configuration (its dotted parameters and metric) are printed last.

Interruptions: `--resume NAME` continues `<storage>/NAME` after the driver died (even by SIGKILL) or was
stopped with Ctrl-C: finished trials are kept, unfinished and errored ones continue from their last
checkpoint (`Tuner.restore(..., resume_errored=True)`); with a SPACE or --set, they must match what NAME
was started with. Ctrl-C writes a partial results.csv (status `unfinished`) and exits 130. A crashed trial
(an exception, or its worker process killed) is retried `run.max_failures` times from its last checkpoint;
a diverged one (NaN/inf loss) is not, nor is one out of GPU memory (`torch.OutOfMemoryError`: the same
settings on the same GPU share run out again; it ends `failed`, with the advice in results.csv's `error`).
A checkpoint that cannot be read (truncated, corrupt) is skipped with a warning: the trial continues from
its newest readable earlier checkpoint (Ray keeps two), else from the start.

Python: `run_search(space, sets, address, resume, out, callbacks=...)` returns the results.csv path;
`callbacks` adds `ray.tune.Callback`s (e.g. MLflow tracking), or is a function `(spec, experiment_dir)`
returning them. `load_space` validates without running.
"""

from __future__ import annotations


import importlib
import math
import os
import random
import sys
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Optional, Union

import yaml
import ray
from ray import tune
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

from .config import Config
from .live import LiveView
from .tracking import (SearchTracker, check_reachable, search_params, search_tags, trial_artifacts, trial_record,
                       tracking_uri)
from .errors import UserError
from .results import best_row, collect_rows, print_summary, trial_status, write_results
from .space import (BEST_FILE, RESULTS_FILE, SPACE_FILE, DefineByRun, SearchSpec, StrategyLabel, abs_storage,
                    check_resources, local_resources, preflight, resolve_run, trial_config)

CRASH_ENV = "TUNE_HARDBATCH_TEST_CRASH"  # test hook, see `_trainable`
CHECKPOINT_FILE = "trainer.pt"


# ---------------------------------------------------------------------------------------------------
# The trainable (runs inside Ray workers)

_DATA_CACHE: "OrderedDict[tuple, Any]" = OrderedDict()  # (DataConfig, seed, device) -> Dataset
_DATA_CACHE_SIZE = 2


def _cached_dataset(cfg: Config, device):
    """Decoded data for reused actors: a small per-process LRU keyed by (data config, seed, device)."""
    from .data import load_dataset

    key = (cfg.data, cfg.seed, str(device))
    if key in _DATA_CACHE:
        _DATA_CACHE.move_to_end(key)
        return _DATA_CACHE[key]
    dataset = load_dataset(cfg.data, cfg.seed, device)
    _DATA_CACHE[key] = dataset
    while len(_DATA_CACHE) > _DATA_CACHE_SIZE:
        _DATA_CACHE.popitem(last=False)
    return dataset


class _CrashHook:
    """Test hook (`TUNE_HARDBATCH_TEST_CRASH`): comma-separated fields that make trials fail on purpose.

    - `epoch=N`: fail when a trial reaches epoch N (before reporting it);
    - `prob=P,seed=S` (instead of, or as well as, `epoch`): only a fraction P of the trials fail, each at
      an epoch drawn from 1..its last epoch (or at `epoch`); both drawn from (S, trial id), so
      deterministic per trial;
    - `marker=/abs/dir`: fail once per trial (an O_EXCL file `<trial id>.crashed` there), so the retry
      from the last checkpoint succeeds; without it the trial fails every time it gets there;
    - `kind=crash` (default: RuntimeError) or `kind=oom` (`torch.OutOfMemoryError`, the real type of a
      CUDA out-of-memory error, simulated without a GPU);
    - `min_batch=B`: only trials whose optim.batch_size is at least B (a batch that "does not fit").
    """

    def __init__(self, text: str):
        fields = dict(part.split("=", 1) for part in text.split(",") if "=" in part)
        self.epoch = int(fields["epoch"]) if "epoch" in fields else None
        self.prob = float(fields.get("prob", 1.0))
        self.seed = fields.get("seed", "0")
        self.marker_dir = fields.get("marker")
        self.kind = fields.get("kind", "crash")
        self.min_batch = int(fields.get("min_batch", 0))
        if self.kind not in ("crash", "oom") or (self.epoch is None and "prob" not in fields):
            raise ValueError(f"{CRASH_ENV}={text!r}: needs epoch=N or prob=P, and kind crash or oom")

    def crash_epoch(self, trial_id: str, last_epoch: int) -> Optional[int]:
        """The epoch at which this trial fails (None: it does not)."""
        rng = random.Random(f"{self.seed}/{trial_id}")  # str seeds are hashed with sha512: stable
        if rng.random() >= self.prob:
            return None
        return self.epoch if self.epoch is not None else rng.randint(1, max(1, last_epoch))

    def check(self, epoch: int, trial_id: str, last_epoch: int = 0, batch_size: int = 0) -> None:
        if batch_size < self.min_batch or epoch != self.crash_epoch(trial_id, last_epoch):
            return
        if self.marker_dir is not None:
            os.makedirs(self.marker_dir, exist_ok=True)
            try:
                fd = os.open(os.path.join(self.marker_dir, f"{trial_id}.crashed"),
                             os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return
            os.close(fd)
        if self.kind == "oom":
            import torch

            raise torch.cuda.OutOfMemoryError(f"CUDA out of memory. Tried to allocate 2.00 GiB (injected at "
                                              f"epoch {epoch} by {CRASH_ENV})")
        raise RuntimeError(f"injected crash at epoch {epoch} ({CRASH_ENV})")


def _load_checkpoint(checkpoint, trial_id: str) -> Optional[dict]:
    """The trainer state in a trial's checkpoint, or None (start afresh).

    A checkpoint that cannot be read (truncated, corrupt, gone) is skipped with a warning on the worker's
    stderr: the newest readable earlier checkpoint of the trial is used instead (Ray keeps two, in the
    trial directory), else the trial starts from the beginning. Its next report then repeats an epoch,
    which the live view reports on the driver's console.
    """
    import torch

    def load(path: Path) -> dict:
        return torch.load(path, map_location="cpu", weights_only=False)

    with checkpoint.as_directory() as d:
        first = Path(d) / CHECKPOINT_FILE
        try:
            return load(first)
        except Exception as exc:  # truncated zip, unpickling error, missing file, ...
            problems = [f"{first} ({_short(exc)})"]
    here = Path(checkpoint.path)
    earlier = sorted((p for p in here.parent.glob("checkpoint_*") if p.name < here.name), reverse=True) \
        if here.parent.is_dir() else []
    for path in earlier:
        try:
            state = load(path / CHECKPOINT_FILE)
        except Exception as exc:
            problems.append(f"{path / CHECKPOINT_FILE} ({_short(exc)})")
            continue
        print(f"warning: trial {trial_id}: unreadable checkpoint {'; '.join(problems)}; continuing from "
              f"{path.name} (epoch {state['position']['epoch']})", file=sys.stderr, flush=True)
        return state
    print(f"warning: trial {trial_id}: unreadable checkpoint {'; '.join(problems)}; no earlier one readable: "
          "starting the trial from the beginning", file=sys.stderr, flush=True)
    return None


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:160]}" if text else type(exc).__name__


def _no_report(trainer) -> dict:
    """What an out-of-memory trial reports when it ran out before its first report."""
    nan = float("nan")
    pos = trainer.pos if trainer is not None else None
    return {"epoch": pos.epoch if pos else 0,
            "epoch_equiv": pos.samples_forward / trainer.num_train if pos else 0.0,
            "backprops": pos.backprops if pos else 0, "samples_forward": pos.samples_forward if pos else 0,
            "samples_with_grad": pos.samples_with_grad if pos else 0, "diverged": 0,
            **{k: nan for k in ("train_loss", "train_top1", "test_loss", "test_top1", "test_top5",
                                "convergence_epoch", "epochs_to_target")}}


def _trainable(config: dict, setup: dict) -> None:
    """One trial: a `Trainer` on `apply_overrides(base, params)`, a report with a checkpoint per epoch.

    Continues exactly from `ray.tune.get_checkpoint()` when Ray restores the trial (retry or --resume);
    an unreadable checkpoint falls back to an earlier one or to the start (`_load_checkpoint`).
    A diverged run (NaN/inf loss) reports `diverged: 1` and returns normally: it is not retried.
    Out of GPU memory (`torch.OutOfMemoryError`) likewise: it reports its last metrics again with
    `oom: 1` (no checkpoint) and returns; results.csv lists it as failed with the advice.
    Every report carries `budget_done` (1 once the plan's budget is trained), so a trial that ends
    without it was stopped early by the scheduler.

    Test hook: `setup["crash"]` (the driver's `TUNE_HARDBATCH_TEST_CRASH`, else the worker's), e.g.
    "epoch=3,marker=/abs/dir": the first time each trial reaches that epoch it raises RuntimeError before
    reporting (an O_EXCL marker file per trial id in that directory makes it happen once), so the retry
    from the last checkpoint can be tested; see `_CrashHook` for random crashes (`prob=0.1,seed=0`) and
    simulated out-of-memory errors (`kind=oom`). Never set it outside tests.
    """
    import torch
    from ray import tune

    from .loop import Trainer, resolve_device

    dims = setup["dims"]
    cfg = trial_config(setup["base"], config, dims)
    torch.set_num_threads(max(1, int(setup["cpu"])))
    device = resolve_device(cfg.device)
    gpu = setup["gpu"]
    if device.type == "cuda" and 0 < gpu < 1:
        torch.cuda.set_per_process_memory_fraction(gpu)
    trial_id = tune.get_context().get_trial_id()
    crash_text = setup.get("crash") or os.environ.get(CRASH_ENV)
    crash = _CrashHook(crash_text) if crash_text else None
    node_id = ray.get_runtime_context().get_node_id()
    trainer, oom = None, None
    try:
        trainer = Trainer(cfg, dataset=_cached_dataset(cfg, device))
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:
            state = _load_checkpoint(checkpoint, trial_id)
            if state is not None:
                trainer.load_state_dict(state)
        for report in trainer.run():
            if crash is not None:
                crash.check(report["epoch"], trial_id, trainer.total_epochs, cfg.optim.batch_size)
            metrics = dict(report)
            metrics["budget_done"] = int(trainer.pos.finished and not trainer.pos.diverged)
            metrics["node_id"] = node_id  # which Ray node ran it (clusters)
            with tempfile.TemporaryDirectory(prefix="tune-hardbatch-ckpt-") as d:
                torch.save(trainer.state_dict(), os.path.join(d, CHECKPOINT_FILE))
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))
    except torch.cuda.OutOfMemoryError as exc:  # = torch.OutOfMemoryError; not retried (see above)
        oom = _short(exc)
    if oom is not None:
        if device.type == "cuda":
            torch.cuda.empty_cache()
        print(f"error: trial {trial_id}: {oom} (optim.batch_size {cfg.optim.batch_size}, resources.gpu "
              f"{gpu:g}); not retried", file=sys.stderr, flush=True)
        last = trainer.history[-1] if trainer is not None and trainer.history else _no_report(trainer)
        tune.report({**last, "budget_done": 0, "node_id": node_id, "oom": 1})


def _trial_dirname(trial) -> str:
    return trial.trial_id


# ---------------------------------------------------------------------------------------------------
# Running


def run_search(space: Union[str, os.PathLike, dict, None] = None, sets: Optional[list[str] | dict] = None,
               address: Optional[str] = None, resume: Optional[str] = None, out: Optional[str] = None,
               callbacks: Union[list, Callable[[SearchSpec, Path], list], None] = None,
               live_interval_s: float = 10.0, stream=None) -> Path:
    """Run (or with `resume`, continue) a search; return the path of its results.csv.

    `space`: a YAML path, a mapping, or None for the packaged default. `sets`: `--set` overrides.
    `address`: "auto" or "HOST:PORT" joins a Ray cluster; otherwise a local Ray sized to this machine
    (an already initialised Ray in this process is used as it is). `out`: the storage directory.
    `callbacks`: extra `ray.tune.Callback`s, or a function `(spec, experiment_dir) -> [callbacks]`
    (e.g. MLflow tracking). Raises `UserError` for bad input before anything starts.
    """
    out_stream = stream or sys.stdout
    spec, storage, name, resuming = resolve_run(space, sets, resume, out)
    exp_dir = Path(storage) / name
    if address is None:  # everything local is checked before Ray is even imported
        preflight(spec)
        cpus, gpus = local_resources()
        concurrency = check_resources(spec, cpus, gpus)
    tracking = tracking_uri(spec.tracking, storage)
    check_reachable(tracking[0])  # a tracking server that is down: exit 2 before any trial runs
    started = False
    _tolerate_pruned_checkpoints()
    if address is None and not ray.is_initialized():
        _ray_env(local=True)
        _init_ray(None, cpus, gpus)
        started = True
    else:  # a cluster (or a Ray this process already runs): check against what it has
        _ray_env(local=False)
        if not ray.is_initialized():
            _init_ray(address, None, None)
            started = True
        try:
            nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
            total = ray.cluster_resources()
            concurrency = check_resources(
                spec, max((float(n.get("CPU", 0)) for n in nodes), default=0.0),
                max((float(n.get("GPU", 0)) for n in nodes), default=0.0),
                where="the largest node of the Ray cluster" if len(nodes) > 1 else "the Ray cluster",
                total_cpus=float(total.get("CPU", 0)), total_gpus=float(total.get("GPU", 0)))
        except UserError as exc:
            if spec.search["max_concurrent"]:  # an autoscaling cluster (workers from zero) grows on demand
                concurrency = spec.search["max_concurrent"]
                print(f"warning: {exc} now; waiting for the autoscaler to add nodes "
                      f"(search.max_concurrent {concurrency})", file=sys.stderr, flush=True)
            else:
                if started:
                    ray.shutdown()
                raise UserError(exc.key, f"{str(exc).partition(': ')[2]} (on an autoscaling cluster, set "
                                "search.max_concurrent to wait for nodes)") from None
    try:
        return _run(spec, exp_dir, resuming, concurrency, callbacks, live_interval_s, out_stream, tracking)
    finally:
        if started:
            ray.shutdown()


def _tolerate_pruned_checkpoints() -> None:
    """After a driver SIGKILL, the restored experiment state can name a checkpoint that the trial already
    pruned (num_to_keep); Ray then deletes it again and its `_delete_fs_path` raises FileNotFoundError from
    `_is_directory`, outside the try/except with which Ray means failed deletions to be harmless, and the
    resumed search dies. A checkpoint that is already gone counts as deleted."""
    from ray.train._internal import checkpoint_manager

    original = checkpoint_manager._delete_fs_path
    if getattr(original, "tolerant", False):
        return

    def delete(fs, fs_path):
        try:
            original(fs=fs, fs_path=fs_path)
        except FileNotFoundError:
            pass

    delete.tolerant = True
    checkpoint_manager._delete_fs_path = delete


def _ray_env(local: bool) -> None:
    if local:
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "5")  # experiment snapshots for --resume
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    os.environ.setdefault("TUNE_WARN_SLOW_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "600")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")


def _init_ray(address: Optional[str], cpus: Optional[float], gpus: Optional[float]) -> None:
    import logging

    import ray

    if address is not None:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        return
    ray.init(address="local", include_dashboard=False, num_cpus=int(cpus), num_gpus=int(gpus),
             object_store_memory=256 * 1024**2, logging_level=logging.WARNING, log_to_driver=False)


def _build_searcher(spec: SearchSpec, concurrency: int):
    s = spec.search
    if s["searcher"] == "optuna":
        import optuna
        from optuna.samplers import TPESampler
        from ray.tune.search import ConcurrencyLimiter
        from ray.tune.search.optuna import OptunaSearch

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        startup = s["startup_trials"]
        if startup is None:
            startup = min(10, max(2, s["num_samples"] // 3))
        sampler = TPESampler(seed=s["seed"], n_startup_trials=startup)
        searcher = OptunaSearch(DefineByRun(spec.dims, spec.base_flat), metric=s["metric"], mode=s["mode"],
                                sampler=sampler)
        return ConcurrencyLimiter(searcher, max_concurrent=concurrency), None, s["num_samples"]
    from ray import tune
    from ray.tune.search.basic_variant import BasicVariantGenerator

    if s["searcher"] == "grid":
        param_space = {d.key: tune.grid_search(list(d.values)) for d in spec.dims}
        num_samples = 1
    else:
        param_space = {d.key: d.domain() for d in spec.dims}
        num_samples = s["num_samples"]
    searcher = BasicVariantGenerator(max_concurrent=concurrency, random_state=s["seed"])
    return searcher, param_space, num_samples


def _build_scheduler(spec: SearchSpec):
    s = spec.search
    if s["scheduler"] == "fifo":
        from ray.tune.schedulers import FIFOScheduler

        return FIFOScheduler()
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(time_attr="epoch_equiv", metric=s["metric"], mode=s["mode"],
                         max_t=max(1, math.ceil(spec.budget)), grace_period=s["grace_period"],
                         reduction_factor=s["reduction_factor"])


def _wrapped_trainable(spec: SearchSpec):
    from ray import tune

    setup = {"base": spec.base_flat, "dims": spec.dims, "cpu": spec.resources["cpu"],
             "gpu": spec.resources["gpu"], "crash": os.environ.get(CRASH_ENV)}
    trainable = tune.with_parameters(_trainable, setup=setup)
    return tune.with_resources(trainable, {"cpu": spec.resources["cpu"], "gpu": spec.resources["gpu"]})


def _run(spec: SearchSpec, exp_dir: Path, resuming: bool, concurrency: int, callbacks, live_interval_s,
         stream, tracking: tuple = (None, None)) -> Path:
    live = LiveCallback(spec.dim_keys, spec.search["metric"], spec.search["mode"], spec.num_trials,
                    interval_s=live_interval_s, stream=stream,
                        label=StrategyLabel(spec.dims, spec.base_flat))
    extra = callbacks(spec, exp_dir) if callable(callbacks) else list(callbacks or [])
    all_callbacks = [live, *extra, _JsonLogger(), _CSVLogger()]
    _print_header(spec, exp_dir, resuming, concurrency, stream)
    trainable = _wrapped_trainable(spec)
    importlib.import_module(f"{__package__}.train")  # before the define-by-run labels need it

    if resuming:
        if not tune.Tuner.can_restore(str(exp_dir)):
            raise UserError("--resume", f"{exp_dir} holds no Ray Tune experiment state to resume")
        tuner = tune.Tuner.restore(str(exp_dir), trainable=trainable, resume_unfinished=True,
                                   resume_errored=True)
        internal = getattr(tuner, "_local_tuner", None) or getattr(tuner, "_tuner_internal", None)
        run_config = getattr(internal, "_run_config", None)
        if run_config is None:
            raise RuntimeError("cannot install fresh callbacks on the restored Tuner (Ray internals changed)")
        run_config.callbacks = all_callbacks  # fresh callbacks (the pickled ones hold the old run's state)
    else:
        searcher, param_space, num_samples = _build_searcher(spec, concurrency)
        exp_dir.mkdir(parents=True, exist_ok=True)
        (exp_dir / SPACE_FILE).write_text(_space_yaml(spec))
        tuner = tune.Tuner(
            trainable,
            param_space=param_space,
            tune_config=tune.TuneConfig(search_alg=searcher, scheduler=_build_scheduler(spec),
                                        num_samples=num_samples, reuse_actors=True,
                                        trial_dirname_creator=_trial_dirname),
            run_config=tune.RunConfig(
                name=exp_dir.name, storage_path=str(exp_dir.parent), verbose=0, callbacks=all_callbacks,
                checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
                failure_config=tune.FailureConfig(max_failures=spec.run["max_failures"])),
        )
    tracker = _start_tracking(spec, exp_dir, tracking)
    if tracker is not None:
        all_callbacks.append(TrackingCallback(tracker, spec, exp_dir))
    import logging

    controller_log = logging.getLogger("ray.tune.execution.tune_controller")
    if not any(isinstance(f, _ShortTrialErrors) for f in controller_log.filters):
        controller_log.addFilter(_ShortTrialErrors())
    results = tuner.fit()
    rows = collect_rows(spec, results, live.final_status)
    path = exp_dir / RESULTS_FILE
    write_results(rows, spec, path)
    best = best_row(rows, spec)
    if best is not None:
        cfg = trial_config(spec.base_flat, best["_params"], spec.dims)
        from .config import to_yaml

        (exp_dir / BEST_FILE).write_text(f"# best trial {best['trial_id']} of search {exp_dir.name}: "
                                         f"{spec.search['metric']} {best['final_' + spec.search['metric']]}\n"
                                         + to_yaml(cfg))
    print_summary(rows, spec, best, path, exp_dir, stream)
    unfinished = [r for r in rows if r["status"] == "unfinished"]
    _finish_tracking(tracker, rows, exp_dir, "KILLED" if unfinished else "FINISHED")
    if unfinished:
        out_arg = "" if exp_dir.parent == Path(abs_storage("tune_results")) else f" --out {exp_dir.parent}"
        print(f"interrupted with {len(unfinished)} trials unfinished; continue with the same command and "
              f"--resume {exp_dir.name}{out_arg}", file=sys.stderr, flush=True)
        raise KeyboardInterrupt  # the CLI exits 130
    if rows and all(r["status"] == "failed" for r in rows):
        raise SearchFailed(f"all {len(rows)} trials failed; see the error.txt files under {exp_dir}")
    return path


class LiveCallback(LiveView, tune.Callback):
    """The live view as a Ray Tune callback."""


class _KeepLocalHistory:
    """Ray's result loggers (result.json, progress.csv), except that a trial restarted by the same driver
    (a retry after a crash) keeps the file this driver has been writing. Ray copies the stored file over
    it whenever the trial has a checkpoint, but the stored copy is only synced now and then and can be
    older: the retried trial then lost the reports it made before the crash (seen in bench/soak.py). A
    new driver (--resume) has no local file yet and takes the stored one, as before."""

    def _restore_from_remote(self, file_name: str, trial) -> None:
        local = Path(trial.local_path, file_name)
        if local.is_file() and local.stat().st_size > 0:
            return
        super()._restore_from_remote(file_name, trial)


class _JsonLogger(_KeepLocalHistory, JsonLoggerCallback):
    pass


class _CSVLogger(_KeepLocalHistory, CSVLoggerCallback):
    pass


# ---------------------------------------------------------------------------------------------------
# MLflow (the MLflow side is `tracking.SearchTracker`; this adapts Ray Tune's callback events to it)


def _start_tracking(spec: SearchSpec, exp_dir: Path, tracking: tuple):
    uri, artifact_location = tracking
    if uri is None:
        return None
    tracker = SearchTracker(uri, spec.tracking["experiment"], exp_dir, artifact_location,
                            log_checkpoint=spec.tracking["log_checkpoint"])
    tracker.start(exp_dir.name, search_tags(spec), search_params(spec), exp_dir / SPACE_FILE)
    return tracker


def _finish_tracking(tracker, rows: list[dict], exp_dir: Path, status: str) -> None:
    """Final statuses from results.csv, then the parent's artifacts: results, report, plots, best config."""
    from .report import PLOTS, REPORT_FILE, build_report

    try:
        build_report(exp_dir)
    except UserError:  # no trial reported anything
        pass
    if tracker is None:
        return
    for row in rows:
        tracker.set_status(row["trial_id"], row["status"])
    tracker.finish([exp_dir / f for f in (RESULTS_FILE, REPORT_FILE, BEST_FILE, *PLOTS)], status=status)
    if tracker.down:
        print(f"MLflow was unreachable during the search; upload what is missing with: tune-hardbatch report "
              f"{exp_dir} --sync", file=sys.stderr, flush=True)


class TrackingCallback(tune.Callback):
    """One nested MLflow child run per trial: params, every result at step = backprops, status, artifacts."""

    def __init__(self, tracker, spec: SearchSpec, exp_dir: Path):
        self.tracker, self.spec, self.exp_dir = tracker, spec, Path(exp_dir)
        self.histories: dict[str, list] = {}

    def __getstate__(self):  # Ray pickles callbacks into its experiment state; --resume makes fresh ones
        return {"tracker": None, "spec": None, "exp_dir": self.exp_dir, "histories": {}}

    def _ensure_run(self, trial) -> bool:
        if self.tracker is None:
            return False
        if trial.trial_id not in self.histories:  # a restored trial: what it reported before
            from .report import read_history

            self.histories[trial.trial_id] = read_history(self.exp_dir / trial.trial_id)
        if trial.trial_id not in self.tracker.mapping["trials"]:
            params, tags, _ = trial_record(self.spec, self._params(trial))
            self.tracker.trial_run(trial.trial_id, params, tags)
        return True

    def _params(self, trial) -> dict:
        return {k: trial.config[k] for k in self.spec.dim_keys if k in trial.config}

    def on_trial_start(self, iteration, trials, trial, **info):
        self._ensure_run(trial)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if self._ensure_run(trial):
            self.histories[trial.trial_id].append(result)
            self.tracker.log_result(trial.trial_id, result)

    def on_trial_complete(self, iteration, trials, trial, **info):
        if self._ensure_run(trial):
            history = self.histories[trial.trial_id]
            self._end(trial, trial_status(None, history[-1] if history else {}, False))

    def on_trial_error(self, iteration, trials, trial, **info):
        if self._ensure_run(trial):
            self._end(trial, "failed")

    def _end(self, trial, status: str) -> None:
        _, tags, cfg = trial_record(self.spec, self._params(trial))
        files = trial_artifacts(cfg, self.histories[trial.trial_id], self.exp_dir / trial.trial_id,
                                f"trial {trial.trial_id} {tags['strategy']}")
        checkpoint = getattr(trial, "checkpoint", None)
        if self.tracker.log_checkpoint and checkpoint is not None and getattr(checkpoint, "path", None):
            files.append(Path(checkpoint.path))
        self.tracker.end_trial(trial.trial_id, status, files)


class _ShortTrialErrors:
    """Logging filter: Ray's multi-screen traceback per failed trial is replaced by the live view's one line
    (error message and the path of the trial's error.txt)."""

    def filter(self, record) -> bool:
        return not str(record.msg).startswith("Trial task failed")


class SearchFailed(RuntimeError):
    """Every trial failed (exit 1, not a user error)."""


def _space_yaml(spec: SearchSpec) -> str:
    header = f"# {spec.question}\n\n" if spec.question else ""
    return header + f"# resolved search space (from {spec.source}); used by --resume\n" + \
        yaml.safe_dump(spec.raw, sort_keys=False)


def _print_header(spec: SearchSpec, exp_dir: Path, resuming: bool, concurrency: int, stream) -> None:
    s, r = spec.search, spec.resources
    lines = []
    if spec.question:
        lines.append(spec.question)
    lines.append(f"{'resuming' if resuming else 'search'} {exp_dir.name}: {spec.num_trials} trials, "
                 f"searcher {s['searcher']}, scheduler {s['scheduler']}"
                 + (f" (grace {s['grace_period']:g}, reduction {s['reduction_factor']:g}, "
                    f"max_t {math.ceil(spec.budget)} epoch-equivalents)" if s["scheduler"] == "asha" else "")
                 + f", {s['metric']} {s['mode']}, {concurrency} at a time, {r['cpu']:g} CPU"
                 + (f" + {r['gpu']:g} GPU" if r["gpu"] else "") + " per trial")
    for d in spec.dims:
        lines.append(f"  {d.key}: {d.describe()}")
    for note in spec.notes:
        lines.append(f"  note: {note}")
    lines.append(f"  results under {exp_dir} (continue an interrupted search with --resume {exp_dir.name})")
    print("\n".join(lines), file=stream, flush=True)
