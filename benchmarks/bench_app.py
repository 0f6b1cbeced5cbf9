"""Dashboard speed: server-side rerun of the memory page after a slider change (Llama-2-70B, all methods; goal
under 300 ms warm) and time to first render of each page in headless Chromium (goal under 3 s warm).

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
from pathlib import Path

from playwright.sync_api import sync_playwright
from streamlit.testing.v1 import AppTest

from core.registry import method_ids

ROOT = Path(__file__).resolve().parents[1]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
PAGES = {"decide": "/", "memory": "/memory", "evidence": "/evidence", "calibrate": "/calibrate", "guide": "/guide"}


def rerun_ms(repeats: int = 5) -> tuple[float, float]:
    """(cold first run, median warm rerun after a batch change) in ms."""
    at = AppTest.from_file(str(ROOT / "pages" / "memory.py"), default_timeout=600)
    at.query_params.update({"model": "meta-llama/Llama-2-70b-hf", "method": ",".join(method_ids())})
    t = time.perf_counter()
    at.run()
    cold = 1000 * (time.perf_counter() - t)
    times = []
    for batch in range(2, 2 + repeats):
        at.number_input(key="batch").set_value(batch)
        t = time.perf_counter()
        at.run()
        times.append(1000 * (time.perf_counter() - t))
    assert not at.exception, at.exception
    return cold, statistics.median(times)


def first_render_s(repeats: int = 3) -> dict[str, float]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app" / "main.py"), "--server.port", str(port),
         "--server.headless", "true"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=os.environ.copy(),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        results: dict[str, float] = {}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
            page = browser.new_page()
            page.set_default_timeout(300_000)
            for name, path in PAGES.items():
                samples = []
                for attempt in range(repeats + 1):  # the first visit warms the server's caches
                    t = time.perf_counter()
                    page.goto(url + path)
                    page.wait_for_selector("h1")
                    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')")
                    if attempt:
                        samples.append(time.perf_counter() - t)
                results[name] = statistics.median(samples)
            browser.close()
        return results
    finally:
        server.terminate()
        server.wait(timeout=20)


def main() -> None:
    with tempfile.TemporaryDirectory() as data:
        os.environ["TUNEWISE_WAREHOUSE"] = str(Path(data) / "warehouse.duckdb")
        os.environ["TUNEWISE_RUNS_DIR"] = str(Path(data) / "runs")
        cold, warm = rerun_ms()
        print("| memory page, Llama-2-70B, all methods | ms |")
        print("|---|---|")
        print(f"| first run (cold caches) | {cold:.0f} |")
        print(f"| rerun after a batch change (median of 5) | {warm:.0f} |")
        print()
        print("| page, headless Chromium, warm | seconds to first render (median of 3) |")
        print("|---|---|")
        for name, seconds in first_render_s().items():
            print(f"| {name} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
