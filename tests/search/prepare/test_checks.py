"""Fail fast (`search.prepare.prepare_search`): each mistake is one `error:` line naming the key, exit 2, before Ray
starts (the data and models are checked in a child process while the driver imports Ray) and before anything
is written; nothing hangs. `CASES`: each mistake, the key its line names and a fragment of that line."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import time

import pytest
from search_helpers import ENV

from tune_hardbatch.cli import main
from tune_hardbatch.search.prepare import checks as prepare


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# (argv after `search`, key the line names, fragment it contains); FILE is a space file from `files`.
# Mistakes the driver finds itself, before the pre-flight check starts:
CASES = [
    (["--set", "serach.num_samples=4"], "serach.num_samples", "did you mean search.num_samples?"),
    (["--set", "nope.x=1"], "nope.x", "a section key"),
    (["--set", "search.nmu_samples=4"], "search.nmu_samples", "did you mean search.num_samples?"),
    (["--set", "tracking.ur=x"], "tracking.ur", "did you mean tracking.uri?"),
    (["--set", "run.max_failure=2"], "run.max_failure", "did you mean run.max_failures?"),
    (["--set", "space.optim.lrr={uniform: [0.01, 0.1]}"], "space.optim.lrr", "did you mean space.optim.lr?"),
    (["FILE:serach: {num_samples: 2}\n"], "serach", "did you mean search?"),
    (["--set", "search.metric=epochs_to_target", "--set", "search.allow_test_metric=true"], "search.metric",
     "target_top1"),
    (["--set", "search.metric=test_top1"], "search.metric", "a test-set metric"),
    (["--set", "search.metric=val_loss", "--set", "search.mode=max"], "search.mode", "allowed: min"),
    (["--set", "search.metric=convergence_epoch", "--set", "base.convergence.patience=5"], "search.grace_period",
     "compare NaNs"),
    (["--address", "nonsense"], "--address", "HOST:PORT"),
    (["--resume", "old", "--set", "tracking.uri=sqlite:///elsewhere.db"], "tracking.uri", "cannot apply"),
    (["--resume", "old", "--set", "search.num_samples=8"], "search.num_samples", "allowed on --resume"),
    (["--resume", "busy"], "--resume", "still running"),
]
# Mistakes the pre-flight check of the data and models finds (a child process that imports torch and timm and
# builds each model: seconds a case)
PREFLIGHT_CASES = [
    (["--set", "base.model.name=vit_tiny_patch16_224"], "base.model.name", "cannot take 1x8x8 input"),
    (["--set", "base.model.name=inception_v3"], "base.model.name", "Output size is too small"),
    (["--set", "base.model.name=resnet18x"], "base.model.name", "did you mean"),
    (["--set", "base.data.train_limit=40"], "base.optim.batch_size", "the training set (34 samples after data.train_limit and data.val_fraction"),
    (["--set", "base.data.train_limit=200"], "base.optim.batch_size", "step-wise stage 1 (32 of 160"),
    (["--set", "base.data.name=cifar10", "--set", "base.data.root=NOWHERE"], "base.data.root",
     "cifar-10-batches-py"),
]


_RUNNER = textwrap.dedent("""
    import contextlib, io, json, sys, time
    from tune_hardbatch.cli import main
    from tune_hardbatch.search.prepare import checks
    preflights = []  # the pre-flight checks started by the current case
    real_start = checks.start
    def start(*args, **kwargs):
        preflights.append(1)
        return real_start(*args, **kwargs)
    checks.start = start
    out = []
    for argv in json.loads(sys.argv[1]):
        err, begin = io.StringIO(), time.monotonic()
        with contextlib.redirect_stderr(err):
            code = main(argv)
        out.append([code, err.getvalue(), time.monotonic() - begin])
        imported = "ray" in sys.modules
        out[-1] += [imported and __import__("ray").is_initialized(), bool(preflights)]
        preflights.clear()
    print(json.dumps({"results": out, "torch_imported": "torch" in sys.modules}))
""")


def check_mistakes(cases, tmp_path, searches, preflight: bool) -> None:
    """`main` runs each case in ONE fresh interpreter: exit 2 and one `error: KEY` line each, Ray never started,
    the pre-flight check started or not as `preflight` says, torch never imported by the driver, nothing written."""
    argvs = []
    for i, (args, _, _) in enumerate(cases):
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
    for (args, key, fragment), (code, err, _, ray_started, checked) in zip(cases, report["results"]):
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and "Traceback" not in err, (args, err)
        assert lines[0].startswith(f"error: {key}: ") and fragment in lines[0], (args, lines[0])
        assert not ray_started, (args, "these mistakes need no cluster: rejected before Ray starts")
        assert checked == preflight, (args, "found by the pre-flight check" if preflight else "found by the driver")
    assert not report["torch_imported"], "the models were built in a child process"
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before, "nothing written"


@pytest.mark.timeout(120)
def test_mistakes_are_one_line_before_ray(tmp_path, searches):
    check_mistakes(CASES, tmp_path, searches, preflight=False)


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_mistakes_the_preflight_check_finds_are_one_line_before_ray(tmp_path, searches):
    check_mistakes(PREFLIGHT_CASES, tmp_path, searches, preflight=True)  # one driver interpreter for them all


@pytest.mark.timeout(60)
def test_address_where_nothing_answers_is_one_line_within_15_seconds(tmp_path, capsys):
    start = time.monotonic()
    code = main(["search", "--address", f"127.0.0.1:{free_port()}", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: --address: no Ray cluster answers"), err
    assert time.monotonic() - start < 15
    assert prepare.ADDRESS_TIMEOUT_S < 15  # an address that drops packets times out within this


@pytest.mark.e2e
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


_FIRST_LINE = textwrap.dedent("""
    import json, sys
    from tune_hardbatch.cli import main

    class Watch:  # what was imported when the first line was written
        def __init__(self, out):
            self.out, self.seen = out, None
        def write(self, text):
            if self.seen is None and text.strip():
                self.seen = {m: m in sys.modules for m in ("torch", "ray", "mlflow")} | {"line": text}
            return self.out.write(text)
        def flush(self):
            self.out.flush()
        def __getattr__(self, name):  # encoding, isatty, ...: the real stream's
            return getattr(self.out, name)

    watch = Watch(sys.stdout)
    sys.stdout = watch
    code = main(["search", *json.loads(sys.argv[1])])
    sys.stdout = watch.out
    print(json.dumps({"code": code, "first": watch.seen}))
""")


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_the_first_line_comes_before_torch_ray_and_mlflow_are_imported(tmp_path):
    """What is searched and where its results go, at once: the slow imports come after it. (The search then
    stops at the model check, a mistake found only once torch is loaded, in the check's own process: exit 2.)"""
    args = ["--set", "base.model.name=resnet18x", "--set", "run.name=first", "--out", str(tmp_path)]
    proc = subprocess.run([sys.executable, "-c", _FIRST_LINE, json.dumps(args)], capture_output=True, text=True,
                          env=ENV, timeout=100, cwd=tmp_path)
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["code"] == 2 and "error: base.model.name" in proc.stderr, proc.stderr[-2000:]
    first = report["first"]
    assert first["line"].startswith(f"starting first: default.yaml, 12 trials; results under {tmp_path}/first")
    assert not (first["torch"] or first["ray"] or first["mlflow"]), first
