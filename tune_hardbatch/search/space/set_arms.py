"""`--set` on the named entries of a space: a dimension (`space.KEY`), an arm (`arms.NAME`) or a part of one
(`arms.NAME.fixed.KEY`, `arms.NAME.space.KEY`). Only what exists is dropped or changed: a typo is an error
listing the names the space has, never a silent no-op. An arm whose name holds '.' is found whole
(`arms.v1.2=null`) or quoted (`arms."v1.2"=null`); one holding '=' must be quoted (`arms."delta=1"=null`).
"""

from __future__ import annotations

from typing import Any

from ...errors import UserError
from ...training.config import flatten

QUOTE_HINT = "quote a name holding '.' or '=' in double quotes: --set 'arms.\"delta=1\"=null'"
ARM_PARTS = ("fixed", "space")


def set_entry(entries: dict, name: str, value: Any, where: str, what: str) -> None:
    """Set, add (a value) or drop (null) one named entry; dropping one that is not there is an error."""
    if value is not None:
        entries[name] = value
    elif name in entries:
        del entries[name]
    else:
        have = ", ".join(str(n) for n in entries) or "none"
        raise UserError(f"{where}.{name}", f"no {what} named {name!r} to drop; {where} has: {have}")


def set_arm(arms: dict, parts: tuple, value: Any, item: str) -> None:
    """`arms.NAME=...` (a whole arm: add, replace, or drop with null) or `arms.NAME.fixed|space.KEY=...`."""
    name, inner = _find(arms, parts)
    if name is None:
        cut = next((i for i, p in enumerate(parts) if i and p in ARM_PARTS), len(parts))
        name = ".".join(parts[:cut])
        held = any(str(n).startswith(f"{name}=") for n in arms)  # `arms.delta=1=null`: cut at the first '='
        if value is None or held or cut < len(parts):
            raise UserError(f"arms.{name}", _missing(arms, name, item))
        if not isinstance(value, dict):  # `arms.delta=1=null` meant an arm 'delta=1' the space lacks
            raise UserError(f"arms.{name}", f"{_missing(arms, name, item)}; a new arm is a mapping "
                            f"{{fixed: {{...}}, space: {{...}}}}, got {value!r}")
        arms[name] = value
        return
    if not inner:
        set_entry(arms, name, value, "arms", "arm")
        return
    body = arms[name] if isinstance(arms[name], dict) else {}
    arms[name] = body
    part, key = inner[0], ".".join(inner[1:])
    if not key:
        body[part] = value
        return
    entries = body.get(part) or {}
    if not isinstance(entries, dict):
        raise UserError(f"arms.{name}.{part}", f"must be a mapping, got {type(entries).__name__}")
    entries = flatten(entries, where=f"arms.{name}.{part}.") if part == "fixed" else dict(entries)
    set_entry(entries, key, value, f"arms.{name}.{part}", "fixed key" if part == "fixed" else "dimension")
    body[part] = entries


def _find(arms: dict, parts: tuple) -> tuple:
    """(the arm that `parts` starts with, the parts after its name): the longest name that matches whole parts
    and leaves nothing or `fixed|space ...`; (None, ()) when none does."""
    for cut in range(len(parts), 0, -1):
        name, inner = ".".join(parts[:cut]), parts[cut:]
        if name in arms and (not inner or inner[0] in ARM_PARTS):
            return name, inner
    return None, ()


def _missing(arms: dict, name: str, item: str) -> str:
    have = ", ".join(repr(str(n)) for n in arms) or "none"
    close = [str(n) for n in arms if str(n).startswith(f"{name}=") or str(n).startswith(f"{name}.")]
    hint = f"did you mean {close[0]!r}? {QUOTE_HINT}; " if close else ""
    return f"no arm named {name!r} ({item!r}); {hint}the space's arms: {have}"
