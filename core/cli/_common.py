"""Flags and rendering shared by sub-commands: model selection, method knobs, JSON and tables."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from core.memory.setup import (
    ATTENTIONS,
    DEFAULT_MFU,
    OFFLOADS,
    OPTIMIZERS,
    PRECISIONS,
    QUANTIZATIONS,
    SHARDINGS,
    TrainingSetup,
)
from core.models import ResolvedModel, resolve_model
from core.registry import KNOBS, MethodChoice, choices_for, get_method, method_ids
from core.skeleton import TASKS


def add_model_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="Hub repo id, catalogue alias, config.json or model folder")
    parser.add_argument("--task", choices=TASKS, help="head to build (default: from the config's architecture)")
    parser.add_argument("--num-labels", type=int, default=2, help="labels of a sequence-classification head")
    parser.add_argument("--revision", help="Hub revision (branch, tag or commit) for a config download")
    parser.add_argument("--trust-remote-code", action="store_true", help="allow a model folder's own code")


def add_method_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--method", required=True, help=f"one of {', '.join(method_ids())}, a comma list of them, or 'all'"
    )
    for knob in KNOBS.values():
        parser.add_argument(knob.cli_flag, type=knob.kind, help=knob.help)


def add_training_flags(parser: argparse.ArgumentParser) -> None:
    """How the model is trained: what the memory, fit, time and cost estimates are for."""
    group = parser.add_argument_group("training")
    group.add_argument("--batch-size", type=int, default=1, help="micro-batch per GPU (default 1)")
    group.add_argument("--seq-len", type=int, default=512, help="tokens per sequence (default 512)")
    group.add_argument("--precision", default="bf16-mixed", help=f"one of {', '.join(PRECISIONS)}")
    group.add_argument("--optimizer", default="adamw", help=f"one of {', '.join(OPTIMIZERS)}")
    group.add_argument("--gradient-checkpointing", action="store_true", help="recompute each block in backward")
    group.add_argument("--attention", default="sdpa", help=f"one of {', '.join(ATTENTIONS)}")
    group.add_argument("--quantization", default="auto",
                       help=f"base weights: one of {', '.join(QUANTIZATIONS)} (auto: NF4 for qlora, none otherwise)")
    group.add_argument("--gpus", type=int, default=1, help="data-parallel GPUs (default 1)")
    group.add_argument("--sharding", default="none", help=f"one of {', '.join(SHARDINGS)}")
    group.add_argument("--offload", default="none", help=f"one of {', '.join(OFFLOADS)} (needs --sharding)")
    group.add_argument("--gpu", help="GPU to fit on, e.g. A100-80GB, H100, RTX-4090 (catalogue: data/gpus.csv)")
    group.add_argument("--gpu-price", type=float, help="override the catalogue's USD per GPU-hour")
    group.add_argument("--dataset-tokens", type=int, help="tokens in the training set (for time and cost)")
    group.add_argument("--epochs", type=float, default=1.0, help="passes over the dataset (default 1)")
    group.add_argument("--mfu", type=float, default=DEFAULT_MFU,
                       help=f"model-FLOPs utilisation (default {DEFAULT_MFU})")


def training_from_args(args: argparse.Namespace) -> TrainingSetup:
    return TrainingSetup(
        batch_size=args.batch_size, seq_len=args.seq_len, precision=args.precision, optimizer=args.optimizer,
        gradient_checkpointing=args.gradient_checkpointing, attention=args.attention, gpus=args.gpus,
        sharding=args.sharding, offload=args.offload, gpu=args.gpu, gpu_price=args.gpu_price,
        dataset_tokens=args.dataset_tokens, epochs=args.epochs, mfu=args.mfu, quantization=args.quantization,
    )


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


def print_json(payload: dict[str, Any]) -> None:
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
