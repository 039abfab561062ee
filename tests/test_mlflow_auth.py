"""The cluster's MLflow server lets in only who must: cluster/start-mlflow.sh for real, and searches against it.

One module-scoped server is started the way the head starts it (`start-mlflow.sh`, settings from an
mlflow.env file) with MLFLOW_AUTH=basic and no MLFLOW_HOST, on a free port, with a sqlite store in a
temporary directory; it is stopped with `start-mlflow.sh --stop` (then its process group by PID) whatever
happens. The searches are `tune-hardbatch` CLI subprocesses in their own process groups, with the
credentials in the environment MLflow's client reads (MLFLOW_TRACKING_USERNAME / _PASSWORD).
"""

from __future__ import annotations

import base64
import csv
import json
import os
import signal
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from search_helpers import TYPED_NAME100, TYPED_SETS, TYPED_SPACE, run_cli
from servers import free_port

pytestmark = pytest.mark.e2e  # MLflow servers, CLI searches with their own local Ray

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "cluster" / "start-mlflow.sh"
ADMIN, PASSWORD = "admin", "first-admin-password-7f3c"
ENV = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_") and k != "TUNE_HARDBATCH_TEST_CRASH"}
ENV.update({"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "TUNE_HARDBATCH_NO_PROGRESS": "1",
            "TUNE_GLOBAL_CHECKPOINT_S": "1", "PYTHONUNBUFFERED": "1",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"})
CLI = [sys.executable, "-m", "tune_hardbatch"]
# the smallest search the other tests run: two arms of one trial each, one epoch on 640 digits, no confirmation
SMALL = ["--set", "resources.cpu=1", "--set", "search.num_samples=2", "--set", "arms.trim=null",
         "--set", "arms.splits=null", "--set", "base.epochs=1", "--set", "confirm.seeds=0",
         "--set", "data.train_limit=640"]
QUIET = {"MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
         "MLFLOW_HTTP_REQUEST_TIMEOUT": "10", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}
RUN_STATE = {"finished": "FINISHED", "stopped_early": "FINISHED", "diverged": "FAILED", "failed": "FAILED"}


# ---------------------------------------------------------------------------------------------------
# Helpers


def script_env(root: Path, port: int, **settings) -> dict:
    """The environment of `start-mlflow.sh` on a head: its settings in an mlflow.env file (mode 600)."""
    env_file = root / "mlflow.env"
    lines = {"MLFLOW_BACKEND_STORE_URI": f"sqlite:///{root}/store/mlflow.db",
             "MLFLOW_ARTIFACTS_DESTINATION": str(root / "artifacts"), "MLFLOW_PORT": str(port),
             "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **settings}
    root.mkdir(parents=True, exist_ok=True)
    env_file.write_text("".join(f"{k}={v}\n" for k, v in lines.items()))
    env_file.chmod(0o600)
    return {**ENV, "TUNE_HARDBATCH_MLFLOW_ENV": str(env_file), "MLFLOW_STATE_DIR": str(root / "state")}


def start(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=180)


def stop(env: dict) -> None:
    """`start-mlflow.sh --stop`, then SIGKILL to the process group of the pid file, if anything is left."""
    pid_file = Path(env["MLFLOW_STATE_DIR"]) / "mlflow-server.pid"
    pid = int(pid_file.read_text()) if pid_file.is_file() else None
    try:
        start(env, "--stop")
    finally:
        if pid is not None:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def get(url: str, user: str | None = None, password: str | None = None) -> int:
    """The HTTP status of a GET, with a Basic Authorization header when `user` is given."""
    headers = {}
    if user is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except urllib.error.URLError:
        return 0  # nothing answers


def group_pids(pgid: int) -> list[int]:
    """Every process of a process group (the server: `mlflow server` and its uvicorn processes)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid:  # after the command: state, ppid, pgrp
                found.append(int(entry))
    return found


def listening(pgid: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket a process of the group listens on, read from the kernel's socket
    tables (/proc/net/tcp, tcp6) and the processes' open files, not from any command line."""
    import ipaddress

    inodes = set()
    for pid in group_pids(pgid):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] != "0A" or cols[9] not in inodes:  # 0A: LISTEN
                continue
            hex_addr, hex_port = cols[1].split(":")
            raw = bytes.fromhex(hex_addr)  # the kernel's 32-bit words, each in host (little-endian) order
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            found.add((str(ipaddress.ip_address(raw)), int(hex_port, 16)))
    return found


# ---------------------------------------------------------------------------------------------------
# The server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """start-mlflow.sh with MLFLOW_AUTH=basic and no MLFLOW_HOST; stopped by PID at the end."""
    root = tmp_path_factory.mktemp("auth-server")
    port = free_port()
    env = script_env(root, port, MLFLOW_AUTH="basic", MLFLOW_AUTH_ADMIN_PASSWORD=PASSWORD)
    try:
        started = time.monotonic()
        out = start(env)
        assert out.returncode == 0, out.stdout + out.stderr
        pid = int((root / "state" / "mlflow-server.pid").read_text())
        yield {"uri": f"http://127.0.0.1:{port}", "port": port, "pid": pid, "root": root, "env": env,
               "stdout": out.stdout, "stderr": out.stderr, "start_s": time.monotonic() - started}
    finally:
        stop(env)


def test_api_needs_credentials_health_does_not(server):
    """(a) Unauthenticated API requests get 401; the admin's credentials from mlflow.env get in; /health
    stays open (the script and the search's pre-flight check use it). The settings the auth app reads and
    its database are the user's alone, and the password is in neither the settings nor the command line."""
    api = server["uri"] + "/api/2.0/mlflow/experiments/search?max_results=1"
    assert get(api) == 401
    assert get(api, ADMIN, "not-the-password") == 401
    assert get(api, ADMIN, PASSWORD) == 200
    assert get(server["uri"] + "/health") == 200
    assert "basic auth" in server["stdout"] and server["stderr"] == "", server["stdout"] + server["stderr"]
    state, store = server["root"] / "state", server["root"] / "store"
    ini, auth_db = state / "mlflow-auth.ini", store / "mlflow-auth.db"  # the auth db beside the runs' store
    for path in (ini, auth_db, state / "mlflow-flask-secret-key"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    text = ini.read_text()
    assert "default_permission = READ" in text and f"database_uri = sqlite:///{auth_db}" in text
    cmdlines = [Path(f"/proc/{p}/cmdline").read_bytes() for p in group_pids(server["pid"])]
    assert PASSWORD not in text and not any(PASSWORD.encode() in c for c in cmdlines)
    assert any(b"basic-auth" in c for c in cmdlines)


def test_default_start_listens_on_the_loopback_only(server):
    """(d) Without MLFLOW_HOST the server's sockets listen on 127.0.0.1 and nowhere else."""
    assert listening(server["pid"]) == {("127.0.0.1", server["port"])}


def test_search_with_credentials_tracks_every_trial(server, tmp_path, monkeypatch):
    """(b) The credentials in the environment reach every MLflow call of a search (the tracking process's
    too): one parent run, one child run per trial of results.csv with its status. The search's names are
    ones YAML would retype (issue 35): each run is tracked under the name as typed."""
    env = {**ENV, "MLFLOW_TRACKING_USERNAME": ADMIN, "MLFLOW_TRACKING_PASSWORD": PASSWORD}
    space = tmp_path / "typed.yaml"
    space.write_text(TYPED_SPACE)
    code, out, err = run_cli(["search", str(space), "--out", str(tmp_path), "--set", f"tracking.uri={server['uri']}",
                              *TYPED_SETS], 300, env=env, cli=CLI)
    assert code == 0, err[-3000:]
    assert "warning: MLflow" not in err, err[-3000:]
    with open(tmp_path / "2026-12-07" / "results.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(server["uri"])
    exp = client.get_experiment_by_name("2026")
    runs = client.search_runs([exp.experiment_id], max_results=100)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1 and parents[0].info.run_name == "2026-12-07" and parents[0].info.status == "FINISHED"
    children = {r.data.tags["trial_id"]: r for r in runs if "mlflow.parentRunId" in r.data.tags}
    assert sorted(children) == sorted(r["trial_id"] for r in rows)
    for row in rows:
        child = children[row["trial_id"]]
        assert child.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert child.data.tags["status"] == row["status"] and child.info.status == RUN_STATE[row["status"]]
        assert child.data.tags["arm"] == row["arm"]  # the arm's name as typed: '0.5', 'yes', 'delta=1', ...
        assert child.data.metrics, row["trial_id"]  # its results got through too
    assert sorted(r["arm"] for r in rows) == sorted(["0.5", "yes", "delta=1", TYPED_NAME100])
    params = {k: v for k, v in parents[0].data.params.items() if k.startswith("arms.")}
    assert set(params) == {"arms.0.5", "arms.yes", "arms.delta_1", f"arms.{TYPED_NAME100}"}
    assert params["arms.delta_1"] == "delta=1: fixed hard_batch.delta=1.0"  # a name MLflow's key spells otherwise
    written = [tmp_path / "2026-12-07" / name for name in ("mlflow_runs.json", "libraries.log")]
    assert all(PASSWORD not in path.read_text() for path in written)  # the password stays in the environment


def test_wrong_credentials_are_one_error_line_before_ray(server, tmp_path):
    """(c) A password the server refuses: one `error: tracking.uri` line naming the variables to set, exit 2,
    before Ray starts (no experiment directory), and the password is printed nowhere."""
    wrong = "wrong-password-0c1d"
    env = {**ENV, "MLFLOW_TRACKING_USERNAME": ADMIN, "MLFLOW_TRACKING_PASSWORD": wrong}
    code, out, err = run_cli(["search", "--out", str(tmp_path / "out"), "--set", "run.name=refused",
                              "--set", f"tracking.uri={server['uri']}", *SMALL], 120, env=env, cli=CLI)
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: tracking.uri: "), err
    assert "refused the credentials" in lines[0] and "MLFLOW_TRACKING_PASSWORD" in lines[0], lines[0]
    assert wrong not in err + out and out == ""
    assert not (tmp_path / "out" / "refused").exists(), "no experiment directory: nothing started"


def test_without_credentials_the_checks_say_what_to_set(server, monkeypatch):
    """No credentials at all: the pre-flight check and the experiment check (the driver's, beside Ray's
    start) are one line each, naming the variables."""
    from tune_hardbatch.errors import UserError
    from tune_hardbatch.search.prepare import check_reachable
    from tune_hardbatch.tracking import check_experiment

    for var in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    for var, value in QUIET.items():  # what check_experiment sets, undone after this test
        monkeypatch.setenv(var, value)
    monkeypatch.setenv("HOME", str(server["root"]))  # no ~/.mlflow/credentials of the machine's user
    with pytest.raises(UserError) as info:
        check_reachable(server["uri"])
    assert info.value.key == "tracking.uri" and "requires credentials" in str(info.value)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "wrong-password-0c1d")
    with pytest.raises(UserError) as info:
        check_experiment(server["uri"], "authed")
    assert info.value.key == "tracking.uri" and "refused the credentials of user 'admin'" in str(info.value)
    assert "\n" not in str(info.value) and "wrong-password" not in str(info.value)


def test_admin_password_rotation_then_restart_keeps_it(server, monkeypatch):
    """The rotation docs/CLUSTER.md gives (AuthServiceClient.update_user_password as the admin, here in this
    process): the new password gets in, the old one no more; a restart with the old one still in mlflow.env
    keeps the new one (MLflow uses it only to create the admin) and says so in one warning line."""
    from mlflow.server.auth.client import AuthServiceClient

    new = "second-admin-password-9e4d"
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    AuthServiceClient(server["uri"]).update_user_password(ADMIN, new, current_password=PASSWORD)
    api = server["uri"] + "/api/2.0/mlflow/experiments/search?max_results=1"
    assert get(api, ADMIN, new) == 200 and get(api, ADMIN, PASSWORD) == 401
    try:
        again = start(server["env"])  # mlflow.env still names the first password
        assert again.returncode == 0, again.stdout + again.stderr
        warning = again.stderr.strip().splitlines()
        assert len(warning) == 1 and warning[0].startswith("warning: MLFLOW_AUTH_ADMIN_PASSWORD: "), again.stderr
        assert get(api, ADMIN, new) == 200 and get(api, ADMIN, PASSWORD) == 401
    finally:  # the first password again, for whatever runs after this test (the REST call the client makes)
        body = json.dumps({"username": ADMIN, "password": PASSWORD, "current_password": new}).encode()
        token = base64.b64encode(f"{ADMIN}:{new}".encode()).decode()
        request = urllib.request.Request(server["uri"] + "/api/2.0/mlflow/users/update-password", data=body,
                                         method="PATCH", headers={"Authorization": f"Basic {token}",
                                                                  "Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=10).close()


# ---------------------------------------------------------------------------------------------------
# Wider than the loopback


def test_wide_host_without_auth_is_refused_unless_said_twice(tmp_path):
    """(e) MLFLOW_HOST=0.0.0.0 without authentication: one `error: MLFLOW_HOST` line, exit 2, no server, no
    state; with MLFLOW_ALLOW_UNAUTHENTICATED_WIDE=yes as well it starts, listening on every address."""
    port = free_port()
    env = script_env(tmp_path / "refused", port, MLFLOW_HOST="0.0.0.0")
    out = start(env)
    assert out.returncode == 2 and out.stdout == "", out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: MLFLOW_HOST: 0.0.0.0 "), out.stderr
    assert "MLFLOW_AUTH=basic" in lines[0] and "MLFLOW_ALLOW_UNAUTHENTICATED_WIDE=yes" in lines[0]
    assert not (tmp_path / "refused" / "state").exists() and get(f"http://127.0.0.1:{port}/health") != 200

    env = script_env(tmp_path / "allowed", port, MLFLOW_HOST="0.0.0.0", MLFLOW_ALLOW_UNAUTHENTICATED_WIDE="yes")
    try:
        out = start(env)
        assert out.returncode == 0, out.stdout + out.stderr
        assert out.stderr.startswith("warning: MLFLOW_HOST: 0.0.0.0 without authentication"), out.stderr
        pid = int((tmp_path / "allowed" / "state" / "mlflow-server.pid").read_text())
        assert listening(pid) == {("0.0.0.0", port)}
    finally:
        stop(env)


@pytest.mark.parametrize("settings, key", [
    ({"MLFLOW_AUTH": "basic"}, "MLFLOW_AUTH_ADMIN_PASSWORD"),  # no admin password
    ({"MLFLOW_AUTH": "basic", "MLFLOW_AUTH_ADMIN_PASSWORD": "REPLACE_ME"}, "MLFLOW_AUTH_ADMIN_PASSWORD"),
    ({"MLFLOW_AUTH": "basic", "MLFLOW_AUTH_ADMIN_PASSWORD": "short"}, "MLFLOW_AUTH_ADMIN_PASSWORD"),
    ({"MLFLOW_AUTH": "basic", "MLFLOW_AUTH_ADMIN_PASSWORD": PASSWORD, "MLFLOW_AUTH_DEFAULT_PERMISSION": "EDIT"},
     "MLFLOW_AUTH_DEFAULT_PERMISSION"),
    ({"MLFLOW_AUTH": "basic", "MLFLOW_AUTH_ADMIN_PASSWORD": PASSWORD,
      "MLFLOW_BACKEND_STORE_URI": "postgresql://mlflow:secret@db.invalid:5432/mlflow"}, "MLFLOW_AUTH_DATABASE_URI"),
    ({"MLFLOW_AUTH": "ldap"}, "MLFLOW_AUTH"),
])
def test_unusable_auth_settings_start_nothing(tmp_path, settings, key):
    """A setting that would start a server without the protection asked for: one line naming it, exit 2."""
    env = script_env(tmp_path, free_port(), **settings)
    out = start(env)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"error: {key}: "), out.stderr
    assert "secret" not in out.stderr and not (tmp_path / "state").exists()

