"""Start, watch and cancel a calibration process from the app (or any other long-lived caller).

The runner is `python -m core calibrate ... --run-dir FOLDER`, started in its own session (process group),
so a cancel reaches it and anything it spawned (`accelerate launch` workers). Cancel = write the `cancel`
marker (the runner stops at its next step), SIGTERM the group (the runner writes status `cancelled` and
exits), then SIGKILL the group after a grace period. A process that died without a final status is reported
as failed with the tail of its log.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from core.calibrate.runfolder import LOG, RunFolder, Status, new_run_id, runs_dir

LAUNCH = "launch.json"
GRACE_S = 10.0
_ROOT = Path(__file__).resolve().parents[2]
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}  # processes this process started, reaped on poll


@dataclass(frozen=True)
class Launched:
    """A started run: its folder and the process group leader's pid."""

    folder: RunFolder
    pid: int
    command: tuple[str, ...]

    @property
    def run_id(self) -> str:
        return self.folder.run_id


def launch(args: Sequence[str], *, root: Path | None = None, run_id: str | None = None) -> Launched:
    """Start `python -m core calibrate ARGS --run-dir <root>/<run id>` in a new process group."""
    folder = RunFolder((root or runs_dir()) / (run_id or new_run_id())).create()
    command = (sys.executable, "-m", "core", "calibrate", *args, "--run-dir", str(folder.path))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    folder.set_status("starting", "starting the calibration process", pid=0)
    with folder.file(LOG).open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   cwd=_ROOT, env=env, start_new_session=True)
    _CHILDREN[process.pid] = process
    folder.write_json(LAUNCH, {"pid": process.pid, "command": list(command), "started": time.time()})
    return Launched(folder, process.pid, command)


def launched_pid(folder: RunFolder) -> int | None:
    """The pid `launch` recorded (None for a folder started elsewhere)."""
    try:
        return int(json.loads(folder.file(LAUNCH).read_text(encoding="utf-8"))["pid"])
    except (FileNotFoundError, KeyError, ValueError):
        return None


def alive(pid: int | None) -> bool:
    """Whether the process still runs (children of this process are reaped here, so no zombie counts)."""
    if pid is None:
        return False
    child = _CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def exit_code(pid: int | None) -> int | None:
    child = _CHILDREN.get(pid) if pid is not None else None
    return child.poll() if child is not None else None


def state(folder: RunFolder) -> Status:
    """The run's status; a process gone without a final status is a failure, with its log's last line."""
    status = folder.status() or Status("starting")
    if status.final:
        return status
    pid = launched_pid(folder)
    if pid is None or alive(pid):
        return status
    status = folder.status() or status  # it may have finished between the two reads
    if status.final:
        return status
    code = exit_code(pid)
    reason = f"the calibration process exited (code {code}) without a result" if code is not None else (
        "the calibration process is gone without a result")
    tail = log_tail(folder)
    return Status("failed", f"{reason}: {tail}" if tail else reason, pid)


def log_tail(folder: RunFolder, lines: int = 1) -> str:
    try:
        text = folder.file(LOG).read_text(encoding="utf-8", errors="replace").strip()
    except FileNotFoundError:
        return ""
    return " | ".join(text.splitlines()[-lines:])


def cancel(folder: RunFolder, *, grace_s: float = GRACE_S) -> Status:
    """Stop the run: marker, SIGTERM to its group, SIGKILL after `grace_s`; returns the final status."""
    folder.request_cancel()
    pid = launched_pid(folder)
    if pid is not None and alive(pid):
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if alive(pid):
            _signal_group(pid, signal.SIGKILL)
            while alive(pid):
                time.sleep(0.05)
    status = folder.status()
    if status is None or not status.final:
        folder.set_status("cancelled", "cancelled by the user", pid=pid or 0)
        status = folder.status()
    assert status is not None
    return status


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)  # the runner leads its own session, so its pid is the group id
