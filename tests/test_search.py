"""`tune-hardbatch search`: space validation (no Ray), then real local Ray Tune runs on digits.

Ray runs use a module-scoped local Ray for the in-process tests and subprocesses (each with its own local
Ray, killed with its process group) for the CLI and SIGKILL/--resume tests. Trials are short: a few
epochs on digits with 1 CPU each.
"""

from __future__ import annotations

import csv
import glob
import itertools
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from tune_hardbatch import search as S  # noqa: E402
from tune_hardbatch import space as SP  # noqa: E402
from tune_hardbatch.config import build_config  # noqa: E402
from tune_hardbatch.errors import UserError  # noqa: E402
from conftest import kill_group  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
       "TUNE_HARDBATCH_NO_PROGRESS": "1", "TUNE_GLOBAL_CHECKPOINT_S": "1"}
CLI = [sys.executable, "-m", "tune_hardbatch", "search"]
BASE = {"data": {"name": "digits"}, "model": {"name": "test_resnet"}, "device": "cpu",
        "optim": {"batch_size": 64}}  # 1437 training samples -> 22 back-propagations per epoch
N = 1437 // 64


def read_rows(path) -> list[dict]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


def history(trial_dir) -> list[dict]:
    """Every result a trial reported (Ray's result.json: one JSON object per line, NaN allowed)."""
    with open(Path(trial_dir) / "result.json") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def space(**sections) -> dict:
    out = {"base": dict(BASE), "resources": {"cpu": 1, "gpu": 0}, "run": {"max_failures": 1}}
    for key, value in sections.items():
        if key == "base":
            out["base"] = {**BASE, **value}
        else:
            out[key] = value
    return out


def run_cli(args, timeout, env=None, cwd=None):
    """A CLI subprocess in its own process group; the whole group is killed afterwards."""
    proc = subprocess.Popen(CLI + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env or ENV, cwd=cwd, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        kill_group(proc)
    return proc.returncode, out, err


# ---------------------------------------------------------------------------------------------------
# Space files and validation (no Ray)


PACKAGED = ("default", "dybat_cifar10", "trim_cifar10", "stepwise_cifar10", "joint_cifar10")
ALL_SPACES = sorted(set(PACKAGED) | {p.stem for p in SP.SPACE_DIR.glob("*.yaml")})


@pytest.mark.parametrize("name", ALL_SPACES)
def test_packaged_spaces_validate_and_say_what_they_answer(name):
    path = SP.SPACE_DIR / f"{name}.yaml"
    assert path.read_text().startswith("# "), "each space starts with a comment saying what it answers"
    spec = SP.load_space(path)
    assert spec.question.endswith(("?", ".")) and "?" in spec.question
    # the repo-level search_spaces/ is the packaged directory (a symlink), so both paths agree
    assert (REPO / "search_spaces" / f"{name}.yaml").resolve() == path.resolve()
    if name in PACKAGED and name != "default":
        assert spec.base_cfg.data.name == "imagefolder" and spec.resources["gpu"] == 0.25


def test_default_space_is_the_packaged_one_and_searches_strategies():
    spec = SP.load_space(None)
    assert spec.source == str(SP.DEFAULT_SPACE)
    assert spec.base_cfg.data.name == "digits" and spec.base_cfg.model.name == "test_resnet"
    assert spec.base_cfg.device == "cpu"
    assert spec.num_trials >= 12 and spec.search["searcher"] == "optuna" and spec.search["scheduler"] == "asha"
    assert {"optim.lr", "hard_batch.delta", "trim.schedule", "trim.p_end"} <= set(spec.dim_keys)


def test_dybat_space_is_the_papers_grid():
    spec = SP.load_space(SP.SPACE_DIR / "dybat_cifar10.yaml")
    cfg = spec.base_cfg
    assert (cfg.model.name, cfg.data.image_size, cfg.data.augment) == ("resnet18", 128, "none")
    assert (cfg.optim.name, cfg.optim.lr, cfg.optim.momentum, cfg.optim.batch_size, cfg.optim.schedule) == \
        ("sgd", 0.005, 0.9, 512, "none")
    dims = {d.key: d for d in spec.dims}
    assert dims["hard_batch.delta"].corners() == [1.0, 0.8, 0.5, 0.2]
    assert dims["seed"].corners() == [0, 1, 2]
    assert spec.search["searcher"] == "grid" and spec.num_trials == 12


def test_set_rules():
    spec = SP.load_space(None, ["epochs=3", "search.num_samples=4", "base.optim.lr=0.05", "run.name=x",
                               "space.trim.p_end=null", "resources.cpu=2",
                               "space.optim.momentum={uniform: [0.5, 0.9]}"])
    assert spec.base_cfg.epochs == 3 and spec.search["num_samples"] == 4 and spec.run["name"] == "x"
    assert spec.resources["cpu"] == 2
    assert "optim.lr" not in spec.dim_keys and spec.base_cfg.optim.lr == 0.05  # fixing a key drops its dim
    assert any("optim.lr" in note for note in spec.notes)
    assert "trim.p_end" not in spec.dim_keys and "optim.momentum" in spec.dim_keys
    with pytest.raises(UserError, match=r"^search\.nope: unknown key"):
        SP.load_space(None, ["search.nope=1"])
    with pytest.raises(UserError, match=r"^base\.optim\.lr"):
        SP.load_space(None, ["optim.lr=-1"])


@pytest.mark.parametrize("dims, key, fragment", [
    ({"hard_batch.delta": {"uniform": [0, 1]}}, "space.hard_batch.delta", "0 < delta <= 1"),
    ({"optim.lr": {"loguniform": [0.3, 0.01]}}, "space.optim.lr", "low < high"),
    ({"optim.lr": {"loguniform": [0, 0.1]}}, "space.optim.lr", "0 < low"),
    ({"hard_batch.delta": {"choice": []}}, "space.hard_batch.delta", "non-empty"),
    ({"seed": {"grid": [0, 1]}}, "space.seed", "searcher random or grid"),
    ({"optim.nope": {"uniform": [0, 1]}}, "space.optim.nope", "unknown config key"),
    ({"optim.batch_size": {"uniform": [32, 64]}}, "space.optim.batch_size", "int"),
    ({"optim.batch_size": {"int": [32, 100, 32]}}, "space.optim.batch_size", "multiple of the step"),
    ({"optim.lr": {"normal": [0, 1]}}, "space.optim.lr", "loguniform"),
    ({"trim.schedule": {"choice": ["linear"]}, "trim.p_start": {"choice": [0.5, 1.0]},
      "trim.p_end": {"uniform": [0.2, 0.8]}}, "space.trim.p_end", "p_end <= p_start"),
])
def test_bad_space_values_name_the_key(dims, key, fragment):
    with pytest.raises(UserError) as info:
        SP.validate_space({"base": BASE, "space": dims})
    assert info.value.key == key and fragment in str(info.value)


def test_conditional_sampling_and_list_encoding_with_optuna():
    """Define-by-run: trim.p_end only with trimming on, stepwise.epochs only with splits; lists round-trip."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = SP.validate_space({"base": {**BASE, "epochs": 4}, "space": {
        "trim.p_end": {"uniform": [0.2, 0.8]}, "trim.schedule": {"choice": ["none", "linear"]},
        "stepwise.epochs": {"choice": [[2, 2], [1, 3]]},
        "stepwise.fractions": {"choice": [None, [0.5, 1.0], "A-O"]}}})
    fn = SP.DefineByRun(spec.dims, spec.base_flat)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    seen = set()
    for _ in range(40):
        trial = study.ask()
        assert fn(trial) is None  # no constants: the strategy label is derived, never stored by Ray
        params = trial.params
        assert ("trim.p_end" in params) == (params["trim.schedule"] != "none")
        assert ("stepwise.epochs" in params) == (params["stepwise.fractions"] is not None)
        cfg = SP.trial_config(spec.base_flat, params, spec.dims)
        assert SP.StrategyLabel(spec.dims, spec.base_flat)(params) == \
            __import__("tune_hardbatch.train").train.strategy_name(cfg)
        if params["stepwise.fractions"] == "[0.5, 1.0]":
            assert cfg.stepwise.fractions == (0.5, 1.0)
        if "stepwise.epochs" in params:
            assert cfg.stepwise.epochs in ((2, 2), (1, 3))
        seen.add((params["trim.schedule"], params["stepwise.fractions"]))
        study.tell(trial, 1.0)
    assert len(seen) >= 4
    # inactive parameters are not applied even when a (random) searcher sampled them
    cfg = SP.trial_config(spec.base_flat, {"trim.schedule": "none", "trim.p_end": 0.5}, spec.dims)
    assert cfg.trim.p_end == build_config(None, spec.base_flat).trim.p_end


BAD_CASES = [
    (["--set", "resources.gpu=0.5"], "resources.gpu"),
    (["--set", "resources.cpu=64"], "resources.cpu"),
    (["--set", "space.optim.foo={uniform: [0.1, 0.2]}"], "space.optim.foo"),
    (["--set", "space.optim.lr={loguniform: [0.3, 0.01]}"], "space.optim.lr"),
    (["--set", "space.hard_batch.delta={choice: []}"], "space.hard_batch.delta"),
    (["--set", "space.seed={grid: [0, 1]}"], "space.seed"),
    (["--set", "search.searcher=bayes"], "search.searcher"),
    (["--set", "search.scheduler=hyperband"], "search.scheduler"),
    (["--set", "space.hard_batch.delta={uniform: [0, 1]}"], "space.hard_batch.delta"),
    (["--set", "search.grace_period=100"], "search.grace_period"),
    (["--set", "base.optim.lr=zero"], "base.optim.lr"),
    (["--resume", "no-such-search"], "--resume"),
    (["BADFILE"], "nowhere"),
]


def test_bad_inputs_exit_2_with_one_error_line_and_no_ray(tmp_path):
    """Every bad input: exit 2, exactly one `error:` line naming the key, no traceback, Ray never imported."""
    cases = [[a.replace("BADFILE", str(tmp_path / "bad.yaml")) for a in args] + ["--out", str(tmp_path)]
             for args, _ in BAD_CASES]
    (tmp_path / "bad.yaml").write_text("# a bad space\nbase: {epochs: 2}\nnowhere: {x: 1}\n")
    script = textwrap.dedent("""
        import contextlib, io, json, sys
        from tune_hardbatch.cli import main
        out = []
        for argv in json.loads(sys.argv[1]):
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                code = main(["search", *argv])
            out.append([code, err.getvalue()])
        print(json.dumps({"results": out, "ray_imported": "ray" in sys.modules}))
    """)
    proc = subprocess.run([sys.executable, "-c", script, json.dumps(cases)], capture_output=True, text=True,
                          env=ENV, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    for (args, key), (code, err) in zip(BAD_CASES, report["results"]):
        lines = err.strip().splitlines()
        assert code == 2, (args, err)
        assert len(lines) == 1 and lines[0].startswith("error: ") and key in lines[0], (args, err)
        assert "Traceback" not in err
    assert not report["ray_imported"], "bad input must be rejected before Ray is even imported"
    assert not any(p.name != "bad.yaml" for p in tmp_path.iterdir()), "nothing written for bad input"


def test_bad_resources_real_cli_exit_2(tmp_path):
    start = time.time()
    code, out, err = run_cli(["--set", "resources.gpu=0.5", "--out", str(tmp_path)], timeout=60)
    assert code == 2 and err.strip().startswith("error: resources.gpu") and "0 GPUs" in err
    assert len(err.strip().splitlines()) == 1 and time.time() - start < 60


# ---------------------------------------------------------------------------------------------------
# Real Ray runs


@pytest.fixture(scope="module")
def local_ray():
    import ray

    S._ray_env(local=True)
    S._init_ray(None, 2, 0)
    yield
    ray.shutdown()


def run(spec_dict, tmp_path, name, **kw) -> tuple[list[dict], Path]:
    spec_dict = {**spec_dict, "run": {**spec_dict.get("run", {}), "name": name}}
    path = S.run_search(spec_dict, out=str(tmp_path), live_interval_s=1000, **kw)
    return read_rows(path), path.parent


@pytest.mark.timeout(180)
def test_grid_yields_exactly_its_arms(local_ray, tmp_path):
    rows, exp = run(space(base={"epochs": 2, "data": {"name": "digits", "train_limit": 640}},
                          space={"hard_batch.delta": {"grid": [1.0, 0.5]}, "seed": {"grid": [0, 1]}},
                          search={"searcher": "grid", "scheduler": "fifo"}), tmp_path, "grid")
    arms = sorted((float(r["hard_batch.delta"]), int(r["seed"])) for r in rows)
    assert arms == sorted(itertools.product([1.0, 0.5], [0, 1]))
    assert all(r["status"] == "finished" for r in rows)
    assert {r["strategy"] for r in rows} == {"delta=1", "delta=0.5"}
    assert {int(r["backprops"]) for r in rows} == {2 * (640 // 64)}  # equal back-propagations per arm
    assert len({r["trial_id"] for r in rows}) == 4
    for r in rows:
        cfg = json.loads((exp / r["trial_id"] / "params.json").read_text())
        assert "strategy" not in cfg  # derived from the params (Ray restores sample_from as placeholders)
        assert all(not isinstance(v, str) for k, v in history(exp / r["trial_id"])[-1].items()
                   if k not in ("date", "hostname", "node_ip", "node_id", "trial_id", "experiment_tag",
                                "checkpoint_dir_name"))


@pytest.mark.timeout(180)
def test_asha_stops_bad_trials_early(local_ray, tmp_path):
    rows, exp = run(space(base={"epochs": 4},
                          space={"optim.lr": {"grid": [0.1, 0.0003, 0.0002, 0.0001]}},
                          search={"searcher": "grid", "scheduler": "asha", "grace_period": 1,
                                  "reduction_factor": 2, "max_concurrent": 1}), tmp_path, "asha")
    assert len(rows) == 4
    by_lr = {float(r["optim.lr"]): r for r in rows}
    assert by_lr[0.1]["status"] == "finished" and int(by_lr[0.1]["backprops"]) == 4 * N
    stopped = [r for r in rows if r["status"] == "stopped_early"]
    assert stopped, [(r["optim.lr"], r["status"]) for r in rows]
    for r in stopped:
        assert int(r["backprops"]) < 4 * N
        assert float(r["epoch_equiv"]) < 4 * 0.98
        assert history(exp / r["trial_id"])[-1]["budget_done"] == 0


@pytest.mark.timeout(180)
def test_nan_trial_ends_diverged_and_is_not_retried(local_ray, tmp_path):
    rows, exp = run(space(base={"epochs": 3, "data": {"name": "digits", "train_limit": 640}},
                          space={"optim.lr": {"grid": [0.05, 1.0e6]}},
                          search={"searcher": "grid", "scheduler": "fifo"}, run={"max_failures": 2}),
                    tmp_path, "nan")
    by_lr = {float(r["optim.lr"]): r for r in rows}
    assert by_lr[0.05]["status"] == "finished" and int(by_lr[0.05]["backprops"]) == 3 * 10
    bad = by_lr[1.0e6]
    assert bad["status"] == "diverged"
    reports = history(exp / bad["trial_id"])
    assert len(reports) == 1 and reports[0]["diverged"] == 1  # really diverged, stopped, reported once
    assert reports[0]["train_loss"] != reports[0]["train_loss"]  # NaN
    assert not (exp / bad["trial_id"] / "error.txt").exists()  # returned normally: not retried


@pytest.mark.timeout(180)
def test_injected_crash_is_retried_from_its_checkpoint(local_ray, tmp_path, monkeypatch):
    markers = tmp_path / "markers"
    monkeypatch.setenv(S.CRASH_ENV, f"epoch=3,marker={markers}")
    rows, exp = run(space(base={"epochs": 4, "data": {"name": "digits", "train_limit": 640}},
                          space={"seed": {"grid": [0]}},
                          search={"searcher": "grid", "scheduler": "fifo"}, run={"max_failures": 1}),
                    tmp_path, "crash")
    (row,) = rows
    assert row["status"] == "finished" and int(row["backprops"]) == 4 * 10
    assert (markers / f"{row['trial_id']}.crashed").exists()  # it did crash once
    reports = history(exp / row["trial_id"])
    assert [r["epoch"] for r in reports] == [1, 2, 3, 4]  # continued after epoch 2, no restart from 0
    backprops = [r["backprops"] for r in reports]
    assert backprops == sorted(set(backprops)) and backprops[0] == 10


@pytest.mark.timeout(240)
def test_default_space_via_cli(tmp_path):
    code, out, err = run_cli(["--set", "search.num_samples=4", "--set", "base.epochs=3", "--set",
                              "run.name=cli", "--out", str(tmp_path)], timeout=220, cwd=tmp_path)
    assert code == 0, err[-3000:]
    rows = read_rows(tmp_path / "cli" / "results.csv")
    assert len(rows) == 4 and len({r["trial_id"] for r in rows}) == 4
    assert all(r["status"] in SP.STATUSES for r in rows)
    assert {"trial_id", "status", "strategy", "optim.lr", "hard_batch.delta", "final_test_top1",
            "best_test_top1", "convergence_epoch", "epoch_equiv", "backprops", "samples_forward",
            "time_s"} <= set(rows[0])
    lines = [line for line in out.splitlines() if line.strip()]
    start = max(i for i, line in enumerate(lines) if line.startswith("best configuration"))
    assert all(line.startswith("  ") for line in lines[start + 1:]), "the best configuration is printed last"
    assert any(line.strip().startswith("optim.lr:") for line in lines[start + 1:])
    assert lines.index(next(line for line in lines if line.startswith("results:"))) < start
    best = yaml.safe_load((tmp_path / "cli" / "best_config.yaml").read_text())
    build_config(best)  # a valid training config


def _state(exp: Path) -> dict:
    """trial id -> Ray status from the newest experiment snapshot ({} while none is readable)."""
    files = sorted(glob.glob(str(exp / "experiment_state-*.json")))
    if not files:
        return {}
    try:
        data = json.loads(Path(files[-1]).read_text())
        return {json.loads(t[0])["trial_id"]: json.loads(t[0])["status"] for t in data["trial_data"]}
    except (OSError, ValueError, KeyError):
        return {}


@pytest.mark.timeout(300)
def test_sigkill_then_resume_does_not_rerun_finished_trials(tmp_path):
    space_file = tmp_path / "kill.yaml"
    space_file.write_text(yaml.safe_dump(space(base={"epochs": 8}, space={"seed": {"grid": [0, 1, 2, 3]}},
                                               search={"searcher": "grid", "scheduler": "fifo"},
                                               run={"name": "kill", "max_failures": 1})))
    exp = tmp_path / "out" / "kill"
    args = [str(space_file), "--out", str(tmp_path / "out")]
    proc = subprocess.Popen(CLI + args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV,
                            start_new_session=True)
    try:
        deadline = time.time() + 150
        state = {}
        while time.time() < deadline and proc.poll() is None:
            state = _state(exp)
            if "TERMINATED" in state.values() and "RUNNING" in state.values():
                break
            time.sleep(0.3)
        assert proc.poll() is None, "the search ended before it could be interrupted"
        assert "TERMINATED" in state.values(), state
        os.kill(proc.pid, signal.SIGKILL)  # the driver only, as a crash would
        proc.wait(timeout=10)
    finally:
        kill_group(proc)  # then whatever it left behind
    done_before = {t for t, s in state.items() if s == "TERMINATED"}
    lines_before = {t: len(history(exp / t)) for t in done_before}
    assert not (exp / "results.csv").exists()

    code, out, err = run_cli(args + ["--resume", "kill"], timeout=200)
    assert code == 0, err[-3000:]
    rows = read_rows(exp / "results.csv")
    assert len(rows) == 4 and all(r["status"] == "finished" for r in rows)
    assert all(int(r["backprops"]) == 8 * N for r in rows)
    for t in done_before:  # finished before the kill: not run again
        assert len(history(exp / t)) == lines_before[t] == 8
    for r in rows:  # every trial completed its plan (running ones continue from their last snapshot)
        epochs = [h["epoch"] for h in history(exp / r["trial_id"])]
        assert epochs[-1] == 8 and sorted(set(epochs)) == list(range(1, 9))
