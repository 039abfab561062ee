"""Shared pytest fixtures."""

import collections
import os
import tarfile
from pathlib import Path, PurePosixPath
from typing import Optional

import pytest

# Local Ray clusters in tests: no token auth, no usage reporting (the machine has no internet).
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

# --- cifar_subset: a small real CIFAR-10 JPEG ImageFolder (shared by data/train tests) -------------

_CIFAR_PER_CLASS = {"train": 100, "test": 20}


@pytest.fixture(scope="session")
def cifar_subset(tmp_path_factory) -> Path:
    """Path to `<tmp>/train/<class>/*.jpg` (100 per class) and `<tmp>/test/<class>/*.jpg` (20 per class).

    Taken from the CIFAR-10 JPEG archive in `$TUNE_HARDBATCH_CIFAR_TAR` or `<repo>/../shared/data/`;
    the test is skipped when neither exists. The archive is read once, extracting only the subset.
    """
    env = os.environ.get("TUNE_HARDBATCH_CIFAR_TAR")
    repo = Path(__file__).resolve().parent.parent
    archive = Path(env) if env else repo.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
    if not archive.is_file():
        pytest.skip(f"CIFAR-10 JPEG archive not found at {archive}")
    out = tmp_path_factory.mktemp("cifar_subset")
    counts = collections.Counter()
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            parts = PurePosixPath(member.name).parts
            if not member.isfile() or len(parts) != 4 or parts[1] not in _CIFAR_PER_CLASS:
                continue
            _, split, cls, name = parts
            if counts[split, cls] >= _CIFAR_PER_CLASS[split]:
                continue
            counts[split, cls] += 1
            dest = out / split / cls / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(tar.extractfile(member).read())
            if len(counts) == 20 and all(counts[s, c] == _CIFAR_PER_CLASS[s] for s, c in counts):
                break
    return out


# --- local_ray: one local Ray (2 CPUs) shared by the modules of a test directory that ask for it ----------
#
# Started by the first test that asks for it; kept for the next modules of the same directory (tests that
# call `run_search` in-process: it uses a Ray this process already runs and leaves it running, see
# `ray_backend.driver.connect`), and shut down after the directory's last test that uses it, so that no
# other test (a cluster test, one that checks Ray is not imported or initialised) ever sees it. Tests of
# Ray's own start and of a driver's SIGKILL run `tune-hardbatch` in a subprocess with a Ray of its own.

_LOCAL_RAY = {"up": False}  # whether the fixture's Ray runs


def _keeps_ray(item, nextitem) -> bool:
    """Whether the shared Ray stays up after `item`: the next test is in the same directory, and it or a
    later test of that directory uses local_ray."""
    if nextitem is None or nextitem.path.parent != item.path.parent:
        return False
    items = item.session.items
    later = items[items.index(nextitem):]
    return any("local_ray" in getattr(i, "fixturenames", ()) for i in later if i.path.parent == item.path.parent)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    yield
    if _LOCAL_RAY["up"] and not _keeps_ray(item, nextitem):
        import ray

        ray.shutdown()
        _LOCAL_RAY["up"] = False


@pytest.fixture(scope="module")
def local_ray():
    import ray

    from tune_hardbatch.ray_backend.driver import init_ray, ray_env

    if not _LOCAL_RAY["up"]:
        assert not ray.is_initialized(), "a Ray this fixture did not start is running in the test process"
        ray_env(local=True)
        init_ray(None, 2, 0)
        _LOCAL_RAY["up"] = True
    yield  # shut down by pytest_runtest_teardown after the directory's last test that uses it


# --- mlflow_server: a real `mlflow server` on 127.0.0.1 (sqlite + artifact folder), stopped by PID ---

def kill_group(proc) -> None:
    """SIGKILL a subprocess started with start_new_session=True, with everything it started."""
    import signal
    import subprocess

    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MlflowServer:
    """`mlflow server` in its own process group; `stop()` kills the group by PID."""

    def __init__(self, root: Path, port: Optional[int] = None):
        self.root, self.port = root, port or free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc = None

    def start(self, timeout: float = 90.0) -> "MlflowServer":
        import subprocess
        import sys
        import time
        import urllib.request

        self.root.mkdir(parents=True, exist_ok=True)
        mlflow = Path(sys.executable).with_name("mlflow")
        cmd = [str(mlflow), "server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
               "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
               "--artifacts-destination", str(self.root / "artifacts")]
        self.log = open(self.root / "server.log", "a")
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # no GenAI job runner: 8 fewer processes
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {(self.root / 'server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.uri + "/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError("mlflow server did not come up in time")

    def stop(self) -> None:
        import signal

        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except Exception:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture
def mlflow_server(tmp_path):
    server = MlflowServer(tmp_path / "mlflow-server").start()
    yield server
    server.stop()


# --- processes a test marked through their environment (VAR=marker), found and stopped by PID ---------

def marked_pids(var: str, marker: str) -> list[int]:
    """Processes whose environment carries var=marker: everything a cluster test started (and only that)."""
    import os

    needle = f"{var}={marker}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                if needle in fh.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:
            continue
    return found


def kill_marked(var: str, marker: str, grace_s: float) -> None:
    """SIGTERM, then SIGKILL after grace_s, to every process marked var=marker."""
    import signal
    import time

    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        pids = marked_pids(var, marker)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and marked_pids(var, marker):
            time.sleep(0.2)


# --- searches: two searches on disk for the launch tests (resume, lock, prepare) ---------------------

@pytest.fixture
def searches(tmp_path):
    """OUT/old (an ended search) and OUT/busy (one whose driver is alive: a sleeping process): the launch tests'."""
    import json
    import socket
    import subprocess
    import sys

    import yaml

    from tune_hardbatch import space as SP
    from tune_hardbatch.launch import lock

    out = tmp_path / "out"
    for name in ("old", "busy"):
        (out / name).mkdir(parents=True)
        raw = SP.load_space(None, [f"run.name={name}", "search.num_samples=4"]).raw
        raw["run"]["storage"] = str(out)
        (out / name / "search_space.yaml").write_text(yaml.safe_dump(raw))
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    (out / "busy" / lock.LOCK_FILE).write_text(json.dumps(
        {"host": socket.gethostname(), "pid": sleeper.pid, "start": lock._start_time(sleeper.pid)}))
    yield out
    sleeper.kill()
    sleeper.wait()
