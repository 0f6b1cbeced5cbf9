"""Reentrant gradient checkpointing as a user setting: the setup validates it, the traced step and its cache key
get it, both kinds estimate (same recomputation, so the same time), and `--reentrant-checkpointing` reaches the
CLI's estimate."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from cli_runner import run_cli
from tiny_models import tiny_model

from core.counting import count_parameters
from core.errors import InputError
from core.memory import cache
from core.memory.budget import TrainingEstimate, estimate_training, step_spec
from core.memory.quantization import check_quantization
from core.memory.setup import TrainingSetup
from core.registry import MethodChoice
from core.skeleton import SkeletonKey

KEY = SkeletonKey(tiny_model("llama"), "causal-lm", 2)
CHECKPOINTED = TrainingSetup(batch_size=4, seq_len=128, gradient_checkpointing=True, gpu="T4",
                             dataset_tokens=10**6)


def _estimate(choice: MethodChoice, setup: TrainingSetup) -> TrainingEstimate:
    return estimate_training(KEY, choice, count_parameters(KEY, choice), setup, check_quantization(choice, setup))


def test_reentrant_without_checkpointing_is_one_line_naming_the_missing_flag() -> None:
    with pytest.raises(InputError, match="--reentrant-checkpointing needs --gradient-checkpointing") as raised:
        TrainingSetup(reentrant_checkpointing=True)
    assert "\n" not in str(raised.value)
    assert TrainingSetup(gradient_checkpointing=True, reentrant_checkpointing=True).reentrant_checkpointing


def test_the_traced_step_and_its_cache_key_get_the_setting() -> None:
    choice = MethodChoice("lora")
    plain = step_spec(CHECKPOINTED, "none")
    reentrant = step_spec(replace(CHECKPOINTED, reentrant_checkpointing=True), "none")
    assert not plain.reentrant and reentrant.reentrant and reentrant.checkpointing
    assert cache.entry_key(KEY, choice, plain) != cache.entry_key(KEY, choice, reentrant)


@pytest.mark.parametrize("method", ["lora", "fft"])
def test_both_kinds_estimate_with_the_same_time_and_reentrant_needs_no_less_memory(method: str) -> None:
    choice = MethodChoice(method)
    plain = _estimate(choice, CHECKPOINTED)
    reentrant = _estimate(choice, replace(CHECKPOINTED, reentrant_checkpointing=True))
    assert plain.fit is not None and reentrant.fit is not None
    # a different traced step (torch's CheckpointFunction recomputes the whole block inside backward) ...
    assert reentrant.memory != plain.memory
    # ... that holds no fewer bytes (the device level adds each step's own allocator replay, which a tiny model's
    # 512-byte rounding can order either way)
    assert reentrant.memory.allocated >= plain.memory.allocated
    # ... that recomputes the same forward, so the FLOPs and hours are the non-reentrant ones
    assert reentrant.time.flops_per_token == plain.time.flops_per_token
    assert reentrant.time.hours is not None and reentrant.time.hours == plain.time.hours


def _config(tmp_path: Path) -> str:
    path = tmp_path / "config.json"
    path.write_text(KEY.model.config_json)
    return str(path)


def test_cli_flag_reaches_the_estimate(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    argv = ["estimate", "--model", _config(tmp_path), "--method", "lora", "--batch-size", "4", "--seq-len", "128",
            "--gradient-checkpointing"]
    reports = {}
    for extra in ([], ["--reentrant-checkpointing"]):
        code, out, _ = run_cli(capsys, *argv, *extra, "--json")
        assert code == 0
        reports[bool(extra)] = json.loads(out)
    assert reports[True]["training"]["reentrant_checkpointing"] is True
    assert reports[False]["training"]["reentrant_checkpointing"] is False
    assert reports[True]["memory"] != reports[False]["memory"]
    code, out, _ = run_cli(capsys, *argv, "--reentrant-checkpointing")
    assert code == 0 and "checkpointing (reentrant)" in out


def test_cli_reentrant_without_checkpointing_exits_2_with_one_line(capsys: pytest.CaptureFixture[str],
                                                                   tmp_path: Path) -> None:
    code, out, err = run_cli(capsys, "estimate", "--model", _config(tmp_path), "--method", "lora",
                             "--reentrant-checkpointing")
    assert code == 2 and out == ""
    assert "--reentrant-checkpointing needs --gradient-checkpointing" in err
    assert len(err.strip().splitlines()) == 1
