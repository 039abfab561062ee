"""tune-hardbatch: does training on hard samples help? Find out by hyperparameter search.

Rooms by role, each a package whose docstring says what it holds and what it may import; dependencies
point down this list (tests/test_structure.py checks it):

- `errors`, `metrics`: the user-error type; what a report's numbers mean (shared by every room);
- `output`'s primitives (`formats`, `plots`, `logs`);
- `training`: one training run (config, data, models, schedules, the loop, the strategies);
- `search`: a search's space, the checks before it starts, its trials' records;
- `verdict`: statistics, the confirmation's plan, budget matching, judgement, words, tuning curves;
- `output`'s views (console, live view, report);
- `tracking`: MLflow; `ray_backend`: the only part that imports Ray; `cli`: the command line.
"""

__version__ = "0.1.0"
