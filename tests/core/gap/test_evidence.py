"""The Evidence page's counts, summary table and path hygiene, on hand-made pairs."""

from __future__ import annotations

import math

import pandas as pd

from core.gap.evidence import charted, gap_summary, pairs_explained, without_server_paths


def _pairs() -> pd.DataFrame:
    return pd.DataFrame({
        "metric_kind": ["target"] * 5 + ["forgetting"] * 2,
        "gap": [-1.0, -3.0, 2.0, 0.5, math.nan, -4.0, -6.0],
        "task_type": ["code", "code", "classification", "classification", "code", "code", "code"],
        "method_id": ["lora", "lora", "lora", "ia3", "lora", "lora", "lora"],
    })


def test_the_line_explains_results_and_pairs_with_counts_that_add_up() -> None:
    line = pairs_explained(1_327, _pairs(), 3)
    assert line.startswith("1,327 results (one reported score each")
    assert "give 7 matched pairs (a PEFT result beside the FFT result" in line
    assert "4 on the task trained for (the charts), 1 on that task without a 0-100 score" in line
    assert "2 on other tasks (forgetting)" in line and "learns from 3 task-trained pairs" in line
    assert len(charted(_pairs())) == 4
    assert "without a 0-100 score" not in pairs_explained(9, charted(_pairs()))


def test_summary_counts_each_group_and_orders_largest_first() -> None:
    table = gap_summary(charted(_pairs()))
    assert list(table.columns) == ["task_type", "method_id", "pairs", "median", "q25", "q75"]
    first = table.iloc[0]
    assert (first["task_type"], first["method_id"], first["pairs"], first["median"]) == ("code", "lora", 2, -2.0)
    assert table["pairs"].sum() == 4


def test_server_paths_are_cut_to_their_last_part_and_urls_kept() -> None:
    frame = pd.DataFrame({
        "model": ["/root/.local/share/tunewise/models/smollm2-mini", "llama-2-7b"],
        "config": ['{"data": "/work/main/data/reviews.csv", "steps": 2}', "see https://hf.co/org/model"],
        "n": [1, 2],
    })
    shown = without_server_paths(frame)
    assert shown["model"].tolist() == ["smollm2-mini", "llama-2-7b"]
    assert shown["config"].tolist() == ['{"data": "reviews.csv", "steps": 2}', "see https://hf.co/org/model"]
    assert shown["n"].tolist() == [1, 2] and frame["model"][0].startswith("/root")  # the input is left alone
