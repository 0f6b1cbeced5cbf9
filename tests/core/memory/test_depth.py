"""The full-depth timeline at real widths: extrapolated from 2- and 3-block copies, it equals a direct trace of the
whole model, and the per-GPU peak never falls when the batch, the length or the rank grows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from catalogue_copies import shallow

from core.memory.profile import StepProfile, timeline_peaks
from core.memory.spec import CATEGORIES, PHASES, StepSpec
from core.memory.step import trace_step
from core.models import resolve_model
from core.registry import MethodChoice
from core.skeleton_key import SkeletonKey


@pytest.mark.parametrize(("method", "precision", "checkpointing"), [
    ("fft", "bf16-true", True), ("fft", "bf16-mixed", False), ("lora", "bf16-mixed", True),
])
def test_real_width_profile_equals_a_direct_trace_of_every_block(tmp_path: Path, method: str, precision: str,
                                                                 checkpointing: bool) -> None:
    """Llama-3.1-8B's width with 6 blocks: at batch 1 x 512 full fine-tuning's gradients outgrow the activations
    between the 2- and the 3-block copy, so each copy's own backward peak sits at another instant (start against
    end of backward); the full-depth timeline is matched event by event and equals the direct trace to 0.01%
    (the issue's goal is 0.1%; a few kilobytes a step differ)."""
    key = shallow(tmp_path, "meta-llama--Llama-3.1-8B", 6)
    choice, spec = MethodChoice(method), StepSpec(precision, "adamw", "sdpa", checkpointing, "none")
    profile = StepProfile(key, choice, spec)
    assert profile.full is not None
    for batch, seq in ((1, 512), (3, 200)):
        direct = timeline_peaks(trace_step(key, choice, spec, batch_size=batch, seq_len=seq, keep_blocks=None))
        np.testing.assert_allclose(profile.phase_peaks(batch, seq).bytes, direct.bytes, rtol=1e-4, atol=64)


def test_gradients_never_exceed_the_trained_weights_and_memory_grows_with_the_shape(tmp_path: Path) -> None:
    """The phantom the event matching removes: Llama-3.1-8B's full width and depth, full fine-tuning in bf16 with
    checkpointing, was 110.8 GiB at 1 x 2048 (65.9 GiB of 'gradients') against 74.8 GiB at 1 x 4096."""
    key = SkeletonKey(resolve_model("llama-3.1-8b"), "causal-lm", 2)
    profile = StepProfile(key, MethodChoice("fft"), StepSpec("bf16-true", "adamw", "sdpa", True, "none"))
    grads, weights = CATEGORIES.index("gradients"), CATEGORIES.index("weights")
    peaks = {shape: profile.phase_peaks(*shape).bytes for shape in
             ((1, 512), (1, 1024), (1, 2048), (2, 1024), (4, 512), (1, 4096), (2, 4096), (4, 4096))}
    for shape, rows in peaks.items():
        assert rows[:, grads].max() <= rows[PHASES.index("clip"), weights] + 1, shape
    totals = {shape: rows.sum(axis=1).max() for shape, rows in peaks.items()}
    assert totals[(1, 2048)] <= totals[(1, 4096)] <= totals[(2, 4096)] <= totals[(4, 4096)]
    assert totals[(1, 512)] <= totals[(1, 1024)] <= totals[(1, 2048)]
    assert totals[(4, 512)] <= totals[(2, 4096)]


def test_a_length_beyond_the_sliding_window_is_answered_on_the_path_it_takes(tmp_path: Path) -> None:
    """Mistral-7B's window is 4096 tokens: beyond it transformers builds an explicit window mask and SDPA with a
    mask repeats the key/value heads, a path the fit at lengths under the window never sees (it was 6-10% low at
    19k-32k tokens); such lengths are answered by a profile traced with the window shrunk, and match a direct
    trace of every block on both sides of the window."""
    from core.memory.profile import sliding_window

    key = shallow(tmp_path, "mistralai--Mistral-7B-v0.1", 6)
    assert sliding_window(key.model.config_dict) == 4096
    choice, spec = MethodChoice("fft"), StepSpec("bf16-mixed", "adamw", "sdpa", False, "none")
    profile = StepProfile(key, choice, spec)
    totals = {}
    for batch, seq in ((2, 4096), (2, 5000), (1, 9000)):
        direct = timeline_peaks(trace_step(key, choice, spec, batch_size=batch, seq_len=seq, keep_blocks=None))
        np.testing.assert_allclose(profile.phase_peaks(batch, seq).bytes, direct.bytes, rtol=1e-4, atol=64)
        totals[seq] = direct.bytes.sum(axis=1).max()
    assert totals[5000] > totals[4096]
    assert sliding_window({"sliding_window": 131072, "use_sliding_window": False}) is None
    assert sliding_window({"text_config": {"sliding_window": 1024}}) == 1024


def test_blocks_the_config_sets_apart_are_other_kinds(tmp_path: Path) -> None:
    """Gemma 3's sliding and global layers, and SmolLM3's layers without RoPE, share a class and parameters but
    not memory (beyond the window the sliding layers take the masked path): each is its own kind, so their
    copies are traced apart and the full depth counts each kind as many times as the model holds it."""
    from core.skeleton import skeleton_stacks

    smol = SkeletonKey(resolve_model("smollm3-3b"), "causal-lm", 2)
    (stack,) = skeleton_stacks(smol)
    assert stack.kinds[:8] == (0, 0, 0, 1, 0, 0, 0, 1)  # every 4th layer without RoPE
    gemma3 = SkeletonKey(resolve_model("gemma-3-12b"), "causal-lm", 2)
    text = next(s for s in skeleton_stacks(gemma3) if s.name.endswith("language_model.layers"))
    assert text.kinds[:12] == (0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1)  # five sliding layers, then a global one
    choice, spec = MethodChoice("lora", targets="all-linear"), StepSpec("bf16-mixed", "adamw", "sdpa", True, "none")
    nine = shallow(tmp_path, "HuggingFaceTB--SmolLM3-3B", 9)  # no_rope_layer_interval: 4
    direct = timeline_peaks(trace_step(nine, choice, spec, batch_size=1, seq_len=9000, keep_blocks=None))
    np.testing.assert_allclose(StepProfile(nine, choice, spec).phase_peaks(1, 9000).bytes, direct.bytes,
                               rtol=1e-4, atol=4096)  # clip's per-tensor norms differ by a few hundred bytes
