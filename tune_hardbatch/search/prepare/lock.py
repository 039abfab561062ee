"""Which process drives a search: `<experiment dir>/driver.json` while a driver runs it.

A second driver on the same experiment (`--resume` while it still runs) and `report --sync` during a run
(it would mark live child runs as finished) are refused. The file names the host, the pid and the
process's start time, so a driver killed by SIGKILL (the file stays) or a reused pid does not count.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Optional

from ...errors import UserError

LOCK_FILE = "driver.json"


def _start_time(pid: int) -> Optional[str]:
    """The process's start time in clock ticks since boot (Linux), or None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]  # field 22 of stat(5), counted after the command name


def acquire(exp_dir: Path) -> None:
    """Record this process as the search's driver (refuses if another live driver holds it)."""
    check_free(exp_dir, "--resume")
    me = {"host": socket.gethostname(), "pid": os.getpid(), "start": _start_time(os.getpid())}
    tmp = Path(exp_dir) / (LOCK_FILE + ".tmp")
    tmp.write_text(json.dumps(me))
    os.replace(tmp, Path(exp_dir) / LOCK_FILE)


def release(exp_dir: Path) -> None:
    path = Path(exp_dir) / LOCK_FILE
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(rec, dict) and rec.get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):  # gone or damaged: not this driver's record
        pass


def holder(exp_dir: Path) -> Optional[dict]:
    """The live driver of the search (host, pid), or None: none recorded, or it is gone. A damaged file
    (not UTF-8, cut short, not the record `acquire` writes) records no driver: `acquire` writes it whole (a
    rename), so only a driver that is gone can have left it so, and the next driver replaces it."""
    try:
        rec = json.loads((Path(exp_dir) / LOCK_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # ValueError: not UTF-8, not JSON
        return None
    if not isinstance(rec, dict) or not isinstance(rec.get("pid"), int):
        return None
    if rec.get("host") != socket.gethostname():
        return rec  # another machine's driver: cannot be checked from here, so it counts as live
    if rec["pid"] == os.getpid() or _start_time(rec["pid"]) != rec.get("start"):
        return None  # this very process (a finished run_search), or the recorded process is gone
    return rec


def check_free(exp_dir: Path, key: str) -> None:
    """UserError if a live driver runs the search in `exp_dir`."""
    rec = holder(exp_dir)
    if rec is not None:
        raise UserError(key, f"search {Path(exp_dir).name} is still running (driver pid {rec['pid']} on "
                        f"{rec['host']}); wait for it to end or stop it first (if that driver is gone, "
                        f"delete {Path(exp_dir) / LOCK_FILE})")
