"""Reading what users give and what a search leaves behind: every problem with a file is one `UserError`
naming the file (not UTF-8, damaged JSON or YAML, a directory, missing), never a traceback.

YAML is read as the text users typed (`TextLoader`, and `TextDumper` writes what it reads back alike):

- every mapping key is the key's own text: an arm `0.5:`, `yes:` or `2024-01-01:` is named "0.5", "yes",
  "2024-01-01" (PyYAML would make a float, a bool and a date of them);
- scalars follow YAML 1.2's core schema: `true` / `false` only are booleans (`yes`, `no`, `on`, `off` stay
  text), `1e-3` is a number (PyYAML's YAML 1.1 reads text), `010` is ten (not octal eight), no dates;
- a key written twice in one mapping is an error naming both lines (PyYAML keeps the last silently);
- a string field that YAML typed as a number or boolean takes the text the user typed (`as_text`).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Optional, Union

import yaml

from .errors import UserError

PathLike = Union[str, Path]
_TEXTS: dict = {}  # (type, value) -> the text a YAML scalar was typed as: `as_text` gives it back


class TextLoader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 core scalars, keys as typed and duplicate keys refused."""

    yaml_implicit_resolvers: dict = {}

    def construct_mapping(self, node, deep=False):
        if not isinstance(node, yaml.MappingNode):
            return super().construct_mapping(node, deep)
        self.flatten_mapping(node)  # `<<` merge keys, as the safe loader does
        out, lines = {}, {}
        for key_node, value_node in node.value:
            key = self._key(key_node)
            line = key_node.start_mark.line + 1
            if key in out:
                raise DuplicateKey(key, lines[key], line)
            out[key], lines[key] = self.construct_object(value_node, deep=deep), line
        return out

    def _key(self, node) -> str:
        if not isinstance(node, yaml.ScalarNode):
            raise yaml.constructor.ConstructorError(None, None, "a key must be a name, not a list or mapping",
                                                    node.start_mark)
        return node.value if node.style is None else str(self.construct_object(node))


class TextDumper(yaml.SafeDumper):
    """Quotes every string `TextLoader` or PyYAML's own loader would read as something else ('1e-3', '12',
    'yes'), so that both read the file back alike."""

    yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeDumper.yaml_implicit_resolvers.items()}


class DuplicateKey(yaml.YAMLError):
    def __init__(self, key: str, first: int, second: int):
        super().__init__(f"key {key!r} given twice (lines {first} and {second})")
        self.key, self.first, self.second = key, first, second


_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT = re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)"
                    r"|\.(?:nan|NaN|NAN))$")
_RESOLVERS = [
    ("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")),
    ("tag:yaml.org,2002:int", _INT, list("-+0123456789")),
    ("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789.")),
    ("tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:merge", re.compile(r"^(?:<<)$"), ["<"]),
]
for _cls in (TextLoader, TextDumper):
    for _tag, _regexp, _first in _RESOLVERS:
        _cls.add_implicit_resolver(_tag, _regexp, _first)


def _scalar(kind):
    def construct(loader, node):
        text = loader.construct_scalar(node)
        value = kind(text)
        if node.style is None:
            _TEXTS[(type(value), value)] = text
        return value
    return construct


def _int(text: str) -> int:
    body = text.lstrip("+-")
    sign = -1 if text.startswith("-") else 1
    base = 8 if body.startswith("0o") else 16 if body.startswith("0x") else 10
    return sign * int(body[2:] if base != 10 else body, base)


def _float(text: str) -> float:
    lower = text.lower()
    if lower.endswith(".inf"):
        return -math.inf if lower.startswith("-") else math.inf
    return math.nan if lower == ".nan" else float(text)


def _bool(text: str) -> bool:
    return text.lower() == "true"


TextLoader.add_constructor("tag:yaml.org,2002:int", _scalar(_int))
TextLoader.add_constructor("tag:yaml.org,2002:float", _scalar(_float))
TextLoader.add_constructor("tag:yaml.org,2002:bool", _scalar(_bool))


def as_text(value: Any) -> Any:
    """A number or boolean where text is meant (a name, a path): the text it was typed as, else its YAML
    spelling; anything else unchanged."""
    if isinstance(value, (bool, int, float)):
        typed = _TEXTS.get((type(value), value))
        return typed if typed is not None else yaml.dump(value, Dumper=TextDumper).split("\n")[0]
    return value


def dump_yaml(data: Any) -> str:
    """YAML that `parse_yaml` reads back as the same data."""
    return yaml.dump(data, Dumper=TextDumper, sort_keys=False, allow_unicode=True)


def parse_yaml(text: str, where: str) -> Any:
    """YAML text (a file's, or one `--set` value) -> data; a syntax error or a key given twice is one
    `UserError` naming `where` and the line."""
    try:
        return yaml.load(text, Loader=TextLoader)  # noqa: S506 - TextLoader is a SafeLoader
    except DuplicateKey as exc:
        raise UserError(where, f"{exc}; allowed: each key once per mapping") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise UserError(where, f"malformed YAML{at}{f' ({problem})' if problem else ''}") from None


def load_yaml(path: PathLike) -> Any:
    """A YAML file -> data; every problem one `UserError` naming the file."""
    return parse_yaml(read_text(path), str(path))


def problem_of(exc: UserError, path: Optional[PathLike] = None) -> str:
    """A file's `UserError` as "<file>: what is wrong", without the advice to a user who typed the file (a
    search's own outputs are not the user's to fix); with `path`, only what is wrong."""
    problem = str(exc).split("; allowed:")[0]
    return problem.removeprefix(f"{path}: ") if path is not None else problem


def read_text(path: PathLike) -> str:
    """A UTF-8 text file; missing, a directory, unreadable or not UTF-8: one `UserError` naming the file."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise UserError(str(path), "file not found") from None
    except IsADirectoryError:
        raise UserError(str(path), "is a directory, expected a file") from None
    except OSError as exc:
        raise UserError(str(path), f"cannot read it ({exc.strerror or exc})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UserError(str(path), f"is not UTF-8 text: byte 0x{data[exc.start]:02x} at line {line} (offset "
                        f"{exc.start}); allowed: UTF-8 text (save it as UTF-8)") from None


def read_json(path: PathLike) -> Any:
    """A JSON file; damaged (cut short, not JSON, not UTF-8): one `UserError` naming the file."""
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(str(path), f"is not valid JSON ({exc.msg} at line {exc.lineno}); it may be damaged "
                        "or cut short") from None
