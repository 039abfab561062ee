"""Which process drives a search (`search.prepare.lock`, `driver.json`): a live driver refuses `report --sync`,
a dead one (killed by SIGKILL: the file stays) counts as gone."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

from tune_hardbatch.cli import main
from tune_hardbatch.search.prepare import lock


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
