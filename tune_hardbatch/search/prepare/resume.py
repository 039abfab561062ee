"""Where a search runs: its storage directory and name, checked writable; `--resume` of an earlier one.

Relative paths (`--out`, `run.storage`) are taken from the current directory and made absolute, since
trials run in their own directories. Remote storage URIs are not supported (use a shared filesystem).
The storage directory must be writable with at least 16 MiB free (`check_writable`, before anything
starts: a full disk or a read-only path is one error line, not a failure of every trial).
"""

from __future__ import annotations

import datetime
from dataclasses import replace
from pathlib import Path

from ...errors import UserError
from ..space import SPACE_FILE, SearchSpace, load_space
from ..space.sections import as_dict
from ..storage import abs_storage, check_writable
from .lock import check_free


def resolve_run(space, sets, resume, out) -> tuple[SearchSpace, str, str, bool]:
    """The search space, absolute storage directory, run name and whether this resumes an existing search."""
    if resume is not None:
        return _resume(space, sets, resume, out)
    search_space = load_space(space, sets)
    storage = abs_storage(out or search_space.run.storage or "tune_results", "--out" if out else "run.storage")
    name = search_space.run.name or default_name(search_space)
    if (Path(storage) / name).exists():
        raise UserError("run.name", f"{Path(storage) / name} already exists; continue it with "
                        f"--resume {name}, or choose another run.name")
    check_writable(storage, "--out" if out else "run.storage")
    search_space.run = replace(search_space.run, storage=storage, name=name)
    search_space.raw["run"] = as_dict(search_space.run)
    return search_space, storage, name, False


RESUME_CHANGEABLE = ("run.max_failures", "run.checkpoint_every")  # what --resume may change; everything else must stay as it was


def _resume(space, sets, resume: str, out) -> tuple[SearchSpace, str, str, bool]:
    """`--resume NAME`: the saved space, with the overrides that may change applied (others refused).

    SPACE and --set are compared with what NAME was started with (no SPACE: --set applies to the saved
    space), so the same command plus --resume continues it as it was.
    """
    given = load_space(space, sets) if space is not None else None
    storage = abs_storage(out or (given.run.storage if given else None) or "tune_results",
                          "--out" if out else "run.storage")
    exp_dir = Path(storage) / resume
    saved_path = exp_dir / SPACE_FILE
    if not saved_path.is_file():
        found = sorted(p.parent.name for p in Path(storage).glob(f"*/{SPACE_FILE}")) \
            if Path(storage).is_dir() else []
        raise UserError("--resume", f"no search named {resume!r} under {storage}"
                        + (f"; found: {', '.join(found)}" if found else ""))
    check_writable(str(exp_dir), "--resume")
    check_free(exp_dir, "--resume")
    saved = load_space(str(saved_path))
    changed = given if given is not None else (load_space(str(saved_path), sets) if sets else None)
    if changed is not None:
        _apply_changes(saved, changed, resume, from_space=given is not None)
    saved.question = (given.question if given else "") or saved.question
    return saved, storage, resume, True


def _apply_changes(saved: SearchSpace, changed: SearchSpace, resume: str, from_space: bool) -> None:
    """Differences on --resume: applied when the key may change (RESUME_CHANGEABLE), refused otherwise."""
    for key, old, new in _differences(saved.raw, changed.raw):
        if key in ("run.name", "run.storage") and (new is None or (key == "run.storage" and
                                                           abs_storage(new) == old)):
            continue  # NAME and --out locate the search; a space file's null means "the default"
        if key not in RESUME_CHANGEABLE:
            what = f"the space gives {key} = {new!r}" if from_space else f"--set {key}={new!r} cannot apply"
            raise UserError(key, f"--resume {resume} continues the search as it was started ({key} = {old!r}): "
                            f"{what}; allowed on --resume: {', '.join(RESUME_CHANGEABLE)} (or start a new search)")
        section, _, name = key.partition(".")
        setattr(saved, section, replace(getattr(saved, section), **{name: new}))
        saved.raw[section][name] = new
        saved.notes.append(f"--resume applies {key} = {new!r} (was {old!r})")


def _differences(a: dict, b: dict, prefix: str = ""):
    """(dotted key, value in a, value in b) wherever two nested mappings differ."""
    for key in sorted(set(a) | set(b), key=str):
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            yield from _differences(x, y, f"{prefix}{key}.")
        elif x != y:
            yield f"{prefix}{key}", x, y


def default_name(space: SearchSpace) -> str:
    stem = Path(space.source).stem if space.source != "<dict>" else "search"
    return f"{stem}-{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}"
