"""The training config (`config`): defaults, then a YAML mapping, then dotted overrides; every bad key or value is
one `UserError` naming the key; flat and YAML forms round-trip."""

import dataclasses

import pytest
import yaml

from tune_hardbatch.errors import UserError
from tune_hardbatch.training import config as C
from tune_hardbatch.training.config import Config, apply_overrides, build_config
from tune_hardbatch.training.schedules import TRIM_SCHEDULES
from tune_hardbatch.training.strategies import registry


def error(*args) -> UserError:
    with pytest.raises(UserError) as info:
        build_config(*args)
    return info.value


def test_defaults_then_mapping_then_overrides():
    assert build_config() == Config() and Config().optim.lr == 0.1
    from_yaml = build_config({"optim": {"lr": 0.05, "batch_size": 32}, "epochs": 4})
    assert (from_yaml.optim.lr, from_yaml.optim.batch_size, from_yaml.epochs) == (0.05, 32, 4)
    assert from_yaml.optim.momentum == Config().optim.momentum  # keys not given keep their defaults
    both = build_config({"optim": {"lr": 0.05, "batch_size": 32}}, ["optim.lr=0.2"])
    assert (both.optim.lr, both.optim.batch_size) == (0.2, 32)  # the override wins, the rest of the mapping stays
    assert build_config({"optim": {"lr": 0.05}}, {"optim.lr": 0.3}).optim.lr == 0.3  # overrides as a dict too
    assert build_config({"optim.lr": 0.07}).optim.lr == 0.07  # dotted keys in the mapping


@pytest.mark.parametrize("sets, key, hint", [
    (["optim.lrr=0.1"], "optim.lrr", "did you mean optim.lr? allowed in optim: optim.name, optim.lr,"),
    (["epoch=3"], "epoch", "did you mean epochs? allowed: seed, epochs,"),
    (["optm.lr=3"], "optm.lr", "did you mean optim.lr? allowed: "),
    (["trim.p_ned=0.3"], "trim.p_ned", "did you mean trim.p_end?"),
])
def test_a_typo_names_the_key_and_the_closest_one(sets, key, hint):
    exc = error(None, sets)
    assert exc.key == key and f"{key}: unknown key; {hint}" in str(exc)


def test_an_unknown_key_in_an_unknown_section_lists_the_sections():
    exc = error({"nowhere": {"x": 1}})
    assert exc.key == "nowhere" and "allowed: seed, epochs" in str(exc) and "optim.*" in str(exc)
    assert "did you mean" not in str(exc)  # nothing is close to it
    exc = error({"optim": 3})  # a section given a value
    assert exc.key == "optim" and "unknown key" in str(exc)


@pytest.mark.parametrize("sets, key, fragment", [
    (["optim.batch_size=abc"], "optim.batch_size", "expected int, got 'abc'"),
    (["epochs=2.5"], "epochs", "expected int, got 2.5"),
    (["epochs=true"], "epochs", "expected int, got True"),  # a bool is not an int here
    (["optim.lr=.inf"], "optim.lr", "expected float, got inf"),
    (["optim.nesterov=1"], "optim.nesterov", "expected bool, got 1"),
    (["data.train_limit=x"], "data.train_limit", "expected int or null, got 'x'"),
    (["device=3"], "device", "got '3'; allowed: auto, cpu, cuda"),  # the text typed, not a number
    (["stepwise.epochs=[]"], "stepwise.epochs", "got []"),
    (["stepwise.epochs=[1, x]"], "stepwise.epochs", "expected"),
    (["stepwise.fractions=5"], "stepwise.fractions", "unknown split '5'"),  # taken as the text typed
    (["optim.lr=[1"], "optim.lr", "malformed YAML at line 1"),
])
def test_bad_values_name_the_key(sets, key, fragment):
    exc = error(None, sets)
    assert exc.key == key and str(exc).startswith(f"{key}: ") and fragment in str(exc)


def test_coercion_of_values_that_mean_the_type():
    cfg = build_config(None, ["epochs=3.0", "optim.lr=1", "data.train_limit=null", "target_top1=90"])
    assert cfg.epochs == 3 and type(cfg.epochs) is int
    assert cfg.optim.lr == 1.0 and type(cfg.optim.lr) is float
    assert cfg.data.train_limit is None and cfg.target_top1 == 90.0


def test_lists_become_tuples():
    cfg = build_config({"data": {"synthetic_shape": [1, 8, 8]},
                        "stepwise": {"fractions": [0.5, 1], "epochs": [2, 3]}})
    assert cfg.data.synthetic_shape == (1, 8, 8)
    assert cfg.stepwise.fractions == (0.5, 1.0) and all(type(f) is float for f in cfg.stepwise.fractions)
    assert cfg.stepwise.epochs == (2, 3)
    assert build_config(None, ["stepwise.fractions=A-O"]).stepwise.fractions == "A-O"  # a named plan stays a name
    hash(cfg)  # frozen and hashable all the way down


def test_apply_overrides_returns_a_copy_and_leaves_validation_to_the_caller():
    base = build_config({"epochs": 5})
    new = apply_overrides(base, {"optim.lr": 0.2, "seed": 3, "trim.schedule": "linear"})
    assert (new.optim.lr, new.seed, new.trim.schedule, new.epochs) == (0.2, 3, "linear", 5)
    assert base.optim.lr == 0.1 and base.seed == 0 and base.trim.schedule == "none"
    assert apply_overrides(base, {}) == base
    out_of_range = apply_overrides(base, {"optim.lr": -1.0})  # types are checked, ranges are not...
    with pytest.raises(UserError, match=r"^optim\.lr: got -1\.0"):
        C.validate(out_of_range)  # ...until validate (what build_config and trial_config call)
    with pytest.raises(UserError, match=r"^optim: unknown key"):
        apply_overrides(base, {"optim": {"lr": 1}})  # a whole section is not a key
    with pytest.raises(UserError, match=r"^optim\.lr: expected float"):
        apply_overrides(base, {"optim.lr": "fast"})


def test_flatten_descends_into_sections_only():
    assert C.flatten({"optim": {"lr": 1}, "seed": 3, "foo": {"a": 1}}) == \
        {"optim.lr": 1, "seed": 3, "foo": {"a": 1}}


def non_default() -> Config:
    return build_config({"seed": 7, "epochs": 4, "target_top1": 95.5, "data": {"val_fraction": 0.2,
                         "synthetic_shape": [1, 8, 8]}, "optim": {"name": "adamw", "lr": 0.003},
                         "hard_batch": {"delta": 0.5}, "trim": {"schedule": "step", "step_at": 0.3},
                         "stepwise": {"fractions": [0.5, 1.0], "epochs": [1, 3]}})


def test_flat_dict_round_trip():
    cfg = non_default()
    flat = C.flat_dict(cfg)
    assert flat["optim.lr"] == 0.003 and flat["stepwise.epochs"] == [1, 3]  # plain values for MLflow
    assert set(flat) == set(C.all_keys())
    assert build_config(None, flat) == cfg


def test_yaml_round_trip():
    cfg = non_default()
    text = C.to_yaml(cfg)
    assert "!!python" not in text  # plain YAML: tuples written as lists
    assert build_config(yaml.safe_load(text)) == cfg
    own = [f.name for f in dataclasses.fields(Config) if f.name not in ("plugins", "sections")]
    strategies = [d.name for d in registry.declarations()]
    assert list(yaml.safe_load(text)) == own[:-1] + strategies + own[-1:]  # the sections before convergence


@pytest.mark.parametrize("key, value", [
    ("optim.name", "adam"), ("device", "gpu"), ("data.name", "imagenet"), ("data.augment", "mixup"),
    ("optim.schedule", "linear"), ("trim.schedule", "bogus"), ("hard_batch.select", "hardest_first"),
    ("trim.select", "smallest"),
])
def test_choices_list_the_allowed_values(key, value):
    exc = error(None, {key: value})
    assert exc.key == key and str(exc) == f"{key}: got {value!r}; allowed: {', '.join(C.choices()[key])}"


def test_trim_schedules_are_the_registrys():
    assert C.choices()["trim.schedule"] == tuple(TRIM_SCHEDULES)
    for name in TRIM_SCHEDULES:
        assert build_config(None, {"trim.schedule": name}).trim.schedule == name


@pytest.mark.parametrize("sets", [["optim.lr"], ["=3"], [" =3"]])
def test_a_set_without_key_or_equals_sign_names_set(sets):
    exc = error(None, sets)
    assert exc.key == "--set" and repr(sets[0]) in str(exc)


def test_parse_sets_reads_yaml_values():
    assert C.parse_sets(["optim.lr=0.1", "a = [1, 2] ", "b=", "c=null", "d=x=y"]) == \
        {"optim.lr": 0.1, "a": [1, 2], "b": None, "c": None, "d": "x=y"}


@pytest.mark.parametrize("sets, key", [
    (["epochs=0"], "epochs"), (["data.val_fraction=1"], "data.val_fraction"), (["optim.momentum=1"], "optim.momentum"),
    (["optim.warmup=0"], "optim.warmup"), (["data.image_size=2"], "data.image_size"),
    (["data.name=imagefolder"], "data.root"), (["target_top1=101"], "target_top1"),
    (["data.synthetic_shape=[3, 8]"], "data.synthetic_shape"), (["convergence.patience=0"], "convergence.patience"),
])
def test_ranges_name_the_key(sets, key):
    assert error(None, sets).key == key


def test_config_files(tmp_path):
    (tmp_path / "train.yaml").write_text("optim: {lr: 0.02}\nepochs: 3\n")
    (tmp_path / "space.yaml").write_text("# a space\nbase: {epochs: 5}\nsearch: {num_samples: 2}\n")
    (tmp_path / "empty.yaml").write_text("")
    (tmp_path / "list.yaml").write_text("- 1\n")
    (tmp_path / "bad.yaml").write_text("a: 1\nb: [\n")
    cfg = C.config_from_file(str(tmp_path / "train.yaml"), ["epochs=6"])
    assert (cfg.optim.lr, cfg.epochs) == (0.02, 6)
    assert C.config_from_file(str(tmp_path / "space.yaml")).epochs == 5  # a space file's base block
    assert C.config_from_file(str(tmp_path / "empty.yaml")) == Config()
    assert C.config_from_file(None) == Config()
    for name, fragment in (("list.yaml", "must be a YAML mapping, got list"), ("bad.yaml", "malformed YAML at line"),
                           ("missing.yaml", "file not found")):
        with pytest.raises(UserError) as info:
            C.config_from_file(str(tmp_path / name))
        assert info.value.key == str(tmp_path / name) and fragment in str(info.value), name
