"""`python -m core models`: the offline catalogue, so users know which ids work without network."""

from __future__ import annotations

import argparse
from typing import Any

from core import catalogue
from core.cli._common import print_json, print_table
from core.models import ROUTING_FIELDS
from core.units import human_count


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="list the offline model catalogue")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run)


def experts(config: dict[str, Any]) -> str:
    """'MoE 128 experts, top-8' for a mixture-of-experts config (its text part for multimodal ones), else 'dense'."""
    section = config.get("text_config") or config
    for count_field, routing in ROUTING_FIELDS.items():
        count = section.get(count_field)
        if isinstance(count, int) and count > 1:
            top = next(section[r] for r in routing if section.get(r))
            return f"MoE {count} experts, top-{top}"
    return "dense"


def run(args: argparse.Namespace) -> int:
    entries = sorted(catalogue.entries().values(), key=lambda e: e.repo_id.lower())
    kinds = {e.repo_id: experts(e.load_config()) for e in entries}
    if args.json:
        print_json(
            {
                "models": [
                    {
                        "id": e.repo_id,
                        "family": e.family,
                        "params": e.params,
                        "experts": kinds[e.repo_id],
                        "aliases": list(e.aliases),
                    }
                    for e in entries
                ]
            }
        )
        return 0
    print_table(
        ["id", "family", "params", "experts", "aliases"],
        [[e.repo_id, e.family, human_count(e.params), kinds[e.repo_id], ", ".join(e.aliases)] for e in entries],
    )
    return 0
