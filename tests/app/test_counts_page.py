"""The counts page renders a row per registry method and reports bad models with st.error."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

from core.registry import method_ids

MAIN = str(Path(__file__).resolve().parents[2] / "app" / "main.py")


def test_counts_page_lists_every_method() -> None:
    at = AppTest.from_file(MAIN, default_timeout=120).run()
    assert not at.exception
    table = at.dataframe[0].value
    assert len(table) == len(method_ids())
    fft = table[table["method"] == "Full fine-tuning"].iloc[0]
    assert fft["trainable"] == 6_738_415_616


def test_rank_changes_lora_count() -> None:
    at = AppTest.from_file(MAIN, default_timeout=120).run()
    before = at.dataframe[0].value.set_index("method")["trainable"]
    at.number_input(key="rank").set_value(16).run()
    after = at.dataframe[0].value.set_index("method")["trainable"]
    assert after["LoRA r=16"] == 2 * before["LoRA r=8"]
