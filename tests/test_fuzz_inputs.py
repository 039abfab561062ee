"""Property-based (Hypothesis): search spaces, training configs and `--set` lists drawn from the schema, valid
and invalid, are either accepted (and round-trip: what validation resolved validates to itself) or refused
with one `UserError` naming a key, never another exception. Files too: any bytes as a space file.

The examples database lives outside the repository (`HYPOTHESIS_DB`, default under the system's temp folder),
so a failure found once is tried first next time on this machine and nothing is written into the checkout.
"""

from __future__ import annotations

import copy
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from hypothesis.database import DirectoryBasedExampleDatabase

from tune_hardbatch.errors import UserError
from tune_hardbatch.files import dump_yaml
from tune_hardbatch.search.space import load_space, validate_space
from tune_hardbatch.search.space.range_table import table
from tune_hardbatch.search.space.schema import KINDS, SCHEDULERS, SECTIONS, VAL_METRICS
from tune_hardbatch.search.space.sections import SECTION_DEFAULTS
from tune_hardbatch.training.config import all_keys, build_config, choices, to_dict

DB = Path(os.environ.get("HYPOTHESIS_DB", Path(tempfile.gettempdir()) / "tune-hardbatch-hypothesis"))
set_hypothesis_home_dir(str(DB))  # its caches too (else `.hypothesis/` in the working directory)
FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "120")), deadline=None,
                database=DirectoryBasedExampleDatabase(str(DB)),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
BASE = {"data": {"name": "digits", "val_fraction": 0.2, "train_limit": 300}, "epochs": 2, "device": "cpu"}
CONFIG_KEYS = all_keys()
SECTION_KEYS = [f"{s}.{k}" for s, keys in SECTION_DEFAULTS.items() for k in keys]
ODD_TEXT = ["0.5", "yes", "no", "on", "2024-01-01", "1e-3", "null", "delta=1", "v1.2", "a/b", 'q"', " x", "",
            "x" * 120, "caf\u00e9", "trim vs plain", "A-C-O", "linear", "random", "none", "\u00e9" * 110]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 2000), st.floats(allow_nan=True, allow_infinity=True),
                    st.floats(-2, 2), st.sampled_from(ODD_TEXT), st.text(max_size=8))
values = st.one_of(scalars, st.lists(scalars, max_size=4))
distributions = st.one_of(
    st.builds(lambda k, a: {k: a}, st.sampled_from(KINDS), st.lists(scalars, max_size=4)),
    st.dictionaries(st.sampled_from(KINDS + ("normal",)), values, max_size=2), values)
RANGES = {k.removeprefix("base."): r for k, r in table().items()}
CHOICES = {**choices(), "data.name": ("digits", "synthetic"), "search.searcher": ("optuna", "random"),
           "search.scheduler": SCHEDULERS, "search.metric": VAL_METRICS, "search.mode": (None, "max"),
           "tracking.enabled": (False,), "tracking.uri": (None,), "run.storage": (None,)}
BOOLS = {"optim.nesterov", "convergence.full_pass", "data.download", "allow_test_metric", "enabled",
         "log_checkpoint"}


def plausible(key: str):
    """Values a user would likely mean for `key` (within its range, one of its choices), so that most draws
    are valid and the round trip is exercised; `values` adds the rest."""
    name = key.rpartition(".")[2]
    if key in CHOICES:
        return st.sampled_from(list(CHOICES[key]))
    if key in BOOLS or name in BOOLS:
        return st.booleans()
    rng = RANGES.get(key)
    if rng is None:
        return values
    low = rng.low if rng.low is not None else -10
    high = rng.high if rng.high is not None else low + 50
    if rng.integer:
        return st.integers(int(low) + (1 if rng.low_open else 0), int(min(high, low + 50)))
    return st.floats(low, high, exclude_min=rng.low_open, exclude_max=rng.high_open)


def entry(keys: list[str], odd: list[str]):
    """(key, value): mostly a schema key with a plausible value; sometimes an odd key or any value."""
    known = st.sampled_from(keys).flatmap(lambda k: st.tuples(st.just(k), st.one_of(plausible(k), plausible(k),
                                                                                      plausible(k), values)))
    return st.one_of(*[known] * 7, st.tuples(st.sampled_from(odd), values))


config_entries = st.lists(entry(CONFIG_KEYS, ["nope", "optim..lr", ".epochs", "optim.lrr"]), max_size=2).map(dict)
config_keys = st.one_of(st.sampled_from(CONFIG_KEYS), st.sampled_from(["nope", "optim..lr", ".epochs", "optim.lrr"]))
names = st.one_of(st.sampled_from(ODD_TEXT), st.text(min_size=1, max_size=12))
arms = st.dictionaries(names, st.one_of(st.none(), st.fixed_dictionaries(
    {}, optional={"fixed": config_entries,
                  "space": st.dictionaries(config_keys, distributions, max_size=1)})), max_size=3)


@st.composite
def spaces(draw):
    raw = {"base": {**BASE, **draw(config_entries)},
           "space": draw(st.dictionaries(config_keys, distributions, max_size=2)),
           "search": {"scheduler": "fifo", "num_samples": 2}}
    for name in draw(st.lists(st.sampled_from(["search", "confirm", "resources", "tracking", "run"]),
                              max_size=3, unique=True)):
        given = draw(st.lists(entry([f"{name}.{k}" for k in SECTION_DEFAULTS[name]], [f"{name}.nope"]), max_size=2))
        raw.setdefault(name, {}).update({k.partition(".")[2]: v for k, v in given})
    if draw(st.booleans()):
        raw["arms"] = draw(arms)
    if draw(st.integers(0, 3)) == 0:
        raw[draw(st.sampled_from(SECTIONS + ("serach", 3)))] = draw(values)
    return raw


def set_items():
    odd = st.one_of(st.sampled_from(["arms.plain", 'arms."delta=1"', "arms.x.fixed.trim.p_end", "space.optim.lr",
                                     "a..b", "base.", "arms"]), st.text(max_size=10))
    known = entry(SECTION_KEYS + CONFIG_KEYS, ["search.nope"]).map(lambda kv: f"{kv[0]}={dump_yaml(kv[1]).strip()}")
    return st.lists(st.one_of(known, known, st.builds(lambda k, v: f"{k}={v}", odd, st.text(max_size=10))),
                    max_size=3)


def assert_one_line(exc: UserError) -> None:
    event(f"refused: {exc.key[:30]}")  # --hypothesis-show-statistics: what the draws reach
    message = str(exc)
    assert "\n" not in message and exc.key and message.startswith(f"{exc.key}: "), repr(message)


@pytest.mark.timeout(120)
@FUZZ
@given(raw=spaces(), sets=set_items())
def test_spaces_and_sets_are_accepted_and_round_trip_or_one_line(raw, sets):
    try:
        spec = load_space(copy.deepcopy(raw), sets)
    except UserError as exc:
        assert_one_line(exc)
        return
    event("accepted")
    again = validate_space(copy.deepcopy(spec.raw))
    assert again.raw == spec.raw and again.num_trials == spec.num_trials
    assert [a.name for a in again.arms] == [a.name for a in spec.arms]


@pytest.mark.timeout(120)
@FUZZ
@given(mapping=config_entries, sets=set_items())
def test_training_configs_round_trip_or_one_line(mapping, sets):
    try:
        cfg = build_config({**BASE, **mapping}, sets)
    except UserError as exc:
        assert_one_line(exc)
        return
    event("accepted")
    assert build_config(to_dict(cfg)) == cfg


@pytest.mark.timeout(120)
@FUZZ
@given(data=st.one_of(st.binary(max_size=200), spaces().map(lambda r: dump_yaml(r).encode()).flatmap(
    lambda b: st.integers(0, len(b)).map(lambda cut: b[:cut]))))
def test_any_bytes_as_a_space_file_are_a_space_or_one_line(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "space.yaml"
        path.write_bytes(data)
        try:
            load_space(str(path))
        except UserError as exc:
            assert_one_line(exc)
