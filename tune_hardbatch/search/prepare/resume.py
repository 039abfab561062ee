"""Where a search runs: its storage directory and name, checked writable; `--resume` of an earlier one.

Relative paths (`--out`, `run.storage`) are taken from the current directory and made absolute, since
trials run in their own directories. Remote storage URIs are not supported (use a shared filesystem).
The storage directory must be writable with at least 16 MiB free (`check_writable`, before anything
starts: a full disk or a read-only path is one error line, not a failure of every trial).
"""

from __future__ import annotations

import datetime
import json
import os
from dataclasses import replace
from pathlib import Path

from ...errors import UserError
from ...files import problem_of, read_json, read_text
from ..space import SPACE_FILE, SearchSpace, load_space
from ..space.names import default_run_name
from ..space.schema import ARMS_FILE, CONFIRM_DIR
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
    if not saved_path.exists():
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
    check_state(exp_dir)
    saved.question = (given.question if given else "") or saved.question
    return saved, storage, resume, True


# What a resumed driver reads back besides the space: Ray Tune's state per experiment (the search's, the
# confirmation's), newest of each kind; the confirmation's plan (`verdict.confirm_plan`), the rungs
# (`ray_backend.halving`), the Optuna study (`ray_backend.optuna_search`), the MLflow runs (`tracking.client`).
RAY_STATE = ("experiment_state-*.json", "basic-variant-state-*.json", "search_gen_state-*.json",
             "searcher-state-*.pkl")
JSON_STATE = {ARMS_FILE: ("arms", "seeds", "notes"), "rungs.jsonl": (), "mlflow_runs.json": ()}
JOURNAL = "optuna.journal"


def check_state(exp_dir: Path) -> None:
    """`--resume`: every state file the driver reads back, before Ray starts; a damaged one (not UTF-8, cut
    short, a directory in its place) is one `UserError` naming it, never Ray's or Optuna's traceback."""
    for tuner in [*exp_dir.glob("tuner.pkl"), *sorted(exp_dir.glob(f"**/{CONFIRM_DIR}/tuner.pkl"))]:
        _check_pickle(tuner)
        for pattern in RAY_STATE:
            newest = max(tuner.parent.glob(pattern), default=None)  # the one Ray restores
            if newest is not None and (newest.suffix == ".pkl" or _pickled(newest)):
                _check_pickle(newest)
            elif newest is not None:
                _json_object(newest, ())
    for name, keys in JSON_STATE.items():
        if (exp_dir / name).exists():
            _json_object(exp_dir / name, keys)
    if (exp_dir / JOURNAL).exists():
        _check_journal(exp_dir / JOURNAL)


def _damaged(path: Path, what: str) -> UserError:
    return UserError(str(path), f"{what}; --resume cannot continue from it (restore it from a copy, or start "
                     "a new search)")


def _read(path: Path, read):
    """`read(path)` (`files.read_text`, `read_json`), its UserError said as a state file's."""
    try:
        return read(path)
    except UserError as exc:
        raise _damaged(path, problem_of(exc, path)) from None


def _json_object(path: Path, keys: tuple) -> None:
    data = _read(path, read_json)
    if not isinstance(data, dict) or any(k not in data for k in keys):
        raise _damaged(path, "is not the JSON object the search wrote; it may be damaged")


def _pickled(path: Path) -> bool:
    """Ray writes some state as a pickle under a .json name (search_gen_state-*.json): its PROTO opcode says."""
    try:
        with open(path, "rb") as fh:
            return fh.read(1) == b"\x80"
    except OSError:
        return False  # read again as JSON, which names what is wrong


def _check_pickle(path: Path) -> None:
    """A whole pickle opens with the PROTO opcode (0x80) and ends with STOP ('.'): a file cut short does not."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(1)
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 1))
            tail = fh.read(1)
    except IsADirectoryError:
        raise _damaged(path, "is a directory, expected a file") from None
    except OSError as exc:
        raise _damaged(path, f"cannot read it ({exc.strerror or exc})") from None
    if head != b"\x80" or tail != b".":
        raise _damaged(path, "is not a whole pickle (empty, cut short or damaged)")


def _check_journal(path: Path) -> None:
    """Optuna's journal: whole JSON lines (Optuna stops with a traceback at a damaged one, and would append
    the next line to one cut short)."""
    lines = _read(path, read_text).split("\n")
    for i, line in enumerate(lines, start=1):
        last = i == len(lines)  # what follows the last newline: nothing in a whole journal
        if last and not line:
            continue
        try:
            ok = isinstance(json.loads(line), dict) and not last
        except ValueError:
            ok = False
        if not ok:
            raise _damaged(path, f"line {i} is {'cut short' if last else 'damaged'}")


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
    return default_run_name(stem, datetime.datetime.now().strftime('%Y%m%d-%H%M%S'))
