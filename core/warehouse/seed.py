"""Seed a new warehouse from the CSVs shipped in `data/`, with their provenance notes.

- `published_results.csv`: every row goes through the same validation and normalisation as a user import
  (origin 'published'); a bad shipped row fails the seed loudly rather than being skipped.
- `published_results_sources.md`: its table gives each source's where-read, coverage and caveats.
- `published_results_2.csv` and `published_results_2_sources.md`: 388 more matched comparisons from 7 papers
  (`published_pairs_2.csv`, converted by data/convert_published_pairs.py), seeded the same way.
- `seed_paper_claims.csv`: the seed paper's relative gaps, numeric and qualitative.
All three land in the writer's turn that creates the warehouse (store.py): an interrupted seed publishes nothing.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from core.warehouse import conventions, paths
from core.warehouse.importer import prepare, read_file, write_prepared
from core.warehouse.models import link_model
from core.warehouse.normalise import OTHER, normalise_method
from core.warehouse.queries import task_types

_CLAIM_COLUMNS = (
    "claim_id", "source", "base_model", "base_params_b", "task", "task_type", "train_examples",
    "comparison", "metric", "value", "adversarial", "notes",
)  # fmt: skip
_FFT = r"(?:FFT|full fine-tuning)"
_MINUS = re.compile(rf"^(?:{_FFT} minus (?P<after>.+)|(?P<before>.+?) minus {_FFT})$", re.IGNORECASE)
_VERSUS = re.compile(rf"^(?:{_FFT} vs (?P<after>\S+)|(?P<before>\S+) vs {_FFT})\b", re.IGNORECASE)


@dataclass(frozen=True)
class SourceNote:
    """One row of the sources table in published_results_sources.md."""

    key: str  # the citation up to its first ' (', e.g. 'LoRA' or 'LoRA Learns Less and Forgets Less'
    where_read: str
    rows: int
    coverage: str
    caveats: str | None

    def __post_init__(self) -> None:
        if not self.key or self.rows < 0:
            raise ValueError(f"bad source note {self.key!r}")


def source_key(citation: str) -> str:
    """The short name a citation starts with: 'LoRA (Hu et al. 2021, ...)' -> 'LoRA'."""
    return citation.split(" (", 1)[0].strip()


def read_source_notes(path: Path) -> list[SourceNote]:
    """The markdown table `| Source | Rows | What it covers | Caveats |` as notes."""
    notes = []
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) != 4 or not cells[1].isdigit():
            continue  # prose, the header row or the separator
        where, rows, coverage, caveats = cells
        notes.append(SourceNote(source_key(where), where, int(rows), coverage, caveats or None))
    return notes


def _claim_gap(comparison: str, metric: str, value: float | None) -> tuple[str | None, float | None]:
    """(method id, PEFT minus FFT on 0-100) read from e.g. 'FFT minus LoRA'; None where it is not a gap."""
    match = _MINUS.match(comparison) or _VERSUS.match(comparison)
    if match is None:
        return None, None
    side = match.group("after") or match.group("before")
    method = normalise_method(side).method_id
    if method == OTHER:
        return None, None
    if value is None or match.re is _VERSUS:
        return method, None
    scale = conventions.fixed_scale(metric) or "0-100"  # the claims give accuracy differences in points
    points = conventions.to_100(value, scale)
    sign = -1.0 if match.group("after") else 1.0  # 'FFT minus X' = -(X minus FFT)
    return method, None if points is None else sign * points


def read_claims(path: Path) -> list[tuple[object, ...]]:
    """Rows for the `claims` table, in file order."""
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != _CLAIM_COLUMNS:
            raise ValueError(f"{path.name}: columns must be {','.join(_CLAIM_COLUMNS)}")
        rows: list[tuple[object, ...]] = []
        for rec in reader:
            value = float(rec["value"]) if rec["value"].strip() else None
            params = float(rec["base_params_b"]) if rec["base_params_b"].strip() else None
            adversarial = rec["adversarial"].strip().lower()
            distribution = "mixed" if adversarial == "mixed" else conventions.distribution(adversarial)
            method, gap = _claim_gap(rec["comparison"].strip(), rec["metric"], value)
            rows.append(
                (
                    rec["claim_id"], rec["source"], rec["base_model"], params,
                    link_model(rec["base_model"]).catalogue_id, rec["task"], rec["task_type"],
                    rec["train_examples"] or None, rec["comparison"], rec["metric"], value, value is None,
                    method, gap, distribution, rec["notes"] or None,
                )
            )  # fmt: skip
    return rows


def _apply_source_notes(cur: duckdb.DuckDBPyConnection, notes: list[SourceNote]) -> None:
    for note in notes:
        updated = cur.execute(
            "UPDATE sources SET where_read = ?, coverage = ?, caveats = ? WHERE split_part(citation, ' (', 1) = ?",
            [note.where_read, note.coverage, note.caveats, note.key],
        ).fetchone()
        if not updated or not updated[0]:
            raise RuntimeError(f"a published sources table describes {note.key!r}, which has no rows")


def seed_if_empty(cur: duckdb.DuckDBPyConnection) -> bool:
    """Seed once, inside the caller's write turn (all or nothing); False when the published rows are there."""
    ((published,),) = cur.execute("SELECT count(*) FROM imports WHERE origin = 'published'").fetchall()
    if published:
        return False
    claims = read_claims(paths.SEED_CLAIMS_CSV)
    notes = []
    for results, sources in paths.PUBLISHED_FILES:
        table = read_file(results, results.stat().st_size)
        prepared = prepare(table, task_types(cur))  # a connection is Readable: its cursor() sees what it committed
        write_prepared(cur, prepared, origin="published")
        notes += read_source_notes(sources)
    cur.executemany(
        "INSERT INTO claims (claim_id, citation, base_model, params_b, catalogue_id, task, task_type, "
        "train_examples, comparison, metric, claim_value, qualitative, method_id, peft_minus_fft_100, "
        "distribution, notes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        claims,
    )
    _apply_source_notes(cur, notes)
    return True
