"""The leave-one-source-out harness on synthetic pairs whose true gap is known."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from core.errors import InputError
from core.gap.evaluate import PREDICTOR, TASK_MEDIAN, ZERO, LosoReport, leave_one_source_out
from core.gap.features import GapScenario
from core.gap.model import fit_gap_model
from tests.core.gap.conftest import SIZES, TASK_EFFECT, true_gap


@pytest.fixture(scope="module")
def report(synthetic: pd.DataFrame) -> LosoReport:
    return leave_one_source_out(synthetic)


def test_predictor_beats_both_baselines(report: LosoReport) -> None:
    ours = report.score(PREDICTOR)
    assert report.beats_baselines()
    assert ours.mae < report.score(ZERO).mae and ours.mae < report.score(TASK_MEDIAN).mae
    assert ours.median_error < report.score(ZERO).median_error
    assert report.n_sources == 8 and ours.n == len(report.predictions)


def test_intervals_cover_about_80_percent(report: LosoReport) -> None:
    coverage = report.score(PREDICTOR).coverage
    assert 0.7 <= coverage <= 0.92, coverage


def test_held_out_predictions_recover_the_truth(report: LosoReport, synthetic: pd.DataFrame) -> None:
    p = report.predictions.merge(synthetic[["peft_result_id", "truth"]], on="peft_result_id")
    assert len(p) == len(synthetic)
    # every source holds the same grid, so the held-out means track the true cell means
    cells = p.groupby(["task_type"])[["mean", "truth"]].mean()
    assert np.allclose(cells["mean"], cells["truth"], atol=1.0), cells


def test_the_fitted_model_recovers_the_truth(synthetic: pd.DataFrame) -> None:
    model = fit_gap_model(synthetic)
    for task_type in TASK_EFFECT:
        for n in SIZES:
            pred = model.predict(GapScenario(task_type, "lora", base_params_b=7, train_examples=n))
            assert pred.mean == pytest.approx(true_gap(task_type, "lora", n), abs=1.0)
            assert pred.low <= true_gap(task_type, "lora", n) <= pred.high


def test_the_data_size_slope_is_found_and_reported(synthetic: pd.DataFrame) -> None:
    model = fit_gap_model(synthetic)
    slope, sd = model.linear.contrast({"log10_examples": 1.0})
    assert slope == pytest.approx(-1.5, abs=3 * sd + 0.2)
    note = next(n for n in model.theory_notes() if n.startswith("data size"))
    assert "agrees with the theory that FFT pulls ahead as data grows" in note


def test_markdown_table_lists_all_three(report: LosoReport) -> None:
    table = report.to_markdown()
    for name in (PREDICTOR, ZERO, TASK_MEDIAN):
        assert f"| {name} |" in table
    assert "80% interval coverage" in table


def test_needs_three_sources(pairs_factory: Callable[..., pd.DataFrame]) -> None:
    rows = [{"source": f"p{i % 2}", "task_type": "code", "method_id": "lora", "truth": -1.0} for i in range(10)]
    with pytest.raises(InputError, match="at least 3 sources"):
        leave_one_source_out(pairs_factory(rows))
