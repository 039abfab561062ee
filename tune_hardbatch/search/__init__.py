"""A search before and around Ray: its space, the checks before it starts, its trials' records on disk.

- `space/`: a search-space YAML -> a validated `SearchSpace` (dimensions, arms, corners), nothing started;
- `prepare/`: what `search` checks against the machine, the cluster and the disk before Ray starts;
- `trials`: one record per trial (`Trial`: params, label, family, reports, status), read by every part of a
  search; `history`: a search's directories on disk; `results`: results.csv and the best trial;
  `storage`: the storage directory, made absolute and checked writable; `rungs`: synchronous successive
  halving, the policy (where rungs fall, what each decides), acted out on Ray by `ray_backend.halving`.

May import: `errors`, `metrics`, `output`'s primitives, `training` (configs and labels; never torch at
import). Imports no Ray, no MLflow, no verdict.
"""
