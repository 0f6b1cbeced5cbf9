"""`python -m core estimate`: parameter counts (and, as the engine grows, memory) per method."""

from __future__ import annotations

import argparse

from core.cli._common import (
    add_method_flags,
    add_model_flags,
    human_bytes,
    human_count,
    method_choices,
    model_from_args,
    print_json,
    print_table,
)
from core.estimate import EstimateReport, estimate
from core.scenario import Scenario


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("estimate", help="trainable parameters and saved size per method")
    add_model_flags(parser)
    add_method_flags(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    choices, everything = method_choices(args)
    scenario = Scenario(model_from_args(args), tuple(choices), args.task or "", args.num_labels)
    report = estimate(scenario, skip_inapplicable=everything)
    if args.json:
        payload = report.to_dict()
        if not everything:  # one method: a flat object
            payload = {k: v for k, v in payload.items() if k != "methods"} | payload["methods"][0]
        print_json(payload)
    else:
        render(report)
    return 0


def render(report: EstimateReport) -> None:
    print(f"{report.model} ({report.model_origin}, {report.task})")
    rows = []
    for m in report.methods:
        if m.count is None:
            rows.append([m.label, "n/a", "", "", "", m.error])
            continue
        c = m.count
        rows.append(
            [m.label, human_count(c.trainable_params), human_count(c.total_params), f"{100 * c.trainable_share:.4f}%",
             human_bytes(c.adapter_bytes), ""]
        )
    print_table(["method", "trainable", "total", "share", "saved size", "note"], rows)
