"""Everything `search` checks before Ray starts, in order of cost: one `UserError` line for any mistake.

`prepare_search` resolves the space, storage and name (or the search to resume), checks the resources
against this machine, the `--address` of a cluster (something must answer there), the tracking server,
that no other driver runs the search, and then the data and models of every corner of the space
(`resources.preflight`: this one imports torch and timm, so it comes last, and runs in a child process,
`preflight.start`, while the driver imports Ray: the caller waits for `Prepared.checked()` before Ray
starts).
"""

from __future__ import annotations

import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ...errors import UserError
from ..space import SearchSpace
from ..space.uris import tracking_uri
from .preflight import Preflight, start
from .reachable import check_reachable
from .resources import check_resources, local_resources
from .resume import resolve_run

ADDRESS_TIMEOUT_S = 5.0  # a cluster head answers in milliseconds; a wrong address should not cost more


@dataclass
class Prepared:
    search_space: SearchSpace
    storage: str
    name: str
    resuming: bool
    address: Optional[str]
    local: Optional[tuple[float, float]]  # (CPUs, GPUs) of this machine for a local Ray, else None
    tracking: tuple  # (MLflow URI, artifact location), (None, None) when off
    preflight: Optional[Preflight] = None  # the running check of data and models
    preflight_s: Optional[float] = None  # once `checked`

    def checked(self) -> float:
        """Wait for the pre-flight check (raises its `UserError`); the seconds it took."""
        if self.preflight_s is None:
            self.preflight_s = self.preflight.result() if self.preflight is not None else 0.0
        return self.preflight_s

    @property
    def exp_dir(self) -> Path:
        return Path(self.storage) / self.name


def prepare_search(space=None, sets=None, resume: Optional[str] = None, out: Optional[str] = None,
                   address: Optional[str] = None, stream=None) -> Prepared:
    search_space, storage, name, resuming = resolve_run(space, sets, resume, out)
    local = None
    if address is None:
        local = local_resources()
        check_resources(search_space, *local)
    else:
        check_address(address)
    tracking = tracking_uri(search_space.tracking, storage)
    check_reachable(tracking[0])  # a tracking server that is down: exit 2 before any trial runs
    first_line(search_space, Path(storage) / name, resuming, stream or sys.stdout)  # before torch, Ray, MLflow load
    return Prepared(search_space, storage, name, resuming, address, local, tracking,
                    start(search_space, local=address is None))


def first_line(space: SearchSpace, exp_dir: Path, resuming: bool, stream) -> None:
    """What is searched and where its results go, as soon as the space is read: before torch, Ray and
    MLflow are imported (seconds), so the user sees at once that the command took."""
    what = Path(space.source).name if space.source != "<dict>" else "a space"
    print(f"{'resuming' if resuming else 'starting'} {exp_dir.name}: {what}, {space.num_trials} trials; results "
          f"under {exp_dir}", file=stream, flush=True)


def check_address(address: str) -> None:
    """`--address`: auto, HOST:PORT or ray://HOST:PORT, where something answers within a few seconds."""
    if address == "auto":
        return  # Ray finds a cluster started on this machine, or says at once that there is none
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit():
        raise UserError("--address", f"got {address!r}; allowed: auto, HOST:PORT (the head's GCS port, "
                        "e.g. 10.0.0.5:6379) or ray://HOST:10001")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=ADDRESS_TIMEOUT_S):
            pass
    except OSError as exc:
        raise UserError("--address", f"no Ray cluster answers at {host}:{port} "
                        f"({exc.strerror or type(exc).__name__}, within {ADDRESS_TIMEOUT_S:g} s); start one "
                        "(ray start --head prints its address) or check the address") from None
