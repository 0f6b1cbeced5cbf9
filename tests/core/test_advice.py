"""Make it fit: every suggested change re-estimated by the engine really fits, changes are ranked (same method
first, then cheapest), accumulation keeps the effective batch, and when not even one sequence fits the advice
says how long one may be."""

from __future__ import annotations

from dataclasses import replace

import pytest

from core.advice import Change, duration, make_it_fit
from core.counting import count_parameters
from core.errors import InputError
from core.memory.budget import estimate_training
from core.memory.gpus import find_gpu
from core.memory.quantization import check_quantization
from core.memory.setup import TrainingSetup
from core.models import resolve_model
from core.registry import MethodChoice
from core.skeleton import SkeletonKey

KEY = SkeletonKey(resolve_model("HuggingFaceTB/SmolLM2-135M"), "causal-lm", 2)
FFT = MethodChoice("fft")
T4 = find_gpu("T4")
TOO_BIG = TrainingSetup(batch_size=16, seq_len=2048, gpu="T4", dataset_tokens=10**7)


def _device_peak(choice: MethodChoice, setup: TrainingSetup) -> int:
    count = count_parameters(KEY, choice)
    return estimate_training(KEY, choice, count, setup, check_quantization(choice, setup)).memory.device


@pytest.fixture(scope="module")
def advice():  # type: ignore[no-untyped-def]
    return make_it_fit(KEY, FFT, TOO_BIG, alternatives=(MethodChoice("lora"),))


def test_each_change_really_fits_when_re_estimated(advice) -> None:  # type: ignore[no-untyped-def]
    assert not advice.fits and advice.peak_bytes > T4.memory_bytes
    assert len(advice.changes) >= 3
    for change in advice.changes:
        peak = _device_peak(change.choice, change.setup)
        capacity = find_gpu(change.setup.gpu or "").memory_bytes  # a larger GPU is one of the changes
        assert peak == change.peak_bytes <= capacity == change.gpu_memory, change.what
        assert change.hours is not None and change.hours > 0 and change.usd is not None
    assert [c.text() for c in advice.changes] == advice.lines()


def test_changes_are_ranked_same_method_first_then_cheapest(advice) -> None:  # type: ignore[no-untyped-def]
    same = [c.usd for c in advice.changes if not c.changes_method]
    assert same == sorted(same)
    # a model whose FFT states alone overflow the GPU: LoRA fits, and comes after the changes that keep FFT
    key = SkeletonKey(resolve_model("qwen2.5-1.5b"), "causal-lm", 2)
    setup = TrainingSetup(batch_size=4, seq_len=512, gpu="T4", gradient_checkpointing=True, dataset_tokens=10**7)
    lora = MethodChoice("lora", targets="all-linear")
    ranked = make_it_fit(key, FFT, setup, alternatives=(lora,))
    flags = [c.changes_method for c in ranked.changes]
    assert flags == sorted(flags) and flags[-1] and ranked.changes[-1].choice == lora
    assert "a different method" in ranked.changes[-1].text()
    assert any(c.what.startswith("8-bit AdamW") or c.what.startswith("a larger GPU") for c in ranked.changes)


def test_accumulation_keeps_the_effective_batch(advice) -> None:  # type: ignore[no-untyped-def]
    smaller = [c for c in advice.changes if c.what.startswith("micro-batch")]
    assert smaller
    for change in smaller:
        assert change.setup.batch_size < 16 and change.setup.batch_size * change.setup.accumulation == 16
        assert "the same 16 sequences per optimizer step" in change.text()
    checkpointed = next(c for c in smaller if c.setup.gradient_checkpointing)
    plain = next(c for c in smaller if not c.setup.gradient_checkpointing)
    assert checkpointed.setup.batch_size > plain.setup.batch_size  # checkpointing lets a larger micro-batch fit
    assert checkpointed.time_ratio is not None and checkpointed.time_ratio > 1.2  # recomputation costs time
    assert "GiB per GPU of 14.7 GiB" in checkpointed.text() and "% time)" in checkpointed.text()


def test_a_step_that_fits_needs_no_change() -> None:
    fits = make_it_fit(KEY, FFT, replace(TOO_BIG, batch_size=1, seq_len=512), alternatives=())
    assert fits.fits and fits.changes == () and fits.lines() == ["fits as it is"]


def test_when_not_one_sequence_fits_the_advice_cuts_its_length() -> None:
    setup = TrainingSetup(batch_size=4, seq_len=262144, gpu="T4", gradient_checkpointing=True)
    advice = make_it_fit(KEY, FFT, setup, alternatives=())
    assert [c.what.split(" to ")[0] for c in advice.changes] == ["cut sequences"]
    change = advice.changes[0]
    assert change.setup.batch_size == 1 and change.setup.accumulation == 4 and 0 < change.setup.seq_len < 262144
    assert f"cut sequences to {change.setup.seq_len} tokens at micro-batch 1 with 4 accumulation steps" in change.text()
    assert _device_peak(FFT, change.setup) <= T4.memory_bytes
    assert _device_peak(FFT, replace(change.setup, seq_len=change.setup.seq_len + 64)) > T4.memory_bytes


def test_a_change_must_fit_and_advice_needs_a_gpu() -> None:
    with pytest.raises(ValueError, match="only when its peak fits"):
        Change("nothing", FFT, TOO_BIG, peak_bytes=T4.memory_bytes + 1, gpu_memory=T4.memory_bytes)
    with pytest.raises(InputError, match="pick a GPU"):
        make_it_fit(KEY, FFT, replace(TOO_BIG, gpu=None))
    assert (duration(3.24), duration(0.2), duration(0.001)) == ("3.2 h", "12 min", "under 1 min")
