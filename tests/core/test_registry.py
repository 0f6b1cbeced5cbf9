"""The method registry: every method the issue names, knob validation, peft configs."""

import pytest

from core.errors import InputError
from core.registry import ALL_LINEAR, FAMILIES, METHODS, MethodChoice, get_method, method_ids

REQUIRED = (
    "fft",
    "lora",
    "qlora",
    "dora",
    "adalora",
    "ia3",
    "prefix_tuning",
    "prompt_tuning",
    "p_tuning",
    "vera",
    "loha",
    "lokr",
    "oft",
    "bitfit",
    "partial_ft",
)


def test_registry_has_every_required_method_with_a_family() -> None:
    assert set(REQUIRED) <= set(method_ids())
    for method in METHODS.values():
        assert method.family in FAMILIES
        assert method.name and method.summary


def test_evidence_only_methods_are_not_estimable() -> None:
    assert "adapter" in method_ids(estimable_only=False)
    assert "adapter" not in method_ids()
    with pytest.raises(InputError, match="only as published evidence"):
        MethodChoice("adapter")


def test_defaults_fill_unset_knobs() -> None:
    choice = MethodChoice("qlora")
    assert (choice.rank, choice.alpha, choice.targets, choice.dropout) == (64, 16.0, ALL_LINEAR, 0.1)
    assert MethodChoice("lora", rank=16).rank == 16
    assert MethodChoice("adalora").init_rank == 12  # peft's own init_r default beside target_r 8
    assert MethodChoice("adalora", rank=16).init_rank == 24  # the same 1.5x ratio when only --rank is given


def test_targets_are_split_and_kept() -> None:
    assert MethodChoice("lora", targets="q_proj, v_proj").targets == ("q_proj", "v_proj")
    assert MethodChoice("lora", targets=ALL_LINEAR).targets == ALL_LINEAR


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "lora", "virtual_tokens": 4}, "does not take --virtual-tokens"),
        ({"method": "fft", "rank": 4}, "does not take --rank"),
        ({"method": "lora", "rank": 0}, "--rank 0 must be a positive integer"),
        ({"method": "lora", "rank": -3}, "--rank -3 must be a positive integer"),
        ({"method": "prompt_tuning", "virtual_tokens": 0}, "--virtual-tokens 0 must be at least 1"),
        ({"method": "lora", "dropout": 1.0}, "--dropout 1.0 must be in"),
        ({"method": "adalora", "rank": 16, "init_rank": 8}, "below the target --rank"),
        ({"method": "lora", "adapter_dtype": "int4"}, "--adapter-dtype"),
        ({"method": "lorra"}, "unknown method 'lorra'"),
    ],
)
def test_bad_knobs_are_one_line_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        MethodChoice(**kwargs)
    assert "\n" not in str(info.value)


def test_lookup_is_forgiving_about_case_and_dashes() -> None:
    assert get_method("Prefix-Tuning").id == "prefix_tuning"


def test_peft_configs_carry_the_knobs() -> None:
    lora = MethodChoice("lora", rank=16, alpha=32, dropout=0.05, targets="q_proj,v_proj").peft_config("CAUSAL_LM")
    assert (lora.r, lora.lora_alpha, lora.lora_dropout, set(lora.target_modules)) == (
        16,
        32,
        0.05,
        {"q_proj", "v_proj"},
    )
    assert MethodChoice("dora").peft_config("CAUSAL_LM").use_dora
    ada = MethodChoice("adalora", rank=4, init_rank=10).peft_config("CAUSAL_LM")
    assert (ada.target_r, ada.init_r) == (4, 10)
    assert MethodChoice("prefix_tuning", virtual_tokens=7).peft_config("CAUSAL_LM").num_virtual_tokens == 7
    assert MethodChoice("bitfit").peft_config("CAUSAL_LM") is None
