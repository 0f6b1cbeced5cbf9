"""The probe's own rules: parameters are not activations, storages count once, and what it measures scales."""

from __future__ import annotations

from core.memory.probe import probe_activations
from core.registry import MethodChoice
from core.skeleton import SkeletonKey
from tests.support.tiny import tiny_model


def _key(family: str = "llama") -> SkeletonKey:
    model = tiny_model(family)
    return SkeletonKey(model, "causal-lm", 2)


def test_frozen_model_saves_nothing_before_the_first_adapter_and_fft_saves_more() -> None:
    key = _key()
    lora = probe_activations(key, MethodChoice("lora"), batch_size=2, seq_len=16)
    fft = probe_activations(key, MethodChoice("fft"), batch_size=2, seq_len=16)
    assert 0 < lora.activation_bytes < fft.activation_bytes
    assert len({id(s) for s in fft.saved}) == len(fft.saved)


def test_saved_bytes_grow_with_batch() -> None:
    key = _key()
    one = probe_activations(key, MethodChoice("fft"), batch_size=1, seq_len=16).activation_bytes
    two = probe_activations(key, MethodChoice("fft"), batch_size=2, seq_len=16).activation_bytes
    assert 1.8 < two / one <= 2.0


def test_tensors_the_model_holds_are_not_activations_and_a_saved_sparse_tensor_counts_its_parts() -> None:
    """SHiRA keeps its int32 indices in a plain dict (neither parameter nor buffer) and saves, for backward, the
    sparse update whose int64 copy of them is made in the forward: only that copy and the values count."""
    key = _key("opt")
    probe = probe_activations(key, MethodChoice("shira", rank=2), batch_size=2, seq_len=16)
    int64_indices = [s for s in probe.saved if s.dtype == "int64" and len(s.shape) == 2 and s.shape[0] == 2]
    assert int64_indices and not [s for s in probe.saved if s.dtype == "int32"]
    trained = 2 * (64 + 64)  # r x (in + out) entries of each adapted 64 x 64 layer
    assert all(s.shape == (2, trained) and s.nbytes == 2 * trained * 8 for s in int64_indices)
