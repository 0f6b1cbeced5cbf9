"""Browser: a CPU probe on the Calibrate page, one run at a time across sessions, stored, and there after a reload."""

from pathlib import Path
from urllib.parse import quote

from playwright.sync_api import Browser, Page, expect

from tests.support.tiny import tiny_model

from .conftest import wait_for_app

RUN_TIMEOUT_MS = 300_000  # an upper bound against hanging on a loaded machine, not a performance threshold


def test_cpu_probe_in_browser(page: Page, browser: Browser, app_url: str, tmp_path: Path) -> None:
    config = tmp_path / "tiny-llama.json"
    config.write_text(tiny_model("llama").config_json, encoding="utf-8")
    url = f"{app_url}/calibrate?model={quote(str(config))}&methods=fft,lora,ia3,prompt_tuning&device=cpu"
    page.goto(url)
    wait_for_app(page)
    assert "Calibrate" in page.inner_text("h1")
    start = page.get_by_role("button", name="Start calibration")
    start.click()
    try:
        expect(start).to_be_disabled(timeout=30_000)  # while it runs
    except AssertionError:
        # on a loaded machine the first click can land in a rerun the page's link settings set off, and be lost;
        # a second click starts the run (a run already going would refuse it and keep the button disabled)
        start.click()
        expect(start).to_be_disabled(timeout=90_000)
    other = browser.new_context().new_page()  # a second user: same machine, same live run
    other.goto(url)
    expect(other.get_by_text("a calibration run is already running (started")).to_be_visible(timeout=90_000)
    expect(other.get_by_role("button", name="Start calibration")).to_be_disabled(timeout=90_000)
    other.context.close()
    page.get_by_text("Measured vs predicted").wait_for(timeout=RUN_TIMEOUT_MS)
    main = page.locator('[data-testid="stMain"]')
    expect(main.get_by_text("Stored in the warehouse: 1 run, 4 methods, 12 measurements, 0 results")).to_be_visible()
    expect(start).to_be_enabled(timeout=90_000)
    page.reload()  # a new session: the link's run id finds the finished run
    wait_for_app(page)
    page.get_by_text("Measured vs predicted").wait_for()
    table = page.locator('[data-testid="stDataFrame"] table').first
    table.wait_for(state="attached")
    text = table.inner_text()
    for label in ("Full fine-tuning", "LoRA r=8", "IA3", "Prompt tuning 20 tokens"):
        assert label in text
    expect(main.get_by_text("Activation model check")).to_be_visible()
