"""The app's side of a run: one live run per runs folder, launch on a spec file in a new process group, watch the
run folder, cancel (the process group, keeping and storing what finished), report failures."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from core.calibrate import launcher
from core.calibrate.runfolder import SPEC, RunFolder, Status
from core.calibrate.spec import CalibrationSpec
from core.warehouse import memory_measurements, open_warehouse
from tests.support import forced_failure_env

from .conftest import run_cli, tiny_spec

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


def test_one_live_run_a_second_start_is_refused_then_cancel_stops_the_group(
    tiny_config: Path, tmp_path: Path
) -> None:
    root = tmp_path / "runs"
    spec = tiny_spec(tiny_config, ("fft", "lora"), time_budget_s=600.0)
    run = launcher.launch(spec, root=root, owner="tester")
    assert CalibrationSpec.read(run.folder.file(SPEC)) == spec  # the runner works from the page's spec file
    live = launcher.live_run(root)
    assert live is not None and (live.run_id, live.pid, live.owner) == (run.run_id, run.pid, "tester")
    with pytest.raises(launcher.RunBusyError, match=r"^a calibration run is already running \(started "
                       r"\d\d:\d\d\); cancel it or wait$"):
        launcher.launch(spec, root=root)
    assert [p.name for p in root.iterdir() if p.is_dir()] == [run.run_id]  # nothing half-started
    shell = run_cli(["--probe", "--model", str(tiny_config), "--device", "cpu", "--run-dir",
                     str(root / "from-a-shell")])
    assert shell.returncode == 2 and "a calibration run is already running" in shell.stderr
    wait_for(run.folder, "stepping")
    status = launcher.cancel(run.folder)
    assert status.state == "cancelled" and "cancelled by the user after 0 of 2 methods" in status.message
    assert not launcher.alive(run.pid)
    assert launcher.exit_code(run.pid) == 130  # the runner handled SIGTERM itself, no SIGKILL needed
    assert not run.folder.complete  # nothing finished, nothing to store
    with pytest.raises(ProcessLookupError):
        os.killpg(run.pid, 0)  # the whole process group is gone
    assert launcher.live_run(root) is None  # the machine is free again


def test_a_cancelled_run_keeps_and_stores_what_finished(tiny_config: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    for name, value in forced_failure_env("fft").items():  # fft ends at once (failed), lora trains until cancelled
        monkeypatch.setenv(name, value)
    run = launcher.launch(tiny_spec(tiny_config, ("fft", "lora"), time_budget_s=600.0), root=tmp_path / "runs")
    deadline = time.monotonic() + WAIT_S
    while not any(e["event"] == "step" and e["method"] == "lora" for e in run.folder.events()):
        assert time.monotonic() < deadline, launcher.log_tail(run.folder, 5)
        time.sleep(0.2)
    status = launcher.cancel(run.folder)
    assert status.message == "cancelled by the user after 1 of 2 methods; the finished ones are kept"
    assert run.folder.complete and [r["method"] for r in run.folder.summary()] == ["fft"]
    assert run.folder.stored() == {"stored": True, "counts": "1 run, 1 method, 1 measurement, 0 results",
                                   "skipped": False}
    with open_warehouse() as wh:
        stored = memory_measurements(wh)
    assert list(stored["method_id"]) == ["fft"] and list(stored["status"]) == ["failed"]


def test_an_edited_spec_file_is_validated_again(tiny_config: Path, tmp_path: Path) -> None:
    spec_file = tmp_path / SPEC
    tiny_spec(tiny_config, steps=1).write(spec_file)
    spec_file.write_text(json.dumps({**json.loads(spec_file.read_text()), "steps": 0}))
    shell = run_cli(["--spec", str(spec_file), "--run-dir", str(tmp_path / "runs" / "edited")])
    assert shell.returncode == 2
    assert shell.stderr.strip().endswith("error: --steps 0: the budget must be at least 1 step")


def test_cancel_of_a_finished_run_keeps_its_status(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "done").create()
    folder.set_status("done", "4 of 4 runs ok")
    assert launcher.cancel(folder).state == "done"


def test_a_stale_live_entry_lapses(tmp_path: Path) -> None:
    """A live.json whose run is over (or whose process is gone) holds nothing; a shell run may claim the machine."""
    root = tmp_path / "runs"
    finished = RunFolder(root / "20260101-000000-aaaaaa").create()
    finished.set_status("done", "1 run")
    (root / launcher.LIVE).write_text(json.dumps({"run_id": finished.run_id, "pid": os.getpid(), "started": 0,
                                                  "owner": "the app"}))
    assert launcher.live_run(root) is None
    mine = RunFolder(root / "20260101-000001-bbbbbb")
    launcher.claim(mine, owner="a shell")
    live = launcher.live_run(root)
    assert live is not None and (live.run_id, live.owner) == (mine.run_id, "a shell")
    launcher.claim(mine, owner="a shell")  # the run that holds it may claim again (accelerate's workers do)
    with pytest.raises(launcher.RunBusyError):
        launcher.claim(RunFolder(root / "20260101-000002-cccccc"), owner="another shell")
