"""Flags and rendering shared by sub-commands: model selection, method knobs, JSON and tables.

Imported by every sub-command's parser, so it imports only light modules (no torch, pandas or duckdb).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from core.memory.setup import TrainingSetup
from core.models import TASKS, ResolvedModel, resolve_model
from core.registry import KNOBS, MethodChoice, choices_for, get_method, method_ids


def add_model_flags(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    parser.add_argument("--model", required=required, help="Hub repo id, catalogue alias, config.json or model folder")
    parser.add_argument("--task", choices=TASKS, help="head to build (default: from the config's architecture)")
    parser.add_argument("--num-labels", type=int, default=2, help="labels of a sequence-classification head")
    parser.add_argument("--revision", help="Hub revision (branch, tag or commit) for a config download")
    parser.add_argument("--trust-remote-code", action="store_true", help="allow a model folder's own code")


def add_method_flags(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    parser.add_argument(
        "--method", required=required, help=f"one of {', '.join(method_ids())}, a comma list of them, or 'all'"
    )
    for knob in KNOBS.values():
        parser.add_argument(knob.cli_flag, type=knob.kind, help=knob.help)


def add_training_flags(parser: argparse.ArgumentParser) -> None:
    """How the model is trained, one flag per `TrainingSetup` field (its help and choices are declared there)."""
    group = parser.add_argument_group("training")
    for spec in fields(TrainingSetup):
        flag = "--" + spec.name.replace("_", "-")
        meta = spec.metadata
        if spec.type in ("bool", bool):
            group.add_argument(flag, action="store_true", help=meta["help"])
            continue
        kind = meta["type"] or type(spec.default)
        choices = f"one of {', '.join(meta['choices'])}; " if meta["choices"] else ""
        default = "" if spec.default is None else f" (default {spec.default})"
        group.add_argument(flag, type=kind, default=spec.default, help=f"{choices}{meta['help']}{default}")


def training_from_args(args: argparse.Namespace) -> TrainingSetup:
    return TrainingSetup(**{spec.name: getattr(args, spec.name) for spec in fields(TrainingSetup)})


def model_from_args(args: argparse.Namespace) -> ResolvedModel:
    return resolve_model(args.model, trust_remote_code=args.trust_remote_code, revision=args.revision)


def method_choices(args: argparse.Namespace) -> tuple[list[MethodChoice], bool]:
    """The chosen methods and whether several were asked for ('all' or a comma list, e.g. lora,qlora,fft).

    With several methods a knob goes to every method that takes it; with one, a knob it does not take is an error.
    """
    given = {name: getattr(args, name) for name in KNOBS if getattr(args, name) is not None}
    names = [n.strip() for n in args.method.split(",") if n.strip()]
    if [n.lower() for n in names] == ["all"]:
        names = list(method_ids())
    if len(names) > 1:
        return list(choices_for(names, **given)), True
    return [MethodChoice(get_method(args.method).id, **given)], False


def print_json(payload: dict[str, Any] | list[dict[str, Any]]) -> None:
    json.dump(payload, sys.stdout, indent=2)
    sys.stdout.write("\n")


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A plain aligned text table (numbers right-aligned)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def fmt(cells: Sequence[str]) -> str:
        out = []
        for i, cell in enumerate(cells):
            numeric = cell[:1].isdigit() or (cell[:1] == "-" and cell[1:2].isdigit())
            out.append(cell.rjust(widths[i]) if numeric else cell.ljust(widths[i]))
        return "  ".join(out).rstrip()

    print(fmt(headers))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(fmt(row))
