"""Training FLOPs per token by method, and the time and cost of a run.

Kaplan et al. 2020 ("Scaling Laws for Neural Language Models", §2.1): a forward pass costs about 2N FLOPs per
token and the backward pass 4N (2N for gradients with respect to activations, 2N with respect to weights),
6N in all for full fine-tuning. A frozen base needs no weight gradients, only the activation-gradient path,
so PEFT costs about 4N + 2·N_trained (the "2/3 of FFT" rule of thumb, Thinking Machines 2025, "LoRA Without
Regret"); partial fine-tuning stops the backward pass below its lowest trained block: 2N + 4·N_trained.
Attention adds 2·2·L·s·d per token forward (scores and weighted sum), three times that with backward.
Time is FLOPs / (GPUs x peak dense bf16 TFLOPS x MFU); MFU is an editable default.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.counting import ParameterCount
from core.memory.gpus import Gpu
from core.memory.setup import TrainingSetup
from core.registry import MethodChoice


@dataclass(frozen=True)
class TrainingTime:
    """FLOPs per token and, with a GPU and a dataset size, the hours and dollars of the run."""

    flops_per_token: float
    tokens: float | None = None
    hours: float | None = None
    usd: float | None = None


def flops_per_token(choice: MethodChoice, count: ParameterCount, *, layers: int, width: int, seq_len: int) -> float:
    """Training FLOPs per token (see the module docstring)."""
    n, trained = count.total_params, count.trainable_params
    attention = 12 * layers * seq_len * width
    scope = choice.spec.trains.scope if choice.spec.trains is not None else ""
    if scope == "all":
        return 6 * n + attention
    if scope == "top_blocks":
        return 2 * n + 4 * trained + attention
    return 4 * n + 2 * trained + attention


def training_time(per_token: float, setup: TrainingSetup, gpu: Gpu | None, *, extra_tokens: int = 0) -> TrainingTime:
    """Tokens = dataset tokens x epochs (virtual tokens of soft prompts are processed too)."""
    if setup.dataset_tokens is None:
        return TrainingTime(per_token)
    tokens = setup.dataset_tokens * setup.epochs * (setup.seq_len + extra_tokens) / setup.seq_len
    if gpu is None:
        return TrainingTime(per_token, tokens)
    seconds = tokens * per_token / (setup.gpus * gpu.bf16_tflops * 1e12 * setup.mfu)
    hours = seconds / 3600
    return TrainingTime(per_token, tokens, hours, hours * setup.gpus * gpu.usd_per_hour)
