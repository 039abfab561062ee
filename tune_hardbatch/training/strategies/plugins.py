"""Strategies from outside the package, torch-free: `module:Name` references and the entry point group.

A reference names a `Declaration`, or a class whose `declaration` attribute is one (its `impl` may then be
left to the class itself). Installed packages declare theirs under the entry point group
`tune_hardbatch.strategies` (found in every process that has them installed: the driver and each Ray
worker); a module that is not installed is named in a config's `plugins` list, looked up on `sys.path`, then
in the working directory. Every failure is one `UserError` naming where the reference came from.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
from importlib import metadata
from pathlib import Path

from ...errors import UserError
from .declaration import Declaration

GROUP = "tune_hardbatch.strategies"


def resolve(ref: str, where: str):
    """The object a `module:Name` reference names (`module.sub:Name.attr` allowed)."""
    module, sep, name = ref.partition(":")
    if not sep or not module or not name:
        raise UserError(where, f"got {ref!r}; allowed: a reference module:Name (e.g. my_strategies:LossThreshold)")
    obj = _import(module, where)
    for part in name.split("."):
        if not hasattr(obj, part):
            raise UserError(where, f"module {module} has no {name!r} (in {_origin(obj)})")
        obj = getattr(obj, part)
    return obj


def _import(module: str, where: str):
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and not module.startswith(exc.name) or os.getcwd() in sys.path:
            raise UserError(where, f"cannot import {module}: {exc}") from None
    sys.path.append(os.getcwd())  # a module beside the user, not installed: workers get this path too
    try:
        return importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - any failure of the user's module is one line
        sys.path.remove(os.getcwd())
        raise UserError(where, f"cannot import {module}: {type(exc).__name__}: {exc}") from None


def _origin(obj) -> str:
    return getattr(obj, "__file__", None) or getattr(obj, "__name__", repr(obj))


def declaration_of(obj, where: str) -> Declaration:
    """The `Declaration` a plug-in names: the object itself, or a class's `declaration` (its implementation
    being that class when the declaration names none)."""
    decl = getattr(obj, "declaration", obj) if isinstance(obj, type) else obj
    if not isinstance(decl, Declaration):
        raise UserError(where, f"names a {type(obj).__name__}, not a strategy; allowed: a Declaration, or a "
                        "Strategy class with a `declaration` attribute")
    if isinstance(obj, type) and decl.impl in (None, ""):
        decl = dataclasses.replace(decl, impl=obj)
    return decl


def entry_points() -> list[tuple[str, str]]:
    """(name, value) of every installed entry point of the group, sorted by name (the same in every process)."""
    return sorted((ep.name, ep.value) for ep in metadata.entry_points(group=GROUP))


def import_paths(refs) -> list[str]:
    """The top-level package directories (or module files) of a config's `module:Name` references that
    are not installed packages: what a Ray worker must be given (their parents on PYTHONPATH on this
    machine, the paths themselves as Ray's `py_modules` on a cluster)."""
    paths = []
    for ref in refs:
        top = sys.modules.get(ref.partition(":")[0].split(".")[0])
        path = getattr(top, "__file__", None)
        if path is None or "site-packages" in path:
            continue
        path = str(Path(path).parent if Path(path).name == "__init__.py" else Path(path))
        if path not in paths:
            paths.append(path)
    return paths
