"""Weights, gradients and optimizer bytes by precision, optimizer and quantization; sharding and offload."""

from __future__ import annotations

import pytest

from core.counting import count_parameters
from core.errors import NotApplicableError
from core.memory.setup import TrainingSetup
from core.memory.sharding import shard
from core.memory.states import ModelStates, linear_stats, model_states
from core.models import resolve_model
from core.registry import MethodChoice
from core.skeleton import SkeletonKey

KEY = SkeletonKey(resolve_model("HuggingFaceTB/SmolLM2-135M"), "causal-lm", 2)


def _states(method: str, **setup: object) -> tuple[ModelStates, int, int]:
    choice = MethodChoice(method)
    count = count_parameters(KEY, choice)
    return model_states(KEY, choice, count, TrainingSetup(**setup)), count.total_params, count.trainable_params


def test_fft_fp32_adamw_is_16_bytes_per_parameter() -> None:
    states, n, _ = _states("fft", precision="fp32")
    assert (states.weights, states.gradients, states.optimizer) == (4 * n, 4 * n, 8 * n)


def test_fft_bf16_true_keeps_states_in_the_parameter_dtype() -> None:
    states, n, _ = _states("fft", precision="bf16-true")
    assert (states.weights, states.gradients, states.optimizer) == (2 * n, 2 * n, 4 * n)


def test_fft_mixed_has_fp32_master_plus_half_copy() -> None:
    states, n, _ = _states("fft", precision="bf16-mixed")
    assert (states.weights, states.gradients, states.optimizer) == (6 * n, 4 * n, 8 * n)


def test_lora_states_only_for_trainable_parameters() -> None:
    states, n, t = _states("lora", precision="bf16-mixed")
    assert states.weights == 2 * (n - t) + 6 * t
    assert (states.gradients, states.optimizer) == (4 * t, 8 * t)


def test_qlora_nf4_with_double_quantization() -> None:
    states, n, t = _states("qlora")
    q = linear_stats(KEY).quantizable
    expected = 2 * (n - t - q) + q * (0.5 + 1 / 64 + 4 / (64 * 256)) + 6 * t
    assert states.weights == pytest.approx(expected, abs=2)
    plain, _, _ = _states("qlora", quantization="nf4")
    assert plain.weights > states.weights  # fp32 absmax per block costs more than double quantization


@pytest.mark.parametrize(("optimizer", "per_param"), [("adamw-8bit", 2 + 8 / 256), ("paged-adamw-8bit", 2 + 8 / 256)])
def test_8bit_optimizers(optimizer: str, per_param: float) -> None:
    states, _, t = _states("lora", optimizer=optimizer)
    assert states.optimizer == int(t * per_param)


def test_sgd_and_adafactor_are_smaller_than_adamw() -> None:
    adamw, _, _ = _states("fft")
    sgd, n, _ = _states("fft", optimizer="sgd")
    adafactor, _, _ = _states("fft", optimizer="adafactor")
    assert sgd.optimizer == 4 * n
    assert adafactor.optimizer < sgd.optimizer < adamw.optimizer


def test_quantized_base_needs_half_precision_and_a_frozen_base() -> None:
    with pytest.raises(NotApplicableError, match="fp32"):
        _states("qlora", precision="fp32")
    with pytest.raises(NotApplicableError, match="trains base weights"):
        _states("fft", quantization="nf4")
    with pytest.raises(NotApplicableError, match="bitsandbytes"):
        _states("vera", quantization="nf4")


def test_sharding_counts_frozen_weights_without_gradients_or_optimizer() -> None:
    states, n, t = _states("lora")
    zero3 = shard(states, TrainingSetup(gpus=4, sharding="zero3"))
    assert zero3.weights == states.weights // 4
    assert zero3.optimizer == 8 * t // 4
    assert states.gradients + states.optimizer < 0.01 * 16 * n  # DeepSpeed's estimator charges 16 bytes/param


def test_zero_stages_and_offload() -> None:
    states, _, _ = _states("fft")
    z1 = shard(states, TrainingSetup(gpus=8, sharding="zero1"))
    z2 = shard(states, TrainingSetup(gpus=8, sharding="zero2"))
    z3 = shard(states, TrainingSetup(gpus=8, sharding="zero3"))
    assert z1.weights == z2.weights == states.weights > z3.weights
    assert z1.gradients == states.gradients > z2.gradients == z3.gradients
    assert z1.optimizer == z2.optimizer == z3.optimizer == states.optimizer // 8
    offloaded = shard(states, TrainingSetup(gpus=8, sharding="zero3", offload="optimizer"))
    assert offloaded.optimizer == 0
    assert shard(states, TrainingSetup(gpus=8, sharding="zero3", offload="params")).weights == 0


def test_int8_base_is_one_byte_per_linear_weight_plus_row_scales() -> None:
    states, n, t = _states("lora", quantization="int8")
    stats = linear_stats(KEY)
    assert states.weights == 2 * (n - t - stats.quantizable) + stats.quantizable + 4 * stats.rows + 6 * t
