"""`python -m core estimate --input scenarios.csv`: one result per row in one process, the command line's flags as
defaults, and a bad row as one line naming its row and column (exit 2, nothing on stdout)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_runner import run_cli

HEADER = "model,method,batch_size,seq_len,gpu\n"


def _csv(tmp_path: Path, text: str) -> str:
    path = tmp_path / "scenarios.csv"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_rows_match_single_estimates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _csv(tmp_path, "model,method,batch_size,seq-len,gpu\ngpt2,lora,2,128,\ngpt2,LoRA,4,256,A100-80GB\n")
    code, out, err = run_cli(capsys, "estimate", "--input", path, "--gpu", "T4", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [r["row"] for r in rows] == [1, 2]
    assert [(r["training"]["batch_size"], r["training"]["seq_len"]) for r in rows] == [(2, 128), (4, 256)]
    assert [r["fit"]["gpu"] for r in rows] == ["T4", "A100-80GB"]  # a blank cell takes the command line's --gpu
    assert rows[1]["memory"]["activations"] > rows[0]["memory"]["activations"]
    single = run_cli(capsys, "estimate", "--model", "gpt2", "--method", "lora", "--batch-size", "4", "--seq-len",
                     "256", "--gpu", "A100-80GB", "--json")  # fmt: skip
    assert single[0] == 0
    assert {k: v for k, v in rows[1].items() if k != "row"} == json.loads(single[1])


def test_text_is_one_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _csv(tmp_path, HEADER + 'gpt2,"lora,fft",2,128,T4\ngpt2,lora,1,64,T4\n')
    code, out, _ = run_cli(capsys, "estimate", "--input", path)
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("row "))
    body = lines[header + 2:]
    assert code == 0
    assert [line.split()[0] for line in body] == ["1", "1", "2"]  # a row with two methods has two lines
    assert all("gpt2" in line for line in body) and "fits" in lines[header]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (HEADER + "gpt2,lora,2,128,T4\ngpt2,lora,abc,128,T4\n", "row 2, column batch_size: 'abc' is not a whole"),
        ("model,method,batchsize\ngpt2,lora,2\n", "column 'batchsize' is not an estimate flag"),
        ("model,method,batch_size,batch-size\ngpt2,lora,2,2\n", "column 'batch_size' appears twice"),
        (HEADER + "gpt2,lorax,2,128,T4\n", "row 1, column method: unknown method 'lorax'"),
        (HEADER + "gpt2,lora,2,128,Z9000\n", "row 1, column gpu: "),
        (HEADER + ",lora,2,128,T4\n", "row 1, column model: --model is missing"),
        (HEADER + "./no/such/config.json,lora,2,128,T4\n", "row 1, column model: no such file or folder"),
        ("model,method,precision\ngpt2,lora,fp8\n", "row 1, column precision: --precision 'fp8' is not one of"),
        ("model,method,sharding\ngpt2,lora,zero3\n", "row 1, column sharding: --sharding zero3 needs --gpus 2"),
        ("model,method,gradient_checkpointing\ngpt2,lora,maybe\n", "row 1, column gradient_checkpointing: 'maybe' is"),
        (HEADER + "gpt2,lora,2,128,T4,extra\n", "row 1: 6 cells but the header names 5 columns"),
        (HEADER, "has a header but no rows"),
        (HEADER + "gpt2,lora,2,128,T4\n\ngpt2,lora,0,128,T4\n", "row 3, column batch_size: --batch-size 0 must be"),
        ("", "is empty"),
        # row 1 is estimated, then row 2 fails in the engine: still nothing printed but the one line
        ("model,method,rank\ngpt2,lora,4\ngpt2,lora,5000\n", "row 2, column rank: --rank 5000 is larger than"),
    ],
)
def test_bad_row_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str,
                                    message: str) -> None:
    code, out, err = run_cli(capsys, "estimate", "--input", _csv(tmp_path, text))
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2
    assert out == ""
    assert len(errors) == 1 and message in errors[0]
    assert err.rstrip().endswith(errors[0])  # before it at most the tracer's own log lines (transformers warnings)


def test_missing_input_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "estimate", "--input", str(tmp_path / "none.csv"))
    assert code == 2 and out == "" and "no such input file" in err


def test_single_run_still_needs_model_and_method(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "estimate", "--model", "gpt2")
    assert code == 2 and out == "" and "--method is missing" in err
