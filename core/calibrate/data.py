"""The user's data for the learn mode: CSV or JSONL, validated, split, tokenized and batched.

Two shapes: `text` + `label` (classification) or `prompt` + `completion` (generation). Every problem is an
InputError naming the file and, where it helps, the line. The held-out split is stratified by label and the
same for every data size, so the curves at 5, 20 and 100 examples per class are compared on one eval set.
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from core.errors import InputError

CLASSIFICATION = ("text", "label")
GENERATION = ("prompt", "completion")
SUFFIXES: tuple[str, ...] = (".csv", ".jsonl")
IGNORE_INDEX = -100  # transformers' loss ignores these label positions
TOKENIZER_FILES: tuple[str, ...] = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "spiece.model")


@dataclass(frozen=True)
class Example:
    """One row: `first` is the text or prompt, `second` the label or completion."""

    first: str
    second: str


@dataclass(frozen=True)
class Dataset:
    """A validated data file: its kind, rows and (classification) the sorted label names."""

    name: str
    kind: str
    examples: tuple[Example, ...]
    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ("classification", "generation"):
            raise ValueError(f"unknown data kind {self.kind!r}")
        if not self.examples:
            raise InputError(f"{self.name} has no rows: add examples under the header")
        if self.kind == "classification" and len(self.labels) < 2:
            only = f" ({self.labels[0]!r})" if self.labels else ""
            raise InputError(
                f"{self.name}: label has one class{only}; classification needs examples of at least 2 labels"
            )

    @property
    def task(self) -> str:
        """The skeleton task this data trains (causal LM for generation; seq2seq models override it)."""
        return "seq-cls" if self.kind == "classification" else "causal-lm"


def load_dataset(path: Path) -> Dataset:
    """Read and validate a CSV or JSONL file (see the module docstring)."""
    if not path.is_file():
        raise InputError(f"no data file at {path}: check --data")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(f"{path.name}: unknown data type {suffix or '(none)'!r}; use .csv or .jsonl")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path.name} is not UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); re-save it as UTF-8"
        ) from None
    if not text.strip():
        raise InputError(f"{path.name} is empty: it needs text+label or prompt+completion rows")
    rows = _csv_rows(path.name, text) if suffix == ".csv" else _jsonl_rows(path.name, text)
    columns = set().union(*(r.keys() for _, r in rows)) if rows else set()
    kind, pair = _kind(path.name, columns)
    examples = []
    for line, row in rows:
        values = []
        for column in pair:
            value = row.get(column)
            if isinstance(value, bool) or not isinstance(value, str | int | float) or not str(value).strip():
                raise InputError(f"{path.name} line {line}: {column} is empty or not text")
            values.append(str(value).strip() if column == "label" else str(value))
        examples.append(Example(values[0], values[1]))
    labels = tuple(sorted({e.second for e in examples})) if kind == "classification" else ()
    return Dataset(path.name, kind, tuple(examples), labels)


def _csv_rows(name: str, text: str) -> list[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        rows = [(reader.line_num, dict(r)) for r in reader if any((v or "").strip() for v in r.values() if v)]
    except csv.Error as exc:
        raise InputError(f"{name} is not valid CSV near line {reader.line_num}: {exc}") from None
    if reader.fieldnames is None:
        raise InputError(f"{name} is empty: it needs a header row")
    if not rows:
        raise InputError(f"{name} has a header but no rows: add examples under it")
    header = {h.strip() for h in reader.fieldnames}
    return [(line, {k.strip(): v for k, v in row.items() if k is not None and k.strip() in header})
            for line, row in rows]


def _jsonl_rows(name: str, text: str) -> list[tuple[int, dict[str, Any]]]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{name} line {number} is not JSON ({exc.msg}): JSONL has one object per line") from None
        if not isinstance(record, dict):
            raise InputError(f"{name} line {number} is not a JSON object: JSONL has one object per line")
        rows.append((number, record))
    if not rows:
        raise InputError(f"{name} has no rows: add one JSON object per line")
    return rows


def _kind(name: str, columns: set[str]) -> tuple[str, tuple[str, str]]:
    if set(CLASSIFICATION) <= columns:
        return "classification", CLASSIFICATION
    if set(GENERATION) <= columns:
        return "generation", GENERATION
    have = ", ".join(sorted(columns)) or "none"
    raise InputError(
        f"{name} has columns {have}: it needs text and label (classification) or prompt and completion (generation)"
    )


@dataclass(frozen=True)
class Split:
    """Held-out eval rows and the remaining training pool, both fixed by the seed."""

    train: tuple[Example, ...]
    eval: tuple[Example, ...]


def split(data: Dataset, eval_fraction: float, seed: int) -> Split:
    """Stratified by label for classification (at least one eval and one train example per class)."""
    rng = random.Random(seed)
    groups: dict[str, list[Example]] = defaultdict(list)
    for example in data.examples:
        groups[example.second if data.kind == "classification" else ""].append(example)
    train: list[Example] = []
    held: list[Example] = []
    for label, members in sorted(groups.items()):
        if len(members) < 2:
            raise InputError(
                f"{data.name}: " + (f"label {label!r} has" if label else "the file has")
                + f" {len(members)} example; the held-out split needs at least 2"
            )
        shuffled = members[:]
        rng.shuffle(shuffled)
        cut = min(len(shuffled) - 1, max(1, round(len(shuffled) * eval_fraction)))
        held.extend(shuffled[:cut])
        train.extend(shuffled[cut:])
    rng.shuffle(train)
    return Split(tuple(train), tuple(held))


def subset(data: Dataset, pool: Sequence[Example], size: int | None) -> tuple[Example, ...]:
    """The first `size` training examples per class (classification) or in all (generation); None: all."""
    if size is None:
        return tuple(pool)
    if data.kind == "generation":
        if size > len(pool):
            raise InputError(
                f"--data-sizes {size} exceeds the {len(pool)} training examples of {data.name} after the held-out split"
            )
        return tuple(pool[:size])
    chosen: list[Example] = []
    for label in data.labels:
        members = [e for e in pool if e.second == label]
        if size > len(members):
            raise InputError(
                f"--data-sizes {size} per class exceeds the {len(members)} training examples of label {label!r} "
                f"in {data.name} after the held-out split"
            )
        chosen.extend(members[:size])
    return tuple(chosen)


# -- tokenization ---------------------------------------------------------------------------------------------


class Tokenizer(Protocol):
    """What the batcher needs of a tokenizer: ids for a text, a pad id and an end-of-sequence id."""

    pad_id: int
    eos_id: int

    def encode(self, text: str) -> list[int]: ...


class ByteTokenizer:
    """A fallback when no tokenizer files are at hand: UTF-8 bytes folded into the model's vocabulary.

    Only meaningful for random-init models (the ids mean nothing to pretrained weights). The pad and
    end-of-sequence ids are the config's; text never maps onto them, so padding is always recognisable.
    """

    def __init__(self, vocab_size: int, pad_id: int = 0, eos_id: int = 1) -> None:
        if vocab_size < 3:
            raise InputError(f"vocab_size {vocab_size} is too small for the byte tokenizer (needs at least 3)")
        self.pad_id = pad_id
        self.eos_id = eos_id
        self._table = [i for i in range(vocab_size) if i not in (pad_id, eos_id)]

    def encode(self, text: str) -> list[int]:
        return [self._table[b % len(self._table)] for b in text.encode("utf-8")]


class HubTokenizer:
    """A transformers tokenizer behind the `Tokenizer` protocol (no special tokens added per text)."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
        self.eos_id = int(eos if eos is not None else 0)
        self.pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_id)

    def encode(self, text: str) -> list[int]:
        return list(self._tokenizer(text, add_special_tokens=False)["input_ids"])


def load_tokenizer(
    location: str, vocab_size: int, *, hub_name: str | None = None, specials: tuple[int, int] = (0, 1)
) -> ByteTokenizer | HubTokenizer:
    """The model folder's tokenizer, else the Hub's (when weights come from there), else the byte fallback
    with `specials` = (pad, eos) ids."""
    from transformers import AutoTokenizer

    folder = Path(location) if location else None
    source = None
    if folder is not None and any((folder / name).is_file() for name in TOKENIZER_FILES):
        source = str(folder)
    elif hub_name is not None:
        source = hub_name
    if source is None:
        return ByteTokenizer(vocab_size, *specials)
    try:
        return HubTokenizer(AutoTokenizer.from_pretrained(source))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot load the tokenizer of {source}: {str(exc).splitlines()[0]}") from None


def batch(
    examples: Sequence[Example], tokenizer: Tokenizer, *, kind: str, task: str, seq_len: int, labels: Sequence[str]
) -> dict[str, torch.Tensor]:
    """Right-padded tensors for one batch of the task: class ids, completion-only LM labels, or seq2seq targets."""
    if kind == "classification":
        rows = [tokenizer.encode(e.first)[:seq_len] or [tokenizer.eos_id] for e in examples]
        encoded = _pad(rows, tokenizer.pad_id)
        encoded["labels"] = torch.tensor([labels.index(e.second) for e in examples])
        return encoded
    if task == "seq2seq":
        encoded = _pad([tokenizer.encode(e.first)[:seq_len] or [tokenizer.eos_id] for e in examples], tokenizer.pad_id)
        targets = _pad([[*tokenizer.encode(e.second)[: seq_len - 1], tokenizer.eos_id] for e in examples],
                       IGNORE_INDEX)
        encoded["labels"] = targets["input_ids"]
        return encoded
    ids, targets = [], []
    for e in examples:
        completion = [*tokenizer.encode(e.second), tokenizer.eos_id][:seq_len]
        prompt = tokenizer.encode(e.first)
        prompt = prompt[max(0, len(prompt) - (seq_len - len(completion))):]  # keep the prompt's end
        ids.append(prompt + completion)
        targets.append([IGNORE_INDEX] * len(prompt) + completion)
    encoded = _pad(ids, tokenizer.pad_id)
    encoded["labels"] = _pad(targets, IGNORE_INDEX)["input_ids"]
    return encoded


def _pad(rows: Sequence[Sequence[int]], pad: int) -> dict[str, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return {"input_ids": ids, "attention_mask": mask}
