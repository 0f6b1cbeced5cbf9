"""Robustness (ood pairs and adversarial claims, side by side) and forgetting (retention per method)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from core.gap.features import GapScenario
from core.gap.forgetting import forgetting
from core.gap.model import GapModel
from core.gap.robustness import ConditionEstimate, pooled, robustness
from core.warehouse import open_warehouse, pairs


def test_adversarial_comes_from_the_seed_claims_and_ood_from_pairs(real_model: GapModel) -> None:
    report = robustness(real_model.pairs, list(real_model.claims), GapScenario("classification", "lora"))
    adv = report.adversarial
    assert adv.basis == "seed-paper claims" and adv.n == 2 and adv.n_sources == 1
    assert adv.mean == pytest.approx((-5.69 - 1.48) / 2)  # AdvGLUE: FFT minus LoRA 5.69 and 1.48 points
    assert adv.low is not None and adv.low < -5.69 and adv.high is not None
    assert report.ood.known and report.ood.basis == "pairs (LoRA)"
    assert {c.claim_id for c in report.qualitative} == {"S14", "S15"}


def test_robustness_is_each_methods_own_evidence_with_provenance(real_model: GapModel) -> None:
    def ood(task_type: str, method: str) -> ConditionEstimate:
        return robustness(real_model.pairs, list(real_model.claims), GapScenario(task_type, method)).ood

    lora, prefix = ood("generation", "lora"), ood("generation", "prefix_tuning")
    prompt = ood("extraction", "prompt_tuning")
    assert (lora.basis, prefix.basis) == ("pairs (LoRA)", "pairs (Prefix tuning)")
    assert prompt.basis == "pairs (Prompt tuning)"
    assert len({lora.mean, prefix.mean, prompt.mean}) == 3  # not one constant for every method
    # every number names the paper and table it comes from, and its own method's published name
    assert all("LoRA (Hu et al. 2021" in i and "(LoRA" in i for i in lora.items)
    assert all("Lester et al. 2021" in i for i in prompt.items) and prompt.n == len(prompt.items)
    family = ood("classification", "bitfit")  # no BitFit ood pair: its family's (FT-Top2), said so
    assert family.basis == "pairs (selective methods; none of bitfit itself)" and family.known
    none = ood("classification", "ia3")
    assert not none.known and "no numeric evidence" in none.summary()
    # the seed paper's AdvGLUE claims compare FFT with LoRA: they are no evidence about soft prompts
    soft = robustness(real_model.pairs, list(real_model.claims), GapScenario("classification", "prompt_tuning"))
    assert not soft.adversarial.known


def test_disagreeing_conditions_are_shown_side_by_side(real_model: GapModel) -> None:
    report = robustness(real_model.pairs, list(real_model.claims))
    assert report.ood.mean is not None and report.ood.mean > 0 > (report.adversarial.mean or 0)
    assert report.disagreement is not None and "out of distribution" in report.disagreement
    lines = report.lines()
    assert lines[0].startswith("out of distribution") and any(line.startswith("adversarial") for line in lines)


def test_the_ood_shift_pairs_ood_with_in_domain_rows(real_model: GapModel) -> None:
    report = robustness(real_model.pairs, list(real_model.claims))
    assert report.ood_shift.n > 0 and all("WebNLG" in i or "XSUM" in i or "Train" in i for i in report.ood_shift.items)


def test_pooling_widens_with_few_sources() -> None:
    values = pd.Series([1.0, 2.0, 1.5, 0.5, 1.2, 1.8])
    many = pooled("x", "pairs", values, pd.Series(["a", "b", "c", "d", "e", "f"]), [])
    one = pooled("x", "pairs", values, pd.Series(["a"] * 6), [])
    assert isinstance(many, ConditionEstimate) and many.mean == pytest.approx(one.mean)
    assert (one.high - one.low) > (many.high - many.low)  # type: ignore[operator]
    empty = pooled("x", "pairs", pd.Series([], dtype=float), pd.Series([], dtype=str), [])
    assert not empty.known and "no numeric evidence" in empty.summary()


def test_forgetting_reports_retention_per_method(seeded_file: Path) -> None:
    with open_warehouse(seeded_file, read_only=True) as wh:
        frame = pairs(wh)
    report = forgetting(frame, task_type="code")
    labels = [r.label for r in report.rows]
    assert labels == ["fft", "lora r=16", "lora r=64", "lora r=256"]
    fft, lora16 = report.rows[0], report.rows[1]
    assert fft.drop_over_training is not None and fft.drop_over_training < 0  # FFT forgets as training grows
    assert lora16.vs_fft_median is not None and lora16.vs_fft_median > 0  # LoRA keeps more (Biderman et al.)
    assert all("Biderman" in s for r in report.rows for s in r.sources)
    assert any("no base-model score" in n for n in report.notes)


def test_forgetting_uses_a_base_score_when_there_is_one(seeded_file: Path) -> None:
    with open_warehouse(seeded_file, read_only=True) as wh:
        frame = pairs(wh)
    rows = frame.loc[frame["metric_kind"] == "forgetting"]
    first = rows.iloc[0]
    base = pd.DataFrame([{"method_id": "base", "source": first["source"], "model": first["model"],
                          "task": first["task"], "metric": first["metric"], "value_100": 64.0}])  # fmt: skip
    report = forgetting(frame, base, task_type=str(first["task_type"]))
    assert report.rows[0].kept_of_base_pct is not None and 50 < report.rows[0].kept_of_base_pct < 110
    assert not any("no base-model score" in n for n in report.notes)


def test_forgetting_says_when_a_task_type_has_none(seeded_file: Path) -> None:
    with open_warehouse(seeded_file, read_only=True) as wh:
        report = forgetting(pairs(wh), task_type="classification")
    assert report.notes[0].startswith("no forgetting evidence for classification tasks")
    assert forgetting(pairs_empty()).notes[-1] == "the warehouse holds no forgetting metrics"


def pairs_empty() -> pd.DataFrame:
    return pd.DataFrame(columns=["metric_kind", "gap", "task_type"])
