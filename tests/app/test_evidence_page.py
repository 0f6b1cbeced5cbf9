"""Evidence page: renders, filters change the charts, links restore the view, bad uploads list their rows."""

import json
from pathlib import Path

import pandas as pd
import pytest
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
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
    overall = at.caption[0].value
    assert "1,784 results (one reported score each" in overall and "give 1,119 matched pairs" in overall
    assert "970 on the task trained for (the charts)" in overall and "149 on other tasks" in overall
    assert "count once" in overall and "Gap = PEFT minus FFT" in overall
    assert "These filters: 1,784 results" in at.caption[1].value
    assert len(at.get("vega_lite_chart")) == 5
    assert "(970 pairs)" in _pairs_heading(at)
    summary = at.tabs[0].dataframe[0].value
    assert summary["pairs"].sum() == 970  # the table beside the chart counts what the chart shows
    # claims: the verdict first, every gap PEFT minus FFT
    claims = at.tabs[2].dataframe[0].value
    assert len(claims) == 19 and list(claims.columns[:3]) == ["⚑", "verdict", "claim"]
    assert set(claims["⚑"]) <= {"⚑", ""}
    assert not claims["claim"].str.contains("FFT minus").any()
    s1 = claims[claims["claim"].str.startswith("S1 ")].iloc[0]
    assert s1["claim"].startswith("S1 LoRA minus FFT") and s1["claimed gap (points)"] == "-2.81"
    assert not claims.astype(str).isin(["None", "nan"]).any().any()
    assert "PEFT minus FFT" in at.tabs[2].caption[0].value
    assert at.tabs[2].markdown[0].value.startswith("**Verdicts:** 19 claims: ")


POINT_TABLES = (("trainable share", "trainable share (%)"), ("training-set size", "training examples"),
                ("rank", "rank r"))


def _points_tables(at: AppTest) -> dict[str, pd.DataFrame]:
    """The table beside each gap-against chart, by the field its chart plots (the summary table comes first)."""
    tables = [frame.value for frame in at.tabs[0].dataframe[1:]]
    return {name: next(t for t in tables if column in t.columns) for name, column in POINT_TABLES
            if any(column in t.columns for t in tables)}


def _chart_data(at: AppTest, index: int) -> tuple[dict, dict[str, pd.DataFrame]]:
    """A chart's Vega-Lite spec and its named datasets (Streamlit sends them beside the spec, as Arrow)."""
    chart = at.get("vega_lite_chart")[index]
    return json.loads(chart.proto.spec), {d.name: convert_arrow_bytes_to_pandas_df(d.data.data)
                                          for d in chart.proto.datasets}


def _heading(at: AppTest, name: str) -> str:
    return next(h.value for h in at.subheader if h.value.startswith(f"Gap against {name} ("))


def test_each_gap_against_chart_has_its_points_table_beside(at: AppTest) -> None:
    at.run()
    assert not at.exception
    tables = _points_tables(at)
    assert len(tables) == 3 and len(at.tabs[0].dataframe) == 4
    counts = {"trainable share": 470 + 177, "training-set size": 350 + 128, "rank": 299 + 150}  # + the 7 papers
    for name, column in POINT_TABLES:
        table = tables[name]
        assert list(table.columns) == ["method", column, "PEFT minus FFT (points)", "paper", "task"]
        assert len(table) == counts[name] and f"({counts[name]} pairs)" in _heading(at, name)
        assert table[column].is_monotonic_increasing and (table[column] > 0).all()
        assert (table["PEFT minus FFT (points)"] < 0).any() and (table["PEFT minus FFT (points)"] > 0).any()
        assert not table.isna().any().any()
    assert "LoRA" in set(tables["rank"]["method"]) and "LoRA" in set(tables["rank"]["paper"])
    # hundreds of dots: the charts leave the naming to the tables
    specs = [_chart_data(at, i)[0] for i in (1, 2, 3)]
    assert all([layer["mark"]["type"] for layer in spec["layer"]] == ["point", "rule"] for spec in specs)


LORA_PAPER = "LoRA (Hu et al. 2021, arXiv 2106.09685 v2)"


def test_few_points_are_named_on_the_chart_and_a_chart_without_points_says_so(at: AppTest) -> None:
    at.query_params["task"] = "extraction"
    at.run()
    at.multiselect(key="source").set_value([LORA_PAPER]).run()  # one paper's few extraction pairs
    assert not at.exception
    tables = _points_tables(at)
    assert set(tables) == {"trainable share", "training-set size"}
    assert len(tables["trainable share"]) == len(tables["training-set size"]) == 7
    assert "No pairs for these filters state their rank." in at.tabs[0].info[0].value
    share, datasets = _chart_data(at, 1)
    assert [layer["mark"]["type"] for layer in share["layer"]] == ["point", "text", "text", "text", "text", "rule"]
    labels = pd.concat([datasets[layer["data"]["name"]]["label"] for layer in share["layer"][1:5]])
    table = tables["trainable share"]
    assert len(datasets[share["layer"][0]["data"]["name"]]) == len(labels) == len(table)
    assert set(table["paper"]) == {"LoRA"}  # one paper: each dot is named by its method alone
    assert sorted(labels) == sorted(table["method"])


def test_method_filter_is_exact_and_an_empty_result_says_so(at: AppTest) -> None:
    at.run()
    assert {"LoRA", "QLoRA (4-bit NF4 base + LoRA)"} <= set(at.tabs[0].dataframe[0].value["method_id"])
    at.multiselect(key="method").set_value(["lora"]).run()
    assert not at.exception
    assert set(at.tabs[3].dataframe[0].value["method_id"]) == {"lora"}
    assert set(at.tabs[0].dataframe[0].value["method_id"]) == {"LoRA"}
    assert at.query_params["method"] in ("lora", ["lora"])
    # a filter with no pairs says how to widen it
    at.multiselect(key="task").set_value(["code"]).run()
    at.multiselect(key="method").set_value(["vera"]).run()
    assert not at.exception
    assert "No matched pairs for these filters" in at.tabs[0].info[0].value
    assert "give 0 matched pairs" in at.caption[1].value


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
    assert before != after and "(68 pairs)" in after
    assert at.tabs[0].dataframe[0].value["pairs"].sum() == 68
    assert at.query_params["task"] in ("code", ["code"])


def test_link_restores_the_view(at: AppTest) -> None:
    at.query_params["task"] = "code"
    at.query_params["method"] = "lora"
    at.run()
    assert at.multiselect(key="task").value == ["code"]
    assert at.multiselect(key="method").value == ["lora"]
    assert "(55 pairs)" in _pairs_heading(at)


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


GOOD_UPLOAD_SCRIPT = UPLOAD_SCRIPT.replace("(header + good + bad)", "(header + good)")


def test_good_upload_adds_its_row_to_the_page(app_env: Path) -> None:
    script = AppTest.from_string(GOOD_UPLOAD_SCRIPT, default_timeout=60).run()
    assert not script.error and not script.exception
    page = AppTest.from_file(PAGE, default_timeout=120).run()
    assert "1,785 results (one reported score each" in page.caption[0].value


def test_sources_and_model_sizes_survive_a_link(at: AppTest, app_env: Path) -> None:
    """A citation holds commas, so the sources travel joined by '|'; the size range as 'low,high'."""
    other = "SVFT (Lingam et al. 2024, arXiv 2405.17604) Tables 1,2,3,8"
    at.run()
    at.multiselect(key="source").set_value([LORA_PAPER, other]).run()
    at.select_slider(key="size").set_range(0.1, 13.0).run()
    assert not at.exception
    link = {key: at.query_params[key] for key in ("source", "size")}
    assert link == {"source": f"{LORA_PAPER}|{other}", "size": "0.1,13.0"}
    again = AppTest.from_file(PAGE, default_timeout=120)
    again.query_params.update(link)
    again.run()
    assert not again.exception and not again.warning
    assert again.multiselect(key="source").value == [LORA_PAPER, other]
    assert again.select_slider(key="size").value == (0.1, 13.0)
    assert _pairs_heading(again) == _pairs_heading(at)


def test_a_size_range_that_is_not_one_warns_and_shows_every_size(at: AppTest) -> None:
    at.query_params["size"] = "70,1"
    at.run()
    assert [w.value for w in at.warning] == ["Link value size=70,1 is not a range of 0.05, 0.1, 0.3, 1.0, 3.0, 7.0, "
                                             "... (10 in all): using 0.05,200.0"]
    assert at.select_slider(key="size").value == (0.05, 200.0)
