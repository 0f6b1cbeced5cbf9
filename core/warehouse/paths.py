"""Where the warehouse lives and how it is opened, from arguments or environment variables.

Settings (each overridable by an argument of `open_warehouse` / the CLI):
- `TUNEWISE_WAREHOUSE`: path of the DuckDB file (default: `warehouse.duckdb` in the user's data directory).
- `TUNEWISE_READ_ONLY=1`: open read-only (demo deployments); every write then raises `ReadOnlyError`.
- `TUNEWISE_MAX_IMPORT_MB`: the largest file `import` accepts, in MB (default 50).
- `TUNEWISE_PARQUET_ROOT`: a folder or object-store URL (s3://, gs://, https://...) of Parquet files, one
  sub-folder per table; when set, the dashboard's queries run over those files instead of a DuckDB file.
- `TUNEWISE_WRITE_WAIT_S`: how long a write waits for another process's write to finish (default 60 s).
"""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_data_dir

from core.errors import InputError

# The project's shipped seed data; the product never reads ../shared at run time.
DATA_DIR = Path(__file__).resolve().parents[2] / "data"
PUBLISHED_RESULTS_CSV = DATA_DIR / "published_results.csv"
PUBLISHED_SOURCES_MD = DATA_DIR / "published_results_sources.md"
# 388 more matched comparisons from 7 papers, as result rows (data/convert_published_pairs.py)
PUBLISHED_RESULTS_2_CSV = DATA_DIR / "published_results_2.csv"
PUBLISHED_SOURCES_2_MD = DATA_DIR / "published_results_2_sources.md"
# every shipped results file with its provenance table, in seeding order
PUBLISHED_FILES = ((PUBLISHED_RESULTS_CSV, PUBLISHED_SOURCES_MD), (PUBLISHED_RESULTS_2_CSV, PUBLISHED_SOURCES_2_MD))
SEED_CLAIMS_CSV = DATA_DIR / "seed_paper_claims.csv"

ENV_WAREHOUSE = "TUNEWISE_WAREHOUSE"
ENV_READ_ONLY = "TUNEWISE_READ_ONLY"
ENV_MAX_IMPORT_MB = "TUNEWISE_MAX_IMPORT_MB"
ENV_PARQUET_ROOT = "TUNEWISE_PARQUET_ROOT"
ENV_WRITE_WAIT_S = "TUNEWISE_WRITE_WAIT_S"
DEFAULT_MAX_IMPORT_MB = 50.0
DEFAULT_WRITE_WAIT_S = 60.0

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def warehouse_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The warehouse file: the argument, else `TUNEWISE_WAREHOUSE`, else the user's data directory."""
    if path is not None:
        return Path(path).expanduser()
    configured = os.environ.get(ENV_WAREHOUSE, "").strip()
    if configured:
        return Path(configured).expanduser()
    return Path(user_data_dir("tunewise", appauthor=False)) / "warehouse.duckdb"


def read_only_requested(read_only: bool | None = None) -> bool:
    """The argument when given, else `TUNEWISE_READ_ONLY` (1/true/yes/on)."""
    if read_only is not None:
        return read_only
    value = os.environ.get(ENV_READ_ONLY, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise InputError(f"{ENV_READ_ONLY}={value!r} is not a switch: set it to 1 (read-only) or 0")


def max_import_bytes(limit_mb: float | None = None) -> int:
    """The import size limit in bytes: the argument, else `TUNEWISE_MAX_IMPORT_MB`, else 50 MB."""
    if limit_mb is None:
        text = os.environ.get(ENV_MAX_IMPORT_MB, "").strip()
        try:
            limit_mb = float(text) if text else DEFAULT_MAX_IMPORT_MB
        except ValueError:
            raise InputError(f"{ENV_MAX_IMPORT_MB}={text!r} is not a number of MB, e.g. 50") from None
    if not limit_mb > 0:
        raise InputError(f"the import size limit must be positive, got {limit_mb} MB")
    return int(limit_mb * 1024 * 1024)


def parquet_root() -> str | None:
    """`TUNEWISE_PARQUET_ROOT` when set: queries then run over Parquet files there."""
    return os.environ.get(ENV_PARQUET_ROOT, "").strip() or None


def write_wait_s(wait_s: float | None = None) -> float:
    """Seconds a write waits for the write lock: the argument, else `TUNEWISE_WRITE_WAIT_S`, else 60."""
    if wait_s is None:
        text = os.environ.get(ENV_WRITE_WAIT_S, "").strip()
        try:
            wait_s = float(text) if text else DEFAULT_WRITE_WAIT_S
        except ValueError:
            raise InputError(f"{ENV_WRITE_WAIT_S}={text!r} is not a number of seconds, e.g. 60") from None
    if not 0 <= wait_s < float("inf"):
        raise InputError(f"the write wait must be a finite number of seconds, at least 0, got {wait_s}")
    return float(wait_s)
