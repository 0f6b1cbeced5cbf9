"""Data loading, splitting and batching; the run folder's concurrent-read guarantees."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.calibrate.data import IGNORE_INDEX, ByteTokenizer, Example, batch, load_dataset, split, subset
from core.calibrate.runfolder import RunFolder, runs_dir
from core.errors import InputError

from .conftest import classification_csv, generation_jsonl


def test_split_is_stratified_and_subsets_count_per_class(tmp_path: Path) -> None:
    data = load_dataset(classification_csv(tmp_path / "d.csv", per_class=10, labels=("a", "b", "c")))
    assert data.kind == "classification" and data.labels == ("a", "b", "c")
    parts = split(data, 0.2, seed=0)
    assert sorted(e.second for e in parts.eval) == ["a", "a", "b", "b", "c", "c"]
    assert split(data, 0.2, seed=0) == parts  # fixed by the seed
    chosen = subset(data, parts.train, 3)
    assert [e.second for e in chosen].count("b") == 3 and len(chosen) == 9
    with pytest.raises(InputError, match="exceeds the 8 training examples of label 'a'"):
        subset(data, parts.train, 9)


def test_a_class_with_one_example_cannot_be_held_out(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("text,label\nx,a\ny,a\nz,b\n", encoding="utf-8")
    with pytest.raises(InputError, match="label 'b' has 1 example"):
        split(load_dataset(path), 0.2, seed=0)


def test_generation_batch_masks_the_prompt(tmp_path: Path) -> None:
    data = load_dataset(generation_jsonl(tmp_path / "g.jsonl", rows=3))
    tokenizer = ByteTokenizer(64, pad_id=0, eos_id=1)
    out = batch(data.examples[:2], tokenizer, kind="generation", task="causal-lm", seq_len=8, labels=())
    assert out["input_ids"].shape[1] == 8
    first = data.examples[0]
    completion = len(first.second.encode()) + 1
    labels = out["labels"][0].tolist()
    assert labels[: 8 - completion] == [IGNORE_INDEX] * (8 - completion)  # the prompt's kept end is not scored
    assert labels[-1] == tokenizer.eos_id


def test_byte_tokenizer_never_emits_pad_or_eos() -> None:
    tokenizer = ByteTokenizer(5, pad_id=3, eos_id=0)
    ids = tokenizer.encode("".join(chr(i) for i in range(32, 127)))
    assert set(ids) <= {1, 2, 4}
    out = batch([Example("hi", "x"), Example("hello", "y")], tokenizer, kind="classification", task="seq-cls",
                seq_len=4, labels=("x", "y"))
    assert out["labels"].tolist() == [0, 1]
    assert out["attention_mask"].tolist() == [[1, 1, 0, 0], [1, 1, 1, 1]]


def test_status_is_replaced_atomically_and_partial_lines_wait(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "r").create()
    folder.set_status("running", "probe")
    folder.event("step", step=1)
    with folder.file("progress.jsonl").open("a", encoding="utf-8") as handle:
        handle.write('{"event": "step", "st')  # a line the runner is still writing
    assert [e["step"] for e in folder.events()] == [1]
    assert folder.status().state == "running"  # type: ignore[union-attr]
    assert not list(folder.path.glob(".*tmp"))


def test_runs_dir_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNEWISE_RUNS_DIR", str(tmp_path / "elsewhere"))
    assert runs_dir() == tmp_path / "elsewhere"


def test_a_spec_file_round_trips(tmp_path: Path) -> None:
    from core.calibrate.spec import CalibrationSpec, spec_from_form

    data = classification_csv(tmp_path / "d.csv", per_class=10)
    spec = spec_from_form(model="smollm2-mini", methods=["fft", "lora", "ia3"], mode="learn", device="cpu", steps=2,
                          batch_size=2, seq_len=32, precision="fp32", data=data, data_sizes="2, 4", init="random")
    spec.write(tmp_path / "spec.json")
    again = CalibrationSpec.read(tmp_path / "spec.json")
    assert again == spec and again.methods == spec.methods and again.data_sizes == (2, 4)
    assert again.dataset is not None and again.dataset.labels == spec.dataset.labels  # type: ignore[union-attr]
    (tmp_path / "bad.json").write_text('{"version": 1, "colour": "red"}')
    with pytest.raises(InputError, match="bad.json has unknown settings colour; remove them"):
        CalibrationSpec.read(tmp_path / "bad.json")


def test_messages_in_the_pages_words() -> None:
    from core.calibrate.report import plain

    assert plain("--steps 0: the budget must be at least 1 step") == (
        "Steps per method 0: the budget must be at least 1 step")
    assert plain("--learn needs --data FILE: CSV or JSONL") == "Learn mode needs a data file: CSV or JSONL"
    assert plain("no such file: /root/.local/share/tunewise/runs/x/reviews.csv") == "no such file: reviews.csv"


def test_progress_counts_per_run() -> None:
    from core.calibrate.report import progress

    events = [{"event": "start", "methods": ["fft", "lora", "ia3", "prompt_tuning"], "data_sizes": []},
              {"event": "method_done", "method": "fft"},
              {"event": "step", "method": "lora", "step": 1, "total_steps": 2, "loss": 3.5}]
    where = progress(events)
    assert where.text == "1 of 4 methods done; LoRA step 1, training loss 3.500"
    assert where.share == pytest.approx(1.5 / 4)
    sized = progress([{**events[0], "methods": ["fft", "lora"], "data_sizes": [5, 20]}])
    assert sized.text == "0 of 4 trainings (method x data size) done" and sized.share == 0
