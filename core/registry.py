"""The one registry of fine-tuning methods.

The counter, estimator, warehouse normaliser, recommender, CLI and UI all read this module, so a method
exists in exactly one place. Each entry says what the method is (id, display name, family), which knobs it
takes with their defaults, and how it is applied (a peft config builder, or a `requires_grad` rule for
BitFit and partial fine-tuning). Methods that exist only as published evidence (bottleneck adapters,
SPoT, ...) are listed with `estimable=False`: they can be shown, never counted or estimated.

This module imports peft lazily (inside the builders) so that reading the registry stays cheap.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from core.errors import InputError

if TYPE_CHECKING:
    from peft import PeftConfig

FAMILIES: Mapping[str, str] = MappingProxyType(
    {
        "full": "Full fine-tuning: every weight trains",
        "selective": "Selective: a chosen subset of the existing weights trains",
        "low-rank": "Reparameterised: a low-rank or structured update beside frozen weights",
        "scaling": "Rescaling: learned vectors scale frozen activations",
        "soft-prompt": "Soft prompts: learned virtual tokens or key/value prefixes",
        "additive": "Additive: new bottleneck modules inserted into the network",
        "baseline": "No training: the base model as published",
    }
)

ADAPTER_DTYPES: tuple[str, ...] = ("fp32", "bf16", "fp16")
ALL_LINEAR = "all-linear"
ADALORA_INIT_RATIO = 12 / 8  # peft AdaLoraConfig defaults: init_r=12, target_r=8


@dataclass(frozen=True)
class Knob:
    """One user-facing setting of a method; `kind` is the Python type the CLI parses."""

    name: str
    kind: type
    help: str
    cli_flag: str


KNOBS: Mapping[str, Knob] = MappingProxyType(
    {
        knob.name: knob
        for knob in (
            Knob("rank", int, "adapter rank r (AdaLoRA: the target rank; OFT: the number of blocks)", "--rank"),
            Knob("alpha", float, "scaling numerator: the update is scaled by alpha / r", "--alpha"),
            Knob("targets", str, f"module names to adapt, comma-separated, or '{ALL_LINEAR}'", "--targets"),
            Knob("dropout", float, "dropout on the adapter input, in [0, 1)", "--dropout"),
            Knob(
                "adapter_dtype", str, "dtype adapters are kept in: fp32 (peft's default), bf16, fp16", "--adapter-dtype"
            ),
            Knob("virtual_tokens", int, "number of virtual tokens (soft prompts / prefixes)", "--virtual-tokens"),
            Knob("top_layers", int, "train only the top K transformer blocks", "--top-layers"),
            Knob("init_rank", int, "AdaLoRA's starting rank before pruning to --rank", "--init-rank"),
        )
    }
)


@dataclass(frozen=True)
class Method:
    """A registry entry. `build` turns resolved knob values into a peft config (None: not a peft method)."""

    id: str
    name: str
    family: str
    summary: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    build: Callable[[Mapping[str, Any], str], PeftConfig] | None = None
    estimable: bool = True
    quantized_base: bool = False
    reference: str = ""

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"method {self.id}: unknown family {self.family!r}")
        unknown = set(self.defaults) - set(KNOBS)
        if unknown:
            raise ValueError(f"method {self.id}: unknown knobs {sorted(unknown)}")

    @property
    def knobs(self) -> tuple[str, ...]:
        """The knob names this method accepts, in registry order."""
        return tuple(name for name in KNOBS if name in self.defaults)

    @property
    def is_peft(self) -> bool:
        return self.build is not None


def _targets(value: Any) -> Any:
    """peft's `target_modules`: None means peft's default for the architecture."""
    if value is None or value == ALL_LINEAR:
        return value
    return list(value)


def _lora(knobs: Mapping[str, Any], task_type: str, **extra: Any) -> PeftConfig:
    from peft import LoraConfig

    return LoraConfig(
        task_type=task_type,
        r=knobs["rank"],
        lora_alpha=knobs["alpha"],
        lora_dropout=knobs["dropout"],
        target_modules=_targets(knobs["targets"]),
        **extra,
    )


def _dora(knobs: Mapping[str, Any], task_type: str) -> PeftConfig:
    return _lora(knobs, task_type, use_dora=True)


def _adalora(knobs: Mapping[str, Any], task_type: str) -> PeftConfig:
    from peft import AdaLoraConfig

    return AdaLoraConfig(
        task_type=task_type,
        target_r=knobs["rank"],
        init_r=knobs["init_rank"],
        lora_alpha=knobs["alpha"],
        lora_dropout=knobs["dropout"],
        target_modules=_targets(knobs["targets"]),
        total_step=1000,  # required by peft; the schedule does not change parameter counts
    )


def _ia3(knobs: Mapping[str, Any], task_type: str) -> PeftConfig:
    from peft import IA3Config

    targets = _targets(knobs["targets"])
    # peft needs the feed-forward subset named when targets are custom; none of them is then feed-forward.
    extra = {} if targets is None else {"feedforward_modules": []}
    return IA3Config(task_type=task_type, target_modules=targets, **extra)


def _vera(knobs: Mapping[str, Any], task_type: str) -> PeftConfig:
    from peft import VeraConfig

    return VeraConfig(
        task_type=task_type, r=knobs["rank"], vera_dropout=knobs["dropout"], target_modules=_targets(knobs["targets"])
    )


def _loha(knobs: Mapping[str, Any], task_type: str) -> PeftConfig:
    from peft import LoHaConfig

    return LoHaConfig(
        task_type=task_type,
        r=knobs["rank"],
        alpha=knobs["alpha"],
        rank_dropout=knobs["dropout"],
        target_modules=_targets(knobs["targets"]),
    )


def _lokr(knobs: Mapping[str, Any], task_type: str) -> PeftConfig:
    from peft import LoKrConfig

    return LoKrConfig(
        task_type=task_type,
        r=knobs["rank"],
        alpha=knobs["alpha"],
        rank_dropout=knobs["dropout"],
        target_modules=_targets(knobs["targets"]),
    )


def _oft(knobs: Mapping[str, Any], task_type: str) -> PeftConfig:
    from peft import OFTConfig

    # OFT takes either the number of blocks r or the block size; None keeps peft's default block size 32.
    sizing = {"r": knobs["rank"], "oft_block_size": 0} if knobs["rank"] else {}
    return OFTConfig(
        task_type=task_type, module_dropout=knobs["dropout"], target_modules=_targets(knobs["targets"]), **sizing
    )


def _prefix(knobs: Mapping[str, Any], task_type: str) -> PeftConfig:
    from peft import PrefixTuningConfig

    return PrefixTuningConfig(task_type=task_type, num_virtual_tokens=knobs["virtual_tokens"])


def _prompt(knobs: Mapping[str, Any], task_type: str) -> PeftConfig:
    from peft import PromptTuningConfig

    return PromptTuningConfig(task_type=task_type, num_virtual_tokens=knobs["virtual_tokens"])


def _p_tuning(knobs: Mapping[str, Any], task_type: str) -> PeftConfig:
    from peft import PromptEncoderConfig

    return PromptEncoderConfig(task_type=task_type, num_virtual_tokens=knobs["virtual_tokens"])


_LORA_DEFAULTS = {"rank": 8, "alpha": 8.0, "targets": None, "dropout": 0.0, "adapter_dtype": "fp32"}
_PROMPT_DEFAULTS = {"virtual_tokens": 20, "adapter_dtype": "fp32"}

_METHODS: tuple[Method, ...] = (
    Method("fft", "Full fine-tuning", "full", "every weight trains; the reference every gap is measured against"),
    Method(
        "partial_ft",
        "Partial fine-tuning (top K blocks)",
        "selective",
        "only the top K transformer blocks (and a new task head) train",
        {"top_layers": 2},
        reference="Li & Liang 2021 (FT-Top2); Liu et al., Look Within or Look Beyond?",
    ),
    Method(
        "bitfit",
        "BitFit (biases only)",
        "selective",
        "only bias terms (and a new task head) train",
        reference="Ben Zaken et al. 2022, arXiv 2106.10199",
    ),
    Method(
        "lora",
        "LoRA",
        "low-rank",
        "a rank-r update B·A beside each frozen target weight",
        _LORA_DEFAULTS,
        _lora,
        reference="Hu et al. 2021, arXiv 2106.09685",
    ),
    Method(
        "qlora",
        "QLoRA (4-bit NF4 base + LoRA)",
        "low-rank",
        "LoRA on every linear layer of a 4-bit NormalFloat base",
        {"rank": 64, "alpha": 16.0, "targets": ALL_LINEAR, "dropout": 0.1, "adapter_dtype": "fp32"},
        _lora,
        quantized_base=True,
        reference="Dettmers et al. 2023, arXiv 2305.14314 (r=64, alpha=16, dropout 0.1, all linear layers)",
    ),
    Method(
        "dora",
        "DoRA",
        "low-rank",
        "LoRA on the direction plus a trained magnitude vector per weight",
        _LORA_DEFAULTS,
        _dora,
        reference="Liu et al. 2024, arXiv 2402.09353",
    ),
    Method(
        "adalora",
        "AdaLoRA",
        "low-rank",
        "SVD-form LoRA that starts at --init-rank and prunes to --rank",
        {"rank": 8, "init_rank": 12, "alpha": 8.0, "targets": None, "dropout": 0.0, "adapter_dtype": "fp32"},
        _adalora,
        reference="Zhang et al. 2023, arXiv 2303.10512",
    ),
    Method(
        "ia3",
        "IA3",
        "scaling",
        "learned vectors rescale keys, values and feed-forward activations",
        {"targets": None, "adapter_dtype": "fp32"},
        _ia3,
        reference="Liu et al. 2022, arXiv 2205.05638",
    ),
    Method(
        "vera",
        "VeRA",
        "low-rank",
        "frozen shared random matrices with trained scaling vectors",
        {"rank": 256, "targets": None, "dropout": 0.0, "adapter_dtype": "fp32"},
        _vera,
        reference="Kopiczko et al. 2024, arXiv 2310.11454",
    ),
    Method(
        "loha",
        "LoHa",
        "low-rank",
        "Hadamard product of two low-rank updates",
        _LORA_DEFAULTS,
        _loha,
        reference="Hyeon-Woo et al. 2022, arXiv 2108.06098",
    ),
    Method(
        "lokr",
        "LoKr",
        "low-rank",
        "Kronecker-product update",
        _LORA_DEFAULTS,
        _lokr,
        reference="Yeh et al. 2024, arXiv 2309.14859",
    ),
    Method(
        "oft",
        "OFT",
        "low-rank",
        "block-diagonal orthogonal rotation of frozen weights",
        {"rank": None, "targets": None, "dropout": 0.0, "adapter_dtype": "fp32"},
        _oft,
        reference="Qiu et al. 2023, arXiv 2306.07280",
    ),
    Method(
        "prefix_tuning",
        "Prefix tuning",
        "soft-prompt",
        "learned key/value prefixes in every attention layer",
        _PROMPT_DEFAULTS,
        _prefix,
        reference="Li & Liang 2021, arXiv 2101.00190",
    ),
    Method(
        "prompt_tuning",
        "Prompt tuning",
        "soft-prompt",
        "learned virtual tokens prepended to the input embeddings",
        _PROMPT_DEFAULTS,
        _prompt,
        reference="Lester et al. 2021, arXiv 2104.08691",
    ),
    Method(
        "p_tuning",
        "P-tuning",
        "soft-prompt",
        "virtual tokens produced by a small prompt encoder (MLP)",
        _PROMPT_DEFAULTS,
        _p_tuning,
        reference="Liu et al. 2021, arXiv 2103.10385",
    ),
    # Evidence-only methods: published results exist, but TuneWise does not count or estimate them.
    Method(
        "adapter",
        "Bottleneck adapters",
        "additive",
        "small bottleneck MLPs inserted after sub-layers",
        estimable=False,
        reference="Houlsby et al. 2019; Pfeiffer et al. 2021",
    ),
    Method(
        "spot",
        "SPoT (soft prompt transfer)",
        "soft-prompt",
        "prompt tuning initialised from a source-task prompt",
        estimable=False,
        reference="Vu et al. 2022, arXiv 2110.07904",
    ),
    Method(
        "dvora",
        "DVoRA (DoRA + VeRA)",
        "low-rank",
        "DoRA's magnitude/direction split over VeRA's shared random matrices",
        estimable=False,
        reference="Liu et al. 2024, arXiv 2402.09353 (DoRA paper, DVoRA variant)",
    ),
    Method("base", "No fine-tuning", "baseline", "the base model as published, for reference", estimable=False),
    Method(
        "other", "Other (not normalised)", "baseline", "a published method name TuneWise could not map", estimable=False
    ),
)

METHODS: Mapping[str, Method] = MappingProxyType({m.id: m for m in _METHODS})


def method_ids(*, estimable_only: bool = True) -> tuple[str, ...]:
    """Registry ids in display order; by default only the methods TuneWise can count and estimate."""
    return tuple(m.id for m in _METHODS if m.estimable or not estimable_only)


def get_method(method_id: str) -> Method:
    """Look a method up by id; the error lists the valid ids."""
    key = method_id.strip().lower().replace("-", "_")
    if key not in METHODS:
        raise InputError(f"unknown method {method_id!r}: choose one of {', '.join(method_ids())} (or 'all')")
    return METHODS[key]


@dataclass(frozen=True)
class MethodChoice:
    """A method with its knob values; unset knobs take the registry default, foreign knobs are refused."""

    method: str
    rank: int | None = None
    alpha: float | None = None
    targets: tuple[str, ...] | str | None = None
    dropout: float | None = None
    adapter_dtype: str | None = None
    virtual_tokens: int | None = None
    top_layers: int | None = None
    init_rank: int | None = None

    def __post_init__(self) -> None:
        spec = get_method(self.method)
        if not spec.estimable:
            raise InputError(
                f"method {spec.id!r} exists only as published evidence; choose one of {', '.join(method_ids())}"
            )
        object.__setattr__(self, "method", spec.id)
        given = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "method"}
        foreign = [KNOBS[k].cli_flag for k, v in given.items() if v is not None and k not in spec.defaults]
        if foreign:
            takes = ", ".join(KNOBS[k].cli_flag for k in spec.knobs) or "no knobs"
            raise InputError(f"{spec.name} does not take {', '.join(foreign)}; it takes {takes}")
        for name, default in spec.defaults.items():
            if given[name] is None:
                object.__setattr__(self, name, default)
        if self.method == "adalora" and given["init_rank"] is None and self.rank is not None:
            # peft's own ratio: AdaLoraConfig defaults to init_r=12 for target_r=8, i.e. start 1.5x the target.
            object.__setattr__(self, "init_rank", math.ceil(self.rank * ADALORA_INIT_RATIO))
        if isinstance(self.targets, str) and self.targets != ALL_LINEAR:
            object.__setattr__(self, "targets", _split_targets(self.targets))
        self._validate()

    def _validate(self) -> None:
        checks = (
            ("rank", self.rank, lambda v: v >= 1, "must be a positive integer, e.g. --rank 8"),
            ("init_rank", self.init_rank, lambda v: v >= 1, "must be a positive integer"),
            ("alpha", self.alpha, lambda v: v > 0, "must be positive, e.g. --alpha 16"),
            ("dropout", self.dropout, lambda v: 0 <= v < 1, "must be in [0, 1), e.g. --dropout 0.05"),
            ("virtual_tokens", self.virtual_tokens, lambda v: v >= 1, "must be at least 1, e.g. --virtual-tokens 20"),
            ("top_layers", self.top_layers, lambda v: v >= 1, "must be at least 1, e.g. --top-layers 2"),
        )
        for name, value, ok, fix in checks:
            if value is not None and not ok(value):
                raise InputError(f"{KNOBS[name].cli_flag} {value} {fix}")
        if self.adapter_dtype is not None and self.adapter_dtype not in ADAPTER_DTYPES:
            raise InputError(f"--adapter-dtype {self.adapter_dtype!r} is not one of {', '.join(ADAPTER_DTYPES)}")
        if self.init_rank is not None and self.rank is not None and self.init_rank < self.rank:
            raise InputError(
                f"--init-rank {self.init_rank} is below the target --rank {self.rank}; AdaLoRA prunes down"
            )
        if self.targets is not None and not self.targets:
            raise InputError(f"--targets is empty: name modules, e.g. q_proj,v_proj, or '{ALL_LINEAR}'")

    @property
    def spec(self) -> Method:
        return METHODS[self.method]

    def knob_values(self) -> dict[str, Any]:
        """The resolved knobs this method takes (defaults filled in)."""
        return {name: getattr(self, name) for name in self.spec.knobs}

    def peft_config(self, task_type: str) -> PeftConfig | None:
        """The real peft config for this choice, or None for methods applied by `requires_grad`."""
        build = self.spec.build
        return None if build is None else build(self.knob_values(), task_type)

    def label(self) -> str:
        """Short human label, e.g. 'LoRA r=16 (all-linear)'."""
        parts = [self.spec.name]
        if self.rank is not None and self.method != "oft":
            parts.append(f"r={self.rank}")
        if self.virtual_tokens is not None:
            parts.append(f"{self.virtual_tokens} tokens")
        if self.top_layers is not None:
            parts.append(f"top {self.top_layers}")
        if isinstance(self.targets, tuple):
            parts.append(f"({','.join(self.targets)})")
        elif self.targets == ALL_LINEAR:
            parts.append(f"({ALL_LINEAR})")
        return " ".join(parts)


def _split_targets(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def choices_for(methods: tuple[str, ...] | list[str], **knobs: Any) -> tuple[MethodChoice, ...]:
    """Several methods sharing one set of knob values: each method takes the knobs it accepts (None = default)."""
    given = {name: value for name, value in knobs.items() if value is not None}
    unknown = sorted(set(given) - set(KNOBS))
    if unknown:
        raise InputError(f"unknown knobs {', '.join(unknown)}: choose from {', '.join(KNOBS)}")
    return tuple(
        MethodChoice(spec.id, **{k: v for k, v in given.items() if k in spec.defaults})
        for spec in (get_method(m) for m in methods)
    )
