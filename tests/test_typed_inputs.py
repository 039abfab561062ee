"""Inputs as users type them, through the CLI (issue 35): files in other encodings, names YAML would retype,
`--set` on names that do not exist, one key given two values, ranges, names MLflow cannot carry.

Every bad input: exit 2, one `error:` line naming the key or the file, no traceback, Ray never imported, nothing
written (all run by `main` in one fresh interpreter). The odd-but-valid inputs (arms named `0.5`, `yes`,
`delta=1`, a 100-character name, a run named by a date, an experiment named by a number) run a real search
whose tracking keeps every trial under the names typed: `tests/test_mlflow_auth.py::
test_search_with_credentials_tracks_every_trial` (one search for both issues' checks).
"""

from __future__ import annotations

from pathlib import Path

from search_helpers import assert_one_error_line, run_mains

ARMS = ("search: {scheduler: fifo, trials_per_arm: 1}\nconfirm: {seeds: 0}\n"
        "base: {epochs: 1, data: {name: digits, val_fraction: 0.2, train_limit: 400}, optim: {batch_size: 64}}\n"
        "space: {optim.lr: {loguniform: [0.05, 0.2]}}\n")
SPACE = ARMS + "arms:\n  plain: {}\n  delta=1: {fixed: {hard_batch.delta: 1.0}}\n  v1.2: {fixed: {trim.schedule: linear}}\n"
LONG = "x" * 101

# (argv with FILE/SPACE/OUT placeholders, files to write, the key the line must start with, a fragment of it)
CASES = [
    # files that are not UTF-8
    (["search", "FILE"], {"FILE": "run:\n  name: caf\xe9\n".encode("latin-1")}, "FILE", "not UTF-8 text: byte 0xe9"),
    (["train", "FILE"], {"FILE": "# r\xe9sum\xe9\nepochs: 2\n".encode("latin-1")}, "FILE", "at line 1"),
    (["search", "FILE"], {"FILE": "run: {name: caf\u00e9}".encode()[:-2]}, "FILE", "not UTF-8 text"),
    # names YAML would retype, given twice once read as typed
    (["search", "FILE"], {"FILE": ARMS + "arms:\n  0.5: {}\n  '0.5': {}\n"}, "FILE", "key '0.5' given twice"),
    # --set on what does not exist
    (["search", "SPACE", "--set", "arms.trimm=null"], {}, "arms.trimm", "the space's arms: 'plain', 'delta=1'"),
    (["search", "SPACE", "--set", "arms.delta=1=null"], {}, "arms.delta", "quote a name"),
    (["search", "SPACE", "--set", "space.optim.lrr=null"], {}, "space.optim.lrr", "space has: optim.lr"),
    (["search", "SPACE", "--set", "arms.nope.fixed.trim.p_end=0.3"], {}, "arms.nope", "no arm named 'nope'"),
    (["search", "SPACE", "--set", "arms.plain.space.optim.lr=null"], {}, "arms.plain.space.optim.lr", "has: none"),
    (["search", "SPACE", "--set", "a..b=1"], {}, "a..b", "empty part"),
    (["search", "SPACE", "--set", ".epochs=1"], {}, ".epochs", "empty part"),
    (["train", "--set", "optim.lr.=1"], {}, "optim.lr.", "empty part"),
    # one key, one value
    (["search", "FILE"], {"FILE": "search: {num_samples: 4, num_samples: 8}\n"}, "FILE", "lines 1 and 1"),
    (["search", "FILE"], {"FILE": "base:\n  optim: {lr: 0.1}\n  optim.lr: 0.2\n"}, "base.optim.lr",
     "given twice, as 'optim: {lr}' and as 'optim.lr'"),
    (["train", "FILE"], {"FILE": "optim.lr: 0.2\noptim:\n  lr: 0.1\n"}, "optim.lr", "given twice"),
    (["search", "FILE"], {"FILE": ARMS + "arms:\n  t: {fixed: {trim: {schedule: linear}, trim.schedule: step}}\n"},
     "arms.t.fixed.trim.schedule", "given twice"),
    (["search", "SPACE", "--set", "epochs=3", "--set", "base.epochs=4"], {}, "base.epochs", "'epochs=3' and"),
    (["train", "--set", "epochs=3", "--set", "epochs=4"], {}, "epochs", "given twice in --set"),
    # ranges that mean something
    (["search", "SPACE", "--set", "confirm.equivalence_margin=100"], {}, "confirm.equivalence_margin", "< 100"),
    (["search", "SPACE", "--set", "confirm.resolution=250"], {}, "confirm.resolution", "0 < resolution < 100"),
    (["search", "SPACE", "--set", "base.trim.step_at=1"], {}, "base.trim.step_at", "0 < step_at < 1"),
    (["search", "SPACE", "--set", "search.reduction_factor=true"], {}, "search.reduction_factor", "got True"),
    (["train", "--set", "stepwise.fractions=A-O", "--set", "stepwise.epochs=[0, 2]"], {}, "stepwise.epochs",
     "each entry an integer >= 1"),
    # names the integrations cannot carry
    (["search", "SPACE", "--set", f"arms.{LONG}={{}}"], {}, "arms", "101 characters"),
    (["search", "SPACE", "--set", "arms.delta_1={}"], {}, "arms.delta_1", "both spelt 'delta_1'"),
    (["search", "SPACE", "--set", "run.name=" + "é" * 101], {}, "run.name", "of 202 bytes"),
    (["search", "SPACE", "--set", "tracking.experiment=" + "e" * 501], {}, "tracking.experiment", "501 characters"),
    (["search", "FILE"], {"FILE": ARMS + "arms:\n  'say \"hi\"': {}\n"}, "arms", "holds '\"'"),
]


def test_bad_inputs_as_typed_exit_2_with_one_line(tmp_path):
    out = tmp_path / "out"
    (tmp_path / "space.yaml").write_text(SPACE)
    argvs, expected = [], []
    for i, (args, files, key, fragment) in enumerate(CASES):
        paths = {"SPACE": str(tmp_path / "space.yaml")}
        for name, data in files.items():
            paths[name] = str(tmp_path / f"case{i}.yaml")
            Path(paths[name]).write_bytes(data if isinstance(data, bytes) else data.encode())
        argv = [paths.get(a, a) for a in args]
        argvs.append(argv + (["--out", str(out)] if argv[0] == "search" else []))
        expected.append((paths.get(key, key), fragment))
    before = sorted(tmp_path.rglob("*"))
    results, ray_imported = run_mains(argvs, cwd=tmp_path)
    for argv, (key, fragment), (code, err) in zip(argvs, expected, results):
        assert_one_error_line(code, err, key, fragment)
    assert not ray_imported and sorted(tmp_path.rglob("*")) == before  # nothing started, nothing written
    assert len({(tuple(a), k) for a, (k, _) in zip(argvs, expected)}) == len(CASES) == 28
