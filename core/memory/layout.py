"""What a method changes in the model, read off the real modules: which base weights train, which layers carry
which adapter (with its rank, dropout, dtype), and which soft prompt is added.

Everything comes from the meta skeleton and the peft-wrapped meta copy that counting already built
(`core.counting.peft_model`), so the activation model follows peft's own targeting for every architecture
instead of a second list of methods. Adapters are recorded by block-relative name (peft targets by leaf name,
so every block of a stack carries the same adapters).
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from torch import nn

from core.counting import _is_head, peft_model
from core.errors import NotApplicableError
from core.registry import MethodChoice
from core.skeleton import SkeletonKey, skeleton, top_blocks

ELEM_BYTES: MappingProxyType[str, int] = MappingProxyType({"fp32": 4, "bf16": 2, "fp16": 2})
_BLOCK = re.compile(r"^(?P<stack>.+?)\.(?P<index>\d+)\.(?P<rest>.+)$")


@dataclass(frozen=True)
class Adapter:
    """One adapted layer. `kind` is peft's tuner package (lora, adalora, ia3, vera, loha, lokr, oft)."""

    kind: str
    features_in: int
    features_out: int
    rank: int = 0
    dropout: float = 0.0
    dora: bool = False
    feedforward: bool = False
    blocks: int = 0
    block_size: int = 0
    transposed: bool = False


@dataclass(frozen=True)
class SoftPrompt:
    """A prompt-learning method: peft's type, its virtual tokens and (p-tuning) the encoder's MLP widths."""

    peft_type: str
    tokens: int
    encoder_widths: tuple[int, ...] = ()


@dataclass(frozen=True)
class Layout:
    """Per-module training state of one method on one model (module paths are the base skeleton's)."""

    method: str
    adapters: MappingProxyType[str, Adapter] = field(default_factory=lambda: MappingProxyType({}))
    soft_prompt: SoftPrompt | None = None
    top_prefixes: tuple[str, ...] = ()
    trains_head: bool = False
    adapter_dtype: str = "fp32"

    def weight_trains(self, path: str) -> bool:
        """Whether the weight of module `path` trains (a bias alone never makes a layer save its input)."""
        if self.method == "fft":
            return True
        if self.trains_head and _is_head(path):
            return True
        return bool(self.top_prefixes) and path.startswith(self.top_prefixes)

    def bias_trains(self, path: str) -> bool:
        return self.method == "bitfit" or self.weight_trains(path)

    def adapter(self, path: str) -> Adapter | None:
        match = _BLOCK.match(path)
        return self.adapters.get(match["rest"]) if match else self.adapters.get(path)

    def block_state(self, block_path: str) -> bool:
        """What distinguishes one block from another for this method: only partial fine-tuning's top K."""
        return bool(self.top_prefixes) and f"{block_path}.".startswith(self.top_prefixes)


@lru_cache(maxsize=128)
def layout(key: SkeletonKey, choice: MethodChoice) -> Layout:
    """The layout of `choice` on the model of `key` (cached: the estimate reuses it for every batch and length)."""
    head = key.task == "seq-cls"
    if choice.method == "fft":
        return Layout("fft")
    if choice.method == "bitfit":
        return Layout("bitfit", trains_head=head)
    if choice.method == "partial_ft":
        assert choice.top_layers is not None
        prefixes = tuple(f"{name}." for name, _ in top_blocks(skeleton(key), choice.top_layers))
        return Layout("partial_ft", top_prefixes=prefixes, trains_head=head)
    wrapped = peft_model(key, choice, _keep(key))
    dtype = choice.adapter_dtype or "fp32"
    config = wrapped.peft_config["default"]
    peft_type = str(getattr(config.peft_type, "value", config.peft_type))
    if choice.spec.family == "soft-prompt":
        widths = tuple(m.out_features for m in wrapped.prompt_encoder.modules() if isinstance(m, nn.Linear))
        prompt = SoftPrompt(peft_type, int(config.num_virtual_tokens), widths)
        if peft_type == "PREFIX_TUNING" and not _takes_cache(skeleton(key)):
            # peft feeds prefixes as past keys/values; its forward refuses models that take none
            raise NotApplicableError(f"{choice.spec.name} cannot train {key.model.name}: the model takes no past "
                                     "keys/values to carry the prefixes; choose prompt_tuning or lora")
        return Layout(choice.method, soft_prompt=prompt, trains_head=head, adapter_dtype=dtype)
    return Layout(choice.method, adapters=MappingProxyType(_adapters(wrapped)), trains_head=head, adapter_dtype=dtype)


def _takes_cache(model: nn.Module) -> bool:
    """peft's own test: the model's forward, or its backbone's, takes `past_key_values`."""
    backbone = getattr(model, getattr(model, "base_model_prefix", ""), model)
    return any("past_key_values" in inspect.signature(m.forward).parameters for m in (model, backbone))


@lru_cache(maxsize=64)
def _keep(key: SkeletonKey) -> tuple[tuple[str, int], ...] | None:
    """The truncation counting used for its first peft copy (2 blocks per stack), so that copy is reused."""
    from core.skeleton import block_stacks

    stacks = block_stacks(skeleton(key))
    return tuple((name, 2) for name in stacks) if stacks else None


def _adapters(wrapped: nn.Module) -> dict[str, Adapter]:
    """Adapted layers of the first block of each stack (and outside blocks), keyed by block-relative name."""
    found: dict[str, Adapter] = {}
    root = wrapped.base_model.model
    for name, module in root.named_modules():
        if not hasattr(module, "base_layer"):
            continue
        match = _BLOCK.match(name)
        if match and match["index"] != "0":
            continue
        adapter = _describe(module)
        if adapter is not None:
            found[match["rest"] if match else name] = adapter
    return found


def _describe(module: Any) -> Adapter | None:
    kind = type(module).__module__.split(".")[2]  # peft.tuners.<kind>.layer
    if kind not in ("lora", "adalora", "ia3", "vera", "loha", "lokr", "oft"):
        return None
    base = module.get_base_layer()
    features_in, features_out = _features(base)
    if kind in {"lora", "adalora"}:
        rank = module.lora_A["default"].shape[0] if kind == "adalora" else module.lora_A["default"].out_features
        return Adapter(kind, features_in, features_out, rank=int(rank), dropout=_p(module.lora_dropout["default"]),
                       dora=bool(getattr(module, "use_dora", {}).get("default", False)),
                       transposed=type(base).__name__ == "Conv1D")
    if kind == "ia3":
        return Adapter(kind, features_in, features_out, feedforward=bool(module.is_feedforward))
    if kind == "vera":
        return Adapter(kind, features_in, features_out, rank=int(module.r["default"]),
                       dropout=_p(module.vera_dropout["default"]))
    if kind in ("loha", "lokr"):
        return Adapter(kind, features_in, features_out, dropout=float(module.rank_dropout["default"]))
    if kind == "oft":
        rotation = module.oft_R["default"]
        return Adapter(kind, features_in, features_out, blocks=int(rotation.r), block_size=int(rotation.block_size),
                       dropout=float(getattr(module.oft_dropout["default"], "p", 0.0)))
    return None


def _p(dropout: nn.Module) -> float:
    return float(getattr(dropout, "p", 0.0))


def _features(module: nn.Module) -> tuple[int, int]:
    """(in, out) of a Linear or transformers' Conv1D (GPT-2), whose weight is stored transposed."""
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    weight = module.weight
    if type(module).__name__ == "Conv1D":
        return int(weight.shape[0]), int(weight.shape[1])
    return int(weight.shape[1]), int(weight.shape[0])


def features(key: SkeletonKey, path: str) -> tuple[int, int]:
    """(in, out) features of the linear layer at `path` in the base skeleton."""
    return _features(skeleton(key).get_submodule(path))
