"""Shared pytest fixtures."""

import collections
import os
import tarfile
from pathlib import Path, PurePosixPath

import pytest
from servers import MlflowServer

# Local Ray clusters in tests: no token auth, no usage reporting (the machine has no internet).
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# One thread per torch process (this one, the CLI children, Ray's workers inherit it): the tests' models are tiny,
# and on shared cores a second OpenMP thread mostly waits for the first (a digits training took 5x longer).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

# --- e2e: a test that starts Ray or a server says so (`pytest -m "not e2e"`, the fast tier, leaves it out) ---

# the shared fixtures that start Ray, an MLflow server or the tracking process (tests/tracking/conftest.py)
_STARTS_PROCESSES = {"local_ray", "mlflow_server", "started"}


def pytest_collection_modifyitems(config, items):
    unmarked = [item.nodeid for item in items if _STARTS_PROCESSES & set(getattr(item, "fixturenames", ()))
                and item.get_closest_marker("e2e") is None]
    if unmarked:
        raise pytest.UsageError("these tests start Ray, an MLflow server or the tracking process ("
                                + ", ".join(sorted(_STARTS_PROCESSES)) + ") and need @pytest.mark.e2e: "
                                + ", ".join(unmarked))


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

@pytest.fixture
def mlflow_server(tmp_path):
    server = MlflowServer(tmp_path / "mlflow-server").start()
    yield server
    server.stop()


# --- searches: two searches on disk for the launch tests (resume, lock, prepare) ---------------------

@pytest.fixture
def searches(tmp_path):
    """OUT/old (an ended search) and OUT/busy (one whose driver is alive: a sleeping process): the launch tests'."""
    import json
    import socket
    import subprocess
    import sys

    import yaml

    from tune_hardbatch.search import space as SP
    from tune_hardbatch.search.prepare import lock

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
