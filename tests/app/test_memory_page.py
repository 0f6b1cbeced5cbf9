"""Memory page: renders, QLoRA lowers the bar, ZeRO-3 across GPUs makes FFT fit, links restore the view."""

from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "memory.py")


@pytest.fixture
def at(app_env: Path) -> AppTest:
    test = AppTest.from_file(PAGE, default_timeout=240)
    test.query_params["model"] = "meta-llama/Llama-2-7b-hf"
    return test


def _table(at: AppTest) -> pd.DataFrame:
    return at.dataframe[0].value.set_index("method")


def test_default_render(at: AppTest) -> None:
    at.run()
    assert not at.exception and not at.error
    assert "methods fit on 1 x A100-80GB" in at.subheader[0].value
    assert len(at.get("vega_lite_chart")) == 1
    assert "python -m core estimate --model meta-llama/Llama-2-7b-hf" in at.code[0].value


def test_qlora_lowers_the_memory_bar(at: AppTest) -> None:
    at.query_params["batch"] = "1"
    at.query_params["seq"] = "512"
    at.query_params["method"] = "lora"
    at.run()
    lora = _table(at)["peak, device (GiB)"].iloc[0]
    at.multiselect(key="method").set_value(["qlora"]).run()
    qlora = _table(at)["peak, device (GiB)"].iloc[0]
    assert qlora < lora


def test_zero3_across_gpus_makes_fft_fit(at: AppTest) -> None:
    at.query_params["method"] = "fft"
    at.run()
    assert _table(at)["fits"].iloc[0] == "no"
    at.number_input(key="gpus").set_value(4).run()
    at.selectbox(key="sharding").set_value("zero3").run()
    assert not at.error
    assert _table(at)["fits"].iloc[0] == "yes"
    assert at.query_params["sharding"] in ("zero3", ["zero3"])


def test_link_restores_the_view(at: AppTest) -> None:
    at.query_params.update({"method": "lora,dora", "gpu": "RTX-4090", "batch": "2", "seq": "256"})
    at.run()
    assert at.multiselect(key="method").value == ["lora", "dora"]
    assert at.selectbox(key="gpu").value == "RTX-4090"
    assert (at.number_input(key="batch").value, at.number_input(key="seq").value) == (2, 256)


def test_bad_input_shows_one_error(at: AppTest) -> None:
    at.query_params["method"] = "lora"
    at.run()
    at.text_input(key="targets").set_value("query_proj").run()
    assert len(at.error) == 1 and "not found in the model" in at.error[0].value
