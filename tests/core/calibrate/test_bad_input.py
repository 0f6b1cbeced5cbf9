"""Bad input: exit code 2 and one clear line on stderr, before any training starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from core.cli import main

from .conftest import classification_csv


def fails(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main(["calibrate", *argv])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


def learn(tiny_config: Path, data: Path, *extra: str) -> list[str]:
    return ["--learn", "--model", str(tiny_config), "--init", "random", "--data", str(data), *extra]


def test_missing_columns(capsys: pytest.CaptureFixture[str], tiny_config: Path, tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("sentence,label\nhello,a\n", encoding="utf-8")
    line = fails(capsys, *learn(tiny_config, data))
    assert "needs text and label (classification) or prompt and completion (generation)" in line


def test_empty_file(capsys: pytest.CaptureFixture[str], tiny_config: Path, tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text("\n \n", encoding="utf-8")
    assert "d.jsonl is empty" in fails(capsys, *learn(tiny_config, data))


def test_header_only(capsys: pytest.CaptureFixture[str], tiny_config: Path, tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("text,label\n", encoding="utf-8")
    assert "no rows" in fails(capsys, *learn(tiny_config, data))


def test_not_utf8(capsys: pytest.CaptureFixture[str], tiny_config: Path, tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_bytes("text,label\ncaf\xe9,a\n".encode("latin-1"))
    assert "is not UTF-8 (byte 0xe9" in fails(capsys, *learn(tiny_config, data))


def test_one_class(capsys: pytest.CaptureFixture[str], tiny_config: Path, tmp_path: Path) -> None:
    data = classification_csv(tmp_path / "d.csv", labels=("only",))
    assert "label has one class ('only')" in fails(capsys, *learn(tiny_config, data))


def test_empty_cell(capsys: pytest.CaptureFixture[str], tiny_config: Path, tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"prompt": "a", "completion": "b"}) + "\n" + json.dumps({"prompt": "a"}) + "\n")
    assert "line 2: completion is empty" in fails(capsys, *learn(tiny_config, data))


def test_data_size_too_large(capsys: pytest.CaptureFixture[str], tiny_config: Path, tmp_path: Path) -> None:
    data = classification_csv(tmp_path / "d.csv", per_class=5)
    assert "--data-sizes 50 per class exceeds" in fails(capsys, *learn(tiny_config, data, "--data-sizes", "2,50"))


def test_learn_without_data(capsys: pytest.CaptureFixture[str], tiny_config: Path) -> None:
    assert "--learn needs --data" in fails(capsys, "--learn", "--model", str(tiny_config))


def test_unknown_method(capsys: pytest.CaptureFixture[str], tiny_config: Path) -> None:
    line = fails(capsys, "--probe", "--model", str(tiny_config), "--methods", "fft,superlora")
    assert "unknown method 'superlora'" in line


def test_remote_code_model(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model_type": "my-custom", "auto_map": {"AutoConfig": "x.MyConfig"}}))
    assert "needs remote code" in fails(capsys, "--probe", "--model", str(config))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_cuda_without_gpu(capsys: pytest.CaptureFixture[str], tiny_config: Path) -> None:
    line = fails(capsys, "--probe", "--model", str(tiny_config), "--device", "cuda")
    assert "CUDA was requested but no CUDA GPU is visible" in line


@pytest.mark.parametrize(("flags", "message"), [
    (("--steps", "0"), "--steps 0: the budget must be at least 1 step"),
    (("--time-budget", "0"), "--time-budget 0: give a positive number of seconds"),
    (("--batch-size", "0"), "--batch-size 0 must be at least 1"),
    (("--methods", "lora", "--virtual-tokens", "4"), "LoRA does not take --virtual-tokens"),
    (("--methods", "fft,lora,lora"), "names a method twice"),
    (("--device", "cpu", "--gradient-checkpointing"), "the CPU probe measures activations without checkpointing"),
    (("--device", "cpu", "--attention", "flash"), "--attention flash needs a CUDA GPU"),
])  # fmt: skip
def test_bad_budget_and_knobs(
    capsys: pytest.CaptureFixture[str], tiny_config: Path, flags: tuple[str, ...], message: str
) -> None:
    assert message in fails(capsys, "--probe", "--model", str(tiny_config), *flags)


def test_probe_refuses_data(capsys: pytest.CaptureFixture[str], tiny_config: Path, tmp_path: Path) -> None:
    data = classification_csv(tmp_path / "d.csv")
    assert "--probe needs no data" in fails(capsys, "--probe", "--model", str(tiny_config), "--data", str(data))


def test_unknown_precision_is_one_line(capsys: pytest.CaptureFixture[str], tiny_config: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["calibrate", "--probe", "--model", str(tiny_config), "--precision", "bf16"])
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "argument --precision: invalid choice: 'bf16'" in lines[0]


def test_pretrained_without_weights(capsys: pytest.CaptureFixture[str], tiny_config: Path, tmp_path: Path) -> None:
    data = classification_csv(tmp_path / "d.csv")
    line = fails(capsys, "--learn", "--model", str(tiny_config), "--data", str(data))
    assert "holds no weights" in line and "--init random" in line
