"""Orderings every memory estimate must respect, on a real catalogue architecture (SmolLM2-135M, Llama-style)
and on Llama-2-7B, where weights dominate at small batches."""

from __future__ import annotations

from dataclasses import replace

import pytest

from core.counting import count_parameters
from core.memory.activations import activation_model
from core.memory.budget import MemoryBreakdown, estimate_training
from core.memory.setup import TrainingSetup
from core.models import resolve_model
from core.registry import MethodChoice
from core.skeleton import SkeletonKey

SETUP = TrainingSetup(batch_size=4, seq_len=512)


def _key(name: str = "HuggingFaceTB/SmolLM2-135M") -> SkeletonKey:
    return SkeletonKey(resolve_model(name), "causal-lm", 2)


def _memory(choice: MethodChoice, setup: TrainingSetup = SETUP, key: SkeletonKey | None = None) -> MemoryBreakdown:
    key = key or _key()
    return estimate_training(key, choice, count_parameters(key, choice), setup).memory


def test_qlora_below_lora_below_fft_for_the_same_adapter() -> None:
    key = _key("llama-2-7b")
    setup = TrainingSetup(batch_size=1, seq_len=512)
    knobs = {"rank": 64, "alpha": 16.0, "targets": "all-linear", "dropout": 0.1}
    qlora = _memory(MethodChoice("qlora", **knobs), setup, key).total
    lora = _memory(MethodChoice("lora", **knobs), setup, key).total
    fft = _memory(MethodChoice("fft"), setup, key).total
    assert qlora < lora < fft


def test_qlora_defaults_below_lora_defaults_with_checkpointing() -> None:
    key = _key("llama-2-7b")
    setup = TrainingSetup(batch_size=1, seq_len=512, gradient_checkpointing=True)
    assert _memory(MethodChoice("qlora"), setup, key).total < _memory(MethodChoice("lora"), setup, key).total


def test_all_linear_lora_above_query_value_lora() -> None:
    assert _memory(MethodChoice("lora", targets="all-linear")).activations > _memory(MethodChoice("lora")).activations


def test_dora_above_lora() -> None:
    assert _memory(MethodChoice("dora")).total > _memory(MethodChoice("lora")).total


def test_many_prompt_tokens_above_few_prefix_tokens() -> None:
    many = _memory(MethodChoice("prompt_tuning", virtual_tokens=200)).activations
    few = _memory(MethodChoice("prefix_tuning", virtual_tokens=10)).activations
    assert many > few


@pytest.mark.parametrize("method", ["fft", "lora", "prompt_tuning"])
def test_gradient_checkpointing_lowers_activations(method: str) -> None:
    plain = _memory(MethodChoice(method)).activations
    checkpointed = _memory(MethodChoice(method), replace(SETUP, gradient_checkpointing=True)).activations
    assert checkpointed < plain


@pytest.mark.parametrize("method", ["fft", "lora", "qlora", "prefix_tuning"])
def test_memory_is_linear_in_batch(method: str) -> None:
    totals = [_memory(MethodChoice(method), replace(SETUP, batch_size=b)).total for b in (1, 2, 3, 5)]
    step = totals[1] - totals[0]
    assert step > 0
    assert abs((totals[2] - totals[1]) - step) <= 2
    assert abs((totals[3] - totals[2]) - 2 * step) <= 4


def test_eager_attention_stores_score_matrices_and_flash_does_not() -> None:
    key, choice = _key(), MethodChoice("fft")
    eager = activation_model(key, choice, dtype="bf16", attention="eager")
    flash = activation_model(key, choice, dtype="bf16", attention="flash")
    assert eager.saved.terms.get((1, 2), 0) > 0  # a b * s^2 term
    assert flash.saved.terms.get((1, 2), 0) == 0


def test_frozen_base_saves_less_than_full_fine_tuning_per_layer() -> None:
    key = _key()
    lora = activation_model(key, MethodChoice("lora"), dtype="bf16").bytes(4, 512)
    fft = activation_model(key, MethodChoice("fft"), dtype="bf16").bytes(4, 512)
    assert lora < fft
