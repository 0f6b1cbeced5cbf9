"""`python -m core gap` (batch and one scenario) and `python -m core recommend`, end to end on a temporary
warehouse."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from cli_runner import run_cli

from core.warehouse import Warehouse

HEADER = "id,task_type,base_params_b,train_examples,method,rank,trainable_pct,adversarial\n"


def test_batch_gives_every_row_an_output_row(wh: Warehouse, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = (
        "a,classification,0.355,,lora,8,,no\n"
        "b,code,7,110000,lora,16,,no\n"
        "c,classification,0.125,,lora,,,yes\n"
        "d,generation,0.355,,prefix_tuning,,,ood\n"
        "e,poetry,1,,lora,,,no\n"
        "f,classification,-1,,lora,,,no\n"
        "g,qa,7,,HydraLoRA,,,no\n"
        "h,classification,,,lora,8.5,,no\n"
        "i,classification,,-20,lora,,,maybe\n"
        "a,classification,,,lora,,,no\n"
        "j,reasoning-math,7,20000,Houlsby adapters,,,no\n"
        "k,classification,,,zorblatt tuning,,,no\n"
        "l,classification,,,fft,,,no\n"
    )
    source = tmp_path / "in.csv"
    source.write_text(HEADER + rows, encoding="utf-8")
    target = tmp_path / "out" / "predictions.csv"
    code, out, err = run_cli(capsys, "gap", "--input", str(source), "--output", str(target))
    assert code == 0 and "wrote 13 rows" in out and "8 predicted, 5 with problems" in out
    result = pd.read_csv(target, dtype=str, keep_default_na=False)
    assert list(result.columns[:6]) == ["id", "gap_mean", "gap_low", "gap_high", "p_fft_better", "n_evidence"]
    assert result["id"].tolist() == ["a", "b", "c", "d", "e", "f", "g", "h", "i", "a", "j", "k", "l"]
    good = result.loc[result["error"] == ""]
    assert good["id"].tolist() == ["a", "b", "c", "d", "e", "g", "j", "k"]
    for _, r in good.iterrows():
        assert float(r["gap_low"]) <= float(r["gap_mean"]) <= float(r["gap_high"])
        assert 0 <= float(r["p_fft_better"]) <= 1
    read_as = dict(zip(good["id"], good["method_read_as"], strict=True))
    assert read_as == {"a": "lora", "b": "lora", "c": "lora", "d": "prefix_tuning", "e": "lora",
                       "g": "family low-rank", "j": "adapter", "k": "PEFT in general"}  # fmt: skip
    notes = dict(zip(good["id"], good["notes"], strict=True))
    assert "'poetry' is not one TuneWise knows" in notes["e"] and "'qa' read as extraction" in notes["g"]
    assert result.loc[2, "robust_basis"].startswith("2 seed-paper claims")  # adversarial: the AdvGLUE claims
    assert result.loc[3, "robust_mean"] != ""  # ood: prefix tuning's own ood pairs
    problems = {
        "f": "base_params_b -1 must be positive",
        "h": "rank '8.5' is not a whole number",
        "i": "adversarial 'maybe' is not one of no, ood, yes; train_examples -20 must be at least 1",
        "l": "method 'fft' is the reference: its gap to full fine-tuning is 0 by definition",
    }
    for rid, message in problems.items():
        assert message in result.loc[result["id"] == rid, "error"].iloc[0]
        assert f"row id {rid}: {message}" in err
    assert result.iloc[9]["error"].startswith("id repeats an earlier row") and "row id a: id repeats" in err
    assert (result.loc[result["error"] != "", "gap_mean"] == "").all()


@pytest.mark.parametrize(
    ("header", "missing"),
    [("id,method,adversarial\n", "task_type"), ("task_type,base_params_b\n", "id, method")],
)
def test_missing_required_columns_exit_2(
    wh: Warehouse, tmp_path: Path, capsys: pytest.CaptureFixture[str], header: str, missing: str
) -> None:
    source = tmp_path / "in.csv"
    source.write_text(header + "1,lora,no\n", encoding="utf-8")
    code, out, err = run_cli(capsys, "gap", "--input", str(source), "--output", str(tmp_path / "out.csv"))
    assert code == 2 and out == ""
    assert err.startswith("error: ") and f"lacks the required column{'s' if ',' in missing else ''} {missing}" in err
    assert not (tmp_path / "out.csv").exists()


def test_batch_needs_both_paths_and_an_existing_file(
    wh: Warehouse, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(capsys, "gap", "--input", str(tmp_path / "x.csv"))[0] == 2
    code, _, err = run_cli(capsys, "gap", "--input", str(tmp_path / "x.csv"), "--output", str(tmp_path / "o.csv"))
    assert code == 2 and "no such input file" in err


def test_one_scenario_as_json(wh: Warehouse, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "gap", "--task-type", "reasoning-math", "--method", "lora", "--base-params-b", "7",
                       "--rank", "16", "--evidence", "3", "--json")  # fmt: skip
    payload = json.loads(out)
    assert code == 0 and payload["low"] <= payload["mean"] <= payload["high"]
    assert len(payload["evidence"]) == 3 and all(row["source"] for row in payload["evidence"])
    assert {c["claim_id"] for c in payload["claims"]} >= {"S3"}  # the seed paper's GSM8k claim, shown not fitted
    assert payload["robustness"]["adversarial"]["n"] == 2
    assert payload["forgetting"]["rows"][0]["method"] == "fft"


def test_one_scenario_as_text_and_the_theory(wh: Warehouse, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(
        capsys, "gap", "--task-type", "classification", "--method", "lora", "--base-params-b", "0.355"
    )
    assert code == 0 and "80% interval" in out and "evidence (most similar first" in out and "theory:" in out
    assert "P(FFT ahead by more than 1 point)" in out and "held-out accuracy: predicting each of" in out
    code, out, _ = run_cli(capsys, "gap", "--theory")
    assert code == 0 and "- rank:" in out and "- data size:" in out


def test_recommend_json_and_text(wh: Warehouse, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["recommend", "--task-type", "classification", "--train-examples", "5000", "--model", "qwen2.5-0.5b",
            "--gpu", "t4", "--tasks", "30", "--methods", "lora", "--priority", "storage=2"]  # fmt: skip
    code, out, _ = run_cli(capsys, *argv, "--json")
    payload = json.loads(out)
    assert code == 0 and payload["recommended"] in {"fft", "lora"}
    assert payload["request"]["priorities"]["storage"] == 2.0
    assert {o["method"] for o in payload["options"]} == {"fft", "lora"}
    assert "micro-batch 4 x 512 tokens" in payload["assumptions"] and "MFU 40%" in payload["assumptions"]
    code, out, _ = run_cli(capsys, *argv)
    assert code == 0 and "why each:" in out and "selection guide, from these estimates:" in out
    assert "assumptions: micro-batch 4 x 512 tokens per GPU" in out
    code, out, _ = run_cli(capsys, *argv, "--json", "--mfu", "0.2", "--rank", "16")
    payload = json.loads(out)
    assert code == 0 and "MFU 20%" in payload["assumptions"] and "r=16" in payload["assumptions"]
    assert next(o for o in payload["options"] if o["method"] == "lora")["label"].startswith("LoRA r=16")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--priority", "speed=2"], "--priority 'speed=2'"),
        (["--priority", "accuracy=high"], "is not a number"),
        (["--gpu", "tpu"], "unknown GPU 'tpu'"),
    ],
)
def test_recommend_bad_input_exits_2(
    wh: Warehouse, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    argv = ["recommend", "--task-type", "classification", "--train-examples", "5000", "--model", "gpt2", "--gpu", "t4",
            "--methods", "lora", *extra]  # fmt: skip
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and message in err
