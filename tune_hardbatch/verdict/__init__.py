"""The verdict: what a search claims about each strategy, with its statistics and its words. No Ray.

- `stats`: Holm, paired t-intervals, TOST, minimum detectable differences, expected best of n;
- `comparisons`: per arm, test top-1 across seeds and its paired differences with the baselines;
  `sequential`: the primary family's decisions (looks, alpha spending, repeated intervals, Holm, the pooled
  error term); `words`: the verdict in sentences and tables;
- `confirm_plan`: which arms are confirmed (each arm's best trial at one budget), with which seeds and looks
  (the plan saved for --resume);
  `budget`: plain SGD trained for the compute of an arm that spends less; `judgement`: the confirmation's
  records, each look judged, and the verdict built from them (or from a seed grid's own trials);
- `tuning_curves`: the expected best validation value after n trials per arm at one budget, its bootstrap
  band and the expected gain of one more trial; `importances`: fANOVA;
- `variance`: an arm's seed-to-seed variance of test accuracy split into test-set sampling noise and the
  variance of the model's true accuracy (Jordan 2024), from its runs' per-example test correctness.

May import: `errors`, `metrics`, `output`'s primitives, `training`, `search`. Never tracking, ray_backend.
"""
