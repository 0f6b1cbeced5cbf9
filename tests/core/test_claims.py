"""Claims beside evidence: verdicts on hand-made pairs, evidence chosen by what each claim is about, and every gap
written PEFT minus FFT."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from core.claims import claims_display, compare_claims, verdict_summary
from core.warehouse import claims, open_warehouse, pairs


def _claim(gap: float | None, **over: object) -> dict[str, object]:
    row: dict[str, object] = {
        "claim_id": "S1", "comparison": "FFT minus LoRA", "task": "GSM8k", "base_model": "LLaMA2-7B", "params_b": 7.0,
        "task_type": "reasoning-math", "method_id": "lora", "distribution": "in-domain",
        "peft_minus_fft_100": gap, "qualitative": gap is None, "notes": None,
    }
    return {**row, **over}


def _claims(gap: float | None, **over: object) -> pd.DataFrame:
    return pd.DataFrame([_claim(gap, **over)])


def _pairs(gaps: list[float], *, kind: str = "target", model: str = "Llama-2-7B", params_b: float = 7.0,
           family: str = "llama", method: str = "lora") -> pd.DataFrame:
    return pd.DataFrame({"method_id": method, "task_type": "reasoning-math", "distribution": "in-domain",
                         "metric_kind": kind, "gap": gaps, "model": model, "params_b": params_b,
                         "model_family": family})


@pytest.mark.parametrize(("claimed", "gaps", "verdict", "flagged"), [
    (-7.3, [-3.0, -2.0, -5.0], "agrees", False),
    (-7.3, [2.0, 3.0, 1.5], "disagrees", True),
    (-7.3, [0.1, -0.2, 0.3], "evidence shows no clear gap", True),
    (-7.3, [], "no comparable evidence", True),
    (None, [-1.0], "no gap stated: read the evidence", False),
])
def test_verdicts(claimed: float | None, gaps: list[float], verdict: str, flagged: bool) -> None:
    row = compare_claims(_claims(claimed), _pairs(gaps)).iloc[0]
    assert row["verdict"] == verdict
    assert row["flagged"] == flagged
    assert row["evidence_pairs"] == len(gaps)


def test_forgetting_metrics_are_not_evidence_for_accuracy_claims() -> None:
    row = compare_claims(_claims(-7.3), _pairs([5.0, 6.0], kind="forgetting")).iloc[0]
    assert row["evidence_pairs"] == 0


def test_claims_about_different_models_get_their_own_evidence() -> None:
    evidence = pd.concat([
        _pairs([-4.0, -5.0], model="Llama-2-7B", params_b=7.0),
        _pairs([1.0, 2.0, 3.0], model="RoBERTa-base", params_b=0.125, family="roberta"),
    ], ignore_index=True)
    both = pd.DataFrame([
        _claim(-7.3),
        _claim(1.3, claim_id="S10", base_model="RoBERTa-base", params_b=0.125, comparison="LoRA minus FFT"),
    ])
    rows = compare_claims(both, evidence).set_index("claim_id")
    assert rows.loc["S1", "evidence_pairs"] == 2 and rows.loc["S1", "evidence_median_gap"] == -4.5
    assert rows.loc["S10", "evidence_pairs"] == 3 and rows.loc["S10", "evidence_median_gap"] == 2.0
    assert "same model (LLaMA2-7B)" in rows.loc["S1", "evidence_scope"]
    assert "same model (RoBERTa-base)" in rows.loc["S10", "evidence_scope"]
    assert rows.loc["S1", "verdict"] == rows.loc["S10", "verdict"] == "agrees"


def test_without_pairs_of_its_model_a_claim_reads_its_family_and_size_then_any_model_of_its_size() -> None:
    evidence = pd.concat([
        _pairs([-1.0], model="LLaMA-3-8B", params_b=8.0),              # llama, within a factor 2 of 13B
        _pairs([-9.0], model="Gemma-7B", params_b=8.5, family="gemma"),  # another family, same size band
        _pairs([5.0], model="RoBERTa-base", params_b=0.125, family="roberta"),  # far away
    ], ignore_index=True)
    llama13 = compare_claims(_claims(-4.0, base_model="LLaMA2-13B", params_b=13.0), evidence).iloc[0]
    assert llama13["evidence_pairs"] == 1 and llama13["evidence_median_gap"] == -1.0
    assert "llama models of 6.5-26B parameters" in llama13["evidence_scope"]
    mistral = compare_claims(_claims(-2.2, base_model="Mistral-7B", params_b=7.2), evidence).iloc[0]
    assert mistral["evidence_pairs"] == 2 and "any model of 3.6-14.4B parameters" in mistral["evidence_scope"]
    huge = compare_claims(_claims(-1.85, base_model="LLaMA2-70B", params_b=70.0), evidence).iloc[0]
    assert huge["evidence_pairs"] == 0 and huge["verdict"] == "no comparable evidence"
    assert huge["evidence_scope"].startswith("none: no LoRA pairs")


def test_a_claim_naming_no_method_reads_every_peft_method_but_never_fft() -> None:
    evidence = pd.concat([_pairs([-1.0]), _pairs([-3.0], method="ia3"), _pairs([9.0], method="fft")],
                         ignore_index=True)
    row = compare_claims(_claims(None, method_id=None, comparison="FFT vs all PEFT"), evidence).iloc[0]
    assert row["evidence_pairs"] == 2 and row["method_id"] == "any PEFT"
    assert row["comparison"] == "FFT vs all PEFT"


def test_shipped_claims_are_written_peft_minus_fft_with_their_value_sign_flipped(seeded_file: Path) -> None:
    with open_warehouse(seeded_file, read_only=True) as wh:
        compared = compare_claims(claims(wh), pairs(wh))
    s1 = compared.set_index("claim_id").loc["S1"]  # the paper: "FFT minus LoRA 2.81"
    assert s1["comparison"] == "LoRA minus FFT" and s1["claimed_gap"] == -2.81
    gap_claims = compared[compared["claimed_gap"].notna()]
    assert not gap_claims["comparison"].str.startswith("FFT").any()
    assert set(gap_claims["comparison"]) == {"LoRA minus FFT"}
    shown = claims_display(compared)
    assert list(shown.columns[:3]) == ["⚑", "verdict", "claim"]
    assert not shown.isna().any().any() and not shown.astype(str).isin(["None", "nan"]).any().any()
    assert shown.loc[compared["claim_id"] == "S1", "claimed gap (points)"].item() == "-2.81"
    # claims on different models read different evidence in the shipped data
    by_id = compared.set_index("claim_id")
    assert by_id.loc["S10", "evidence_median_gap"] != by_id.loc["S11", "evidence_median_gap"]
    assert by_id.loc["S4", "evidence_pairs"] != by_id.loc["S5", "evidence_pairs"]
    assert not math.isnan(by_id.loc["S3", "evidence_median_gap"])


def test_verdict_summary_counts_flagged_verdicts_first() -> None:
    compared = pd.DataFrame({"verdict": ["agrees", "agrees", "disagrees", "no comparable evidence"]})
    assert verdict_summary(compared) == "4 claims: disagrees 1; no comparable evidence 1; agrees 2."
