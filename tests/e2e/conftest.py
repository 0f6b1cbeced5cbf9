"""Real-browser fixtures: `streamlit run` on a free port, headless Debian Chromium driven by Playwright.

Screenshots of every e2e test land in artifacts/e2e/ (the CI keeps them as test artifacts).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "e2e"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(url: str, process: subprocess.Popen, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited early with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not become healthy in {timeout_s} s")


@pytest.fixture(scope="session")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    data = tmp_path_factory.mktemp("e2e-data")
    # the run's shared trace cache (as tests/conftest.py sets it per test; session fixtures run before that)
    traces = tmp_path_factory.getbasetemp().parent / "trace-cache"
    env = {**os.environ, "TUNEWISE_WAREHOUSE": str(data / "warehouse.duckdb"), "TUNEWISE_RUNS_DIR": str(data / "runs"),
           "HF_HUB_OFFLINE": "1", "TUNEWISE_CACHE_DIR": str(traces), "TUNEWISE_TRACE_WORKERS": "1"}
    log = (data / "streamlit.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app" / "main.py"), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: apt-get install -y chromium (the README's test command does)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(90_000)
    yield page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()


def wait_for_app(page: Page, timeout_ms: float = 300_000) -> None:
    """Wait until Streamlit has finished the current run: its script state is back to `notRunning` (what the
    frontend sets on the app root once the run's last element arrived) and no 'running' status widget shows. The
    wait is long because a page's first run on a cold server traces its candidates' training steps."""
    page.wait_for_selector('[data-testid="stApp"]')
    page.wait_for_function(
        "() => document.querySelector('[data-testid=\"stApp\"]').getAttribute('data-test-script-state')"
        " === 'notRunning' && !document.querySelector('[data-testid=\"stStatusWidget\"]')",
        timeout=timeout_ms,
    )
