"""Model resolution: catalogue, paths, the Hub path (faked), and every bad-input message."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_runner import run_cli

from core import catalogue, hub
from core.errors import InputError
from core.models import resolve_model
from core.skeleton import SkeletonKey, default_task, skeleton

SEED_MODELS = (
    "FacebookAI/roberta-base",
    "FacebookAI/roberta-large",
    "TinyLlama/TinyLlama-1.1B-Chat-v1.0",
    "mistralai/Mistral-7B-v0.1",
    "facebook/opt-13b",
    "meta-llama/Llama-2-7b-hf",
    "meta-llama/Llama-2-13b-hf",
    "meta-llama/Llama-2-70b-hf",
)
TODAY_MODELS = (
    "meta-llama/Llama-3.1-8B",
    "meta-llama/Llama-3.1-70B",
    "meta-llama/Llama-3.2-1B",
    "meta-llama/Llama-3.2-3B",
    "Qwen/Qwen2.5-0.5B",
    "Qwen/Qwen2.5-72B",
    "google/gemma-2-2b",
    "google/gemma-2-9b",
    "google/gemma-2-27b",
    "microsoft/Phi-3-mini-4k-instruct",
    "mistralai/Mixtral-8x7B-v0.1",
    "openai-community/gpt2",
    "google-bert/bert-base-uncased",
    "microsoft/deberta-v3-base",
    "google-t5/t5-base",
)
ROOT = Path(__file__).resolve().parents[2]


def test_catalogue_holds_the_seed_research_and_todays_models() -> None:
    assert len(catalogue.entries()) >= 30
    for repo_id in SEED_MODELS + TODAY_MODELS:
        assert catalogue.find(repo_id) is not None, repo_id


def test_catalogue_configs_need_no_remote_code() -> None:
    for entry in catalogue.entries().values():
        assert "auto_map" not in entry.load_config(), entry.repo_id


@pytest.mark.parametrize(
    ("name", "repo_id"),
    [
        ("meta-llama/Llama-2-7b-hf", "meta-llama/Llama-2-7b-hf"),
        ("LLAMA-2-7B-HF", "meta-llama/Llama-2-7b-hf"),
        ("roberta-base", "FacebookAI/roberta-base"),
        ("gpt2", "openai-community/gpt2"),
    ],
)
def test_catalogue_lookup_by_id_name_or_alias(name: str, repo_id: str) -> None:
    model = resolve_model(name)
    assert (model.name, model.origin) == (repo_id, "catalogue")


def test_config_path_and_model_folder(tmp_path: Path) -> None:
    config = catalogue.find("gpt2").load_config()
    (tmp_path / "config.json").write_text(json.dumps(config))
    by_file = resolve_model(str(tmp_path / "config.json"))
    by_folder = resolve_model(str(tmp_path))
    assert by_file.origin == by_folder.origin == "path"
    assert by_file.config_dict == by_folder.config_dict == config


def test_default_heads() -> None:
    assert default_task(resolve_model("llama-2-7b")) == "causal-lm"
    assert default_task(resolve_model("t5-base")) == "seq2seq"
    assert default_task(resolve_model("roberta-base")) == "seq-cls"


def test_skeleton_is_on_meta_and_cached() -> None:
    key = SkeletonKey(resolve_model("llama-2-70b"), "causal-lm", 2)
    model = skeleton(key)
    assert {p.device.type for p in model.parameters()} == {"meta"}
    assert skeleton(SkeletonKey(resolve_model("meta-llama/Llama-2-70b-hf"), "causal-lm", 2)) is model


def test_seq_cls_head_has_requested_labels() -> None:
    model = skeleton(SkeletonKey(resolve_model("roberta-base"), "seq-cls", 5))
    assert model.classifier.out_proj.out_features == 5


def test_hub_download_used_for_unknown_ids(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = {**catalogue.find("gpt2").load_config(), "n_layer": 3}
    (tmp_path / "config.json").write_text(json.dumps(config))
    calls = []

    def fake_download(repo_id: str, filename: str, revision: str | None, local_files_only: bool) -> str:
        calls.append((repo_id, filename, revision))
        return str(tmp_path / "config.json")

    monkeypatch.setattr(hub, "hf_hub_download", fake_download)
    model = resolve_model("someone/custom-gpt2", revision="v1")
    assert calls == [("someone/custom-gpt2", "config.json", "v1")]  # config.json only: never weights
    assert model.origin == "hub" and model.config_dict["n_layer"] == 3


def test_hub_cache_answers_offline(tmp_path: Path) -> None:
    """A pre-filled Hugging Face cache serves config.json with HF_HUB_OFFLINE=1 (real huggingface_hub code)."""
    repo = tmp_path / "models--acme--tiny-llama"
    snapshot = repo / "snapshots" / "0123456789abcdef0123456789abcdef01234567"
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(snapshot.name)
    config = catalogue.find("llama-2-7b").load_config() | {"num_hidden_layers": 2}
    (snapshot / "config.json").write_text(json.dumps(config))
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "core", "estimate", "--model", "acme/tiny-llama", "--method", "fft", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=True,
    )
    result = json.loads(out.stdout)
    assert result["model_origin"] == "hub"
    assert result["total_params"] == 2 * 202_383_360 + 2 * 32000 * 4096 + 4096  # 2 blocks + embeddings + norm


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"model_type": "llama", "hidden_size": 64', "malformed or truncated JSON"),
        ("[1, 2]", "not an object"),
        ('{"hidden_size": 64}', "has no model_type"),
        ('{"model_type": "no-such-arch"}', "cannot build model_type 'no-such-arch'"),
        ('{"model_type": "lama"}', "cannot build model_type 'lama' .* the nearest it supports is 'llama'"),
        ('{"model_type": "qwen3moe"}', "nearest it supports is 'qwen3_moe'"),
        (
            '{"model_type": "mixtral", "num_local_experts": 8}',
            r"declares 8 experts \(num_local_experts\) but no routing field \(num_experts_per_tok",
        ),
        ('{"model_type": "qwen3_moe", "num_experts": 128}', "declares 128 experts .* add how many experts each token"),
        ('{"model_type": "deepseek_v2", "n_routed_experts": 64}', "n_routed_experts"),
        ('{"model_type": "llama", "hidden_size": 0}', "hidden_size = 0: sizes must be positive"),
        ('{"model_type": "llama", "num_hidden_layers": -2}', "num_hidden_layers = -2: sizes must be positive"),
        ('{"model_type": "gemma3", "text_config": {"vocab_size": 0}}', "text_config.vocab_size = 0"),
        ('{"model_type": "acme", "auto_map": {"AutoConfig": "x.Y"}}', "needs remote code"),
    ],
)
def test_bad_configs_are_one_line_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(content)
    with pytest.raises(InputError, match=message) as info:
        resolve_model(str(path)).build_config()
    assert "\n" not in str(info.value)


def test_routed_moe_and_positive_sizes_pass() -> None:
    config = catalogue.find("mixtral-8x7b").load_config()
    assert config["num_experts_per_tok"] == 2
    built = resolve_model("mixtral-8x7b").build_config()
    assert (built.num_local_experts, built.num_experts_per_tok) == (8, 2)


def test_bad_config_on_the_cli_is_exit_2_and_one_line(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "mixtral", "num_local_experts": 8, "hidden_size": 64}')
    out = subprocess.run(
        [sys.executable, "-m", "core", "estimate", "--model", str(tmp_path / "config.json"), "--method", "lora"],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )
    assert out.returncode == 2
    assert "no routing field" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_folder_without_config(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="has no config.json"):
        resolve_model(str(tmp_path))


def test_unknown_id_offline_points_to_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub, "_hub_resolvable", lambda: False)
    with pytest.raises(InputError, match="not in the offline catalogue.*config.json"):
        resolve_model("nobody/nothing-like-this")


def test_models_command_says_which_are_mixtures_of_experts(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "models", "--json")
    rows = {m["id"]: m for m in json.loads(out)["models"]}
    assert code == 0 and len(rows) == len(catalogue.entries())
    assert rows["Qwen/Qwen3-30B-A3B"]["experts"] == "MoE 128 experts, top-8"
    assert rows["deepseek-ai/DeepSeek-V2-Lite"]["experts"] == "MoE 64 experts, top-6"
    assert rows["meta-llama/Llama-3.3-70B-Instruct"]["experts"] == "dense"
    assert rows["bigscience/mt0-large"]["params"] == 1_229_581_312
