"""Decide page: a recommendation with reasons and evidence; inputs come from and go to the link."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "decide.py")


@pytest.fixture
def at(app_env: Path) -> AppTest:
    test = AppTest.from_file(PAGE, default_timeout=300)
    test.query_params.update({"model": "Qwen/Qwen2.5-0.5B", "task": "code", "gpu": "T4"})
    return test


def test_recommendation_with_reasons_and_evidence(at: AppTest) -> None:
    at.run()
    assert not at.exception and not at.error
    assert at.success[0].value.startswith("Recommended:")
    table = at.dataframe[0].value
    assert {"fft", "lora"} <= {m.split()[0].lower().replace("full", "fft") for m in table["method"]}
    assert table["reason"].str.len().min() > 0
    assert at.selectbox(key="task").value == "code"
    assert len(at.get("vega_lite_chart")) == 1
    assert table["P(FFT ahead by > 1 point)"].dropna().between(0, 1).all()
    own = table.set_index("method")["own pairs"]
    assert own["Full fine-tuning"] == "reference" and own.drop("Full fine-tuning").str.isdigit().all()
    # the held-out accuracy next to the answer, and the evidence rows with their sources
    assert any("papers from the others" in m.value for m in at.markdown)
    held = next(d.value for d in at.dataframe if "MAE of gap = 0" in d.value.columns)
    assert len(held) >= 10
    evidence = next(d.value for d in at.dataframe if "source_table" in d.value.columns)
    assert evidence["source"].str.len().min() > 0 and evidence["method_raw"].str.len().min() > 0


def test_more_tasks_grow_storage(at: AppTest) -> None:
    at.run()
    one = at.dataframe[0].value.set_index("method")["storage (all tasks)"]
    at.number_input(key="tasks").set_value(50).run()
    fifty = at.dataframe[0].value.set_index("method")["storage (all tasks)"]
    assert (one.sort_index() != fifty.sort_index()).any()
    assert at.query_params["tasks"] in ("50", ["50"])
