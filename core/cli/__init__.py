"""`python -m core`: one sub-command per module in this package.

Each module `core/cli/<name>.py` exposes `register(subparsers)`, which adds its parser and sets
`handler=<function(args) -> int>`; modules whose name starts with `_` hold shared helpers. A module imports only
light modules at its top (the registry, `TrainingSetup`, the catalogues: no torch, transformers, peft, pandas
or duckdb) and the engine inside its handler, so `--help` and argument errors never wait for the engine
(tests/core/test_cli_exit_codes.py checks it).

Exit codes, the same for every sub-command: 0 done; 2 bad input (`InputError` anywhere below, or a bad flag:
one line on stderr saying what is wrong and how to fix it, nothing else printed); 130 interrupted (Ctrl-C, or a
cancelled calibration run); 1 a calibration run that failed while training (its folder says why) or an
unexpected internal error (a traceback: a bug to report).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence
from typing import NoReturn

from core.errors import InputError

EXIT_OK, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 2, 130


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports bad arguments in one line (exit 2) instead of usage plus message."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message} (see: {self.prog} --help)", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m core", description="TuneWise: PEFT or full fine-tuning, with evidence.")
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    package = importlib.import_module(__name__)
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue  # shared helpers, not sub-commands
        importlib.import_module(f"{__name__}.{info.name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one sub-command and return its exit code (see the module docstring)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or EXIT_OK)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted before it finished", file=sys.stderr)
        return EXIT_INTERRUPTED
