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
