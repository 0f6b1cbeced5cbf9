"""Published method names -> registry method ids, with the knobs the name (or its notes) states.

Papers name methods freely: "LoRA r=16 (all modules, alpha=2r)", "FT (full fine-tuning)*", "Adapter (AdptH)+",
"FT-Top2"; PEFT's own benchmark writes `peft_type [config]` ("lokr [llama-3.2-3B-rank32-factor4]"). A name
that spells a registry id or alias maps to it; otherwise the registry's name patterns (`NAME_RULES`, most
specific first) pick the id, so every method name is declared once, in the registry. Further patterns here
read rank, alpha, targets, top-K layers, quantization and a variant. Markers follow
data/published_results_sources.md: a trailing `*` (or one right after the name, "BOFT* b=8 m=2") = quoted from
prior work, a trailing `+` = restricted setup. A name no pattern knows maps to `other` and is counted in the
report, never dropped.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from core.registry import ALL_LINEAR, METHODS, NAME_RULES

OTHER = "other"

# Adapter and prefix styles named in the sources: Houlsby et al. 2019 (AdapterH), Pfeiffer et al. 2021
# (AdapterP), Lin et al. 2020 (AdapterL), Rücklé et al. 2021 (AdapterDrop), He et al. 2022 (parallel).
_STYLES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), style)
    for pattern, style in (
        (r"\badapterh\b|\badpth\b", "Houlsby"),
        (r"\badapterp\b|\badptp\b", "Pfeiffer"),
        (r"\badapterl\b", "Lin"),
        (r"\badptd\b", "AdapterDrop"),
        (r"\bparallel\b", "parallel"),
        (r"\bprelayer\b|\bprefix-layer\b", "prefix-layer"),
        (r"\bpreembed\b|\bprefix-embedding\b", "prefix-embedding"),
        (r"\bbf16\b", "bf16"),
        (r"\bfp16\b", "fp16"),
    )
)

_RANK = re.compile(r"\br\s*=\s*(\d+)|\[[^]]*\brank(\d+)\b")  # "r=16", or PEFT's benchmark "[...-rank32-...]"
_BENCHMARK = re.compile(r"^(?P<head>[\w+-]+) \[(?P<config>[^]]*)\]$")  # PEFT's benchmark: "lokr [llama-3B-rank32]"
_NOTES_RANK_QV = re.compile(r"\br_q\s*=\s*r_v\s*=\s*(\d+)")  # the LoRA paper's "r_q=r_v=8": query+value
_ALPHA = re.compile(r"\balpha\s*=\s*(\d+(?:\.\d+)?)(r?)\b")
_ALL_MODULES = re.compile(r"\ball[- ](?:linear|modules|layers)\b")
_TOP = re.compile(r"\btop-?(\d+)\b|\blast (\d+) layers\b")
_QUANT = re.compile(r"\b(nf4\+dq|nf4|fp4|int8|int4)\b")
_TRAINED_ON = re.compile(r"\bon (.+)$")
_INNER_QUOTED = re.compile(r"(?<=\w)\*(?=\s)")
_QUOTED = re.compile(r"\(reported\)|\bet al\.")


@dataclass(frozen=True)
class NormalisedMethod:
    """A published method name read as a registry id plus the knobs the name states (None: not stated)."""

    raw: str
    method_id: str
    rank: int | None = None
    alpha: float | None = None
    targets: str | None = None
    top_layers: int | None = None
    quantization: str | None = None
    variant: str | None = None
    quoted_from_prior_work: bool = False
    restricted: bool = False

    def __post_init__(self) -> None:
        if self.method_id not in METHODS:
            raise ValueError(f"{self.raw!r}: method id {self.method_id!r} is not in the registry")
        for name in ("rank", "top_layers"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{self.raw!r}: {name} must be at least 1, got {value}")
        if self.alpha is not None and self.alpha <= 0:
            raise ValueError(f"{self.raw!r}: alpha must be positive, got {self.alpha}")


def _squash(text: str) -> str:
    """A name with everything but letters and digits dropped. Unlike `get_method`, '+' is not spelled 'plus':
    in a published name a '+' marks a restricted setup (data/published_results_sources.md), so "LoRA+" is LoRA."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _registry_names() -> Mapping[str, str]:
    """Squashed registry ids and aliases -> id ("prefix_tuning", "prefixtuning" -> prefix_tuning); the first
    method that squashes to a name keeps it (LoRA keeps "lora" from LoRA+'s alias "lora+")."""
    names: dict[str, str] = {}
    for method in METHODS.values():
        for name in method.names:
            names.setdefault(_squash(name), method.id)
    return MappingProxyType(names)


_REGISTRY_NAMES = _registry_names()


def _registry_name(low: str) -> str | None:
    """The registry id a name (or its first word) spells, or the head of PEFT's `type [config]` form (config variants
    that are registry methods of their own, e.g. `lora [...-dora]`, win); None when it spells none."""
    names = _REGISTRY_NAMES
    match = _BENCHMARK.match(low)
    if match is None:
        first = re.split(r"[\s(]", low, maxsplit=1)[0].rstrip("*+")  # "BOFT* b=8 m=2" -> boft
        return names.get(_squash(low)) or names.get(_squash(first))
    head = names.get(_squash(match.group("head")))
    variant = next((names[_squash(p)] for p in re.split(r"[-_]", match.group("config")) if _squash(p) in names), None)
    if head is not None and variant is not None and METHODS[variant].family == METHODS[head].family:
        return variant
    return head


def normalise_method(raw: str, notes: str = "") -> NormalisedMethod:
    """Read one published method name; `notes` can supply a rank the name leaves out ("r_q=r_v=8")."""
    name = raw.strip()
    quoted = restricted = False
    while name and name[-1] in "*+":  # trailing markers, in either order
        quoted |= name[-1] == "*"
        restricted |= name[-1] == "+"
        name = name[:-1].rstrip()
    if _INNER_QUOTED.search(name):  # "BOFT* b=8 m=2": the marker on the name, before its knobs
        quoted, name = True, _INNER_QUOTED.sub("", name, count=1)
    low = name.lower()
    method_id = _registry_name(low) or next((mid for pattern, mid in NAME_RULES if pattern.search(low)), OTHER)
    quoted |= _QUOTED.search(low) is not None

    rank = targets = None
    if (match := _RANK.search(low)) is not None:
        rank = int(match.group(1) or match.group(2))
    elif (match := _NOTES_RANK_QV.search(notes)) is not None:
        rank, targets = int(match.group(1)), "q,v"
    alpha = None
    if (match := _ALPHA.search(low)) is not None:
        number, per_rank = float(match.group(1)), bool(match.group(2))
        # "alpha=2r" is a multiple of the rank (unknown without it); "alpha=16" is a number.
        alpha = (number * rank if rank else None) if per_rank else number
    if _ALL_MODULES.search(low):
        targets = ALL_LINEAR
    top_layers = None
    if method_id == "partial_ft" and (match := _TOP.search(low)) is not None:
        top_layers = int(match.group(1) or match.group(2))
    quant = _QUANT.search(low)
    variants = [style for pattern, style in _STYLES if pattern.search(low)]
    if (match := _TRAINED_ON.search(name)) is not None:
        variants.append(f"trained on {match.group(1)}")
    return NormalisedMethod(
        raw=raw,
        method_id=method_id,
        rank=rank,
        alpha=alpha,
        targets=targets,
        top_layers=top_layers,
        quantization=quant.group(1) if quant else None,
        variant=", ".join(variants) or None,
        quoted_from_prior_work=quoted,
        restricted=restricted,
    )


@dataclass(frozen=True)
class NormalisationReport:
    """How many rows went to each method id, and the raw names that could not be normalised."""

    counts: Mapping[str, int]
    unmapped: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.counts) - set(METHODS)
        if unknown:
            raise ValueError(f"report counts unknown method ids {sorted(unknown)}")
        if sum(self.unmapped.values()) != self.counts.get(OTHER, 0):
            raise ValueError("unmapped names must account for every row counted as 'other'")

    @property
    def rows(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        """One line: rows per method id, then the names kept as 'other'."""
        parts = ", ".join(f"{mid} {n}" for mid, n in sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0])))
        if not self.unmapped:
            return f"{self.rows} rows: {parts}"
        names = "; ".join(f"{name!r} x{n}" for name, n in sorted(self.unmapped.items()))
        return f"{self.rows} rows: {parts} — kept as 'other': {names}"


def normalisation_report(methods: Iterable[NormalisedMethod]) -> NormalisationReport:
    """Count normalised methods per id; list the raw names mapped to `other`."""
    items = list(methods)
    counts = Counter(m.method_id for m in items)
    unmapped = Counter(m.raw for m in items if m.method_id == OTHER)
    return NormalisationReport(counts=MappingProxyType(dict(counts)), unmapped=MappingProxyType(dict(unmapped)))
