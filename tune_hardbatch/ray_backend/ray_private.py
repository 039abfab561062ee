"""Every use of a private Ray API (Ray 2.60), in one place: what it is, why we need it, and a check. That
includes the Optuna study and trials held privately by Ray's `OptunaSearch` (6).

Each use goes through `_require`, which raises `RayInternalsChanged` naming the Ray symbol when an
upgrade removes or renames it; `tests/ray_backend/test_ray_private.py` exercises every one, so such an
upgrade fails there, loudly, instead of deep inside a search.

1. `PRUNE`: the checkpoint manager's `_delete_fs_path`. Ray deletes checkpoints when the run's
   CheckpointConfig sets `num_to_keep`: `checkpoints.checkpoint_config` does not, but --resume keeps the
   config an experiment was started with, which may. After a driver SIGKILL the restored experiment state
   can then name a checkpoint that was already deleted; Ray deletes it again and `_delete_fs_path` raises
   FileNotFoundError from `_is_directory`, outside the try/except with which Ray means failed deletions to
   be harmless, and the resumed search dies. A missing checkpoint counts as deleted.
2. `HISTORY`: the result loggers' `_restore_from_remote`. A trial restarted by the same driver (a retry
   after a crash) must keep the result.json/progress.csv this driver has been writing: Ray copies the
   stored file over it whenever the trial has a checkpoint, but the stored copy is synced only now and
   then and can be older, so the retried trial lost its earlier reports (seen in bench/soak.py).
3. `RUN_CONFIG`: the restored Tuner's `_local_tuner` (its run config). `Tuner.restore` unpickles the old
   run's callbacks; `--resume` needs fresh ones (live view, MLflow) and Ray has no public setter.
4. `TRIAL_ERROR_LOG`: the tune controller's "Trial task failed" log record: a multi-screen traceback per
   failed trial, replaced by the live view's one line (message and the path of the trial's error.txt).
5. `CHECKPOINT_LAYOUT`: `StorageContext._make_checkpoint_dir_name`: checkpoints are the trial directory's
   `checkpoint_<6-digit index>` folders, so names sort by age: `checkpoints.py` keeps a trial's newest ones
   and, when the checkpoint Ray names cannot be read, falls back to the newest readable other one.
6. `OPTUNA_TRIALS`, `OPTUNA_TOLD`, `OPTUNA_STUDY`: `OptunaSearch`'s `_ot_trials` (Ray trial id -> Optuna
   trial), `_completed_trials` (the ids told already) and `_ot_study`. `optuna_search.TruthfulOptunaSearch`
   replaces what OptunaSearch tells Optuna (intermediate values at equal compute, truthful final states):
   it needs the Optuna trial of a Ray trial and the study, which Ray does not expose, and marks a trial
   told in Ray's own set, which OptunaSearch's other methods (and its saved state) read.
   `OPTUNA_SAMPLER`, `TPE_STARTUP`: `OptunaSearch`'s `_sampler` and a TPE sampler's `_n_startup_trials` (an
   Optuna private). `arm_search.ArmSearch` gives every arm's start-up trials (those its sampler draws at
   random) the same values of the shared dimensions: it needs the count the sampler was built with.
7. `RUN_METADATA`: a trial's `run_metadata.metric_analysis` and `metric_n_steps`. For every numeric key a
   trial ever reported, Ray keeps until the search ends a running max, min, mean and last, the means of the
   last 5 and 10 values with a deque each, and caches all of it as indented JSON: ~80 kB a trial with the
   ~45 keys of a report, most of the driver's growth per trial (measured with tracemalloc in
   bench/bench_driver.py). Only Ray's `get_best_result` reads it, which this package does not call;
   `forget_analysis` keeps an ended trial's analysis of the keys the search decides by.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from pathlib import Path

PRUNE = "ray.train._internal.checkpoint_manager._delete_fs_path"
HISTORY = "ray.tune.logger.logger.LoggerCallback._restore_from_remote"
RUN_CONFIG = "ray.tune.Tuner._local_tuner (TunerInternal.get_run_config)"
TRIAL_ERROR_LOG = "ray.tune.execution.tune_controller: 'Trial task failed'"
CHECKPOINT_LAYOUT = "ray.train._internal.storage.StorageContext._make_checkpoint_dir_name"
OPTUNA_TRIALS = "ray.tune.search.optuna.OptunaSearch._ot_trials"
OPTUNA_TOLD = "ray.tune.search.optuna.OptunaSearch._completed_trials"
OPTUNA_STUDY = "ray.tune.search.optuna.OptunaSearch._ot_study"
OPTUNA_SAMPLER = "ray.tune.search.optuna.OptunaSearch._sampler"
TPE_STARTUP = "optuna.samplers.TPESampler._n_startup_trials"
RUN_METADATA = "ray.tune.experiment.trial.Trial.run_metadata (metric_analysis, metric_n_steps)"

CONTROLLER_LOGGER = "ray.tune.execution.tune_controller"
TRIAL_ERROR_PREFIX = "Trial task failed"


class RayInternalsChanged(RuntimeError):
    """A private Ray API that this package relies on is gone or changed (see the module docstring)."""


def _require(obj, name: str, symbol: str):
    try:
        return getattr(obj, name)
    except AttributeError:
        import ray

        raise RayInternalsChanged(f"{symbol} is gone in Ray {ray.__version__}; tune_hardbatch.ray_backend."
                                  "ray_private needs updating") from None


def _module(path: str, symbol: str):
    try:
        return importlib.import_module(path)
    except ImportError:
        raise RayInternalsChanged(f"{symbol}: module {path} is gone; tune_hardbatch.ray_backend.ray_private "
                                  "needs updating") from None


# 1 ---------------------------------------------------------------------------------------------------
def tolerate_pruned_checkpoints() -> None:
    """Make the checkpoint manager treat an already-deleted checkpoint as deleted (idempotent)."""
    manager = _module("ray.train._internal.checkpoint_manager", PRUNE)
    original = _require(manager, "_delete_fs_path", PRUNE)
    if getattr(original, "tolerant", False):
        return
    if list(inspect.signature(original).parameters) != ["fs", "fs_path"]:
        raise RayInternalsChanged(f"{PRUNE} no longer takes (fs, fs_path)")

    def delete(fs, fs_path):
        try:
            original(fs=fs, fs_path=fs_path)
        except FileNotFoundError:
            pass

    delete.tolerant = True
    manager._delete_fs_path = delete


# 2 ---------------------------------------------------------------------------------------------------
class KeepLocalHistory:
    """Mixin for Ray's result loggers: keep a non-empty local history file instead of the stored copy.

    A new driver (--resume) has no local file yet and takes the stored one, as before.
    """

    def _restore_from_remote(self, file_name: str, trial) -> None:
        local = Path(trial.local_path, file_name)
        if local.is_file() and local.stat().st_size > 0:
            return
        super()._restore_from_remote(file_name, trial)


def history_loggers() -> list:
    """JSON and CSV result loggers (result.json, progress.csv) that keep the local history on retries."""
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    base = _module("ray.tune.logger.logger", HISTORY).LoggerCallback
    restore = _require(base, "_restore_from_remote", HISTORY)
    if list(inspect.signature(restore).parameters) != ["self", "file_name", "trial"]:
        raise RayInternalsChanged(f"{HISTORY} no longer takes (file_name, trial)")
    json_logger = type("JsonLogger", (KeepLocalHistory, JsonLoggerCallback), {"__module__": __name__})
    csv_logger = type("CSVLogger", (KeepLocalHistory, CSVLoggerCallback), {"__module__": __name__})
    return [json_logger(), csv_logger()]


# 3 ---------------------------------------------------------------------------------------------------
def restored_run_config(tuner):
    """The live RunConfig of a restored Tuner, whose `callbacks` may be replaced before `fit()`."""
    internal = _require(tuner, "_local_tuner", RUN_CONFIG)
    run_config = _require(internal, "get_run_config", RUN_CONFIG)()
    if not hasattr(run_config, "callbacks"):
        raise RayInternalsChanged(f"{RUN_CONFIG}: the run config has no callbacks")
    return run_config


# 4 ---------------------------------------------------------------------------------------------------
class ShortTrialErrors(logging.Filter):
    """Drops the controller's per-trial traceback record (the live view prints one line instead)."""

    def filter(self, record) -> bool:
        return not str(record.msg).startswith(TRIAL_ERROR_PREFIX)


def install_trial_error_filter() -> None:
    """Add `ShortTrialErrors` to the controller's logger once; check that Ray still logs that record."""
    controller = _module(CONTROLLER_LOGGER, TRIAL_ERROR_LOG)
    if f'"{TRIAL_ERROR_PREFIX}' not in inspect.getsource(controller) and \
            f"'{TRIAL_ERROR_PREFIX}" not in inspect.getsource(controller):
        raise RayInternalsChanged(f"{TRIAL_ERROR_LOG}: the record is no longer logged there")
    log = logging.getLogger(CONTROLLER_LOGGER)
    if not any(isinstance(f, ShortTrialErrors) for f in log.filters):
        log.addFilter(ShortTrialErrors())


# 5 ---------------------------------------------------------------------------------------------------
def checkpoint_dir_name(index: int) -> str:
    """Ray's name of a trial's checkpoint folder number `index` ('checkpoint_000003')."""
    storage = _module("ray.train._internal.storage", CHECKPOINT_LAYOUT)
    context = _require(storage, "StorageContext", CHECKPOINT_LAYOUT)
    return _require(context, "_make_checkpoint_dir_name", CHECKPOINT_LAYOUT)(index)


def trial_checkpoints(trial_dir: Path) -> list[Path]:
    """A trial directory's checkpoint folders, newest first."""
    trial_dir = Path(trial_dir)
    if not trial_dir.is_dir():
        return []
    prefix = checkpoint_dir_name(0).rstrip("0")  # "checkpoint_": zero-padded indices sort by age
    return sorted((p for p in trial_dir.glob(f"{prefix}*") if p.is_dir()), reverse=True)


# 6 ---------------------------------------------------------------------------------------------------
def _optuna_bookkeeping(searcher) -> tuple[dict, set]:
    """An `OptunaSearch`'s (Ray trial id -> Optuna trial, ids of the trials told their end)."""
    trials = _require(searcher, "_ot_trials", OPTUNA_TRIALS)
    told = _require(searcher, "_completed_trials", OPTUNA_TOLD)
    if not isinstance(trials, dict) or not isinstance(told, set):
        raise RayInternalsChanged(f"{OPTUNA_TRIALS} is no longer a dict or {OPTUNA_TOLD} no longer a set")
    return trials, told


def open_optuna_trial(searcher, trial_id: str):
    """The Optuna trial of Ray trial `trial_id` in an `OptunaSearch`, or None when it has none or its end
    was told already."""
    trials, told = _optuna_bookkeeping(searcher)
    return None if trial_id in told else trials.get(trial_id)


def optuna_study(searcher):
    """An `OptunaSearch`'s Optuna study (None before its search properties are set)."""
    return _require(searcher, "_ot_study", OPTUNA_STUDY)


def startup_trials(searcher, trials: int) -> int:
    """How many of an `OptunaSearch`'s `trials` its sampler draws at random: a TPE sampler's start-up
    trials, every trial for Optuna's random sampler, none for another sampler."""
    from optuna.samplers import RandomSampler, TPESampler

    sampler = _require(searcher, "_sampler", OPTUNA_SAMPLER)
    if isinstance(sampler, TPESampler):
        startup = getattr(sampler, "_n_startup_trials", None)
        if not isinstance(startup, int):
            import optuna

            raise RayInternalsChanged(f"{TPE_STARTUP} is gone or no longer an int in Optuna {optuna.__version__}; "
                                      "tune_hardbatch.ray_backend.ray_private needs updating")
        return min(startup, trials)
    return trials if isinstance(sampler, RandomSampler) else 0


def tell_optuna(searcher, trial_id: str, value, state) -> None:
    """Tell an `OptunaSearch`'s study how Ray trial `trial_id` ended (`value`, and `state`: an Optuna
    TrialState) and mark it told, as OptunaSearch does itself; nothing when it has no open Optuna trial."""
    trials, told = _optuna_bookkeeping(searcher)
    if trial_id in told or trial_id not in trials:
        return
    # skip_if_finished: the journal may hold its end already (a driver killed after telling it, before the
    # searcher's state was saved with the experiment's snapshot; the resumed trial then ends again)
    _require(searcher, "_ot_study", OPTUNA_STUDY).tell(trials[trial_id], value, state=state, skip_if_finished=True)
    told.add(trial_id)


def orphan_optuna_trials(searcher) -> list:
    """The RUNNING trials of an `OptunaSearch`'s study that it holds no Ray trial for: asked by a driver killed
    before the snapshot it was restored from (Ray re-creates their trials anew)."""
    from optuna.trial import TrialState

    trials, _ = _optuna_bookkeeping(searcher)
    study = optuna_study(searcher)
    if study is None:
        return []
    known = {t.number for t in trials.values()}
    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)) if t.number not in known]


def mark_told(searcher, trial_id: str) -> None:
    """Ray trial `trial_id`'s Optuna trial has ended in the study already: nothing more goes to it."""
    _optuna_bookkeeping(searcher)[1].add(trial_id)


# 7 ---------------------------------------------------------------------------------------------------
def forget_analysis(trial, keep) -> None:
    """Drop an ended trial's running analysis of every reported key but those in `keep` (see 7 above)."""
    metadata = _require(trial, "run_metadata", RUN_METADATA)
    analysis = _require(metadata, "metric_analysis", RUN_METADATA)
    steps = _require(metadata, "metric_n_steps", RUN_METADATA)
    if not isinstance(analysis, dict) or not isinstance(steps, dict):
        raise RayInternalsChanged(f"{RUN_METADATA}: no longer dicts")
    metadata.metric_analysis = {k: v for k, v in analysis.items() if k in keep}  # setattr drops Ray's JSON cache
    metadata.metric_n_steps = {k: v for k, v in steps.items() if k in keep}
