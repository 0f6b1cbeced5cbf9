"""The one registry of fine-tuning methods.

The counter, estimator, warehouse normaliser, recommender, CLI and UI all read this module, so a method
exists in exactly one place. Each entry says what the method is (id, display name, family, the names it
goes by), which knobs it takes with their defaults, and how it trains: a peft config builder (plus what
peft's own optimizer helper freezes or changes), or a `Trains` rule for the methods that set `requires_grad`
themselves (full fine-tuning, BitFit, partial fine-tuning). Every peft type peft ships is here; methods
that exist only as published evidence (bottleneck adapters, SPoT, ...) or that peft cannot build from a
config alone (X-LoRA mixes already trained adapters; FRoD decomposes the weight values) are listed with
`estimable=False`: they can be shown, never counted or estimated.

This module imports peft lazily (inside the builders) so that reading the registry stays cheap.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from itertools import pairwise
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from core.errors import InputError

if TYPE_CHECKING:
    from peft import PeftConfig

    Builder = Callable[[Mapping[str, Any], str], PeftConfig]

FAMILIES: Mapping[str, str] = MappingProxyType(
    {
        "full": "Full fine-tuning: every weight trains",
        "selective": "Selective / sparse: a chosen subset of the existing weights (or of their entries) trains",
        "low-rank": "Reparameterised: a low-rank or structured update beside frozen weights",
        "orthogonal": "Orthogonal: a learned rotation or reflection of frozen weights",
        "scaling": "Rescaling: learned vectors scale frozen activations",
        "soft-prompt": "Soft prompts: learned virtual tokens or key/value prefixes",
        "additive": "Additive: new modules inserted into or beside the network",
        "baseline": "No training: the base model as published",
    }
)


@dataclass(frozen=True)
class NamePattern:
    """A regex searched in a lower-cased free-form name ("LoRA r=16 (all modules)", "FT-Top2", "HydraLoRA").
    Every pattern of one table (the methods' `name_patterns`, or `FAMILY_NAMES`) is tried in ascending
    `priority` and the first match wins, so a name that contains another goes first (DVoRA before DoRA before
    LoRA). Priorities are unique per table, in steps of 10 to leave room for new names."""

    priority: int
    regex: str


# Literature names, read as their family when a name reads as no registry method. Sources: the method papers' own
# descriptions (PiSSA, OLoRA, rsLoRA, LoRA+, MoRA, ReLoRA, HydraLoRA, SVFT, VB-LoRA, FourierFT are low-rank or
# structured updates of frozen weights; BOFT, HRA, Bone/MiSS are orthogonal or householder rotations,
# reparameterisations like OFT; Houlsby, Pfeiffer, parallel adapters and Compacter add bottleneck modules;
# LLaMA-Adapter / adaption prompt and XPrompt learn prompts; SHiRA, diff pruning, FISH, LN tuning and trainable
# tokens train a sparse subset of existing weights like BitFit).
FAMILY_NAMES: Mapping[str, NamePattern] = MappingProxyType(
    {
        "orthogonal": NamePattern(10, r"\bb?oft\b|orthogonal|householder|\bhra\b|\bbone\b|\bmiss\b|goft|psoft|\bosf\b"),
        "soft-prompt": NamePattern(
            20, r"adaption.?prompt|llama.?adapter|prompt|prefix|p.?tuning|soft.?prompt|\bspot\b"
        ),  # before additive: LLaMA-Adapter learns prompts
        "additive": NamePattern(30, r"adapter|houlsby|pfeiffer|parallel|compacter|\bmam\b"),
        "scaling": NamePattern(40, r"ia3|\(ia\)|\bscal"),
        "selective": NamePattern(
            50,
            r"bitfit|bias|sparse|shira|diff.?prun|fish|ln.?tuning|layer.?norm|trainable.?tokens|partial|top.?\d|"
            r"freez|\bfrod\b|\bbeft\b",
        ),
        "low-rank": NamePattern(
            60,
            r"lora|lokr|loha|vera|svft|\bmora\b|pissa|krona|low.?rank|fourier|waveft|\bc3a\b|\bhira\b|\blily\b|"
            r"adamss|\broad\b|glora|peanut|\bdeft\b|svd|rank",
        ),  # last: "rank" and "lora" are inside many other names
    }
)

ADAPTER_DTYPES: tuple[str, ...] = ("fp32", "bf16", "fp16")
ALL_LINEAR = "all-linear"
# peft's own target modules for the architecture (its TRANSFORMERS_MODELS_TO_*_TARGET_MODULES_MAPPING): a named
# value, not an absent one, so every method can be set to it and compared there at equal settings.
PEFT_DEFAULT = "peft-default"
ADALORA_INIT_RATIO = 12 / 8  # peft AdaLoraConfig defaults: init_r=12, target_r=8
# Which existing weights a `Trains` rule selects, with the words an error uses when a model has none.
TRAIN_SCOPES: Mapping[str, str] = MappingProxyType(
    {"all": "every weight", "biases": "bias terms", "top_blocks": "the top transformer blocks"}
)
# Where a soft prompt's virtual tokens go: nowhere, in front of the input sequence, or into attention's keys/values.
SOFT_PROMPT_PLACES: tuple[str, ...] = ("none", "input", "attention")
# How a method's parameters relate to the transformer blocks (see `Method.blocks`).
BLOCK_SHARING: tuple[str, ...] = ("own", "shared", "top")


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
            Knob("targets", str, f"module names to adapt, comma-separated, '{ALL_LINEAR}', or '{PEFT_DEFAULT}' (peft's "
                 "default modules for the model)", "--targets"),
            Knob("dropout", float, "dropout on the adapter input, in [0, 1)", "--dropout"),
            Knob(
                "adapter_dtype", str, "dtype adapters are kept in: fp32 (peft's default), bf16, fp16", "--adapter-dtype"
            ),
            Knob(
                "virtual_tokens", int, "number of virtual tokens (soft prompts, prefixes, adapter prompts)",
                "--virtual-tokens",
            ),
            Knob("top_layers", int, "train (adaption prompt: prompt) only the top K blocks", "--top-layers"),
            Knob("init_rank", int, "AdaLoRA's starting rank before pruning to --rank", "--init-rank"),
            Knob("block_size", int, "block size of block-structured adapters (BOFT, C3A, RoAd groups)", "--block-size"),
            Knob("n_frequency", int, "spectral coefficients trained per layer (FourierFT, WaveFT)", "--n-frequency"),
            Knob("tokens", int, "embedding rows trainable tokens trains (e.g. new special tokens)", "--tokens"),
        )
    }
)


@dataclass(frozen=True)
class Trains:
    """What a method that is not a peft method trains: existing weights chosen by `scope` (see TRAIN_SCOPES),
    plus, on a classification model, the newly initialised task head (it has no pretrained values to keep)."""

    scope: str
    new_head: bool = True

    def __post_init__(self) -> None:
        if self.scope not in TRAIN_SCOPES:
            raise ValueError(f"unknown train scope {self.scope!r}: choose one of {', '.join(TRAIN_SCOPES)}")


@dataclass(frozen=True)
class Method:
    """A registry entry: identity, knobs with defaults, and exactly one way to train (a peft `build`er or a
    `trains` rule), with the per-method facts the counter, the apply step and the memory trace read:

    - `rank_bounds_layers`: --rank may not exceed the smaller side of an adapted layer (LoRA-style factors).
    - `soft_prompt`: where --virtual-tokens go (`SOFT_PROMPT_PLACES`): the input sequence, or attention's
      keys/values (prefixes), so the trace knows which length grows.
    - `frozen_adapter_params`: adapter parameters peft's optimizer helper freezes after wrapping (LoRA-FA: A).
    - `optimizer`: peft's optimizer helper the method needs (`peft.optimizers.<name>`), if any.
    - `blocks`: how the method's parameters relate to the blocks (`BLOCK_SHARING`), which decides how counting
      may shortcut: "own" (every block holds its own adapter: count one block per kind), "shared" (adapters
      held outside the blocks grow with depth, as Lily's and TinyLoRA's: difference of 1- and 2-block copies,
      exact for stacks of one repeated kind), "top" (only the top K blocks are adapted: the whole model).
    - `meta_init`: peft's init runs with the default device on meta (False: its init builds small index or
      permutation tensors from data, which must be real; the base model stays on meta either way).
    - `scaled_defaults`: knob -> (knob, ratio): when unset, ceil(ratio x the other knob) (AdaLoRA's init rank).
    - `rank_label`: what --rank means in labels (OFT: the number of blocks).
    - `task_ids`: the forward routes each example by a task id (Poly, multitask prompt tuning): training steps
      pass one per example.
    - `placeholders`: makes, on the traced model, the tensors peft's init derives from weight values (which the
      skeleton lacks), at their real shape, and returns them (they stay on the GPU: counted as weights).
    - `aliases`: other exact names of the method (case, spaces and punctuation aside), read by `get_method` and
      the warehouse normaliser.
    - `name_patterns`: how a free-form published name reads as this method when it spells no id or alias
      (`NamePattern`s, tried across the registry in priority order: `NAME_RULES`).
    """

    id: str
    name: str
    family: str
    summary: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    build: Builder | None = None
    trains: Trains | None = None
    estimable: bool = True
    unavailable: str = "exists only as published evidence"
    quantized_base: bool = False
    aliases: tuple[str, ...] = ()
    name_patterns: tuple[NamePattern, ...] = ()
    rank_bounds_layers: bool = False
    soft_prompt: str = "none"
    frozen_adapter_params: tuple[str, ...] = ()
    optimizer: str = ""
    blocks: str = "own"
    meta_init: bool = True
    scaled_defaults: Mapping[str, tuple[str, float]] = field(default_factory=dict)
    rank_label: str = "r"
    task_ids: bool = False
    placeholders: Callable[[Any], list[Any]] | None = None
    reference: str = ""

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"method {self.id}: unknown family {self.family!r}")
        unknown = (set(self.defaults) | set(self.scaled_defaults)) - set(KNOBS)
        if unknown:
            raise ValueError(f"method {self.id}: unknown knobs {sorted(unknown)}")
        if self.estimable and (self.build is None) == (self.trains is None):
            raise ValueError(f"method {self.id}: an estimable method has one of a peft builder or a trains rule")
        if self.soft_prompt not in SOFT_PROMPT_PLACES:
            raise ValueError(f"method {self.id}: soft_prompt {self.soft_prompt!r} not in {SOFT_PROMPT_PLACES}")
        if self.soft_prompt != "none" and "virtual_tokens" not in self.defaults:
            raise ValueError(f"method {self.id}: a soft prompt needs the virtual_tokens knob")
        if self.blocks not in BLOCK_SHARING:
            raise ValueError(f"method {self.id}: blocks {self.blocks!r} not in {BLOCK_SHARING}")
        if self.rank_bounds_layers and "rank" not in self.defaults:
            raise ValueError(f"method {self.id}: rank_bounds_layers needs the rank knob")

    @property
    def top_blocks_only(self) -> bool:
        """Only the top --top-layers blocks train or are adapted (partial fine-tuning, adaption prompt), so a
        copy of the model must hold them all and grow below them."""
        return self.blocks == "top" or (self.trains is not None and self.trains.scope == "top_blocks")

    @property
    def knobs(self) -> tuple[str, ...]:
        """The knob names this method accepts, in registry order."""
        return tuple(name for name in KNOBS if name in self.defaults)

    @property
    def is_peft(self) -> bool:
        return self.build is not None

    @property
    def names(self) -> tuple[str, ...]:
        """The exact names of the method: its id, then its aliases."""
        return (self.id, *self.aliases)


def _targets(value: Any) -> Any:
    """peft's `target_modules`: None is how peft spells its default for the architecture."""
    if value == PEFT_DEFAULT:
        return None
    return value if value == ALL_LINEAR else list(value)


def _token_range(count: int) -> list[int]:
    """Token ids 0..count-1: counts and memory depend on how many rows train, not on which."""
    return list(range(count))


# How a knob value becomes a peft config value, where it is not passed as it is.
_CONVERT: Mapping[str, Callable[[Any], Any]] = MappingProxyType({"targets": _targets, "tokens": _token_range})


@dataclass(frozen=True)
class PeftBuilder:
    """Builds `peft.<class_name>`: each config field in `fields_from` takes the named knob's value, `fixed` the rest."""

    class_name: str
    fields_from: Mapping[str, str]
    fixed: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.fields_from.values()) - set(KNOBS)
        if unknown:
            raise ValueError(f"{self.class_name}: unknown knobs {sorted(unknown)}")

    def __call__(self, knobs: Mapping[str, Any], task_type: str) -> PeftConfig:
        values = {f: _CONVERT.get(knob, lambda v: v)(knobs[knob]) for f, knob in self.fields_from.items()}
        return self.config_class(task_type=task_type, **values, **self.fixed)

    @property
    def config_class(self) -> type[PeftConfig]:
        import peft

        return getattr(peft, self.class_name)


def _config(class_name: str, fields_from: Mapping[str, str], **fixed: Any) -> PeftBuilder:
    return PeftBuilder(class_name, MappingProxyType(dict(fields_from)), MappingProxyType(fixed))


_LORA_FIELDS = {"r": "rank", "lora_alpha": "alpha", "lora_dropout": "dropout", "target_modules": "targets"}


def _lora(**extra: Any) -> PeftBuilder:
    return _config("LoraConfig", _LORA_FIELDS, **extra)


def _ia3(knobs: Mapping[str, Any], task_type: str) -> PeftConfig:
    from peft import IA3Config

    targets = _targets(knobs["targets"])
    # peft needs the feed-forward subset named when targets are custom; none of them is then feed-forward.
    extra = {} if targets is None else {"feedforward_modules": []}
    return IA3Config(task_type=task_type, target_modules=targets, **extra)


def _oft(knobs: Mapping[str, Any], task_type: str) -> PeftConfig:
    from peft import OFTConfig

    # OFT takes either the number of blocks r or the block size; None keeps peft's default block size 32.
    sizing = {"r": knobs["rank"], "oft_block_size": 0} if knobs["rank"] else {}
    return OFTConfig(
        task_type=task_type, module_dropout=knobs["dropout"], target_modules=_targets(knobs["targets"]), **sizing
    )


def _cpt(knobs: Mapping[str, Any], task_type: str) -> PeftConfig:
    from peft import CPTConfig

    # CPT's prompt is a run of context tokens; each is an input token (type 1) with its loss masked.
    tokens = _token_range(knobs["virtual_tokens"])
    return CPTConfig(
        task_type=task_type, cpt_token_ids=tokens, cpt_mask=[1] * len(tokens), cpt_tokens_type_mask=[1] * len(tokens)
    )


def _shira_mask(base_layer: Any, r: int, **_: Any) -> Any:
    """peft's random SHiRA mask where the weight has data; on meta, no mask. The trained vector's size,
    r x (in + out), does not depend on the mask, and the mask's indices are a buffer, not a parameter."""
    from peft.tuners.shira.mask_functions import random_mask

    return None if base_layer.weight.device.type == "meta" else random_mask(base_layer, r)


def _shira_indices(model: Any) -> list[Any]:
    """SHiRA's indices of the trained entries (2 x the trained vector's length, int32 as peft stores them, on the
    GPU beside it): peft derives them from the mask, which needs weight values; which entries they name does not
    change a byte (each forward's sparse update copies them to int64, which the trace sees)."""
    import torch
    from peft.tuners.shira.layer import ShiraLayer

    made = []
    for layer in (m for m in model.modules() if isinstance(m, ShiraLayer)):
        for name, weight in layer.shira_weight.items():
            layer.shira_indices[name] = torch.zeros(2, weight.numel(), dtype=torch.int32)
            made.append(layer.shira_indices[name])
    return made


def _shira(knobs: Mapping[str, Any], task_type: str) -> PeftConfig:
    from peft import ShiraConfig

    config = ShiraConfig(task_type=task_type, r=knobs["rank"], target_modules=_targets(knobs["targets"]))
    config.mask_fn = _shira_mask  # peft's documented hook for the mask function
    return config


_LORA_DEFAULTS = {"rank": 8, "alpha": 8.0, "targets": PEFT_DEFAULT, "dropout": 0.0, "adapter_dtype": "fp32"}
_PROMPT_DEFAULTS = {"virtual_tokens": 20, "adapter_dtype": "fp32"}
_ADAPTED = {"targets": PEFT_DEFAULT, "adapter_dtype": "fp32"}
_TARGETS = {"target_modules": "targets"}


def _ranked(rank: int, **more: Any) -> dict[str, Any]:
    return {"rank": rank, **_ADAPTED, **more}


_METHODS: tuple[Method, ...] = (
    Method(
        "fft", "Full fine-tuning", "full", "every weight trains; the reference every gap is measured against",
        trains=Trains("all"), aliases=("full", "full fine-tuning", "full-ft", "ft-full", "model tuning"),
        name_patterns=(
            NamePattern(210, r"\bfull fine-?tuning\b|\bmodel tuning\b|^ft\b|\bfft\b|\bft-full\b|\bfull[- ]ft\b"),
        ),  # last: "fine-tuning" and "FT" are in many names
    ),
    Method(
        "partial_ft", "Partial fine-tuning (top K blocks)", "selective",
        "only the top K transformer blocks (and a new task head) train", {"top_layers": 2},
        trains=Trains("top_blocks"), aliases=("partial fine-tuning", "ft-top"),
        reference="Li & Liang 2021 (FT-Top2); Liu et al., Look Within or Look Beyond?",
        name_patterns=(NamePattern(130, r"\bft-top\d+|\btop-?\d+ layers?\b|\bpartial fine-?tuning\b"),),
    ),
    Method(
        "bitfit", "BitFit (biases only)", "selective", "only bias terms (and a new task head) train",
        trains=Trains("biases"), reference="Ben Zaken et al. 2022, arXiv 2106.10199",
        name_patterns=(NamePattern(120, r"\bbitfit\b"),),
    ),
    Method(
        "lora", "LoRA", "low-rank", "a rank-r update B·A beside each frozen target weight", _LORA_DEFAULTS, _lora(),
        aliases=("low-rank adaptation",), rank_bounds_layers=True, reference="Hu et al. 2021, arXiv 2106.09685",
        name_patterns=(NamePattern(100, r"\blora\b"),),  # after the LoRA variants, whose names mention LoRA
    ),
    Method(
        "qlora", "QLoRA (4-bit NF4 base + LoRA)", "low-rank", "LoRA on every linear layer of a 4-bit NormalFloat base",
        {"rank": 64, "alpha": 16.0, "targets": ALL_LINEAR, "dropout": 0.1, "adapter_dtype": "fp32"}, _lora(),
        quantized_base=True, rank_bounds_layers=True,
        reference="Dettmers et al. 2023, arXiv 2305.14314 (r=64, alpha=16, dropout 0.1, all linear layers)",
        name_patterns=(NamePattern(20, r"\bq-?lora\b"),),  # before LoRA, which its names mention
    ),
    Method(
        "dora", "DoRA", "low-rank", "LoRA on the direction plus a trained magnitude vector per weight",
        _LORA_DEFAULTS, _lora(use_dora=True), aliases=("weight-decomposed low-rank adaptation",),
        rank_bounds_layers=True, reference="Liu et al. 2024, arXiv 2402.09353",
        name_patterns=(NamePattern(30, r"\bdora\b"),),  # before LoRA, which its names mention
    ),
    Method(
        "rslora", "rsLoRA (rank-stabilised LoRA)", "low-rank", "LoRA scaled by alpha / sqrt(r) instead of alpha / r",
        _LORA_DEFAULTS, _lora(use_rslora=True), aliases=("rs-lora", "rank-stabilized lora", "rank-stabilised lora"),
        rank_bounds_layers=True, reference="Kalajdzievski 2023, arXiv 2312.03732",
    ),
    Method(
        "pissa", "PiSSA (LoRA from principal singular vectors)", "low-rank",
        "LoRA whose A, B start from the top-r SVD of each weight; the residual stays frozen",
        _LORA_DEFAULTS, _lora(init_lora_weights="pissa"), rank_bounds_layers=True,
        reference="Meng et al. 2024, arXiv 2404.02948",
    ),
    Method(
        "olora", "OLoRA (orthonormal LoRA init)", "low-rank", "LoRA initialised from a QR decomposition of each weight",
        _LORA_DEFAULTS, _lora(init_lora_weights="olora"), rank_bounds_layers=True,
        reference="Büyükakyüz 2024, arXiv 2406.01775",
    ),
    Method(
        "loraplus", "LoRA+", "low-rank", "LoRA with a larger learning rate for B than A (same parameters as LoRA)",
        _LORA_DEFAULTS, _lora(), aliases=("lora+", "lora-plus"), rank_bounds_layers=True,
        optimizer="create_loraplus_optimizer", reference="Hayou et al. 2024, arXiv 2402.12354",
    ),
    Method(
        "lora_fa", "LoRA-FA (frozen A)", "low-rank", "LoRA with A frozen at its random init: only B trains",
        _LORA_DEFAULTS, _lora(), aliases=("lorafa",), rank_bounds_layers=True, frozen_adapter_params=("lora_A",),
        optimizer="create_lorafa_optimizer", reference="Zhang et al. 2023, arXiv 2308.03303",
    ),
    Method(
        "adalora", "AdaLoRA", "low-rank", "SVD-form LoRA that starts at --init-rank and prunes to --rank",
        {"rank": 8, "init_rank": 12, "alpha": 8.0, "targets": PEFT_DEFAULT, "dropout": 0.0, "adapter_dtype": "fp32"},
        _config(
            "AdaLoraConfig",
            {"target_r": "rank", "init_r": "init_rank", "lora_alpha": "alpha", "lora_dropout": "dropout",
             "target_modules": "targets"},
            total_step=1000,  # required by peft; the schedule does not change parameter counts
        ),
        rank_bounds_layers=True, scaled_defaults={"init_rank": ("rank", ADALORA_INIT_RATIO)},
        reference="Zhang et al. 2023, arXiv 2303.10512",
        name_patterns=(NamePattern(40, r"\badalora\b"),),
    ),
    Method(
        "ia3", "IA3", "scaling", "learned vectors rescale keys, values and feed-forward activations", _ADAPTED, _ia3,
        aliases=("(ia)^3", "(ia)3", "ia^3"), reference="Liu et al. 2022, arXiv 2205.05638",
        name_patterns=(NamePattern(90, r"\(ia\)\^?3|\bia3\b"),),
    ),
    Method(
        "vera", "VeRA", "low-rank", "frozen shared random matrices with trained scaling vectors",
        _ranked(256, dropout=0.0), _config("VeraConfig", {"r": "rank", "vera_dropout": "dropout", **_TARGETS}),
        reference="Kopiczko et al. 2024, arXiv 2310.11454",
        name_patterns=(NamePattern(50, r"\bvera\b"),),
    ),
    Method(
        "loha", "LoHa", "low-rank", "Hadamard product of two low-rank updates", _LORA_DEFAULTS,
        _config("LoHaConfig", {"r": "rank", "alpha": "alpha", "rank_dropout": "dropout", **_TARGETS}),
        rank_bounds_layers=True, reference="Hyeon-Woo et al. 2022, arXiv 2108.06098",
        name_patterns=(NamePattern(60, r"\bloha\b"),),
    ),
    Method(
        "lokr", "LoKr", "low-rank", "Kronecker-product update", _LORA_DEFAULTS,
        _config("LoKrConfig", {"r": "rank", "alpha": "alpha", "rank_dropout": "dropout", **_TARGETS}),
        rank_bounds_layers=True, reference="Yeh et al. 2024, arXiv 2309.14859",
        name_patterns=(NamePattern(70, r"\blokr\b"),),
    ),
    Method(
        "oft", "OFT", "orthogonal", "block-diagonal orthogonal rotation of frozen weights",
        {"rank": None, "targets": PEFT_DEFAULT, "dropout": 0.0, "adapter_dtype": "fp32"}, _oft, rank_label="blocks",
        reference="Qiu et al. 2023, arXiv 2306.07280",
        name_patterns=(NamePattern(80, r"\boft\b"),),
    ),
    Method(
        "boft", "BOFT", "orthogonal", "orthogonal rotation factored into sparse butterfly blocks",
        {"block_size": 4, "targets": PEFT_DEFAULT, "dropout": 0.0, "adapter_dtype": "fp32"},
        _config("BOFTConfig", {"boft_block_size": "block_size", "boft_dropout": "dropout", **_TARGETS}),
        meta_init=False, reference="Liu et al. 2024, arXiv 2311.06243",
    ),
    Method(
        "hra", "HRA", "orthogonal", "a chain of r Householder reflections of each frozen weight", _ranked(8),
        _config("HRAConfig", {"r": "rank", **_TARGETS}), aliases=("householder reflection adaptation",),
        reference="Yuan et al. 2024, arXiv 2405.17484",
    ),
    Method(
        "road", "RoAd", "orthogonal", "learned 2D rotations of groups of output features",
        {"block_size": 64, **_ADAPTED}, _config("RoadConfig", {"group_size": "block_size", **_TARGETS}),
        reference="Liao et al. 2024, arXiv 2409.00119",
    ),
    Method(
        "psoft", "PSOFT", "orthogonal", "an r x r orthogonal map between a weight's principal subspace factors",
        _ranked(32, alpha=32.0, dropout=0.0),
        _config("PsoftConfig", {"r": "rank", "psoft_alpha": "alpha", "psoft_dropout": "dropout", **_TARGETS}),
        reference="peft PsoftConfig (Efficient Orthogonal Fine-Tuning with Principal Subspace Adaptation)",
    ),
    Method(
        "fourierft", "FourierFT", "low-rank", "n trained spectral coefficients per layer, mapped by an inverse DFT",
        {"n_frequency": 1000, **_ADAPTED}, _config("FourierFTConfig", {"n_frequency": "n_frequency", **_TARGETS}),
        aliases=("fourier-ft",), reference="Gao et al. 2024, arXiv 2405.03003",
    ),
    Method(
        "waveft", "WaveFT", "low-rank", "n trained wavelet coefficients per layer, mapped by an inverse wavelet",
        {"n_frequency": 2592, **_ADAPTED}, _config("WaveFTConfig", {"n_frequency": "n_frequency", **_TARGETS}),
        reference="Bilican et al. 2025 (wavelet fine-tuning), peft WaveFTConfig",
    ),
    Method(
        "vblora", "VB-LoRA", "low-rank", "LoRA factors composed from a shared bank of vectors", _ranked(4, dropout=0.0),
        _config("VBLoRAConfig", {"r": "rank", "vblora_dropout": "dropout", **_TARGETS}),
        aliases=("vb-lora", "vector bank lora"), reference="Li et al. 2024, arXiv 2405.15179",
    ),
    Method(
        "miss", "MiSS (formerly Bone)", "low-rank", "shards of one small trained matrix shared across each weight",
        _ranked(64, dropout=0.0), _config("MissConfig", {"r": "rank", "miss_dropout": "dropout", **_TARGETS}),
        aliases=("bone", "block affine"), reference="Kang & Yin 2024, arXiv 2409.15371",
    ),
    Method(
        "randlora", "RandLoRA", "low-rank", "full-rank update from shared random low-rank bases with trained scales",
        _ranked(32, dropout=0.0), _config("RandLoraConfig", {"r": "rank", "randlora_dropout": "dropout", **_TARGETS}),
        aliases=("rand-lora",), reference="Albert et al. 2025, arXiv 2502.00987",
    ),
    Method(
        "c3a", "C3A", "low-rank", "block-circulant convolution update (FFT-computed)", {"block_size": 256, **_ADAPTED},
        _config("C3AConfig", {"block_size": "block_size", **_TARGETS}),
        aliases=("circular convolution adaptation",), reference="Chen et al. 2024, arXiv 2407.19342",
    ),
    Method(
        "lily", "Lily", "low-rank", "low-rank adapters interconnected across layers (shared B experts)", _ranked(32),
        _config("LilyConfig", {"r": "rank", **_TARGETS}), blocks="shared",  # B experts shared across layers
        reference="Zhong et al. 2024, arXiv 2407.09946",
    ),
    Method(
        "adamss", "AdaMSS", "low-rank", "SVD of each weight clustered into trainable subspaces", _ranked(100),
        _config("AdamssConfig", {"r": "rank", **_TARGETS}),
        estimable=False, unavailable="clusters the SVD of the pretrained weight values (KMeans), so even its adapter "
        "shapes need weights a meta skeleton never holds", reference="peft AdamssConfig (Adaptive Multi-Subspaces)",
    ),
    Method(
        "frod", "FRoD", "low-rank", "hierarchical joint decomposition of the weights with sparse trained factors",
        {"dropout": 0.0, **_ADAPTED}, _config("FrodConfig", {"frod_dropout": "dropout", **_TARGETS}),
        estimable=False, unavailable="decomposes the pretrained weight values, which a meta skeleton never holds",
        reference="peft FrodConfig",
    ),
    Method(
        "pvera", "PVeRA", "low-rank", "probabilistic VeRA: shared random matrices, trained scaling distributions",
        _ranked(256, dropout=0.0), _config("PveraConfig", {"r": "rank", "pvera_dropout": "dropout", **_TARGETS}),
        reference="arXiv 2512.07703",
    ),
    Method(
        "glora", "GLoRA", "low-rank", "generalised LoRA: low-rank weight, bias and activation prompts", _ranked(8),
        _config("GloraConfig", {"r": "rank", **_TARGETS}), reference="Chavan et al. 2023, arXiv 2306.07967",
    ),
    Method(
        "unilora", "UniLoRA", "low-rank", "every layer's LoRA entries indexed into one shared trained vector",
        _ranked(4, dropout=0.0), _config("UniLoraConfig", {"r": "rank", "unilora_dropout": "dropout", **_TARGETS}),
        meta_init=False, reference="arXiv 2506.00799",
    ),
    Method(
        "hira", "HiRA", "low-rank", "Hadamard product of the frozen weight and a low-rank update (high rank)",
        _ranked(32, dropout=0.0), _config("HiraConfig", {"r": "rank", "hira_dropout": "dropout", **_TARGETS}),
        reference="Huang et al. 2025, ICLR (openreview TwJrTz9cRS)",
    ),
    Method(
        "osf", "OSF", "low-rank", "trains the minor singular subspace of each weight, orthogonal to the principal one",
        _ADAPTED, _config("OSFConfig", _TARGETS), reference="peft OSFConfig (Orthogonal Subspace Fine-tuning)",
    ),
    Method(
        "delora", "DeLoRA", "low-rank", "LoRA with normalised factors and a learned bounded strength",
        _ranked(8, dropout=0.0), _config("DeloraConfig", {"r": "rank", "module_dropout": "dropout", **_TARGETS}),
        reference="Bini et al. 2025, arXiv 2503.18225",
    ),
    Method(
        "gralora", "GraLoRA", "low-rank", "LoRA split into k x k independent sub-blocks (granular)",
        _ranked(32, alpha=64.0, dropout=0.0),
        _config("GraloraConfig", {"r": "rank", "alpha": "alpha", "gralora_dropout": "dropout", **_TARGETS}),
        reference="Jung et al. 2025, arXiv 2505.20355",
    ),
    Method(
        "tinylora", "TinyLoRA", "low-rank", "a tiny trained vector projected into each weight's SVD frame",
        _ranked(2, dropout=0.0), _config("TinyLoraConfig", {"r": "rank", "tinylora_dropout": "dropout", **_TARGETS}),
        blocks="shared",  # one trained vector per tying group of layers, held outside the blocks
        reference="arXiv 2602.04118",
    ),
    Method(
        "peanut", "PEANuT", "low-rank", "a small network of the frozen weight produces its update", _ranked(32),
        _config("PeanutConfig", {"r": "rank", **_TARGETS}), reference="Zhong et al. 2024, arXiv 2410.01870",
    ),
    Method(
        "deft", "DEFT", "low-rank", "a learned low-rank projection direction and injection per weight",
        _ranked(8, dropout=0.0), _config("DeftConfig", {"r": "rank", "deft_dropout": "dropout", **_TARGETS}),
        reference="peft DeftConfig (Decompositional Efficient Fine-Tuning)",
    ),
    Method(
        "poly", "Poly (Polytropon)", "low-rank", "a per-task mixture of a shared inventory of LoRA skills", _ranked(8),
        _config("PolyConfig", {"r": "rank", **_TARGETS}), aliases=("polytropon", "mhr"), task_ids=True,
        reference="Ponti et al. 2022, arXiv 2202.13914",
    ),
    Method(
        "shira", "SHiRA", "selective", "a sparse random set of each weight's entries trains (high rank)", _ranked(32),
        _shira, placeholders=_shira_indices, reference="Bhardwaj et al. 2024, arXiv 2406.13175",
    ),
    Method(
        "supertuning", "Super-Tuning", "selective", "only a sparse support of entries, chosen by magnitude, trains",
        _ADAPTED, _config("SupertuningConfig", _TARGETS), reference="arXiv 2607.09287",
    ),
    Method(
        "ln_tuning", "LN tuning", "selective", "only the layer norms train", _ADAPTED,
        _config("LNTuningConfig", _TARGETS), aliases=("layernorm tuning", "layer norm tuning"),
        reference="Zhao et al. 2023, arXiv 2312.11420",
    ),
    Method(
        "beft", "BEFT", "selective", "only new bias terms of the value projections train", _ADAPTED,
        _config("BeftConfig", _TARGETS), reference="arXiv 2509.15974",
    ),
    Method(
        "trainable_tokens", "Trainable tokens", "selective", "only chosen rows of the token embedding train",
        {"tokens": 16, **_ADAPTED}, _config("TrainableTokensConfig", {"token_indices": "tokens", **_TARGETS}),
        reference="peft TrainableTokensConfig",
    ),
    Method(
        "shadow", "ShadowPEFT", "additive", "a small trainable parallel shadow network beside the frozen decoder",
        _ranked(8, dropout=0.2), _config("ShadowConfig", {"r": "rank", "shadow_dropout": "dropout", **_TARGETS}),
        reference="peft ShadowConfig",
    ),
    Method(
        "prefix_tuning", "Prefix tuning", "soft-prompt", "learned key/value prefixes in every attention layer",
        _PROMPT_DEFAULTS, _config("PrefixTuningConfig", {"num_virtual_tokens": "virtual_tokens"}),
        aliases=("prefix",), soft_prompt="attention", reference="Li & Liang 2021, arXiv 2101.00190",
        name_patterns=(NamePattern(150, r"\bprefix\b|\bprelayer\b|\bprefixtuning\b"),),
    ),
    Method(
        "prompt_tuning", "Prompt tuning", "soft-prompt", "learned virtual tokens prepended to the input embeddings",
        _PROMPT_DEFAULTS, _config("PromptTuningConfig", {"num_virtual_tokens": "virtual_tokens"}),
        aliases=("prompt",), soft_prompt="input", reference="Lester et al. 2021, arXiv 2104.08691",
        name_patterns=(
            # Prefix-embedding tuning trains only input-embedding prefix tokens: prompt tuning (Hu et al. 2021,
            # 5.1); before prefix tuning, whose name it contains.
            NamePattern(140, r"\bprefix-embedding\b|\bpreembed\b"),
            NamePattern(180, r"\bprompt[-_ ]?tuning\b"),  # after prefix and P-tuning, the more specific names
        ),
    ),
    Method(
        "p_tuning", "P-tuning", "soft-prompt", "virtual tokens produced by a small prompt encoder (MLP)",
        _PROMPT_DEFAULTS, _config("PromptEncoderConfig", {"num_virtual_tokens": "virtual_tokens"}),
        soft_prompt="input", reference="Liu et al. 2021, arXiv 2103.10385",
        name_patterns=(NamePattern(170, r"\bp-?tuning\b"),),
    ),
    Method(
        "multitask_prompt_tuning", "Multitask prompt tuning", "soft-prompt",
        "a shared prompt with a per-task low-rank multiplier", _PROMPT_DEFAULTS,
        _config("MultitaskPromptTuningConfig", {"num_virtual_tokens": "virtual_tokens"}), aliases=("mpt",),
        soft_prompt="input", task_ids=True, reference="Wang et al. 2023, arXiv 2303.02861",
    ),
    Method(
        "cpt", "CPT (context-aware prompt tuning)", "soft-prompt", "trained context tokens in front of the input",
        _PROMPT_DEFAULTS, _cpt, aliases=("context-aware prompt tuning",), soft_prompt="input",
        reference="Blau et al. 2024, arXiv 2410.17222",
    ),
    Method(
        "cartridge", "Cartridge", "soft-prompt", "a trained key/value cache prefix in every attention layer",
        _PROMPT_DEFAULTS, _config("CartridgeConfig", {"num_virtual_tokens": "virtual_tokens"}),
        soft_prompt="attention", reference="Eyuboglu et al. 2025, arXiv 2506.06266",
    ),
    Method(
        "adaption_prompt", "Adaption prompt (LLaMA-Adapter)", "soft-prompt",
        "gated learned prompts in the attention of the top K blocks",
        {"virtual_tokens": 10, "top_layers": 30, "adapter_dtype": "fp32"},
        _config("AdaptionPromptConfig", {"adapter_len": "virtual_tokens", "adapter_layers": "top_layers"}),
        aliases=("llama-adapter", "llama adapter"), soft_prompt="attention", blocks="top",
        reference="Zhang et al. 2023, arXiv 2303.16199 (adapter_len 10, 30 layers)",
    ),
    # Listed, never counted: published evidence only, or not buildable from a config alone.
    Method(
        "xlora", "X-LoRA", "low-rank", "a learned router mixing several already trained LoRA adapters",
        estimable=False, unavailable="mixes already trained LoRA adapters, which a config alone does not provide",
        reference="Buehler & Buehler 2024, arXiv 2402.07148",
    ),
    Method(
        "adapter", "Bottleneck adapters", "additive", "small bottleneck MLPs inserted after sub-layers",
        estimable=False, aliases=("houlsby", "pfeiffer", "bottleneck adapter"),
        reference="Houlsby et al. 2019; Pfeiffer et al. 2021",
        name_patterns=(NamePattern(190, r"\badapter|\badpt[a-z]\b"),),
    ),
    Method(
        "spot", "SPoT (soft prompt transfer)", "soft-prompt", "prompt tuning initialised from a source-task prompt",
        estimable=False, reference="Vu et al. 2022, arXiv 2110.07904",
        name_patterns=(NamePattern(110, r"\bspot\b"),),
    ),
    Method(
        "dvora", "DVoRA (DoRA + VeRA)", "low-rank", "DoRA's magnitude/direction split over VeRA's shared matrices",
        estimable=False, reference="Liu et al. 2024, arXiv 2402.09353 (DoRA paper, DVoRA variant)",
        name_patterns=(NamePattern(10, r"\bdvora\b"),),  # before DoRA and VeRA, which it names
    ),
    Method(
        "base", "No fine-tuning", "baseline", "the base model as published, for reference", estimable=False,
        name_patterns=(NamePattern(200, r"\bno fine-?tuning\b|\bzero-shot\b|\bbase model\b"),),
    ),
    Method(
        "other", "Other (not normalised)", "baseline", "a published method name TuneWise could not map", estimable=False
    ),
)

METHODS: Mapping[str, Method] = MappingProxyType({m.id: m for m in _METHODS})
# The reference every gap is measured against, and what a recommendation always compares: the method of the
# "full" family that trains every weight.
REFERENCE: str = next(m.id for m in _METHODS if m.family == "full" and m.trains == Trains("all"))


def _normalise(name: str) -> str:
    """Lookup form of a method name: lower case, '+' spelled 'plus', everything but letters and digits dropped,
    so 'LoRA+' -> 'loraplus', '(IA)^3' -> 'ia3', 'Prefix-Tuning' -> 'prefixtuning'."""
    return re.sub(r"[^a-z0-9]", "", name.strip().lower().replace("+", "plus"))


def _lookup_table() -> Mapping[str, str]:
    table: dict[str, str] = {}
    for method in _METHODS:
        for name in method.names:
            key = _normalise(name)
            if table.setdefault(key, method.id) != method.id:
                raise ValueError(f"method name {name!r} of {method.id} already names {table[key]}")
    return MappingProxyType(table)


_LOOKUP = _lookup_table()


def _in_priority_order(named: Iterable[tuple[NamePattern, str]], table: str) -> tuple[tuple[re.Pattern[str], str], ...]:
    """(compiled pattern, what it names) by ascending priority; a shared priority would leave two patterns'
    order to chance, so it is refused."""
    ordered = sorted(named, key=lambda pair: pair[0].priority)
    for (first, first_named), (second, second_named) in pairwise(ordered):
        if first.priority == second.priority:
            raise ValueError(f"{table}: {first_named} and {second_named} share priority {first.priority}")
    return tuple((re.compile(pattern.regex), target) for pattern, target in ordered)


def _family_rules() -> tuple[tuple[re.Pattern[str], str], ...]:
    """`FAMILY_NAMES` in priority order, each a family the registry declares."""
    unknown = set(FAMILY_NAMES) - set(FAMILIES)
    if unknown:
        raise ValueError(f"FAMILY_NAMES: unknown families {sorted(unknown)}")
    return _in_priority_order(((pattern, family) for family, pattern in FAMILY_NAMES.items()), "FAMILY_NAMES")


# How a published name that spells no id or alias reads as a method: (pattern, method id), first match wins.
NAME_RULES: tuple[tuple[re.Pattern[str], str], ...] = _in_priority_order(
    ((pattern, method.id) for method in _METHODS for pattern in method.name_patterns), "method name_patterns"
)
# How a name that reads as no method reads as a family: (pattern, family), first match wins.
FAMILY_RULES: tuple[tuple[re.Pattern[str], str], ...] = _family_rules()


def method_ids(*, estimable_only: bool = True) -> tuple[str, ...]:
    """Registry ids in display order; by default only the methods TuneWise can count and estimate."""
    return tuple(m.id for m in _METHODS if m.estimable or not estimable_only)


# What a recommendation compares when the user names no methods: full fine-tuning and the PEFT methods that
# practitioners choose among and that published FFT-vs-PEFT comparisons report (data/published_results.csv).
# Every other estimable method is still compared when named.
CANDIDATES: tuple[str, ...] = (REFERENCE, "partial_ft", "bitfit", "lora", "qlora", "dora", "adalora", "ia3", "vera",
                               "loha", "lokr", "oft", "prefix_tuning", "prompt_tuning", "p_tuning")


def candidate_ids() -> tuple[str, ...]:
    """The default candidates of a recommendation (see CANDIDATES), in registry order."""
    return tuple(m for m in method_ids() if m in CANDIDATES)


def get_method(method_id: str) -> Method:
    """Look a method up by id or literature alias (case, dashes and spaces ignored); the error lists the ids."""
    key = _LOOKUP.get(_normalise(method_id))
    if key is None:
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
    block_size: int | None = None
    n_frequency: int | None = None
    tokens: int | None = None

    def __post_init__(self) -> None:
        spec = get_method(self.method)
        if not spec.estimable:
            raise InputError(
                f"method {spec.id!r} {spec.unavailable}; choose one of {', '.join(method_ids())}"
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
        for name, (source, ratio) in spec.scaled_defaults.items():
            if given[name] is None and given[source] is not None:
                object.__setattr__(self, name, math.ceil(given[source] * ratio))
        if isinstance(self.targets, str) and self.targets not in (ALL_LINEAR, PEFT_DEFAULT):
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
            ("block_size", self.block_size, lambda v: v >= 1, "must be a positive integer, e.g. --block-size 4"),
            ("n_frequency", self.n_frequency, lambda v: v >= 1, "must be a positive integer, e.g. --n-frequency 1000"),
            ("tokens", self.tokens, lambda v: v >= 1, "must be at least 1, e.g. --tokens 16"),
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

    @property
    def input_tokens(self) -> int:
        """Virtual tokens this choice prepends to every input sequence (prompt tuning, P-tuning, CPT)."""
        return self._tokens_at("input")

    @property
    def attention_tokens(self) -> int:
        """Virtual key/value positions each adapted attention layer attends to beside the sequence (prefix
        tuning, Cartridge: every layer; adaption prompt: the top --top-layers layers)."""
        return self._tokens_at("attention")

    def _tokens_at(self, place: str) -> int:
        if self.spec.soft_prompt != place or self.virtual_tokens is None:
            return 0
        return self.virtual_tokens

    def knob_values(self) -> dict[str, Any]:
        """The resolved knobs this method takes (defaults filled in)."""
        return {name: getattr(self, name) for name in self.spec.knobs}

    def peft_config(self, task_type: str) -> PeftConfig | None:
        """The real peft config for this choice, or None for methods with a `trains` rule."""
        build = self.spec.build
        return None if build is None else build(self.knob_values(), task_type)

    def label(self) -> str:
        """Short human label, e.g. 'LoRA r=16 (all-linear)'."""
        parts = [self.spec.name]
        if self.rank is not None:
            parts.append(f"{self.spec.rank_label}={self.rank}")
        for value, text in (
            (self.virtual_tokens, "{} tokens"),
            (self.top_layers, "top {}"),
            (self.block_size, "block {}"),
            (self.n_frequency, "{} coefficients"),
            (self.tokens, "{} token rows"),
        ):
            if value is not None:
                parts.append(text.format(value))
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
