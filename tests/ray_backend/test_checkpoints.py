"""The checkpoint policy (`ray_backend.checkpoints`): when a trial saves, what a running and an ended trial
keep, loading with fallback, pruning at the end of the search, and Ray's own checkpoint settings."""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

from tune_hardbatch.ray_backend import checkpoints as CK
from tune_hardbatch.search.trials import Trial


def test_every_k_epoch_equivalents_plus_first_and_last():
    policy = CK.CheckpointPolicy(every=3)
    saved = []
    for ee in range(1, 9):
        if policy.due({"epoch_equiv": float(ee)}, finished=ee == 8):
            policy.saved({"epoch_equiv": float(ee)}, started=0.0)
            saved.append(ee)
    assert saved == [1, 4, 7, 8]


def test_auto_keeps_checkpoints_at_two_percent_of_the_time(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(CK.time, "perf_counter", lambda: clock[0])
    policy = CK.CheckpointPolicy(every=None)
    saved, spent = [], 0.0
    for epoch in range(1, 201):  # epochs of 1 s; each checkpoint costs 0.2 s
        clock[0] += 1.0
        report = {"epoch_equiv": float(epoch)}
        if policy.due(report, finished=epoch == 200):
            start = clock[0]
            clock[0] += 0.2
            spent += 0.2
            policy.saved(report, start)
            saved.append(epoch)
    assert saved[0] == 1 and saved[-1] == 200
    assert spent / clock[0] <= CK.CheckpointPolicy.AUTO_SHARE + 0.002  # at most 2% (+ the forced last one)
    assert 10 <= len(saved) <= 25  # about every 10 s of training: a retry loses at most that


def test_ray_deletes_no_checkpoint_itself():
    assert CK.checkpoint_config().num_to_keep is None


def _trial(path: Path, n: int, size: int = 10) -> Path:
    """A trial folder with checkpoints 0..n-1, each holding a `size`-byte file and a subfolder."""
    for i in range(n):
        folder = path / f"checkpoint_{i:06d}"
        (folder / "extra").mkdir(parents=True)
        (folder / CK.CHECKPOINT_FILE).write_bytes(b"x" * size)
    return path


def _contents(trial: Path) -> dict[str, list[str]]:
    return {p.name: sorted(c.name for c in p.iterdir()) for p in sorted(trial.glob("checkpoint_*"))}


def test_a_running_trial_keeps_its_newest_two_and_hollows_the_older_ones(tmp_path):
    trial = _trial(tmp_path / "t", 4)
    CK.hollow_older(trial)
    assert _contents(trial) == {"checkpoint_000000": [], "checkpoint_000001": [],  # folders left: a snapshot
                                "checkpoint_000002": ["extra", CK.CHECKPOINT_FILE],  # may name them
                                "checkpoint_000003": ["extra", CK.CHECKPOINT_FILE]}
    CK.hollow_older(tmp_path / "missing")  # a trial without a folder yet: nothing to do


def test_an_ended_trial_keeps_only_its_newest_hollowed_on_a_thread(tmp_path):
    trial = _trial(tmp_path / "t", 3)
    thread = CK.hollow_ended(trial)
    thread.join(timeout=10)
    assert thread.daemon and not thread.is_alive()
    assert _contents(trial) == {"checkpoint_000000": [], "checkpoint_000001": [],
                                "checkpoint_000002": ["extra", CK.CHECKPOINT_FILE]}


def test_keep_newest_deletes_the_older_folders_and_counts_the_bytes(tmp_path):
    trial = _trial(tmp_path / "t", 3, size=7)
    assert CK.keep_newest(trial, 1) == 14
    assert [p.name for p in trial.iterdir()] == ["checkpoint_000002"]
    assert CK.keep_newest(trial, 0) == 7 and list(trial.iterdir()) == []


def test_prune_ended_keeps_only_the_newest_of_keep_ids_and_leaves_errored_and_unfinished_trials(tmp_path):
    statuses = {"best": "finished", "done": "finished", "early": "stopped_early", "nan": "diverged",
                "oom": "failed", "crashed": "failed", "running": "unfinished"}
    rows = [Trial(t, s, errored=t == "crashed") for t, s in statuses.items()]
    for t in statuses:
        _trial(tmp_path / t, 2, size=5)
    assert CK.prune_ended(tmp_path, rows, {"best"}) == 5 + 4 * 10  # best's older one, all of four ended trials
    left = {t: sorted(p.name for p in (tmp_path / t).glob("checkpoint_*")) for t in statuses}
    assert left == {"best": ["checkpoint_000001"], "done": [], "early": [], "nan": [], "oom": [],
                    "crashed": ["checkpoint_000000", "checkpoint_000001"],  # --resume retries it
                    "running": ["checkpoint_000000", "checkpoint_000001"]}


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


class _StubCheckpoint:
    """What `load_checkpoint` uses of a `ray.tune.Checkpoint` on local storage."""

    def __init__(self, path: Path):
        self.path = str(path)

    def as_directory(self):
        return contextlib.nullcontext(self.path)


def test_unreadable_checkpoint_falls_back_to_the_newest_readable_other_one(tmp_path, capsys):
    """The checkpoint Ray names is unreadable: the newest readable other one is used, newer ones too (after
    a driver SIGKILL the restored snapshot can name an older checkpoint than the trial's last)."""
    import torch

    trial = tmp_path / "trial"
    for i in range(4):
        (trial / f"checkpoint_00000{i}").mkdir(parents=True)
        torch.save({"position": {"epoch": i + 1}}, trial / f"checkpoint_00000{i}" / CK.CHECKPOINT_FILE)
    latest = _StubCheckpoint(trial / "checkpoint_000002")  # a stale snapshot: 000003 is newer
    assert CK.load_checkpoint(latest, "t")["position"]["epoch"] == 3 and capsys.readouterr().err == ""
    _truncate(trial / "checkpoint_000002" / CK.CHECKPOINT_FILE)
    assert CK.load_checkpoint(latest, "t")["position"]["epoch"] == 4
    err = capsys.readouterr().err
    assert err.startswith("warning: trial t: unreadable checkpoint") and "continuing from checkpoint_000003" in err
    (trial / "checkpoint_000003" / CK.CHECKPOINT_FILE).write_bytes(b"garbage")
    assert CK.load_checkpoint(latest, "t")["position"]["epoch"] == 2
    (trial / "checkpoint_000001" / CK.CHECKPOINT_FILE).unlink()  # emptied by hollow_older
    assert CK.load_checkpoint(latest, "t")["position"]["epoch"] == 1
    shutil.rmtree(trial / "checkpoint_000000")  # pruned
    assert CK.load_checkpoint(latest, "t") is None
    assert "starting the trial from the beginning" in capsys.readouterr().err
    shutil.rmtree(trial / "checkpoint_000002")  # the one Ray names is gone
    assert CK.load_checkpoint(latest, "t") is None


def test_a_checkpoint_ahead_of_the_recorded_results_is_skipped(tmp_path):
    """A worker that outlived its killed driver wrote a newer checkpoint whose reports are lost: the newest
    one within result.json is taken instead; the warning goes to `warn`."""
    import torch

    trial = tmp_path / "trial"
    for i, backprops in enumerate((10, 20, 30)):
        (trial / f"checkpoint_00000{i}").mkdir(parents=True)
        torch.save({"position": {"epoch": i + 1, "backprops": backprops}},
                   trial / f"checkpoint_00000{i}" / CK.CHECKPOINT_FILE)
    (trial / "result.json").write_text(json.dumps({"backprops": 10}) + "\n" + json.dumps({"backprops": 20})
                                       + "\n{\"backprops\": 3")  # the last line still being written
    (trial / "checkpoint_000000" / CK.CHECKPOINT_FILE).write_bytes(b"garbage")
    warnings = []
    state = CK.load_checkpoint(_StubCheckpoint(trial / "checkpoint_000000"), "t", warn=warnings.append)
    assert state["position"]["epoch"] == 2
    (warning,) = warnings
    assert "checkpoint_000002 (ahead of the results the driver recorded)" in warning
    assert warning.endswith("continuing from checkpoint_000001 (epoch 2)")
