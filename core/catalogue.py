"""The offline model catalogue: config.json contents of popular models, shipped in `data/catalogue/`.

`index.json` maps each canonical Hub repo id to its file, lowercase aliases, published parameter count and
family, so that `--model llama-2-7b` resolves without network.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

CATALOGUE_DIR = Path(__file__).resolve().parent.parent / "data" / "catalogue"


@dataclass(frozen=True)
class CatalogueEntry:
    """One catalogue model: its canonical id, aliases and the count its published head gives."""

    repo_id: str
    file: str
    aliases: tuple[str, ...]
    family: str
    params: int
    note: str = ""

    def __post_init__(self) -> None:
        if self.params <= 0 or not self.family or not self.file.endswith(".json"):
            raise ValueError(f"catalogue entry {self.repo_id}: needs positive params, a family and a .json file")

    def load_config(self) -> dict[str, Any]:
        return json.loads((CATALOGUE_DIR / self.file).read_text(encoding="utf-8"))


@cache
def entries() -> dict[str, CatalogueEntry]:
    """All catalogue entries keyed by canonical repo id."""
    index = json.loads((CATALOGUE_DIR / "index.json").read_text(encoding="utf-8"))
    return {
        repo_id: CatalogueEntry(
            repo_id=repo_id,
            file=item["file"],
            aliases=tuple(item.get("aliases", ())),
            family=item["family"],
            params=item["params"],
            note=item.get("note", ""),
        )
        for repo_id, item in index.items()
    }


@cache
def _lookup_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for repo_id, entry in entries().items():
        table[repo_id.lower()] = repo_id
        table[repo_id.split("/")[-1].lower()] = repo_id
        for alias in entry.aliases:
            table[alias.lower()] = repo_id
    return table


def find(name: str) -> CatalogueEntry | None:
    """The entry for a repo id, its bare name or an alias, case-insensitively; None when absent."""
    repo_id = _lookup_table().get(name.strip().lower())
    return entries()[repo_id] if repo_id else None


def closest(name: str, limit: int = 3) -> list[str]:
    """Catalogue ids that look like `name`, for 'did you mean' messages."""
    import difflib

    wanted = name.strip().lower()
    hits = difflib.get_close_matches(wanted, list(_lookup_table()), n=limit * 3, cutoff=0.5)
    seen: dict[str, None] = {}
    for hit in hits:
        seen.setdefault(_lookup_table()[hit], None)
    return list(seen)[:limit]
