"""A fresh warehouse holds every shipped row, claim and source note; nothing is dropped or invented."""

from __future__ import annotations

import csv
from pathlib import Path

from core.warehouse import Warehouse, open_warehouse
from core.warehouse.paths import PUBLISHED_FILES, SEED_CLAIMS_CSV
from core.warehouse.seed import read_source_notes, source_key

from .conftest import count


def _shipped() -> list[dict[str, str]]:
    """Every row of the shipped results files."""
    rows: list[dict[str, str]] = []
    for results, _ in PUBLISHED_FILES:
        with results.open(encoding="utf-8", newline="") as handle:
            rows += list(csv.DictReader(handle))
    return rows


def test_fresh_warehouse_holds_all_published_rows_and_claims(ro: Warehouse) -> None:
    shipped = _shipped()
    with SEED_CLAIMS_CSV.open(encoding="utf-8", newline="") as handle:
        claims = list(csv.DictReader(handle))
    assert len(shipped) == 1327 + 457  # the first file, and the 388 pairs of 7 more papers as 457 rows
    assert count(ro, "results") == len(shipped)
    assert count(ro, "claims") == len(claims) == 19
    stats = ro.stats()
    assert stats["results"] == len(shipped) and stats["other_methods"] == 48 + 89
    imported = ro.cursor().execute("SELECT row_count, other_methods FROM imports WHERE origin = 'published' "
                                   "ORDER BY import_id").fetchall()  # fmt: skip
    assert imported == [(1327, 48), (457, 89)]  # literature methods (MoRA, HydraLoRA, GOAT...) kept as 'other'


def test_every_shipped_value_is_stored_as_published(ro: Warehouse) -> None:
    shipped = sorted((r["source"], r["table"], r["base_model"], r["task"], r["method"], r["metric"],
                      float(r["value"])) for r in _shipped())  # fmt: skip
    stored = sorted(
        ro.cursor()
        .execute("SELECT source, source_table, model, task, method_raw, metric, metric_value FROM results_wide")
        .fetchall()
    )
    assert stored == shipped


def test_rows_per_source_match_the_provenance_notes(ro: Warehouse) -> None:
    notes = [note for _, sources in PUBLISHED_FILES for note in read_source_notes(sources)]
    assert len(notes) == 12 + 7
    per_source: dict[str, int] = {}
    for citation, n in ro.cursor().execute("SELECT citation, count(*) FROM results JOIN sources USING (source_id) "
                                           "GROUP BY citation").fetchall():  # fmt: skip
        per_source[source_key(citation)] = per_source.get(source_key(citation), 0) + n
    assert per_source == {note.key: note.rows for note in notes}


def test_sources_carry_where_read_and_caveats(ro: Warehouse) -> None:
    rows = ro.cursor().execute("SELECT citation, where_read, caveats FROM sources").fetchall()
    assert len(rows) == 39 + 15  # the 7 more papers cite 15 tables
    assert all(where for _, where, _ in rows)
    qlora = {caveat for citation, _, caveat in rows if citation.startswith("QLoRA")}
    assert qlora == {"T5-11B FFT quoted from prior work"}


def test_claims_keep_qualitative_findings_and_signed_gaps(ro: Warehouse) -> None:
    claims = {r[0]: r[1:] for r in ro.cursor().execute(
        "SELECT claim_id, claim_value, qualitative, method_id, peft_minus_fft_100, distribution FROM claims"
    ).fetchall()}  # fmt: skip
    assert claims["S1"] == (2.81, False, "lora", -2.81, "in-domain")  # FFT minus LoRA 2.81 -> LoRA 2.81 behind
    assert claims["S10"] == (1.3, False, "lora", 1.3, "in-domain")  # LoRA minus FFT
    assert claims["S7"][3] == -5.7  # MT-bench 1-10 points x10
    assert claims["S12"][4] == "adversarial"
    assert {cid for cid, c in claims.items() if c[1]} == {"S14", "S15", "S16", "S19"}
    assert all(claims[cid][0] is None for cid in ("S14", "S15", "S16", "S19"))


def test_reopening_does_not_seed_twice(seeded_copy: Path) -> None:
    with open_warehouse() as first:
        assert count(first, "results") == 1784
    with open_warehouse() as again:
        assert count(again, "results") == 1784
        assert count(again, "imports") == 2  # the two shipped files, once


def test_models_link_to_the_catalogue_where_possible(ro: Warehouse) -> None:
    links = dict(ro.cursor().execute("SELECT name, catalogue_id FROM models").fetchall())
    assert links["RoBERTa-base"] == "FacebookAI/roberta-base"
    assert links["LLaMA2-7B"] == links["Llama-2-7B"] == "meta-llama/Llama-2-7b-hf"
    assert links["GPT-2 Medium"] == "openai-community/gpt2-medium"
    assert links["GPT-3"] is None
