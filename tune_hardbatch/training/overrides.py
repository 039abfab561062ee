"""`--set KEY=VALUE` items: a key's parts (double quotes hold '.' and '='), its value read as YAML, each key
once. The training config (`config.build_config`) and a search space (`search.space.sets`) both read them here.
"""

from __future__ import annotations

from typing import Any

from ..errors import UserError
from ..files import parse_yaml


def parse_sets(items: list[str]) -> dict[str, Any]:
    """`["optim.lr=0.1", "trim.schedule=linear"]` -> dict; values are read as YAML scalars/lists. A key given
    twice is an error naming both."""
    out: dict[str, Any] = {}
    given: dict[str, str] = {}
    for parts, item, value in set_items(items):
        key = ".".join(parts)
        if key in out:
            raise UserError(key, f"given twice in --set ({given[key]!r} and {item!r}); allowed: once")
        out[key], given[key] = value, item
    return out


def set_items(items: list[str]) -> list[tuple[tuple[str, ...], str, Any]]:
    """Each `--set KEY=VALUE` as (the key's parts, the item, its value read as YAML). The key ends at the first
    '=' outside double quotes; a part in double quotes may hold '.' and '=' (an arm `"delta=1"`)."""
    out = []
    for item in items:
        key, raw = _split_item(item)
        out.append((split_key(key), item, parse_yaml(raw, key) if raw.strip() else None))
    return out


def _split_item(item: str) -> tuple[str, str]:
    quoted = False
    for i, char in enumerate(item):
        if char == '"':
            quoted = not quoted
        elif char == "=" and not quoted:
            if not item[:i].strip():
                break
            return item[:i].strip(), item[i + 1:]
    raise UserError("--set", f"expected KEY=VALUE, got {item!r} (quote a key part holding '=' or '.' in double "
                    "quotes: arms.\"delta=1\"=null)")


def split_key(key: str) -> tuple[str, ...]:
    """'arms."v1.2".fixed' -> ('arms', 'v1.2', 'fixed'); an empty part ('a..b', '.b', 'b.') is an error."""
    parts, current, quoted, was_quoted = [], "", False, False
    for char in key + ".":
        if char == '"':
            quoted, was_quoted = not quoted, True
        elif char == "." and not quoted:
            if not current and not was_quoted:
                raise UserError(key, "has an empty part (two dots, or a dot at an end); allowed: dotted names "
                                "like search.num_samples, a part holding '.' or '=' in double quotes")
            parts.append(current)
            current, was_quoted = "", False
        else:
            current += char
    if quoted:
        raise UserError(key, "has an unclosed double quote; allowed: a part in double quotes, \"like.this\"")
    return tuple(parts)
