"""Imports are all or nothing: a good file adds exactly its rows; any problem writes nothing and says why."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.errors import InputError
from core.warehouse import ImportRejectedError, Warehouse
from core.warehouse import importer as importer_module

from .conftest import good_row, table_counts, write_csv


def _rows(n: int) -> list[dict[str, str]]:
    return [good_row(table=f"Run {i}", value=str(80 + i)) for i in range(n)]


def test_good_csv_adds_exactly_its_rows(wh: Warehouse, tmp_path: Path) -> None:
    before = table_counts(wh)
    report = wh.import_file(write_csv(tmp_path / "good.csv", _rows(3)))
    after = table_counts(wh)
    assert report.rows_added == 3 and report.origin == "user"
    assert after["results"] == before["results"] + 3
    assert after["sources"] == before["sources"] + 3  # three tables of one citation
    assert after["imports"] == before["imports"] + 1
    stored = (
        wh.cursor()
        .execute(
            "SELECT source_table, metric_value, value_100, method_id, rank, origin, import_id FROM results_wide "
            "WHERE source = 'My lab notebook' ORDER BY result_id"
        )
        .fetchall()
    )
    assert stored == [(f"Run {i}", 80.0 + i, 80.0 + i, "lora", 8, "user", report.import_id) for i in range(3)]


def test_json_and_parquet_imports(wh: Warehouse, tmp_path: Path) -> None:
    json_path = tmp_path / "good.json"
    json_path.write_text(json.dumps([good_row(table="J1"), {**good_row(table="J2"), "value": 77.5}]))
    parquet_path = tmp_path / "good.parquet"
    pq.write_table(pa.Table.from_pylist([{**good_row(table="P1"), "value": 70.0, "base_params_b": 0.494}]),
                   parquet_path)  # fmt: skip
    assert wh.import_file(json_path).rows_added == 2
    assert wh.import_file(parquet_path).rows_added == 1
    values = dict(wh.cursor().execute(
        "SELECT source_table, metric_value FROM results_wide WHERE source = 'My lab notebook'"
    ).fetchall())  # fmt: skip
    assert values == {"J1": 91.5, "J2": 77.5, "P1": 70.0}


def test_one_bad_row_changes_nothing_and_is_named(wh: Warehouse, tmp_path: Path) -> None:
    rows = _rows(4)
    rows[1]["value"] = "abc"
    before = table_counts(wh)
    with pytest.raises(ImportRejectedError) as caught:
        wh.import_file(write_csv(tmp_path / "bad.csv", rows))
    assert caught.value.errors == ((3, "value 'abc' is not a number"),)
    message = str(caught.value)
    assert "line 3: value 'abc' is not a number" in message and "nothing was written" in message
    assert "\n" not in message
    assert table_counts(wh) == before


def test_every_bad_row_is_reported_with_its_line(wh: Warehouse, tmp_path: Path) -> None:
    rows = _rows(5)
    rows[0]["task_type"] = "poetry"
    rows[2]["trainable_pct"] = "150"
    rows[2]["base_params_b"] = ""
    rows[4]["train_examples"] = "lots"
    with pytest.raises(ImportRejectedError) as caught:
        wh.import_file(write_csv(tmp_path / "bad.csv", rows))
    lines = [line for line, _ in caught.value.errors]
    assert lines == [2, 4, 4, 6]
    reasons = " | ".join(reason for _, reason in caught.value.errors)
    assert "task_type 'poetry' is not one of" in reasons
    assert "trainable_pct 150 is outside [0, 100]" in reasons
    assert "base_params_b is empty" in reasons
    assert "train_examples 'lots' is not a count" in reasons


def test_killed_import_leaves_nothing_behind(wh: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(*args: object) -> None:
        raise RuntimeError("killed mid-way")

    # Sources, models, tasks, setups and the imports row are written by then; the results never are.
    monkeypatch.setattr(importer_module, "_insert_results", crash)
    before = table_counts(wh)
    with pytest.raises(RuntimeError, match="killed mid-way"):
        wh.import_file(write_csv(tmp_path / "good.csv", _rows(3)))
    assert table_counts(wh) == before
    monkeypatch.undo()
    assert wh.import_file(tmp_path / "good.csv").rows_added == 3  # the same file imports cleanly afterwards


def test_killed_after_results_written_leaves_nothing(wh: Warehouse, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    def crash(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(importer_module, "refresh_pairs", crash)
    before = table_counts(wh)
    with pytest.raises(KeyboardInterrupt):
        wh.import_file(write_csv(tmp_path / "good.csv", _rows(2)))
    assert table_counts(wh) == before


def test_the_same_file_twice_is_refused(wh: Warehouse, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "good.csv", _rows(2))
    wh.import_file(path)
    before = table_counts(wh)
    with pytest.raises(InputError, match="already imported"):
        wh.import_file(path)
    assert table_counts(wh) == before


def test_unknown_method_names_are_kept_as_other_and_reported(wh: Warehouse, tmp_path: Path) -> None:
    before = wh.stats()["other_methods"]  # the seed's own unnormalisable names
    report = wh.import_file(write_csv(tmp_path / "odd.csv", [good_row(method="Magic tuning")]))
    assert dict(report.normalisation.unmapped) == {"Magic tuning": 1}
    assert "kept as 'other'" in str(report)
    assert wh.stats()["other_methods"] == before + 1


def test_fraction_values_get_a_0_100_form(wh: Warehouse, tmp_path: Path) -> None:
    rows = [good_row(table="F", metric="pass@1", value="0.25"), good_row(table="F", metric="pass@1", value="0.5")]
    wh.import_file(write_csv(tmp_path / "fractions.csv", rows))
    stored = (
        wh.cursor()
        .execute("SELECT metric_value, value_scale, value_100 FROM results_wide "
                 "WHERE metric = 'pass@1' AND source_table = 'F' ORDER BY 1")
        .fetchall()
    )
    assert stored == [(0.25, "fraction", 25.0), (0.5, "fraction", 50.0)]


def test_add_results_from_a_dataframe_with_seeds(wh: Warehouse) -> None:
    frame = pd.DataFrame([{**good_row(table="DF"), "value": 90.0, "seed": 1},
                          {**good_row(table="DF"), "value": 91.0, "seed": 2}])  # fmt: skip
    report = wh.add_results(frame, origin="calibration")
    assert report.rows_added == 2
    stored = (
        wh.cursor()
        .execute("SELECT seed, metric_value, origin FROM results WHERE origin = 'calibration' ORDER BY seed")
        .fetchall()
    )
    assert stored == [(1, 90.0, "calibration"), (2, 91.0, "calibration")]
    with pytest.raises(InputError, match="origin 'mine'"):
        wh.add_results(frame, origin="mine")


# -- bad input: each a clear message, nothing written -------------------------------------------------------


def _rejects(wh: Warehouse, path: Path, match: str, **kwargs: float) -> str:
    before = table_counts(wh)
    with pytest.raises(InputError, match=match) as caught:
        wh.import_file(path, **kwargs)
    assert table_counts(wh) == before
    assert "\n" not in str(caught.value)
    return str(caught.value)


def test_missing_columns(wh: Warehouse, tmp_path: Path) -> None:
    columns = [c for c in importer_module.conventions.PUBLISHED_COLUMNS if c != "metric"]
    _rejects(wh, write_csv(tmp_path / "m.csv", _rows(1), columns), "missing columns metric")


def test_extra_columns(wh: Warehouse, tmp_path: Path) -> None:
    columns = [*importer_module.conventions.PUBLISHED_COLUMNS, "seed"]
    _rejects(wh, write_csv(tmp_path / "x.csv", _rows(1), columns), "unexpected columns seed")


def test_wrong_types(wh: Warehouse, tmp_path: Path) -> None:
    path = tmp_path / "types.json"
    path.write_text(json.dumps([{**good_row(), "task": 5, "value": True}]))
    message = _rejects(wh, path, "rejected")
    assert "record 1: task 5 is not text" in message and "value True is not a number" in message


def test_value_out_of_range(wh: Warehouse, tmp_path: Path) -> None:
    rows = [good_row(value="250"), good_row(metric="MT-Bench score", value="57")]
    message = _rejects(wh, write_csv(tmp_path / "range.csv", rows), "rejected: 2 bad rows")
    assert "line 2: value 250 is outside [-100, 100]" in message
    assert "line 3: value 57 is outside [-10, 10]" in message


def test_empty_file(wh: Warehouse, tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    _rejects(wh, empty, "is empty")
    header_only = write_csv(tmp_path / "header.csv", [])
    _rejects(wh, header_only, "has no rows")


def test_unknown_file_type(wh: Warehouse, tmp_path: Path) -> None:
    path = tmp_path / "results.xlsx"
    path.write_bytes(b"PK\x03\x04")
    _rejects(wh, path, r"unknown file type '.xlsx'; use .csv, .parquet or .json")


def test_non_utf8(wh: Warehouse, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "latin1.csv", [good_row(notes="café")])
    path.write_bytes(path.read_text(encoding="utf-8").encode("latin-1"))
    _rejects(wh, path, "is not UTF-8 .*re-save it as UTF-8")


def test_file_over_the_size_limit(wh: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_csv(tmp_path / "big.csv", [good_row(notes="x" * 5000, table=f"T{i}") for i in range(300)])
    monkeypatch.setenv("TUNEWISE_MAX_IMPORT_MB", "1")
    _rejects(wh, path, "over the 1 MB import limit.*TUNEWISE_MAX_IMPORT_MB")
    monkeypatch.delenv("TUNEWISE_MAX_IMPORT_MB")
    _rejects(wh, path, "over the 0.5 MB import limit", max_mb=0.5)
    assert wh.import_file(path).rows_added == 300  # under the 50 MB default


def test_default_size_limit_is_50_mb(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.warehouse.paths import max_import_bytes

    assert max_import_bytes() == 50 * 1024 * 1024
    monkeypatch.setenv("TUNEWISE_MAX_IMPORT_MB", "lots")
    with pytest.raises(InputError, match="TUNEWISE_MAX_IMPORT_MB='lots' is not a number"):
        max_import_bytes()


def test_missing_file_and_broken_formats(wh: Warehouse, tmp_path: Path) -> None:
    _rejects(wh, tmp_path / "nowhere.csv", "no file at")
    broken_json = tmp_path / "broken.json"
    broken_json.write_text("[{")
    _rejects(wh, broken_json, "is not valid JSON")
    not_a_list = tmp_path / "object.json"
    not_a_list.write_text(json.dumps(good_row()))
    _rejects(wh, not_a_list, "array of objects")
    broken_parquet = tmp_path / "broken.parquet"
    broken_parquet.write_bytes(b"PAR1 not really")
    _rejects(wh, broken_parquet, "is not a readable Parquet file")


def test_ragged_csv_rows(wh: Warehouse, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "ragged.csv", _rows(2))
    path.write_text(path.read_text() + "only,three,fields\n")
    _rejects(wh, path, "line 4: has 3 fields, the header has 13")


def test_one_row_with_several_problems_counts_as_one_bad_row(wh: Warehouse, tmp_path: Path) -> None:
    rows = _rows(3)
    rows[1].update(task_type="not-a-type", value="abc", base_params_b="-1")
    with pytest.raises(ImportRejectedError) as caught:
        wh.import_file(write_csv(tmp_path / "three.csv", rows))
    assert {line for line, _ in caught.value.errors} == {3}
    assert caught.value.bad_rows == 1
    assert caught.value.count_text == f"1 bad row ({len(caught.value.errors)} problems)"
    assert "rejected: 1 bad row (" in str(caught.value)


def test_problem_count_is_left_out_when_each_bad_row_has_one(wh: Warehouse, tmp_path: Path) -> None:
    rows = _rows(4)
    rows[0]["value"] = "abc"
    rows[2]["value"] = "def"
    with pytest.raises(ImportRejectedError) as caught:
        wh.import_file(write_csv(tmp_path / "two.csv", rows))
    assert caught.value.bad_rows == 2 and caught.value.count_text == "2 bad rows"
