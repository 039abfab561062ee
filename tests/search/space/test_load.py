"""Loading and validating a whole space (`space.load`): the packaged spaces, the rules that span sections (selection
on validation data, an image folder's own val/, grace-period notes), and bad `search` inputs through the CLI
answered with one line before Ray is imported (most of them are `load_space`'s errors). No Ray here."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from search_helpers import BASE, ENV, REPO

from tune_hardbatch.errors import UserError
from tune_hardbatch.search import space as SP

PACKAGED = ("default", "dybat_cifar10", "trim_cifar10", "stepwise_cifar10", "joint_cifar10")
ALL_SPACES = sorted(set(PACKAGED) | {p.stem for p in SP.SPACE_DIR.glob("*.yaml")})


@pytest.mark.parametrize("name", ALL_SPACES)
def test_packaged_spaces_validate_and_say_what_they_answer(name):
    path = SP.SPACE_DIR / f"{name}.yaml"
    assert path.read_text().startswith("# "), "each space starts with a comment saying what it answers"
    spec = SP.load_space(path)
    assert spec.question.endswith(("?", ".")) and "?" in spec.question
    # the repo-level search_spaces/ is the packaged directory (a symlink), so both paths agree
    assert (REPO / "search_spaces" / f"{name}.yaml").resolve() == path.resolve()
    if name in PACKAGED and name != "default":
        assert spec.base_cfg.data.name == "imagefolder" and spec.resources.gpu == 0.25


def test_default_space_is_the_packaged_one_and_searches_strategies():
    spec = SP.load_space(None)
    assert spec.source == str(SP.DEFAULT_SPACE)
    assert spec.base_cfg.data.name == "digits" and spec.base_cfg.model.name == "test_resnet"
    assert spec.base_cfg.device == "cpu"
    assert spec.num_trials >= 12 and spec.search.searcher == "optuna" and spec.search.scheduler == "halving"
    assert {"optim.lr", "hard_batch.delta", "trim.schedule", "trim.p_end"} <= set(spec.dim_keys)


def test_dybat_space_is_the_papers_grid():
    spec = SP.load_space(SP.SPACE_DIR / "dybat_cifar10.yaml")
    cfg = spec.base_cfg
    assert (cfg.model.name, cfg.data.image_size, cfg.data.augment) == ("resnet18", 128, "none")
    assert (cfg.optim.name, cfg.optim.lr, cfg.optim.momentum, cfg.optim.batch_size, cfg.optim.schedule) == \
        ("sgd", 0.005, 0.9, 512, "none")
    dims = {d.key: d for d in spec.dims}
    assert dims["hard_batch.delta"].corners() == [1.0, 0.8, 0.5, 0.2]
    assert dims["seed"].corners() == [0, 1, 2]
    assert spec.search.searcher == "grid" and spec.num_trials == 12


def test_selection_is_on_validation_data_unless_the_space_says_it_means_the_test_set():
    with pytest.raises(UserError, match=r"^search\.metric: got test_top1, a test-set metric.*allow_test_metric"):
        SP.validate_space({"base": BASE, "search": {"metric": "test_top1"}})
    plain_digits = {**BASE, "data": {"name": "digits"}}
    with pytest.raises(UserError, match=r"^search\.metric: val_top1 needs validation data.*val_fraction"):
        SP.validate_space({"base": plain_digits})
    allowed = {"searcher": "grid", "scheduler": "fifo", "metric": "test_top1", "allow_test_metric": True}
    spec = SP.validate_space({"base": plain_digits, "space": {"seed": {"grid": [0, 1]}}, "search": allowed})
    assert spec.self_confirming and not spec.confirms  # a seed grid selects nothing: its own verdict
    for space, search in (({"seed": {"grid": [0, 1]}}, {**allowed, "scheduler": "halving"}),  # halving would choose
                          ({"optim.lr": {"grid": [0.1, 0.2]}}, allowed),  # no seed grid: the verdict would choose
                          ({"seed": {"choice": [0, 1]}}, {**allowed, "searcher": "optuna"})):
        with pytest.raises(UserError, match=r"^search\.allow_test_metric: lets test_top1 be the metric only of a "
                                            r"search that selects nothing"):
            SP.validate_space({"base": plain_digits, "space": space, "search": search})
    assert SP.validate_space({"base": BASE}).search.metric == "val_top1"
    for name in PACKAGED:  # packaged searches that select choose on validation
        packaged = SP.load_space(SP.SPACE_DIR / f"{name}.yaml")
        assert packaged.search.metric.startswith("val_") or packaged.self_confirming, name


def test_an_image_folder_with_its_own_val_split_is_validation_data(tmp_path):
    for split in ("train", "val", "test"):
        (tmp_path / split / "a").mkdir(parents=True)
    spec = SP.validate_space({"base": {"data": {"name": "imagefolder", "root": str(tmp_path)}}})
    assert spec.search.metric == "val_top1"


def test_the_first_rung_moves_past_a_plans_last_stage_and_its_warm_up():
    stepwise = {"base": {**BASE, "epochs": 12}, "space": {"stepwise.fractions": {"choice": [None, "A-B-C-D-O"]}},
                "search": {"grace_period": 2}}
    spec = SP.validate_space(stepwise)
    assert spec.rungs[0] == pytest.approx(spec.useful_from) and spec.useful_from > 8  # A-B-C-D-O's last stage
    assert len(spec.notes) == 1 and "moved to" in spec.notes[0]
    late = SP.validate_space({**stepwise, "search": {"grace_period": 11}})
    assert late.rungs == (11,) and not late.notes
    for name in PACKAGED:  # the packaged spaces: no rung before every plan's values predict its end
        spec = SP.load_space(SP.SPACE_DIR / f"{name}.yaml")
        assert not spec.rungs or spec.rungs[0] >= spec.useful_from, name


def test_asha_is_refused_with_what_replaced_it():
    with pytest.raises(UserError, match=r"^search\.scheduler: got 'asha'; allowed: halving, fifo"):
        SP.validate_space({"base": BASE, "search": {"scheduler": "asha"}})


BAD_CASES = [
    (["--set", "resources.gpu=0.5"], "resources.gpu"),
    (["--set", "resources.cpu=64"], "resources.cpu"),
    (["--set", "space.optim.foo={uniform: [0.1, 0.2]}"], "space.optim.foo"),
    (["--set", "space.optim.lr={loguniform: [0.3, 0.01]}"], "space.optim.lr"),
    (["--set", "space.hard_batch.delta={choice: []}"], "space.hard_batch.delta"),
    (["--set", "space.seed={grid: [0, 1]}"], "space.seed"),
    (["--set", "search.searcher=bayes"], "search.searcher"),
    (["--set", "search.scheduler=hyperband"], "search.scheduler"),
    (["--set", "space.hard_batch.delta={uniform: [0, 1]}", "--set", "arms.delta<1=null"], "space.hard_batch.delta"),
    (["--set", "space.hard_batch.delta={uniform: [0.1, 1]}"], "arms.delta<1.hard_batch.delta"),
    (["--set", "arms.x={fixd: {}}"], "arms.x.fixd"),
    (["--set", "search.grace_period=100"], "search.grace_period"),
    (["--set", "base.optim.lr=zero"], "base.optim.lr"),
    (["--resume", "no-such-search"], "--resume"),
    (["BADFILE"], "nowhere"),
]


def test_bad_inputs_exit_2_with_one_error_line_and_no_ray(tmp_path):
    """Every bad input: exit 2, exactly one `error:` line naming the key, no traceback, Ray never imported."""
    cases = [[a.replace("BADFILE", str(tmp_path / "bad.yaml")) for a in args] + ["--out", str(tmp_path)]
             for args, _ in BAD_CASES]
    (tmp_path / "bad.yaml").write_text("# a bad space\nbase: {epochs: 2}\nnowhere: {x: 1}\n")
    script = textwrap.dedent("""
        import contextlib, io, json, sys
        from tune_hardbatch.cli import main
        out = []
        for argv in json.loads(sys.argv[1]):
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                code = main(["search", *argv])
            out.append([code, err.getvalue()])
        print(json.dumps({"results": out, "ray_imported": "ray" in sys.modules}))
    """)
    proc = subprocess.run([sys.executable, "-c", script, json.dumps(cases)], capture_output=True, text=True,
                          env=ENV, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    for (args, key), (code, err) in zip(BAD_CASES, report["results"]):
        lines = err.strip().splitlines()
        assert code == 2, (args, err)
        assert len(lines) == 1 and lines[0].startswith("error: ") and key in lines[0], (args, err)
        assert "Traceback" not in err
    assert not report["ray_imported"], "bad input must be rejected before Ray is even imported"
    assert not any(p.name != "bad.yaml" for p in tmp_path.iterdir()), "nothing written for bad input"


def test_describe_gives_a_trials_label_and_the_params_that_apply():
    spec = SP.load_space(None)
    strategy, family, active = spec.describe({"hard_batch.delta": 0.5, "trim.schedule": "none", "trim.p_end": 0.3,
                                              "not.a.dim": 1})
    assert strategy == "delta=0.5" and family == "delta" and "trim.p_end" not in active and "not.a.dim" not in active
    assert spec.describe({"hard_batch.delta": 5.0}) == ("invalid", "invalid", {"hard_batch.delta": 5.0})
