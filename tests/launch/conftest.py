"""Fixtures shared by the `launch` tests: searches on disk, one ended and one whose driver is alive.

pytest imports every conftest.py outside a package as the module `conftest`, the one loaded last in its
place in sys.modules; `from conftest import kill_group` (search_helpers, several test modules) means
tests/conftest.py, so a name this file lacks is looked up there (a copy of that module: no fixture of it is
registered twice).
"""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tune_hardbatch import space as SP
from tune_hardbatch.launch import lock

_top = None


def __getattr__(name):
    global _top
    if name.startswith(("_", "pytest", "collect_ignore")):  # pytest's own probes: this file's answer only
        raise AttributeError(name)
    if _top is None:
        spec = importlib.util.spec_from_file_location("_tests_conftest", Path(__file__).resolve().parent.parent /
                                                      "conftest.py")
        _top = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(_top)
    return getattr(_top, name)


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
