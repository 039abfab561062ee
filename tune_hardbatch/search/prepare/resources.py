"""Resources: what a trial asks for against what this machine (or a Ray cluster) has. No Ray, no torch."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from ...errors import UserError
from ..space import SearchSpace


def local_resources() -> tuple[float, float]:
    """(CPUs, GPUs) of this machine, without importing torch (validation stays fast)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    return float(cpus), float(local_gpus())


def local_gpus(proc_dir: str = "/proc/driver/nvidia/gpus") -> int:
    """NVIDIA GPUs this process may use: the driver's device list, narrowed by CUDA_VISIBLE_DEVICES.

    What Ray counts for `ray.init()` on this machine too; 0 without an NVIDIA driver.
    """
    found = len(list(Path(proc_dir).iterdir())) if Path(proc_dir).is_dir() else 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return found
    ids = [v.strip() for v in visible.split(",") if v.strip()]
    if ids and ids[0].startswith("-"):  # "-1": none visible
        return 0
    return min(found, len(ids))


def check_resources(space: SearchSpace, cpus: float, gpus: float, where: str = "this machine",
                    nodes: Optional[list[tuple[float, float]]] = None) -> int:
    """Reject what cannot run; return the number of concurrent trials (search.max_concurrent or what fits).

    `cpus`/`gpus`: what the largest node has (a trial runs on one node); `nodes`: (CPUs, GPUs) of every
    node of a cluster. What fits is the sum over nodes of what fits on each: `gpu: 0.3` on 16 one-GPU
    nodes is 3 per node, 48, not the 53 that the cluster's totals would suggest.
    """
    cpu, gpu = space.resources.cpu, space.resources.gpu
    if cpu > cpus:
        raise UserError("resources.cpu", f"{cpu:g} CPUs per trial but {where} has {cpus:g}; "
                        f"allowed: 0 < cpu <= {cpus:g}")
    if gpu > 0 and gpus == 0:
        raise UserError("resources.gpu", f"{gpu:g} GPU per trial but {where} has 0 GPUs; allowed: 0")
    if gpu > gpus:
        raise UserError("resources.gpu", f"{gpu:g} GPUs per trial but {where} has {gpus:g}; "
                        f"allowed: 0 <= gpu <= {gpus:g}")
    if space.base_cfg.device == "cuda" and gpu == 0:
        raise UserError("resources.gpu", "base.device is cuda but resources.gpu is 0: a trial sees no GPU; "
                        "allowed: a GPU share > 0, or base.device auto/cpu")
    fits = max(1, sum(trials_per_node(cpu, gpu, c, g) for c, g in (nodes or [(cpus, gpus)])))
    return space.search.max_concurrent or fits


def trials_per_node(cpu: float, gpu: float, node_cpus: float, node_gpus: float) -> int:
    """How many trials of (cpu, gpu) one node holds."""
    fits = int(node_cpus / cpu + 1e-9)
    if gpu > 0:
        fits = min(fits, int(node_gpus / gpu + 1e-9))
    return fits


def preflight(space: SearchSpace, local: bool = True) -> float:
    """Data, batches and model of every corner of the space (`inputs.check_inputs`), before Ray starts;
    returns the seconds it took. `local` False (a cluster): data this machine cannot see is skipped.

    Builds each distinct model once on the CPU (this imports torch and timm, so it runs after the fast
    checks). An error names the key, with the corner's space values when there are any.
    """
    import time

    from ...training.inputs import InputChecker
    from ..space.corners import corner_error

    start = time.perf_counter()
    checker = InputChecker(local)
    try:
        checker.check(space.base_cfg)
    except UserError as exc:
        raise UserError(f"base.{exc.key}", _message(exc)) from None
    for values, cfg in space.corners:
        try:
            checker.check(cfg)
        except UserError as exc:
            if exc.key in values:
                raise corner_error(exc, values, space.dims) from None
            where = f" (with {', '.join(f'{k}={v!r}' for k, v in values.items())})" if values else ""
            raise UserError(f"base.{exc.key}", f"{_message(exc)}{where}") from None
    return time.perf_counter() - start


def _message(exc: UserError) -> str:
    text = str(exc)
    return text[len(exc.key) + 2:] if exc.key and text.startswith(f"{exc.key}: ") else text
