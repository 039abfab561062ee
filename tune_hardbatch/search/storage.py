"""Where a search writes: a storage directory made absolute and checked writable, before anything starts.

Relative paths (`--out`, `run.storage`) are taken from the current directory and made absolute, since
trials run in their own directories. Remote storage URIs are not supported (use a shared filesystem).
Used by `search.prepare` (a new or resumed search) and by the CLI (`train --out`).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import UserError


def abs_storage(path: str, key: str = "run.storage") -> str:
    if "://" in path:
        raise UserError(key, f"got {path!r}: remote storage URIs are not supported; allowed: a directory "
                        "path (on a multi-node cluster, one that every node mounts, e.g. NFS)")
    return os.path.abspath(os.path.expanduser(path))


MIN_FREE_BYTES = 16 * 1024**2  # a search writes checkpoints, results and (by default) an MLflow sqlite file


def check_writable(storage: str, key: str) -> None:
    """A full disk or a path that cannot be written is one error line before anything starts, not a crash
    of every trial: the storage directory (or, until it exists, its nearest existing parent, so nothing
    is created here) must be a directory where a small file can be written and synced, with at least
    `MIN_FREE_BYTES` free."""
    probe = Path(storage)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise UserError(key, f"cannot create {storage}: {probe} is a file, not a directory; allowed: a "
                        "directory path that can be written")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tune-hardbatch-write-test-", dir=probe)
        try:
            os.write(fd, b"\0" * 4096)
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(tmp)
        st = os.statvfs(probe)
    except OSError as exc:
        raise UserError(key, f"cannot write to {probe} ({exc.strerror or exc}); allowed: a writable directory "
                        "with free space") from None
    free = st.f_bavail * st.f_frsize
    if free < MIN_FREE_BYTES:
        raise UserError(key, f"only {free / 1024**2:.1f} MiB free on the file system of {probe}; a search needs "
                        f"at least {MIN_FREE_BYTES // 1024**2} MiB (checkpoints, results, MLflow): free some "
                        "space or choose another directory")
