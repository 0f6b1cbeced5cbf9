"""Today's models in the catalogue: exact totals (transformers' own count and the published one), MoE stacks
that build on meta and extrapolate exactly, and mt0-large counted as its checkpoint holds it."""

import warnings

import pytest
import torch
import transformers
from tiny_models import peft_reference

from core import catalogue
from core.counting import count_parameters
from core.models import resolve_model
from core.registry import MethodChoice
from core.skeleton import SkeletonKey, default_task, skeleton, stack_plans

# Published totals (model cards / checkpoint index) that the meta skeleton must reproduce exactly.
PUBLISHED = {
    "Qwen/Qwen3-4B": 4_022_468_096,
    "Qwen/Qwen3-8B": 8_190_735_360,
    "Qwen/Qwen3-14B": 14_768_307_200,
    "Qwen/Qwen3-32B": 32_762_123_264,
    "Qwen/Qwen3-30B-A3B": 30_532_122_624,
    "google/gemma-3-1b-pt": 999_885_952,
    "google/gemma-3-4b-pt": 4_300_079_472,
    "google/gemma-3-12b-pt": 12_187_325_040,
    "google/gemma-3-27b-pt": 27_432_406_640,
    "meta-llama/Llama-3.3-70B-Instruct": 70_553_706_496,
    "microsoft/phi-4": 14_659_507_200,
    "mistralai/Mistral-Nemo-Base-2407": 12_247_782_400,
    "mistralai/Mistral-Small-24B-Base-2501": 23_572_403_200,
    "allenai/OLMo-2-1124-7B": 7_298_617_344,
    "allenai/OLMo-2-1124-13B": 13_716_198_400,
    "HuggingFaceTB/SmolLM3-3B": 3_075_098_624,
    "deepseek-ai/DeepSeek-V2-Lite": 15_706_484_224,
    "openai/gpt-oss-20b": 20_914_757_184,
    "Qwen/Qwen1.5-MoE-A2.7B": 14_315_784_192,
    "bigscience/mt0-large": 1_229_581_312,
}
TODAY = (*PUBLISHED, "Qwen/Qwen3-0.6B", "Qwen/Qwen3-1.7B", "deepseek-ai/DeepSeek-V3-Base")
MOE = ("Qwen/Qwen3-30B-A3B", "deepseek-ai/DeepSeek-V2-Lite", "openai/gpt-oss-20b", "Qwen/Qwen1.5-MoE-A2.7B")


def _key(repo_id: str) -> SkeletonKey:
    model = resolve_model(repo_id)
    return SkeletonKey(model, default_task(model), 2)


def _transformers_count(repo_id: str) -> int:
    model = resolve_model(repo_id)
    with warnings.catch_warnings(), torch.device("meta"):
        warnings.simplefilter("ignore")
        built = getattr(transformers, model.config_dict["architectures"][0])(model.build_config())
    return built.num_parameters()


@pytest.mark.parametrize("repo_id", TODAY)
def test_todays_models_are_in_the_catalogue_with_their_count(repo_id: str) -> None:
    entry = catalogue.find(repo_id)
    assert entry is not None and entry.params == count_parameters(_key(repo_id), MethodChoice("fft")).total_params
    assert "auto_map" not in entry.load_config()


@pytest.mark.parametrize(("repo_id", "total"), PUBLISHED.items())
def test_published_totals_are_exact(repo_id: str, total: int) -> None:
    assert count_parameters(_key(repo_id), MethodChoice("fft")).total_params == total


@pytest.mark.parametrize("repo_id", [r for r in TODAY if r != "bigscience/mt0-large"])
def test_counts_equal_transformers_num_parameters(repo_id: str) -> None:
    assert count_parameters(_key(repo_id), MethodChoice("fft")).total_params == _transformers_count(repo_id)


def test_mt0_large_counts_the_checkpoints_separate_output_head() -> None:
    """transformers 5 forces MT5Config to tie lm_head to the shared embedding; the checkpoint stores its own."""
    key = _key("bigscience/mt0-large")
    model = skeleton(key)
    assert model.encoder.embed_tokens.weight is model.shared.weight  # still tied, as in the checkpoint
    assert model.lm_head.weight is not model.shared.weight
    assert _transformers_count("bigscience/mt0-large") + 250_112 * 1024 == 1_229_581_312
    lora = count_parameters(key, MethodChoice("lora"))
    # peft's README: "trainable params: 2359296 || all params: 1231940608 || trainable%: 0.19151053100118282"
    assert (lora.trainable_params, lora.total_params) == (2_359_296, 1_231_940_608)


def test_tied_t5_checkpoints_stay_tied() -> None:
    model = skeleton(_key("google-t5/t5-base"))
    assert model.lm_head.weight is model.shared.weight
    assert model.num_parameters() == 222_903_552


@pytest.mark.parametrize("repo_id", MOE)
def test_moe_models_build_on_meta_and_extrapolate_exactly(repo_id: str) -> None:
    key = _key(repo_id)
    assert {p.device.type for p in skeleton(key).parameters()} == {"meta"}
    assert stack_plans(skeleton(key)), "the decoder layers are a block stack"
    choice = MethodChoice("lora", rank=8, targets="all-linear")
    ours = count_parameters(key, choice)
    assert (ours.trainable_params, ours.total_params) == peft_reference(key, choice)


def test_deepseek_dense_first_layer_is_its_own_kind() -> None:
    (stack,) = stack_plans(skeleton(_key("deepseek-ai/DeepSeek-V2-Lite")))
    assert stack.kinds == (0,) + (1,) * 26  # first_k_dense_replace = 1
    assert (stack.base, stack.steps) == (2, ((2, 25),))


def test_deepseek_v3_has_three_dense_layers_then_moe() -> None:
    (stack,) = stack_plans(skeleton(_key("deepseek-ai/DeepSeek-V3-Base")))
    assert stack.kinds == (0, 0, 0) + (1,) * 58  # first_k_dense_replace = 3
    assert (stack.base, stack.left_out) == (4, {1: 57})


def test_multimodal_gemma_defaults_to_a_causal_lm_and_counts_both_towers() -> None:
    key = _key("google/gemma-3-4b-pt")
    assert key.task == "causal-lm"
    names = [s.name for s in stack_plans(skeleton(key))]
    assert names == ["model.vision_tower.encoder.layers", "model.language_model.layers"]
