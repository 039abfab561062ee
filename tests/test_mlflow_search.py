"""Searches tracked in a real `mlflow server` on 127.0.0.1 (sqlite + artifact folder), end to end.

One module-scoped server is shared by the tests (the outage test stops and restarts it on the same port
and database). Every search is a `tune-hardbatch` CLI subprocess in its own process group (each with its
own local Ray), killed with its group afterwards, except the --resume after a driver SIGKILL, which runs in
this process on the local Ray that conftest's `local_ray` shares; what MLflow holds is read back with
`MlflowClient` and compared with the Ray results (results.csv, each trial's result.json). The browser test
opens the MLflow UI in Debian's headless chromium (installed by `.ci/system-deps`).
"""

from __future__ import annotations

import csv
import glob
import html
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml
from mlflow.tracking import MlflowClient
from servers import MlflowServer, free_port, kill_group

pytestmark = pytest.mark.e2e  # an MLflow server, CLI searches with their own local Ray

REPO = Path(__file__).resolve().parent.parent
ENV = {k: v for k, v in os.environ.items() if k != "TUNE_HARDBATCH_TEST_CRASH"}
ENV.update({"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "TUNE_HARDBATCH_NO_PROGRESS": "1",
            "TUNE_GLOBAL_CHECKPOINT_S": "1", "PYTHONUNBUFFERED": "1"})
CLI = [sys.executable, "-m", "tune_hardbatch"]
TINY = ["--set", "data.train_limit=640", "--set", "resources.cpu=1"]  # 640 samples (512 after the validation split)
RUN_STATE = {"finished": "FINISHED", "stopped_early": "FINISHED", "diverged": "FAILED", "failed": "FAILED"}
CONTRACT_KEYS = ("seed", "epochs", "device", "data.name", "data.root", "data.image_size", "data.train_limit",
                 "model.name", "model.cifar_stem", "optim.name", "optim.lr", "optim.momentum",
                 "optim.weight_decay", "optim.batch_size", "optim.schedule", "hard_batch.delta", "trim.schedule",
                 "trim.p_start", "trim.p_end", "stepwise.fractions", "stepwise.epochs",
                 "stepwise.batch_multipliers", "stepwise.lr_multipliers", "convergence.tol",
                 "convergence.patience", "target_top1")
PARENT_FILES = {"results.csv", "report.md", "search_space.yaml", "best_config.yaml"}
CHILD_FILES = {"config.yaml", "curves.png"}


# ---------------------------------------------------------------------------------------------------
# Helpers: processes, Ray results, MLflow contents


def run_cli(args, timeout):
    """`tune-hardbatch ARGS` in its own process group, killed with the group afterwards."""
    proc = subprocess.Popen(CLI + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        kill_group(proc)
    return proc.returncode, out, err


def start_cli(args, log: Path):
    """A search in the background (stdout and stderr to `log`): stop it with `_kill_group`."""
    fh = open(log, "w")
    proc = subprocess.Popen(CLI + args, stdout=fh, stderr=subprocess.STDOUT, text=True, env=ENV,
                            start_new_session=True)
    fh.close()
    return proc


def wait_for(what: str, predicate, proc, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        assert proc.poll() is None, f"the search ended before {what}"
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def read_rows(path) -> list[dict]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


def reports(trial_dir: Path) -> list[dict]:
    """What a trial reported: Ray's result.json, one JSON object per line (a line being written is skipped)."""
    path = Path(trial_dir) / "result.json"
    out = []
    for line in (path.read_text().splitlines() if path.is_file() else []):
        try:
            out.append(json.loads(line))
        except ValueError:
            break
    return out


def ray_state(exp: Path) -> dict:
    """trial id -> Ray status from the newest experiment snapshot ({} while none is readable)."""
    files = sorted(glob.glob(str(exp / "experiment_state-*.json")))
    try:
        data = json.loads(Path(files[-1]).read_text())
        return {json.loads(t[0])["trial_id"]: json.loads(t[0])["status"] for t in data["trial_data"]}
    except (IndexError, OSError, ValueError, KeyError):
        return {}


def mapped_trials(exp: Path) -> dict:
    try:
        return json.loads((exp / "mlflow_runs.json").read_text())["trials"]
    except (OSError, ValueError, KeyError):
        return {}


def tracked(uri: str, experiment: str):
    """(client, experiment, the one parent run, {trial key: child run}) with the nesting checked (the key:
    a search trial's id, "confirm/<id>" for a confirmation trial)."""
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no MLflow experiment {experiment!r}"
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1, [r.info.run_name for r in parents]
    parent = parents[0]
    assert parent.data.tags.get("tune_hardbatch.kind") == "search"
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert all(c.data.tags["mlflow.parentRunId"] == parent.info.run_id for c in children)
    by_key = {c.data.tags.get("trial_key", c.data.tags["trial_id"]): c for c in children}
    assert len(by_key) == len(children), "one child run per trial, no duplicates"
    return client, exp, parent, by_key


def check_history(client, run, trial_dir: Path, exact: bool) -> None:
    """The child's metric histories hold every report of result.json at step = backprops, each step once.

    `exact`: one entry per result.json line (an uninterrupted trial). After a resume, a trial restored from
    its checkpoint may re-report steps in result.json, which MLflow must hold once.
    """
    lines = reports(trial_dir)
    steps = [int(r["backprops"]) for r in lines]
    last = {int(r["backprops"]): r for r in lines}
    if exact:
        assert steps == sorted(set(steps)), f"steps strictly increasing in {trial_dir}/result.json"
    for key in ("backprops", "epoch_equiv", "samples_forward", "test_top1", "train_loss", "lr"):
        history = client.get_metric_history(run.info.run_id, key)
        logged = sorted(int(m.step) for m in history)
        assert logged == sorted(last), (run.info.run_name, key, logged, steps)  # complete, each step once
        if exact:
            assert len(history) == len(lines)
        for m in history:
            want = float(last[int(m.step)][key])
            assert m.value == pytest.approx(want, rel=1e-6, nan_ok=True), (run.info.run_name, key, m.step)
    assert all(m.value == m.step for m in client.get_metric_history(run.info.run_id, "backprops"))


def search_children(children: dict) -> dict:
    return {k: c for k, c in children.items() if c.data.tags.get("phase") != "confirmation"}


def check_children(client, children: dict, exp: Path, rows: list[dict], exact: bool) -> None:
    """One search-phase child per results.csv row, named "<strategy> <trial id>": status, strategy and
    phase tags, run state, histories, artifacts."""
    children = search_children(children)
    assert sorted(children) == sorted(r["trial_id"] for r in rows)
    for row in rows:
        child = client.get_run(children[row["trial_id"]].info.run_id)
        tags = child.data.tags
        assert tags["trial_id"] == row["trial_id"] and tags["phase"] == "search"
        assert child.info.run_name == f"{row['strategy']} {row['trial_id']}"
        assert tags["status"] == row["status"] and tags["strategy"] == row["strategy"], (tags, row)
        assert child.info.status == RUN_STATE[row["status"]]
        check_history(client, child, exp / row["trial_id"], exact)
        assert {a.path for a in client.list_artifacts(child.info.run_id)} >= CHILD_FILES


def check_parent(client, parent, exp: Path) -> None:
    parent = client.get_run(parent.info.run_id)
    assert parent.info.run_name == exp.name and parent.info.status == "FINISHED"
    plots = {p.name for p in exp.glob("*.png")}  # the report's plots (which ones: tests/output/test_report.py)
    assert plots, f"no plot in {exp}"
    verdict = {"verdict.json"} if (exp / "verdict.json").is_file() else set()
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} >= PARENT_FILES | plots | verdict
    local = client.download_artifacts(parent.info.run_id, "results.csv", str(exp.parent / "downloaded"))
    assert Path(local).read_text() == (exp / "results.csv").read_text()


def same_value(param: str, cell: str) -> bool:
    """A child param against a results.csv cell (an empty cell is a None value, e.g. plain SGD's delta)."""
    if cell == "":
        return param == "null"
    try:
        return math.isclose(float(param), float(cell), rel_tol=1e-12)
    except ValueError:
        return param == cell


# ---------------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = MlflowServer(tmp_path_factory.mktemp("mlflow-server"), port=free_port()).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def search(server, tmp_path_factory):
    """The default space, 4 trials of 3 epochs on 640 digits (ASHA stops some), tracked in `server`."""
    out = tmp_path_factory.mktemp("search")
    code, stdout, stderr = run_cli(
        ["search", "--out", str(out), "--set", "search.num_samples=4", "--set", "base.epochs=3", *TINY,
         "--set", "space.seed={choice: [0, 1]}", "--set", "run.name=tracked",
         "--set", f"tracking.uri={server.uri}", "--set", "tracking.experiment=t-search"], timeout=240)
    assert code == 0, stderr[-3000:]
    return {"exp": out / "tracked", "rows": read_rows(out / "tracked" / "results.csv"), "stdout": stdout,
            "stderr": stderr, "experiment": "t-search"}


# ---------------------------------------------------------------------------------------------------
# Tests


@pytest.mark.timeout(90)
def test_unreachable_tracking_server_exits_2_before_any_trial(tmp_path):
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    code, out, err = run_cli(["search", "--out", str(tmp_path / "out"), "--set", f"tracking.uri={uri}",
                              "--set", "run.name=never"], timeout=80)
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: tracking.uri: ") and uri in lines[0], err
    assert not (tmp_path / "out" / "never").exists(), "no experiment directory, no trial"


@pytest.mark.timeout(420)
def test_search_makes_one_parent_and_one_child_per_trial(server, search):
    exp, rows = search["exp"], search["rows"]
    assert len(rows) == 4
    client, _, parent, children = tracked(server.uri, search["experiment"])
    check_children(client, children, exp, rows, exact=True)
    check_parent(client, parent, exp)
    assert parent.data.params["search.num_samples"] == "4" and "space.optim.lr" in parent.data.params
    dims = list(rows[0])[list(rows[0]).index("strategy") + 1:list(rows[0]).index("final_test_top1")]
    assert {"optim.lr", "hard_batch.delta", "seed"} <= set(dims)
    for row in rows:  # params: the flattened resolved config, agreeing with results.csv
        params = children[row["trial_id"]].data.params
        assert set(CONTRACT_KEYS) <= set(params)
        assert params["epochs"] == "3" and params["data.train_limit"] == "640" and params["data.name"] == "digits"
        for key in ("optim.lr", "hard_batch.delta", "seed"):
            assert same_value(params[key], row[key]), (row["trial_id"], key, params[key], row[key])
    # each trial's run has the search's data as its input: the runs table's Dataset column (name and digest)
    inputs = [client.get_run(c.info.run_id).inputs.dataset_inputs for c in children.values()]
    assert all(len(i) == 1 and i[0].dataset.name == "digits" for i in inputs)
    assert len({i[0].dataset.digest for i in inputs}) == 1 and inputs[0][0].tags[0].value == "training"
    # MLflow prints no "View run" lines among the summary, the confirmation and the verdict on stdout
    assert any(line.startswith("best configuration") for line in search["stdout"].splitlines())
    assert "View run" not in search["stdout"] and "View experiment" not in search["stdout"]
    assert "warning: MLflow" not in search["stderr"]


# --- the MLflow UI in headless chromium ------------------------------------------------------------

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1600,4000"]


def chromium_binary() -> str:
    """Debian's chromium; installed with .ci/system-deps when missing (as root), else the test skips."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run([str(REPO / ".ci" / "system-deps")], timeout=300, capture_output=True)
        found = shutil.which("chromium")
    if found is None:
        pytest.skip("chromium is not installed and cannot be installed here (.ci/system-deps)")
    return found


def browse(binary: str, url: str, profile: Path, *action: str, budget_ms: int = 20000) -> str:
    """Load `url` in a fresh headless profile, let the page run `budget_ms` of virtual time, then act."""
    shutil.rmtree(profile, ignore_errors=True)
    proc = subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                           f"--virtual-time-budget={budget_ms}", *action, url],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def page_text(dom: str) -> str:
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", dom)))


CHART_RUNS = 10  # MLflow's charts show the first 10 runs of the table unless more are made visible


def rendered_chart(dom: str, metric: str, runs: list[str]) -> bool:
    """The chart card titled `metric`: a Plotly SVG with at least one drawn line and in its legend every run
    of `runs` (or CHART_RUNS of them when there are more)."""
    start = dom.find(f">{metric}<")
    shown = [r for r in runs if f"{html.escape(r, quote=False)} ({metric})" in dom]  # 'delta<1': '&lt;' in HTML
    end = max((dom.rfind(f"{html.escape(r, quote=False)} ({metric})") for r in shown), default=-1)
    if start < 0 or end < start:
        return False
    card = dom[start:end]
    return ('class="main-svg"' in card and re.search(r'class="js-line" d="M[-\d.,]+L', card) is not None
            and len(shown) >= min(len(runs), CHART_RUNS))


def arm_slug(label: str) -> str:
    """An arm label in a metric name: '<' and '>' spelt out, what else MLflow does not take in one ('=', '+',
    ...) becomes '_'."""
    return re.sub(r"[^\w.-]+", "_", label.replace("<", "_lt_").replace(">", "_gt_")).strip("_.")


def ui_url(server, search) -> str:
    """The link the tool gives to the search's experiment (`SearchTracker.ui_url`)."""
    from tune_hardbatch.tracking import SearchTracker

    url = SearchTracker(server.uri, search["experiment"], search["exp"]).ui_url()
    assert url is not None and "workflowType=machine_learning" in url
    return url


@pytest.mark.timeout(420)
def test_mlflow_ui_lists_child_runs_and_draws_metric_charts(server, search, tmp_path):
    """The experiment opens as a model-training one on its runs (not on MLflow 3.17's GenAI overview), the
    trials listed by their readable names, and their metric charts drawn."""
    binary = chromium_binary()
    client, exp, parent, children = tracked(server.uri, search["experiment"])
    assert exp.tags.get("mlflow.experimentKind") == "custom_model_development"
    names = sorted(c.info.run_name for c in children.values())
    assert all(c.info.run_name == f"{c.data.tags['strategy']} {c.data.tags['trial_id']}"
               for c in search_children(children).values()), names
    # the experiment page as the tool's link opens it: the runs of a model-training experiment (title and
    # sidebar), not the GenAI overview; then its runs sorted by test_top1 (a sorted table lists nested runs flat)
    runs_url = (f"{server.uri}/#/experiments/{exp.experiment_id}/runs?workflowType=machine_learning"
                f"&orderByKey={quote('metrics.`test_top1`')}&orderByAsc=false")
    chart_url = runs_url + "&compareRunsMode=CHART"
    for budget in (15000, 30000, 60000):  # more virtual time when the machine is slow
        landing = page_text(browse(binary, ui_url(server, search), tmp_path / "profile", "--dump-dom",
                                   budget_ms=budget))
        table = page_text(browse(binary, runs_url, tmp_path / "profile", "--dump-dom", budget_ms=budget))
        chart_dom = browse(binary, chart_url, tmp_path / "profile", "--dump-dom", budget_ms=budget)
        if (f"{len(names) + 1} matching runs" in landing and all(n in table for n in names)
                and rendered_chart(chart_dom, "test_top1", names)):
            break
    assert f"Runs - Experiment {exp.experiment_id}" in landing and "Model registry" in landing, landing[:3000]
    assert "Overview - Experiment" not in landing and "Observability" not in landing, landing[:3000]
    assert f"{len(names) + 1} matching runs" in landing, landing[:3000]
    assert f"{len(names) + 1} matching runs" in table, table[:3000]
    assert all(n in table for n in names + [parent.info.run_name]), (names, table[:3000])
    assert rendered_chart(chart_dom, "test_top1", names), page_text(chart_dom)[:3000]
    assert "Model metrics" in page_text(chart_dom)
    shot = tmp_path / "mlflow-ui-charts.png"
    browse(binary, chart_url, tmp_path / "profile", f"--screenshot={shot}", budget_ms=budget)
    from PIL import Image

    with Image.open(shot) as img:
        assert img.size == (1600, 4000)
        assert len(img.convert("L").getcolors(maxcolors=1 << 16) or range(1 << 16)) > 50, "a blank page"
    print(f"\nMLflow UI screenshot (runs and metric charts of search {search['exp'].name}): {shot}")


@pytest.mark.timeout(300)
def test_mlflow_ui_shows_the_verdict_on_the_parent_run(server, search, tmp_path):
    """The parent run's page shows the verdict: its sentences (the description), every arm's mean as a
    metric, and verdict.json among its artifacts."""
    path = search["exp"] / "verdict.json"
    if not path.is_file():
        pytest.skip(f"the search wrote no verdict.json in {search['exp']} (no confirmation phase or verdict "
                    "yet): nothing to look for on the parent run")
    verdict = json.loads(path.read_text())
    binary = chromium_binary()
    client, exp, parent, _ = tracked(server.uri, search["experiment"])
    run = client.get_run(parent.info.run_id)
    metric = verdict.get("metric", "test_top1")
    means = {f"{arm_slug(a['arm'])}.{metric}_mean": m for a in verdict["arms"]
             if isinstance(m := (a.get(metric) or {}).get("mean"), (int, float)) and math.isfinite(m)}
    assert means, f"no arm of the verdict has a finite {metric} mean: {verdict}"
    for name, mean in means.items():
        assert run.data.metrics.get(name) == pytest.approx(mean), (name, sorted(run.data.metrics))
    assert "verdict.json" in {a.path for a in client.list_artifacts(run.info.run_id)}
    sentences = [re.split(r"[*_`<>\[\]]", s)[0][:60] for s in verdict["sentences"]]  # before any Markdown
    assert sentences and run.data.tags["mlflow.note.content"].startswith("### Verdict")
    run_url = f"{server.uri}/#/experiments/{exp.experiment_id}/runs/{run.info.run_id}"
    for budget in (15000, 30000, 60000):
        page = page_text(browse(binary, f"{run_url}?workflowType=machine_learning", tmp_path / "profile",
                                "--dump-dom", budget_ms=budget))
        artifacts = page_text(browse(binary, f"{run_url}/artifacts?workflowType=machine_learning",
                                     tmp_path / "profile", "--dump-dom", budget_ms=budget))
        if all(n in page for n in means) and "verdict.json" in artifacts:
            break
    assert "Verdict (" in page and all(s in page for s in sentences), page[:4000]
    assert all(n in page for n in means), (sorted(means), page[:4000])
    assert "verdict.json" in artifacts, artifacts[:3000]


# --- interruptions ---------------------------------------------------------------------------------


def grid_space(path: Path, name: str, experiment: str, uri: str, seeds: list[int], epochs: int) -> list[str]:
    """A grid over seeds with FIFO (every trial runs to the end); the CLI arguments that run it."""
    path.write_text(yaml.safe_dump({
        "base": {"data": {"name": "digits", "train_limit": 640}, "model": {"name": "test_resnet"},
                 "device": "cpu", "epochs": epochs, "optim": {"batch_size": 64}},
        "space": {"seed": {"grid": seeds}},
        "search": {"searcher": "grid", "scheduler": "fifo", "metric": "train_top1"},  # no hold-out: 640 to train
        "resources": {"cpu": 1, "gpu": 0},
        "tracking": {"uri": uri, "experiment": experiment}, "run": {"name": name, "max_failures": 1}}))
    return ["search", str(path), "--out", str(path.parent / "out")]


@pytest.mark.timeout(420)
def test_resume_after_driver_sigkill_keeps_one_child_run_per_trial(server, local_ray, tmp_path):
    """The driver (a CLI subprocess) is killed mid-search; --resume (what the CLI runs: `run_search` with
    the same space and `resume`) continues in this process on the shared local Ray, tracked in `server`."""
    from tune_hardbatch.ray_backend import run_search

    args = grid_space(tmp_path / "kill.yaml", "kill", "t-resume", server.uri, [0, 1, 2], epochs=8)
    exp = tmp_path / "out" / "kill"
    proc = start_cli(args, tmp_path / "first.log")
    try:
        def finished_and_one_running():
            state = ray_state(exp)
            done = [t for t, s in state.items() if s == "TERMINATED" and t in mapped_trials(exp)]
            running = [t for t, s in state.items() if s == "RUNNING" and reports(exp / t)]
            return done and running and (done, running)

        done, running = wait_for("a finished trial and a running one", finished_and_one_running, proc, 200)
        os.kill(proc.pid, signal.SIGKILL)  # the driver only, as a crash would
        proc.wait(timeout=10)
    finally:
        kill_group(proc)  # then the Ray processes it left behind
    assert not (exp / "results.csv").exists()
    client, _, _, before = tracked(server.uri, "t-resume")
    # runs are made on the tracking thread, so a trial that had just started may have none yet (it gets one
    # on resume); a finished one whose run was recorded has it
    assert set(done) <= set(before) and running

    path = run_search(str(tmp_path / "kill.yaml"), out=str(tmp_path / "out"), resume="kill", live_interval_s=1000)
    assert path.resolve() == (exp / "results.csv").resolve()
    rows = read_rows(exp / "results.csv")
    assert len(rows) == 3 and all(r["status"] == "finished" for r in rows)
    client, _, parent, children = tracked(server.uri, "t-resume")
    assert {t: children[t].info.run_id for t in before} == {t: r.info.run_id for t, r in before.items()}
    check_children(client, children, exp, rows, exact=False)
    check_parent(client, parent, exp)
    assert all(int(r["backprops"]) == 8 * 10 for r in rows)  # every plan complete, and (above) in MLflow


@pytest.mark.timeout(420)
def test_server_down_mid_search_then_report_sync_uploads_the_rest(server, tmp_path):
    args = grid_space(tmp_path / "outage.yaml", "outage", "t-outage", server.uri, [0, 1, 2], epochs=5)
    exp = tmp_path / "out" / "outage"
    proc = start_cli(args, tmp_path / "search.log")
    try:
        wait_for("the first report", lambda: any(reports(p.parent) for p in exp.glob("*/result.json"))
                 and mapped_trials(exp), proc, 200)
        server.stop()  # by PID, while the trials train
        proc.wait(timeout=300)
    finally:
        kill_group(proc)
        if server.proc is None:
            server.start()  # same port, same database
    log = (tmp_path / "search.log").read_text()
    assert proc.returncode == 0, log[-3000:]
    assert log.count("warning: MLflow tracking at") == 1 and "--sync" in log, log[-3000:]
    rows = read_rows(exp / "results.csv")
    assert len(rows) == 3 and all(r["status"] == "finished" for r in rows)
    client, _, parent, before = tracked(server.uri, "t-outage")
    incomplete = [r["trial_id"] for r in rows if r["trial_id"] not in before or
                  len(client.get_metric_history(before[r["trial_id"]].info.run_id, "backprops")) < 5]
    assert incomplete, "the server went down after the search had logged everything"
    assert client.get_run(parent.info.run_id).info.status == "RUNNING"

    code, out, err = run_cli(["report", "outage", "--out", str(tmp_path / "out"), "--sync"], timeout=180)
    assert code == 0, err[-3000:]
    assert re.search(r"synced outage to MLflow: \d+ runs created, [1-9]\d* metric values uploaded", err), err
    client, _, parent, children = tracked(server.uri, "t-outage")
    check_children(client, children, exp, rows, exact=True)
    check_parent(client, parent, exp)
    code, _, err = run_cli(["report", "outage", "--out", str(tmp_path / "out"), "--sync"], timeout=180)
    assert code == 0 and "0 runs created, 0 metric values uploaded" in err, err  # a second sync adds nothing
    assert len(tracked(server.uri, "t-outage")[3]) == 3
