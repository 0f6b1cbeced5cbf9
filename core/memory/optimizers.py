"""The optimizers a run can train with, as option records (as `core.registry.Method` is for methods): how each is
built, what its step moves per trained parameter and where its states live, read by the traced step, the time
model, the memory levels, the advice and calibration (no module spells an optimizer's behaviour as a list of names).
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS: tuple[str, ...] = ("adamw", "sgd", "adafactor", "adamw-8bit")


@dataclass(frozen=True)
class Optimizer:
    """One optimizer setting.

    `kind` is what is built (torch AdamW or SGD with momentum, transformers' Adafactor, bitsandbytes' 8-bit AdamW);
    `fused` builds torch's fused kernel instead of foreach (HF Trainer's `adamw_torch_fused`); `paged` states live
    in CUDA unified memory (bitsandbytes `cudaMallocManaged`), outside torch's caching allocator; `step_bytes` is
    what the optimizer step reads and writes per trained parameter, for the time model."""

    id: str
    name: str
    kind: str
    step_bytes: int
    fused: bool = False
    paged: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.id}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.step_bytes <= 0 or (self.fused and self.kind != "adamw") or (self.paged and self.kind != "adamw-8bit"):
            raise ValueError(f"{self.id}: positive step bytes; only AdamW fuses and only 8-bit AdamW is paged")

    @property
    def full_precision_adam(self) -> bool:
        """AdamW with fp32 states: where 8-bit states save the most (the advice offers them)."""
        return self.kind == "adamw"


# Bytes the step reads and writes per trained parameter (fp32 parameter and gradient read; states read and written;
# the parameter written): AdamW 4+4+8 read, 4+8 written; 8-bit AdamW keeps 1-byte states (Dettmers et al. 2022,
# "8-bit Optimizers via Block-wise Quantization"); SGD and Adafactor's factored second moment (Shazeer & Stern 2018)
# touch little beyond the parameter and its gradient.
OPTIMIZERS: dict[str, Optimizer] = {o.id: o for o in (
    Optimizer("adamw", "AdamW", "adamw", 28),
    Optimizer("adamw-fused", "AdamW (fused)", "adamw", 28, fused=True),
    Optimizer("adamw-8bit", "8-bit AdamW (bitsandbytes)", "adamw-8bit", 16),
    Optimizer("paged-adamw-8bit", "paged 8-bit AdamW (bitsandbytes)", "adamw-8bit", 16, paged=True),
    Optimizer("sgd", "SGD with momentum", "sgd", 12),
    Optimizer("adafactor", "Adafactor", "adafactor", 12),
)}
# what the advice offers a full-precision AdamW run instead: the unpaged 8-bit states
EIGHT_BIT: str = next(o.id for o in OPTIMIZERS.values() if o.kind == "adamw-8bit" and not o.paged)
