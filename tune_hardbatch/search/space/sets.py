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
from ...training.config import all_keys, closest, flatten, key_summary, parse_sets
from .schema import SECTIONS
from .sections import SECTION_DEFAULTS


def apply_space_sets(raw: dict, sets: Union[list[str], dict], notes: Optional[list[str]] = None) -> dict:
    """Apply `--set` overrides to a raw space mapping (see the module docstring for the rules)."""
    raw = copy.deepcopy(raw)
    items = parse_sets(sets) if isinstance(sets, list) else dict(sets)
    for key, value in items.items():
        section, _, rest = key.partition(".")
        if section not in SECTIONS:
            _check_base_key(key)
            section, rest = "base", key
        if section in ("base", "space", "search", "resources", "tracking", "run") and not rest:
            raise UserError(key, f"--set needs a key inside the section, e.g. {section}.<key>=value")
        target = raw.get(section)
        if target is None:
            target = raw[section] = {}
        if not isinstance(target, dict):
            raise UserError(section, f"must be a mapping, got {type(target).__name__}")
        if section == "base":
            flat = flatten(target)
            flat[rest] = value
            raw["base"] = flat
            dims = raw.get("space")
            if isinstance(dims, dict) and rest in dims:
                del dims[rest]
                if notes is not None:
                    notes.append(f"--set {key} fixes {rest}: dimension removed from the space")
        elif section in ("space", "arms"):  # a dimension, or a whole arm by its name; null drops it
            if not rest:
                raise UserError(key, "--set needs an arm's name, e.g. arms.trim={fixed: {trim.schedule: linear}}")
            if value is None:
                target.pop(rest, None)
            else:
                target[rest] = value
        else:
            if "." in rest or rest not in SECTION_DEFAULTS[section]:
                raise UserError(key, unknown_space_key(section, rest))
            target[rest] = value
    return raw


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
