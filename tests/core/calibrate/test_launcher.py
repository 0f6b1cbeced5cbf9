"""The app's side of a run: launch in a new process group, watch the run folder, cancel, report failures."""

from __future__ import annotations

import os
import time
from pathlib import Path

from core.calibrate import launcher
from core.calibrate.runfolder import RunFolder, Status

WAIT_S = 300  # an upper bound against hanging on a loaded machine, not a performance threshold


def wait_for(folder: RunFolder, predicate: str) -> Status:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        status = launcher.state(folder)
        if predicate == "final" and status.final:
            return status
        if predicate == "stepping" and any(e["event"] == "step" for e in folder.events()):
            return status
        time.sleep(0.2)
    raise AssertionError(f"run {folder.path} did not reach {predicate}: {launcher.log_tail(folder, 5)}")


def test_cancel_stops_the_process(tiny_config: Path, tmp_path: Path) -> None:
    run = launcher.launch(["--probe", "--model", str(tiny_config), "--device", "cpu", "--methods", "fft,lora",
                           "--time-budget", "600"], root=tmp_path / "runs")
    wait_for(run.folder, "stepping")
    status = launcher.cancel(run.folder)
    assert status.state == "cancelled"
    assert "cancelled by the user" in status.message
    assert not launcher.alive(run.pid)
    assert launcher.exit_code(run.pid) == 130  # the runner handled SIGTERM itself, no SIGKILL needed
    assert not run.folder.complete  # a cancelled run is never ingested
    try:
        os.killpg(run.pid, 0)
        raise AssertionError("the process group still has members")
    except ProcessLookupError:
        pass


def test_a_run_that_never_starts_reports_the_cli_line(tiny_config: Path, tmp_path: Path) -> None:
    run = launcher.launch(["--probe", "--model", str(tiny_config), "--steps", "0"], root=tmp_path / "runs")
    status = wait_for(run.folder, "final")
    assert status.state == "failed"
    assert status.message.endswith("error: --steps 0: the budget must be at least 1 step")
    assert launcher.exit_code(run.pid) == 2


def test_cancel_of_a_finished_run_keeps_its_status(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "done").create()
    folder.set_status("done", "4 of 4 runs ok")
    assert launcher.cancel(folder).state == "done"


def test_cancel_kills_after_the_grace_period(tiny_config: Path, tmp_path: Path) -> None:
    run = launcher.launch(["--probe", "--model", str(tiny_config), "--device", "cpu", "--methods", "fft",
                           "--time-budget", "600"], root=tmp_path / "runs")
    wait_for(run.folder, "stepping")
    status = launcher.cancel(run.folder, grace_s=0)
    assert status.state == "cancelled"
    assert not launcher.alive(run.pid)
