"""The warehouse's layers import downwards only: the façade (db.py) on top, nothing below it imports it."""

from __future__ import annotations

import ast
from pathlib import Path

import core.warehouse

PACKAGE = Path(core.warehouse.__file__).parent
TOP = {"__init__.py", "db.py"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_no_module_below_the_facade_imports_it() -> None:
    below = [p for p in PACKAGE.glob("*.py") if p.name not in TOP]
    assert {p.name for p in below} >= {"store.py", "importer.py", "runs.py", "seed.py", "remote.py", "queries.py"}
    offenders = {p.name: sorted(m for m in _imports(p) if m in ("core.warehouse.db", "core.warehouse.Warehouse"))
                 for p in below}  # fmt: skip
    assert {name: mods for name, mods in offenders.items() if mods} == {}


def test_the_storage_layer_knows_nothing_of_rows() -> None:
    store = _imports(PACKAGE / "store.py")
    assert not {m for m in store if m.startswith("core.warehouse")}  # only DuckDB, the OS and core.errors
