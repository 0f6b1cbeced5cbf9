"""`python -m core estimate`: JSON shape, the 'all' table, and one-line errors with exit code 2."""

import json
from pathlib import Path

import pytest
from cli_runner import run_cli

from core import hub


def test_json_single_method(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "estimate", "--model", "llama-2-7b", "--method", "lora", "--rank", "16", "--json")
    result = json.loads(out)
    assert code == 0
    assert result["total_params"] == 6_738_415_616 + result["trainable_params"]
    assert result["trainable_params"] == 16 * 2 * (4096 + 4096) * 32  # peft's default q_proj, v_proj
    assert result["trainable_share"] == pytest.approx(result["trainable_params"] / result["total_params"])
    assert result["adapter_bytes"] == 4 * result["trainable_params"]


def test_every_method_as_json_and_as_a_side_by_side_table(capsys: pytest.CaptureFixture[str]) -> None:
    """One set of flags for both outputs, so the second reuses the first's traced profiles (a cold `--method all`
    traces every method's step)."""
    argv = ("estimate", "--model", "gpt2", "--method", "all", "--batch-size", "2", "--seq-len", "256", "--gpu", "T4")
    code, out, _ = run_cli(capsys, *argv, "--json")
    methods = {m["method"]: m for m in json.loads(out)["methods"]}
    assert code == 0
    assert methods["fft"]["trainable_params"] == 124_439_808
    assert methods["lora"]["label"] == "LoRA r=8"
    assert methods["loha"]["applicable"] is False and "Conv1D" in methods["loha"]["error"]
    for m in methods.values():
        if m["applicable"]:
            assert {"total_params", "trainable_params", "trainable_share", "adapter_bytes"} <= set(m)
    code, out, _ = run_cli(capsys, *argv)
    assert code == 0
    for name in ("Full fine-tuning", "LoRA r=8", "BitFit", "Prefix tuning", "OFT"):
        assert name in out
    assert "activ" in out and "max batch" in out
    labels = ("Full fine-tuning ", "LoRA r=8 ", "Prefix tuning ")
    assert sum(line.startswith(labels) for line in out.splitlines()) == 3
    assert "--top-layers 30 exceeds the model's 12 blocks" in out  # a method whose default does not fit: reported


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "llama-2-7b", "--method", "lorax"], "unknown method 'lorax'"),
        (["--model", "llama-2-7b", "--method", "lora", "--top-layers", "2"], "does not take --top-layers"),
        (["--model", "llama-2-7b", "--method", "lora", "--rank", "0"], "--rank 0 must be a positive integer"),
        (["--model", "llama-2-7b", "--method", "lora", "--rank", "-4"], "--rank -4 must be a positive integer"),
        (["--model", "llama-2-7b", "--method", "lora", "--rank", "5000"], "--rank 5000 is larger than layer"),
        (["--model", "llama-2-7b", "--method", "lora", "--targets", "query"], "its linear layers are: "),
        (["--model", "llama-2-7b", "--method", "prompt_tuning", "--virtual-tokens", "0"], "--virtual-tokens 0"),
        (["--model", "llama-2-7b", "--method", "bitfit"], "has none"),
        (["--model", "llama-2-7b", "--method", "lora", "--rank", "x"], "invalid int value"),
        (["--model", "./missing/config.json", "--method", "lora"], "no such file or folder"),
    ],
)
def test_bad_input_one_line_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    code, out, err = run_cli(capsys, "estimate", *argv)
    assert code == 2
    assert out == ""
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_unknown_model_offline(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub, "_hub_resolvable", lambda: False)
    code, _, err = run_cli(capsys, "estimate", "--model", "acme/never-heard-of-it", "--method", "lora")
    assert code == 2 and "not in the offline catalogue" in err and len(err.strip().splitlines()) == 1


def test_truncated_config(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "llama", "hidden_')
    code, _, err = run_cli(capsys, "estimate", "--model", str(tmp_path), "--method", "lora")
    assert code == 2 and "malformed or truncated JSON" in err


def test_models_lists_the_catalogue(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "models", "--json")
    ids = {m["id"] for m in json.loads(out)["models"]}
    assert code == 0 and "meta-llama/Llama-2-70b-hf" in ids and len(ids) >= 30
