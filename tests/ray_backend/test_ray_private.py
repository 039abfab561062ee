"""Every private Ray API the package uses (`ray_backend.ray_private`): still there, still behaving as the
package assumes, and a loud `RayInternalsChanged` naming the Ray symbol when an upgrade removes it."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest

from tune_hardbatch.ray_backend import ray_private as RP


def test_pruned_checkpoint_deletion_tolerates_a_missing_path(tmp_path):
    import pyarrow.fs
    from ray.train._internal import checkpoint_manager

    RP.tolerate_pruned_checkpoints()
    RP.tolerate_pruned_checkpoints()  # idempotent: wrapped once
    delete = checkpoint_manager._delete_fs_path
    assert delete.tolerant and not getattr(delete.__closure__[0].cell_contents, "tolerant", False)
    (tmp_path / "checkpoint_000000").mkdir()
    fs = pyarrow.fs.LocalFileSystem()
    delete(fs=fs, fs_path=str(tmp_path / "checkpoint_000000"))
    assert not (tmp_path / "checkpoint_000000").exists()
    delete(fs=fs, fs_path=str(tmp_path / "checkpoint_000000"))  # already gone: no FileNotFoundError


def test_pruned_checkpoint_patch_names_the_symbol_when_it_is_gone(monkeypatch):
    from ray.train._internal import checkpoint_manager

    monkeypatch.delattr(checkpoint_manager, "_delete_fs_path")
    with pytest.raises(RP.RayInternalsChanged, match="_delete_fs_path"):
        RP.tolerate_pruned_checkpoints()


def _trial(tmp_path: Path):
    return SimpleNamespace(local_path=str(tmp_path / "local"), checkpoint=object(),
                           storage=SimpleNamespace(trial_fs_path=str(tmp_path / "stored"),
                                                   storage_filesystem=None))


def test_result_loggers_keep_the_local_history_on_a_retry(tmp_path):
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    loggers = RP.history_loggers()
    assert isinstance(loggers[0], JsonLoggerCallback) and isinstance(loggers[1], CSVLoggerCallback)
    trial = _trial(tmp_path)
    (tmp_path / "local").mkdir()
    (tmp_path / "stored").mkdir()
    (tmp_path / "local" / "result.json").write_text('{"epoch": 1}\n{"epoch": 2}\n')
    (tmp_path / "stored" / "result.json").write_text('{"epoch": 1}\n')  # an older synced copy
    loggers[0]._restore_from_remote("result.json", trial)
    assert (tmp_path / "local" / "result.json").read_text().count("epoch") == 2


def test_result_loggers_take_the_stored_history_on_a_new_driver(tmp_path, monkeypatch):
    """No local file (a --resume): Ray's own restore runs (here: its copy call is seen)."""
    import pyarrow.fs

    copied = []
    monkeypatch.setattr(pyarrow.fs, "copy_files", lambda src, dst, **kw: copied.append((src, dst)))
    RP.history_loggers()[0]._restore_from_remote("result.json", _trial(tmp_path))
    assert copied and copied[0][0].endswith("stored/result.json")


def test_result_logger_override_names_the_symbol_when_it_is_gone(monkeypatch):
    from ray.tune.logger import logger

    monkeypatch.delattr(logger.LoggerCallback, "_restore_from_remote")
    with pytest.raises(RP.RayInternalsChanged, match="_restore_from_remote"):
        RP.history_loggers()


def test_restored_tuner_run_config_is_the_live_one(tmp_path):
    from ray import tune

    tuner = tune.Tuner(lambda config: None, run_config=tune.RunConfig(name="x", storage_path=str(tmp_path)))
    run_config = RP.restored_run_config(tuner)
    fresh = [tune.Callback()]
    run_config.callbacks = fresh
    assert RP.restored_run_config(tuner).callbacks is fresh
    with pytest.raises(RP.RayInternalsChanged, match="_local_tuner"):
        RP.restored_run_config(SimpleNamespace())


def test_trial_error_filter_drops_only_the_traceback_record(monkeypatch):
    RP.install_trial_error_filter()
    RP.install_trial_error_filter()
    log = logging.getLogger(RP.CONTROLLER_LOGGER)
    filters = [f for f in log.filters if isinstance(f, RP.ShortTrialErrors)]
    assert len(filters) == 1

    def record(msg):
        return logging.LogRecord(RP.CONTROLLER_LOGGER, logging.ERROR, __file__, 1, msg, None, None)

    assert not filters[0].filter(record("Trial task failed for trial t_0001"))
    assert filters[0].filter(record("something else"))
    monkeypatch.setattr(RP, "TRIAL_ERROR_PREFIX", "A message Ray never logged")
    with pytest.raises(RP.RayInternalsChanged, match="tune_controller"):
        RP.install_trial_error_filter()


def test_checkpoint_layout_sorts_by_age(tmp_path, monkeypatch):
    names = [RP.checkpoint_dir_name(i) for i in (0, 3, 12)]
    assert names == ["checkpoint_000000", "checkpoint_000003", "checkpoint_000012"]
    for name in names:
        (tmp_path / name).mkdir()
    assert [p.name for p in RP.trial_checkpoints(tmp_path)] == names[::-1]
    from ray.train._internal.storage import StorageContext

    monkeypatch.delattr(StorageContext, "_make_checkpoint_dir_name")
    with pytest.raises(RP.RayInternalsChanged, match="_make_checkpoint_dir_name"):
        RP.checkpoint_dir_name(0)


def _optuna_search(suggested: str = "t1"):
    """Ray's OptunaSearch (in-memory study) that has suggested a config for trial `suggested`."""
    from ray.tune.search.optuna import OptunaSearch

    searcher = OptunaSearch(space=lambda trial: {"x": trial.suggest_float("x", 0.0, 1.0)}, metric="m",
                            mode="max", seed=0)
    assert "x" in searcher.suggest(suggested)
    return searcher


def test_optuna_trials_are_read_and_told_as_optuna_search_does(caplog):
    import optuna
    from optuna.trial import TrialState
    from ray.tune.search.optuna import OptunaSearch

    searcher = _optuna_search()
    trial = RP.open_optuna_trial(searcher, "t1")
    assert isinstance(trial, optuna.Trial) and RP.open_optuna_trial(searcher, "t2") is None
    trial.report(0.5, 100)  # an intermediate value at our own step
    RP.tell_optuna(searcher, "t1", 0.7, TrialState.COMPLETE)
    RP.tell_optuna(searcher, "t1", None, TrialState.FAIL)  # told already: nothing
    RP.tell_optuna(searcher, "t2", None, TrialState.FAIL)  # no Optuna trial: nothing
    (told,) = searcher._ot_study.trials
    assert told.state == TrialState.COMPLETE and told.value == 0.7 and told.intermediate_values == {100: 0.5}
    assert RP.open_optuna_trial(searcher, "t1") is None
    with caplog.at_level(logging.WARNING):  # Ray's own methods see the trial as told (one bookkeeping)
        OptunaSearch.on_trial_complete(searcher, "t1", {"m": 0.1})
    assert "already finished" in caplog.text and searcher._ot_study.trials[0].value == 0.7
    assert RP.optuna_study(searcher) is searcher._ot_study


def test_the_study_objective_is_named_after_the_metric(tmp_path):
    """optuna-dashboard shows the study's metric name ("val_top1"), not "Objective 0"."""
    import optuna

    from tune_hardbatch.ray_backend.optuna_search import TruthfulOptunaSearch, study_storage

    def space(trial):
        trial.suggest_float("x", 0.0, 1.0)

    searcher = TruthfulOptunaSearch(space=space, metric="val_top1", mode="max", seed=0, study_name="named",
                                    storage=study_storage(tmp_path))
    searcher.suggest("t1")
    searcher.on_trial_result("t1", {"val_top1": 50.0, "epoch_equiv": 1.0})
    assert optuna.load_study(study_name="named", storage=study_storage(tmp_path)).metric_names == ["val_top1"]


def test_a_trial_the_journal_ended_before_a_driver_died_is_not_ended_again(tmp_path):
    """A driver killed after telling Optuna a trial's end but before Ray saved the searcher's state: the
    resumed searcher (its state from that snapshot) sees the trial report and end again; the study keeps
    the end its journal has, and the search goes on (no UpdateFinishedTrialError through Ray)."""
    import optuna
    from optuna.trial import TrialState

    from tune_hardbatch.ray_backend.optuna_search import TruthfulOptunaSearch, study_storage

    searcher = TruthfulOptunaSearch(space=lambda trial: {"x": trial.suggest_float("x", 0.0, 1.0)},
                                    metric="val_top1", mode="max", seed=0, study_name="s",
                                    storage=study_storage(tmp_path))
    searcher.suggest("t1")
    trial = RP.open_optuna_trial(searcher, "t1")
    # told in the study (its journal), not in the searcher's bookkeeping: what a resumed searcher has
    searcher._ot_study.tell(trial, 60.0, state=TrialState.COMPLETE)
    searcher.on_trial_result("t1", {"val_top1": 61.0, "epoch_equiv": 2.0, "budget_done": 0})
    assert RP.open_optuna_trial(searcher, "t1") is None
    searcher.on_trial_complete("t1", {"val_top1": 62.0, "epoch_equiv": 3.0, "budget_done": 1})
    (kept,) = optuna.load_study(study_name="s", storage=study_storage(tmp_path)).trials
    assert kept.state == TrialState.COMPLETE and kept.value == 60.0 and 200 not in kept.intermediate_values


@pytest.mark.parametrize("name", ["_ot_trials", "_completed_trials", "_ot_study"])
def test_optuna_search_privates_name_the_symbol_when_gone(name):
    from optuna.trial import TrialState

    searcher = _optuna_search()
    delattr(searcher, name)
    with pytest.raises(RP.RayInternalsChanged, match=f"OptunaSearch.{name}"):
        RP.tell_optuna(searcher, "t1", 0.7, TrialState.COMPLETE)


def test_optuna_search_bookkeeping_of_another_kind_is_refused():
    searcher = _optuna_search()
    searcher._completed_trials = list(searcher._completed_trials)
    with pytest.raises(RP.RayInternalsChanged, match="_completed_trials"):
        RP.open_optuna_trial(searcher, "t1")


def test_the_start_up_count_is_the_one_the_sampler_was_built_with():
    """TPE: its n_startup_trials (at most the trials); Optuna's random sampler: every trial; a sampler
    that never draws at random: none; the symbol named when Ray or Optuna drops it."""
    from optuna.samplers import GridSampler
    from ray.tune.search.optuna import OptunaSearch

    from tune_hardbatch.ray_backend.optuna_search import random_sampler, tpe_sampler

    def searcher(sampler):
        return OptunaSearch(space=lambda trial: {"x": trial.suggest_float("x", 0.0, 1.0)}, metric="m", mode="max",
                            sampler=sampler)

    tpe = searcher(tpe_sampler(0, startup=3, concurrency=5))
    assert RP.startup_trials(tpe, 8) == 5 and RP.startup_trials(tpe, 4) == 4
    assert RP.startup_trials(searcher(random_sampler(0)), 8) == 8
    assert RP.startup_trials(searcher(GridSampler({"x": [0.0, 1.0]})), 8) == 0
    del tpe._sampler._n_startup_trials
    with pytest.raises(RP.RayInternalsChanged, match="TPESampler._n_startup_trials"):
        RP.startup_trials(tpe, 8)
    del tpe._sampler
    with pytest.raises(RP.RayInternalsChanged, match="OptunaSearch._sampler"):
        RP.startup_trials(tpe, 8)


def test_an_ended_trial_keeps_only_the_analysis_of_the_keys_the_search_decides_by():
    from ray.tune.trainable.metadata import _TrainingRunMetadata

    metadata = _TrainingRunMetadata()
    for step in (1, 2, 3):
        for key in ("val_top1", "asha_time", "train_loss", "lr", "img_per_s"):
            metadata.update_metric(key, float(step), step=step)
    before = len(metadata.get_json_state())
    RP.forget_analysis(SimpleNamespace(run_metadata=metadata), {"val_top1", "asha_time"})
    assert set(metadata.metric_analysis) == set(metadata.metric_n_steps) == {"val_top1", "asha_time"}
    assert metadata.metric_analysis["val_top1"]["max"] == 3.0
    assert len(metadata.get_json_state()) < before  # Ray's cached JSON was dropped, not served stale


def test_forgetting_the_analysis_names_the_symbol_when_it_is_gone():
    with pytest.raises(RP.RayInternalsChanged, match="run_metadata"):
        RP.forget_analysis(SimpleNamespace(), {"val_top1"})
