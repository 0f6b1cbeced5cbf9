"""Claims beside evidence: verdicts on hand-made pairs."""

import pandas as pd
import pytest

from core.claims import compare_claims


def _claims(gap: float | None) -> pd.DataFrame:
    return pd.DataFrame([{
        "claim_id": "S1", "comparison": "FFT minus LoRA", "task": "GSM8k", "base_model": "LLaMA2-7B",
        "task_type": "reasoning-math", "method_id": "lora", "distribution": "in-domain",
        "peft_minus_fft_100": gap, "qualitative": gap is None, "notes": "",
    }])


def _pairs(gaps: list[float], kind: str = "target") -> pd.DataFrame:
    return pd.DataFrame({"method_id": "lora", "task_type": "reasoning-math", "distribution": "in-domain",
                         "metric_kind": kind, "gap": gaps})


@pytest.mark.parametrize(("claimed", "gaps", "verdict", "flagged"), [
    (-7.3, [-3.0, -2.0, -5.0], "agrees", False),
    (-7.3, [2.0, 3.0, 1.5], "disagrees", True),
    (-7.3, [0.1, -0.2, 0.3], "evidence shows no clear gap", True),
    (-7.3, [], "no comparable evidence", True),
    (None, [-1.0], "qualitative claim: read the evidence", False),
])
def test_verdicts(claimed: float | None, gaps: list[float], verdict: str, flagged: bool) -> None:
    row = compare_claims(_claims(claimed), _pairs(gaps)).iloc[0]
    assert row["verdict"] == verdict
    assert row["flagged"] == flagged
    assert row["evidence_pairs"] == len(gaps)


def test_forgetting_metrics_are_not_evidence_for_accuracy_claims() -> None:
    row = compare_claims(_claims(-7.3), _pairs([5.0, 6.0], kind="forgetting")).iloc[0]
    assert row["evidence_pairs"] == 0
