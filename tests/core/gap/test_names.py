"""Every method and task name a user types is answered: a registry method, its family, or PEFT in general."""

from __future__ import annotations

import pytest

from core.errors import InputError
from core.gap.names import match_method, match_task
from core.registry import METHODS

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
