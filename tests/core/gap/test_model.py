"""The gap predictor: evidence with sources, intervals that widen with scarce or conflicting evidence,
verdicts, bad input, and refitting when the warehouse changes."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest

from core.errors import InputError
from core.gap.features import GapScenario
from core.gap.model import GapModel, GapPrediction, fit_gap_model, gap_model
from core.warehouse import Warehouse


def _rows(task_type: str, n_sources: int, per_source: int, truth: float) -> list[dict[str, object]]:
    return [
        {"source": f"{task_type} paper {s}", "task_type": task_type, "method_id": "lora", "truth": truth}
        for s in range(n_sources)
        for _ in range(per_source)
    ]


def test_evidence_rows_carry_their_sources(synthetic: pd.DataFrame) -> None:
    model = fit_gap_model(synthetic)
    pred = model.predict(GapScenario("code", "lora", base_params_b=7, train_examples=10_000))
    assert pred.n_evidence == len(pred.evidence) > 0
    known = set(synthetic["source"])
    assert all(row.source in known and row.source_table == "Table 1" for row in pred.evidence)
    assert pred.n_sources == len({row.source for row in pred.evidence})
    weights = [row.similarity for row in pred.evidence]
    assert weights == sorted(weights, reverse=True)
    assert all(row.task_type == "code" for row in pred.evidence[:10])  # the most similar rows match the task


def test_real_evidence_rows_name_published_sources(real_model: GapModel) -> None:
    pred = real_model.predict(GapScenario("classification", "lora", base_params_b=0.355, rank=8))
    assert pred.evidence and all(row.source and row.source_table and row.model for row in pred.evidence)
    assert any("Hu et al. 2021" in row.source for row in pred.evidence)
    assert pred.to_dict(evidence_limit=3)["evidence"][0]["source"] == pred.evidence[0].source


def test_interval_widens_when_evidence_is_scarce(pairs_factory: Callable[..., pd.DataFrame]) -> None:
    rows = _rows("classification", 6, 20, 0.0) + _rows("extraction", 1, 2, 0.0) + _rows("generation", 6, 20, 0.0)
    model = fit_gap_model(pairs_factory(rows, source_sd=0.3, noise_sd=0.5))
    rich = model.predict(GapScenario("classification", "lora", base_params_b=7, train_examples=10_000))
    scarce = model.predict(GapScenario("extraction", "lora", base_params_b=7, train_examples=10_000))
    assert scarce.n_evidence < rich.n_evidence
    assert scarce.width > 1.3 * rich.width
    assert any("scarce" in note for note in scarce.theory_notes)


def test_interval_widens_when_sources_conflict(pairs_factory: Callable[..., pd.DataFrame]) -> None:
    agree = _rows("classification", 6, 15, 0.0)
    # six sources on generation that disagree: three find PEFT 5 points ahead, three 5 points behind
    conflict = [dict(r, truth=5.0 if str(r["source"]).endswith(("0", "2", "4")) else -5.0)
                for r in _rows("generation", 6, 15, 0.0)]  # fmt: skip
    model = fit_gap_model(pairs_factory(agree + conflict, source_sd=0.2, noise_sd=0.5))
    calm = model.predict(GapScenario("classification", "lora", base_params_b=7, train_examples=10_000))
    torn = model.predict(GapScenario("generation", "lora", base_params_b=7, train_examples=10_000))
    assert torn.n_evidence == calm.n_evidence
    assert torn.width > 1.5 * calm.width
    assert torn.verdict == "indistinguishable from FFT"
    assert any("sources disagree" in note for note in torn.theory_notes)


def test_verdicts_follow_the_interval(synthetic: pd.DataFrame) -> None:
    model = fit_gap_model(synthetic)
    behind = model.predict(GapScenario("code", "prompt_tuning", base_params_b=7, train_examples=100_000))
    level = model.predict(GapScenario("classification", "lora", base_params_b=7, train_examples=10_000))
    assert behind.verdict == "FFT ahead" and behind.high < 0
    assert level.low < 0 < level.high and level.verdict == "indistinguishable from FFT"
    assert "indistinguishable from FFT" in level.summary()


def test_a_prediction_rejects_a_verdict_its_interval_contradicts(synthetic: pd.DataFrame) -> None:
    pred = fit_gap_model(synthetic).predict(GapScenario("classification", "lora", base_params_b=7))
    with pytest.raises(ValueError, match="verdict"):
        GapPrediction(pred.scenario, pred.mean, pred.low, pred.high, pred.n_evidence, pred.n_sources, "PEFT ahead",
                      pred.evidence)  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"task_type": "classification", "method": "lorax"}, "unknown method 'lorax'"),
        ({"task_type": "classification", "method": "fft"}, "is the reference"),
        ({"task_type": "classification", "method": "base"}, "not a fine-tuning method"),
        ({"task_type": "classification", "method": "lora", "base_params_b": -7}, "base_params_b -7 must be positive"),
        ({"task_type": "classification", "method": "lora", "train_examples": -5}, "train_examples -5"),
        ({"task_type": "classification", "method": "lora", "rank": 0}, "rank 0"),
        ({"task_type": "classification", "method": "lora", "trainable_pct": 120}, "trainable_pct 120"),
        ({"task_type": "classification", "method": "lora", "distribution": "maybe"}, "adversarial 'maybe'"),
        ({"task_type": " ", "method": "lora"}, "task_type is blank"),
    ],
)
def test_bad_scenarios_fail_in_one_line(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        GapScenario(**kwargs)  # type: ignore[arg-type]


def test_unknown_task_type_lists_the_known_ones(real_model: GapModel) -> None:
    with pytest.raises(InputError, match="unknown task type 'poetry': choose one of classification, code"):
        real_model.predict(GapScenario("poetry", "lora"))


def test_theory_notes_cover_rank_share_data_and_tasks(real_model: GapModel) -> None:
    notes = real_model.theory_notes()
    for start in ("rank:", "trainable share:", "data size:", "targets:", "task complexity:"):
        assert any(n.startswith(start) for n in notes), start
    assert all("80% interval" in n for n in notes)


def test_the_model_refits_when_users_add_results(wh: Warehouse) -> None:
    first = gap_model(wh)
    assert gap_model(wh) is first  # unchanged warehouse: the cached fit
    scenario = GapScenario("extraction", "ia3", base_params_b=3, train_examples=5_000)
    before = first.predict(scenario)
    rows = []
    for run in range(4):
        for method, value in (("FT (full fine-tuning)", 80.0), ("(IA)3", 70.0)):
            rows.append({
                "source": "My lab notebook", "table": f"Run {run}", "base_model": "Qwen2.5-3B", "base_params_b": "3",
                "task": "Contract clause extraction", "task_type": "extraction", "train_examples": "5000",
                "method": method, "trainable_pct": "", "metric": "F1", "value": str(value + run), "adversarial": "no",
                "notes": "",
            })  # fmt: skip
    wh.add_results(pd.DataFrame(rows), origin="user")
    second = gap_model(wh)
    assert second is not first and len(second.pairs) == len(first.pairs) + 4
    after = second.predict(scenario)
    assert after.mean < before.mean - 2  # the user's four pairs say IA3 trails by 10 points here
    assert any(row.source == "My lab notebook" and row.origin == "user" for row in after.evidence)
