"""The CPU probe end to end: `python -m core calibrate --probe --json` as the app runs it, then the warehouse.

One run covers FFT and three PEFT methods plus a forced failure (tests/support/forced_failure: dora): the four
are ok, their measured activations are exactly the estimator's CPU probe for the same configuration, the
failed method carries its reason, and the whole run folder lands in a warehouse.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from core.calibrate.recalibrate import Calibration, calibrate
from core.calibrate.records import RunFacts, probe_records
from core.calibrate.runfolder import RunFolder
from core.memory.probe import probe_activations
from core.models import resolve_model
from core.registry import MethodChoice
from core.skeleton import SkeletonKey
from core.warehouse import calibration_runs, memory_measurements, open_warehouse
from tests.support import forced_failure_env

from .conftest import run_cli, write_tiny_config

METHODS = ("fft", "lora", "ia3", "prompt_tuning")
BATCH, SEQ = 2, 16


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One CLI probe run (module-scoped: the tests below read it)."""
    root = tmp_path_factory.mktemp("probe")
    config = write_tiny_config(root)
    folder = root / "run"
    result = run_cli(
        ["--probe", "--model", str(config), "--methods", ",".join((*METHODS, "dora")), "--device", "cpu",
         "--batch-size", str(BATCH), "--seq-len", str(SEQ), "--steps", "2", "--run-dir", str(folder), "--json"],
        env=forced_failure_env("dora"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return {"payload": json.loads(result.stdout), "folder": folder, "config": config}


def test_ok_for_fft_and_three_peft_methods(probe: dict[str, Any]) -> None:
    runs = {r["method"]: r for r in probe["payload"]["runs"]}
    for method in METHODS:
        run = runs[method]
        assert run["status"] == "ok", run
        assert run["measured_activations"] > 0
        assert run["predicted_activations"] > 0
        assert run["tokens_per_s"] > 0
        assert run["predicted_states"] > 0
        # the CPU has no caching allocator and no CUDA context: the predicted total is what is allocated
        assert run["predicted_total"] == run["predicted_peak_allocated"] == run["predicted_allocated"]
        assert not {"predicted_peak_reserved", "predicted_overhead", "predicted_device"} & set(run)
        assert run["measured_states"] == run["measured_weights"] + run["measured_gradients"] + run["measured_optimizer"]
    assert runs["fft"]["measured_gradients"] > runs["lora"]["measured_gradients"]  # FFT trains every weight


def test_measured_activations_are_the_estimators_cpu_probe(probe: dict[str, Any]) -> None:
    key = SkeletonKey(resolve_model(str(probe["config"])), "causal-lm", 2)
    for run in probe["payload"]["runs"]:
        if run["method"] in METHODS:
            expected = probe_activations(key, MethodChoice(run["method"]), batch_size=BATCH, seq_len=SEQ)
            assert run["measured_activations"] == expected.activation_bytes


def test_forced_failure_is_recorded_and_others_go_on(probe: dict[str, Any]) -> None:
    dora = next(r for r in probe["payload"]["runs"] if r["method"] == "dora")
    assert dora["status"] == "failed"
    assert dora["reason"] == "RuntimeError: forced failure of dora (tests/support/forced_failure)"
    assert probe["payload"]["state"] == "done"


def test_run_folder_files(probe: dict[str, Any]) -> None:
    folder = RunFolder(probe["folder"])
    assert folder.complete
    status = folder.status()
    assert status is not None and status.state == "done"
    kinds = [e["event"] for e in folder.events()]
    assert kinds[0] == "start" and kinds[-1] == "done"
    assert kinds.count("method_done") == len(METHODS) + 1
    assert [r["method"] for r in folder.summary()] == [*METHODS, "dora"]


def test_results_land_in_the_warehouse(probe: dict[str, Any]) -> None:
    with open_warehouse() as wh:
        report = wh.ingest_run_folder(probe["folder"])
        assert report.memory_measurements == len(METHODS) + 1
        assert report.calibration_runs == 3 * len(METHODS) + 1  # rows: one per measured quantity
        assert report.counts == f"1 run, {len(METHODS) + 1} methods, {3 * len(METHODS) + 1} measurements, 0 results"
        assert wh.ingest_run_folder(probe["folder"]).skipped  # idempotent
        measurements = memory_measurements(wh)
        runs = calibration_runs(wh)
    ok = measurements[measurements["status"] == "ok"].set_index("method_id")
    payload = {r["method"]: r for r in probe["payload"]["runs"]}
    for method in METHODS:
        assert ok.loc[method, "measured_bytes"] == payload[method]["measured_activations"]
        assert ok.loc[method, "predicted_bytes"] == payload[method]["predicted_activations"]
    failed = measurements[measurements["method_id"] == "dora"].iloc[0]
    assert failed["status"] == "failed" and "forced failure" in failed["failure_reason"]
    assert set(runs["quantity"]) == {"activation_bytes", "state_bytes", "tokens_per_s"}
    calibration = Calibration.from_measurements(measurements)
    assert {g.device for g in calibration.groups.values()} == {"cpu"}
    assert not any(g.corrects for g in calibration.groups.values())  # a CPU probe checks, it does not correct
    for device in ("NVIDIA H100 80GB HBM3", "cpu"):
        assert calibrate({"total": 10_000_000}, calibration, device=device, model_family="llama",
                         method_id="lora") is None


def test_records_validate_before_ingest(probe: dict[str, Any]) -> None:
    """The record builder refuses nothing the runner measured (every record is a valid warehouse row)."""
    from core.cli.calibrate import validate

    spec, device = validate(["--probe", "--model", str(probe["config"]), "--device", "cpu"])
    facts = RunFacts("check", device, "cpu", {"torch": "x"})
    runs, measurements = probe_records(spec, facts, probe["payload"]["runs"])
    assert len(measurements) == len(METHODS) + 1
    assert {r.status for r in runs} == {"ok", "failed"}
