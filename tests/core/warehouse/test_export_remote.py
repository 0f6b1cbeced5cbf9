"""Export tables and views; run the same queries over a Parquet folder (TUNEWISE_PARQUET_ROOT)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from core.errors import InputError, ReadOnlyError
from core.warehouse import Filters, Warehouse, claims, gap_summary, open_parquet, open_warehouse, pairs, results

from .conftest import good_row, write_csv


def test_export_a_table_and_the_pairs_view(ro: Warehouse, tmp_path: Path) -> None:
    csv_path = ro.export("results", tmp_path / "results.csv")
    assert len(pd.read_csv(csv_path)) == 1784
    parquet_path = ro.export("pairs", tmp_path / "pairs.parquet")
    exported = pd.read_parquet(parquet_path)
    assert len(exported) == 1119 and {"gap", "fft_value", "peft_value", "method_raw"} <= set(exported.columns)


def test_export_refuses_unknown_names_and_formats(ro: Warehouse, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown table or view 'secrets'; choose one of .*pairs.*results"):
        ro.export("secrets", tmp_path / "x.csv")
    with pytest.raises(InputError, match=r"export as .csv or .parquet \(got '.xlsx'\)"):
        ro.export("results", tmp_path / "x.xlsx")
    with pytest.raises(InputError, match="does not exist; create it first"):
        ro.export("results", tmp_path / "missing" / "x.csv")


@pytest.fixture
def parquet_root(wh: Warehouse, tmp_path: Path) -> Path:
    wh.import_file(write_csv(tmp_path / "lab.csv", [good_row(), good_row(method="Full fine-tuning", value="92")]))
    root = tmp_path / "parquet"
    written = wh.export_folder(root)
    assert (root / "results" / "data.parquet") in written
    return root


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_dtype=False)


def test_queries_over_a_parquet_folder_match_the_file(wh: Warehouse, parquet_root: Path) -> None:
    with open_parquet(str(parquet_root)) as remote:
        for filters in (None, Filters(task_types=["classification"]), Filters(methods=["lora"], max_params_b=1)):
            _same(results(remote, filters), results(wh, filters))
            _same(pairs(remote, filters), pairs(wh, filters))
            _same(gap_summary(remote, filters), gap_summary(wh, filters))
        _same(claims(remote), claims(wh))
        assert remote.stats()["pairs"] == wh.stats()["pairs"] == 1120
        assert remote.stats()["schema_version"] == 3
        # the derived views are rebuilt over the Parquet tables, not copied
        ((n,),) = remote.cursor().execute("SELECT count(*) FROM pairs").fetchall()
        assert n == 1120


def test_the_setting_routes_open_warehouse_to_parquet(parquet_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNEWISE_PARQUET_ROOT", str(parquet_root))
    with open_warehouse() as remote:
        assert remote.location == str(parquet_root) and remote.read_only
        assert len(pairs(remote, Filters(task_types=["classification"]))) > 0
        with pytest.raises(ReadOnlyError, match="queries run over Parquet files .TUNEWISE_PARQUET_ROOT."):
            remote.add_results(pd.DataFrame([good_row()]))


def test_an_incomplete_parquet_folder_is_explained(parquet_root: Path) -> None:
    for file in (parquet_root / "claims").iterdir():
        file.unlink()
    with pytest.raises(InputError, match="lacks Parquet files for claims; write them with `warehouse publish"):
        open_parquet(str(parquet_root))
    with pytest.raises(InputError, match="is not a folder"):
        open_parquet(str(parquet_root / "nowhere"))


def test_replicas_read_whole_published_versions(wh: Warehouse, tmp_path: Path) -> None:
    root = tmp_path / "shared"
    first = wh.publish_parquet(root)
    with open_parquet(str(root)) as replica:
        before = replica.stats()["results"]
        assert before == wh.stats()["results"]
        assert (root / "CURRENT").read_text().strip() == first
        wh.import_file(write_csv(tmp_path / "lab.csv", [good_row(), good_row(method="Full fine-tuning", value="92")]))
        assert replica.stats()["results"] == before  # the new rows are not published yet
        second = wh.publish_parquet(root)
        assert second > first
        assert replica.stats()["results"] == before + 2  # the pointer moved: the next query reads the new version
        _same(pairs(replica), pairs(wh))
    for _ in range(3):
        wh.publish_parquet(root)
    versions = sorted(p.name for p in (root / "versions").iterdir())
    assert len(versions) == 3 and versions[-1] == (root / "CURRENT").read_text().strip()


def test_a_half_written_version_is_never_read(wh: Warehouse, tmp_path: Path) -> None:
    root = tmp_path / "shared"
    version = wh.publish_parquet(root)
    partial = root / "versions" / ".v000002-x.partial" / "results"
    partial.mkdir(parents=True)  # a publisher that died while exporting
    (partial / "data.parquet").write_bytes(b"not parquet")
    with open_parquet(str(root)) as replica:
        assert replica.stats()["results"] == wh.stats()["results"]
    assert wh.publish_parquet(root) > version
    assert not partial.parent.exists()  # the next publisher removed it
