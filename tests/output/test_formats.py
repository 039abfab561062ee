"""`formats`: one way to write a value as text, in tables, reports, CSV and YAML."""

import pytest

from tune_hardbatch.output.formats import csv_value, fixed, num, pm, yaml_value

NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("value, digits, text", [
    (0.123456, 4, "0.1235"), (90.0, 4, "90"), (1234567.0, 6, "1.23457e+06"), (NAN, 4, "nan"), (INF, 4, "nan"),
    (None, 4, "-"), (72, 4, "72"), (True, 4, "True"), ("A-O", 4, "A-O"), ([0.5, 1.0], 4, "0.5-1"),
    (("A", 2), 4, "A-2"),
])
def test_table_cells(value, digits, text):
    assert num(value, digits) == text


def test_fixed_point_and_intervals():
    assert fixed(1234.5, 0, grouped=True) == "1,234" and fixed(-1.25, 1, signed=True) == "-1.2"
    assert fixed(NAN, 2) == "-" and fixed(None, 2, missing="–") == "–" and fixed(True, 1) == "-"
    assert pm({"mean": 71.0, "ci95": 2.4832}) == "71.00 ± 2.48" and pm({"mean": 1.5, "ci95": NAN}, signed=True) == "+1.50"
    assert pm({"mean": NAN, "ci95": 1.0}) == "-" and pm(None, missing="–") == "–" and pm({}) == "-"


def test_csv_and_yaml_values():
    assert [csv_value(v) for v in (None, NAN, [0.5, 1.0], 3, "x")] == ["", "nan", "[0.5, 1.0]", 3, "x"]
    assert csv_value(INF, nan="") == ""
    assert [yaml_value(v) for v in (0.123456789, [0.5, 1.0], None, "linear", 3)] == \
        ["0.123457", "[0.5, 1.0]", "null", "linear", "3"]
