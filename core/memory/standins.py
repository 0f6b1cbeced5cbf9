"""Small stand-ins that allocate what the CUDA kernels allocate, for a trace that runs on a CPU-only build.

A fake-tensor trace runs the real model code, but some kernels keep different tensors on CUDA than on the CPU:

* attention: CUDA's flash and memory-efficient SDPA kernels keep q, k, v, the output and the fp32 log-sum-exp
  for backward (dropout keeps only its RNG state), never the s x s probabilities the CPU math path keeps.
  Grouped-query attention runs on the key/value heads without repeating them. Their backward allocates dq, dk,
  dv, an fp32 dq accumulator and an fp32 row-sum (FlashAttention-2 `mha_bwd`, csrc/flash_attn/flash_api.cpp),
  and a trained attention bias's full-size gradient (memory-efficient attention's `grad_bias`);
* bitsandbytes 4/8-bit linear layers (`MatMul4Bit`) save no activation for a frozen base weight; forward and
  backward each dequantise the weight into a temporary of the compute dtype, and cast the input to it and the
  output back to the input's dtype (fp32 after peft's `prepare_model_for_kbit_training`);
* bitsandbytes 8-bit AdamW keeps two uint8 states plus one fp32 absmax per 256 values, updated in place.

`eager` attention is left to the model's own code: it keeps the scores on CUDA as well.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

NF4_BLOCK = 64  # weights per absmax block (Dettmers et al. 2023, QLoRA, §3)
NF4_DQ_BLOCK = 256  # absmaxes per second-level fp32 constant (QLoRA §3, double quantization)
ADAM8_BLOCK = 256  # bitsandbytes block-wise 8-bit optimizer block size (Dettmers et al. 2022)


class _FlashAttention(torch.autograd.Function):
    """Sizes-only SDPA: q (b, h, s, d), k/v (b, kv, t, d) -> out (b, h, s, dv), as CUDA's fused kernels keep it."""

    @staticmethod
    def forward(ctx: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, *kept: torch.Tensor) -> Any:
        batch, heads, length, _ = query.shape
        out = query.new_empty(batch, heads, length, value.shape[-1])
        lse = query.new_empty(batch, heads, length, dtype=torch.float32)
        ctx.save_for_backward(query, key, value, out, lse, *kept)
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> Any:
        query, key, value, _out, lse, *kept = ctx.saved_tensors
        dq_accum = torch.empty(query.shape, dtype=torch.float32, device=query.device)
        row_sum = torch.empty_like(lse)
        if query.shape[1] != key.shape[1]:  # FA2 computes dk/dv per query head, then sums each group
            wide = torch.empty(*query.shape[:2], *key.shape[2:], dtype=key.dtype, device=key.device)
            del wide
        grads = (torch.empty_like(query), torch.empty_like(key), torch.empty_like(value))
        del dq_accum, row_sum
        # a trained bias (T5's relative position bias) runs the memory-efficient kernel, whose backward computes
        # its gradient at the full (b, h, s, t) size; autograd then sums it down to the bias's own shape
        full = (*query.shape[:3], key.shape[2])
        bias_grads = (torch.empty(full, dtype=mask.dtype, device=mask.device) if needed else None
                      for mask, needed in zip(kept, ctx.needs_input_grad[3:], strict=True))
        return (*grads, *bias_grads)


def _sdpa(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, attn_mask: torch.Tensor | None = None,
          *_: Any, **__: Any) -> torch.Tensor:
    """`torch.nn.functional.scaled_dot_product_attention` with the memory of CUDA's flash / efficient kernels."""
    kept = (attn_mask,) if isinstance(attn_mask, torch.Tensor) else ()
    return _FlashAttention.apply(query, key, value, *kept)


@contextlib.contextmanager
def cuda_attention() -> Iterator[None]:
    """Within the block, every SDPA call keeps what the CUDA kernels keep (see the module docstring). The patch is
    process-wide: its callers hold `core.skeleton.ENGINE_LOCK`, as a trace does."""
    original = torch.nn.functional.scaled_dot_product_attention
    torch.nn.functional.scaled_dot_product_attention = _sdpa
    try:
        yield
    finally:
        torch.nn.functional.scaled_dot_product_attention = original


class _Dequantized(torch.autograd.Function):
    """y = x W^T for a frozen quantized W, as bitsandbytes' `MatMul4Bit` runs it at training sizes (more than 1,536
    rows: its dequantise-then-matmul fallback, bitsandbytes/backends/cuda/ops.py `_gemm_4bit`): the input cast
    to the compute dtype, the weight dequantised into a temporary of that dtype, the output cast back to the
    input's dtype; nothing saved for backward but the packed weight, which backward dequantises again and casts
    to the gradient's dtype (bitsandbytes/autograd/_functions.py `MatMul4Bit.backward`)."""

    @staticmethod
    def forward(ctx: Any, inputs: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                compute: torch.dtype) -> torch.Tensor:
        cast = inputs.to(compute)
        dense = torch.empty(weight.shape, dtype=compute, device=inputs.device)
        out = torch.nn.functional.linear(cast, dense, None if bias is None else bias.to(compute))
        ctx.weight, ctx.compute = weight, compute
        del dense, cast
        return out.to(inputs.dtype)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> Any:
        dense = torch.empty(ctx.weight.shape, dtype=ctx.compute, device=grad_out.device).to(grad_out.dtype)
        return grad_out @ dense, None, None, None


def quantized_linear_forward(module: nn.Linear, compute: torch.dtype) -> Any:
    """A forward for a frozen linear layer whose weight is stored quantized (bitsandbytes semantics), computing
    in `compute` (`bnb_4bit_compute_dtype`: the run's half-precision dtype, as QLoRA recipes set it)."""

    def forward(inputs: torch.Tensor) -> torch.Tensor:
        with torch.autocast(inputs.device.type, enabled=False):  # bitsandbytes' custom op: autocast does not enter
            return _Dequantized.apply(inputs, module.weight, module.bias, compute)

    return forward


def quantized_bytes(numel: int, rows: int, quant: str) -> int:
    """Bytes of one quantized weight: NF4 0.5 byte per weight plus an fp32 absmax per 64 (double quantization:
    an 8-bit absmax plus one fp32 constant per 256 of them); LLM.int8 one byte plus an fp32 scale per row
    (QLoRA §3; Dettmers et al. 2022, LLM.int8())."""
    if quant == "int8":
        return numel + rows * 4
    blocks = math.ceil(numel / NF4_BLOCK)
    constants = blocks * (1 + 4 / NF4_DQ_BLOCK) if quant == "nf4-dq" else blocks * 4
    return int(numel // 2 + constants)


class Adam8bit(torch.optim.Optimizer):
    """bitsandbytes AdamW8bit's memory: two uint8 states and two fp32 absmax vectors per parameter, in place."""

    def __init__(self, params: Any, lr: float = 1e-4) -> None:
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    blocks = math.ceil(p.numel() / ADAM8_BLOCK)
                    state["state1"] = torch.empty(p.shape, dtype=torch.uint8, device=p.device)
                    state["state2"] = torch.empty(p.shape, dtype=torch.uint8, device=p.device)
                    state["absmax1"] = torch.empty(blocks, dtype=torch.float32, device=p.device)
                    state["absmax2"] = torch.empty(blocks, dtype=torch.float32, device=p.device)
                p.add_(p.grad, alpha=-group["lr"])
