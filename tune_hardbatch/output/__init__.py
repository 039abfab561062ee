"""What the user sees: text, tables, plots, logs and the report.

- primitives, below every other room: `formats` (values as text), `plots` (PNG plots with matplotlib's
  Agg backend), `logs` (the libraries' log lines to a file); they import only `errors` and `metrics`;
- views, above the verdict they show: `console` (what a search prints), `live` (the live table while it
  runs), `report` (`tune-hardbatch report`: verdict, importances, arms, plots).

The views may import `training`, `search` and `verdict`; never tracking or ray_backend.
"""
