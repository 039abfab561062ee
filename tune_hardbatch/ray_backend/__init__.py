"""The Ray backend: the only part of the package that imports Ray.

- `driver`: `run_search` connects to (or starts) Ray and runs a search's phases in order, each taking and
  giving trial records (`trials.Trial`): `search` (the Tuner), `confirm` (arms x seeds), the verdict
  (`judgement.judge`), `publish` (results.csv, best configuration, report, MLflow, what is printed);
- `tuner`: the searcher (Optuna TPE, random, grid), the scheduler (synchronous halving, FIFO) and the Tuner, new or
  restored for `--resume`;
- `worker`: the function trainable that runs one trial inside a Ray worker;
- `checkpoints`: the checkpoint policy: when a trial saves, what is kept, loading with fallback, pruning;
- `callbacks`: the live view, MLflow tracking and checkpoint pruning as Ray Tune callbacks;
- `ray_private`: every use of a private Ray API, each with its why and a check that names the symbol;
- `faults`: the test hook that makes trials fail on purpose.

Python: `run_search(space, sets, address, resume, out, callbacks=...)` returns the results.csv path;
`callbacks` adds `ray.tune.Callback`s, or is a function `(SearchSpace, experiment_dir)` returning them.
`search.space.load_space` validates without running.
"""

__all__ = ["SearchFailed", "run_search"]


def __getattr__(name: str):
    """`run_search` and `SearchFailed` from `driver`, imported on first use: a Ray worker imports this package
    for `worker` alone, and the driver's side (the verdict, scipy) would add ~0.7 s to each new worker."""
    if name in __all__:
        from . import driver

        return getattr(driver, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
