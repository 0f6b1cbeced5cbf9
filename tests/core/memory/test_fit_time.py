"""GPU catalogue, fit (headroom, largest batch, fewest GPUs per sharding mode), FLOPs, time and cost."""

from __future__ import annotations

from dataclasses import replace

import pytest

from core.counting import count_parameters
from core.errors import InputError
from core.memory.budget import estimate_training, sizer
from core.memory.gpus import catalogue, find_gpu
from core.memory.quantization import check_quantization
from core.memory.setup import TrainingSetup
from core.memory.throughput import flops_per_token
from core.models import resolve_model
from core.registry import MethodChoice
from core.skeleton import SkeletonKey

KEY = SkeletonKey(resolve_model("HuggingFaceTB/SmolLM2-135M"), "causal-lm", 2)


def test_catalogue_has_the_common_gpus() -> None:
    ids = set(catalogue())
    assert len(ids) >= 15
    assert {"T4", "A10G", "L4", "RTX-3090", "RTX-4090", "RTX-5090", "A6000", "L40S", "A100-40GB", "A100-80GB",
            "H100-80GB", "H200", "B200", "MI300X"} <= ids


@pytest.mark.parametrize(("name", "gpu_id"), [("a100 80gb", "A100-80GB"), ("H100", "H100-80GB"),
                                              ("rtx4090", "RTX-4090"), ("Tesla T4", "T4"), ("a100-40GB", "A100-40GB")])
def test_gpu_names_match_forgivingly(name: str, gpu_id: str) -> None:
    assert find_gpu(name).id == gpu_id


def test_unknown_gpu_lists_close_names_and_price_is_editable() -> None:
    with pytest.raises(InputError, match="did you mean .*H200"):
        find_gpu("H2000")
    assert find_gpu("L4", price=9.5).usd_per_hour == 9.5


def _estimate(key: SkeletonKey, choice: MethodChoice, setup: TrainingSetup):  # type: ignore[no-untyped-def]
    return estimate_training(key, choice, count_parameters(key, choice), setup, check_quantization(choice, setup))


def test_largest_batch_fits_and_one_more_does_not() -> None:
    choice = MethodChoice("lora")
    setup = TrainingSetup(batch_size=2, seq_len=1024, gpu="T4")
    estimate = _estimate(KEY, choice, setup)
    fit = estimate.fit
    assert fit is not None and fit.max_batch_size > 1
    parts = sizer(KEY, choice, count_parameters(KEY, choice), setup, "none")
    capacity = find_gpu("T4").memory_bytes
    assert parts.breakdown(batch_size=fit.max_batch_size).device <= capacity
    assert parts.breakdown(batch_size=fit.max_batch_size + 1).device > capacity
    assert fit.fits and fit.headroom == capacity - estimate.memory.device


def test_fewest_gpus_per_sharding_mode() -> None:
    key = SkeletonKey(resolve_model("llama-2-7b"), "causal-lm", 2)
    choice = MethodChoice("fft")
    setup = TrainingSetup(batch_size=1, seq_len=512, gpu="A100-80GB")
    fit = _estimate(key, choice, setup).fit
    assert fit is not None and not fit.fits
    gpus = fit.min_gpus
    assert gpus["none"] is None
    assert gpus["zero3"] is not None and gpus["zero3"] == gpus["fsdp"]
    assert gpus["zero3"] <= (gpus["zero2"] or 10**9) <= (gpus["zero1"] or 10**9)


def test_flops_per_token_full_backward_only_for_fft() -> None:
    fft, lora = MethodChoice("fft"), MethodChoice("lora")
    n = count_parameters(KEY, fft)
    c = count_parameters(KEY, lora)
    assert flops_per_token(fft, n, layers=0, width=0, seq_len=0) == 6 * n.total_params
    peft = flops_per_token(lora, c, layers=0, width=0, seq_len=0)
    assert peft == 4 * c.total_params + 2 * c.trainable_params
    assert 0.66 < peft / (6 * n.total_params) < 0.68


def test_time_and_cost() -> None:
    choice = MethodChoice("lora")
    setup = TrainingSetup(seq_len=512, gpus=2, gpu="H100", gpu_price=3.0, dataset_tokens=10**9, epochs=2, mfu=0.5)
    time = _estimate(KEY, choice, setup).time
    expected = 2 * 10**9 * time.flops_per_token / (2 * 989e12 * 0.5) / 3600
    assert time.hours == pytest.approx(expected)
    assert time.usd == pytest.approx(expected * 2 * 3.0)
    no_gpu = _estimate(KEY, choice, replace(setup, gpu=None)).time
    assert no_gpu.tokens == 2 * 10**9 and no_gpu.hours is None


def test_sharding_divides_states_and_gathers_one_block() -> None:
    key = SkeletonKey(resolve_model("llama-2-7b"), "causal-lm", 2)
    choice = MethodChoice("fft")
    parts = sizer(key, choice, count_parameters(key, choice), TrainingSetup(seq_len=512), "none")
    single = parts.breakdown()
    ddp = parts.breakdown(setup=TrainingSetup(seq_len=512, gpus=8))
    zero1 = parts.breakdown(setup=TrainingSetup(seq_len=512, gpus=8, sharding="zero1"))
    zero3 = parts.breakdown(setup=TrainingSetup(seq_len=512, gpus=8, sharding="zero3"))
    offload = parts.breakdown(setup=TrainingSetup(seq_len=512, gpus=8, sharding="zero3", offload="optimizer"))
    assert ddp.allocated > single.allocated  # DDP's gradient buckets
    assert zero1.optimizer < single.optimizer / 7
    assert zero3.weights < single.weights / 2  # an eighth, plus the gathered and prefetched blocks
    assert offload.optimizer == 0 and offload.allocated < zero3.allocated
