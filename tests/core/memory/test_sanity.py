"""Orderings every memory estimate must respect, on SmolLM2-135M (Llama-style) and Llama-2-7B."""

from __future__ import annotations

from dataclasses import replace

import pytest

from core.counting import count_parameters
from core.memory.budget import MemoryBreakdown, estimate_training
from core.memory.quantization import check_quantization
from core.memory.setup import TrainingSetup
from core.models import resolve_model
from core.registry import MethodChoice
from core.skeleton import SkeletonKey

SETUP = TrainingSetup(batch_size=4, seq_len=512)


def _key(name: str = "HuggingFaceTB/SmolLM2-135M") -> SkeletonKey:
    return SkeletonKey(resolve_model(name), "causal-lm", 2)


def memory(choice: MethodChoice, setup: TrainingSetup = SETUP, key: SkeletonKey | None = None) -> MemoryBreakdown:
    key = key or _key()
    quant = check_quantization(choice, setup)
    return estimate_training(key, choice, count_parameters(key, choice), setup, quant).memory


def test_qlora_below_lora_below_fft_for_the_same_adapter() -> None:
    key = _key("llama-2-7b")
    setup = TrainingSetup(batch_size=1, seq_len=512)
    knobs = {"rank": 64, "alpha": 16.0, "targets": "all-linear", "dropout": 0.1}
    qlora = memory(MethodChoice("qlora", **knobs), setup, key)
    lora = memory(MethodChoice("lora", **knobs), setup, key)
    fft = memory(MethodChoice("fft"), setup, key)
    assert qlora.device < lora.device < fft.device
    assert qlora.weights < 0.4 * lora.weights  # 4-bit base weights


def test_all_linear_lora_above_query_value_lora() -> None:
    assert memory(MethodChoice("lora", targets="all-linear")).activations > memory(MethodChoice("lora")).activations


def test_dora_above_lora() -> None:
    assert memory(MethodChoice("dora")).allocated > memory(MethodChoice("lora")).allocated


def test_many_prompt_tokens_above_few_prefix_tokens() -> None:
    many = memory(MethodChoice("prompt_tuning", virtual_tokens=200)).activations
    few = memory(MethodChoice("prefix_tuning", virtual_tokens=10)).activations
    assert many > few


@pytest.mark.parametrize("method", ["fft", "lora"])
def test_gradient_checkpointing_lowers_the_peak(method: str) -> None:
    plain = memory(MethodChoice(method))
    checkpointed = memory(MethodChoice(method), replace(SETUP, gradient_checkpointing=True))
    assert checkpointed.activations < plain.activations  # the logits and their loss stay outside the blocks
    assert checkpointed.allocated < plain.allocated


def test_eager_attention_keeps_scores_that_grow_with_the_square_of_the_length() -> None:
    def extra(seq: int) -> int:
        eager = memory(MethodChoice("lora"), replace(SETUP, seq_len=seq, attention="eager")).activations
        return eager - memory(MethodChoice("lora"), replace(SETUP, seq_len=seq)).activations

    assert extra(256) > 0
    assert extra(1024) > 10 * extra(256)  # 16x for pure s^2 terms, 4x for linear ones


def test_frozen_base_keeps_less_than_full_fine_tuning() -> None:
    lora, fft = memory(MethodChoice("lora")), memory(MethodChoice("fft"))
    assert lora.activations < fft.activations
    assert lora.gradients + lora.optimizer < (fft.gradients + fft.optimizer) / 50


def test_device_level_holds_more_than_the_allocator() -> None:
    peak = memory(MethodChoice("lora"))
    assert peak.device > peak.allocated and peak.total == peak.device
    assert peak.to_dict()["allocated"] == sum(
        peak.to_dict()[k] for k in ("weights", "gradients", "optimizer", "activations", "temporaries"))
