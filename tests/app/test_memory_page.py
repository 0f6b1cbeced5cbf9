"""Memory page: renders with its assumptions visible, QLoRA lowers the bar, ZeRO-3 across GPUs makes FFT fit,
methods compare at equal settings (registry defaults) and say where they differ, no time or cost for what does not
fit, and every input (an uploaded config included) survives a link into a new session exactly."""

import json
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from app.charts import CAPACITY_COLOR, method_color
from core import catalogue
from core.registry import METHODS
from core.uploads import store_config

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "memory.py")
SMALL = "HuggingFaceTB/SmolLM2-135M"


@pytest.fixture
def at(app_env: Path) -> AppTest:
    test = AppTest.from_file(PAGE, default_timeout=240)
    test.query_params["model"] = "meta-llama/Llama-2-7b-hf"
    return test


def _small(**params: str) -> AppTest:
    test = AppTest.from_file(PAGE, default_timeout=240)
    test.query_params.update({"model": SMALL, "method": "lora,qlora"} | params)
    return test


def _table(at: AppTest) -> pd.DataFrame:
    return at.dataframe[0].value.set_index("method")


def _params(at: AppTest) -> dict[str, str]:
    return {k: v[0] if isinstance(v, list) else v for k, v in at.query_params.items()}


def test_default_render(at: AppTest) -> None:
    at.run()
    assert not at.exception and not at.error
    assert "methods fit on 1 x A100-80GB" in at.subheader[0].value
    assert len(at.get("vega_lite_chart")) == 1
    chart = at.get("vega_lite_chart")[0].proto
    data = b"".join(d.data.data for d in chart.datasets)
    assert CAPACITY_COLOR in chart.spec and b"NVIDIA A100 80GB SXM: 79.1 GiB" in data  # red, labelled capacity
    assert method_color("lora") in chart.spec and b" GiB" in data  # each bar's peak, in the method's colour
    assert "python -m core estimate --model meta-llama/Llama-2-7b-hf" in at.code[0].value
    assumptions = next(c.value for c in at.caption if c.value.startswith("Assumptions:"))
    assert "PEFT methods on bf16 base weights with fp32 adapters" in assumptions
    assert "Full fine-tuning in bf16-mixed with fp32 master weights" in assumptions
    assert "micro-batch 4 x 1,024 tokens per GPU, 1 per optimizer step, gradient checkpointing off" in assumptions


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
    row = _table(at).iloc[0]
    assert row["fits"] == "no"
    assert row["hours"].startswith("does not fit") and row["cost ($)"].startswith("does not fit")
    assert "ZeRO-3" in row["fewest GPUs"] or "FSDP" in row["fewest GPUs"]
    assert not _table(at).isna().any().any()
    assert any(h.value == "What would make it fit" for h in at.subheader)
    advice = at.dataframe[1].value  # the method table, then FFT's changes
    assert len(advice) >= 1 and not advice.isna().any().any()
    assert (advice["peak, device (GiB)"] <= advice["GPU memory (GiB)"]).all()  # every change offered fits
    at.number_input(key="gpus").set_value(4).run()
    at.selectbox(key="sharding").set_value("zero3").run()
    assert not at.error
    assert _table(at)["fits"].iloc[0] == "yes"
    assert float(_table(at)["hours"].iloc[0]) > 0
    assert not any(h.value == "What would make it fit" for h in at.subheader)
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


def test_bad_link_values_warn_and_name_what_was_used(app_env: Path) -> None:
    at = _small(batch="100000", epochs="abc", gpu="GPU-9000").run()
    assert not at.exception and not at.error
    texts = [w.value for w in at.warning]
    assert "Link value batch=100000 is out of range (1-4096): using 4" in texts
    assert "Link value epochs=abc is not a number: using 3.0" in texts
    assert any(t.startswith("Link value gpu=GPU-9000 is not one of") for t in texts)
    assert at.number_input(key="batch").value == 4


def test_equal_settings_by_default_from_the_registry(app_env: Path) -> None:
    at = _small(targets="all-linear").run()
    assert not at.exception and not at.error
    lora_rank = METHODS["lora"].defaults["rank"]
    assert at.number_input(key="rank").value == lora_rank
    labels = list(_table(at).index)
    assert all(f"r={lora_rank}" in label for label in labels)
    note = next(c.value for c in at.caption if c.value.startswith("Every method is compared at the same settings"))
    assert f"Rank {METHODS['qlora'].defaults['rank']}" in note  # QLoRA's own default named
    assert not at.warning  # equal targets too: nothing differs
    at.radio(key="knob_mode").set_value("own").run()
    own = list(_table(at).index)
    assert f"r={METHODS['qlora'].defaults['rank']}" in own[1]
    assert "compared at different settings" in at.warning[0].value and "Rank:" in at.warning[0].value


def test_no_cli_flags_or_server_paths_in_messages(app_env: Path, tmp_path: Path) -> None:
    at = _small(seq="9000").run()
    assert not at.exception
    shown = [w.value for w in at.warning] + [e.value for e in at.error]
    assert any("Sequence length (tokens)" in text for text in shown)
    assert not any("--seq-len" in text or str(tmp_path) in text for text in shown)


def test_every_input_survives_a_link(app_env: Path) -> None:
    at = _small().run()
    assert not at.exception and not at.error
    changes = {
        "method": ["lora", "dora"], "gpu": "H100-80GB", "batch": 2, "accumulation": 4, "seq": 512, "gpus": 2,
        "sharding": "zero2",
        "offload": "optimizer", "precision": "fp16-mixed", "optimizer": "adamw-8bit", "attention": "eager",
        "quantization": "none", "checkpointing": True, "reentrant": True, "train_tokens": 2_000_000, "epochs": 1.5,
        "mfu": 0.3, "gpu_price": 2.5, "rank": 4, "alpha": 16.0, "targets": "q_proj,k_proj,v_proj", "dropout": 0.05,
        "adapter_dtype": "bf16",
    }
    for key, value in changes.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    at.toggle(key="compare_gpus").set_value(True).run()
    at.selectbox(key="compare_method").set_value("dora").run()
    changes |= {"compare_gpus": True, "compare_method": "dora"}
    link = _params(at)
    again = AppTest.from_file(PAGE, default_timeout=240)
    again.query_params.update(link)
    again.run()
    assert not again.exception and not again.error
    assert [w.value for w in again.warning] == [w.value for w in at.warning]  # no link value was replaced
    assert not any(w.value.startswith("Link value") for w in again.warning)
    for key, value in changes.items():
        assert again.session_state[key] == value, key
    pd.testing.assert_frame_equal(_table(again), _table(at))
    pd.testing.assert_frame_equal(again.dataframe[1].value, at.dataframe[1].value)
    assert again.code[0].value == at.code[0].value


def _assumptions(at: AppTest) -> str:
    return next(c.value for c in at.caption if c.value.startswith("Assumptions:"))


def test_reentrant_checkpointing_round_trips_through_a_link(app_env: Path) -> None:
    plain = _small(method="lora", checkpointing="true").run()
    at = _small(method="lora", checkpointing="true", reentrant="true").run()
    assert not at.exception and not at.error
    toggle = at.toggle(key="reentrant")
    assert toggle.value and not toggle.disabled and not plain.toggle(key="reentrant").value
    assert "--gradient-checkpointing --reentrant-checkpointing" in at.code[0].value
    assert "--reentrant-checkpointing" not in plain.code[0].value
    assert "gradient checkpointing on (reentrant," in _assumptions(at)
    assert "gradient checkpointing on (non-reentrant," in _assumptions(plain)
    assert _table(at)["peak, device (GiB)"].iloc[0] >= _table(plain)["peak, device (GiB)"].iloc[0]
    link = _params(at)
    assert link["reentrant"] == "True"
    again = AppTest.from_file(PAGE, default_timeout=240)
    again.query_params.update(link)
    again.run()
    assert not again.exception and not again.error
    assert again.toggle(key="reentrant").value and again.code[0].value == at.code[0].value
    pd.testing.assert_frame_equal(_table(again), _table(at))
    # without checkpointing the switch is greyed out and nothing reentrant is estimated or printed
    at.toggle(key="checkpointing").set_value(False).run()
    assert not at.exception and not at.error
    assert at.toggle(key="reentrant").disabled
    assert "--reentrant-checkpointing" not in at.code[0].value
    assert "gradient checkpointing off" in _assumptions(at)


def test_uploaded_config_is_kept_and_a_link_reopens_it(app_env: Path) -> None:
    content = json.dumps(catalogue.find(SMALL).load_config()).encode()
    at = _small().run()
    catalogue_table = _table(at)
    at.file_uploader(key="model_upload").set_value(("my-config.json", content, "application/json")).run()
    assert not at.exception and not at.error
    digest = store_config(content, "my-config.json").digest
    assert at.query_params["config"] in (digest, [digest])
    assert "my-config.json" in at.info[0].value
    uploaded_table = _table(at)
    assert list(uploaded_table["peak, device (GiB)"]) == list(catalogue_table["peak, device (GiB)"])
    again = AppTest.from_file(PAGE, default_timeout=240)
    again.query_params.update(_params(at))
    again.run()
    assert not again.exception and not again.error
    assert not any(w.value.startswith("Link value") for w in again.warning)
    assert "my-config.json" in again.info[0].value
    pd.testing.assert_frame_equal(_table(again), uploaded_table)
    assert "--model my-config.json" in again.code[0].value


def test_bad_upload_and_unknown_config_link_say_what_is_wrong(app_env: Path, tmp_path: Path) -> None:
    at = _small().run()
    at.file_uploader(key="model_upload").set_value(("broken.json", b'{"model_type": ', "application/json")).run()
    assert len(at.error) == 1 and "broken.json is malformed JSON" in at.error[0].value
    assert str(tmp_path) not in at.error[0].value
    missing = _small(config="0123456789abcdef").run()
    assert not missing.exception and not missing.error
    assert missing.warning[0].value.startswith("Link value config=0123456789abcdef cannot be reopened")
    assert f"using the model {SMALL}" in missing.warning[0].value


def test_every_setup_field_is_a_cli_flag_and_a_page_input(capsys: pytest.CaptureFixture[str]) -> None:
    """The declaration (TrainingSetup's fields) reaches `estimate --help` and the Memory page: a label the engine's
    messages are translated to, and the page builds its setup with the field."""
    from dataclasses import fields

    from app.memory_inputs import FIELD_LABELS
    from core.cli import main
    from core.memory.setup import TrainingSetup

    with pytest.raises(SystemExit):
        main(["estimate", "--help"])
    help_text = capsys.readouterr().out
    page = Path(PAGE).read_text(encoding="utf-8")
    for spec in fields(TrainingSetup):
        assert "--" + spec.name.replace("_", "-") in help_text, spec.name
        assert spec.name in FIELD_LABELS and f"{spec.name}=" in page, spec.name
