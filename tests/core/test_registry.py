"""The method registry: every method the issue names, knob validation, peft configs."""

import pytest

from core.errors import InputError
from core.registry import (
    ALL_LINEAR,
    FAMILIES,
    FAMILY_NAMES,
    FAMILY_RULES,
    METHODS,
    NAME_RULES,
    PEFT_DEFAULT,
    MethodChoice,
    NamePattern,
    _in_priority_order,
    get_method,
    method_ids,
)

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


def test_peft_default_targets_are_a_value_any_method_can_be_set_to() -> None:
    """peft's own modules are named, so QLoRA (all-linear by default) can be compared with LoRA at them."""
    assert MethodChoice("lora").targets == PEFT_DEFAULT
    qlora = MethodChoice("qlora", targets=PEFT_DEFAULT)
    assert qlora.targets == PEFT_DEFAULT and qlora.label() == "QLoRA (4-bit NF4 base + LoRA) r=64"
    assert qlora.peft_config("CAUSAL_LM").target_modules is None  # peft then picks the architecture's modules
    assert MethodChoice("qlora").peft_config("CAUSAL_LM").target_modules == ALL_LINEAR
    takers = [m for m in METHODS.values() if "targets" in m.defaults]
    assert {m.defaults["targets"] for m in takers if m.id != "qlora"} == {PEFT_DEFAULT}


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
        ({"method": "boft", "block_size": 0}, "--block-size 0 must be a positive integer"),
        ({"method": "trainable_tokens", "tokens": -1}, "--tokens -1 must be at least 1"),
        ({"method": "boft", "rank": 4}, "does not take --rank"),
    ],
)
def test_bad_knobs_are_one_line_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        MethodChoice(**kwargs)
    assert "\n" not in str(info.value)


def test_lookup_is_forgiving_about_case_and_dashes() -> None:
    assert get_method("Prefix-Tuning").id == "prefix_tuning"


@pytest.mark.parametrize(
    ("name", "method_id"),
    [
        ("LoRA+", "loraplus"),
        ("rsLoRA", "rslora"),
        ("MiSS", "miss"),
        ("Bone", "miss"),
        ("(IA)^3", "ia3"),
        ("VB-LoRA", "vblora"),
        ("LoRA-FA", "lora_fa"),
        ("LLaMA-Adapter", "adaption_prompt"),
        ("Full fine-tuning", "fft"),
        ("Houlsby", "adapter"),
    ],
)
def test_literature_names_are_aliases(name: str, method_id: str) -> None:
    assert get_method(name).id == method_id


def test_lora_plus_is_not_lora() -> None:
    """'+' is spelled out before punctuation is dropped, so LoRA+ does not collapse onto LoRA."""
    assert get_method("LoRA+").id != get_method("LoRA").id


def _first(order: list[str], name: str) -> int:
    return order.index(name)


def _last(order: list[str], name: str) -> int:
    return len(order) - 1 - order[::-1].index(name)


def test_name_patterns_try_a_name_before_the_names_it_contains() -> None:
    """Published names are read by the methods' patterns in priority order, first match wins: DVoRA (DoRA + VeRA)
    before DoRA and VeRA, QLoRA and DoRA before LoRA, prefix-embedding (prompt tuning) before prefix, prefix and
    P-tuning before 'prompt tuning', adapters and the base model before full fine-tuning's 'fine-tuning'."""
    order = [method_id for _, method_id in NAME_RULES]
    for specific, general in (("dvora", "dora"), ("dvora", "vera"), ("qlora", "lora"), ("dora", "lora"),
                              ("prompt_tuning", "prefix_tuning"), ("adapter", "fft"), ("base", "fft")):  # fmt: skip
        assert _first(order, specific) < _first(order, general), (specific, general)
    assert _last(order, "prefix_tuning") < _last(order, "prompt_tuning")
    assert _last(order, "p_tuning") < _last(order, "prompt_tuning")
    assert order[-1] == "fft"
    assert {method_id for _, method_id in NAME_RULES} <= set(METHODS)


def test_family_names_are_read_in_their_declared_order() -> None:
    """LLaMA-Adapter learns prompts (soft-prompt before additive); 'rank' and 'lora' sit inside many names
    (low-rank last)."""
    assert set(FAMILY_NAMES) <= set(FAMILIES)
    assert [family for _, family in FAMILY_RULES] == [
        "orthogonal", "soft-prompt", "additive", "scaling", "selective", "low-rank"
    ]  # fmt: skip


def test_a_shared_name_priority_is_refused() -> None:
    """Two patterns with one priority would be tried in an order left to chance."""
    with pytest.raises(ValueError, match="share priority 10"):
        _in_priority_order([(NamePattern(10, "a"), "x"), (NamePattern(10, "b"), "y")], "test table")


def test_every_method_has_a_family_and_one_way_to_train() -> None:
    assert "orthogonal" in FAMILIES
    for method in METHODS.values():
        assert method.family in FAMILIES, method.id
        if method.estimable:
            assert method.is_peft != (method.trains is not None), method.id
    assert {METHODS[m].family for m in ("oft", "boft", "hra")} == {"orthogonal"}
    assert [m for m in method_ids() if METHODS[m].trains is not None] == ["fft", "partial_ft", "bitfit"]


def test_trains_rules_are_declared() -> None:
    assert (METHODS["fft"].trains.scope, METHODS["bitfit"].trains.scope, METHODS["partial_ft"].trains.scope) == (
        "all",
        "biases",
        "top_blocks",
    )
    assert METHODS["bitfit"].trains.new_head


def test_soft_prompts_say_where_their_tokens_go() -> None:
    places = {m: METHODS[m].soft_prompt for m in method_ids() if METHODS[m].family == "soft-prompt"}
    assert places["prompt_tuning"] == places["p_tuning"] == "input"
    assert places["prefix_tuning"] == places["adaption_prompt"] == "attention"
    assert all(METHODS[m].soft_prompt == "none" for m in method_ids() if METHODS[m].family != "soft-prompt")


def test_choices_say_how_many_tokens_they_add() -> None:
    assert MethodChoice("prompt_tuning", virtual_tokens=7).input_tokens == 7
    assert MethodChoice("prompt_tuning", virtual_tokens=7).attention_tokens == 0
    assert MethodChoice("prefix_tuning", virtual_tokens=9).attention_tokens == 9
    assert MethodChoice("prefix_tuning", virtual_tokens=9).input_tokens == 0
    assert (MethodChoice("lora").input_tokens, MethodChoice("lora").attention_tokens) == (0, 0)


def test_evidence_only_methods_say_why() -> None:
    with pytest.raises(InputError, match="already trained LoRA adapters"):
        MethodChoice("xlora")


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
    assert MethodChoice("rslora").peft_config("CAUSAL_LM").use_rslora
    assert MethodChoice("pissa").peft_config("CAUSAL_LM").init_lora_weights == "pissa"
    assert MethodChoice("olora").peft_config("CAUSAL_LM").init_lora_weights == "olora"
    assert MethodChoice("boft", block_size=8).peft_config("CAUSAL_LM").boft_block_size == 8
    assert MethodChoice("fourierft", n_frequency=300).peft_config("CAUSAL_LM").n_frequency == 300
    assert MethodChoice("trainable_tokens", tokens=3).peft_config("CAUSAL_LM").token_indices == [0, 1, 2]
    adaption = MethodChoice("adaption_prompt", virtual_tokens=5, top_layers=3).peft_config("CAUSAL_LM")
    assert (adaption.adapter_len, adaption.adapter_layers) == (5, 3)


def test_labels_name_the_knobs() -> None:
    assert MethodChoice("lora", rank=16, targets="all-linear").label() == "LoRA r=16 (all-linear)"
    assert MethodChoice("oft", rank=4).label() == "OFT blocks=4"
    assert MethodChoice("boft").label() == "BOFT block 4"
