"""The training setup a memory/time estimate is for: batch, length, precision, optimizer, attention, sharding, GPU.

Validated once in `__post_init__`; every bad value is one `InputError` line that says how to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from core.errors import InputError
from core.memory.optimizers import OPTIMIZERS as OPTIMIZER_RECORDS
from core.memory.sharding import SHARDINGS as SHARDING_MODES

PRECISIONS: tuple[str, ...] = ("bf16-mixed", "fp16-mixed", "bf16-true", "fp16-true", "fp32")
OPTIMIZERS: tuple[str, ...] = tuple(OPTIMIZER_RECORDS)
# bitsandbytes' paged optimizers allocate their states with cudaMallocManaged (bitsandbytes.functional.get_paged):
# not through torch's caching allocator, and evicted to CPU memory under GPU memory pressure.
PAGED_OPTIMIZERS: tuple[str, ...] = tuple(o.id for o in OPTIMIZER_RECORDS.values() if o.paged)
ATTENTIONS: tuple[str, ...] = ("sdpa", "flash", "eager")
# the sharding modes, lightest first (their behaviour: `core.memory.sharding`)
SHARDINGS: tuple[str, ...] = tuple(SHARDING_MODES)
OFFLOADS: tuple[str, ...] = ("none", "optimizer", "params")
QUANTIZATIONS: tuple[str, ...] = ("auto", "none", "nf4", "nf4-dq", "int8")
DEFAULT_MFU = 0.4  # model-FLOPs utilisation typical of well-tuned fine-tuning runs (PaLM reports 46% for pretraining)


def _setting(default: object, help: str, *, choices: tuple[str, ...] = (), flag_type: type | None = None) -> Any:
    """A setup field with what the CLI, the page and the printed command need: its help and its choices."""
    return field(default=default, metadata={"help": help, "choices": choices, "type": flag_type})


@dataclass(frozen=True)
class TrainingSetup:
    """How the model is trained. `batch_size` is the micro-batch per GPU, `accumulation` how many micro-batches
    make one optimizer step (memory sees one micro-batch, the optimizer and its communication one step), `gpus`
    the data-parallel width.

    Each field declares its help and choices once: `core.cli._common.add_training_flags` builds the flags from
    them and `to_argv` writes a setup back as those flags (tested to round-trip)."""

    batch_size: int = _setting(1, "micro-batch per GPU")
    accumulation: int = _setting(1, "gradient accumulation: micro-batches per optimizer step")
    seq_len: int = _setting(512, "tokens per sequence")
    precision: str = _setting("bf16-mixed", "bf16-mixed: fp32 trained weights, bf16 compute and frozen weights",
                              choices=PRECISIONS)
    optimizer: str = _setting("adamw", "adamw is torch's foreach AdamW; adamw-fused is HF Trainer's default; "
                                       "paged-adamw-8bit keeps its states in unified memory (paged to the CPU)",
                              choices=OPTIMIZERS)
    gradient_checkpointing: bool = _setting(False, "recompute each block in backward (non-reentrant unless "
                                                   "--reentrant-checkpointing)")
    reentrant_checkpointing: bool = _setting(False, "checkpoint with use_reentrant=True (older HF Trainer default); "
                                                    "needs --gradient-checkpointing")
    attention: str = _setting("sdpa", "sdpa/flash keep no score matrices on CUDA; eager does", choices=ATTENTIONS)
    gpus: int = _setting(1, "data-parallel GPUs")
    sharding: str = _setting("none", "ZeRO stage or FSDP full sharding", choices=SHARDINGS)
    offload: str = _setting("none", "move optimizer states (or also parameters) to the CPU; needs --sharding",
                            choices=OFFLOADS)
    gpu: str | None = _setting(None, "GPU to fit on, e.g. A100-80GB, H100, RTX-4090 (catalogue: data/gpus.csv)",
                               flag_type=str)
    gpu_price: float | None = _setting(None, "override the catalogue's USD per GPU-hour", flag_type=float)
    dataset_tokens: int | None = _setting(None, "tokens in the training set (for time and cost)", flag_type=int)
    epochs: float = _setting(1.0, "passes over the dataset")
    mfu: float = _setting(DEFAULT_MFU, "model-FLOPs utilisation")
    quantization: str = _setting("auto", "base weights (auto: NF4 for qlora, none otherwise)", choices=QUANTIZATIONS)

    def __post_init__(self) -> None:
        for flag, value in (("--batch-size", self.batch_size), ("--seq-len", self.seq_len), ("--gpus", self.gpus),
                            ("--accumulation", self.accumulation)):
            if not isinstance(value, int) or value <= 0:
                example = 1 if flag in ("--gpus", "--accumulation") else 8
                raise InputError(f"{flag} {value} must be a positive integer, e.g. {flag} {example}")
        for flag, value, allowed in (
            ("--precision", self.precision, PRECISIONS),
            ("--optimizer", self.optimizer, OPTIMIZERS),
            ("--attention", self.attention, ATTENTIONS),
            ("--sharding", self.sharding, SHARDINGS),
            ("--offload", self.offload, OFFLOADS),
            ("--quantization", self.quantization, QUANTIZATIONS),
        ):
            if value not in allowed:
                raise InputError(f"{flag} {value!r} is not one of {', '.join(allowed)}")
        if self.reentrant_checkpointing and not self.gradient_checkpointing:
            raise InputError("--reentrant-checkpointing needs --gradient-checkpointing: add --gradient-checkpointing "
                             "or drop --reentrant-checkpointing")
        if SHARDING_MODES[self.sharding].shards and self.gpus == 1:
            raise InputError(f"--sharding {self.sharding} needs --gpus 2 or more: one GPU has nothing to shard across")
        if self.offload != "none" and not SHARDING_MODES[self.sharding].shards:
            raise InputError(f"--offload {self.offload} needs --sharding (zero1/zero2/zero3/fsdp): offloading is a "
                             "ZeRO/FSDP feature")
        if self.offload == "params" and not SHARDING_MODES[self.sharding].shards_weights:
            raise InputError("--offload params needs --sharding zero3 or fsdp (only they partition the parameters)")
        if self.dataset_tokens is not None and self.dataset_tokens <= 0:
            raise InputError(f"--dataset-tokens {self.dataset_tokens} must be positive, e.g. --dataset-tokens 50000000")
        if self.epochs <= 0:
            raise InputError(f"--epochs {self.epochs} must be positive, e.g. --epochs 3")
        if not 0 < self.mfu <= 1:
            raise InputError(f"--mfu {self.mfu} must be in (0, 1], e.g. --mfu {DEFAULT_MFU}")
        if self.gpu_price is not None and self.gpu_price < 0:
            raise InputError(f"--gpu-price {self.gpu_price} must not be negative (USD per GPU-hour)")

    @property
    def compute_dtype(self) -> str:
        """The dtype activations are kept in: fp32, or the half type of a mixed/true half precision."""
        return "fp32" if self.precision == "fp32" else self.precision[:4]

    @property
    def mixed(self) -> bool:
        return self.precision.endswith("-mixed")

    def to_argv(self) -> list[str]:
        """The CLI flags that reproduce this setup (defaults left out)."""
        argv: list[str] = []
        for spec in fields(self):
            value, default = getattr(self, spec.name), spec.default
            if value == default:
                continue
            flag = "--" + spec.name.replace("_", "-")
            argv += [flag] if isinstance(value, bool) else [flag, str(value)]
        return argv
