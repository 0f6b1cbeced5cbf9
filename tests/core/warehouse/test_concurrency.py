"""Many processes on one warehouse: writes take turns and land whole, reads never wait, a killed writer costs nothing.

Real processes throughout (`python -m core warehouse ...` and small writer scripts), not mocks.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.warehouse import ImportReport, Warehouse, open_warehouse, stats

from .conftest import count, good_row, table_counts, write_csv

ROOT = Path(__file__).resolve().parents[3]


def _file(tmp_path: Path, name: str, n: int) -> Path:
    rows = [good_row(source=f"Lab {name}", table=f"T{i % 7}", value=str(50 + i % 40), method=m)
            for i in range(n) for m in ("Full fine-tuning", "LoRA r=8")]  # fmt: skip
    return write_csv(tmp_path / f"{name}.csv", rows)


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "core", "warehouse", *args], capture_output=True, text=True,
                          timeout=timeout, check=False, cwd=ROOT, env=os.environ.copy())  # fmt: skip


# A writer that adds 500 rows in its write turn, says so on stdout, then holds the turn until killed.
_HOLDER = """
import sys, time
from core.warehouse import open_warehouse
with open_warehouse(sys.argv[1]) as wh, wh.transaction("import held.csv") as cur:
    cur.execute("INSERT INTO imports (file_name, origin, row_count, other_methods) VALUES ('held', 'user', 0, 0)")
    print("writing", flush=True)
    time.sleep(600)
"""


@contextmanager
def _held_write(location: str) -> Iterator[subprocess.Popen[str]]:
    """A separate process in the middle of a write turn; SIGKILLed when the block ends."""
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, location], stdout=subprocess.PIPE, text=True,
                              cwd=ROOT, env=os.environ.copy())  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "writing"
        yield holder
    finally:
        holder.kill()
        holder.wait(timeout=30)


def test_two_imports_at_once_lose_nothing(wh: Warehouse, tmp_path: Path) -> None:
    files = [_file(tmp_path, "a", 150), _file(tmp_path, "b", 150)]
    before, pairs_before = count(wh, "results"), count(wh, "pair_rows")
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
    assert count(wh, "results") == before + 600
    assert set(seen) <= {before, before + 300, before + 600}  # readers only ever see whole imports
    assert count(wh, "pairs") == count(wh, "pair_rows") == pairs_before + 300
    ((duplicates,),) = (
        wh.cursor()
        .execute("SELECT count(*) FROM (SELECT citation, table_ref FROM sources GROUP BY ALL HAVING count(*) > 1)")
        .fetchall()
    )
    assert duplicates == 0


def test_two_cli_imports_in_two_processes_both_land(wh: Warehouse, tmp_path: Path) -> None:
    before = count(wh, "results")
    files = [_file(tmp_path, name, 300) for name in ("c", "d")]
    command = [sys.executable, "-m", "core", "warehouse", "import"]
    processes = [subprocess.Popen([*command, str(f)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  cwd=ROOT, env=os.environ.copy()) for f in files]  # fmt: skip
    outputs = [p.communicate(timeout=180) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    assert all("imported 600 rows" in out for out, _ in outputs)
    assert count(wh, "results") == before + 1200  # this process's handle sees the other processes' writes
    assert wh.stats()["imports"] == 2 + 2  # the two shipped files and these two


def test_a_writer_killed_midway_leaves_the_previous_version(wh: Warehouse, tmp_path: Path) -> None:
    before = table_counts(wh)
    reader = open_warehouse(wh.location, read_only=True)
    try:
        with _held_write(wh.location) as holder:
            assert count(reader, "imports") == before["imports"]  # reads go on while a write is under way
            copies = list(Path(wh.location).parent.glob(".warehouse.duckdb.*.tmp"))
            assert len(copies) == 1  # the writer works on its private copy
            holder.send_signal(signal.SIGKILL)
            holder.wait(timeout=30)
        assert table_counts(wh) == before and table_counts(reader) == before
        report = wh.import_file(_file(tmp_path, "after", 10))  # the lock died with the writer
        assert report.rows_added == 20
        assert list(Path(wh.location).parent.glob(".warehouse.duckdb.*.tmp")) == []  # its copy was cleared
        assert count(reader, "results") == before["results"] + 20  # the reader moved to the new version
    finally:
        reader.close()


def test_an_import_that_waits_too_long_exits_2_with_one_line(wh: Warehouse, tmp_path: Path) -> None:
    before = count(wh, "results")
    path = _file(tmp_path, "late", 5)
    with _held_write(wh.location):
        started = time.monotonic()
        late = _cli("import", str(path), "--wait", "1")
        waited = time.monotonic() - started
        read = _cli("stats", "--json")
    assert late.returncode == 2
    lines = late.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in late.stderr
    assert "another write is running" in lines[0] and "import held.csv" in lines[0]
    assert "gave up after 1 s — try again in a moment" in lines[0]
    assert waited >= 1
    assert read.returncode == 0, read.stderr  # a read-only command while the write is held
    assert json.loads(read.stdout)["results"] == before
    assert count(wh, "results") == before


def test_a_process_writes_and_reads_while_this_one_holds_the_file_open(wh: Warehouse, tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from core.warehouse import open_warehouse\n"
        "with open_warehouse(sys.argv[1]) as w, open_warehouse(sys.argv[1], read_only=True) as r:\n"
        "    w.import_file(sys.argv[2])\n"
        "    print(r.stats()['results'])\n"
    )
    before = stats(wh)["results"]  # this process holds a snapshot open throughout
    path = write_csv(tmp_path / "one.csv", [good_row()])
    done = subprocess.run([sys.executable, "-c", code, wh.location, str(path)], capture_output=True, text=True,
                          timeout=120, check=False, cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == before + 1 == count(wh, "results")
