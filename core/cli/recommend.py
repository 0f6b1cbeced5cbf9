"""`python -m core recommend`: FFT or which PEFT method, for a task, a model, a GPU budget and priorities.

Example: `python -m core recommend --task-type code --train-examples 100000 --model llama-2-7b --gpu a10
--gpus 1 --tasks 20 --priority accuracy=2 --priority storage=1 --methods lora,qlora,ia3`.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from core.cli._common import print_json, print_table
from core.errors import InputError
from core.gap.settings import PRIORITIES
from core.memory.gpus import catalogue
from core.memory.setup import PRECISIONS
from core.registry import METHODS
from core.units import human_bytes

if TYPE_CHECKING:
    from core.gap.recommend import Recommendation


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("recommend", help="rank full fine-tuning and PEFT methods for your budget")
    parser.add_argument("--task-type", required=True, help="e.g. classification, code, reasoning-math, instruction")
    parser.add_argument("--train-examples", type=int, required=True, help="training examples per task")
    parser.add_argument("--model", required=True, help="Hub repo id, catalogue alias, config.json or model folder")
    parser.add_argument("--gpu", required=True, help=f"GPU type: {', '.join(catalogue())}")
    parser.add_argument("--gpus", type=int, default=1, help="GPUs in the budget (default 1)")
    parser.add_argument("--tasks", type=int, default=1, help="tasks that each need their own fine-tune (default 1)")
    parser.add_argument(
        "--priority", action="append", default=[], metavar="NAME=WEIGHT",
        help=f"weight of a priority ({', '.join(PRIORITIES)}); default 1 each, 0 ignores one; repeatable",
    )  # fmt: skip
    parser.add_argument("--methods", help="comma-separated method ids to compare (default: all); FFT is always in")
    parser.add_argument("--tokens-per-example", type=int, default=512, help="average tokens per example")
    parser.add_argument("--epochs", type=float, default=3.0, help="epochs per fine-tune")
    parser.add_argument("--micro-batch", type=int, default=4, help="micro-batch per GPU")
    parser.add_argument(
        "--no-gradient-checkpointing", action="store_true", help="keep every activation (default: checkpointing on)"
    )
    parser.add_argument(
        "--usd-per-gpu-hour", type=float, help="your price per GPU-hour (default: an assumed list price)"
    )
    # The recommender's own defaults (core.gap.recommend.RecommendRequest) apply to every flag left out.
    parser.add_argument("--precision", choices=PRECISIONS, help="training precision (default bf16-mixed)")
    parser.add_argument("--mfu", type=float, help="model-FLOPs utilisation for time and cost (default 0.4)")
    lora = METHODS["lora"].defaults
    parser.add_argument("--rank", type=int,
                        help=f"rank every LoRA-style method shares (default: LoRA's, {lora['rank']})")
    parser.add_argument("--targets", help=f"modules every LoRA-style method adapts: names, all-linear or peft-default "
                        f"(default: LoRA's, {lora['targets']})")
    parser.add_argument("--own-defaults", action="store_true",
                        help="each method at its own published defaults instead of equal rank, targets, dropout")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run)


def parse_priorities(items: list[str]) -> dict[str, float]:
    """['accuracy=2', 'cost=0.5'] -> weights, every other priority at 1."""
    weights = dict.fromkeys(PRIORITIES, 1.0)
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip().lower().replace("time_to_deploy", "time").replace("time-to-deploy", "time")
        if not sep or name not in PRIORITIES:
            raise InputError(f"--priority {item!r}: write NAME=WEIGHT with NAME one of {', '.join(PRIORITIES)}")
        try:
            weights[name] = float(value)
        except ValueError:
            raise InputError(f"--priority {item!r}: the weight {value!r} is not a number") from None
    return weights


def run(args: argparse.Namespace) -> int:
    from core.gap.recommend import RecommendRequest, recommend

    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip()) if args.methods else ()
    request = RecommendRequest(
        task_type=args.task_type.strip().lower(),
        train_examples=args.train_examples,
        model=args.model,
        gpu=args.gpu,
        gpus=args.gpus,
        tasks=args.tasks,
        priorities=parse_priorities(args.priority),
        methods=methods,
        tokens_per_example=args.tokens_per_example,
        epochs=args.epochs,
        micro_batch=args.micro_batch,
        usd_per_hour=args.usd_per_gpu_hour,
        gradient_checkpointing=not args.no_gradient_checkpointing,
        equal_settings=not args.own_defaults,
        **{name: getattr(args, name) for name in ("precision", "mfu", "rank", "targets")
           if getattr(args, name) is not None},
    )
    result = recommend(request)
    if args.json:
        print_json(result.to_dict())
    else:
        render(result)
    return 0


def render(result: Recommendation) -> None:
    req = result.request
    print(
        f"{result.model}: {req.task_type}, {req.train_examples:,} examples, {req.tasks} task(s), {req.gpus} x {req.gpu}"
    )
    rows = []
    for i, o in enumerate(result.options, 1):
        c = o.candidate
        if c is None:
            rows.append([str(i), o.label, "n/a", "", "n/a", "", "", "", "", ""])
            continue
        gap = "0 (reference)" if c.gap is None else f"{c.gap.mean:+.1f} [{c.gap.low:+.1f}, {c.gap.high:+.1f}]"
        p_fft = "" if c.gap is None else f"{c.gap.p_fft_better:.0%}"
        pairs = "reference" if c.gap is None else str(c.reported)
        hours, usd = c.plan.hours, c.plan.dollars  # absent for a plan that does not fit
        rows.append([str(i), o.label, "yes" if o.fits else "no", f"{o.score:.2f}", gap, p_fft, pairs,
                     "does not fit" if hours is None else f"{req.tasks * hours:.1f}",
                     "" if usd is None else f"{req.tasks * usd:,.0f}", human_bytes(c.storage_bytes)])  # fmt: skip
    print_table(["#", "method", "fits", "score", "gap, points [80%]", "P(FFT > +1)", "own pairs", "hours", "USD",
                 "storage"], rows)  # fmt: skip
    if result.best_peft is not None:
        print(f"best PEFT option: {result.best_peft.label}")
    _section("why each", [o.reason for o in result.options])
    _section("recommendation", result.rationale, bullet=" ")
    _section("to make full fine-tuning fit", result.make_fft_fit)
    _section(f"to make {result.best_peft.label if result.best_peft else 'PEFT'} fit",
             [] if result.peft_advice is None else result.peft_advice.lines())
    print(f"\nassumptions: {req.settings_text()}")
    _section("selection guide, from these estimates", result.guide)
    for line in result.notes:
        print(f"note: {line}")


def _section(title: str, lines: list[str], bullet: str = "-") -> None:
    """A titled list; nothing at all when the list is empty."""
    if lines:
        print(f"\n{title}:")
        for line in lines:
            print(f"{bullet} {line}")
