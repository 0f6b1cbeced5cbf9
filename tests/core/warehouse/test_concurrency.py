"""One writer, many readers: simultaneous imports serialise; readers see whole imports; other processes are told."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from core.warehouse import ImportReport, Warehouse, open_warehouse

from .conftest import count, good_row, write_csv


def _file(tmp_path: Path, name: str, n: int) -> Path:
    rows = [good_row(source=f"Lab {name}", table=f"T{i % 7}", value=str(50 + i % 40), method=m)
            for i in range(n) for m in ("Full fine-tuning", "LoRA r=8")]  # fmt: skip
    return write_csv(tmp_path / f"{name}.csv", rows)


def test_two_imports_at_once_lose_nothing(wh: Warehouse, tmp_path: Path) -> None:
    files = [_file(tmp_path, "a", 150), _file(tmp_path, "b", 150)]
    start = threading.Barrier(len(files) + 1)
    reports: list[ImportReport] = []
    errors: list[BaseException] = []
    seen: list[int] = []
    done = threading.Event()

    def import_one(path: Path) -> None:
        start.wait()
        try:
            reports.append(wh.import_file(path))
        except BaseException as exc:
            errors.append(exc)

    def read() -> None:
        start.wait()
        while not done.is_set():
            ((n,),) = wh.cursor().execute("SELECT count(*) FROM results").fetchall()
            seen.append(n)

    threads = [threading.Thread(target=import_one, args=(f,)) for f in files]
    reader = threading.Thread(target=read)
    for thread in (*threads, reader):
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    reader.join()
    assert errors == []
    assert sorted(r.rows_added for r in reports) == [300, 300]
    assert len({r.import_id for r in reports}) == 2
    assert count(wh, "results") == 1327 + 600
    assert set(seen) <= {1327, 1327 + 300, 1327 + 600}  # readers only ever see whole imports
    assert count(wh, "pairs") == count(wh, "pair_rows") == 718 + 300
    ((duplicates,),) = (
        wh.cursor()
        .execute("SELECT count(*) FROM (SELECT citation, table_ref FROM sources GROUP BY ALL HAVING count(*) > 1)")
        .fetchall()
    )
    assert duplicates == 0


def test_two_handles_on_one_file_share_the_writer_lock(wh: Warehouse, tmp_path: Path) -> None:
    other = open_warehouse()
    try:
        assert other._lock is wh._lock
        threads = [
            threading.Thread(target=handle.import_file, args=(_file(tmp_path, name, 50),))
            for handle, name in ((wh, "c"), (other, "d"))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert count(other, "results") == count(wh, "results") == 1327 + 200
    finally:
        other.close()


def test_a_second_process_is_told_the_app_is_the_writer(wh: Warehouse) -> None:
    code = (
        "import sys\n"
        "from core.errors import InputError\n"
        "from core.warehouse import open_warehouse\n"
        "try:\n"
        f"    open_warehouse({wh.location!r}, read_only=False)\n"
        "except InputError as exc:\n"
        "    print(exc)\n"
        "    sys.exit(2)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False,
                          cwd=Path(__file__).resolve().parents[3])  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "is in use by another process" in done.stdout and "the app is the writer" in done.stdout
