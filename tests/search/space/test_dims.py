"""Search dimensions (`space.dims`): define-by-run sampling with Optuna, which parameters are active, list
encoding, a trial's config and its strategy label. No Ray here."""

from __future__ import annotations

from search_helpers import BASE

from tune_hardbatch.search import space as SP
from tune_hardbatch.training.config import build_config
from tune_hardbatch.training.strategies.labels import strategy_name


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
