"""`files`: YAML read as typed (keys as text, YAML 1.2 scalars, a key twice refused with both lines), written so
that both loaders read it back alike, and damaged files as one `UserError` naming the file."""

from __future__ import annotations

import math

import pytest
import yaml

from tune_hardbatch.errors import UserError
from tune_hardbatch.files import as_text, dump_yaml, load_yaml, parse_yaml, read_json, read_text


def test_keys_are_the_text_typed_and_scalars_follow_yaml_1_2():
    data = parse_yaml("0.5: a\nyes: b\n2024-01-01: c\nnull: d\n010: e\n"
                      "v: {a: 1e-3, b: 010, c: 0x10, d: on, e: 2024-12-07, f: .inf, g: true, h: 1_000, i: ~}\n", "f")
    assert list(data) == ["0.5", "yes", "2024-01-01", "null", "010", "v"]
    v = data["v"]
    assert v["a"] == 0.001 and v["b"] == 10 and v["c"] == 16 and v["d"] == "on" and v["e"] == "2024-12-07"
    assert math.isinf(v["f"]) and v["g"] is True and v["h"] == "1_000" and v["i"] is None


def test_a_number_where_text_is_meant_is_the_text_typed():
    data = parse_yaml("name: 1.50\nother: 0x1F\nflag: TRUE\n", "f")
    assert [as_text(data[k]) for k in ("name", "other", "flag")] == ["1.50", "0x1F", "TRUE"]
    assert as_text("x") == "x" and as_text(None) is None and as_text(123456789) == "123456789"


@pytest.mark.parametrize("text, line", [("a: 1\nb: 2\na: 3\n", "lines 1 and 3"),
                                        ("s:\n  x: 1\n  x: 2\n", "lines 2 and 3")])
def test_a_key_twice_is_an_error_naming_both_lines(text, line):
    with pytest.raises(UserError) as info:
        parse_yaml(text, "space.yaml")
    assert str(info.value).startswith("space.yaml: key ") and line in str(info.value)


def test_malformed_yaml_and_a_list_as_key_name_the_line():
    for text, fragment in (("a: [1, 2\n", "line 2"), ("? [a]\n: 1\n", "a key must be a name")):
        with pytest.raises(UserError) as info:
            parse_yaml(text, "f.yaml")
        assert str(info.value).startswith("f.yaml: malformed YAML") and fragment in str(info.value)


def test_written_yaml_reads_back_alike_with_both_loaders():
    data = {"a": "1e-3", "b": "yes", "c": "12", "d": 1e-5, "e": math.inf, "f": "true", "g": "2024-01-01",
            "h": "plain", "i": None, "j": [1, "on"], "k": "010"}
    text = dump_yaml(data)
    assert parse_yaml(text, "x") == data
    assert yaml.safe_load(text) == data  # PyYAML's own YAML 1.1 reading too (another tool reading our files)


def test_files_that_are_not_utf8_damaged_or_missing_are_one_line(tmp_path):
    latin = tmp_path / "space.yaml"
    latin.write_bytes("run:\n  name: caf\xe9\n".encode("latin-1"))
    cut = tmp_path / "cut.json"
    cut.write_bytes('{"arm": "caf\u00e9'.encode()[:-1])
    half = tmp_path / "half.json"
    half.write_text('{"a": [1, 2')
    cases = [(lambda: load_yaml(latin), latin, "not UTF-8 text: byte 0xe9 at line 2"),
             (lambda: read_json(cut), cut, "not UTF-8 text"),
             (lambda: read_json(half), half, "not valid JSON"),
             (lambda: read_text(tmp_path / "nope"), tmp_path / "nope", "file not found"),
             (lambda: read_text(tmp_path), tmp_path, "is a directory")]
    for call, path, fragment in cases:
        with pytest.raises(UserError) as info:
            call()
        message = str(info.value)
        assert message.startswith(f"{path}: ") and fragment in message and "\n" not in message, message
