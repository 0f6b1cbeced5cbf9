"""`python -m core warehouse ...`: init, import, export, ingest, stats, and one-line errors (exit 2)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from core.cli import main

from .conftest import good_row, write_csv


def test_init_then_stats_json(isolated_settings: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["warehouse", "init"]) == 0
    assert "1784 results, 54 cited tables, 19 claims, 1119 FFT-vs-PEFT pairs" in capsys.readouterr().out
    assert isolated_settings.is_file()
    assert main(["warehouse", "stats", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    expected = {"results": 1784, "sources": 54, "claims": 19, "pairs": 1119, "calibration_runs": 0,
                "memory_measurements": 0}  # fmt: skip
    assert {key: stats[key] for key in expected} == expected


def test_path_option_overrides_the_environment(seeded_file: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    other = tmp_path / "elsewhere.duckdb"
    shutil.copyfile(seeded_file, other)
    assert main(["warehouse", "stats", "--json", "--path", str(other)]) == 0
    assert json.loads(capsys.readouterr().out)["location"] == str(other)


def test_import_export_and_stats(seeded_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_csv(tmp_path / "lab.csv", [good_row(), good_row(method="Full fine-tuning", value="92")])
    assert main(["warehouse", "import", str(path)]) == 0
    assert "imported 2 rows from lab.csv" in capsys.readouterr().out
    assert main(["warehouse", "export", "pairs", str(tmp_path / "pairs.csv")]) == 0
    assert (tmp_path / "pairs.csv").read_text().count("\n") == 1120 + 1
    assert main(["warehouse", "export", "all", str(tmp_path / "pq")]) == 0
    assert (tmp_path / "pq" / "pair_rows" / "data.parquet").is_file()
    capsys.readouterr()
    assert main(["warehouse", "stats"]) == 0
    out = capsys.readouterr().out
    assert "results: 1786" in out and "LoRA r=16 (all modules, alpha=2r)" in out


def test_bad_rows_are_listed_then_summarised(seeded_copy: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    path = write_csv(tmp_path / "bad.csv", [good_row(), good_row(value="abc"), good_row(adversarial="maybe")])
    assert main(["warehouse", "import", str(path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "bad.csv: line 3: value 'abc' is not a number"
    assert err[1] == "bad.csv: line 4: adversarial 'maybe' is not one of no, ood, yes"
    assert err[2].startswith("error: bad.csv rejected: 2 bad rows") and "nothing was written" in err[2]


def test_read_only_import_fails_in_one_line(seeded_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    monkeypatch.setenv("TUNEWISE_READ_ONLY", "1")
    path = write_csv(tmp_path / "lab.csv", [good_row()])
    assert main(["warehouse", "import", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot import lab.csv" in err and "read-only" in err
    assert main(["warehouse", "init"]) == 2
    assert "cannot initialise the warehouse" in capsys.readouterr().err


def test_unknown_export_table(seeded_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["warehouse", "export", "nope", str(tmp_path / "x.csv")]) == 2
    assert "unknown table or view 'nope'" in capsys.readouterr().err


def test_ingest_a_run_folder(seeded_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "run-7"
    folder.mkdir()
    write_csv(folder / "results.csv", [good_row(source="Calibration"), good_row(source="Calibration", method="FFT")])
    (folder / "COMPLETE").write_text("")
    assert main(["warehouse", "ingest", str(folder)]) == 0
    assert "0 runs, 0 methods, 0 measurements, 2 results" in capsys.readouterr().out
    assert main(["warehouse", "ingest", str(folder)]) == 0
    assert "already ingested" in capsys.readouterr().out


def test_publish_a_version_for_replicas(seeded_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    root = tmp_path / "shared"
    assert main(["warehouse", "publish", str(root)]) == 0
    out = capsys.readouterr().out
    version = (root / "CURRENT").read_text().strip()
    assert out.startswith(f"published version {version} under {root}")
    assert main(["warehouse", "stats", "--json"]) == 0
    local = json.loads(capsys.readouterr().out)
    monkeypatch.setenv("TUNEWISE_PARQUET_ROOT", str(root))
    assert main(["warehouse", "stats", "--json"]) == 0
    replica = json.loads(capsys.readouterr().out)
    assert replica["read_only"] and replica["location"] == str(root)
    keys = ("results", "pairs", "claims")
    assert {k: replica[k] for k in keys} == {k: local[k] for k in keys}


def test_a_bad_write_wait_is_one_line(seeded_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("TUNEWISE_WRITE_WAIT_S", "soon")
    path = write_csv(tmp_path / "lab.csv", [good_row()])
    assert main(["warehouse", "import", str(path)]) == 2
    assert capsys.readouterr().err == "error: TUNEWISE_WRITE_WAIT_S='soon' is not a number of seconds, e.g. 60\n"
    assert main(["warehouse", "import", str(path), "--wait", "-1"]) == 2
    assert "the write wait must be a finite number of seconds, at least 0" in capsys.readouterr().err
