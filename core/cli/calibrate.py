"""`python -m core calibrate --probe|--learn`: a short real fine-tune that measures what TuneWise predicts.

The app starts this as a separate process (core.calibrate.launcher) on a spec file it wrote (`--spec`) and
reads its run folder; run by hand it prints a table, or `{"runs": [...]}` with `--json`, and stores the finished
run in the warehouse (`--ingest`, the default unless `--run-dir` names a folder, as a caller that ingests its
own does). One run at a time per runs folder: a start while another run is live exits 2 saying so. With
`--gpus N` (N > 1) it writes an accelerate config into the run folder and re-runs itself through
`accelerate launch` (`--dry-run` prints that command only).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING

from core.calibrate.multigpu import SHARDING, launch_command, shell, world_size, write_config
from core.calibrate.options import DEFAULT_METHODS, DEVICES, INITS
from core.cli._common import add_model_flags, model_from_args, print_table
from core.errors import InputError
from core.memory.setup import ATTENTIONS, OPTIMIZERS, PRECISIONS
from core.registry import KNOBS, METHODS, MethodChoice, get_method
from core.units import human_bytes

if TYPE_CHECKING:
    from core.calibrate.runfolder import RunFolder
    from core.calibrate.spec import CalibrationSpec

# Flags of the launching process only; workers get the run folder explicitly (and see WORLD_SIZE > 1).
_LAUNCH_ONLY = ("--dry-run", "--run-dir", "--ingest", "--no-ingest")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("calibrate", help="measure real memory, speed and learning curves per method")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--probe", action="store_true", help="memory and speed: random-init weights, no data needed")
    mode.add_argument("--learn", action="store_true", help="learning curves on your data (CSV or JSONL)")
    mode.add_argument("--spec", type=Path, help="a spec file (the app writes one per run); replaces the other flags")
    add_model_flags(parser, required=False)
    parser.add_argument("--methods", default=DEFAULT_METHODS, help=f"comma-separated ids (default {DEFAULT_METHODS})")
    for knob in KNOBS.values():
        parser.add_argument(knob.cli_flag, type=knob.kind, help=knob.help)
    parser.add_argument("--device", default="auto", choices=DEVICES, help="auto: CUDA when a GPU is visible")
    parser.add_argument("--steps", type=int, help="training steps per method (probe: 3 after one warm-up; learn: 30)")
    parser.add_argument("--time-budget", type=float, help="seconds of training per method (with or instead of --steps)")
    parser.add_argument("--batch-size", type=int, default=1, help="micro-batch size")
    parser.add_argument("--seq-len", type=int, default=128, help="tokens per sequence (learn: the truncation length)")
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS,
                        help="*-true: weights and compute in that dtype; *-mixed: fp32 weights with autocast")
    parser.add_argument("--optimizer", default="adamw", choices=OPTIMIZERS)
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--attention", default="sdpa", choices=ATTENTIONS)
    parser.add_argument("--data", type=Path, help="learn: CSV or JSONL with text,label or prompt,completion")
    parser.add_argument("--data-sizes", help="learn: training examples per class (or in all), e.g. 5,20,100")
    parser.add_argument("--eval-fraction", type=float, default=0.2, help="learn: held-out share of the data")
    parser.add_argument("--lr", type=float, default=5e-5, help="learning rate of FFT/selective methods (PEFT: 10x)")
    parser.add_argument("--init", choices=INITS, help="learn: pretrained weights (default) or random init")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gpus", type=int, default=1, help="GPUs on this machine; >1 launches via accelerate")
    parser.add_argument("--sharding", default="fsdp", choices=SHARDING, help="with --gpus > 1: FSDP or ZeRO-2/3")
    parser.add_argument("--dry-run", action="store_true", help="with --gpus > 1: print the launch command only")
    parser.add_argument("--run-dir", type=Path, help="run folder (default: a new one under $TUNEWISE_RUNS_DIR)")
    parser.add_argument("--json", action="store_true", help='print {"runs": [...]}')
    parser.add_argument("--ingest", action=argparse.BooleanOptionalAction,
                        help="store the finished run in the warehouse (default: yes, unless --run-dir is given)")
    parser.set_defaults(handler=lambda args: run(args, to_argv(args, parser)))


def to_argv(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[str]:
    """The flags of `args` that differ from their defaults, as a command line (provenance and relaunch)."""
    argv: list[str] = []
    for dest, value in vars(args).items():
        if dest in ("command", "handler") or value is None or value is False or value == parser.get_default(dest):
            continue
        flag = f"--{dest.replace('_', '-')}"
        argv.extend([flag] if value is True else [flag, str(value)])
    return argv


def parse_methods(text: str, args: argparse.Namespace) -> tuple[MethodChoice, ...]:
    """Method ids with the knobs given: each knob goes to the chosen methods that take it."""
    ids = [get_method(m).id for m in text.split(",") if m.strip()]
    given = {name: getattr(args, name) for name in KNOBS if getattr(args, name, None) is not None}
    if len(ids) == 1:
        return (MethodChoice(ids[0], **given),)
    unused = [KNOBS[k].cli_flag for k in given if not any(k in METHODS[m].defaults for m in ids)]
    if unused:
        raise InputError(f"none of {', '.join(ids)} takes {', '.join(unused)}")
    return tuple(MethodChoice(m, **{k: v for k, v in given.items() if k in METHODS[m].defaults}) for m in ids)


def spec_from_args(args: argparse.Namespace) -> CalibrationSpec:
    from core.calibrate.spec import CalibrationSpec, parse_sizes

    if args.spec is not None:
        return CalibrationSpec.read(args.spec)
    if not args.model:
        raise InputError("--model is missing: give a Hub id, a catalogue alias or a config.json path")
    return CalibrationSpec(
        model=model_from_args(args), methods=parse_methods(args.methods, args), mode="probe" if args.probe else "learn",
        device=args.device, steps=args.steps, time_budget_s=args.time_budget, batch_size=args.batch_size,
        seq_len=args.seq_len, precision=args.precision, optimizer=args.optimizer,
        gradient_checkpointing=args.gradient_checkpointing, attention=args.attention, task=args.task or "",
        num_labels=args.num_labels, data=args.data, data_sizes=parse_sizes(args.data_sizes),
        eval_fraction=args.eval_fraction, lr=args.lr, init=args.init or "", seed=args.seed, gpus=args.gpus,
        sharding=args.sharding,
    )  # fmt: skip


def validate(argv: Sequence[str]) -> tuple[CalibrationSpec, str]:
    """Parse and check `calibrate` arguments as the runner will (the app calls this before launching).

    Returns the spec and the device it will run on; raises InputError with the CLI's own message.
    """
    from core.cli import build_parser

    try:
        args = build_parser().parse_args(["calibrate", *argv])
    except SystemExit:
        raise InputError(f"invalid calibrate arguments: {' '.join(argv)}") from None
    spec = spec_from_args(args)
    return spec, ("cuda" if args.dry_run else spec.runtime_device())


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from core.calibrate.launcher import claim
    from core.calibrate.runfolder import RunFolder, new_run_id, runs_dir
    from core.calibrate.runner import execute

    spec = spec_from_args(args)
    folder = RunFolder(args.run_dir or runs_dir() / new_run_id())
    if not args.dry_run:
        claim(folder, owner=f"a command line (process {os.getpid()})")  # one live run per runs folder
    if spec.gpus > 1 and world_size() == 1:
        return _launch_distributed(spec, folder, argv, dry_run=args.dry_run, ingest=_ingests(args))
    device = spec.runtime_device()
    if args.dry_run:
        print(shell([sys.executable, "-m", "core", "calibrate", *argv]))
        return 0
    outcome = execute(spec, folder, device, argv, ingest=_ingests(args) and world_size() == 1)
    stored = outcome.stored
    if args.json:
        print(json.dumps({"run_id": folder.run_id, "run_dir": str(folder.path), "device": device,
                          "state": outcome.state, "message": outcome.message, "runs": outcome.runs,
                          "warehouse": stored}, indent=2, default=str))
    else:
        _render(outcome.runs, device, spec.mode)
        print(f"{outcome.state}: {outcome.message} (run folder {folder.path})",
              file=sys.stdout if outcome.code == 0 else sys.stderr)
        if stored:
            print(stored)
    return outcome.code


def _ingests(args: argparse.Namespace) -> bool:
    """`--ingest`/`--no-ingest`, else yes unless the caller named the run folder (the app ingests its own)."""
    return bool(args.ingest) if args.ingest is not None else args.run_dir is None


def _launch_distributed(
    spec: CalibrationSpec, folder: RunFolder, argv: Sequence[str], *, dry_run: bool, ingest: bool
) -> int:
    """Write the accelerate config into the run folder and run (or print) `accelerate launch`."""
    from core.calibrate.runner import store
    from core.calibrate.train import precision

    if not dry_run:
        spec.runtime_device()  # enough GPUs?
        if spec.sharding != "fsdp" and find_spec("deepspeed") is None:
            raise InputError(f"--sharding {spec.sharding} needs DeepSpeed: pip install deepspeed, or use fsdp")
    compute = precision(spec.precision).autocast or "fp32"  # accelerate's mixed_precision: only autocast counts
    config = write_config(folder.create().path, spec.gpus, spec.sharding, compute,
                          checkpointing=spec.gradient_checkpointing)
    worker_args = [*_strip(argv, _LAUNCH_ONLY), "--run-dir", str(folder.path)]
    command = launch_command(config, worker_args)
    if dry_run:
        print(shell(command))
        return 0
    code = subprocess.run(command, check=False).returncode
    if ingest and folder.complete:
        print(store(folder))
    return code


def _strip(argv: Sequence[str], flags: Sequence[str]) -> list[str]:
    """`argv` without the given flags (and their values; --dry-run takes none)."""
    out: list[str] = []
    skip = False
    for item in argv:
        if skip:
            skip = False
            continue
        name = item.split("=", 1)[0]
        if name in flags:
            skip = "=" not in item and name in ("--run-dir",)  # the only one of them that takes a value
            continue
        out.append(item)
    return out


def _render(runs: Sequence[dict], device: str, mode: str) -> None:
    if mode == "learn":
        rows = [[r["label"], "all" if r.get("data_size") is None else str(r["data_size"]), r["status"],
                 f"{r['metric']} {r['eval_value']:.4f}" if r.get("eval_value") is not None else "",
                 f"{r['final_loss']:.4f}" if r.get("final_loss") is not None else "",
                 f"{r['tokens_per_s']:.0f}" if r.get("tokens_per_s") else "", r.get("reason") or ""] for r in runs]
        print_table(["method", "data size", "status", "held-out", "final loss", "tokens/s", "note"], rows)
        return
    cuda = device == "cuda"
    measured_key, predicted_key = (("measured_peak_allocated", "predicted_total") if cuda
                                   else ("measured_activations", "predicted_activations"))
    rows = []
    for r in runs:
        measured, predicted = r.get(measured_key), r.get(predicted_key)
        rows.append([
            r["label"], r["status"], human_bytes(measured) if measured is not None else "",
            human_bytes(predicted) if predicted is not None else "",
            f"{r['tokens_per_s']:.0f}" if r.get("tokens_per_s") else "", r.get("reason") or "",
        ])  # fmt: skip
    what = "peak allocated" if cuda else "activations"
    print_table(["method", "status", f"measured {what}", "predicted", "tokens/s", "note"], rows)
