"""Guide page: renders the theorems and evidence charts; the task type choice changes the charts."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "guide.py")


def test_guide_renders_and_follows_the_task(app_env: Path) -> None:
    at = AppTest.from_file(PAGE, default_timeout=600)
    at.query_params["model"] = "Qwen/Qwen2.5-0.5B"  # the comparison's traces are the next test's
    at.run()
    assert not at.exception
    assert "strict subset of FFT" in " ".join(m.value for m in at.markdown)
    code_captions = [c.value for c in at.caption if "pairs." in c.value]
    at.selectbox(key="guide_task").set_value("classification").run()
    assert [c.value for c in at.caption if "pairs." in c.value] != code_captions
    assert at.query_params["guide_task"] in ("classification", ["classification"])
    # each chart's points as a table too, as many rows as the caption's pairs, the gap's sign kept
    tables = [d.value for d in at.dataframe if "PEFT minus FFT (points)" in d.value.columns]
    counts = [int(c.value.split(" pairs.")[0]) for c in at.caption if " pairs." in c.value]
    assert [len(t) for t in tables] == counts
    assert tables[0].columns.tolist() == ["method", "rank r", "PEFT minus FFT (points)", "paper", "task"]


def test_comparison_table_comes_from_the_recommender(app_env: Path) -> None:
    at = AppTest.from_file(PAGE, default_timeout=600)
    at.query_params["model"] = "Qwen/Qwen2.5-0.5B"
    at.run()
    assert not at.exception and not at.error
    table = at.dataframe[-1].value
    lora, qlora = "LoRA r=8", "QLoRA (4-bit NF4 base + LoRA) r=8"  # peft's default modules, as on Memory
    assert set(table.columns) == {"Full fine-tuning", lora, qlora}  # LoRA and QLoRA at equal settings
    assert table.loc["Accuracy on code (gap to FFT, 80% interval)", "Full fine-tuning"] == "the reference"
    memory = table.loc["Memory per GPU (device peak)"]
    assert memory.str.endswith("GiB").all()
    # at equal settings on a 0.5B model with a 151k-token tied embedding, peft's prepare_model_for_kbit_training
    # (fp32 embedding and residual stream) outweighs what the 4-bit base saves: QLoRA needs more than LoRA here
    assert float(memory[qlora].split()[0]) > float(memory[lora].split()[0])
    hours = table.loc["Training time per task (1 x A100-80GB)"]
    assert hours.str.contains("h|min").all()
    accuracy = table.loc["Accuracy on code (gap to FFT, 80% interval)", lora]
    assert "P(FFT ahead by > 1)" in accuracy and "LoRA pairs on code" in accuracy
    assert any("the recommender's own estimate" in c.value and "micro-batch 4 x 1024 tokens" in c.value
               for c in at.caption)
    assert any("papers from the others" in c.value for c in at.caption)
