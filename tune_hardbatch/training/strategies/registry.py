"""The registry of strategies (torch-free): the declarations in order, and everything derived from them.

The built-in declarations (`catalog.BUILTIN`) come first, then those of installed plug-ins (the entry point
group `tune_hardbatch.strategies`, loaded on first use in every process), then those a config names in its
`plugins` list (`load_plugins`). From them: the config's strategy sections and their rules (`validate`; the
choices are checked by `config.validate` with the config's own), the search's gates and conditional keys
(`gate_keys`, `applies`), the baseline's "off" values (`baseline_off`) and the configs the loop test trains
(`examples`); `labels` derives a config's label, family and strategy keys. The implementations are imported only when a run trains
(`base.Strategies.build`).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Iterable, Optional

from ...errors import UserError
from ..ranges import check_all
from . import plugins
from .catalog import BUILTIN
from .declaration import Declaration

RESERVED = ("seed", "epochs", "device", "target_top1", "cudnn_benchmark", "eval_batch_size", "compute_budget",
            "plugins", "data", "model", "optim", "convergence", "sections")  # Config's own names
_DECLARED: dict[str, Declaration] = {d.name: d for d in BUILTIN}
_SOURCES: dict[str, str] = {d.name: "built-in" for d in BUILTIN}
_entry_points_loaded = False


def declarations() -> list[Declaration]:
    """Every declared strategy, in order (built-in, installed plug-ins, named plug-ins)."""
    _load_entry_points()
    return list(_DECLARED.values())


def declared(name: str) -> Optional[Declaration]:
    _load_entry_points()
    return _DECLARED.get(name)


def register(decl: Declaration, source: str) -> None:
    """Add a declaration; one that would take a built-in's (or another plug-in's) name, key or random
    stream is a `UserError` naming `source`."""
    have = _DECLARED.get(decl.name)
    if have is not None and (have is decl or _same(have, decl)):
        return
    clash = decl.name in RESERVED or have is not None
    if clash:
        owner = "the config's own" if decl.name in RESERVED else f"the {_SOURCES[decl.name]} strategy {decl.name!r}"
        raise UserError(source, f"declares the section {decl.name!r}, which is {owner}; allowed: a name of its own")
    streams = {d.stream: d.name for d in _DECLARED.values() if d.stream is not None}
    if decl.stream is not None and (decl.stream % 100 or decl.stream <= 0 or decl.stream in streams):
        taken = f"taken by {streams[decl.stream]}" if decl.stream in streams else "not a positive multiple of 100"
        raise UserError(source, f"declares random stream {decl.stream}, {taken}; allowed: a multiple of 100 "
                        f"not in {sorted(streams)}")
    _DECLARED[decl.name] = decl
    _SOURCES[decl.name] = source


def _same(a: Declaration, b: Declaration) -> bool:
    """The same declaration loaded twice (an entry point also named by reference)."""
    return a.section.__module__ == b.section.__module__ and a.section.__qualname__ == b.section.__qualname__


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for name, value in plugins.entry_points():
        where = f"entry point {name} ({plugins.GROUP})"
        register(plugins.declaration_of(plugins.resolve(value, where), where), where)


def load_plugins(refs: Iterable[str]) -> None:
    """Import and register the strategies a config's `plugins` list names."""
    _load_entry_points()
    for ref in refs:
        where = f"plugins: {ref}"
        register(plugins.declaration_of(plugins.resolve(ref, where), where), where)


def active(cfg) -> list[Declaration]:
    """The declarations a config turns on, in order."""
    return [d for d in declarations() if d.on(cfg)]


def validate(cfg) -> None:
    """Every strategy's rules (its choices are `config.choices()`); then what no two strategies may share:
    the sampler, the loss; and `compute_budget`, which is plain SGD's alone."""
    for d in declarations():
        check_all(getattr(cfg, d.name), d.ranges, prefix=f"{d.name}.")
        if d.rules is not None:
            d.rules(cfg)
    on = active(cfg)
    for hook, what in (("samples", "choose each step's samples"), ("sets_loss", "set the loss")):
        owners = [d for d in on if getattr(d, hook)]
        if len(owners) > 1:
            a, b = owners[0], owners[1]
            raise UserError(b.gate_key, f"{a.name} and {b.name} would both {what}, which one strategy does; "
                            f"allowed with {a.gate_key} set: {_off(b)}")
    _compute_budget(cfg, on)


def _off(d: Declaration) -> str:
    return "null" if d.off[0] is None else str(d.off[0])


def _compute_budget(cfg, on: list[Declaration]) -> None:
    budget = cfg.compute_budget
    if budget is None:
        return
    if not budget > 0:
        raise UserError("compute_budget", f"got {budget}; allowed: a number > 0 (compute-equivalents), or null")
    if on:
        raise UserError("compute_budget", f"is the budget of plain SGD only, but {on[0].gate_key} is set; allowed: "
                        f"null with {on[0].gate_key} set")


def owner(key: str) -> Optional[Declaration]:
    """The declaration whose section holds dotted `key`."""
    return declared(key.partition(".")[0]) if "." in key else None


def gate_keys() -> tuple[str, ...]:
    """The gates of strategies with conditional fields: searched before the keys that depend on them."""
    return tuple(d.gate_key for d in declarations() if d.applies is not None)


def applies(key: str, values: dict, base) -> bool:
    """Whether dotted `key` matters given the (decoded) values sampled so far and the base config."""
    d = owner(key)
    if d is None or d.applies is None:
        return True
    section = getattr(base, d.name)
    fields = {f: values.get(f"{d.name}.{f}", getattr(section, f)) for f in section.__dataclass_fields__}
    return d.field_applies(key.partition(".")[2], SimpleNamespace(**fields))


def baseline_off() -> dict:
    """Every strategy's gate set to its first "off" value: plain SGD."""
    return {d.gate_key: d.off[0] for d in declarations()}


def off_values() -> dict[str, tuple]:
    """Every strategy's gate and all the values that turn it off (Selective Backprop: null or keep 1.0)."""
    return {d.gate_key: tuple(d.off) for d in declarations()}


def examples() -> dict[str, dict]:
    """Every declared strategy's example configs, plus plain SGD: what the loop test trains."""
    out = {"plain": {}}
    for d in declarations():
        out.update(d.examples)
    return out
