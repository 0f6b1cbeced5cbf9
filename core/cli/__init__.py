"""`python -m core`: one sub-command per module in this package.

Each module `core/cli/<name>.py` exposes `register(subparsers)`, which adds its parser and sets
`handler=<function(args) -> int>`; modules whose name starts with `_` hold shared helpers. Bad input raises
`InputError` anywhere below; `main` turns it into one line on stderr and exit code 2, with no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence
from typing import NoReturn

from core.errors import InputError


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports bad arguments in one line (exit 2) instead of usage plus message."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message} (see: {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


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
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
