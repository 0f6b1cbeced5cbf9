"""The profiles shipped in data/profiles: current for this install and engine, equal to what the engine traces
now, and enough for the Decide page's default request to be answered with nothing traced."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cli_runner import run_cli

from core.memory import cache

DEFAULT_REQUEST = ("recommend", "--task-type", "classification", "--train-examples", "10000", "--gpu", "A100-80GB",
                   "--model", "meta-llama/Llama-2-7b-hf")  # fmt: skip


def test_the_shipped_profiles_are_current() -> None:
    assert cache.shipped_dir() is not None, (
        f"data/profiles was built for another engine or install than {cache.shipped_manifest()}: "
        "run python data/build_profiles.py and commit data/profiles")


def test_the_default_request_is_answered_from_the_shipped_profiles_with_nothing_traced(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from core.memory.step import TracedModel

    def no_trace(*args: object, **kwargs: object) -> None:
        raise AssertionError("a default scenario's step was traced: data/profiles does not hold it")

    monkeypatch.setenv(cache.ENV_CACHE, str(tmp_path / "empty-cache"))
    monkeypatch.setattr(TracedModel, "trace", no_trace)
    code, out, err = run_cli(capsys, *DEFAULT_REQUEST)
    assert code == 0, err
    assert "recommended:" in out


def test_a_shipped_profile_is_what_the_engine_traces_now(capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Trace LoRA of the default request with the shipped folder ignored, then compare every stored entry with
    the shipped entry of the same name (the names are content keys: equal names, equal inputs)."""
    from core import counting, estimate
    from core.memory import budget, profile

    for remembered in (profile.step_profile, budget.replayed_peaks, counting.count_parameters,
                       counting.model_shape, estimate.cached_count):  # fmt: skip
        remembered.cache_clear()  # what this process already read stays out of the comparison
    fresh = tmp_path / "fresh-cache"
    monkeypatch.setenv(cache.ENV_CACHE, str(fresh))
    monkeypatch.setattr(cache, "shipped_dir", lambda: None)
    code, _, err = run_cli(capsys, *DEFAULT_REQUEST, "--methods", "lora")
    assert code == 0, err
    traced = sorted(fresh.glob("*.npz"))
    assert traced, "nothing was traced"
    for path in traced:
        shipped = cache.SHIPPED_DIR / path.name
        assert shipped.is_file(), f"{path.name} is not shipped: run python data/build_profiles.py"
        with np.load(path) as now, np.load(shipped) as then:
            assert sorted(now.files) == sorted(then.files)
            for name in now.files:
                assert np.array_equal(now[name], then[name]), (path.name, name)
