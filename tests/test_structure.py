"""The package's architecture, checked: import graph (no circles, dependencies one way), who imports Ray,
MLflow and torch, and the size of modules and functions."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "tune_hardbatch"

# Layers, lowest first: a module may import its own layer or lower ones only. A module's layer is that of the
# longest entry that is it or a package above it: output's primitives (formats, plots, logs) know nothing of
# training or searches and sit below everything that prints; output's views (console, live, report) sit above
# the verdict they show.
LAYERS = [
    ("errors", "metrics", "files"),
    ("output.formats", "output.plots", "output.logs"),
    ("training",),
    ("search",),
    ("verdict",),
    ("output",),
    ("tracking",),
    ("ray_backend",),
    ("cli", "__main__"),
]
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def modules() -> dict[str, Path]:
    out = {}
    for path in PKG.rglob("*.py"):
        parts = path.relative_to(PKG).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imported(mod: str, path: Path, node, known) -> list[str]:
    """Package modules an import statement (at any depth, incl. inside functions) refers to."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
        return [n[len("tune_hardbatch."):] for n in names if n.startswith("tune_hardbatch.")]
    if not node.level:
        target = node.module or ""
        if not target.startswith("tune_hardbatch"):
            return []
        base = target[len("tune_hardbatch"):].lstrip(".")
    else:
        here = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
        here = [p for p in here if p]
        base = ".".join(here[: len(here) - node.level + 1] + ([node.module] if node.module else []))
    out = []
    for alias in node.names:
        full = f"{base}.{alias.name}".lstrip(".")
        out.append(full if full in known else base)
    return out


def import_graph() -> dict[str, set[str]]:
    known = modules()
    graph = {}
    for mod, path in known.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                deps.update(d for d in _imported(mod, path, node, known) if d in known and d != mod)
        graph[mod] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def layer(mod: str) -> int:
    """The layer of the longest LAYERS entry that is `mod` or a package above it ('' is the package root)."""
    if mod == "":
        return 0
    best = None
    for i, names in enumerate(LAYERS):
        for name in names:
            if (mod == name or mod.startswith(name + ".")) and (best is None or len(name) > best[1]):
                best = (i, len(name))
    if best is None:
        raise AssertionError(f"module {mod!r} is in no layer of tests/test_structure.py::LAYERS")
    return best[0]


def test_cycle_finder_finds_a_planted_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles():
    assert cycles(import_graph()) == []


def test_dependencies_point_one_way():
    wrong = [f"{a} -> {b}" for a, deps in import_graph().items() for b in deps
             if a and b and layer(a) < layer(b)]
    assert wrong == [], f"imports against the layering {LAYERS}: {wrong}"


def _third_party(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            out.add(node.module.split(".")[0])
    return out


@pytest.mark.parametrize("library, allowed", [("ray", ("ray_backend",)), ("mlflow", ("tracking",)),
                                              ("optuna", ("ray_backend", "verdict.importances"))])
def test_each_library_has_one_importer(library, allowed):
    importers = sorted(m for m, p in modules().items() if library in _third_party(p))
    assert importers and all(any(m == a or m.startswith(a + ".") for a in allowed) for m in importers), importers


def test_modules_and_functions_are_small():
    big = {m: n for m, p in modules().items() if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    long = []
    for mod, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{mod}.{node.name} ({n} lines)")
    assert not big and not long, (big, long)


def test_validating_a_search_imports_neither_torch_nor_timm(tmp_path):
    """`tune-hardbatch search` with a bad input, and loading a valid space with its resources checked,
    never import torch, timm, Ray or MLflow (bad input must answer fast)."""
    script = (
        "import contextlib, io, json, sys\n"
        "from tune_hardbatch.cli import main\n"
        "from tune_hardbatch.search import prepare as launch, space\n"
        "err = io.StringIO()\n"
        "with contextlib.redirect_stderr(err):\n"
        "    code = main(['search', '--set', 'search.num_samples=0'])\n"
        "s = space.load_space(None)\n"
        "launch.check_resources(s, *launch.local_resources())\n"
        "print(json.dumps({'code': code, 'err': err.getvalue(), 'loaded': sorted(m for m in "
        "('torch', 'timm', 'ray', 'mlflow', 'optuna', 'sklearn') if m in sys.modules)}))\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["code"] == 2 and out["err"].startswith("error: search.num_samples")
    assert out["loaded"] == []


# Modules without a test module of their own, and why: no logic, or only exercised end to end.
UNMIRRORED = {
    "errors": "one exception class",
    "search.space.schema": "constants",
    "ray_backend.search": "the driver's search phase (the Tuner -> trial records): run end to end by "
                          "ray_backend/test_driver.py",
    "ray_backend.publish": "the driver's last phase: run end to end by ray_backend/test_driver.py, "
                           "test_confirm.py and test_mlflow_search.py",
    "ray_backend.callbacks": "Ray Tune callbacks: run end to end by the same tests",
}


def test_tests_mirror_the_package():
    """Every module with logic has its test module at the mirrored path (tune_hardbatch/a/b.py ->
    tests/a/test_b.py)."""
    tests = PKG.parent / "tests"
    missing = []
    for mod, path in modules().items():
        if path.name in ("__init__.py", "__main__.py") or mod in UNMIRRORED:
            continue
        *folders, name = mod.split(".")
        if not tests.joinpath(*folders, f"test_{name}.py").is_file():
            missing.append(mod)
    assert not missing, missing
    assert all(mod in modules() for mod in UNMIRRORED)  # an exemption of a module that is gone goes too


def test_test_files_have_unique_names():
    """The test folders have no __init__.py, so pytest imports each test file by its base name: two files of
    one name in different folders (tests/search/space/test_x.py, tests/ray_backend/test_x.py) stop the collection.
    A module whose mirrored test would clash takes a name of its own."""
    names = [p.name for p in (PKG.parent / "tests").rglob("test_*.py")]
    assert sorted({n for n in names if names.count(n) > 1}) == []


def readme_layout() -> tuple[set[str], set[str]]:
    """(files, folders) README's Layout tree names under tune_hardbatch/: a line's names come before its first
    double space, a folder ends in '/', two spaces of indent per level."""
    block = (PKG.parent / "README.md").read_text().split("## Layout", 1)[1].split("```", 2)[1]
    stack, files, folders = [], set(), set()
    for line in block.splitlines():
        names = re.split(r"\s{2,}", line.strip())[0].split(" ") if line.strip() else []
        if not names or not all(re.fullmatch(r"[\w/]+/|\w+\.py", n) for n in names):
            continue  # a description's second line
        stack = stack[: (len(line) - len(line.lstrip(" "))) // 2]
        for name in names:
            if name.endswith("/"):
                stack.append(name.rstrip("/"))
                folders.add("/".join(stack))
            else:
                files.add("/".join(stack + [name]))
    prefix = "tune_hardbatch/"
    return ({f[len(prefix):] for f in files if f.startswith(prefix)},
            {f[len(prefix):] for f in folders if f.startswith(prefix)})


def test_readmes_layout_names_every_module_and_nothing_else():
    files, folders = readme_layout()
    modules_on_disk = {str(p.relative_to(PKG)) for p in PKG.rglob("*.py") if p.name != "__init__.py"}
    assert sorted(modules_on_disk - files) == [], "README's layout leaves these out"
    assert sorted(files - modules_on_disk) == [], "README's layout names modules that do not exist"
    assert folders and all((PKG / f).is_dir() for f in folders), folders


def test_every_package_says_its_role():
    """Each package's docstring says what it holds and what it may import (a newcomer's first read)."""
    for init in PKG.rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert len(doc.split()) >= 12, f"{init.relative_to(PKG)}: {doc!r}"
