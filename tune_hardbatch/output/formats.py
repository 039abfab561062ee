"""How values are written as text: table cells (`num`), fixed-point figures (`fixed`), a mean with its 95%
interval (`pm`), a CSV cell (`csv_value`) and a YAML scalar (`yaml_value`). Every printed table, report
and results file formats its values here, so a value reads the same wherever it appears.
"""

from __future__ import annotations

import json
import math

from ..metrics import is_finite


def num(v, digits: int = 4) -> str:
    """A table cell: `digits` significant digits, "nan" for a non-finite number, "-" for nothing, a list
    as its items joined by '-' (a step-wise plan [0.5, 1.0] reads 0.5-1)."""
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if math.isfinite(v) else "nan"
    if isinstance(v, (list, tuple)):
        return "-".join(f"{x:g}" if is_finite(x) else str(x) for x in v)
    return str(v)


def fixed(v, digits: int, signed: bool = False, grouped: bool = False, missing: str = "-") -> str:
    """`v` with `digits` decimals (a sign with `signed`, thousands separated with `grouped`); `missing`
    when it is not a finite number."""
    if not is_finite(v):
        return missing
    return f"{v:{'+' if signed else ''}{',' if grouped else ''}.{digits}f}"


def pm(stat: dict, digits: int = 2, signed: bool = False, missing: str = "-") -> str:
    """A mean and its 95% interval, "mean ± ci95" (the mean alone when the interval is not finite)."""
    m, ci = (stat or {}).get("mean"), (stat or {}).get("ci95")
    if not is_finite(m):
        return missing
    return fixed(m, digits, signed) + (f" ± {ci:.{digits}f}" if is_finite(ci) else "")


def csv_value(v, nan: str = "nan"):
    """A CSV cell: "" for nothing, `nan` for a non-finite number, a list as JSON."""
    if v is None:
        return ""
    if isinstance(v, float) and not math.isfinite(v):
        return nan
    if isinstance(v, (list, tuple)):
        return json.dumps(list(v))
    return v


def yaml_value(v) -> str:
    """A YAML scalar for a parameter's value: 6 significant digits, a list in JSON (flow) form, null."""
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, (list, tuple)):
        return json.dumps(list(v))
    return "null" if v is None else str(v)
