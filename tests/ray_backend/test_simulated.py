"""Simulated trials (`ray_backend.simulated`, the driver-capacity benchmark's test hook): they report what a real
trial reports, and they run on a real local Ray through the same driver."""

from __future__ import annotations

import math
import random

import pytest
from search_helpers import read_rows, space

from tune_hardbatch.ray_backend import simulated as SIM
from tune_hardbatch.training.config import build_config


def test_a_simulated_report_has_every_key_of_a_real_one():
    from tune_hardbatch.training.loop import Trainer

    cfg = build_config({"device": "cpu", "data": {"name": "digits", "train_limit": 256}, "epochs": 1,
                        "model": {"name": "test_resnet"}, "optim": {"batch_size": 64}})
    real = next(iter(Trainer(cfg).run()))
    fake = SIM.report_of(cfg, 1, random.Random(0), 256, 0.5)
    assert set(fake) == set(real)
    assert fake["backprops"] == real["backprops"] == 4 and fake["samples_forward"] == real["samples_forward"]
    assert all(isinstance(v, (int, float)) for v in fake.values())


def test_settings_parse_and_refuse_negative_seconds():
    assert SIM.settings("interval=0.2,warmup=3") == (0.2, 3.0)
    assert SIM.settings("") == (0.05, 0.0)
    with pytest.raises(ValueError, match="must be >= 0"):
        SIM.settings("interval=-1")


def test_accuracy_peaks_near_lr_0_1_so_a_searcher_has_something_to_find():
    cfg = lambda lr: build_config({"optim": {"lr": lr}})  # noqa: E731
    top1 = {lr: SIM.report_of(cfg(lr), 4, random.Random(0), 1000, 1.0)["val_top1"] for lr in (0.01, 0.1, 1.0)}
    assert top1[0.1] > top1[0.01] and top1[0.1] > top1[1.0]


@pytest.mark.e2e
@pytest.mark.timeout(180)
def test_a_search_of_simulated_trials_runs_through_the_driver(local_ray, tmp_path, monkeypatch):
    from tune_hardbatch.ray_backend import run_search

    monkeypatch.setenv(SIM.SIMULATE_ENV, "interval=0.01")
    spec = space(base={"epochs": 3}, space={"optim.lr": {"loguniform": [0.01, 0.3]}},
                 search={"searcher": "optuna", "scheduler": "halving", "num_samples": 6, "grace_period": 1})
    path = run_search(spec, out=str(tmp_path), sets=["run.name=sim"])
    rows = read_rows(path)
    assert len(rows) == 6 and {r["status"] for r in rows} <= {"finished", "stopped_early"}
    done = [r for r in rows if r["status"] == "finished"]
    assert done and all(math.isclose(float(r["epoch_equiv"]), 3.0) for r in done)
