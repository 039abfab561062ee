"""Search spaces (`tune_hardbatch.space`): packaged spaces, --set rules, bad values, define-by-run sampling,
and bad `search` inputs answered with one line before Ray is imported. No Ray here."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import pytest
from search_helpers import BASE, ENV, REPO, run_cli

from tune_hardbatch import space as SP
from tune_hardbatch.config import build_config
from tune_hardbatch.errors import UserError
from tune_hardbatch.labels import strategy_name
from tune_hardbatch.launch import check_resources

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
    assert spec.num_trials >= 12 and spec.search.searcher == "optuna" and spec.search.scheduler == "asha"
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


def test_set_rules():
    spec = SP.load_space(None, ["epochs=3", "search.num_samples=4", "base.optim.lr=0.05", "run.name=x",
                               "space.trim.p_end=null", "resources.cpu=2",
                               "space.optim.momentum={uniform: [0.5, 0.9]}"])
    assert spec.base_cfg.epochs == 3 and spec.search.num_samples == 4 and spec.run.name == "x"
    assert spec.resources.cpu == 2
    assert "optim.lr" not in spec.dim_keys and spec.base_cfg.optim.lr == 0.05  # fixing a key drops its dim
    assert any("optim.lr" in note for note in spec.notes)
    assert "trim.p_end" not in spec.dim_keys and "optim.momentum" in spec.dim_keys
    with pytest.raises(UserError, match=r"^search\.nope: unknown key"):
        SP.load_space(None, ["search.nope=1"])
    with pytest.raises(UserError, match=r"^base\.optim\.lr"):
        SP.load_space(None, ["optim.lr=-1"])


@pytest.mark.parametrize("dims, key, fragment", [
    ({"hard_batch.delta": {"uniform": [0, 1]}}, "space.hard_batch.delta", "0 < delta <= 1"),
    ({"optim.lr": {"loguniform": [0.3, 0.01]}}, "space.optim.lr", "low < high"),
    ({"optim.lr": {"loguniform": [0, 0.1]}}, "space.optim.lr", "0 < low"),
    ({"hard_batch.delta": {"choice": []}}, "space.hard_batch.delta", "non-empty"),
    ({"seed": {"grid": [0, 1]}}, "space.seed", "searcher random or grid"),
    ({"optim.nope": {"uniform": [0, 1]}}, "space.optim.nope", "unknown config key"),
    ({"optim.batch_size": {"uniform": [32, 64]}}, "space.optim.batch_size", "int"),
    ({"optim.batch_size": {"int": [32, 100, 32]}}, "space.optim.batch_size", "multiple of the step"),
    ({"optim.lr": {"normal": [0, 1]}}, "space.optim.lr", "loguniform"),
    ({"trim.schedule": {"choice": ["linear"]}, "trim.p_start": {"choice": [0.5, 1.0]},
      "trim.p_end": {"uniform": [0.2, 0.8]}}, "space.trim.p_end", "p_end <= p_start"),
])
def test_bad_space_values_name_the_key(dims, key, fragment):
    with pytest.raises(UserError) as info:
        SP.validate_space({"base": BASE, "space": dims})
    assert info.value.key == key and fragment in str(info.value)


def test_selection_is_on_validation_data_unless_the_space_says_it_means_the_test_set():
    with pytest.raises(UserError, match=r"^search\.metric: got test_top1, a test-set metric.*allow_test_metric"):
        SP.validate_space({"base": BASE, "search": {"metric": "test_top1"}})
    plain_digits = {**BASE, "data": {"name": "digits"}}
    with pytest.raises(UserError, match=r"^search\.metric: val_top1 needs validation data.*val_fraction"):
        SP.validate_space({"base": plain_digits})
    spec = SP.validate_space({"base": plain_digits, "space": {"seed": {"grid": [0, 1]}},
                              "search": {"searcher": "grid", "metric": "test_top1", "allow_test_metric": True}})
    assert spec.self_confirming and not spec.confirms  # a seed grid selects nothing: its own verdict
    assert SP.validate_space({"base": BASE}).search.metric == "val_top1"
    for name in PACKAGED:  # packaged searches that select choose on validation
        packaged = SP.load_space(SP.SPACE_DIR / f"{name}.yaml")
        assert packaged.search.metric.startswith("val_") or packaged.self_confirming, name


def test_an_image_folder_with_its_own_val_split_is_validation_data(tmp_path):
    for split in ("train", "val", "test"):
        (tmp_path / split / "a").mkdir(parents=True)
    spec = SP.validate_space({"base": {"data": {"name": "imagefolder", "root": str(tmp_path)}}})
    assert spec.search.metric == "val_top1"


@pytest.mark.parametrize("section, key, fragment", [
    ({"confirm": {"seeds": -1}}, "confirm.seeds", "integer >= 0"),
    ({"confirm": {"max_arms": 0}}, "confirm.max_arms", "integer >= 1"),
    ({"confirm": {"sedes": 3}}, "confirm.sedes", "did you mean confirm.seeds"),
    ({"search": {"allow_test_metric": "yes"}}, "search.allow_test_metric", "true, false"),
])
def test_bad_confirm_and_search_keys(section, key, fragment):
    with pytest.raises(UserError) as info:
        SP.validate_space({"base": BASE, **section})
    assert info.value.key == key and fragment in str(info.value)


def test_a_grace_period_before_a_plans_last_stage_is_flagged():
    stepwise = {"base": {**BASE, "epochs": 12}, "space": {"stepwise.fractions": {"choice": [None, "A-B-C-D-O"]}},
                "search": {"grace_period": 2}}
    notes = SP.validate_space(stepwise).notes
    assert len(notes) == 1 and "before their last stage starts" in notes[0]
    assert not SP.validate_space({**stepwise, "search": {"grace_period": 8}}).notes
    for name in PACKAGED:  # the packaged spaces judge no plan before its last stage starts
        assert not [n for n in SP.load_space(SP.SPACE_DIR / f"{name}.yaml").notes if "last stage" in n], name


def test_conditional_sampling_and_list_encoding_with_optuna():
    """Define-by-run: trim.p_end only with trimming on, stepwise.epochs only with splits; lists round-trip."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = SP.validate_space({"base": {**BASE, "epochs": 4}, "space": {
        "trim.p_end": {"uniform": [0.2, 0.8]}, "trim.schedule": {"choice": ["none", "linear"]},
        "stepwise.epochs": {"choice": [[2, 2], [1, 3]]},
        "stepwise.fractions": {"choice": [None, [0.5, 1.0], "A-O"]}}})
    fn = SP.DefineByRun(spec.dims, spec.base_flat)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    seen = set()
    for _ in range(40):
        trial = study.ask()
        assert fn(trial) is None  # no constants: the strategy label is derived, never stored by Ray
        params = trial.params
        assert ("trim.p_end" in params) == (params["trim.schedule"] != "none")
        assert ("stepwise.epochs" in params) == (params["stepwise.fractions"] is not None)
        cfg = SP.trial_config(spec.base_flat, params, spec.dims)
        assert SP.StrategyLabel(spec.dims, spec.base_flat)(params) == \
            strategy_name(cfg)
        if params["stepwise.fractions"] == "[0.5, 1.0]":
            assert cfg.stepwise.fractions == (0.5, 1.0)
        if "stepwise.epochs" in params:
            assert cfg.stepwise.epochs in ((2, 2), (1, 3))
        seen.add((params["trim.schedule"], params["stepwise.fractions"]))
        study.tell(trial, 1.0)
    assert len(seen) >= 4
    # inactive parameters are not applied even when a (random) searcher sampled them
    cfg = SP.trial_config(spec.base_flat, {"trim.schedule": "none", "trim.p_end": 0.5}, spec.dims)
    assert cfg.trim.p_end == build_config(None, spec.base_flat).trim.p_end


BAD_CASES = [
    (["--set", "resources.gpu=0.5"], "resources.gpu"),
    (["--set", "resources.cpu=64"], "resources.cpu"),
    (["--set", "space.optim.foo={uniform: [0.1, 0.2]}"], "space.optim.foo"),
    (["--set", "space.optim.lr={loguniform: [0.3, 0.01]}"], "space.optim.lr"),
    (["--set", "space.hard_batch.delta={choice: []}"], "space.hard_batch.delta"),
    (["--set", "space.seed={grid: [0, 1]}"], "space.seed"),
    (["--set", "search.searcher=bayes"], "search.searcher"),
    (["--set", "search.scheduler=hyperband"], "search.scheduler"),
    (["--set", "space.hard_batch.delta={uniform: [0, 1]}"], "space.hard_batch.delta"),
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


def test_bad_resources_real_cli_exit_2(tmp_path):
    start = time.time()
    code, out, err = run_cli(["--set", "resources.gpu=0.5", "--out", str(tmp_path)], timeout=60)
    assert code == 2 and err.strip().startswith("error: resources.gpu") and "0 GPUs" in err
    assert len(err.strip().splitlines()) == 1 and time.time() - start < 60


def test_concurrency_is_the_sum_of_what_fits_on_each_node():
    spec = SP.load_space(None, ["resources.gpu=0.3", "resources.cpu=1"])
    assert check_resources(spec, 8, 1, nodes=[(8.0, 1.0)] * 16) == 48  # 3 per GPU, not 16 / 0.3 = 53
    assert check_resources(spec, 8, 1, nodes=[(8.0, 1.0), (2.0, 1.0), (8.0, 0.0)]) == 5  # CPUs bind too
