"""`python -m core estimate`: parameter counts, per-GPU memory breakdown, fit, time and cost per method."""

from __future__ import annotations

import argparse
import sys

from core.cli._common import (
    add_method_flags,
    add_model_flags,
    add_training_flags,
    method_choices,
    model_from_args,
    print_json,
    print_table,
    training_from_args,
)
from core.estimate import EstimateReport, MethodEstimate, estimate
from core.memory.gpus import find_gpu
from core.scenario import Scenario
from core.units import human_bytes, human_count

_MEMORY = ("weights", "gradients", "optimizer", "activations", "temporaries", "allocated", "device")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("estimate", help="trainable parameters, GPU memory, fit, time and cost per method")
    add_model_flags(parser)
    add_method_flags(parser)
    add_training_flags(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    choices, everything = method_choices(args)
    training = training_from_args(args)
    if training.gpu:
        find_gpu(training.gpu)  # an unknown name fails before any model work
    scenario = Scenario(model_from_args(args), tuple(choices), args.task or "", args.num_labels, training)
    report = estimate(scenario, skip_inapplicable=everything)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        payload = report.to_dict()
        single = {k: v for k, v in payload.items() if k != "methods"} | payload["methods"][0]
        print_json(payload if everything else single)
    else:
        render(report)
    return 0


def render(report: EstimateReport) -> None:
    t = report.training
    print(f"{report.model} ({report.model_origin}, {report.task}) - batch {t['batch_size']} x {t['seq_len']} tokens, "
          f"{t['precision']}, {t['optimizer']}, {t['attention']}"
          f"{', checkpointing' if t['gradient_checkpointing'] else ''}, {t['gpus']} GPU(s)"
          f"{', ' + t['sharding'] if t['sharding'] != 'none' else ''}; memory per GPU at the step's peak")
    print("allocated: what torch.cuda.max_memory_allocated would show; device: what nvidia-smi shows (what must fit)")
    gpu = t.get("gpu")
    headers = ["method", "trainable", "share", "weights", "grads", "optim", "activ", "temp", "allocated", "device",
               "peak at"]
    if gpu:
        headers += ["fits", "max batch"]
    if t.get("dataset_tokens"):
        headers += ["hours", "USD"]
    rows = [_row(m, bool(gpu), bool(t.get("dataset_tokens")), len(headers)) for m in report.methods]
    print_table([*headers, "note"], rows)


def _row(m: MethodEstimate, with_fit: bool, with_time: bool, width: int) -> list[str]:
    if m.count is None:
        return [m.label, "n/a", *([""] * (width - 2)), m.error]
    c = m.count
    row = [m.label, human_count(c.trainable_params), f"{100 * c.trainable_share:.3f}%"]
    if m.training is None:
        return [*row, *([""] * (width - 3)), m.memory_error]
    memory = m.training.memory.to_dict()
    row += [*(human_bytes(memory[k]) for k in _MEMORY), memory["phase"]]
    if with_fit:
        fit = m.training.fit
        assert fit is not None
        row += ["yes" if fit.fits else "no", str(fit.max_batch_size)]
    if with_time:
        time = m.training.time
        row += ["" if time.hours is None else f"{time.hours:.1f}", "" if time.usd is None else f"{time.usd:,.0f}"]
    note = ""
    if m.training.fit is not None:
        fit = m.training.fit
        fewest = ", ".join(f"{mode} {n}" for mode, n in fit.min_gpus.items() if n is not None) or "none fits"
        note = f"headroom {human_bytes(fit.headroom)}; fewest GPUs: {fewest}"
    return [*row, note]
