"""Every method and task name a user types is answered: a registry method, its family, or PEFT in general."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from core.errors import InputError
from core.gap.names import match_method, match_task
from core.registry import METHODS

# Names with how they read before the registry owned the method names (see tests/core/warehouse/test_normalise.py).
NAMES_SNAPSHOT = Path(__file__).parents[1] / "warehouse" / "method_names.csv"
TYPES = ("classification", "code", "extraction", "generation", "instruction", "reasoning-math")


def test_every_registry_peft_method_reads_as_itself() -> None:
    for method in METHODS.values():
        if method.family in ("full", "baseline"):
            continue
        match = match_method(method.id)
        assert (match.level, match.method_id, match.family, match.note) == ("method", method.id, method.family, "")


@pytest.mark.parametrize(
    ("name", "representative"),
    [("HydraLoRA", "lora"), ("MoRA", "lora"), ("ReLoRA", "lora"), ("SVFT-P", "lora"), ("Compacter", "adapter"),
     ("soft prompt", "prompt_tuning"), ("GOFT", "oft"), ("diff pruning", "bitfit")],
)  # fmt: skip
def test_literature_names_read_as_the_registrys_family(name: str, representative: str) -> None:
    match = match_method(name)
    assert match.level == "family" and match.method_id is None
    assert match.family == METHODS[representative].family  # the family is the registry's, not a copy
    assert "wider interval" in match.note


def _level_and_family(name: str) -> tuple[str, str]:
    try:
        match = match_method(name)
    except InputError:
        return "refused", ""
    return match.level, match.family or ""


def test_every_name_matches_as_in_the_snapshot() -> None:
    with NAMES_SNAPSHOT.open(encoding="utf-8", newline="") as handle:
        snapshot = list(csv.DictReader(handle))
    assert {r["name"]: (r["level"], r["family"]) for r in snapshot} == {
        r["name"]: _level_and_family(r["name"]) for r in snapshot
    }


def test_an_unknown_name_is_peft_in_general_never_an_error() -> None:
    match = match_method("zorblatt tuning")
    assert (match.level, match.method_id, match.family) == ("peft", None, None) and "PEFT in general" in match.note


def test_only_blank_fft_and_the_base_model_are_refused() -> None:
    for name, message in ((" ", "method is blank"), ("Full fine-tuning", "is the reference"),
                          ("No fine-tuning (base LLaMA)", "not a fine-tuning method")):  # fmt: skip
        with pytest.raises(InputError, match=message):
            match_method(name)


def test_task_types_qa_synonyms_and_unknowns() -> None:
    assert match_task("code", TYPES).note == ""
    assert match_task("qa", TYPES).task_type == "extraction"
    assert match_task("multiple-choice QA", TYPES).task_type == "classification"
    assert match_task("summarisation", TYPES).task_type == "generation"
    unknown = match_task("poetry", TYPES)
    assert unknown.level == "any" and unknown.task_type is None and "wider interval" in unknown.note
