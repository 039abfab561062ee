"""`--set` overrides of a space file, applied to its raw mapping before validation.

`search.num_samples=4`, `resources.cpu=1`, `run.name=x`, `tracking.uri=...`, `base.epochs=3`,
`base.data.root=/data/cifar10`, `space.optim.lr={loguniform: [0.01, 0.1]}` (a new distribution),
`space.trim.p_end=null` (drops that dimension), `arms.trim=null` (drops that arm), `arms.random={fixed:
{hard_batch.delta: 0.5}}` (adds or replaces one). A key whose first part is not one of the sections is a
training-config key and means `base.<key>` (`--set epochs=3` == `--set base.epochs=3`). A `base` override
of a key that is also a space dimension fixes it: the dimension is dropped (a note says so).
"""

from __future__ import annotations

import copy
from typing import Optional, Union

from ...errors import UserError
from ...training.config import all_keys, closest, flatten, key_summary
from ...training.overrides import set_items, split_key
from .schema import SECTIONS
from .sections import SECTION_DEFAULTS
from .set_arms import set_arm, set_entry


def apply_space_sets(raw: dict, sets: Union[list[str], dict], notes: Optional[list[str]] = None) -> dict:
    """Apply `--set` overrides to a raw space mapping (see the module docstring for the rules)."""
    raw = copy.deepcopy(raw)
    items = set_items(sets) if isinstance(sets, list) else [(split_key(k), f"{k}={v}", v) for k, v in sets.items()]
    seen: dict[tuple, str] = {}
    for parts, item, value in items:
        section, rest = (parts[0], parts[1:]) if parts[0] in SECTIONS else ("base", parts)
        _once(seen, (section, *rest), item)
        if parts[0] not in SECTIONS:
            _check_base_key(".".join(parts))
        if not rest:
            raise UserError(parts[0], f"--set needs a key inside the section, e.g. {section}.<key>=value")
        target = raw.get(section)
        if target is None:
            target = raw[section] = {}
        if not isinstance(target, dict):
            raise UserError(section, f"must be a mapping, got {type(target).__name__}")
        if section == "base":
            _set_base(raw, ".".join(rest), value, notes)
        elif section == "space":
            set_entry(target, ".".join(rest), value, "space", "dimension")
        elif section == "arms":
            set_arm(target, rest, value, item)
        else:
            if len(rest) != 1 or rest[0] not in SECTION_DEFAULTS[section]:
                raise UserError(".".join(parts), unknown_space_key(section, ".".join(rest)))
            target[rest[0]] = value
    return raw


def _once(seen: dict, key: tuple, item: str) -> None:
    """One key, one value: the same key twice in --set, in any spelling (`epochs=` and `base.epochs=`)."""
    if key in seen:
        raise UserError(".".join(key), f"given twice in --set ({seen[key]!r} and {item!r}); allowed: once")
    seen[key] = item


def _set_base(raw: dict, key: str, value, notes: Optional[list[str]]) -> None:
    """A base key; one that the space searches is fixed: its dimension is dropped (a note says so)."""
    flat = flatten(raw["base"], where="base.")
    flat[key] = value
    raw["base"] = flat
    dims = raw.get("space")
    if isinstance(dims, dict) and key in dims:
        del dims[key]
        if notes is not None:
            notes.append(f"--set base.{key} fixes {key}: dimension removed from the space")


def space_keys() -> list[str]:
    """Every dotted key a space file takes outside `space`: section keys and training-config keys."""
    return [f"{s}.{k}" for s, keys in SECTION_DEFAULTS.items() for k in keys] + all_keys()


def unknown_space_key(section: str, name: str) -> str:
    """'unknown key; did you mean search.num_samples? allowed: ...' for a key of a space section."""
    hint = closest(f"{section}.{name}", [f"{section}.{k}" for k in SECTION_DEFAULTS[section]])
    return (f"unknown key; {f'did you mean {hint}? ' if hint else ''}allowed in {section}: "
            f"{', '.join(SECTION_DEFAULTS[section])}")


def _check_base_key(key: str) -> None:
    """A key outside the sections means `base.<key>`: it must then be a training-config key."""
    if key in all_keys():
        return
    hint = closest(key, space_keys())
    raise UserError(key, f"unknown key; {f'did you mean {hint}? ' if hint else ''}allowed: a section key "
                    f"({', '.join(f'{s}.*' for s in SECTIONS)}) or a training-config key ({', '.join(key_summary())})")
