"""The Calibrate page: launch a CPU probe, watch it finish, see measured vs predicted; bad input shows st.error."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.resources import warehouse
from core.memory.tiny import tiny_model

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "calibrate.py")
WAIT_S = 300  # an upper bound against hanging on a loaded machine, not a performance threshold


@pytest.fixture
def page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[AppTest, Path]]:
    monkeypatch.setenv("TUNEWISE_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("TUNEWISE_RUNS_DIR", str(tmp_path / "runs"))
    for name in ("TUNEWISE_READ_ONLY", "TUNEWISE_PARQUET_ROOT", "TUNEWISE_CALIBRATE_FAIL"):
        monkeypatch.delenv(name, raising=False)
    warehouse.clear()  # the cached connection of another test's warehouse
    config = tmp_path / "tiny-llama.json"
    config.write_text(tiny_model("llama").config_json, encoding="utf-8")
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.query_params["model"] = str(config)
    at.query_params["methods"] = "fft,lora,ia3,prompt_tuning"
    at.query_params["device"] = "cpu"
    yield at.run(), config
    warehouse().close()
    warehouse.clear()


def test_cpu_probe_from_the_page(page: tuple[AppTest, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Three methods ok, one forced to fail: the failure shows its reason and the rest of the page works."""
    at, _ = page
    monkeypatch.setenv("TUNEWISE_CALIBRATE_FAIL", "ia3")  # inherited by the runner process
    assert not at.exception
    assert any("No CUDA GPU" in i.value for i in at.info)
    at.number_input(key="steps").set_value(1)
    at.number_input(key="seq").set_value(16)
    at.button(key="start").click().run()
    assert not at.error, [e.value for e in at.error]
    assert at.get("progress")  # the live fragment polls the run folder
    deadline = time.monotonic() + WAIT_S
    while not at.dataframe and time.monotonic() < deadline:
        time.sleep(1)
        at.run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["status"]) == ["ok", "ok", "failed", "ok"]
    assert [w.value for w in at.warning] == ["IA3: failed — RuntimeError: forced failure (TUNEWISE_CALIBRATE_FAIL=ia3)"]
    table = table[table["status"] == "ok"]
    assert (table["measured activations (MiB)"] > 0).all()
    assert table["measured states (MiB)"].notna().all()
    assert any("Stored in the warehouse" in s.value for s in at.success)
    at.run()
    assert not at.exception
    assert len(at.dataframe) == 3  # results, calibrated estimates and, from the warehouse, the ratio groups
    calibrated = at.dataframe[1].value
    marked = calibrated.set_index("method")["calibration"]
    assert marked.drop("IA3").str.startswith("calibrated from 1 run on cpu").all()
    assert marked["IA3"] == "no measurements for this method family yet"  # its only run failed


def test_bad_input_shows_the_cli_message(page: tuple[AppTest, Path]) -> None:
    at, _ = page
    at.number_input(key="steps").set_value(0)
    at.button(key="start").click().run()
    assert [e.value for e in at.error] == ["--steps 0: the budget must be at least 1 step"]


def test_learn_without_data_says_so(page: tuple[AppTest, Path]) -> None:
    at, _ = page
    at.radio(key="mode").set_value("learn").run()
    at.button(key="start").click().run()
    assert [e.value for e in at.error] == [
        "--learn needs --data FILE: CSV or JSONL with text+label or prompt+completion columns"
    ]


@pytest.mark.parametrize(("content", "message"), [
    (b"text,label\na,pos\nb,pos\n", "reviews.csv: label has one class ('pos')"),
    (b"text,label\ncaf\xe9,a\n", "reviews.csv is not UTF-8 (byte 0xe9 at offset 14); re-save it as UTF-8"),
    (b"sentence,label\nx,a\n", "reviews.csv has columns label, sentence: it needs text and label"),
])  # fmt: skip
def test_bad_data_shows_the_cli_message(page: tuple[AppTest, Path], content: bytes, message: str) -> None:
    at, _ = page
    at.radio(key="mode").set_value("learn").run()
    at.file_uploader(key="data").upload("reviews.csv", content, "text/csv")
    at.radio(key="init").set_value("random").run()
    at.button(key="start").click().run()
    assert len(at.error) == 1 and at.error[0].value.startswith(message)


def test_learn_from_the_page(page: tuple[AppTest, Path]) -> None:
    at, _ = page
    rows = "".join(f"{label} words {i},{label}\n" for i in range(6) for label in ("pos", "neg"))
    at.radio(key="mode").set_value("learn").run()
    at.multiselect(key="methods").set_value(["fft", "lora"])
    at.file_uploader(key="data").upload("reviews.csv", f"text,label\n{rows}".encode(), "text/csv")
    at.radio(key="init").set_value("random")
    at.text_input(key="sizes").set_value("2,4")
    at.number_input(key="steps").set_value(2)
    at.number_input(key="seq").set_value(16).run()
    at.button(key="start").click().run()
    assert not at.error, [e.value for e in at.error]
    deadline = time.monotonic() + WAIT_S
    while not at.dataframe and time.monotonic() < deadline:
        time.sleep(1)
        at.run()
    table = at.dataframe[0].value
    assert list(table["status"]) == ["ok"] * 4
    assert list(table["held-out metric"]) == ["accuracy"] * 4
    assert len(at.get("vega_lite_chart")) == 2  # the loss curves and the metric against the data size


def test_read_only_deployment_turns_calibration_off(app_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNEWISE_READ_ONLY", "1")
    warehouse.clear()
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception
    assert any("read-only deployment" in i.value for i in at.info)
    assert at.button(key="start").disabled
