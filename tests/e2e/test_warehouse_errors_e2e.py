"""Browser: a page whose warehouse call raises shows one line saying what to do, and no traceback.

The server reads a published Parquet version with damaged files (real DuckDB errors, not mocks): first a
`results` file DuckDB cannot even open (a known problem, shown as its own line), then `task_types` with
unreadable data pages behind a valid footer (an unexpected error on the first query: one generic line with a
reference). Tracebacks must reach the server log and nothing of them the browser.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from playwright.sync_api import Page

from .conftest import ROOT
from .test_warehouse_many_users_e2e import app_env, streamlit_server


def _damage_pages(path: Path) -> None:
    """Overwrite a Parquet file's column data but keep its footer: it opens, and fails when read."""
    data = bytearray(path.read_bytes())
    footer = int.from_bytes(data[-8:-4], "little")
    end = len(data) - 8 - footer
    data[4:end] = b"\xff" * (end - 4)
    path.write_bytes(bytes(data))


def _one_error_line(page: Page, url: str) -> str:
    page.goto(url)
    alert = page.get_by_test_id("stAlertContentError")
    alert.first.wait_for()
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')")
    assert alert.count() == 1
    (message,) = alert.all_inner_texts()
    assert len(message.strip().splitlines()) == 1
    assert page.locator('[data-testid="stException"]').count() == 0
    assert "Traceback" not in page.inner_text("body")
    return message


def test_a_failing_core_call_shows_one_line_and_no_traceback(page: Page, tmp_path: Path, seeded_file: Path) -> None:
    root = tmp_path / "shared"
    published = subprocess.run([sys.executable, "-m", "core", "warehouse", "publish", str(root), "--path",
                                str(seeded_file)], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert published.returncode == 0, published.stderr
    version = root / "versions" / (root / "CURRENT").read_text().strip()
    results = version / "results" / "data.parquet"
    good = results.read_bytes()
    results.write_bytes(b"PAR1 this is not a parquet file")
    env = {**app_env(tmp_path), "TUNEWISE_PARQUET_ROOT": str(root)}
    log = tmp_path / "streamlit.log"
    with streamlit_server(env, log) as url:
        known = _one_error_line(page, f"{url}/evidence")
        assert known.startswith("cannot read the Parquet warehouse at") and "data.parquet" in known
        results.write_bytes(good)
        _damage_pages(version / "task_types" / "data.parquet")
        for path in ("evidence", ""):
            message = _one_error_line(page, f"{url}/{path}")
            assert message.startswith("This page stopped on an unexpected error (")
            assert "reload it, and if it happens again give the operator reference" in message
            assert ".py" not in message
    server_log = log.read_text()
    assert "Traceback" in server_log and "(reference " in server_log  # the details stay server-side
