"""The Calibrate page's states: idle, a live run (Start disabled, a racing start refused), a finished CPU probe
stored in the warehouse and found again from the link after a reload, and bad input in the page's words."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.resources import warehouse
from core.calibrate import launcher
from core.calibrate.launcher import LAUNCH, LIVE
from core.calibrate.recalibrate import CPU_PROBE_NOTE
from core.calibrate.runfolder import RunFolder
from tests.support import forced_failure_env
from tests.support.tiny import tiny_model

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "calibrate.py")
WAIT_S = 300  # an upper bound against hanging on a loaded machine, not a performance threshold


@pytest.fixture
def page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[AppTest, Path]]:
    monkeypatch.setenv("TUNEWISE_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("TUNEWISE_RUNS_DIR", str(tmp_path / "runs"))
    for name in ("TUNEWISE_READ_ONLY", "TUNEWISE_PARQUET_ROOT", "FORCED_FAILURE"):
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


def fake_live_run(root: Path, run_id: str = "20260101-120000-abcdef") -> None:
    """A run that holds the machine: running status, and this test's own (live) process as its pid."""
    folder = RunFolder(root / run_id).create()
    folder.set_status("running", "probe: 4 methods on cpu")
    folder.write_json(LAUNCH, {"pid": os.getpid(), "command": [], "started": time.time()})
    (root / LIVE).write_text(json.dumps({"run_id": run_id, "pid": os.getpid(), "started": time.time(),
                                         "owner": "a user of this app"}))


def test_idle_page_says_what_a_cpu_probe_does(page: tuple[AppTest, Path]) -> None:
    at, _ = page
    assert not at.exception
    assert any(CPU_PROBE_NOTE in i.value for i in at.info)
    assert any("One calibration run at a time on this machine" in c.value for c in at.caption)
    assert not at.button(key="start").disabled
    text = " ".join(str(e.value) for e in (*at.info, *at.caption, *at.markdown))
    assert "--" not in text and "/root" not in text  # no CLI flags, no server paths


def test_a_live_run_disables_start_and_a_racing_start_is_refused(
    page: tuple[AppTest, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at, _ = page
    fake_live_run(tmp_path / "runs")
    real = launcher.live_run
    # A race: the page's own look (no folder given) misses the run another session has just started; the launch's
    # look under the lock (the runs folder given) sees it.
    monkeypatch.setattr(launcher, "live_run", lambda root=None: real(root) if root is not None else None)
    at.button(key="start").click().run()
    assert [w.value for w in at.warning] == [f"a calibration run is already running (started "
                                             f"{time.strftime('%H:%M')}); cancel it or wait"]
    assert [p.name for p in (tmp_path / "runs").iterdir() if p.is_dir()] == ["20260101-120000-abcdef"]
    monkeypatch.setattr(launcher, "live_run", real)
    at.run()
    assert at.button(key="start").disabled
    assert any("already running" in i.value and "started by a user of this app" in i.value for i in at.info)
    assert at.get("progress")  # the live run's progress, for every session


def test_a_bad_link_run_is_named(page: tuple[AppTest, Path]) -> None:
    at, _ = page
    at.query_params["run"] = "../etc"
    at.run()
    assert [w.value for w in at.warning] == [
        "The link's run '../etc' is not among this machine's calibration runs; showing no run instead."]


def test_cpu_probe_from_the_page(page: tuple[AppTest, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Three methods ok, one forced to fail: the failure shows its reason, the run is stored (counted per run),
    the CPU probe checks activations and corrects nothing, and a reload of its link shows it again."""
    at, _ = page
    for name, value in forced_failure_env("ia3").items():  # inherited by the runner process
        monkeypatch.setenv(name, value)
    assert not at.exception
    at.number_input(key="steps").set_value(1)
    at.number_input(key="seq").set_value(16)
    at.button(key="start").click().run()
    assert not at.error, [e.value for e in at.error]
    assert at.get("progress")  # the live fragment polls the run folder
    assert at.button(key="start").disabled  # one run at a time
    run_id = at.query_params["run"][0] if isinstance(at.query_params["run"], list) else at.query_params["run"]
    deadline = time.monotonic() + WAIT_S
    while not at.dataframe and time.monotonic() < deadline:
        time.sleep(1)
        at.run()
    assert not at.exception
    assert not at.button(key="start").disabled  # the machine is free again
    table = at.dataframe[0].value
    assert list(table["status"]) == ["ok", "ok", "failed", "ok"]
    assert [w.value for w in at.warning] == [
        "IA3: failed, RuntimeError: forced failure of ia3 (tests/support/forced_failure)"]
    table = table[table["status"] == "ok"]
    assert (table["measured activations (MiB)"] > 0).all()
    assert table["measured states (MiB)"].notna().all()
    assert [s.value for s in at.success][-1] == "Stored in the warehouse: 1 run, 4 methods, 10 measurements, 0 results"
    assert at.subheader[-1].value == "Activation model check"
    checked = at.dataframe[1].value
    assert list(checked["method"]) == ["Full fine-tuning", "LoRA r=8", "Prompt tuning 20 tokens"]
    assert any(c.value.startswith(CPU_PROBE_NOTE) for c in at.caption)
    groups = at.dataframe[2].value  # from the warehouse: the CPU groups check, they do not correct
    assert set(groups["used for"]) == {"checks the activation model only"} and set(groups["device"]) == {"cpu"}
    reloaded = AppTest.from_file(PAGE, default_timeout=120)  # a new session: the link alone finds the run
    reloaded.query_params["run"] = run_id
    reloaded.run()
    assert not reloaded.exception
    assert list(reloaded.dataframe[0].value["status"]) == ["ok", "ok", "failed", "ok"]
    assert reloaded.success[-1].value.startswith("Stored in the warehouse: 1 run, 4 methods")


def test_bad_input_shows_the_cli_message(page: tuple[AppTest, Path]) -> None:
    at, _ = page
    at.number_input(key="steps").set_value(0)
    at.button(key="start").click().run()
    assert [e.value for e in at.error] == ["Steps per method 0: the budget must be at least 1 step"]


def test_learn_without_data_says_so(page: tuple[AppTest, Path]) -> None:
    at, _ = page
    at.radio(key="mode").set_value("learn").run()
    at.button(key="start").click().run()
    assert [e.value for e in at.error] == [
        "Learn mode needs a data file: CSV or JSONL with text+label or prompt+completion columns"
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
