"""Guide page: renders the theorems and evidence charts; the task type choice changes the charts."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "guide.py")


def test_guide_renders_and_follows_the_task(app_env: Path) -> None:
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception
    assert "strict subset of FFT" in " ".join(m.value for m in at.markdown)
    code_captions = [c.value for c in at.caption if "pairs." in c.value]
    at.selectbox(key="guide_task").set_value("classification").run()
    assert [c.value for c in at.caption if "pairs." in c.value] != code_captions
    assert at.query_params["guide_task"] in ("classification", ["classification"])


def test_comparison_table_uses_tunewise_numbers(app_env: Path) -> None:
    at = AppTest.from_file(PAGE, default_timeout=240)
    at.query_params["model"] = "Qwen/Qwen2.5-0.5B"
    at.run()
    assert not at.exception and not at.error
    table = at.dataframe[-1].value
    assert list(table.columns) == ["Full fine-tuning", "LoRA r=8", "QLoRA (4-bit NF4 base + LoRA) r=64 (all-linear)"]
    assert table.loc["Accuracy on code (gap to FFT, 80% interval)", "Full fine-tuning"] == "the reference"
    assert "GiB" in table.loc["Memory per GPU (peak)", "LoRA r=8"]
    lora = table.loc["Accuracy on code (gap to FFT, 80% interval)", "LoRA r=8"]
    assert "P(FFT ahead by > 1)" in lora and "LoRA pairs on code" in lora
    assert any("papers from the others" in c.value for c in at.caption)
