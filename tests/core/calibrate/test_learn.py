"""`--learn` end to end on a tiny random-init model with small generated datasets."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from core.calibrate.runfolder import CURVES, RunFolder
from core.cli import main
from core.warehouse import Filters, calibration_runs, open_warehouse, results

from .conftest import classification_csv, generation_jsonl

STEPS = 4


def learn(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main(["calibrate", "--learn", "--init", "random", "--json", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_classification_at_two_data_sizes(capsys: pytest.CaptureFixture[str], tiny_config: Path,
                                          tmp_path: Path) -> None:
    data = classification_csv(tmp_path / "reviews.csv", per_class=8)
    folder = tmp_path / "run"
    payload = learn(capsys, "--model", str(tiny_config), "--data", str(data), "--methods", "fft,lora",
                    "--data-sizes", "2,5", "--steps", str(STEPS), "--batch-size", "4", "--seq-len", "32",
                    "--run-dir", str(folder))
    runs = payload["runs"]
    assert [(r["method"], r["data_size"]) for r in runs] == [("fft", 2), ("lora", 2), ("fft", 5), ("lora", 5)]
    for run in runs:
        assert run["status"] == "ok", run
        assert run["steps"] == STEPS
        assert run["metric"] == "accuracy" and 0 <= run["eval_value"] <= 1
        assert run["train_examples"] == 2 * run["data_size"]  # per class
    curve = pd.read_parquet(folder / CURVES)
    assert len(curve) == STEPS * len(runs)
    assert set(curve.columns) == {"method", "data_size", "step", "loss", "elapsed_s"}
    assert (curve.groupby(["method", "data_size"])["step"].max() == STEPS).all()
    live = [e for e in RunFolder(folder).events() if e["event"] == "loss"]
    assert len(live) == STEPS * len(runs)  # the page's live curve reads these
    with open_warehouse() as wh:
        report = wh.ingest_run_folder(folder)
        assert (report.calibration_runs, report.results) == (4, 0)  # random init: curves, not evidence
        assert set(calibration_runs(wh)["quantity"]) == {"eval_accuracy"}


def test_generation_with_a_time_budget(capsys: pytest.CaptureFixture[str], tiny_config: Path,
                                       tmp_path: Path) -> None:
    data = generation_jsonl(tmp_path / "sums.jsonl")
    payload = learn(capsys, "--model", str(tiny_config), "--data", str(data), "--methods", "fft,prefix_tuning",
                    "--time-budget", "0.5", "--batch-size", "2", "--seq-len", "24", "--run-dir", str(tmp_path / "r"))
    for run in payload["runs"]:
        assert run["status"] == "ok", run
        assert run["steps"] >= 1
        assert run["metric"] == "eval loss" and run["eval_value"] > 0
        assert run["eval_perplexity"] > 1


def test_local_weights_become_evidence(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A model folder with weights trains from them, and its metrics land in `results` (the evidence explorer)."""
    from core.calibrate.train import _auto_class
    from tests.support.tiny import tiny_model

    folder = tmp_path / "tiny-bert"
    model = _auto_class("seq-cls").from_config(tiny_model("bert").build_config())
    model.save_pretrained(folder)
    data = classification_csv(tmp_path / "reviews.csv", per_class=6)
    payload = learn(capsys, "--model", str(folder), "--init", "pretrained", "--data", str(data), "--methods",
                    "fft,bitfit", "--steps", "2", "--batch-size", "4", "--seq-len", "16", "--run-dir",
                    str(tmp_path / "run"))
    assert [r["status"] for r in payload["runs"]] == ["ok", "ok"]
    with open_warehouse() as wh:
        report = wh.ingest_run_folder(tmp_path / "run")
        assert report.results == 2
        shown = results(wh, Filters(origins=["calibration"]))
    pairs = sorted(zip(shown["method_id"], shown["metric"], strict=True))
    assert pairs == [("bitfit", "accuracy"), ("fft", "accuracy")]
