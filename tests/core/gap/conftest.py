"""Fixtures: a seeded warehouse per session (copied per test, at TUNEWISE_WAREHOUSE in tmp_path, so the user's
data directory is never touched) and synthetic pairs whose true gap is known."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.gap.model import GapModel, gap_model
from core.warehouse import open_warehouse

# The synthetic truth: gap = task effect + method effect + slope * log10(examples / 10,000)
TASK_EFFECT = {"classification": 0.5, "reasoning-math": -3.0, "code": -6.0}
METHOD_EFFECT = {"lora": 0.0, "prompt_tuning": -3.0}
DATA_SLOPE = -1.5
SIZES = (1_000, 10_000, 100_000)


def true_gap(task_type: str, method: str, examples: float) -> float:
    return TASK_EFFECT[task_type] + METHOD_EFFECT[method] + DATA_SLOPE * np.log10(examples / 10_000)


@pytest.fixture(scope="session")
def real_model(seeded_file: Path) -> GapModel:
    """The gap model fitted on the shipped evidence (read-only)."""
    with open_warehouse(seeded_file, read_only=True) as wh:
        return gap_model(wh)


def make_pairs(
    rows: list[dict[str, object]], *, source_sd: float = 0.5, noise_sd: float = 0.7, seed: int = 0
) -> pd.DataFrame:
    """Pairs-view rows from dicts with at least source, task_type, method_id and `truth` (the true gap)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rows)
    effects = {s: rng.normal(0, source_sd) for s in frame["source"].unique()}
    gap = frame["truth"] + frame["source"].map(effects) + rng.normal(0, noise_sd, len(frame))
    defaults: dict[str, object] = {
        "source_table": "Table 1", "model": "synthetic-7b", "params_b": 7.0, "task": "synthetic task",
        "metric": "accuracy", "metric_kind": "target", "distribution": "in-domain", "train_examples": 10_000,
        "train_tokens": None, "epochs": None, "rank": None, "targets": None, "trainable_pct": None,
        "origin": "published",
    }  # fmt: skip
    for column, value in defaults.items():
        if column not in frame:
            frame[column] = value
    frame["method_raw"] = frame["method_id"]
    frame["gap"] = gap.round(3)
    frame["peft_advantage"] = frame["gap"]
    frame["peft_result_id"] = np.arange(len(frame))
    frame["fft_result_id"] = np.arange(len(frame)) + 100_000
    return frame


@pytest.fixture(scope="session")
def synthetic() -> pd.DataFrame:
    """8 sources, each reporting every task type x method x data size twice: the truth is learnable."""
    rows = [
        {"source": f"Synthetic paper {s}", "task_type": t, "method_id": m, "train_examples": n,
         "truth": true_gap(t, m, n)}
        for s in range(8) for t in TASK_EFFECT for m in METHOD_EFFECT for n in SIZES for _ in range(2)
    ]  # fmt: skip
    return make_pairs(rows)


@pytest.fixture
def pairs_factory() -> Callable[..., pd.DataFrame]:
    return make_pairs
