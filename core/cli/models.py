"""`python -m core models`: the offline catalogue, so users know which ids work without network."""

from __future__ import annotations

import argparse

from core import catalogue
from core.cli._common import print_json, print_table
from core.units import human_count


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="list the offline model catalogue")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    entries = sorted(catalogue.entries().values(), key=lambda e: e.repo_id.lower())
    if args.json:
        print_json(
            {
                "models": [
                    {"id": e.repo_id, "family": e.family, "params": e.params, "aliases": list(e.aliases)}
                    for e in entries
                ]
            }
        )
        return 0
    print_table(
        ["id", "family", "params", "aliases"],
        [[e.repo_id, e.family, human_count(e.params) if e.params else "?", ", ".join(e.aliases)] for e in entries],
    )
    return 0
