"""The worker side (`ray_backend.worker`): its warnings collector, GPU memory share and imports. Its
checkpoints: `test_checkpoints.py`."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import pytest

from tune_hardbatch.ray_backend import worker
from tune_hardbatch.ray_backend.worker import TrialWarnings


def test_trial_warnings_are_sent_once_each():
    notes = TrialWarnings()
    with notes:
        warnings.warn("a fallback", RuntimeWarning)
        warnings.warn("a fallback", RuntimeWarning)
    notes.add("trial t: unreadable checkpoint")
    notes.add("trial t: unreadable checkpoint")
    assert notes.take() == {"warnings": "RuntimeWarning: a fallback | trial t: unreadable checkpoint"}
    assert notes.take() == {}


def test_gpu_memory_cap_leaves_room_for_each_cuda_context():
    gib = 1 << 30
    assert worker.memory_fraction(0.25, 16 * gib) == 0.25 - 1 / 16  # four trials: 4 x (3 GiB + 1 GiB context)
    assert 0.25 - worker.memory_fraction(0.25, 141 * gib) < 0.01  # an H200: the context is under 1%
    assert worker.memory_fraction(0.05, 8 * gib) == 0.05  # never below 5% of the card


@pytest.mark.e2e  # a fresh interpreter that imports Ray
def test_a_worker_imports_none_of_the_drivers_side():
    """Each new Ray worker imports `ray_backend.worker` (Ray unpickles the trainable by reference): the
    package must not pull in the driver, the verdict or scipy (~0.7 s a worker), nor torch before a trial
    runs; `run_search` still comes from the package on first use."""
    script = ("import json, sys\n"
              "import tune_hardbatch.ray_backend.worker\n"
              "before = sorted(m for m in ('tune_hardbatch.ray_backend.driver', 'tune_hardbatch.verdict.comparisons', 'scipy', "
              "'torch', 'matplotlib', 'mlflow', 'optuna') if m in sys.modules)\n"
              "from tune_hardbatch.ray_backend import run_search, SearchFailed\n"
              "print(json.dumps({'before': before, 'after': run_search.__module__}))\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"before": [], "after": "tune_hardbatch.ray_backend.driver"}


def test_a_trials_curves_are_drawn_on_a_thread_the_worker_waits_for_at_exit(tmp_path):
    """Drawing does not hold up the trial's last report or its actor's reset (a thread of its own), and the
    thread is not a daemon, so a worker that Ray ends gracefully finishes the picture first."""
    from tune_hardbatch.search import space as SP

    cfg = SP.load_space(None).base_cfg
    curves = worker.Curves(cfg, {}, {"artifacts": True}, "t1", tmp_path / "t1")
    history = [{"epoch_equiv": 1.0, "test_top1": 40.0, "train_loss": 1.5, "test_loss": 1.6, "lr": 0.1}]
    curves.draw(history)
    history.append({"epoch_equiv": 2.0, "test_top1": float("nan")})  # the trainer's list is not the one drawn
    assert curves.thread is not None and not curves.thread.daemon
    curves.thread.join(60)
    assert (tmp_path / "t1" / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "t1" / "config.yaml").is_file()  # written as the trial starts
    off = worker.Curves(cfg, {}, {}, "t2", tmp_path / "t2")  # tracking off: nothing drawn, no thread
    off.draw(history)
    assert off.thread is None and not (tmp_path / "t2").exists()


def test_a_confirmation_trial_keeps_its_test_correctness_before_its_last_report(tmp_path, monkeypatch):
    """A confirmation trial that trained its whole budget writes test_correct.npz before its last report (the
    driver reads it once the trial ended), and again when a restored final checkpoint finds it missing; a
    search trial writes none. `tune` is a stand-in that records, at each report, whether the file is there."""
    from types import SimpleNamespace

    from tune_hardbatch.ray_backend.checkpoints import CheckpointPolicy
    from tune_hardbatch.training.config import build_config
    from tune_hardbatch.training.correctness import CORRECT_FILE, load_correct
    from tune_hardbatch.training.loop import Trainer

    seen = []
    def report(metrics):
        seen.append((metrics["budget_done"], (trial_dir / CORRECT_FILE).is_file()))

    monkeypatch.setattr(worker, "tune", SimpleNamespace(get_checkpoint=lambda: None, report=report))
    monkeypatch.setattr(CheckpointPolicy, "due", lambda self, report, last: False)  # no checkpoint: plain reports
    cfg = build_config({"device": "cpu", "epochs": 2, "optim": {"batch_size": 16},
                        "data": {"name": "synthetic", "synthetic_shape": [3, 8, 8], "synthetic_train": 64,
                                 "synthetic_test": 50}})
    for confirm in (False, True):
        trial_dir, seen[:] = tmp_path / f"confirm={confirm}", []
        trainer = Trainer(cfg)
        run = (trainer, None, "t1", "node", worker.TrialWarnings(), CheckpointPolicy(None), trial_dir,
               worker.Curves(cfg, {}, {}, "t1", trial_dir))
        worker._train(*run, confirm=confirm)
        assert seen == [(0, False), (1, confirm)]
        (trial_dir / CORRECT_FILE).unlink(missing_ok=True)
        worker._train(*run, confirm=confirm)  # the final checkpoint restored: its end reported again
        assert seen[-1] == (1, confirm)
        if confirm:
            assert 100 * load_correct(trial_dir).mean() == trainer.history[-1]["test_top1"]
