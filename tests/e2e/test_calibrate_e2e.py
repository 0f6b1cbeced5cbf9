"""Browser: start a CPU probe on the Calibrate page and see its measured-vs-predicted table."""

from pathlib import Path
from urllib.parse import quote

from playwright.sync_api import Page

from core.memory.tiny import tiny_model

from .conftest import wait_for_app

RUN_TIMEOUT_MS = 300_000  # an upper bound against hanging on a loaded machine, not a performance threshold


def test_cpu_probe_in_browser(page: Page, app_url: str, tmp_path: Path) -> None:
    config = tmp_path / "tiny-llama.json"
    config.write_text(tiny_model("llama").config_json, encoding="utf-8")
    page.goto(f"{app_url}/calibrate?model={quote(str(config))}&methods=fft,lora,ia3,prompt_tuning&device=cpu")
    wait_for_app(page)
    assert "Calibrate" in page.inner_text("h1")
    page.get_by_role("button", name="Start calibration").click()
    page.get_by_text("Measured vs predicted").wait_for(timeout=RUN_TIMEOUT_MS)
    table = page.locator('[data-testid="stDataFrame"] table').first
    table.wait_for(state="attached")
    text = table.inner_text()
    for label in ("Full fine-tuning", "LoRA r=8", "IA3", "Prompt tuning 20 tokens"):
        assert label in text
    assert "Stored in the warehouse" in page.inner_text('[data-testid="stMain"]')
