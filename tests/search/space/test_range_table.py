"""`space.ranges`: one table of every numeric setting. README holds its rendering; every section's numeric key
is in it; a value just outside each range is refused by validation naming the key."""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from pathlib import Path

import pytest
from search_helpers import BASE

from tune_hardbatch.errors import UserError
from tune_hardbatch.search import space as SP
from tune_hardbatch.search.space import range_table as R
from tune_hardbatch.search.space import sections as S

README = Path(__file__).resolve().parents[3] / "README.md"


def test_readme_holds_the_table_as_rendered():
    block = README.read_text().split("<!-- ranges: generated -->\n", 1)[1].split("<!-- ranges: end -->", 1)[0]
    assert block == R.markdown(), "README's ranges are stale: python -m tune_hardbatch.search.space.range_table"


def test_every_numeric_section_key_is_in_the_table():
    table = R.table()
    for name, cls in S.SECTION_TYPES.items():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            args = [a for a in typing.get_args(hints[f.name]) if a is not type(None)] or [hints[f.name]]
            if any(a in (int, float) for a in args):
                assert f"{name}.{f.name}" in table, f"{name}.{f.name} has no range"
    assert "base.trim.p_end" in table and "base.optim.lr" in table
    assert S.__doc__.count("\n    confirm.") == len(S.SECTION_RANGES["confirm"])  # the docstring renders it


def outside(rng) -> list:
    """Values just outside a range (and a boolean, which is no number here)."""
    out = [True]
    if rng.low is not None:
        out.append(rng.low if rng.low_open else rng.low - 1)
    if rng.high is not None:
        out.append(rng.high if rng.high_open else rng.high + 1)
    if rng.integer:
        out.append(max(rng.low or 0, 0) + 1.5)
    return [v for v in out if not (isinstance(v, float) and math.isinf(v))]


CASES = [(key, value) for key, rng in R.table().items() for value in outside(rng)]


@pytest.mark.parametrize("key, value", CASES, ids=[f"{k}={v}" for k, v in CASES])
def test_a_value_outside_each_range_is_refused_naming_the_key(key, value):
    section, _, rest = key.partition(".")
    raw = {"base": dict(BASE), "space": {}}
    if section == "base":
        raw["base"][rest] = [value, 1.0] if re.search(r"stepwise\.(epochs|.*multipliers|fractions)", rest) \
            else value
        if rest.startswith("stepwise.") and rest != "stepwise.fractions":
            raw["base"]["stepwise.fractions"] = "A-O"
    else:
        raw[section] = {rest: value}
    with pytest.raises(UserError) as info:
        SP.validate_space(raw)
    assert info.value.key == key, (str(info.value), key)
