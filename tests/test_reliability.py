"""Reliability: the fault and bad-input matrix of TESTING.md, one test per row that no other file proves.

Faults are real: a Ray worker process killed with SIGKILL, a driver killed with SIGKILL and resumed with
truncated checkpoints, a (simulated, GPU-less) CUDA out-of-memory error of the real exception type, a
full or read-only file system (a tiny tmpfs when this runs as root, else a file where a directory is
expected). Searches are tiny (digits, train_limit 640, a few epochs, 1 CPU per trial) and share one
local Ray (conftest's `local_ray`), except the driver that is killed: a CLI subprocess in its own process
group, killed with its group afterwards. Every Ray test has a pytest timeout; every subprocess a timeout.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from search_helpers import assert_one_error_line, run_mains  # noqa: E402
from servers import kill_group  # noqa: E402

from tune_hardbatch.cli import main  # noqa: E402
from tune_hardbatch.ray_backend import SearchFailed, run_search  # noqa: E402
from tune_hardbatch.ray_backend.checkpoints import CHECKPOINT_FILE  # noqa: E402
from tune_hardbatch.ray_backend.faults import CRASH_ENV  # noqa: E402
from tune_hardbatch.search import space as SP  # noqa: E402

ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
       "TUNE_HARDBATCH_NO_PROGRESS": "1", "TUNE_GLOBAL_CHECKPOINT_S": "1"}
ENV.pop(CRASH_ENV, None)
CLI = [sys.executable, "-m", "tune_hardbatch", "search"]
LIMIT = 640  # digits samples per trial: 10 back-propagations per epoch at batch 64
BASE = {"data": {"name": "digits", "train_limit": LIMIT}, "model": {"name": "test_resnet"}, "device": "cpu",
        "optim": {"batch_size": 64}}


def space(epochs: int, dims: dict, **extra) -> dict:
    # these faults are not about selection: no validation hold-out (train_top1), no confirmation phase
    return {"base": {**BASE, "epochs": epochs}, "space": dims,
            "search": {"searcher": "grid", "scheduler": "fifo", "metric": "train_top1"}, "confirm": {"seeds": 0},
            "resources": {"cpu": 1, "gpu": 0}, "tracking": {"enabled": False}, **extra}


def read_rows(path) -> list[dict]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


def history(trial_dir) -> list[dict]:
    """Every result a trial reported, in order (Ray's result.json; NaN allowed)."""
    path = Path(trial_dir) / "result.json"
    if not path.is_file():
        return []
    lines = []
    for line in path.read_text().splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:  # a line being written
            break
    return lines


def newest_state(exp: Path) -> dict:
    """trial id -> (Ray status, last result, name of the checkpoint a resume restores) from the newest
    experiment snapshot ({} while none is readable). The checkpoint is the one Ray's checkpoint manager
    holds as latest, which can lag the last result by one."""
    import pickle

    files = sorted(glob.glob(str(exp / "experiment_state-*.json")))
    if not files:
        return {}
    try:
        data = json.loads(Path(files[-1]).read_text())
        out = {}
        for trial_json, meta_json in data["trial_data"]:
            trial, meta = json.loads(trial_json), json.loads(meta_json)
            manager = pickle.loads(bytes.fromhex(meta["checkpoint_manager"]["value"]))
            latest = manager.latest_checkpoint_result
            out[trial["trial_id"]] = (trial["status"], meta.get("last_result") or {},
                                      Path(latest.checkpoint.path).name if latest else None)
        return out
    except (OSError, ValueError, KeyError, pickle.UnpicklingError):
        return {}


# ---------------------------------------------------------------------------------------------------
# Bad input, before anything starts (no Ray): configuration, storage, data


def _bad(args, key, files=None, fragment=None, setup=None):
    return {"args": args, "key": key, "files": files or {}, "fragment": fragment, "setup": setup}


# Distinct bad inputs of `tune-hardbatch search` beyond tests/search/space/test_load.py::BAD_CASES (13 there).
# FILE is a space file written from `files`, OUT the --out directory.
SEARCH_BAD = [
    _bad(["FILE"], "FILE", {"FILE": "- 1\n- 2\n"}, "must be a YAML mapping"),
    _bad(["FILE"], "FILE", {"FILE": "space: {optim.lr: [1, 2\n"}, "malformed YAML"),
    _bad(["MISSING"], "MISSING", fragment="file not found"),
    _bad(["FILE"], "search", {"FILE": "search: 3\n"}, "must be a mapping"),
    _bad(["FILE"], "base", {"FILE": "base: [1, 2]\n"}, "must be a mapping"),
    _bad(["FILE"], "space", {"FILE": "space: [optim.lr]\n"}, "must be a mapping"),
    _bad(["--set", "search.num_samples=0"], "search.num_samples"),
    _bad(["--set", "search.mode=median"], "search.mode"),
    _bad(["--set", "search.metric=accuracy"], "search.metric"),
    _bad(["--set", "search.reduction_factor=1"], "search.reduction_factor"),
    _bad(["--set", "search.max_concurrent=0"], "search.max_concurrent"),
    _bad(["--set", "search.seed=-1"], "search.seed"),
    _bad(["--set", "search.startup_trials=-1"], "search.startup_trials"),
    _bad(["--set", "search.grace_period=0"], "search.grace_period"),
    _bad(["--set", "search.nope=1"], "search.nope", fragment="unknown key"),
    _bad(["--set", "search.searcher=grid", "--set", "search.num_samples=1"], "space.optim.lr",
         fragment="grid or choice"),
    _bad(["--set", "search.searcher=grid", "--set", "search.num_samples=4"], "search.num_samples", fragment="each point once"),
    _bad(["--set", "resources.cpu=0"], "resources.cpu"),
    _bad(["--set", "run.max_failures=-2"], "run.max_failures"),
    _bad(["--set", "run.name=a/b"], "run.name"),
    _bad(["--set", "run.name=taken"], "run.name", fragment="already exists", setup="taken"),
    _bad(["--set", "tracking.enabled=maybe"], "tracking.enabled"),
    _bad(["--set", "tracking.uri=ftp://example.org/x"], "tracking.uri"),
    _bad(["--set", "space=3"], "space", fragment="needs a key inside the section"),
    _bad(["--set", "space.optim.lr={uniform: [0.1]}"], "space.optim.lr", fragment="[low, high]"),
    _bad(["--set", "space.optim.lr={loguniform: [0, 0.1]}"], "space.optim.lr", fragment="0 < low"),
    _bad(["--set", "space.optim.lr={normal: [0, 1]}"], "space.optim.lr", fragment="loguniform"),
    _bad(["--set", "space.optim.batch_size={int: [128, 32]}"], "space.optim.batch_size", fragment="low < high"),
    _bad(["--set", "space.optim.batch_size={uniform: [32, 64]}"], "space.optim.batch_size",
         fragment="non-integer"),
    _bad(["--set", "space.optim.batch_size={int: [32, 100, 32]}"], "space.optim.batch_size",
         fragment="multiple of the step"),
    _bad(["--set", "space.hard_batch.delta={choice: [0.5, 0.5]}"], "space.hard_batch.delta", fragment="twice"),
    _bad(["--set", "base.trim.p_start=0.5"], "space.trim.p_end", fragment="p_end"),
    _bad(["--set", "base.optim.nope=1"], "base.optim.nope"),
    _bad(["--set", "base.epochs=0"], "base.epochs"),
    _bad(["--set", "base.hard_batch.select=hardest_first"], "base.hard_batch.select", fragment="hardest, random"),
    _bad(["--set", "base.trim.select=smallest"], "base.trim.select", fragment="largest, random"),
    _bad(["--set", "base.selective_backprop.keep=0"], "base.selective_backprop.keep", fragment="0 < keep <= 1"),
    _bad(["--set", "base.selective_backprop.end=0.2"], "base.selective_backprop.end", fragment="start < end"),
    _bad(["--set", "base.selective_backprop.interrupt=-1"], "base.selective_backprop.interrupt"),
    _bad(["--set", "base.infobatch.prune_ratio=1.0"], "base.infobatch.prune_ratio", fragment="prune_ratio < 1"),
    _bad(["--set", "base.infobatch.anneal=0"], "base.infobatch.anneal", fragment="0 < anneal <= 1"),
    _bad(["--set", "base.compute_budget=-1"], "base.compute_budget", fragment="a number > 0"),
    _bad(["--set", "base.compute_budget=3"], "compute_budget", fragment="plain SGD only"),  # the delta<1 arm
    _bad(["--set", "arms.x={fixed: {trim.select: random}}"], "arms.x.fixed.trim.select", fragment="trim.schedule"),
    _bad(["--set", "arms.x={fixed: {infobatch.prune_ratio: 0.5, hard_batch.delta: 0.5}}"],
         "arms.x.fixed.infobatch.prune_ratio", fragment="hard_batch.delta set"),
    _bad(["--out", "s3://bucket/runs"], "--out", fragment="remote storage"),
    _bad(["--resume", "old", "--set", "search.num_samples=8"], "search.num_samples", fragment="cannot apply",
         setup="old"),
]


@pytest.mark.timeout(150)
def test_search_bad_inputs_exit_2_naming_the_key(tmp_path):
    """>= 25 distinct bad inputs of `search` (with tests/search/space/test_load.py.s 13): exit 2, one `error: KEY` line, no
    traceback, Ray never imported, nothing written."""
    out = tmp_path / "out"
    (out / "taken").mkdir(parents=True)
    (out / "old").mkdir()
    (out / "old" / "search_space.yaml").write_text(yaml.safe_dump(
        SP.load_space(None, ["run.name=old", "search.num_samples=4"]).raw))
    argvs, expected = [], []
    for i, case in enumerate(SEARCH_BAD):
        names = {}
        for name, text in case["files"].items():
            names[name] = str(tmp_path / f"space{i}.yaml")
            Path(names[name]).write_text(text)
        names["MISSING"] = str(tmp_path / "missing.yaml")
        args = [names.get(a, a) for a in case["args"]]
        if "--out" not in args:
            args += ["--out", str(out)]
        argvs.append(["search", *args])
        expected.append((names.get(case["key"], case["key"]), case["fragment"]))
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    results, ray_imported = run_mains(argvs, cwd=tmp_path)
    for argv, (key, fragment), (code, err) in zip(argvs, expected, results):
        assert_one_error_line(code, err, key, fragment)
    assert not ray_imported, "bad input must be rejected before Ray is even imported"
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before, "nothing written"
    assert len(SEARCH_BAD) + 13 >= 25  # with tests/search/space/test_load.py::BAD_CASES


class _Tmpfs:
    """A tmpfs mounted at `path` (needs root; the test is skipped where mounting is not allowed)."""

    def __init__(self, path: Path, options: str):
        self.path = path
        path.mkdir(parents=True)
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True,
                              text=True, timeout=30)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip() or 'not root'})")

    def umount(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], capture_output=True, timeout=30)


def _fill(directory: Path) -> None:
    """Write until the file system is full (ENOSPC)."""
    with open(directory / "filler", "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass


@pytest.mark.timeout(120)
@pytest.mark.parametrize("where", ["file_in_the_way", "tiny_tmpfs", "full_tmpfs", "read_only_tmpfs"])
def test_unwritable_or_full_storage_exit_2_before_trials_start(tmp_path, where):
    """--out on a full disk (a tmpfs of 64 KiB, or a 32 MiB one filled up), on a read-only file system, or
    under a file: one `error: --out` line (exit 2) before Ray is imported; run.storage the same."""
    mount = None
    try:
        if where == "file_in_the_way":
            (tmp_path / "a_file").write_text("x")
            target, fragment = tmp_path / "a_file" / "runs", "is a file, not a directory"
        elif where == "tiny_tmpfs":
            mount = _Tmpfs(tmp_path / "mnt", "size=64k")
            target, fragment = mount.path / "runs", "MiB free"
        elif where == "full_tmpfs":
            mount = _Tmpfs(tmp_path / "mnt", "size=32m")
            _fill(mount.path)
            target, fragment = mount.path / "runs", "No space left on device"
        else:
            mount = _Tmpfs(tmp_path / "mnt", "ro,size=1m")
            target, fragment = mount.path / "runs", "Read-only file system"
        space_file = tmp_path / "s.yaml"
        space_file.write_text(yaml.safe_dump({"base": {"data": {"val_fraction": 0.2}}, "run": {"storage": str(target)}}))
        results, ray_imported = run_mains([["search", "--out", str(target)], ["search", str(space_file)]],
                                          cwd=tmp_path)
        assert_one_error_line(*results[0], "--out", fragment)
        assert_one_error_line(*results[1], "run.storage", fragment)
        assert not ray_imported
        assert not target.exists()
    finally:
        if mount is not None:
            mount.umount()


@pytest.mark.timeout(120)
def test_train_dataset_smaller_than_one_batch_exit_2(capsys, tmp_path):
    """A training set smaller than one batch: `tune-hardbatch train` exits 2 naming optim.batch_size."""
    rc = main(["train", "--quiet", "--set", "data.train_limit=50", "--set", "optim.batch_size=64",
               "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: optim.batch_size"), err
    assert "50 samples" in err[0]
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def _png(path: Path, mode="RGB", size=(8, 8), value=100) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode == "L" else (value,) * len(mode)).save(path)


def _folder(root: Path, per_class: int = 3, modes=("L", "RGBA", "RGB")) -> Path:
    for split in ("train", "test"):
        for c, value in (("a", 50), ("b", 200)):
            for i in range(per_class):
                _png(root / split / c / f"{i}.png", modes[i % len(modes)], value=value)
    return root


@pytest.mark.timeout(120)
@pytest.mark.parametrize("fault", ["empty_class_folder", "unreadable_image", "empty_test_split", "no_train_split",
                                   "smaller_than_one_batch"])
def test_bad_image_folder_through_train_exit_2(capsys, tmp_path, fault):
    """The image-folder faults of tests/training/test_data.py, end to end through `tune-hardbatch train`."""
    root = _folder(tmp_path / "imgs")
    key, sets = "data.root", []
    if fault == "empty_class_folder":
        (root / "train" / "c_empty").mkdir()
        needle = "c_empty"
    elif fault == "unreadable_image":  # a batch that fits: the batch check comes before decoding
        (root / "train" / "b" / "broken.png").write_bytes(b"not a png" * 20)
        needle, sets = "broken.png", ["--set", "optim.batch_size=2"]
    elif fault == "empty_test_split":
        shutil.rmtree(root / "test")
        (root / "test").mkdir()
        needle = "test"
    elif fault == "no_train_split":
        shutil.rmtree(root / "train")
        needle = "train/"
    else:
        key, needle, sets = "optim.batch_size", "6 samples", ["--set", "optim.batch_size=8"]
    rc = main(["train", "--quiet", "--set", "data.name=imagefolder", "--set", f"data.root={root}",
               "--set", f"data.cache_dir={tmp_path / 'cache'}", "--set", "epochs=1", *sets,
               "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith(f"error: {key}") and needle in err[0], err


@pytest.mark.timeout(120)
def test_grayscale_rgba_rgb_mixed_folder_trains(capsys, tmp_path):
    """Grayscale, RGBA and RGB images in one folder train as RGB through `tune-hardbatch train`."""
    root = _folder(tmp_path / "imgs", per_class=6)
    rc = main(["train", "--quiet", "--set", "data.name=imagefolder", "--set", f"data.root={root}",
               "--set", f"data.cache_dir={tmp_path / 'cache'}", "--set", "epochs=1",
               "--set", "optim.batch_size=4", "--out", str(tmp_path / "run")])
    assert rc == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["backprops"] == 3


# ---------------------------------------------------------------------------------------------------
# Faults during a search (real local Ray)


class _KillWorker(threading.Thread):
    """Kills (SIGKILL) the Ray worker process of the trial whose params.json matches `match` once that
    trial has reported `after` results: its pid is the `pid` field of its result.json."""

    def __init__(self, exp: Path, match: dict, after: int, timeout: float = 150):
        super().__init__(daemon=True)
        self.exp, self.match, self.after, self.timeout = exp, match, after, timeout
        self.killed_pid, self.reports_before, self.trial_id = None, None, None
        self.stop = threading.Event()

    def run(self):
        deadline = time.monotonic() + self.timeout
        while not self.stop.is_set() and time.monotonic() < deadline:
            for params in glob.glob(str(self.exp / "*" / "params.json")):
                try:
                    config = json.loads(Path(params).read_text())
                except (OSError, ValueError):
                    continue
                if any(config.get(k) != v for k, v in self.match.items()):
                    continue
                reports = history(Path(params).parent)
                if len(reports) >= self.after:
                    self.trial_id, self.reports_before = Path(params).parent.name, len(reports)
                    self.killed_pid = reports[-1]["pid"]
                    os.kill(self.killed_pid, signal.SIGKILL)
                    return
            time.sleep(0.05)


FAULTY_EPOCHS = 40  # long enough that the kill after the second report lands mid-trial on a loaded machine


@pytest.fixture(scope="module")
def faulty_search(local_ray, tmp_path_factory):
    """One search, two faults: the worker of the batch-32 trial is killed (SIGKILL) after its second report;
    the batch-64 trial runs out of (simulated) CUDA memory at epoch 2. run.max_failures 1."""
    tmp = tmp_path_factory.mktemp("faulty")
    exp = tmp / "faulty"
    killer = _KillWorker(exp, {"optim.batch_size": 32}, after=2)
    killer.start()
    os.environ[CRASH_ENV] = "epoch=2,kind=oom,min_batch=64"
    stream = io.StringIO()
    try:
        path = run_search(space(FAULTY_EPOCHS, {"optim.batch_size": {"grid": [32, 64]}}, run={"name": "faulty",
                                                                                    "max_failures": 1,
                                                                                    "checkpoint_every": 1}),
                            out=str(tmp), live_interval_s=1000, stream=stream)
    finally:
        os.environ.pop(CRASH_ENV, None)
        killer.stop.set()
        killer.join(timeout=10)
    rows = {int(r["optim.batch_size"]): r for r in read_rows(path)}
    return rows, exp, killer, stream.getvalue()


@pytest.mark.e2e
@pytest.mark.timeout(240)
def test_worker_killed_mid_trial_is_retried_from_its_last_checkpoint(faulty_search):
    rows, exp, killer, out = faulty_search
    assert killer.killed_pid is not None, "the trial's worker was never killed"
    row = rows[32]
    assert row["trial_id"] == killer.trial_id
    assert row["status"] == "finished" and int(row["backprops"]) == FAULTY_EPOCHS * (LIMIT // 32)
    reports = history(exp / row["trial_id"])
    epochs = [r["epoch"] for r in reports]
    # reports the driver had not yet written when the killer read result.json still come from the old worker
    before = [r for r in reports if r["pid"] == killer.killed_pid]
    after = [r for r in reports if r["pid"] != killer.killed_pid]
    assert before and after and reports[:len(before)] == before, [r["pid"] for r in reports]  # a new worker
    assert after[0]["epoch"] > 1 and after[0]["backprops"] > (LIMIT // 32), "restarted from the first epoch"
    assert after[0]["epoch"] <= before[-1]["epoch"] + 1, "an epoch was skipped"
    assert sorted(set(epochs)) == list(range(1, FAULTY_EPOCHS + 1)) and epochs[-1] == FAULTY_EPOCHS
    backprops = [r["backprops"] for r in after]
    assert backprops == sorted(backprops) and backprops[-1] == FAULTY_EPOCHS * (LIMIT // 32)
    error = (exp / row["trial_id"] / "error.txt").read_text()  # one failure, within run.max_failures 1
    assert error.count("Failure #") == 1 and "Failure # 1" in error
    assert f"trial {row['trial_id']} crashed; retrying from its last checkpoint" in out


@pytest.mark.e2e
@pytest.mark.timeout(240)
def test_cuda_oom_fails_the_trial_with_advice_not_retried_and_the_search_completes(faulty_search):
    rows, exp, _, out = faulty_search
    assert set(rows) == {32, 64}  # the search completed, both trials in results.csv
    row = rows[64]
    assert row["status"] == "failed"
    assert row["error"].startswith("CUDA out of memory at epoch-equivalent 2")
    assert "optim.batch_size 64" in row["error"] and "lower optim.batch_size or raise resources.gpu" in row["error"]
    reports = history(exp / row["trial_id"])
    assert [r["epoch"] for r in reports] == [1, 2] and reports[-1]["oom"] == 1 and "oom" not in reports[0]
    assert not (exp / row["trial_id"] / "error.txt").exists(), "not retried although max_failures is 1"
    assert f"trial {row['trial_id']} failed: CUDA out of memory" in out


@pytest.mark.e2e
@pytest.mark.timeout(180)
def test_worker_killed_with_max_failures_0_fails_the_trial(local_ray, tmp_path):
    """run.max_failures 0: the same kill is not retried; the trial fails with the reason, and a search
    whose every trial failed raises SearchFailed (CLI: exit 1) after writing results.csv."""
    exp = tmp_path / "nofail"
    killer = _KillWorker(exp, {"seed": 0}, after=1)
    killer.start()
    try:
        with pytest.raises(SearchFailed):
            run_search(space(40, {"seed": {"grid": [0]}}, run={"name": "nofail", "max_failures": 0}),
                         out=str(tmp_path), live_interval_s=1000, stream=io.StringIO())
    finally:
        killer.stop.set()
        killer.join(timeout=10)
    assert killer.killed_pid is not None
    (row,) = read_rows(exp / "results.csv")
    assert row["status"] == "failed" and row["error"], row
    assert int(row["backprops"]) < 40 * (LIMIT // 64)  # 40 fast epochs: the kill lands mid-trial


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def _checkpoint_epoch(path: Path) -> int:
    import torch

    return torch.load(path / CHECKPOINT_FILE, map_location="cpu", weights_only=False)["position"]["epoch"]


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_truncated_checkpoints_on_resume_fall_back_with_a_warning(local_ray, tmp_path):
    """Driver killed (SIGKILL) mid-search; then the checkpoint each unfinished trial would resume from is
    truncated (for seed 0 every checkpoint it has): --resume continues seed 1 from its earlier checkpoint
    and seed 0 from the start, each with a warning, and both finish their full budget."""
    epochs = 12  # long enough that the driver is killed mid-search even on a loaded machine
    space_file = tmp_path / "corrupt.yaml"
    space_file.write_text(yaml.safe_dump(space(epochs, {"seed": {"grid": [0, 1]}},
                                               run={"name": "corrupt", "max_failures": 1,
                                                                    "checkpoint_every": 1})))
    exp = tmp_path / "out" / "corrupt"
    proc = subprocess.Popen(CLI + [str(space_file), "--out", str(tmp_path / "out")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=ENV, start_new_session=True)
    try:
        deadline, state = time.monotonic() + 150, {}
        while time.monotonic() < deadline and proc.poll() is None:
            state = newest_state(exp)  # kill when the snapshot holds every result so far (>= 2 each)
            if len(state) == 2 and all(s == "RUNNING" and ckpt and ckpt >= "checkpoint_000001"
                                       and len(history(exp / t)) == last.get("training_iteration")
                                       for t, (s, last, ckpt) in state.items()):
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the search ended before it could be interrupted: " + proc.stderr.read()
        os.kill(proc.pid, signal.SIGKILL)  # the driver, as a crash would
        proc.wait(timeout=10)
    finally:
        kill_group(proc)  # then its Ray
    state = newest_state(exp)
    ids = {json.loads((exp / t / "params.json").read_text())["seed"]: t for t in state}
    expected_start = {}
    for seed, trial in ids.items():
        status, _, name = state[trial]
        assert status == "RUNNING" and name, state
        recorded = exp / trial / name
        others = sorted((p for p in (exp / trial).glob("checkpoint_*") if p != recorded), reverse=True)
        doomed = [recorded, *others] if seed == 0 else [recorded]
        for ckpt in doomed:
            if (ckpt / CHECKPOINT_FILE).exists():
                _truncate(ckpt / CHECKPOINT_FILE)
        # the newest readable other one (newer than the recorded one too, unless ahead of result.json: a worker
        # that outlived the driver wrote it; emptied ones have no file)
        usable = [p for p in others if p not in doomed and (p / CHECKPOINT_FILE).exists()
                  and _checkpoint_epoch(p) <= len(history(exp / trial))]
        expected_start[seed] = _checkpoint_epoch(usable[0]) if usable else 0
    assert expected_start[0] == 0
    reported_before = {seed: len(history(exp / t)) for seed, t in ids.items()}

    stream = io.StringIO()
    path = run_search(None, resume="corrupt", out=str(tmp_path / "out"), live_interval_s=1000, stream=stream)
    out = stream.getvalue()
    rows = {int(r["seed"]): r for r in read_rows(path)}
    assert len(rows) == 2 and all(r["status"] == "finished" for r in rows.values()), rows
    for seed, trial in ids.items():
        assert int(rows[seed]["backprops"]) == epochs * (LIMIT // 64)
        new = history(exp / trial)[reported_before[seed]:]
        assert new[0]["epoch"] == expected_start[seed] + 1, (seed, [r["epoch"] for r in new])
        assert [r["epoch"] for r in new] == list(range(expected_start[seed] + 1, epochs + 1))
        # the worker's own warning reaches the driver's console, once, with the trial id and where it went on:
        # from its newest usable checkpoint, or from the start when it has none (seed 0; seed 1 too when its
        # workers outlived the driver long enough to write newer checkpoints and hollow every older one)
        warned = [line for line in out.splitlines()
                  if line.strip().startswith(f"warning: trial {trial}: unreadable checkpoint")]
        assert len(warned) == 1, out
        assert ("continuing from checkpoint_" if expected_start[seed] else "no earlier one readable") in warned[0], out


