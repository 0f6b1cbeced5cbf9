"""Every peft method peft ships is a registry entry, and its count is exactly what peft reports."""

import contextlib

import peft
import pytest
from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING
from peft.utils.peft_types import PeftType
from tiny_models import TINY_CONFIGS, TINY_MOE_CONFIGS, peft_reference, tiny_model

from core.apply import apply_method
from core.counting import count_parameters
from core.errors import InputError, NotApplicableError
from core.memory.step import load_dtype
from core.peft_counts import peft_model
from core.registry import METHODS, MethodChoice, PeftBuilder, method_ids
from core.skeleton import PEFT_TASK_TYPES, SkeletonKey, default_task, fresh_copy, skeleton

PEFT_METHODS = [m for m in method_ids() if METHODS[m].is_peft]
# Knob values that fit the tiny configs' 64-wide layers (peft refuses block sizes and spectra larger than a layer).
TINY_KNOBS = {"rank": 4, "top_layers": 2, "block_size": 4, "n_frequency": 50}


def _tiny_choice(method: str, **extra: object) -> MethodChoice:
    spec = METHODS[method]
    knobs = {k: v for k, v in TINY_KNOBS.items() if k in spec.defaults and spec.defaults[k] is not None}
    knobs |= {k: v for k, v in extra.items() if k in spec.defaults}
    if method == "road":
        knobs["block_size"] = 8  # RoAd rotates pairs inside groups: the group size must be even and divide 64
    return MethodChoice(method, **knobs)


def _peft_type(method: str) -> PeftType:
    build = METHODS[method].build
    if isinstance(build, PeftBuilder):  # read the class: some configs check optional packages when built
        return next(t for t, cls in PEFT_TYPE_TO_CONFIG_MAPPING.items() if cls is build.config_class)
    return MethodChoice(method).peft_config("CAUSAL_LM").peft_type


def test_every_peft_type_has_a_registry_entry() -> None:
    built = {_peft_type(m) for m in PEFT_METHODS}
    built_not_estimable = {_peft_type(m) for m in METHODS if METHODS[m].is_peft and not METHODS[m].estimable}
    listed_only = {PeftType.XLORA}  # X-LoRA mixes already trained adapters: listed, not estimable
    assert built | built_not_estimable | listed_only == set(PeftType)
    # they decompose or cluster weight values (AdaMSS's adapter shapes come from KMeans): nothing to read on meta
    assert built_not_estimable == {PeftType.FROD, PeftType.ADAMSS}
    assert not METHODS["xlora"].estimable
    with pytest.raises(InputError, match="decomposes the pretrained weight values"):
        MethodChoice("frod")
    with pytest.raises(InputError, match="clusters the SVD of the pretrained weight values"):
        MethodChoice("adamss")


@pytest.mark.parametrize("tiny_family", sorted(TINY_CONFIGS))
@pytest.mark.parametrize("method", PEFT_METHODS)
def test_every_peft_method_matches_peft_on_tiny_families(method: str, tiny_family: str) -> None:
    """The block-stack shortcut gives peft's own full-model numbers; where peft refuses, so do we, in one line."""
    model = tiny_model(tiny_family)
    key = SkeletonKey(model, default_task(model), 3)
    choice = _tiny_choice(method)
    try:
        ours = count_parameters(key, choice)
    except NotApplicableError as exc:
        assert "\n" not in str(exc) and METHODS[method].name in str(exc)
        if "trains nothing" in str(exc):  # peft wraps the model but adds nothing trainable (OSF on GPT-2's Conv1D)
            assert peft_reference(key, choice)[0] == 0
            return
        with pytest.raises(Exception):  # noqa: B017 (peft's refusals use many exception types)
            peft_reference(key, choice)
        return
    assert (ours.trainable_params, ours.total_params) == peft_reference(key, choice)
    assert 0 < ours.trainable_params < ours.total_params


@pytest.mark.parametrize("tiny_family", sorted(TINY_MOE_CONFIGS))
@pytest.mark.parametrize("method", PEFT_METHODS)
def test_every_peft_method_matches_peft_on_heterogeneous_moe_stacks(method: str, tiny_family: str) -> None:
    """DeepSeek's dense-then-MoE stack and Qwen3-MoE's interleaved dense layers: extrapolation stays exact."""
    key = SkeletonKey(tiny_model(tiny_family), "causal-lm", 2)
    choice = _tiny_choice(method, targets="all-linear")
    try:
        ours = count_parameters(key, choice)
    except NotApplicableError as exc:
        assert "\n" not in str(exc)
        if "trains nothing" in str(exc):
            assert peft_reference(key, choice)[0] == 0
            return
        with pytest.raises(Exception):  # noqa: B017 (peft's refusals use many exception types)
            peft_reference(key, choice)
        return
    assert (ours.trainable_params, ours.total_params) == peft_reference(key, choice)


def test_lora_variants_count_as_lora_except_lora_fa() -> None:
    key = SkeletonKey(tiny_model("llama"), "causal-lm", 2)
    lora = count_parameters(key, MethodChoice("lora", rank=4)).trainable_params
    for variant in ("rslora", "pissa", "olora", "loraplus"):
        assert count_parameters(key, MethodChoice(variant, rank=4)).trainable_params == lora, variant
    # LoRA-FA freezes A (r x in per layer): what trains is B alone, out x r per layer.
    wrapped = peft_model(key, MethodChoice("lora_fa", rank=4), None)
    b_only = sum(p.numel() for n, p in wrapped.named_parameters() if "lora_B" in n)
    assert count_parameters(key, MethodChoice("lora_fa", rank=4)).trainable_params == b_only < lora


def test_shira_trains_r_times_in_plus_out_per_layer() -> None:
    # peft's ShiraLayer.update_layer: num_shira_weight = r * (in_features + out_features), LoRA's budget.
    key = SkeletonKey(tiny_model("llama"), "causal-lm", 2)
    count = count_parameters(key, MethodChoice("shira", rank=2, targets="q_proj,v_proj"))
    q, v = (64, 64), (32, 64)  # (out, in): 4 heads of 16, 2 key/value heads of 16
    assert count.trainable_params == 4 * 2 * (sum(q) + sum(v))


def test_adaption_prompt_attaches_to_the_top_blocks_only() -> None:
    key = SkeletonKey(tiny_model("llama"), "causal-lm", 2)
    one = count_parameters(key, MethodChoice("adaption_prompt", virtual_tokens=5, top_layers=1)).trainable_params
    three = count_parameters(key, MethodChoice("adaption_prompt", virtual_tokens=5, top_layers=3)).trainable_params
    assert three == 3 * one == 3 * (5 * 64 + 1)  # per layer: an adapter_len x hidden prompt and one gate


def test_adaption_prompt_beyond_the_depth_names_the_range() -> None:
    key = SkeletonKey(tiny_model("llama"), "causal-lm", 2)
    with pytest.raises(InputError, match="--top-layers 30 exceeds the model's 4 blocks; choose 1 to 4"):
        count_parameters(key, MethodChoice("adaption_prompt"))


def test_a_method_peft_refuses_is_one_clear_line() -> None:
    key = SkeletonKey(tiny_model("llama"), "causal-lm", 2)
    with pytest.raises(NotApplicableError, match=r"VB-LoRA cannot be applied to tiny-llama: .*vector_length") as info:
        count_parameters(key, MethodChoice("vblora"))
    assert "\n" not in str(info.value)
    with pytest.raises(NotApplicableError, match="CPT .* cannot be applied"):
        count_parameters(SkeletonKey(tiny_model("t5"), "seq2seq", 2), MethodChoice("cpt"))


@pytest.mark.parametrize("method", ["lora_fa", "boft", "trainable_tokens", "adaption_prompt", "fft", "bitfit"])
def test_apply_method_trains_what_was_counted(method: str) -> None:
    """The one apply step (used by the trace and the probe) leaves exactly the counted parameters trainable."""
    model = tiny_model("llama" if method != "bitfit" else "gpt2")
    key = SkeletonKey(model, "causal-lm", 2)
    choice = _tiny_choice(method)
    applied = apply_method(fresh_copy(skeleton(key)), key, choice)
    trainable = sum(p.numel() for p in applied.parameters() if p.requires_grad)
    assert trainable == count_parameters(key, choice).trainable_params


def test_optimizer_helpers_are_real_peft_functions() -> None:
    for method in method_ids():
        helper = METHODS[method].optimizer
        if helper:
            assert callable(getattr(peft.optimizers, helper)), method
    assert PEFT_TASK_TYPES["causal-lm"] == "CAUSAL_LM"


@pytest.mark.parametrize("method", PEFT_METHODS)
def test_wrapping_on_meta_trains_what_peft_trains_on_real_bf16_weights(method: str) -> None:
    """On real weights peft moves each new adapter to its base layer's dtype and then upcasts it to fp32, which
    re-creates `ParameterDict` entries as trainable parameters (AdaLoRA's ranknum); on meta it skips the move.
    The meta path used by the counter and the trace must end with the trainable set of plain peft on a real bf16
    model."""
    import torch
    import transformers
    from peft import get_peft_model

    model = tiny_model("llama")
    key = SkeletonKey(model, "causal-lm", 2)
    choice = _tiny_choice(method)
    meta = fresh_copy(skeleton(key))
    load_dtype(meta, torch.bfloat16)
    torch.manual_seed(0)
    real = transformers.AutoModelForCausalLM.from_config(model.build_config(), dtype=torch.bfloat16)
    try:
        with torch.device("meta") if METHODS[method].meta_init else contextlib.nullcontext():
            ours = apply_method(meta, key, choice)
    except NotApplicableError:
        with pytest.raises(Exception):  # noqa: B017 (peft's refusals use many exception types)
            get_peft_model(real, choice.peft_config("CAUSAL_LM"))
        return
    reference = get_peft_model(real, choice.peft_config("CAUSAL_LM"))
    frozen = METHODS[method].frozen_adapter_params  # what peft's own optimizer helper freezes (LoRA-FA's A)
    expected = {n for n, p in reference.named_parameters()
                if p.requires_grad and not any(f".{part}." in n for part in frozen)}
    assert {n for n, p in ours.named_parameters() if p.requires_grad} == expected
