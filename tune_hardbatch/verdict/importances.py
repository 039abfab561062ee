"""How much each searched dimension mattered for the validation metric: Optuna's fANOVA over finished trials.

`param_importances(trials, dims, metric, mode, base)` takes the trials of `history.load_trials` and the
search's dimensions and answers with plain data (no Optuna object escapes); `importances_markdown` renders
it for the report. Optuna is imported only inside the functions (loading a space must stay cheap).

Conditional parameters (`trim.p_end` exists only when `trim.schedule` is not none, `stepwise.*` only with
step-wise splits) are not in every trial: the global importances cover the parameters every used trial
has; each conditional parameter is scored again over the subset of trials where it applies (with that
subset's other parameters) and reported apart, with the condition and the subset's size.

Evaluator: fANOVA (a random forest, then the variance of the forest's marginals). With the 10-40 trials a
search has, PED-ANOVA's top quantile (10 % by default) would hold 1-4 trials, and it is still marked
experimental; fANOVA uses every trial and is deterministic for a fixed seed.
"""

from __future__ import annotations

from typing import Iterable, Union

from ..metrics import is_finite
from ..search.space.dims import Dim, active_params, decode
from ..search.trials import Trial
from ..training.config import Config, build_config
from ..training.strategies import registry

EVALUATOR = "fANOVA"
MIN_TRIALS = 3  # fewer usable trials: no importances at all
SEED = 0


def param_importances(trials: list[Trial], dims: Iterable[Dim], metric: str, mode: str,
                      base: Union[Config, dict, None] = None) -> dict:
    """Importance of each searched dimension for `metric` (the last report's) over the finished trials.

    `base`: the search's base config (`SearchSpace.base_cfg`, or its flat dict `base_flat`) - it decides
    which parameters apply when a gate key (trim.schedule, stepwise.fractions) is not searched; None means
    the config defaults. Returns {"evaluator", "metric", "n_trials", "values": {key: importance}
    (descending), "conditional": {key: {"n", "value", "among"}}, "warning": str or None}.
    """
    base_cfg = base if isinstance(base, Config) else build_config(None, base or {})
    dims = list(dims)
    searched = [d for d in dims if _searched(d)]
    rows = _usable(trials, dims, metric, base_cfg)  # activity needs every dimension, searched or not
    result = {"evaluator": EVALUATOR, "metric": metric, "n_trials": len(rows), "values": {},
              "conditional": {}, "warning": None}
    keys_searched = {d.key for d in searched}
    varying = _varying(rows) & keys_searched
    if len(rows) < MIN_TRIALS or len(varying) < 2:
        result["warning"] = (f"no importances: {len(rows)} finished trial(s) with a finite {metric} and "
                             f"{len(varying)} varying dimension(s) (at least {MIN_TRIALS} and 2 needed)")
        return result
    if len({v for _, v in rows}) == 1:
        result["warning"] = f"no importances: every finished trial has the same {metric}"
        return result
    by_key = {d.key: d for d in searched}
    common = set.intersection(*(set(p) for p, _ in rows)) & varying
    result["values"] = _evaluate(rows, [k for k in by_key if k in common], by_key, mode)
    for key in [k for k in by_key if k in varying - common]:
        subset = [(p, v) for p, v in rows if key in p]
        keys = set.intersection(*(set(p) for p, _ in subset)) & _varying(subset) & keys_searched
        if len(subset) < MIN_TRIALS or key not in keys or len({v for _, v in subset}) == 1:
            continue
        scores = _evaluate(subset, [k for k in by_key if k in keys], by_key, mode)
        result["conditional"][key] = {"n": len(subset), "value": scores[key],
                                      "among": _condition(key, subset, rows, base_cfg)}
    result["conditional"] = dict(sorted(result["conditional"].items(), key=lambda kv: (-kv[1]["value"], kv[0])))
    if len(rows) < max(10, 4 * len(searched)):
        result["warning"] = (f"importances from {len(rows)} finished trials of {len(searched)} dimensions: "
                             "indicative only")
    return result


def importances_markdown(result: dict) -> str:
    """A small table (global rows, then conditional ones with their condition) and the warning line."""
    lines = []
    if result.get("values") or result.get("conditional"):
        lines += [f"Importance of each searched dimension for `{result.get('metric', 'the metric')}` "
                  f"({result['evaluator']}, {result['n_trials']} finished trials; the global values sum to 1). Only "
                  "trials that trained their whole budget count: those stopped at a rung are left out, so this "
                  "describes the survivors, not the whole space:",
                  "", "| dimension | importance | trials |", "|---|---:|---:|"]
        lines += [f"| `{k}` | {v:.3f} | {result['n_trials']} |" for k, v in result["values"].items()]
        lines += [f"| `{k}` (among {c['among']}) | {c['value']:.3f} | {c['n']} |"
                  for k, c in result["conditional"].items()]
    if result.get("warning"):
        lines += ["", f"> Warning: {result['warning']}."] if lines else [f"> {result['warning']}."]
    return "\n".join(lines).strip() + "\n"


def _searched(dim: Dim) -> bool:
    """A dimension that can vary and is not a seed (a seed's importance is noise by design)."""
    last = dim.key.split(".")[-1]
    if last == "seed" or last.endswith("_seed"):
        return False
    if dim.kind in ("choice", "grid"):
        return len(dim.values) > 1
    return dim.low != dim.high


def _encoded(dim: Dim, value):
    """The trial's value as the study holds it (a dimension's encoded choice, a number in range), or None."""
    if dim.kind in ("choice", "grid"):
        matches = [v for v in dim.values if decode(v) == decode(value)]
        return ("ok", matches[0]) if matches else None
    try:
        number = int(value) if dim.kind == "int" else float(value)
    except (TypeError, ValueError):
        return None
    if dim.kind == "int" and number != value:
        return None
    return ("ok", number) if dim.low <= number <= dim.high and is_finite(number) else None


def _usable(trials: list[Trial], dims: list[Dim], metric: str, base: Config) -> list[tuple[dict, float]]:
    """(active encoded params, value) of each finished trial whose last report has a finite metric."""
    rows = []
    for t in trials:
        raw_params = t.params
        if t.status != "finished" or not t.history or not any(d.key in raw_params for d in dims):
            continue  # unfinished, or not a search trial (a confirmation trial has only seed and arm)
        value = t.final(metric)
        if not is_finite(value):
            continue
        params = {}
        for key, raw in active_params(raw_params, dims, base).items():
            enc = _encoded(next(d for d in dims if d.key == key), raw)
            if enc is not None:
                params[key] = enc[1]
        rows.append((params, float(value)))
    return rows


def _varying(rows: list[tuple[dict, float]]) -> set[str]:
    """Keys that take at least two values among the rows."""
    seen: dict[str, set] = {}
    for params, _ in rows:
        for k, v in params.items():
            seen.setdefault(k, set()).add(repr(v))
    return {k for k, vs in seen.items() if len(vs) > 1}


def _distribution(dim: Dim):
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if dim.kind in ("choice", "grid"):
        return CategoricalDistribution(list(dim.values))
    if dim.kind == "int":
        step = dim.step or 1
        return IntDistribution(dim.low, dim.low + (dim.high - dim.low) // step * step, step=step)
    return FloatDistribution(float(dim.low), float(dim.high), log=dim.kind == "loguniform")


def _evaluate(rows: list[tuple[dict, float]], keys: list[str], by_key: dict, mode: str) -> dict[str, float]:
    """fANOVA importances of `keys` over an in-memory study of `rows`, sorted descending (ties by key)."""
    if not keys:
        return {}
    if len(keys) == 1:
        return {keys[0]: 1.0}
    import optuna

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(direction="minimize" if mode == "min" else "maximize",
                                    sampler=optuna.samplers.RandomSampler(seed=SEED))
        dists = {k: _distribution(by_key[k]) for k in keys}
        for params, value in rows:
            study.add_trial(optuna.trial.create_trial(params={k: params[k] for k in keys}, distributions=dists,
                                                      value=value))
        scores = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=SEED), params=keys)
    finally:
        optuna.logging.set_verbosity(verbosity)
    return dict(sorted(((k, float(v)) for k, v in scores.items()), key=lambda kv: (-kv[1], kv[0])))


def _condition(key: str, subset: list, rows: list, base: Config) -> str:
    """'trials with trim.schedule != none': the gate values that tell the subset from the other trials."""
    owner = registry.owner(key)
    if owner is None or owner.applies is None or owner.gate_key == key:
        return f"trials where {key} applies"
    gate = owner.gate_key
    default = getattr(getattr(base, owner.name), owner.gate)

    def values(part):
        return {_show(decode(p.get(gate, default))) for p, _ in part}

    inside, outside = values(subset), values([r for r in rows if key not in r[0]])
    if not outside or inside & outside:
        return f"trials where {key} applies"
    if outside == {_show(owner.off[0])}:
        return f"trials with {gate} set" if owner.off[0] is None else f"trials with {gate} != {_show(owner.off[0])}"
    if len(inside) == 1:
        return f"trials with {gate} = {next(iter(inside))}"
    return f"trials with {gate} not in ({', '.join(sorted(outside))})"


def _show(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return "-".join(f"{x:g}" if isinstance(x, float) else str(x) for x in value)
    return str(value)
