"""One calibration run from start to finish inside the runner process, always leaving a final status.

Order: spec.json (unless the caller wrote it) and status `running`; the probe or learn loop (progress.jsonl as
it goes); the warehouse's files, summary.json and the COMPLETE marker; status `done`. SIGTERM or the cancel
marker ends it with status `cancelled`, keeping the methods that finished (their records are in the progress
events): those are written and marked COMPLETE like a finished run, so they are stored too; a run cancelled
before any method finished leaves nothing to store. Bad input ends with `failed` and the InputError's line;
anything else with `failed` and the exception's first line. Under `accelerate launch` only rank 0 writes.
`store` lands a COMPLETE folder in the warehouse and records the outcome in `stored.json` for the app.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from types import FrameType
from typing import Any

from core.calibrate.learn import run_learn
from core.calibrate.multigpu import is_main_process
from core.calibrate.probe_run import run_probe
from core.calibrate.records import RunFacts, learn_records, probe_records, result_rows
from core.calibrate.runfolder import CURVES, MEASUREMENTS, RESULTS, RUNS, SPEC, STORED, SUMMARY, RunFolder
from core.calibrate.spec import CalibrationSpec
from core.calibrate.train import Cancelled, device_name, library_versions
from core.errors import InputError

EXIT_FAILED = 1
EXIT_CANCELLED = 130  # as a shell reports an interrupted job


@dataclass
class Outcome:
    """What the CLI reports: the exit code, the final state and the per-method records."""

    code: int
    state: str
    message: str = ""
    runs: list[dict[str, Any]] = field(default_factory=list)
    stored: str = ""


class _Quiet(RunFolder):
    """A run folder that writes nothing (workers other than rank 0 under accelerate launch)."""

    def set_status(self, state: str, message: str = "", pid: int | None = None) -> None:
        return None

    def event(self, kind: str, **fields: Any) -> None:
        return None


def execute(
    spec: CalibrationSpec, folder: RunFolder, device: str, argv: Sequence[str] = (), *, ingest: bool = False
) -> Outcome:
    """Run `spec` on `device`, writing `folder` (see the module docstring); with `ingest`, store what it finished
    in the warehouse before the status turns final, so whoever sees the final status sees it stored."""
    writer = folder.create() if is_main_process() else _Quiet(folder.path)
    started = time.time()
    if is_main_process() and not folder.file(SPEC).is_file():
        spec.write(folder.file(SPEC))
    writer.set_status("running", f"{spec.mode}: {_plural(len(spec.methods), 'method')} on {device}")
    writer.event("start", mode=spec.mode, device=device, methods=[m.method for m in spec.methods],
                 total_steps=spec.steps, data_sizes=list(spec.data_sizes), argv=list(argv))
    try:
        with _sigterm_cancels():
            if spec.mode == "probe":
                runs, curves = run_probe(spec, device, writer, lambda: folder.cancel_requested), []
            else:
                runs, curves = run_learn(spec, device, writer, lambda: folder.cancel_requested)
    except Cancelled:
        finished = [{k: v for k, v in e.items() if k not in ("event", "time")} for e in writer.events()
                    if e.get("event") == "method_done"]
        message = f"cancelled by the user after {len(finished)} of {_units(spec)} {_unit_name(spec)}"
        stored = ""
        if finished and is_main_process():
            _write_results(spec, writer, device, finished, [])
            message += "; the finished ones are kept"
            stored = store(folder) if ingest else ""
        writer.set_status("cancelled", message)
        return Outcome(EXIT_CANCELLED, "cancelled", message, finished, stored)
    except InputError as exc:
        writer.set_status("failed", str(exc))
        raise
    except Exception as exc:
        message = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        writer.set_status("failed", message)
        return Outcome(EXIT_FAILED, "failed", message)
    stored = ""
    if is_main_process():
        _write_results(spec, writer, device, runs, curves)
        stored = store(folder) if ingest else ""
    ok = sum(r["status"] == "ok" for r in runs)
    message = f"1 run: {ok} of {len(runs)} {_unit_name(spec)} ok in {time.time() - started:.0f} s"
    writer.event("done", ok=ok, runs=len(runs))
    writer.set_status("done", message)
    return Outcome(0, "done", message, runs, stored)


def _units(spec: CalibrationSpec) -> int:
    return len(spec.methods) * max(1, len(spec.data_sizes))


def _unit_name(spec: CalibrationSpec) -> str:
    """What one unit of work is: a method (probe, or learn on all the data) or a (method, data size) training."""
    return "trainings (method x data size)" if spec.data_sizes else "methods"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def store(folder: RunFolder) -> str:
    """Ingest a COMPLETE run folder into the warehouse; one line saying what landed, or why it stays in the folder
    (a busy, read-only or unreadable warehouse: the app picks up folders nobody ingested). The outcome goes to
    `stored.json` (`stored`, `counts`: the report's words without any path) for the app to show."""
    from core.warehouse import open_warehouse

    try:
        with open_warehouse() as wh:
            report = wh.ingest_run_folder(folder.path)
            location = wh.location
    except InputError as exc:
        folder.write_json(STORED, {"stored": False, "reason": str(exc)})
        return (f"not stored in the warehouse ({exc}); the run stays in {folder.path}: "
                f"`python -m core warehouse ingest {folder.path}` stores it later")
    folder.write_json(STORED, {"stored": True, "counts": report.counts, "skipped": report.skipped})
    return f"stored in the warehouse {location}: {report}"


def _write_results(
    spec: CalibrationSpec, folder: RunFolder, device: str, runs: list[dict[str, Any]], curves: Sequence[Any]
) -> None:
    facts = RunFacts(folder.run_id, device, device_name(device), library_versions())
    for run in runs:
        run["device_name"] = facts.device_name
    if spec.mode == "probe":
        calibration, measurements = probe_records(spec, facts, runs)
    else:
        calibration, measurements = learn_records(spec, facts, runs), []
    folder.write_table(RUNS, [asdict(r) for r in calibration])
    folder.write_table(MEASUREMENTS, [asdict(m) for m in measurements])
    folder.write_table(RESULTS, result_rows(spec, facts, runs))
    folder.write_table(CURVES, [asdict(c) for c in curves])
    folder.write_json(SUMMARY, {"run_id": folder.run_id, "mode": spec.mode, "device": device,
                                "device_name": facts.device_name, "library_versions": facts.library_versions,
                                "runs": runs})
    folder.mark_complete()


@contextmanager
def _sigterm_cancels() -> Iterator[None]:
    """SIGTERM raises Cancelled in the main thread (signal handlers can only be set there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Cancelled

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
