"""`python -m core warehouse` with one of: `init`, `import FILE`, `export TABLE FILE`, `publish ROOT`, `ingest FOLDER`,
`stats`.

The warehouse location follows `--path`, else `TUNEWISE_WAREHOUSE`, else the user's data directory;
`TUNEWISE_READ_ONLY=1` makes every writing command fail with a clear message. Any number of these commands
and app processes may run at once: reads never wait, writes take turns and wait at most `--wait` seconds
(default `TUNEWISE_WRITE_WAIT_S`, else 60) before giving up with one line. Without `--path`,
`TUNEWISE_PARQUET_ROOT` (a folder or s3:// URL written by `publish` or `export all`) makes `stats` and
`export` read Parquet files instead of a DuckDB file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.warehouse import Warehouse


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--path", help="warehouse file (default: $TUNEWISE_WAREHOUSE, else the user's data directory)")
    parser.add_argument("--wait", type=float, metavar="SECONDS",
                        help="how long a write waits for another to finish (default: $TUNEWISE_WRITE_WAIT_S, else 60)")


def _open(args: argparse.Namespace) -> Warehouse:
    from core.warehouse import open_warehouse

    return open_warehouse(args.path, wait_s=args.wait)


def _init(args: argparse.Namespace) -> int:
    with _open(args) as wh:
        wh.require_writable("initialise the warehouse")
        stats = wh.stats()
        print(
            f"warehouse ready at {wh.location} (schema version {stats['schema_version']}): "
            f"{stats['results']} results, {stats['sources']} cited tables, {stats['claims']} claims, "
            f"{stats['pairs']} FFT-vs-PEFT pairs"
        )
    return 0


def _import(args: argparse.Namespace) -> int:
    from core.warehouse import ImportRejectedError

    with _open(args) as wh:
        try:
            report = wh.import_file(Path(args.file), max_mb=args.max_mb)
        except ImportRejectedError as exc:
            for line, reason in exc.errors:  # every bad row; the dispatcher then prints the summary line
                print(f"{exc.name}: {exc.unit} {line}: {reason}", file=sys.stderr)
            raise
        print(report)
    return 0


def _export(args: argparse.Namespace) -> int:
    with _open(args) as wh:
        if args.table == "all":
            written = wh.export_folder(Path(args.file))
            print(f"exported {len(written)} tables as Parquet under {args.file} (usable as TUNEWISE_PARQUET_ROOT)")
        else:
            print(f"exported {args.table} to {wh.export(args.table, Path(args.file))}")
    return 0


def _publish(args: argparse.Namespace) -> int:
    with _open(args) as wh:
        version = wh.publish_parquet(Path(args.root))
        print(f"published version {version} under {args.root}; replicas with TUNEWISE_PARQUET_ROOT={args.root} "
              "read it from their next query")
    return 0


def _ingest(args: argparse.Namespace) -> int:
    with _open(args) as wh:
        print(wh.ingest_run_folder(Path(args.folder)))
    return 0


def _stats(args: argparse.Namespace) -> int:
    from core.warehouse.queries import method_counts

    with _open(args) as wh:
        stats = wh.stats()
        if args.json:
            print(json.dumps(stats, indent=2, sort_keys=True))
            return 0
        for key, value in stats.items():
            print(f"{key:>20}: {value}")
        print("\nrows per method id (raw names as published):")
        for row in method_counts(wh).itertuples(index=False):
            print(f"{row.method_id:>20}: {row.rows:>5}  {'; '.join(row.raw_names)}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `warehouse` and its sub-commands."""
    parser = subparsers.add_parser(
        "warehouse", help="the results warehouse: init, import, export, publish, ingest, stats", description=__doc__
    )
    commands = parser.add_subparsers(dest="warehouse_command", required=True)

    init = commands.add_parser("init", help="create, migrate and seed the warehouse (idempotent)")
    _common(init)
    init.set_defaults(handler=_init)

    imp = commands.add_parser("import", help="import a CSV, Parquet or JSON file in the published-results format")
    imp.add_argument("file", help="the file; its columns must be those of data/published_results.csv")
    imp.add_argument("--max-mb", type=float, help="size limit in MB (default: $TUNEWISE_MAX_IMPORT_MB, else 50)")
    _common(imp)
    imp.set_defaults(handler=_import)

    exp = commands.add_parser("export", help="export a table or view as CSV/Parquet, or 'all' to a Parquet folder")
    exp.add_argument("table", help="a table or view (results, results_wide, pairs, claims, ...) or 'all'")
    exp.add_argument("file", help="target .csv or .parquet file; for 'all', a folder")
    _common(exp)
    exp.set_defaults(handler=_export)

    pub = commands.add_parser("publish", help="publish every table as a new Parquet version for app replicas")
    pub.add_argument("root", help="a local folder (the replicas' TUNEWISE_PARQUET_ROOT)")
    _common(pub)
    pub.set_defaults(handler=_publish)

    ing = commands.add_parser("ingest", help="ingest a finished calibration run folder")
    ing.add_argument("folder", help="a run folder with a COMPLETE marker")
    _common(ing)
    ing.set_defaults(handler=_ingest)

    sts = commands.add_parser("stats", help="row counts per table, pairs and the method-name report")
    sts.add_argument("--json", action="store_true", help="print the counts as JSON")
    _common(sts)
    sts.set_defaults(handler=_stats)
