"""Exact counts: published totals, peft's own numbers for every method, BitFit and partial FT by hand."""

import warnings

import pytest
import torch
import transformers
from tiny_models import peft_reference, tiny_model

from core import catalogue
from core.counting import count_parameters
from core.errors import InputError, NotApplicableError
from core.models import resolve_model
from core.registry import MethodChoice, method_ids
from core.skeleton import (
    SkeletonKey,
    block_stacks,
    default_task,
    extrapolate,
    fresh_copy,
    skeleton,
    stack_plans,
    top_blocks,
)

EXACT_TOTALS = {
    "meta-llama/Llama-2-7b-hf": 6_738_415_616,
    "meta-llama/Llama-2-13b-hf": 13_015_864_320,
    "meta-llama/Llama-2-70b-hf": 68_976_648_192,
    "mistralai/Mistral-7B-v0.1": 7_241_732_096,
    "TinyLlama/TinyLlama-1.1B-Chat-v1.0": 1_100_048_384,
    "facebook/opt-13b": 12_853_473_280,
}
# BOFT builds an in x in permutation per layer on the CPU: 32 full 7B blocks take minutes, so tiny models test it.
PEFT_METHODS = [m for m in method_ids() if MethodChoice(m).spec.is_peft and m != "boft"]


def _key(name: str, task: str | None = None) -> SkeletonKey:
    model = resolve_model(name)
    return SkeletonKey(model, task or default_task(model), 2)


@pytest.mark.parametrize(("repo_id", "total"), EXACT_TOTALS.items())
def test_published_totals_are_exact(repo_id: str, total: int) -> None:
    count = count_parameters(_key(repo_id), MethodChoice("fft"))
    assert count.total_params == count.trainable_params == total


@pytest.mark.parametrize("repo_id", sorted(catalogue.entries()))
def test_catalogue_counts_match_transformers(repo_id: str) -> None:
    """Our FFT count equals transformers' own `num_parameters()` for the class the config names."""
    entry = catalogue.entries()[repo_id]
    model = resolve_model(repo_id)
    architectures = model.config_dict.get("architectures") or ["AutoModel"]
    with warnings.catch_warnings(), torch.device("meta"):
        warnings.simplefilter("ignore")
        if architectures[0] == "AutoModel":
            reference = transformers.AutoModel.from_config(model.build_config())
        else:
            reference = getattr(transformers, architectures[0])(model.build_config())
    # transformers 5 ties mT5's output head although its checkpoint stores one (see test_catalogue_today.py)
    untied_head = model.config_dict.get("tie_word_embeddings") is False and reference.config.tie_word_embeddings
    head = reference.get_output_embeddings().weight.numel() if untied_head else 0
    assert reference.num_parameters() + head == entry.params
    ours = count_parameters(_key(repo_id), MethodChoice("fft")).total_params
    if default_task(model) == "causal-lm" or model.config_dict.get("is_encoder_decoder"):
        assert ours == entry.params
    else:  # encoders default to a classification head; compare against that class
        with warnings.catch_warnings(), torch.device("meta"):
            warnings.simplefilter("ignore")
            cls_config = model.build_config()
            cls_config.num_labels = 2
            seq_cls = transformers.AutoModelForSequenceClassification.from_config(cls_config)
        assert ours == seq_cls.num_parameters()


@pytest.mark.parametrize("method", PEFT_METHODS)
def test_every_peft_method_matches_peft_on_llama_2_7b(method: str) -> None:
    """The block-stack extrapolation on a real 32-block model equals peft on the whole model."""
    key = _key("meta-llama/Llama-2-7b-hf")
    choice = MethodChoice(method, top_layers=4) if method == "adaption_prompt" else MethodChoice(method)
    try:
        ours = count_parameters(key, choice)
    except NotApplicableError as exc:  # e.g. VB-LoRA's vector length must divide the widths
        assert "\n" not in str(exc)
        with pytest.raises(Exception):  # noqa: B017 (peft's refusals use many exception types)
            peft_reference(key, choice)
        return
    assert (ours.trainable_params, ours.total_params) == peft_reference(key, choice)


def test_bitfit_counts_exactly_the_biases() -> None:
    key = _key("gpt2")
    biases = sum(p.numel() for n, p in skeleton(key).named_parameters() if n.endswith("bias"))
    count = count_parameters(key, MethodChoice("bitfit"))
    assert count.trainable_params == biases == 102_144


def test_bitfit_on_a_classifier_also_trains_the_new_head() -> None:
    key = _key("roberta-base")
    model = skeleton(key)
    biases = sum(
        p.numel() for n, p in model.named_parameters() if n.endswith("bias") and not n.startswith("classifier")
    )
    head = sum(p.numel() for p in model.classifier.parameters())
    assert count_parameters(key, MethodChoice("bitfit")).trainable_params == biases + head


def test_bitfit_refuses_a_model_without_biases() -> None:
    with pytest.raises(NotApplicableError, match="has none"):
        count_parameters(_key("llama-2-7b"), MethodChoice("bitfit"))


@pytest.mark.parametrize("top", [1, 2, 5])
def test_partial_ft_counts_exactly_the_top_blocks(top: int) -> None:
    key = _key("meta-llama/Llama-2-7b-hf")
    layers = skeleton(key).model.layers
    expected = sum(p.numel() for block in layers[-top:] for p in block.parameters())
    assert count_parameters(key, MethodChoice("partial_ft", top_layers=top)).trainable_params == expected


def test_partial_ft_beyond_depth_is_refused() -> None:
    with pytest.raises(InputError, match="exceeds the model's 32 blocks"):
        count_parameters(_key("llama-2-7b"), MethodChoice("partial_ft", top_layers=33))


def test_adapter_bytes_follow_dtype() -> None:
    key = _key("llama-2-7b")
    fp32 = count_parameters(key, MethodChoice("lora", rank=16))
    bf16 = count_parameters(key, MethodChoice("lora", rank=16, adapter_dtype="bf16"))
    assert fp32.adapter_bytes == 4 * fp32.trainable_params == 2 * bf16.adapter_bytes
    fft = count_parameters(key, MethodChoice("fft"))
    assert fft.adapter_bytes == 2 * fft.total_params  # the checkpoint is published in float16


def test_lora_rank_16_all_linear_on_llama_2_7b() -> None:
    # r * (in + out) summed over q,k,v,o (4096->4096) and gate,up (4096->11008), down (11008->4096), x 32 layers
    expected = 16 * (4 * (4096 + 4096) + 3 * (4096 + 11008)) * 32
    assert (
        count_parameters(_key("llama-2-7b"), MethodChoice("lora", rank=16, targets="all-linear")).trainable_params
        == expected
    )


def test_unknown_targets_list_the_real_names() -> None:
    with pytest.raises(InputError, match="--targets query not found.*q_proj") as info:
        count_parameters(_key("llama-2-7b"), MethodChoice("lora", targets="q_proj,query"))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("method", "fix"), [
    ("qlora", "pass --dropout 0"), ("dora", "pass --targets naming layers outside the experts, some of .*q_proj"),
])
def test_moe_experts_peft_cannot_adapt_say_which_flag_fixes_it(method: str, fix: str) -> None:
    """peft adapts an MoE's fused expert weights through lora.ParamWrapper, which refuses dropout and DoRA: the
    refusal names the flag that lifts it (and the names are read before peft half-wraps the model)."""
    key = _key("qwen3-30b-a3b")
    with pytest.raises(NotApplicableError, match=f"cannot adapt the experts of Qwen/Qwen3-30B-A3B .*{fix}") as info:
        count_parameters(key, MethodChoice(method, targets="all-linear"))
    assert "\n" not in str(info.value) and "base_layer" not in str(info.value)
    assert count_parameters(key, MethodChoice("qlora", targets="all-linear", dropout=0.0)).trainable_params > 0


def test_rank_larger_than_layer() -> None:
    model = tiny_model("llama")
    key = SkeletonKey(model, "causal-lm", 2)
    with pytest.raises(InputError, match="--rank 100 is larger than layer"):
        count_parameters(key, MethodChoice("lora", rank=100))


@pytest.mark.parametrize("family", ["deepseek_v2", "qwen3_moe", "t5"])
def test_extrapolate_is_exact_on_heterogeneous_stacks(family: str) -> None:
    """skeleton.extrapolate (what a trace of 1-3 blocks scales up with) reproduces a per-copy measure of the whole
    model: here the parameter count and the element count of 2-D weights of truncated meta copies."""
    key = SkeletonKey(tiny_model(family), default_task(tiny_model(family)), 2)
    model = skeleton(key)

    def measure(keep: dict[str, int] | None) -> tuple[int, int]:
        copy = fresh_copy(model, keep)
        return sum(p.numel() for p in copy.parameters()), sum(p.numel() for p in copy.parameters() if p.dim() == 2)

    stacks = stack_plans(model)
    assert any(len(set(s.kinds)) > 1 for s in stacks)  # really heterogeneous
    assert extrapolate(stacks, measure) == measure(None)


def test_block_stacks_keeps_its_first_n_blocks_meaning() -> None:
    """block_stacks lists only stacks whose blocks after the first are one kind (so "first N blocks" copies
    extrapolate exactly); the interleaved Qwen3-MoE stack is left to stack_plans/extrapolate."""
    assert block_stacks(skeleton(SkeletonKey(tiny_model("deepseek_v2"), "causal-lm", 2))) == {"model.layers": 5}
    assert block_stacks(skeleton(SkeletonKey(tiny_model("qwen3_moe"), "causal-lm", 2))) == {}
    assert [s.kinds for s in stack_plans(skeleton(SkeletonKey(tiny_model("qwen3_moe"), "causal-lm", 2)))] == [
        (0, 1, 0, 1, 0, 1)
    ]


def test_top_blocks_on_a_truncated_copy() -> None:
    """The memory trace applies partial fine-tuning to copies that keep a few blocks: the top K of those train."""
    model = skeleton(SkeletonKey(tiny_model("llama"), "causal-lm", 2))
    copy = fresh_copy(model, {"model.layers": 2})
    assert [name for name, _ in top_blocks(copy, 1)] == ["model.layers.1"]
    with pytest.raises(InputError, match="exceeds the model's 2 blocks"):
        top_blocks(copy, 3)


@pytest.mark.parametrize(("repo_id", "positions"), [
    ("openai-community/gpt2", 1024), ("google-bert/bert-base-uncased", 512), ("FacebookAI/roberta-base", 512),
    ("facebook/opt-1.3b", 2048), ("facebook/bart-large", 1024), ("meta-llama/Llama-2-7b-hf", 0),
    ("google-t5/t5-base", 0), ("google/gemma-3-12b-pt", 0),
])
def test_learned_position_tables_give_the_tokens_they_can_index(repo_id: str, positions: int) -> None:
    """Rows less OPT's and BART's offset and RoBERTa's padding rows; RoPE and T5's relative buckets have no table,
    and Gemma 3's vision tower's patch table is not one."""
    from core.counting import model_shape
    from core.skeleton import SkeletonKey, default_task

    model = resolve_model(repo_id)
    assert model_shape(SkeletonKey(model, default_task(model), 2)).learned_positions == positions
