"""Several methods' missing profiles traced at once in spawned worker processes, stored in the disk cache and
read back by the estimate exactly as a trace in the estimating process would give them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.errors import InputError
from core.memory import cache
from core.memory.ahead import MAX_WORKERS, trace_ahead, trace_workers
from core.memory.budget import _untraceable_name, profile_known
from core.memory.profile import StepProfile
from core.memory.spec import StepSpec
from core.registry import MethodChoice
from core.skeleton_key import SkeletonKey
from tests.support.tiny import tiny_model

KEY = SkeletonKey(tiny_model("llama"), "causal-lm", 2)
SPEC = StepSpec("bf16-mixed", "adamw", "sdpa", False, "none")


def test_missing_profiles_are_traced_by_workers_and_equal_a_trace_here(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    steps = [(MethodChoice(m), SPEC) for m in ("lora", "ia3", "fft")]
    monkeypatch.setenv("TUNEWISE_CACHE_DIR", "off")
    here = {choice.method: StepProfile(KEY, choice, SPEC).phase_peaks(3, 40).bytes for choice, _ in steps}
    monkeypatch.setenv("TUNEWISE_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("TUNEWISE_TRACE_WORKERS", "2")
    assert trace_ahead(KEY, [*steps, steps[0]]) == 3  # each missing step once
    for choice, spec in steps:
        assert cache.load(cache.entry_key(KEY, choice, spec)) is not None  # stored by a worker
        np.testing.assert_array_equal(StepProfile(KEY, choice, spec).phase_peaks(3, 40).bytes, here[choice.method])
    assert trace_ahead(KEY, steps) == 0  # nothing missing any more


def test_workers_are_used_only_where_they_can_help(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    steps = [(MethodChoice(m), SPEC) for m in ("lora", "ia3")]
    monkeypatch.setenv("TUNEWISE_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("TUNEWISE_TRACE_WORKERS", "1")
    assert trace_ahead(KEY, steps) == 0  # one worker: this process traces
    monkeypatch.setenv("TUNEWISE_TRACE_WORKERS", "4")
    assert trace_ahead(KEY, steps[:1]) == 0  # a single missing step: no worker start-up to pay
    # a step the cache knows cannot be traced is not missing (else every warm estimate would start workers)
    cache.store_record(_untraceable_name(KEY, *steps[1]), {"message": "cannot be traced"})
    assert profile_known(KEY, *steps[1]) and not profile_known(KEY, *steps[0])
    assert trace_ahead(KEY, steps) == 0
    monkeypatch.setenv("TUNEWISE_CACHE_DIR", "off")
    assert trace_ahead(KEY, steps) == 0  # no disk cache to hand profiles back through
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("TUNEWISE_CACHE_DIR", str(tmp_path / "a-file" / "traces"))
    assert trace_ahead(KEY, steps) == 0  # a cache folder that cannot be made: no worker's trace would come back


@pytest.mark.parametrize(("value", "message"), [("abc", "whole number"), ("0", "at least 1")])
def test_a_bad_worker_count_is_one_line(monkeypatch: pytest.MonkeyPatch, value: str, message: str) -> None:
    monkeypatch.setenv("TUNEWISE_TRACE_WORKERS", value)
    with pytest.raises(InputError, match=message):
        trace_workers()
    monkeypatch.delenv("TUNEWISE_TRACE_WORKERS")
    assert 1 <= trace_workers() <= MAX_WORKERS
