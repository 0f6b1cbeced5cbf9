"""Browser: two Streamlit servers on one warehouse file serve every page while CLI commands write to it.

Real processes only: two `streamlit run` servers, a `python -m core warehouse import` of 10,000 rows and a
`python -m core calibrate --probe` run (which stores itself in the warehouse when it ends), all at once on
one DuckDB file. No page may show an error meanwhile, and afterwards both servers show the new data.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Page

from core.warehouse import Filters, open_warehouse, pairs
from core.warehouse.conventions import PUBLISHED_COLUMNS
from tests.support.tiny import tiny_model

from .conftest import ROOT, _free_port, _wait_healthy, wait_for_app

PAGES = ("", "memory", "evidence", "calibrate", "guide")
ROWS_ADDED, PAIRS_ADDED = 10_000, 50  # 50 setups with FFT and LoRA r=8, 9,900 LoRA-only setups (no pair)


def _rows_file(path: Path) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(PUBLISHED_COLUMNS))
        writer.writeheader()
        for i in range(ROWS_ADDED - PAIRS_ADDED):
            paired = i < PAIRS_ADDED
            for method, value in (("Full fine-tuning", 90 + i % 7 / 10), ("LoRA r=8", 89.5))[not paired:]:
                writer.writerow({
                    "source": "Load-test lab", "table": f"T{i % 50}", "base_model": "Qwen2.5-0.5B",
                    "base_params_b": "0.494", "task": "GLUE SST-2", "task_type": "classification",
                    "train_examples": str(1000 + i), "method": method, "trainable_pct": "", "metric": "accuracy",
                    "value": str(value), "adversarial": "no", "notes": "",
                })  # fmt: skip
    return path


@contextmanager
def streamlit_servers(env: dict[str, str], logs: list[Path]) -> Iterator[list[str]]:
    """One `streamlit run app/main.py` per log file, all with `env`, started together; yields their URLs."""
    started = []
    with ExitStack() as stack:
        for log_path in logs:
            port = _free_port()
            log = stack.enter_context(log_path.open("w"))
            process = subprocess.Popen(
                [sys.executable, "-m", "streamlit", "run", str(ROOT / "app" / "main.py"), "--server.port", str(port),
                 "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            stack.callback(_stop, process)
            started.append((process, f"http://127.0.0.1:{port}"))
        for process, url in started:
            _wait_healthy(url, process)
        yield [url for _, url in started]


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


@contextmanager
def streamlit_server(env: dict[str, str], log_path: Path) -> Iterator[str]:
    """One server: `streamlit_servers` with one log."""
    with streamlit_servers(env, [log_path]) as (url,):
        yield url


def app_env(tmp_path: Path) -> dict[str, str]:
    """The servers' environment: a private warehouse and runs folder, nothing inherited that changes the mode."""
    env = {**os.environ, "TUNEWISE_WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
           "TUNEWISE_RUNS_DIR": str(tmp_path / "runs"), "HF_HUB_OFFLINE": "1"}  # fmt: skip
    for name in ("TUNEWISE_READ_ONLY", "TUNEWISE_PARQUET_ROOT"):
        env.pop(name, None)
    return env


@pytest.fixture
def shared(tmp_path: Path) -> Iterator[tuple[dict[str, str], list[str]]]:
    """(environment, [url of server 1, url of server 2]): both servers on one warehouse file."""
    env = app_env(tmp_path)
    init = subprocess.run([sys.executable, "-m", "core", "warehouse", "init"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip
    assert init.returncode == 0, init.stderr
    with streamlit_servers(env, [tmp_path / "streamlit-1.log", tmp_path / "streamlit-2.log"]) as urls:
        yield env, urls


def _open(page: Page, url: str, expect: str = "") -> str:
    """Load a page, wait for its title (and `expect`) and the end of its run; it must show no error."""
    page.goto(url)
    page.locator('[data-testid="stMain"] h1').first.wait_for()
    if expect:
        page.get_by_text(expect).first.wait_for()
    wait_for_app(page)
    assert page.locator('[data-testid="stException"]').count() == 0, url
    errors = page.locator('[data-testid="stAlertContentError"]')
    assert errors.count() == 0, (url, errors.all_inner_texts())
    return page.inner_text('[data-testid="stMain"]')


def _counts(location: str) -> tuple[int, int, int, int]:
    """(results, pairs, classification pairs with a rank, memory measurements) as the warehouse holds them."""
    with open_warehouse(location, read_only=True) as wh:
        stats = wh.stats()
        ranked = pairs(wh, Filters(task_types=["classification"], metric_kinds=["target"])).dropna(subset=["rank"])
        return stats["results"], stats["pairs"], len(ranked), stats["memory_measurements"]


def test_two_servers_serve_every_page_while_the_cli_writes(
    page: Page, shared: tuple[dict[str, str], list[str]], tmp_path: Path
) -> None:
    env, urls = shared
    results, pair_count, ranked, measurements = _counts(env["TUNEWISE_WAREHOUSE"])
    config = tmp_path / "tiny-llama.json"
    config.write_text(tiny_model("llama").config_json, encoding="utf-8")
    writers = [
        subprocess.Popen([sys.executable, "-m", "core", "warehouse", "import", str(_rows_file(tmp_path / "load.csv"))],
                         cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
        subprocess.Popen([sys.executable, "-m", "core", "calibrate", "--probe", "--model", str(config), "--methods",
                          "fft,lora", "--device", "cpu", "--steps", "1", "--seq-len", "16"],
                         cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
    ]  # fmt: skip
    for path in PAGES:  # while they write
        for url in urls:
            _open(page, f"{url}/{path}")
    outputs = [w.communicate(timeout=300) for w in writers]
    assert [w.returncode for w in writers] == [0, 0], outputs
    assert f"imported {ROWS_ADDED} rows from load.csv" in outputs[0][0]
    assert "stored in the warehouse" in outputs[1][0]  # the CLI run landed in the warehouse itself
    after = _counts(env["TUNEWISE_WAREHOUSE"])
    assert after[:3] == (results + ROWS_ADDED, pair_count + PAIRS_ADDED, ranked + PAIRS_ADDED)
    assert after[3] > measurements
    for url in urls:  # both servers show the new data
        for path in ("", "memory"):
            _open(page, f"{url}/{path}")
        _open(page, f"{url}/evidence", f"{after[0]:,} results (one reported score each")
        page.get_by_role("tab", name="Calibration runs").click()
        page.get_by_text("memory measurements, newest first").wait_for()
        assert f"and {after[3]} memory measurements" in page.inner_text('[data-testid="stMain"]')
        _open(page, f"{url}/guide?guide_task=classification", f"{after[2]} pairs.")
        _open(page, f"{url}/calibrate")
        page.get_by_text("Recalibration: every measurement stored so far, by scope").click()
        page.locator('[data-testid="stDataFrame"]').first.wait_for()
        assert "No calibration measurements yet." not in page.inner_text('[data-testid="stMain"]')
