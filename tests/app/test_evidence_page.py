"""Evidence page: renders, filters change the charts, links restore the view, bad uploads list their rows."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "evidence.py")


@pytest.fixture
def at(app_env: Path) -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=120)


def _pairs_heading(at: AppTest) -> str:
    return next(h.value for h in at.subheader if h.value.startswith("Gap by task type"))


def test_default_render(at: AppTest) -> None:
    at.run()
    assert not at.exception
    assert "1327 results and 820 matched" in at.caption[0].value
    assert "each counted once" in at.caption[0].value
    assert len(at.get("vega_lite_chart")) == 5
    claims = at.tabs[2].dataframe[0].value
    assert len(claims) == 19 and set(claims["⚑"]) <= {"⚑", ""}


def test_the_predictor_accuracy_tab_shows_each_paper_held_out(at: AppTest) -> None:
    at.run()
    tab = at.tabs[1]
    assert "predicting each of" in tab.markdown[0].value and "'gap = 0'" in tab.markdown[0].value
    held = tab.dataframe[0].value
    assert len(held) >= 10 and held["coverage"].between(0, 1).all() and (held["pairs"] > 0).all()
    assert any("Hu et al. 2021" in s for s in held["source"])


def test_filter_changes_the_charts(at: AppTest) -> None:
    at.run()
    before = _pairs_heading(at)
    at.multiselect(key="task").set_value(["code"]).run()
    after = _pairs_heading(at)
    assert before != after and "(39 pairs)" in after
    assert at.query_params["task"] in ("code", ["code"])


def test_link_restores_the_view(at: AppTest) -> None:
    at.query_params["task"] = "code"
    at.query_params["method"] = "lora"
    at.run()
    assert at.multiselect(key="task").value == ["code"]
    assert at.multiselect(key="method").value == ["lora"]
    assert "(39 pairs)" in _pairs_heading(at)


UPLOAD_SCRIPT = """
from app.widgets import import_upload

class Upload:
    name = "mine.csv"

    @staticmethod
    def getvalue() -> bytes:
        header = ("source,table,base_model,base_params_b,task,task_type,train_examples,method,trainable_pct,metric,"
                  "value,adversarial,notes\\n")
        good = "Me,T1,Llama-2-7B,7,MyTask,classification,100,LoRA,0.1,accuracy,80,no,\\n"
        bad = "Me,T1,Llama-2-7B,7,MyTask,not-a-type,100,LoRA,0.1,accuracy,abc,no,\\n"
        return (header + good + bad).encode()

import_upload(Upload())
"""


def test_bad_upload_lists_row_errors(app_env: Path) -> None:
    """The page's upload path (AppTest cannot attach a file, so the helper the page calls is driven directly)."""
    script = AppTest.from_string(UPLOAD_SCRIPT, default_timeout=60).run()
    assert "rejected: 1 bad row (" in script.error[0].value and "nothing was written" in script.error[0].value
    errors = script.dataframe[0].value
    assert set(errors["line"]) == {3}  # only the bad row, each of its problems listed
    assert errors["reason"].str.contains("not-a-type").any() and errors["reason"].str.contains("abc").any()
