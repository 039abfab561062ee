"""One frozen training config: defaults, then a YAML mapping, then dotted `key=value` overrides.

`build_config(yaml_mapping, overrides)` is the single entry point; Ray trial parameters are applied
with the same function (`apply_overrides`). Every bad key or value raises `UserError` naming the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from ..errors import UserError
from ..files import as_text, dump_yaml, load_yaml
from ..metrics import is_finite
from .datasets import DATASETS, NAMES
from .overrides import parse_sets
from .ranges import CONFIG_RANGES, check_all, describe
from .schedules import LR_SCHEDULES
from .strategies import registry


@dataclass(frozen=True)
class DataConfig:
    name: str = "digits"  # scikit-learn's bundled 8x8 digits: no download, trains in seconds on a CPU
    root: Optional[str] = None  # torchvision / imagefolder data root (made absolute)
    image_size: Optional[int] = None  # None keeps the native size; DyBAT trains CIFAR at 128
    train_limit: Optional[int] = None  # first n of a split_seed permutation (tests, quick looks); None: all
    test_limit: Optional[int] = None  # first n of a split_seed permutation of the test set; None: all of it
    val_fraction: float = 0.0  # stratified hold-out of the training set; 0: no split, train on all of it
    split_seed: int = 0  # fixes limits and the validation split apart from the trial seed: same data per arm
    augment: str = "auto"  # auto | none | crop | flip | crop_flip; auto = crop_flip, crop for digit data
    pad: Optional[int] = None  # crop padding; None = image side / 8 (4 px at 32 px, the CIFAR standard)
    download: bool = False  # torchvision download; only when asked (and online)
    cache_dir: Optional[str] = None  # decoded-uint8 cache for imagefolder; None = ~/.cache/tune-hardbatch
    synthetic_shape: tuple[int, ...] = (3, 32, 32)  # synthetic: C, H, W of the random images
    synthetic_train: int = 10000  # synthetic: training samples
    synthetic_test: int = 2000  # synthetic: test samples
    synthetic_classes: int = 10  # synthetic: classes


@dataclass(frozen=True)
class ModelConfig:
    name: str = "test_resnet"  # timm's 0.37M-parameter ResNet: a real ResNet that is fast on a CPU
    cifar_stem: Optional[bool] = None  # 3x3 stride-1 first conv, no max-pool; null = on for ResNets <= 64 px


@dataclass(frozen=True)
class OptimConfig:
    name: str = "sgd"  # sgd | adamw
    lr: float = 0.1  # peak learning rate (scaled per stage by stepwise.lr_multipliers)
    momentum: float = 0.9  # the usual SGD momentum (also DyBAT's)
    nesterov: bool = True  # Nesterov momentum: slightly better for short schedules, never worse in practice
    weight_decay: float = 5e-4  # standard for ResNets on CIFAR-sized data
    batch_size: int = 64  # B; the digits default has 1437 training samples -> N = 22 batches
    schedule: str = "onecycle"  # none | step | cosine | onecycle; restarts in every step-wise stage
    warmup: float = 0.25  # onecycle: fraction of a stage's steps spent rising to the peak
    label_smoothing: float = 0.0  # 0.1 helps strong CIFAR recipes; 0 keeps the papers' plain loss


@dataclass(frozen=True)
class ConvergenceConfig:
    tol: float = 0.01  # improvement smaller than tol x first train loss counts as no improvement
    patience: int = 3  # reports without such improvement that mark convergence
    full_pass: bool = False  # eval()-mode pass over the training set per report (DyBAT's e); off: it costs time


def _default_sections() -> tuple:
    return tuple((d.name, d.section()) for d in registry.declarations())


@dataclass(frozen=True)
class Config:
    seed: int = 0  # fixes partition, subsets, init and augmentation
    epochs: int = 15  # epoch-equivalents of back-propagations (E); digits plain reaches ~97% by then
    device: str = "auto"  # auto | cpu | cuda
    target_top1: Optional[float] = None  # percent; reports epochs_to_target when set
    cudnn_benchmark: Optional[bool] = None  # None: on for ResNet families, off for depthwise nets
    eval_batch_size: int = 1024  # evaluation batch; no drop_last, whole test set
    # plain SGD only: train for this many compute-equivalents (fractional), the schedule fully decayed
    # within them: the budget-matched baseline of a strategy that spends less than `epochs`
    compute_budget: Optional[float] = None
    # strategies from outside the package, "module:Name" each (`strategies.plugins`); installed plug-ins
    # (the entry point group tune_hardbatch.strategies) need no mention
    plugins: tuple[str, ...] = ()
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    convergence: ConvergenceConfig = field(default_factory=ConvergenceConfig)
    # every declared strategy's section (`strategies.registry`), read as an attribute: cfg.trim.schedule
    sections: tuple = field(default_factory=_default_sections)

    def __getattr__(self, name: str):
        if name.startswith("__") or name == "sections":
            raise AttributeError(name)
        for section, value in self.sections:
            if section == name:
                return value
        raise AttributeError(f"Config has no section {name!r}")


CHOICES = {
    "device": ("auto", "cpu", "cuda"),
    "data.name": NAMES,
    "data.augment": ("auto", "none", "crop", "flip", "crop_flip"),
    "optim.name": ("sgd", "adamw"),
    "optim.schedule": tuple(LR_SCHEDULES),
}


# ---------------------------------------------------------------------------------------------------
# Building


def build_config(mapping: Optional[dict] = None, overrides: Optional[list[str] | dict] = None) -> Config:
    """Defaults, then a nested YAML `mapping`, then dotted overrides ("key=value" strings or a dict). The
    strategies a `plugins` list names are loaded first: their sections are then keys like any other."""
    if mapping is not None and not isinstance(mapping, dict):
        raise UserError("config", f"must be a mapping of keys to values, got {type(mapping).__name__}")
    sets = (parse_sets(overrides) if isinstance(overrides, list) else dict(overrides)) if overrides else {}
    load_plugins((mapping or {}).get("plugins"))
    load_plugins(sets.get("plugins"))
    cfg = Config()
    if mapping is not None:
        cfg = apply_overrides(cfg, flatten(mapping))
    if sets:
        cfg = apply_overrides(cfg, sets)
    validate(cfg)
    return cfg


def load_plugins(refs) -> None:
    """Register the strategies a `plugins` value names (a list of "module:Name"); one line for a bad one."""
    if refs is None:
        return
    if isinstance(refs, str):
        refs = [refs]
    if not isinstance(refs, (list, tuple)) or not all(isinstance(r, str) for r in refs):
        raise UserError("plugins", f"expected a list of module:Name references, got {refs!r}")
    registry.load_plugins(refs)


def base_config(flat: dict) -> Config:
    """Defaults with dotted `flat` keys applied, types checked but cross-field rules not yet: a trial's base
    that its sampled values complete (`space.dims.trial_config` validates the whole), such as an arm's
    fixed `hard_batch.select: random` whose delta the arm searches."""
    return apply_overrides(Config(), flat)


def flatten(mapping: dict, prefix: str = "", where: str = "") -> dict[str, Any]:
    """Nested dict -> dotted keys. Sub-mappings of known sections are descended into. One key written twice
    (`optim: {lr: ...}` and `optim.lr: ...`) is an error naming both spellings (`where` prefixes the key)."""
    out: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    for key, value in mapping.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and _is_section(dotted):
            inner = flatten(value, dotted + ".", where)
            spellings = {k: f"{dotted}: {{{k[len(dotted) + 1:]}}}" for k in inner}
        else:
            inner, spellings = {dotted: value}, {dotted: dotted}
        for k, v in inner.items():
            if k in out:
                raise UserError(f"{where}{k}", f"given twice, as {spelled[k]!r} and as {spellings[k]!r}; allowed: "
                                "one of them")
            out[k], spelled[k] = v, spellings[k]
    return out


def apply_overrides(cfg: Config, dotted: dict[str, Any]) -> Config:
    """Return a copy of `cfg` with dotted keys replaced (type-checked). Ray trial params use this."""
    load_plugins(dotted.get("plugins"))
    cfg = _with_every_section(cfg)
    sections: dict[str, dict[str, Any]] = {}
    top: dict[str, Any] = {}
    for key, value in dotted.items():
        section, _, name = key.rpartition(".")
        if section and not _is_section(section) or _is_section(key) or \
                not _has_field(getattr(cfg, section) if section else cfg, name):
            raise UserError(key, unknown_key_message(key))
        owner = getattr(cfg, section) if section else cfg
        coerced = _coerce(value, _field_type(type(owner), name), key)
        (sections.setdefault(section, {}) if section else top)[name] = coerced
    strategies = dict(cfg.sections)
    for section, values in sections.items():
        replaced = dataclasses.replace(getattr(cfg, section), **values)
        (strategies if section in strategies else top)[section] = replaced
    return dataclasses.replace(cfg, **top, sections=tuple(strategies.items()))


def _with_every_section(cfg: Config) -> Config:
    """`cfg` with the default section of each strategy declared since it was made (a plug-in loaded later)."""
    have = {name for name, _ in cfg.sections}
    missing = [(d.name, d.section()) for d in registry.declarations() if d.name not in have]
    return dataclasses.replace(cfg, sections=cfg.sections + tuple(missing)) if missing else cfg


def to_dict(cfg: Config) -> dict:
    """Nested plain-Python dict (tuples become lists), for YAML/JSON."""
    def plain(v):
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return list(v) if isinstance(v, tuple) else v
    out = {}
    for f in dataclasses.fields(Config):
        if f.name == "convergence":  # the strategies' sections sit between optim and convergence
            out.update({name: dataclasses.asdict(section) for name, section in cfg.sections})
        if f.name == "plugins" and not cfg.plugins or f.name == "sections":
            continue
        value = getattr(cfg, f.name)
        out[f.name] = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
    return plain(out)


def to_yaml(cfg: Config) -> str:
    return dump_yaml(to_dict(cfg))


def flat_dict(cfg: Config) -> dict[str, Any]:
    """Dotted keys -> values (MLflow params, results tables)."""
    return flatten(to_dict(cfg))


def closest(key: str, candidates) -> Optional[str]:
    """The candidate most like `key` (a typo's likely meaning), or None when nothing is close."""
    found = difflib.get_close_matches(key, list(candidates), n=1, cutoff=0.6)
    return found[0] if found else None


def unknown_key_message(key: str) -> str:
    """'unknown key; did you mean X? allowed in <section>: ...' (only the keys of the nearest section)."""
    keys = all_keys()
    close = [c] if (c := closest(key, keys)) else []
    section = key.rpartition(".")[0]
    siblings = [k for k in keys if k.rpartition(".")[0] == section] if _is_section(section) else key_summary()
    hint = f"did you mean {close[0]}? " if close else ""
    return f"unknown key; {hint}allowed{' in ' + section if _is_section(section) else ''}: {', '.join(siblings)}"


def key_summary() -> list[str]:
    """Top-level keys and sections ('seed', ..., 'data.*', 'model.*', ...): what a config takes, briefly."""
    return [k for k in all_keys() if "." not in k] + ["plugins"] + [k + ".*" for k in to_dict(Config())
                                                                    if _is_section(k)]


def all_keys() -> list[str]:
    return list(flatten(to_dict(Config())).keys())


def config_from_file(path: Optional[str], sets: Optional[list[str]] = None) -> Config:
    """A training config file, or a search-space file whose `base` block is the config."""
    mapping = None
    if path is not None:
        mapping = load_yaml(path)
        if mapping is None:
            mapping = {}
        if not isinstance(mapping, dict):
            raise UserError(str(path), f"must be a YAML mapping, got {type(mapping).__name__}")
        if "base" in mapping:
            mapping = mapping["base"] or {}
    return build_config(mapping, sets or [])


# ---------------------------------------------------------------------------------------------------
# Types


def _is_section(key: str) -> bool:
    return key in {f.name for f in dataclasses.fields(Config) if dataclasses.is_dataclass(f.default_factory)} or \
        registry.declared(key) is not None


def _has_field(obj, name: str) -> bool:
    """A key of the config: `Config.sections` is where the strategies' sections are kept, not a key."""
    return dataclasses.is_dataclass(obj) and name in {f.name for f in dataclasses.fields(obj)} and \
        not (isinstance(obj, Config) and name == "sections")


def _field_type(cls, name: str):
    return typing.get_type_hints(cls)[name]


def _coerce(value: Any, hint, key: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        members = typing.get_args(hint)
        if value is None and type(None) in members:
            return None
        for member in (m for m in members if m is not type(None)):
            try:
                return _coerce(value, member, key)
            except UserError:
                pass  # try the next member; the error below names the whole union
        raise UserError(key, f"expected {_describe(hint)}, got {value!r}")
    if origin is tuple:
        (item_type, _) = typing.get_args(hint)
        if not isinstance(value, (list, tuple)) or not value:
            raise UserError(key, f"expected a non-empty list of {item_type.__name__}, got {value!r}")
        return tuple(_coerce(v, item_type, key) for v in value)
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif hint is float:
        if is_finite(value):
            return float(value)
    elif hint is str:
        value = as_text(value)  # a name or path that YAML typed as a number: the text the user typed
        if isinstance(value, str):
            return value
    raise UserError(key, f"expected {_describe(hint)}, got {value!r}")


def _describe(hint) -> str:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(m) for m in typing.get_args(hint))
    if origin is tuple:
        return f"a list of {typing.get_args(hint)[0].__name__}"
    return "null" if hint is type(None) else hint.__name__


# ---------------------------------------------------------------------------------------------------
# Validation (ranges and cross-field rules; strategy-specific rules live with the strategies)


def _check(ok: bool, key: str, allowed: str) -> None:
    if not ok:
        raise UserError(key, allowed)


def choices() -> dict[str, tuple]:
    """Every key with a closed set of values: the config's own and the declared strategies'."""
    declared = {f"{d.name}.{k}": v for d in registry.declarations() for k, v in d.choices.items()}
    return {**CHOICES, **declared}


def validate(cfg: Config) -> None:
    for key, allowed in choices().items():
        section, _, name = key.rpartition(".")
        value = getattr(getattr(cfg, section) if section else cfg, name)
        _check(value in allowed, key, f"got {value!r}; allowed: {', '.join(allowed)}")
    check_all(cfg, CONFIG_RANGES)
    d = cfg.data
    _check(len(d.synthetic_shape) == 3, "data.synthetic_shape",
           f"got {list(d.synthetic_shape)}; allowed: [channels, height, width], all >= 1")
    _check(not DATASETS[d.name].needs_root or d.root is not None, "data.root",
           f"{d.name} needs data.root: a directory with train/ and test/ (or val/) class folders")
    registry.validate(cfg)


__doc__ += "\nRanges of the numeric keys (`ranges.CONFIG_RANGES`; each strategy's are in its declaration)::\n\n" + \
    "".join(f"    {k}: {describe(r, k.rpartition('.')[2])}\n" for k, r in CONFIG_RANGES.items())
