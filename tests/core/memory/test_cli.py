"""`python -m core estimate` with training flags: JSON keys and one-line bad input (every method side by side:
tests/core/test_cli_estimate.py)."""

from __future__ import annotations

import json

import pytest

from core.cli import main


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["estimate", "--model", "gpt2", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_single_method_json_keeps_keys_and_adds_memory(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--method", "lora", "--json", "--gpu", "a100 80gb", "--dataset-tokens", "1000000")
    assert code == 0
    data = json.loads(out)
    assert {"trainable_params", "total_params", "adapter_bytes", "memory", "fit", "time"} <= set(data)
    memory = data["memory"]
    categories = ("weights", "gradients", "optimizer", "activations", "temporaries")
    assert set(memory) == {*categories, "cached", "context", "overhead", "allocated", "reserved", "device", "total",
                           "phase", "paged", "reserved_from"}
    assert memory["allocated"] == sum(memory[k] for k in categories)
    assert memory["total"] == memory["device"] == memory["allocated"] + memory["overhead"]
    assert memory["reserved"] == memory["allocated"] + memory["cached"] <= memory["device"]
    assert memory["phase"] in ("forward", "backward", "clip", "optimizer", "zero_grad")
    assert data["fit"]["gpu"] == "A100-80GB" and data["time"]["hours"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", "lora", "--batch-size", "0"], "--batch-size 0"),
        (["--method", "lora", "--seq-len", "-4"], "--seq-len -4"),
        (["--method", "qlora", "--precision", "fp32"], "fp32"),
        (["--method", "oft", "--quantization", "nf4"], "cannot sit on a nf4 base"),
        (["--method", "lora", "--sharding", "zero3"], "--gpus 2 or more"),
        (["--method", "lora", "--gpu", "A1000"], "did you mean"),
        (["--method", "lora", "--gpus", "2", "--offload", "optimizer"], "needs --sharding"),
        (["--method", "lora", "--precision", "fp64"], "--precision"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    code, _, err = _run(capsys, *args)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_sequence_beyond_rope_positions_warns_but_estimates(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["estimate", "--model", "HuggingFaceTB/SmolLM2-135M", "--method", "lora", "--seq-len", "9000",
                 "--json"])
    out, err = capsys.readouterr()
    assert code == 0
    assert err.startswith("warning: --seq-len 9000 exceeds") and "rope_scaling" in err
    assert json.loads(out)["memory"]["activations"] > 0


def test_sequence_beyond_a_learned_position_table_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """GPT-2's 1024 learned positions: a longer run indexes past the table, so there is nothing to estimate."""
    code, out, err = _run(capsys, "--method", "lora", "--seq-len", "1025", "--json")
    assert code == 2 and out == ""
    assert err.strip() == ("error: --seq-len 1025 exceeds the 1024 positions of openai-community/gpt2's learned "
                           "position table: a longer sequence indexes past it and the run fails; use --seq-len 1024 "
                           "or less")
