"""Browser: the counts page renders its table and a shared link restores the model."""

from playwright.sync_api import Page

from .conftest import wait_for_app


def test_counts_page_in_browser(page: Page, app_url: str) -> None:
    page.goto(f"{app_url}/?model=openai-community/gpt2")
    wait_for_app(page)
    page.wait_for_selector('[data-testid="stDataFrame"] table', state="attached")
    assert "Trainable parameters" in page.inner_text("h1")
    assert page.locator('[data-testid="stSelectbox"] input').input_value() == "openai-community/gpt2"
    assert "124439808" in page.locator('[data-testid="stDataFrame"] table').inner_text()
