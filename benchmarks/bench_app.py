"""Dashboard speed in headless Chromium (Playwright): what a user waits for, measured in the browser.

- cold start: a freshly started server (warehouse already built, traced profiles in the disk cache as a running
  deployment has them), first visit: seconds to the first rendered heading (the start-up skeleton) and to the
  finished page; goal under 5 s to the first render.
- warm page switch: clicking each page in the sidebar once every page has been visited (median of 3); goal 1 s.
- rerun after a widget change: the Memory page's micro-batch changed (median of 3); goal 1 s.

"Finished" is Streamlit's own script state on the page (`data-test-script-state` back to `notRunning` after a run
was seen), so a run that streams its elements for a while counts until its last element.

Run: python benchmarks/bench_app.py   (needs Debian's chromium at /usr/bin/chromium)
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
# a round of switches that never clicks the page already shown (it opens on Decide, the default page)
ORDER = ("Memory fit", "Evidence", "Calibrate", "Guide", "Decide")
REPEATS = 3
TIMEOUT_MS = 1_800_000  # the unmeasured first pass may trace every default method cold
_WATCH = """() => {
  window.__ran = false;
  const app = document.querySelector('[data-testid="stApp"]');
  if (window.__watch) window.__watch.disconnect();
  window.__watch = new MutationObserver(() => {
    if (app.getAttribute('data-test-script-state') === 'running') window.__ran = true;
  });
  window.__watch.observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
}"""
_FINISHED = """() => window.__ran && document.querySelector('[data-testid="stApp"]')
  .getAttribute('data-test-script-state') === 'notRunning'"""


@contextmanager
def server(env: dict[str, str]) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app" / "main.py"), "--server.port", str(port),
         "--server.headless", "true"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(480):
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
                break
            except OSError:
                time.sleep(0.25)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def timed(page: Page, action: Callable[[], None]) -> float:
    """Seconds from `action` until the script run it started has finished."""
    page.evaluate(_WATCH)
    began = time.perf_counter()
    action()
    page.wait_for_function(_FINISHED, timeout=TIMEOUT_MS, polling=20)
    return time.perf_counter() - began


def first_visit(page: Page, url: str) -> tuple[float, float]:
    """(seconds to the first heading, seconds to the finished page) of a new session."""
    began = time.perf_counter()
    page.goto(url)
    page.wait_for_selector("h1", timeout=TIMEOUT_MS)
    heading = time.perf_counter() - began
    page.wait_for_function("() => document.querySelector('[data-testid=\"stApp\"]')"
                           ".getAttribute('data-test-script-state') === 'notRunning'", timeout=TIMEOUT_MS, polling=20)
    return heading, time.perf_counter() - began


def switch(page: Page, link: str) -> float:
    return timed(page, lambda: page.get_by_test_id("stSidebarNav").get_by_text(link, exact=True).click())


def rerun(page: Page, batch: int) -> float:
    field = page.get_by_label("Micro-batch per GPU", exact=True)

    def change() -> None:
        field.fill(str(batch))
        field.press("Enter")

    return timed(page, change)


def main() -> None:
    from core.warehouse import open_warehouse

    with tempfile.TemporaryDirectory() as data:
        env = {**os.environ, "TUNEWISE_WAREHOUSE": str(Path(data) / "warehouse.duckdb"),
               "TUNEWISE_RUNS_DIR": str(Path(data) / "runs"), "HF_HUB_OFFLINE": "1"}
        open_warehouse(env["TUNEWISE_WAREHOUSE"], read_only=False).close()  # built, as a deployment has it
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
            with server(env) as url:  # fill the disk trace cache for every page's defaults (not measured)
                page = browser.new_page()
                first_visit(page, url)
                for link in ORDER:
                    switch(page, link)
                page.close()
            with server(env) as url:
                page = browser.new_page()
                heading, finished = first_visit(page, url)
                for link in ORDER:  # every page visited once in this session, so what follows is warm
                    switch(page, link)
                samples: dict[str, list[float]] = {link: [] for link in ORDER}
                for _ in range(REPEATS):
                    for link in ORDER:
                        samples[link].append(switch(page, link))
                switches = {link: statistics.median(times) for link, times in samples.items()}
                switch(page, "Memory fit")
                reruns = [rerun(page, batch) for batch in (2, 3, 4)]
            browser.close()
    print("| dashboard, headless Chromium, 2-core CPU | seconds |")
    print("|---|---|")
    print(f"| cold start: first render (start-up skeleton) | {heading:.2f} |")
    print(f"| cold start: Decide page finished | {finished:.2f} |")
    for link, seconds in switches.items():
        print(f"| warm page switch to {link} (median of {REPEATS}) | {seconds:.2f} |")
    print(f"| Memory page rerun after a micro-batch change (median of {len(reruns)}) | "
          f"{statistics.median(reruns):.2f} |")


if __name__ == "__main__":
    main()
