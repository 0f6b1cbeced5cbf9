"""What a warm estimate reads from the disk cache: counts and model shapes read back equal without counting again,
refusals and untraceable steps raised again as stored, a missing package's refusal derived again after an
install, nothing stored for remote code or with the cache off; and a warm `estimate` process that imports no
torch, transformers or peft and prints what the cold one did."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from core import counting
from core.counting import ModelShape, count_parameters, model_shape
from core.errors import MissingPackageError, NotApplicableError
from core.memory import budget, cache
from core.memory.spec import StepSpec
from core.registry import MethodChoice
from core.skeleton_key import SkeletonKey
from tests.support.tiny import tiny_model

ROOT = Path(__file__).resolve().parents[2]
KEY = SkeletonKey(tiny_model("llama"), "causal-lm", 2)


@pytest.fixture
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty cache folder, and no in-process cache in front of it."""
    monkeypatch.setenv("TUNEWISE_CACHE_DIR", str(tmp_path))
    counting.count_parameters.cache_clear()
    counting.model_shape.cache_clear()
    yield tmp_path
    counting.count_parameters.cache_clear()
    counting.model_shape.cache_clear()


def _no_counting(monkeypatch: pytest.MonkeyPatch) -> None:
    counting.count_parameters.cache_clear()
    counting.model_shape.cache_clear()
    monkeypatch.setattr(counting, "_measured_count", lambda *_: pytest.fail("counted again"))
    monkeypatch.setattr(counting, "_measured_shape", lambda *_: pytest.fail("built again"))


def test_counts_and_shapes_are_read_back_equal_without_counting(own_cache: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    choice = MethodChoice("lora", targets="q_proj,v_proj")
    counted, shape = count_parameters(KEY, choice), model_shape(KEY)
    assert shape == ModelShape(layers=4, width=64, root_params=2 * 128 * 64 + 64,
                                largest_root_params=128 * 64)  # untied embeddings, head, norm
    assert len(list(own_cache.glob("*.json"))) == 2
    _no_counting(monkeypatch)
    assert count_parameters(KEY, choice) == counted and model_shape(KEY) == shape
    assert count_parameters(KEY, choice).targeted_modules == ("q_proj", "v_proj")


def test_a_refusal_is_stored_and_raised_again_with_its_message(own_cache: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(NotApplicableError) as first:  # a llama has no biases
        count_parameters(KEY, MethodChoice("bitfit"))
    _no_counting(monkeypatch)
    with pytest.raises(NotApplicableError) as again:
        count_parameters(KEY, MethodChoice("bitfit"))
    assert type(again.value) is type(first.value) and str(again.value) == str(first.value)


def test_a_missing_package_is_asked_again_once_packages_change(own_cache: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def missing(key: SkeletonKey, choice: MethodChoice) -> dict[str, object]:
        calls.append(choice)
        raise MissingPackageError("X needs a package that is not installed: y")

    monkeypatch.setattr(counting, "_measured_count", missing)
    for _ in range(2):
        counting.count_parameters.cache_clear()
        with pytest.raises(MissingPackageError, match="not installed"):
            count_parameters(KEY, MethodChoice("lora"))
    assert len(calls) == 1
    monkeypatch.setattr(cache, "installed_packages", lambda: "y installed")
    counting.count_parameters.cache_clear()
    with pytest.raises(MissingPackageError):
        count_parameters(KEY, MethodChoice("lora"))
    assert len(calls) == 2


@pytest.mark.parametrize("where", ["remote code", "cache off"])
def test_nothing_is_stored_for_remote_code_or_with_the_cache_off(own_cache: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 where: str) -> None:
    key = KEY
    if where == "remote code":
        key = replace(KEY, model=replace(KEY.model, trust_remote_code=True))
    else:
        monkeypatch.setenv("TUNEWISE_CACHE_DIR", "off")
    assert count_parameters(key, MethodChoice("lora")).trainable_params > 0
    assert not list(own_cache.iterdir())


@pytest.mark.parametrize("text", ["not json", json.dumps({"something": "else"})])
def test_a_foreign_or_broken_record_is_counted_again(own_cache: Path, text: str) -> None:
    counted = count_parameters(KEY, MethodChoice("ia3"))
    (record,) = own_cache.glob("*.json")
    record.write_text(text)
    counting.count_parameters.cache_clear()
    assert count_parameters(KEY, MethodChoice("ia3")) == counted
    assert json.loads(record.read_text())["value"]["trainable_params"] == counted.trainable_params


def test_an_untraceable_step_is_stored_and_raised_again(own_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec, calls = StepSpec("bf16-mixed", "adamw", "sdpa", False, "none"), []

    def untraceable(*args: object) -> None:
        calls.append(args)
        raise (MissingPackageError if len(calls) == 1 else NotApplicableError)("memory cannot be traced: x")

    monkeypatch.setattr(budget, "step_profile", untraceable)
    for _ in range(3):  # a missing package is not stored; the next refusal is, and read back
        with pytest.raises(NotApplicableError, match="memory cannot be traced: x"):
            budget.remembered_profile(KEY, MethodChoice("lora"), spec)
    assert len(calls) == 2


HEAVY = ("torch", "transformers", "peft")


def test_a_warm_estimate_imports_no_engine_and_prints_what_the_cold_one_did(tmp_path: Path) -> None:
    """One cold `estimate` process fills the cache; a second prints the same JSON without torch, transformers or
    peft. The methods cover a count, a quantized base (peft's bitsandbytes layers) and a refusal (no biases)."""
    config = tmp_path / "config.json"
    config.write_text(tiny_model("llama").config_json)
    argv = ["estimate", "--model", str(config), "--method", "lora,qlora,bitfit", "--seq-len", "128", "--gpu", "A10G",
            "--dataset-tokens", "1000000", "--json"]
    script = ("import json, sys\nfrom core.cli import main\ncode = main(sys.argv[1:])\n"
              f"print(json.dumps({{'code': code, 'heavy': [m for m in {HEAVY!r} if m in sys.modules]}}), "
              "file=sys.stderr)\n")
    env = {**os.environ, "TUNEWISE_CACHE_DIR": str(tmp_path / "cache")}
    runs = [subprocess.run([sys.executable, "-c", script, *argv], cwd=ROOT, env=env, capture_output=True, text=True,
                           check=True) for _ in range(2)]  # fmt: skip
    cold, warm = (json.loads(run.stderr.strip().splitlines()[-1]) for run in runs)
    assert cold == {"code": 0, "heavy": list(HEAVY)}
    assert warm == {"code": 0, "heavy": []}
    assert runs[1].stdout == runs[0].stdout
    methods = {m["method"]: m for m in json.loads(runs[0].stdout)["methods"]}
    assert methods["lora"]["memory"] and methods["qlora"]["memory"] and not methods["bitfit"]["applicable"]
