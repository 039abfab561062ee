"""Fail fast (`launch.prepare_search`): each mistake is one `error:` line naming the key, exit 2, before Ray is
imported and before anything is written; nothing hangs. Cases of issue 13 and their kind."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from search_helpers import ENV

from tune_hardbatch import launch
from tune_hardbatch import space as SP
from tune_hardbatch.cli import main
from tune_hardbatch.errors import UserError
from tune_hardbatch.launch import lock, prepare


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# (argv after `search`, key the line names, fragment it contains); FILE is a space file from `files`
CASES = [
    (["--set", "serach.num_samples=4"], "serach.num_samples", "did you mean search.num_samples?"),
    (["--set", "nope.x=1"], "nope.x", "a section key"),
    (["--set", "search.nmu_samples=4"], "search.nmu_samples", "did you mean search.num_samples?"),
    (["--set", "tracking.ur=x"], "tracking.ur", "did you mean tracking.uri?"),
    (["--set", "run.max_failure=2"], "run.max_failure", "did you mean run.max_failures?"),
    (["--set", "space.optim.lrr={uniform: [0.01, 0.1]}"], "space.optim.lrr", "did you mean space.optim.lr?"),
    (["FILE:serach: {num_samples: 2}\n"], "serach", "did you mean search?"),
    (["--set", "base.model.name=vit_tiny_patch16_224"], "base.model.name", "cannot take 1x8x8 input"),
    (["--set", "base.model.name=inception_v3"], "base.model.name", "Output size is too small"),
    (["--set", "base.model.name=resnet18x"], "base.model.name", "did you mean"),
    (["--set", "base.data.train_limit=40"], "base.optim.batch_size", "the training set (34 samples after data.train_limit and data.val_fraction"),
    (["--set", "base.data.train_limit=200"], "base.optim.batch_size", "step-wise stage 1 (32 of 160"),
    (["--set", "base.data.name=cifar10", "--set", "base.data.root=NOWHERE"], "base.data.root",
     "cifar-10-batches-py"),
    (["--set", "search.metric=epochs_to_target", "--set", "search.allow_test_metric=true"], "search.metric",
     "target_top1"),
    (["--set", "search.metric=test_top1"], "search.metric", "a test-set metric"),
    (["--set", "search.metric=val_loss", "--set", "search.mode=max"], "search.mode", "allowed: min"),
    (["--set", "search.metric=convergence_epoch"], "search.grace_period", "compare NaNs"),
    (["--address", "nonsense"], "--address", "HOST:PORT"),
    (["--resume", "old", "--set", "tracking.uri=sqlite:///elsewhere.db"], "tracking.uri", "cannot apply"),
    (["--resume", "old", "--set", "search.num_samples=3"], "search.num_samples", "allowed on --resume"),
    (["--resume", "busy"], "--resume", "still running"),
]


@pytest.fixture
def searches(tmp_path):
    """OUT/old (an ended search) and OUT/busy (one whose driver is alive: a sleeping process)."""
    out = tmp_path / "out"
    for name in ("old", "busy"):
        (out / name).mkdir(parents=True)
        raw = SP.load_space(None, [f"run.name={name}", "search.num_samples=2"]).raw
        raw["run"]["storage"] = str(out)
        (out / name / "search_space.yaml").write_text(yaml.safe_dump(raw))
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    (out / "busy" / lock.LOCK_FILE).write_text(json.dumps(
        {"host": socket.gethostname(), "pid": sleeper.pid, "start": lock._start_time(sleeper.pid)}))
    yield out
    sleeper.kill()
    sleeper.wait()


_RUNNER = textwrap.dedent("""
    import contextlib, io, json, sys, time
    from tune_hardbatch.cli import main
    out = []
    for argv in json.loads(sys.argv[1]):
        err, start = io.StringIO(), time.monotonic()
        with contextlib.redirect_stderr(err):
            code = main(argv)
        out.append([code, err.getvalue(), time.monotonic() - start])
    print(json.dumps({"results": out, "ray_imported": "ray" in sys.modules}))
""")


@pytest.mark.timeout(300)
def test_mistakes_are_one_line_before_ray(tmp_path, searches):
    argvs = []
    for i, (args, _, _) in enumerate(CASES):
        files = [a for a in args if a.startswith("FILE:")]
        for text in files:
            (tmp_path / f"space{i}.yaml").write_text(text[5:])
        args = [str(tmp_path / f"space{i}.yaml") if a.startswith("FILE:") else
                a.replace("NOWHERE", str(tmp_path / "nowhere")) for a in args]
        argvs.append(["search", *args, "--out", str(searches)])
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    proc = subprocess.run([sys.executable, "-c", _RUNNER, json.dumps(argvs)], capture_output=True, text=True,
                          env=ENV, timeout=280, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    for (args, key, fragment), (code, err, _) in zip(CASES, report["results"]):
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and "Traceback" not in err, (args, err)
        assert lines[0].startswith(f"error: {key}: ") and fragment in lines[0], (args, lines[0])
    assert not report["ray_imported"], "these mistakes need no cluster: rejected before Ray is imported"
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before, "nothing written"


@pytest.mark.timeout(60)
def test_address_where_nothing_answers_is_one_line_within_15_seconds(tmp_path, capsys):
    start = time.monotonic()
    code = main(["search", "--address", f"127.0.0.1:{free_port()}", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: --address: no Ray cluster answers"), err
    assert time.monotonic() - start < 15
    assert prepare.ADDRESS_TIMEOUT_S < 15  # an address that drops packets times out within this


def test_resume_applies_what_may_change_and_says_so(searches):
    spec, _, name, resuming = launch.resolve_run(None, ["run.max_failures=3"], "old", str(searches))
    assert resuming and name == "old" and spec.run.max_failures == 3
    assert any("--resume applies run.max_failures = 3 (was 1)" in n for n in spec.notes)
    same, *_ = launch.resolve_run(None, ["search.num_samples=2"], "old", str(searches))  # no change: fine
    assert same.search.num_samples == 2 and not same.notes


def test_resume_with_the_starting_command_is_accepted(tmp_path):
    """The command that started a search, plus --resume NAME, continues it (the hint the tool prints)."""
    out = tmp_path / "out"
    sets = ["search.num_samples=2", "run.name=s1"]
    spec, storage, name, _ = launch.resolve_run(None, sets, None, str(out))
    Path(storage, name).mkdir(parents=True)
    from tune_hardbatch.console import space_yaml

    Path(storage, name, "search_space.yaml").write_text(space_yaml(spec))
    again, _, _, resuming = launch.resolve_run(str(SP.DEFAULT_SPACE), sets, "s1", str(out))
    assert resuming and again.search.num_samples == 2
    with pytest.raises(UserError, match=r"^base\.optim\.lr: .*the space gives"):
        launch.resolve_run(str(SP.DEFAULT_SPACE), [*sets, "optim.lr=0.5"], "s1", str(out))


def test_report_sync_refuses_a_running_search(searches, capsys):
    code = main(["report", str(searches / "busy"), "--sync"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: --sync: search busy is still running"), err


def test_driver_lock_ignores_a_dead_driver(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    (tmp_path / lock.LOCK_FILE).write_text(json.dumps({"host": socket.gethostname(), "pid": proc.pid,
                                                       "start": "1"}))
    assert lock.holder(tmp_path) is None  # gone (SIGKILL leaves the file): resume and sync may go on
    lock.acquire(tmp_path)
    assert json.loads((tmp_path / lock.LOCK_FILE).read_text())["pid"] != proc.pid
    lock.release(tmp_path)
    assert not (tmp_path / lock.LOCK_FILE).exists()


@pytest.mark.timeout(120)
def test_deleted_tracking_experiment_is_one_line_before_ray(tmp_path, capsys):
    from mlflow.tracking import MlflowClient

    db = f"sqlite:///{tmp_path / 'm.db'}"
    client = MlflowClient(tracking_uri=db)
    client.delete_experiment(client.create_experiment("gone"))
    capsys.readouterr()  # the test's own MLflow set-up lines
    code = main(["search", "--set", f"tracking.uri={db}", "--set", "tracking.experiment=gone",
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: tracking.experiment: experiment 'gone'"), err
    import ray

    assert not ray.is_initialized() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, key", [
    (["--set", "nope.x=1"], "nope.x"),
    (["--set", "model.name=vit_tiny_patch16_224"], "model.name"),
    (["--out", "FILE"], "--out"),
])
def test_train_mistakes_are_one_line(tmp_path, capsys, args, key):
    (tmp_path / "a-file").write_text("x")
    code = main(["train", "--quiet", *[str(tmp_path / "a-file") if a == "FILE" else a for a in args]])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith(f"error: {key}: "), err
