"""The names a space gives (its arms, `run.name`, `tracking.experiment`) checked against what the
integrations can carry, before anything starts: a name MLflow, Ray or the file system would refuse mid-search
(and so switch tracking off, or fail a trial) is one `UserError` here.

The limits: MLflow keeps metric, param and tag keys of at most 250 characters (`MLFLOW_KEY_LIMIT`) and
experiment names of at most 500; an arm's name is part of keys like `<arm>.diff_vs_<arm>_ci95` (two names and
a suffix), so an arm name has at most `ARM_NAME_LIMIT` characters; a file name has at most 255 bytes, and a
search's folder (`run.name`) keeps room for what goes beside it. `slug` is how an arm's name is spelt in
MLflow's keys; two arms spelt alike would share their metrics, so they are refused.
"""

from __future__ import annotations

import re

from ...errors import UserError

MLFLOW_KEY_LIMIT = 250  # mlflow.utils.validation.MAX_ENTITY_KEY_LENGTH
MLFLOW_EXPERIMENT_LIMIT = 500  # mlflow.utils.validation.MAX_EXPERIMENT_NAME_LENGTH
ARM_NAME_LIMIT = 100  # 2 x 100 + len(".diff_vs__ci95") < MLFLOW_KEY_LIMIT, with room for '_2' on a clash
RUN_NAME_BYTES = 200  # a folder name: 255 bytes, less room for '.tmp' / lock files beside it
ARM_FORBIDDEN = ('/', '"')  # a folder separator; the quote of `--set 'arms."NAME".KEY=...'`


def slug(label: str) -> str:
    """An arm label as part of an MLflow metric or tag name: MLflow takes letters, digits, '_', '-', '.',
    ' ', ':' and '/' (no ':' on Windows; '/' nests); anything else, '=' and '+' among them, becomes '_'.
    'delta=0.5+trim-linear' -> 'delta_0.5_trim-linear'; '<' and '>' are spelt out, so the declared arms
    'delta<1' and 'delta=1' stay apart ('delta_lt_1', 'delta_1')."""
    label = str(label).replace("<", "_lt_").replace(">", "_gt_")
    return re.sub(r"[^\w.\-]+", "_", label).strip("_.") or "arm"


def check_arm_names(names: list[str]) -> None:
    """Each arm's name carried by MLflow (keys), Ray (a trial's config) and `--set arms.NAME` (quoting)."""
    spelt: dict[str, str] = {}
    for name in names:
        where = f"arms.{name}" if len(name) <= ARM_NAME_LIMIT else "arms"
        bad = next((c for c in ARM_FORBIDDEN if c in name), None)
        if not name.strip() or name != name.strip() or bad:
            why = f"holds {bad!r}" if bad else "is empty or starts or ends with a space"
            raise UserError("arms", f"arm name {name!r} {why}; allowed: a name without '/' or '\"' and without "
                            "spaces at its ends")
        if len(name) > ARM_NAME_LIMIT:
            raise UserError(where, f"arm name {name[:40]!r}... has {len(name)} characters; allowed: at most "
                            f"{ARM_NAME_LIMIT} (MLflow keys of {MLFLOW_KEY_LIMIT} characters hold two arm names)")
        other = spelt.setdefault(slug(name), name)
        if other != name:
            raise UserError(where, f"arms {other!r} and {name!r} are both spelt {slug(name)!r} in MLflow's metric "
                            "names, which would mix their figures; allowed: names that differ in letters, digits, "
                            "'.', '-' or '_'")


def check_run_name(name: str) -> None:
    size = len(name.encode("utf-8"))
    if size > RUN_NAME_BYTES:
        raise UserError("run.name", f"got {name[:40]!r}... of {size} bytes; allowed: a folder name of at most "
                        f"{RUN_NAME_BYTES} bytes (the file system's 255, less room for the files beside it)")


def check_experiment_name(name: str) -> None:
    if len(name) > MLFLOW_EXPERIMENT_LIMIT:
        raise UserError("tracking.experiment", f"got {name[:40]!r}... of {len(name)} characters; allowed: at most "
                        f"{MLFLOW_EXPERIMENT_LIMIT} (MLflow's limit)")


def default_run_name(stem: str, stamp: str) -> str:
    """'<stem>-<stamp>', the stem cut (at a character) so the whole fits `RUN_NAME_BYTES`."""
    room = RUN_NAME_BYTES - len(stamp.encode("utf-8")) - 1
    cut = stem.encode("utf-8")[:room].decode("utf-8", errors="ignore")
    return f"{cut}-{stamp}"
