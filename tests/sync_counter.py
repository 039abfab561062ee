"""Count the operations that make the host wait for the device (device -> host reads), on any device.

`SyncCounter` is a context manager: a TorchFunctionMode sees the Python-level reads (`.item()`,
`.tolist()`, `bool(t)`, `.cpu()`, ...) and a TorchDispatchMode sees the ATen ops that read a value or
whose output size depends on the data (`_local_scalar_dense`, `nonzero`, boolean-mask indexing, ...).
On the CPU nothing waits, but the same calls are made, so counting them on the CPU tells how often a GPU
run would synchronise. Each sync is counted once (an `.item()` is not counted again as the
`_local_scalar_dense` it dispatches to).

    with SyncCounter() as syncs:
        ...
    syncs.total, syncs.by_op, syncs.where   # count, Counter by name, Counter by "file:line" of the caller

A test helper (tests/training/test_syncs.py, tests/strategies/) also used by bench/bench_syncs.py.
"""

from __future__ import annotations

import collections
import os
import traceback

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

# Tensor methods (and dunders) that read a value on the host or copy to the host.
_FUNCTION_SYNCS = {"item", "tolist", "numpy", "cpu", "__bool__", "__int__", "__float__", "__index__",
                   "__complex__", "__array__", "__contains__", "__repr__", "__format__"}
# ATen ops (overload packets) that always read from the device: scalars, data-dependent output sizes.
_ATEN_SYNCS = {"_local_scalar_dense", "is_nonzero", "nonzero", "argwhere", "equal", "allclose",
               "masked_select", "_unique", "_unique2", "unique_dim", "unique_consecutive",
               "unique_dim_consecutive", "bincount", "histc"}
_TORCH = os.path.dirname(os.path.abspath(torch.__file__))
_HERE = os.path.abspath(__file__)


def _is_to_host(func, args, kwargs) -> bool:
    """`t.to("cpu")` / `t.to(torch.device("cpu"))` / `t.to(other_cpu_tensor)`: a copy to the host."""
    if getattr(func, "__name__", "") != "to":
        return False
    for a in list(args[1:]) + list(kwargs.values()):
        if isinstance(a, torch.Tensor):
            return a.device.type == "cpu"
        if isinstance(a, (str, torch.device)) and torch.device(a).type == "cpu":
            return True
    return False


def _aten_sync(func, args, kwargs) -> bool:
    name = func.overloadpacket.__name__
    if name in _ATEN_SYNCS:
        return True
    if name in ("index", "index_put", "index_put_", "_index_put_impl_"):  # a mask index runs nonzero
        indices = args[1] if len(args) > 1 else kwargs.get("indices", ())
        return any(t is not None and t.dtype in (torch.bool, torch.uint8) for t in indices)
    if name == "repeat_interleave":  # tensor repeats: the output size is their sum
        return func._overloadname != "self_int" and kwargs.get("output_size") is None
    if name in ("masked_fill", "masked_fill_"):  # CUDA reads a tensor fill value with .item()
        return func._overloadname == "Tensor"
    return False


class SyncCounter:
    """Counts host syncs while active (see the module docstring); `total`, `by_op`, `where`."""

    def __init__(self):
        self.by_op: collections.Counter = collections.Counter()
        self.where: collections.Counter = collections.Counter()
        self._inside = 0  # > 0 while a counted Python-level read runs: its ATen ops are the same sync
        self._modes = (_FunctionSyncs(self), _DispatchSyncs(self))

    @property
    def total(self) -> int:
        return sum(self.by_op.values())

    def _count(self, name: str) -> None:
        self.by_op[name] += 1
        self.where[_caller()] += 1

    def __enter__(self) -> "SyncCounter":
        for mode in self._modes:
            mode.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        for mode in reversed(self._modes):
            mode.__exit__(*exc)


class _FunctionSyncs(TorchFunctionMode):
    def __init__(self, counter: SyncCounter):
        super().__init__()
        self.counter = counter

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if self.counter._inside or not (name in _FUNCTION_SYNCS or _is_to_host(func, args, kwargs)):
            return func(*args, **kwargs)
        self.counter._count(name)
        self.counter._inside += 1
        try:
            return func(*args, **kwargs)
        finally:
            self.counter._inside -= 1


class _DispatchSyncs(TorchDispatchMode):
    def __init__(self, counter: SyncCounter):
        super().__init__()
        self.counter = counter

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if not self.counter._inside and _aten_sync(func, args, kwargs):
            self.counter._count(f"aten.{func.overloadpacket.__name__}")
        return func(*args, **kwargs)


def _caller() -> str:
    """The innermost frame outside torch and this module, as 'file.py:line' (where to look for the sync)."""
    for frame in reversed(traceback.extract_stack()):
        path = os.path.abspath(frame.filename)
        if not path.startswith(_TORCH) and path != _HERE:
            return f"{os.path.basename(path)}:{frame.lineno}"
    return "?"
