"""Browser: the Evidence page explains results vs pairs, and the claims' verdicts are on screen without scrolling."""

from playwright.sync_api import Page, expect

from .conftest import wait_for_app


def test_claims_verdicts_visible_and_pairs_explained(page: Page, app_url: str) -> None:
    page.goto(f"{app_url}/evidence")
    wait_for_app(page)
    explained = page.get_by_text("matched pairs (a PEFT result beside the FFT result").first
    explained.wait_for()  # a cold start fits the gap model first
    expect(explained).to_be_visible()
    assert "one reported score each" in explained.inner_text()
    page.get_by_role("tab", name="Claims vs evidence").click()
    panel = page.get_by_role("tabpanel", name="Claims vs evidence")
    expect(panel.get_by_text("Verdicts:")).to_be_in_viewport()
    grid = panel.locator('[data-testid="stDataFrame"]')
    expect(grid).to_be_in_viewport()
    # the grid renders only the columns on screen: the verdict must be among them, beside its claim
    headers = grid.locator("table th")
    expect(headers.nth(1)).to_have_text("verdict")
    shown = [headers.nth(i).inner_text() for i in range(headers.count())]
    assert shown[:3] == ["⚑", "verdict", "claim"] and "claimed gap (points)" in shown
    cells = grid.locator("table").inner_text()
    assert "agrees" in cells and "S1 LoRA minus FFT" in cells and "FFT minus" not in cells
