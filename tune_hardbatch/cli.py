"""`tune-hardbatch train | search | report`. User errors: one `error:` line on stderr, exit 2."""

from __future__ import annotations

import argparse
import json
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
    return parser


def cmd_train(args) -> int:
    from .config import config_from_file
    from .train import json_safe, run_training

    cfg = config_from_file(args.config, args.sets)
    summary = run_training(cfg, args.out, progress=not args.quiet)
    print(json.dumps(json_safe({k: v for k, v in summary.items() if k != "final"})), flush=True)
    return 0


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return {"train": cmd_train}[args.command](args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
