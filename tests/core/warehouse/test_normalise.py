"""Every published method name maps to a registry id; the named mappings of the issue hold exactly."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from core.registry import ALL_LINEAR, METHODS
from core.warehouse.normalise import OTHER, normalisation_report, normalise_method
from core.warehouse.paths import PUBLISHED_RESULTS_CSV

# How each name read before the registry owned the method names: every distinct name of the shipped results,
# plus probe names for every name pattern, their precedence and the literature families (see its commit).
NAMES_SNAPSHOT = Path(__file__).with_name("method_names.csv")


def _shipped() -> list[tuple[str, str]]:
    with PUBLISHED_RESULTS_CSV.open(encoding="utf-8", newline="") as handle:
        return [(r["method"], r["notes"]) for r in csv.DictReader(handle)]


def test_every_shipped_name_normalises_and_is_counted() -> None:
    rows = _shipped()
    report = normalisation_report(normalise_method(name, notes) for name, notes in rows)
    assert report.rows == 1327
    # Full fine-tuning in every spelling (FT, Full-FT*, "Full fine-tuning [llama-3.2-3B-lr_0.00001]", ...).
    assert report.counts["fft"] == 233
    assert {k: report.counts[k] for k in ("adapter", "prefix_tuning", "prompt_tuning", "spot", "base")} == {
        "adapter": 144, "prefix_tuning": 53, "prompt_tuning": 28, "spot": 5, "base": 4,
    }  # fmt: skip
    # What stays 'other' is only methods the registry does not list (SVFT, BOFT, LiLy, ...): kept, counted.
    registry = {re.sub(r"[^a-z0-9]", "", m) for m in METHODS}
    heads = {re.sub(r"[^a-z0-9]", "", re.split(r"[\s*\[]", name.lower())[0]) for name in report.unmapped}
    assert heads and not heads & registry
    assert sum(report.unmapped.values()) == report.counts.get(OTHER, 0)


def test_every_name_reads_as_in_the_snapshot() -> None:
    with NAMES_SNAPSHOT.open(encoding="utf-8", newline="") as handle:
        snapshot = list(csv.DictReader(handle))
    assert {name for name, _ in _shipped()} <= {r["name"] for r in snapshot if r["source"] == "published"}
    read = {r["name"]: normalise_method(r["name"]).method_id for r in snapshot}
    assert {r["name"]: r["method_id"] for r in snapshot} == read


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("LoRA r=16 (all modules, alpha=2r)", {"method_id": "lora", "rank": 16, "targets": ALL_LINEAR, "alpha": 32.0}),
        ("FT (full fine-tuning)*", {"method_id": "fft", "quoted_from_prior_work": True}),
        ("FT (full fine-tuning)", {"method_id": "fft", "quoted_from_prior_work": False}),
        ("Adapter (AdptH)+", {"method_id": "adapter", "restricted": True, "variant": "Houlsby"}),
        ("FT-Top2", {"method_id": "partial_ft", "top_layers": 2}),
        ("FT-Top2 (last 2 layers)*", {"method_id": "partial_ft", "top_layers": 2, "quoted_from_prior_work": True}),
        ("LoRA+", {"method_id": "lora", "restricted": True}),
        ("LoRA BF16", {"method_id": "lora", "variant": "bf16"}),
        ("QLoRA Int8", {"method_id": "qlora", "quantization": "int8"}),
        ("QLoRA FP4", {"method_id": "qlora", "quantization": "fp4"}),
        ("QLoRA NF4+DQ on Alpaca", {"method_id": "qlora", "quantization": "nf4+dq", "variant": "trained on Alpaca"}),
        ("Full fine-tuning BF16 (reported)", {"method_id": "fft", "quoted_from_prior_work": True}),
        ("Full fine-tuning BF16 (replication)", {"method_id": "fft", "quoted_from_prior_work": False}),
        ("Full fine-tuning (Lewis et al. 2020)", {"method_id": "fft", "quoted_from_prior_work": True}),
        ("Model tuning (full fine-tuning)", {"method_id": "fft"}),
        ("SPoT (prompt tuning w/ source-prompt transfer)", {"method_id": "spot"}),
        ("Prefix-layer tuning (PreLayer)", {"method_id": "prefix_tuning", "variant": "prefix-layer"}),
        ("Prefix-embedding tuning (PreEmbed)", {"method_id": "prompt_tuning", "variant": "prefix-embedding"}),
        ("No fine-tuning (base LLaMA)", {"method_id": "base"}),
        ("DoRA r=32", {"method_id": "dora", "rank": 32}),
        ("DVoRA", {"method_id": "dvora"}),
        ("Parallel adapter", {"method_id": "adapter", "variant": "parallel"}),
        ("BitFit*", {"method_id": "bitfit", "quoted_from_prior_work": True}),
        ("Full-FT*", {"method_id": "fft", "quoted_from_prior_work": True}),
        ("Full fine-tuning [llama-3.2-3B-lr_0.00001]", {"method_id": "fft"}),
        ("lokr [llama-3.2-3B-rank32-factor4-lr0.003]", {"method_id": "lokr", "rank": 32}),
        ("lora [llama-3.2-3B-rank32-dora]", {"method_id": "dora", "rank": 32}),
        ("prompt_tuning [llama-3.2-3B-default]", {"method_id": "prompt_tuning"}),
        ("prefixtuning [llama-3.2-3B-lr_0.001]", {"method_id": "prefix_tuning"}),
        ("BOFT* b=8 m=2", {"method_id": "boft", "quoted_from_prior_work": True}),
        ("SVFT-P", {"method_id": "other"}),
    ],
)
def test_named_mappings(raw: str, expected: dict[str, object]) -> None:
    method = normalise_method(raw)
    assert method.raw == raw
    assert {key: getattr(method, key) for key in expected} == expected


def test_rank_and_targets_from_the_lora_paper_notes() -> None:
    method = normalise_method("LoRA", "r_q=r_v=8; median of 5 seeds; trainable params 0.3M")
    assert (method.rank, method.targets) == (8, "q,v")
    assert normalise_method("LoRA r=4", "r_q=r_v=8").rank == 4  # the name wins over the notes


def test_evidence_only_methods_exist_and_are_not_estimable() -> None:
    for method_id in ("adapter", "spot", "base", "dvora", OTHER):
        assert not METHODS[method_id].estimable


def test_unknown_names_are_kept_as_other_and_reported() -> None:
    methods = [normalise_method("Magic tuning v2"), normalise_method("Magic tuning v2"), normalise_method("LoRA")]
    assert methods[0].method_id == OTHER
    report = normalisation_report(methods)
    assert dict(report.counts) == {OTHER: 2, "lora": 1}
    assert dict(report.unmapped) == {"Magic tuning v2": 2}
    assert "kept as 'other': 'Magic tuning v2' x2" in report.summary()
