"""`tune-hardbatch train | search | report`. User errors: one `error:` line on stderr, exit 2."""

from __future__ import annotations

import argparse
import atexit
import json
import os
import sys

from .errors import UserError


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own errors: one line, exit 2
        raise UserError("usage", message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tune-hardbatch", description="Hyperparameter search for hard-sample training "
                     "strategies (hard mini-batch selection, trimming, step-wise splits).")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    train = sub.add_parser("train", help="one training run with a progress bar")
    train.add_argument("config", nargs="?", help="training config YAML (or a search space: its `base`)")
    train.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config key (repeatable), e.g. --set hard_batch.delta=0.5")
    train.add_argument("--out", help="directory for config.yaml, metrics.jsonl, summary.json, curves.png")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    search = sub.add_parser("search", help="a hyperparameter search (Ray Tune, Optuna, successive halving)",
                            description="Run a search space (default: the packaged search_spaces/default.yaml) "
                            "as a Ray Tune run; writes OUT/NAME/results.csv and prints the best configuration "
                            "last.")
    search.add_argument("space", nargs="?", help="search-space YAML (default: the packaged default.yaml)")
    search.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="override a space-file key (repeatable): search.num_samples=4, resources.cpu=1, "
                        "run.name=x, base.epochs=3 (a plain config key means base.KEY; fixing a searched "
                        "key drops its dimension), space.optim.lr='{loguniform: [0.01, 0.1]}'")
    search.add_argument("--address", help="join a Ray cluster: auto or HOST:PORT (default: a local Ray)")
    search.add_argument("--resume", metavar="NAME", help="continue the interrupted search OUT/NAME")
    search.add_argument("--out", help="storage directory (default: run.storage, else ./tune_results)")
    report = sub.add_parser("report", help="tables and plots from a finished or running search")
    report.add_argument("name", metavar="NAME|PATH", help="a search name under --out, or its directory")
    report.add_argument("--out", help="storage directory holding NAME (default ./tune_results)")
    report.add_argument("--format", choices=("md", "csv", "json"), default="md", help="table format on stdout")
    report.add_argument("--sync", action="store_true",
                        help="first upload to MLflow whatever is missing (after a tracking-server outage)")
    return parser


def cmd_train(args) -> int:
    from .metrics import json_safe
    from .training.config import config_from_file
    from .training.run import run_training

    cfg = config_from_file(args.config, args.sets)
    if args.out:
        from .search.storage import check_writable

        check_writable(args.out, "--out")
    from .training.inputs import check_inputs

    check_inputs([cfg])  # data, batches and model, one line each: before anything is decoded or trained
    summary = run_training(cfg, args.out, progress=not args.quiet)
    print(json.dumps(json_safe({k: v for k, v in summary.items() if k != "final"})), flush=True)
    return 0


def cmd_search(args) -> int:
    from .search.prepare import prepare_search

    prepared = prepare_search(args.space, args.sets, args.resume, args.out, args.address)  # before Ray
    from .ray_backend import SearchFailed, run_search

    try:
        run_search(prepared=prepared)
    except SearchFailed as exc:
        print(f"search failed: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_report(args) -> int:
    from .output.report import build_report, render
    from .search.history import find_experiment

    exp_dir = find_experiment(args.name, args.out)
    if args.sync:
        from .tracking import sync_search

        counts = sync_search(exp_dir)
        print(f"synced {exp_dir.name} to MLflow: {counts['runs_created']} runs created, "
              f"{counts['metrics_logged']} metric values uploaded", file=sys.stderr)
    _, rows, report, plots = build_report(exp_dir)
    # Markdown: the whole report (the verdict first); csv / json: the table of arms
    print(report.read_text() if args.format == "md" else render(rows, args.format, f"Search {exp_dir.name}"), end="")
    print(f"report: {report}; plots: {', '.join(str(p) for p in plots)}", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return {"train": cmd_train, "search": cmd_search, "report": cmd_report}[args.command](args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


def run() -> None:
    """The console script (and `python -m tune_hardbatch`): `main`, then a quick exit.

    When `main` returns, every file is closed and every run ended (MLflow's runs, Ray's shutdown). The
    exit handlers still run (logging's flush of libraries.log, any library's own), then the process ends
    without the interpreter's teardown of torch, Ray's core worker and gRPC, which took 3 s after a
    search in which nothing was left to do."""
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    atexit._run_exitfuncs()  # the handlers os._exit would skip (CPython's own runner, as at a normal exit)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
