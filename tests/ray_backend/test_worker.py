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
