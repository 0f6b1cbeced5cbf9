"""What the probe and the learn mode share: building the trained model on a device, the optimizer, the
training step, the states' bytes, cancellation, and the runtime facts (device name, library versions).

One step is forward, backward, optimizer step, zero grad: the same three phases whose memory the estimator
predicts. Runs started by `accelerate launch` (WORLD_SIZE > 1) go through `accelerate.Accelerator`, which
shards model and optimizer as the generated accelerate config says; a single process trains in plain PyTorch
so that the peak it measures has nothing but the model, its states and its activations in it.
"""

from __future__ import annotations

import contextlib
import gc
import os
import platform
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.util import find_spec
from typing import Any

import torch
from torch import nn

from core.apply import apply_method
from core.calibrate.multigpu import world_size
from core.errors import InputError
from core.memory.optimizers import OPTIMIZERS
from core.memory.probe import PROBE_DTYPES, build_trainable
from core.registry import MethodChoice
from core.skeleton import SkeletonKey

QLORA_NEEDS = "QLoRA needs bitsandbytes on a CUDA GPU (pip install bitsandbytes); on this machine calibrate lora"
ATTN_IMPLEMENTATION = {"flash": "flash_attention_2"}  # the estimator's names -> transformers' attn_implementation


class Cancelled(BaseException):
    """The run was asked to stop (SIGTERM or the cancel marker); unwinds through every method loop."""


class MethodUnavailableError(Exception):
    """A method cannot run here; the message becomes its failure reason (other methods go on)."""


@dataclass(frozen=True)
class Precision:
    """Weights in `weights` dtype; `autocast` runs the compute in that dtype over fp32 weights (mixed)."""

    weights: str
    autocast: str | None = None


def precision(name: str) -> Precision:
    """The estimator's precisions (core.memory.setup): fp32; bf16-true / fp16-true: weights and compute in that
    dtype; bf16-mixed / fp16-mixed: fp32 weights with autocast (torch AMP, as transformers' Trainer runs it)."""
    if name.endswith("-mixed"):
        return Precision("fp32", name.removesuffix("-mixed"))
    return Precision(name.removesuffix("-true"))


def failure(exc: Exception) -> tuple[str, str]:
    """(status, reason) of a method that raised: `oom` for CUDA out-of-memory, else `failed`."""
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    if isinstance(exc, torch.OutOfMemoryError):
        return "oom", f"out of memory: {first}"
    if isinstance(exc, MethodUnavailableError):
        return "failed", first
    return "failed", f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def cuda_available() -> bool:
    return torch.cuda.is_available()


def device_name(device: str) -> str:
    """What the warehouse records as the device: the GPU's name, or 'cpu (<processor>)'."""
    if device == "cuda":
        return torch.cuda.get_device_name(torch.cuda.current_device())
    return f"cpu ({platform.machine()}, {os.cpu_count()} cores)"


def library_versions() -> dict[str, str]:
    """torch, transformers, peft, accelerate (and CUDA / bitsandbytes when present)."""
    import accelerate
    import peft
    import transformers

    versions = {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
                "accelerate": accelerate.__version__, "python": platform.python_version()}
    if torch.version.cuda:
        versions["cuda"] = str(torch.version.cuda)
    if find_spec("bitsandbytes") is not None:
        import bitsandbytes

        versions["bitsandbytes"] = str(bitsandbytes.__version__)
    return versions


def build_model(
    key: SkeletonKey, choice: MethodChoice, *, device: str, weights: str, attention: str, source: str | None = None,
    pad_token_id: int | None = None,
) -> nn.Module:
    """The trained model on `device`: random init from the config (source None) or `source`'s weights,
    with the method applied exactly as the CPU probe applies it (`core.memory.probe`). Under accelerate launch
    the model is built on CPU and `Stepper` lets accelerate shard it onto the GPUs."""
    attention = ATTN_IMPLEMENTATION.get(attention, attention)
    if choice.spec.quantized_base:
        return _qlora(key, choice, device=device, attention=attention, source=source, pad_token_id=pad_token_id)
    if world_size() > 1:
        device = "cpu"
    if source is None:
        with torch.device(device):
            model = build_trainable(key, choice, dtype=weights, attention=attention)
        return model.to(device)
    base = _pretrained(key, source, dtype=PROBE_DTYPES[weights], attention=attention, pad_token_id=pad_token_id)
    return apply_method(base.to(device), key, choice).to(device)


def _auto_class(task: str) -> Any:
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoModelForSequenceClassification

    return {"causal-lm": AutoModelForCausalLM, "seq-cls": AutoModelForSequenceClassification,
            "seq2seq": AutoModelForSeq2SeqLM}[task]


def _pretrained(key: SkeletonKey, source: str, *, pad_token_id: int | None, **kwargs: Any) -> nn.Module:
    extra: dict[str, Any] = {"num_labels": key.num_labels} if key.task == "seq-cls" else {}
    if pad_token_id is not None and key.task == "seq-cls":
        extra["pad_token_id"] = pad_token_id
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = _auto_class(key.task).from_pretrained(
                source, attn_implementation=kwargs.pop("attention"), trust_remote_code=key.model.trust_remote_code,
                **extra, **kwargs,
            )
    except OSError as exc:
        raise InputError(
            f"cannot load the weights of {source}: {str(exc).splitlines()[0]} — pass a local model folder, "
            "go online, or use --init random"
        ) from None
    model.train()
    return model


def _qlora(
    key: SkeletonKey, choice: MethodChoice, *, device: str, attention: str, source: str | None, pad_token_id: int | None
) -> nn.Module:
    """QLoRA (Dettmers et al. 2023): a 4-bit NF4 base with double quantization, bf16 compute, LoRA on top.

    bitsandbytes quantizes while loading, so a random-init base is saved to a temporary folder first.
    """
    if device != "cuda" or find_spec("bitsandbytes") is None:
        raise MethodUnavailableError(QLORA_NEEDS)
    from peft import prepare_model_for_kbit_training
    from transformers import BitsAndBytesConfig

    quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                      bnb_4bit_compute_dtype=torch.bfloat16)
    with contextlib.ExitStack() as stack:
        if source is None:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="tunewise-qlora-"))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _auto_class(key.task).from_config(_config(key)).save_pretrained(folder)
            source = folder
        base = _pretrained(key, source, dtype=torch.bfloat16, attention=attention, pad_token_id=pad_token_id,
                           quantization_config=quantization, device_map={"": torch.cuda.current_device()})
    base = prepare_model_for_kbit_training(base, use_gradient_checkpointing=False)
    return apply_method(base, key, choice)


def _config(key: SkeletonKey) -> Any:
    config = key.model.build_config()
    if key.task == "seq-cls":
        config.num_labels = key.num_labels
        if getattr(config, "pad_token_id", None) is None:
            config.pad_token_id = 0
    return config


def enable_checkpointing(model: nn.Module) -> None:
    """transformers' gradient checkpointing (non-reentrant); inputs require grad so frozen bases still backprop."""
    inner = getattr(model, "get_base_model", lambda: model)()
    inner.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if hasattr(inner, "enable_input_require_grads"):
        inner.enable_input_require_grads()


def make_optimizer(model: nn.Module, name: str, lr: float) -> torch.optim.Optimizer:
    """The optimizers the estimator models (core.memory.step): torch AdamW (states in the parameters' dtype),
    SGD with momentum, transformers' Adafactor (no first moment), bitsandbytes' (paged) 8-bit AdamW on CUDA."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise MethodUnavailableError("the method left no trainable parameter in this model")
    record = OPTIMIZERS.get(name)
    if record is None:
        raise InputError(f"unknown optimizer {name!r}")
    if record.kind == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=0.0, **({"fused": True} if record.fused else {}))
    if record.kind == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9)
    if record.kind == "adafactor":
        from transformers.optimization import Adafactor

        return Adafactor(params, lr=lr, scale_parameter=False, relative_step=False, warmup_init=False)
    if find_spec("bitsandbytes") is None or not params[0].is_cuda:
        raise MethodUnavailableError(f"{name} needs bitsandbytes on a CUDA GPU (pip install bitsandbytes)")
    import bitsandbytes

    return (bitsandbytes.optim.PagedAdamW8bit if record.paged else bitsandbytes.optim.AdamW8bit)(params, lr=lr)


class Stepper:
    """One training step: forward (under autocast when mixed), backward, optimizer step, zero grad."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, *, device: str, compute: Precision) -> None:
        self.accelerator: Any = None
        if world_size() > 1:
            from accelerate import Accelerator

            self.accelerator = Accelerator()
            model, optimizer = self.accelerator.prepare(model, optimizer)
            device = str(self.accelerator.device)
            if torch.cuda.is_available():
                torch.cuda.reset_peak_memory_stats()  # the per-GPU peak of training, not of the unsharded build
        self.model = model
        self.optimizer = optimizer
        self.device = device
        self.compute = compute
        self.states: dict[str, int] = {}

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.compute.autocast is None or self.accelerator is not None:  # accelerate autocasts itself
            return contextlib.nullcontext()
        return torch.autocast(self.device, dtype=PROBE_DTYPES[self.compute.autocast])

    def step(self, inputs: dict[str, torch.Tensor], *, measure_states: bool = False) -> float:
        """Train on one batch; with `measure_states`, `states` holds the bytes held just before zero_grad."""
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        with self.autocast():
            loss = self.model(**inputs).loss
        if self.accelerator is not None:
            self.accelerator.backward(loss)
        else:
            loss.backward()
        self.optimizer.step()
        if measure_states:
            self.states = state_bytes(self.model, self.optimizer)
        self.optimizer.zero_grad(set_to_none=True)  # PyTorch's default, and what transformers' Trainer does
        return float(loss.detach())


def state_bytes(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, int]:
    """Bytes of weights (and buffers), gradients and optimizer states, each storage counted once."""
    seen: set[int] = set()

    def unique(tensors: Iterator[torch.Tensor]) -> int:
        total = 0
        for t in tensors:
            storage = t.untyped_storage()
            if storage.data_ptr() in seen or storage.nbytes() == 0:
                continue
            seen.add(storage.data_ptr())
            total += storage.nbytes()
        return total

    weights = unique(t for t in (*model.parameters(), *model.buffers()))
    gradients = unique(p.grad for p in model.parameters() if p.grad is not None)
    states = unique(v for s in optimizer.state.values() for v in s.values() if isinstance(v, torch.Tensor))
    return {"weights": weights, "gradients": gradients, "optimizer": states}


def release(device: str) -> None:
    """Free what the last method left behind before the next one is measured."""
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.empty_cache()


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def watch(cancelled: Callable[[], bool]) -> None:
    """Raise Cancelled when the app asked to stop (checked between steps)."""
    if cancelled():
        raise Cancelled
