"""Browser: a Decide link with its assumptions (epochs, micro-batch, tokens) shows them in the inputs and the
assumptions line, and where nothing fits the make-it-fit advice lists a change with its GiB figure."""

import re

from playwright.sync_api import Page, expect

from .conftest import wait_for_app


def test_decide_link_shows_assumptions_and_make_it_fit_advice(page: Page, app_url: str) -> None:
    page.goto(f"{app_url}/?model=Qwen/Qwen2.5-0.5B&task=code&gpu=T4&epochs=5&batch=64&seq=8192")
    # a first visit traces each candidate's training step (then the disk cache answers): wait for the answer
    page.get_by_text("Nothing fits 1 x T4").wait_for(timeout=900_000)
    wait_for_app(page)
    assert page.get_by_label("Epochs", exact=True).input_value() == "5.00"
    assert page.get_by_label("Micro-batch per GPU", exact=True).input_value() == "64"
    assert page.get_by_label("Tokens per example (sequence length)", exact=True).input_value() == "8192"
    expect(page.get_by_text(re.compile(r"Assumptions: micro-batch 64 x 8192 tokens per GPU, 5 epochs"))).to_be_visible()
    advice = page.get_by_text(re.compile(r"accumulation steps.*: \d+\.\d GiB per GPU of 14\.7 GiB")).first
    expect(advice).to_be_visible()
    assert "epochs=5" in page.url and "batch=64" in page.url
