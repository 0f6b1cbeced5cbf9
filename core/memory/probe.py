"""The CPU activation probe: what autograd really saves for backward, measured on a small random-init model.

One forward pass (train mode, labels given so the loss is included) of a real transformers model built from
the config, with the method applied for real (peft, or `requires_grad` for BitFit and partial fine-tuning).
Every tensor autograd saves passes `torch.autograd.graph.saved_tensors_hooks`; the probe keeps those whose
storage is still alive when the forward ends, counts each storage once, and skips parameters and buffers
(they are weights, not activations). This is the ground truth the traced step (`core.memory.profile`) is
tested against (`tests.support.accuracy`), and the calibration runner reuses it. It is slow by design: never
call it from `estimate`.

QLoRA runs as LoRA on a base in the compute dtype: a bitsandbytes 4-bit layer saves nothing for its frozen
weight either (its autograd function keeps only the quantized weight), so the saved activations are the same.
"""

from __future__ import annotations

import warnings
import weakref
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from core.apply import apply_method
from core.errors import InputError
from core.memory.step import load_dtype, task_inputs
from core.models import ResolvedModel
from core.registry import MethodChoice
from core.skeleton import SkeletonKey, one_at_a_time

PROBE_DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
PROBE_ATTENTION: tuple[str, ...] = ("sdpa", "eager")


@dataclass(frozen=True)
class SavedTensor:
    """One storage autograd kept for backward: its size, dtype and the shape it was first saved with."""

    nbytes: int
    dtype: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class ProbeResult:
    """Bytes autograd saved during one forward of one micro-batch, with the storages behind them."""

    activation_bytes: int
    saved: tuple[SavedTensor, ...] = field(default=(), repr=False)


@one_at_a_time
def probe_activations(
    key: SkeletonKey,
    choice: MethodChoice,
    *,
    batch_size: int,
    seq_len: int,
    dtype: str = "fp32",
    attention: str = "sdpa",
    seed: int = 0,
) -> ProbeResult:
    """Run one real forward on CPU and measure the bytes autograd saved (see the module docstring)."""
    if dtype not in PROBE_DTYPES:
        raise InputError(f"probe dtype {dtype!r} is not one of {', '.join(PROBE_DTYPES)}")
    if attention not in PROBE_ATTENTION:
        raise InputError(f"probe attention {attention!r} is not one of {', '.join(PROBE_ATTENTION)}")
    torch.manual_seed(seed)
    model = build_trainable(key, choice, dtype=dtype, attention=attention)
    inputs = make_inputs(key, batch_size, seq_len, vocab=_vocab_size(key.model), task_ids=choice.spec.task_ids)
    frozen = _held_pointers(model)
    seen: list[tuple[weakref.ref[torch.Tensor], torch.UntypedStorage, SavedTensor]] = []

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        # a sparse tensor (SHiRA's update) has no storage of its own: its bytes are its indices and values
        for part in (tensor._indices(), tensor._values()) if tensor.is_sparse else (tensor,):
            storage = part.untyped_storage()
            described = SavedTensor(storage.nbytes(), str(part.dtype).removeprefix("torch."), tuple(part.shape))
            seen.append((weakref.ref(tensor), storage, described))
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, _unpack):
        output = model(**inputs)
    if output.loss is None:
        raise InputError(f"{key.model.name}: the model returned no loss for task {key.task}")
    saved: dict[int, SavedTensor] = {}
    for ref, storage, described in seen:
        pointer = storage.data_ptr()
        if ref() is None or pointer in frozen or pointer in saved or storage.nbytes() == 0:
            continue
        saved[pointer] = described
    del output
    return ProbeResult(sum(s.nbytes for s in saved.values()), tuple(saved.values()))


def _held_pointers(model: nn.Module) -> set[int]:
    """Storages the model holds before any forward: parameters, buffers, and tensors kept as plain attributes or
    in dicts of them (SHiRA's indices of its trained entries): weights, not activations, when autograd saves them."""
    held: list[torch.Tensor] = [*model.parameters(), *model.buffers()]
    for module in model.modules():
        for value in vars(module).values():
            items = value.values() if isinstance(value, dict) else (value,)
            held += [t for t in items if isinstance(t, torch.Tensor) and not t.is_sparse]
    return {t.untyped_storage().data_ptr() for t in held}


def _unpack(tensor: torch.Tensor) -> torch.Tensor:
    return tensor


def effective_attention(key: SkeletonKey, attention: str) -> str:
    """What transformers runs: a model class without sdpa support (Gemma-2: soft-capping) falls back to eager."""
    from core.skeleton import skeleton

    if attention == "sdpa" and not getattr(type(skeleton(key)), "_supports_sdpa", True):
        return "eager"
    return attention


def _vocab_size(model: ResolvedModel) -> int:
    return int(model.config_dict.get("vocab_size") or 32)


def build_trainable(key: SkeletonKey, choice: MethodChoice, *, dtype: str, attention: str) -> nn.Module:
    """A random-init CPU model of `key` in `dtype` with `choice` applied, in train mode."""
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoModelForSequenceClassification

    auto: dict[str, Any] = {
        "causal-lm": AutoModelForCausalLM,
        "seq-cls": AutoModelForSequenceClassification,
        "seq2seq": AutoModelForSeq2SeqLM,
    }
    config = key.model.build_config()
    config._attn_implementation = effective_attention(key, attention)
    if key.task == "seq-cls":
        config.num_labels = key.num_labels
        if getattr(config, "pad_token_id", None) is None:
            config.pad_token_id = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = auto[key.task].from_config(config, dtype=PROBE_DTYPES[dtype])
    load_dtype(model, PROBE_DTYPES[dtype])  # from_config skips the fp32 modules from_pretrained keeps
    model.train()
    return apply_method(model, key, choice)


def make_inputs(key: SkeletonKey, batch_size: int, seq_len: int, *, vocab: int,
                task_ids: bool = False) -> dict[str, torch.Tensor]:
    """Random token ids and labels for the task head (no padding, so no attention mask is needed), and a task id
    per example for the methods that route by task (`Method.task_ids`)."""
    ids = torch.randint(0, vocab, (batch_size, seq_len))
    tasks = task_inputs(batch_size, task_ids)
    if key.task == "seq-cls":
        return {"input_ids": ids, "labels": torch.randint(0, key.num_labels, (batch_size,)), **tasks}
    return {"input_ids": ids, "labels": ids.clone(), **tasks}
