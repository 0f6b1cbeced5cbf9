"""Numbered migrations, each in a transaction; an old warehouse file upgrades in place, keeping its rows."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from core.errors import InputError
from core.warehouse import migrate, open_warehouse

from .conftest import count


def _old_warehouse(path: Path) -> None:
    """A file at schema version 1 holding one FFT and one LoRA result on the same setup."""
    con = duckdb.connect(str(path))
    migrate.migrate(con, target=1)
    con.execute(
        "INSERT INTO methods VALUES ('fft', 'Full fine-tuning', 'full', true), ('lora', 'LoRA', 'low-rank', true)"
    )
    con.execute("INSERT INTO sources (citation, table_ref) VALUES ('Old paper', 'Table 1')")
    con.execute("INSERT INTO models (name, params_b, family) VALUES ('gpt2', 0.124, 'gpt2')")
    con.execute(
        "INSERT INTO tasks (name, task_type, metric, metric_kind, higher_is_better, distribution) "
        "VALUES ('E2E', 'generation', 'BLEU', 'target', true, 'in-domain')"
    )
    con.execute("INSERT INTO setups (source_id, model_id, task_id) VALUES (1, 1, 1)")
    con.execute("INSERT INTO imports (file_name, origin, row_count, other_methods) VALUES ('old.csv', 'user', 2, 0)")
    con.execute(
        "INSERT INTO results (import_id, source_id, model_id, task_id, setup_id, method_id, method_raw, "
        "quoted_from_prior_work, restricted_setup, metric_value, value_scale, value_100, origin) VALUES "
        "(1, 1, 1, 1, 1, 'fft', 'FT', false, false, 68.2, '0-100', 68.2, 'user'), "
        "(1, 1, 1, 1, 1, 'lora', 'LoRA', false, false, 70.4, '0-100', 70.4, 'user')"
    )
    con.close()


def test_an_old_file_upgrades_in_place(isolated_settings: Path) -> None:
    _old_warehouse(isolated_settings)
    with open_warehouse() as wh:
        versions = wh.cursor().execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()
        assert versions == [(1, "init"), (2, "calibration"), (3, "pairs")]
        assert wh.schema_version() == migrate.latest_version() == 3
        old = wh.cursor().execute("SELECT method_raw, gap FROM pairs WHERE source = 'Old paper'").fetchall()
        assert old == [("LoRA", pytest.approx(2.2))]  # 0003 backfilled the pairs of existing rows
        assert count(wh, "results") == 2 + 1784  # and the published seed arrived on the first writable open
        assert count(wh, "calibration_runs") == 0


def test_read_only_refuses_an_outdated_file(isolated_settings: Path) -> None:
    _old_warehouse(isolated_settings)
    with pytest.raises(InputError, match="schema version 1, this TuneWise needs 3: open it once writable"):
        open_warehouse(read_only=True)


def test_a_newer_file_is_refused(seeded_file: Path, isolated_settings: Path) -> None:
    shutil.copyfile(seeded_file, isolated_settings)
    con = duckdb.connect(str(isolated_settings))
    con.execute("INSERT INTO schema_migrations (version, name) VALUES (99, 'future')")
    con.close()
    with pytest.raises(InputError, match="schema version 99, newer than this TuneWise knows"):
        open_warehouse()


def test_a_failing_migration_rolls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    shutil.copy(migrate.MIGRATIONS_DIR / "0001_init.sql", folder)
    (folder / "0002_broken.sql").write_text("CREATE TABLE half_done (x INTEGER);\nSELECT * FROM no_such_table;")
    monkeypatch.setattr(migrate, "MIGRATIONS_DIR", folder)
    con = duckdb.connect()
    with pytest.raises(migrate.MigrationError, match="0002_broken.sql failed and was rolled back"):
        migrate.migrate(con)
    assert migrate.current_version(con) == 1
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'half_done'").fetchall() == [(0,)]


def test_migration_numbers_must_not_have_gaps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0003_c.sql").write_text("SELECT 1;")
    monkeypatch.setattr(migrate, "MIGRATIONS_DIR", tmp_path)
    with pytest.raises(migrate.MigrationError, match="without gaps"):
        migrate.available()
