"""Every file `report` and `search --resume` read from a search directory, damaged in each way a disk, a copy or
a crash damages a file (cut inside a multi-byte UTF-8 character, Latin-1 bytes, cut halfway, empty, a directory
in its place, removed): the report is built from what is readable with one warning naming the file, or the
command ends with one `error:` line naming it (exit 2); never a traceback. Also a half-copied and a running
search. No Ray, no servers: the search directory is written here as Ray Tune and the driver leave it."""

from __future__ import annotations

import csv
import io
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from search_helpers import BASE, run_mains

from tune_hardbatch.cli import main
from tune_hardbatch.output.console import space_yaml
from tune_hardbatch.search.history import load_trials
from tune_hardbatch.search.prepare import resolve_run
from tune_hardbatch.search.prepare.lock import check_free
from tune_hardbatch.search.results import write_results
from tune_hardbatch.search.space import load_space
from tune_hardbatch.training.correctness import save_correct
from tune_hardbatch.verdict.confirm_plan import plan_arms
from tune_hardbatch.verdict.judgement import with_arm

SPACE = {"base": {**BASE, "epochs": 2},
         "space": {"hard_batch.delta": {"choice": [None, 0.5]}, "optim.lr": {"loguniform": [0.01, 0.3]}},
         "search": {"searcher": "random", "scheduler": "fifo", "num_samples": 5}, "confirm": {"seeds": 2},
         "resources": {"cpu": 1, "gpu": 0}, "tracking": {"enabled": False}}
SEARCH = {"s0": (None, 0.1, [50.0, 60.0]), "s1": (None, 0.05, [48.0, 58.0]), "s2": (0.5, 0.1, [52.0, 63.0]),
          "s3": (0.5, 0.2, [51.0, 61.0]), "s4": (0.5, 0.3, [30.0])}  # s4 failed after one report
CONFIRM_TRIAL = "confirm/c_1_2"  # arm 1, seed 2


def _reports(vals: list[float], config: dict, start: float) -> list[dict]:
    return [{"val_top1": v, "test_top1": v - 1, "train_top1": v + 5, "train_loss": 1.0 / (i + 1),
             "epoch_equiv": i + 1.0, "compute_equiv": i + 1.0, "backprops": 10 * (i + 1),
             "samples_forward": 640 * (i + 1), "time_total_s": 2.0 * (i + 1), "time_train_s": 1.5, "time_eval_s": 0.5,
             "timestamp": int(start + 2.0 * (i + 1)), "budget_done": int(i == 1), "converged": 0,
             "convergence_epoch": None, "trial_id": "x", "config": config} for i, v in enumerate(vals)]


def _write_trial(d: Path, config: dict, reports: list[dict]) -> None:
    d.mkdir(parents=True)
    (d / "params.json").write_text(json.dumps(config))
    (d / "result.json").write_text("".join(json.dumps(r) + "\n" for r in reports))
    with open(d / "progress.csv", "w", newline="") as fh:  # Ray's; the report never reads it
        w = csv.DictWriter(fh, [k for k in reports[0] if k != "config"])
        w.writeheader()
        w.writerows({k: v for k, v in r.items() if k != "config"} for r in reports)


def _search(exp: Path) -> None:
    """A finished search with its confirmation, as the driver leaves it (verdict.json and report.md apart)."""
    spec = load_space(SPACE)
    exp.mkdir(parents=True)
    (exp / "search_space.yaml").write_text("# δ = 0.5 against plain SGD — which one trains faster?\n" + space_yaml(spec))
    for k, (delta, lr, vals) in enumerate(SEARCH.values()):
        _write_trial(exp / list(SEARCH)[k], {"hard_batch.delta": delta, "optim.lr": lr}, _reports(vals, {
            "hard_batch.delta": delta, "optim.lr": lr}, 1.7e9 + 10 * k))
    (exp / "s4" / "error.txt").write_text("Failure # 1 (occurred at 2026-05-09)\nRuntimeError: CUDA out of memory — ×\n")
    statuses = {t: "failed" if t == "s4" else "finished" for t in SEARCH}
    trials = [replace(t, status=statuses[t.trial_id]) for t in load_trials(exp)]
    write_results(trials, spec, exp / "results.csv")
    plan = plan_arms(spec, exp, trials)
    for i_arm in range(len(plan.arms)):
        for seed in plan.seeds:
            config = {"arm": i_arm, "seed": seed}
            d = exp / "confirm" / f"c_{i_arm}_{seed}"
            _write_trial(d, config, _reports([70.0 + 3 * i_arm + seed, 80.0 + 3 * i_arm + seed], config, 1.8e9))
            save_correct(d, np.random.default_rng(10 * i_arm + seed).random(200) < 0.8)
    confirmed = [with_arm(t, plan.arms) for t in load_trials(exp / "confirm", {}, "confirmation", missing="finished")]
    write_results(confirmed, spec, exp / "confirm_results.csv", phase="confirmation")


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    exp = tmp_path_factory.mktemp("template") / "finished"
    _search(exp)
    return exp


@pytest.fixture
def no_plots(monkeypatch):
    """The plots' drawing (matplotlib: a second per report) and fANOVA's forest (half a second) left out:
    what they are drawn and fitted from is computed (test_report_with_its_plots_* runs them)."""
    from tune_hardbatch.output import plots
    from tune_hardbatch.verdict import importances

    for name in ("confirmed_arms", "importances", "best_so_far", "best_curves", "tuning_curves",
                 "confirmation_looks"):
        monkeypatch.setattr(plots, name, lambda data, path, *args, **kwargs: Path(path))
    monkeypatch.setattr(importances, "_evaluate", lambda rows, keys, by_key, mode: {k: 1 / len(keys) for k in keys})


def _copy(finished: Path, tmp_path: Path) -> Path:
    exp = tmp_path / "finished"
    shutil.copytree(finished, exp)
    return exp


# ---------------------------------------------------------------------------------------------------
# Damage


def _cut_utf8(data: bytes) -> bytes:
    """Cut inside a multi-byte UTF-8 character (one appended where the file has none)."""
    where = data.rfind(b"\xce\xb4")  # the space's comment, the error's em-dash ...
    if where < 0:
        return data[: len(data) // 2] + "δ".encode()[:1]
    return data[: where + 1]


def _latin1(data: bytes) -> bytes:
    """A Latin-1 byte (é) in the middle of the file, as an editor saving it as Latin-1 leaves one."""
    at = data.find(b'"', len(data) // 2) + 1 or len(data) // 2  # in a JSON string, where there is one
    return data[:at] + "é".encode("latin-1") + data[at:]


def _half(data: bytes) -> bytes:
    """Cut halfway, inside a line (a cut just after a newline leaves a shorter whole file)."""
    at = len(data) // 2
    while at < len(data) - 1 and b"\n" in data[at - 1 : at + 1]:
        at += 1
    return data[:at]


def damage(path: Path, how: str) -> None:
    if how == "removed":
        path.unlink()
    elif how == "directory":
        path.unlink()
        path.mkdir()
    else:
        data = path.read_bytes()
        path.write_bytes({"cut_utf8": _cut_utf8, "latin1": _latin1, "half": _half,
                          "empty": lambda d: b""}[how](data))


DAMAGES = ("cut_utf8", "latin1", "half", "empty", "directory", "removed")
FILES = ("search_space.yaml", "results.csv", "s2/result.json", "s2/params.json", "s2/progress.csv", "s4/error.txt",
         "confirm_arms.json", "confirm_results.csv", f"{CONFIRM_TRIAL}/result.json", f"{CONFIRM_TRIAL}/params.json",
         f"{CONFIRM_TRIAL}/test_correct.npz", "verdict.json")
NOT_READ = ("s2/progress.csv", "s4/error.txt")  # Ray's and the trial's own: nothing the report needs


def expected(name: str, how: str) -> str:
    """What `report` does: error (exit 2, one line naming the file), warn (exit 0, a warning naming it) or
    quiet (exit 0: a missing file is one the search has not written yet; an empty result.json, a trial
    that has not reported yet)."""
    if how == "removed" or name in NOT_READ or (name.endswith("result.json") and how == "empty"):
        return "quiet"
    return "error" if name == "search_space.yaml" else "warn"


def run_report(exp: Path, capsys, *extra) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["report", str(exp), *extra])
    out, err = capsys.readouterr()
    return code, out, err


def check(code: int, out: str, err: str, name: str, outcome: str) -> None:
    assert "Traceback" not in err, err
    if outcome == "error":
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and name in lines[0], err
        return
    assert code == 0, err
    assert out.startswith("# Search finished") or out.startswith("arm,") or out.startswith("["), out[:200]
    warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
    if outcome == "warn":
        assert any(name in line for line in warnings), err
        assert len([line for line in warnings if name in line]) == 1, err
    else:
        assert not warnings, err


@pytest.mark.parametrize("how", DAMAGES)
@pytest.mark.parametrize("name", FILES)
def test_report_of_a_damaged_file(finished, tmp_path, capsys, no_plots, name, how):
    exp = _copy(finished, tmp_path)
    if name == "verdict.json":  # read only when the confirmation's plan is not there: then as the search left it
        assert main(["report", str(exp)]) == 0
        (exp / "confirm_arms.json").unlink()
    damage(exp / name, how)
    code, out, err = run_report(exp, capsys)
    check(code, out, err, name, expected(name, how))


@pytest.mark.parametrize("name, how, fmt", [("results.csv", "cut_utf8", "csv"), ("s2/result.json", "latin1", "json"),
                                            ("confirm_arms.json", "half", "csv"),
                                            ("search_space.yaml", "latin1", "json")])
def test_report_formats_of_a_damaged_search(finished, tmp_path, capsys, no_plots, name, how, fmt):
    exp = _copy(finished, tmp_path)
    damage(exp / name, how)
    code, out, err = run_report(exp, capsys, "--format", fmt)
    check(code, out, err, name, expected(name, how))
    if code == 0:
        rows = list(csv.DictReader(io.StringIO(out))) if fmt == "csv" else json.loads(out)
        assert len(rows) == len(SEARCH)  # an arm per learning rate and strategy


@pytest.mark.parametrize("name, how", [("s2/result.json", "half"), ("verdict.json", "latin1"),
                                       (f"{CONFIRM_TRIAL}/test_correct.npz", "cut_utf8")])
def test_report_with_its_plots_of_a_damaged_search(finished, tmp_path, capsys, name, how):
    exp = _copy(finished, tmp_path)
    if name == "verdict.json":
        (exp / "confirm_arms.json").unlink()
        (exp / name).write_text(json.dumps({"arms": [], "baseline": None, "sentences": []}))
    damage(exp / name, how)
    check(*run_report(exp, capsys), name, expected(name, how))


def test_report_rewrites_the_verdict_where_a_directory_is_in_its_place(finished, tmp_path, capsys, no_plots):
    exp = _copy(finished, tmp_path)
    (exp / "verdict.json").mkdir()
    code, out, err = run_report(exp, capsys)
    assert code == 0 and "cannot write it" in err and "## Verdict" in out and "Traceback" not in err


def test_report_where_a_directory_is_in_the_place_of_report_md(finished, tmp_path, capsys, no_plots):
    exp = _copy(finished, tmp_path)
    (exp / "report.md").mkdir()
    check(*run_report(exp, capsys), "report.md", "error")


def test_report_of_a_half_copied_search(finished, tmp_path, capsys, no_plots):
    """Some trial directories copied, no results files, the confirmation's plan and one of its runs."""
    exp = tmp_path / "finished"
    exp.mkdir()
    for name in ("search_space.yaml", "confirm_arms.json"):
        shutil.copy(finished / name, exp / name)
    for trial in ("s0", "s2", CONFIRM_TRIAL):
        shutil.copytree(finished / trial, exp / trial)
    damage(exp / CONFIRM_TRIAL / "result.json", "half")  # the copy stopped there
    code, out, err = run_report(exp, capsys)
    assert code == 0 and "Traceback" not in err and "running" in out, err
    assert "partial" in out


def test_report_of_a_running_search(finished, tmp_path, capsys, no_plots):
    """No results.csv yet; a trial writing its report (its last line without its newline), one that has not
    reported yet (an empty result.json): the report of what is there, no warning."""
    exp = _copy(finished, tmp_path)
    for name in ("results.csv", "confirm_results.csv", "confirm_arms.json"):
        (exp / name).unlink()
    shutil.rmtree(exp / "confirm")
    s1 = exp / "s1" / "result.json"
    s1.write_bytes(s1.read_bytes()[:-40])
    (exp / "s3" / "result.json").write_text("")
    code, out, err = run_report(exp, capsys)
    assert code == 0 and "Traceback" not in err and not [x for x in err.splitlines() if x.startswith("warning")], err
    assert "running" in out and "No verdict yet" in out


@pytest.mark.parametrize("how", ["cut_utf8", "latin1", "half", "empty", "directory"])
def test_a_damaged_driver_record_records_no_driver(finished, tmp_path, how):
    exp = _copy(finished, tmp_path)
    (exp / "driver.json").write_text(json.dumps({"host": "elsewhere", "pid": 4321, "start": "1 — δ"}))
    damage(exp / "driver.json", how)
    check_free(exp, "--resume")  # a damaged record is a driver that is gone: no error, no traceback


# ---------------------------------------------------------------------------------------------------
# search --resume NAME: a damaged state file is one error line naming it, before Ray is imported

RESUME_STATE = {"tuner.pkl": b"\x80\x05N.", "experiment_state-2026-05-09_10-00-00.json":
                b'{"trial_data": [], "runner_data": {"note": "\xce\xb4"}}',
                "confirm/tuner.pkl": b"\x80\x05N.", "searcher-state-2026-05-09_10-00-00.pkl": b"\x80\x05N.",
                "confirm_arms.json": b'{"arms": [], "seeds": [1, 2], "notes": ["\xce\xb4"]}',
                "rungs.jsonl": b'{"all": {"note": "\xce\xb4"}}',
                "optuna.journal": b'{"op_code": 0, "worker_id": "a"}\n{"op_code": 4, "note": "\xce\xb4"}\n'}
RESUME_CASES = [("search_space.yaml", "latin1"), ("search_space.yaml", "directory"),
                ("tuner.pkl", "half"), ("confirm/tuner.pkl", "empty"),
                ("experiment_state-2026-05-09_10-00-00.json", "cut_utf8"),
                ("searcher-state-2026-05-09_10-00-00.pkl", "directory"), ("confirm_arms.json", "half"),
                ("confirm_arms.json", "latin1"), ("rungs.jsonl", "cut_utf8"), ("optuna.journal", "latin1"),
                ("optuna.journal", "half")]


def _resumable(exp: Path) -> None:
    exp.mkdir(parents=True)
    (exp / "search_space.yaml").write_text(space_yaml(load_space(SPACE, ["run.name=" + exp.name])))
    for name, data in RESUME_STATE.items():
        (exp / name).parent.mkdir(parents=True, exist_ok=True)
        (exp / name).write_bytes(data)


def test_resume_reads_whole_state_files(tmp_path):
    """The state as a search leaves it passes the check (nothing is damaged)."""
    _resumable(tmp_path / "out" / "ok")
    space, _, name, resuming = resolve_run(None, [], "ok", str(tmp_path / "out"))
    assert resuming and name == "ok"


@pytest.mark.timeout(120)
def test_resume_of_damaged_state_is_one_error_line_before_ray(tmp_path):
    out = tmp_path / "out"
    argvs = []
    for i, (name, how) in enumerate(RESUME_CASES):
        _resumable(out / f"r{i}")
        damage(out / f"r{i}" / name, how)
        argvs.append(["search", "--resume", f"r{i}", "--out", str(out)])
    results, ray_imported = run_mains(argvs, cwd=tmp_path)
    for (name, how), (code, err) in zip(RESUME_CASES, results):
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and name in lines[0], (name, how, err)
    assert not ray_imported
