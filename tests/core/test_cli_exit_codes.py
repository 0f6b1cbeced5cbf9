"""Every sub-command's exit codes (0 done, 2 bad input in one line, 130 interrupted), `--help` without the
engine's imports, and the shipped example scenario files."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_runner import run_cli

import core.cli.models
from core.cli import estimate as estimate_cli

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ("calibrate", "estimate", "gap", "models", "recommend", "warehouse")
HEAVY = ("torch", "transformers", "peft", "pandas", "duckdb", "pyarrow", "numpy")


def test_help_imports_no_engine() -> None:
    """`python -m core --help` and each sub-command's `--help` exit 0 without importing torch, pandas or duckdb."""
    script = (
        "import json, sys\n"
        "from core.cli import main\n"
        "codes = []\n"
        f"for argv in ([], *([c] for c in {COMMANDS!r}), ['warehouse', 'stats']):\n"
        "    try:\n"
        "        main([*argv, '--help'])\n"
        "    except SystemExit as exc:\n"
        "        codes.append(exc.code)\n"
        f"print(json.dumps({{'codes': codes, 'heavy': [m for m in {HEAVY!r} if m in sys.modules]}}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["codes"] == [0] * (len(COMMANDS) + 2)
    assert result["heavy"] == []


REQUIRED = {"calibrate": ["--probe"], "warehouse": ["stats"],
            "recommend": ["--task-type", "code", "--train-examples", "1", "--model", "gpt2", "--gpu", "T4"]}


@pytest.mark.parametrize("command", COMMANDS)
def test_unknown_flag_is_one_line_exit_2(capsys: pytest.CaptureFixture[str], command: str) -> None:
    code, out, err = run_cli(capsys, command, *REQUIRED.get(command, []), "--bogus")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "--bogus" in err and "--help" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["estimate", "--method", "lora"], "--model is missing"),
        (["gap", "--task-type", "code"], "give --input/--output for a batch, or --task-type and --method"),
        (["gap", "--input", "none.csv"], "batch mode needs both --input IN.csv and --output OUT.csv"),
        (["recommend", "--task-type", "code", "--train-examples", "100", "--model", "gpt2", "--gpu", "T4",
          "--priority", "speed=2"], "--priority 'speed=2'"),
        (["warehouse", "import", "no-such-file.csv"], "no-such-file.csv"),
        (["calibrate", "--probe"], "--model is missing"),
        (["estimate", "--model", "gpt2", "--method", "lora", "--seq-len", "4096"],
         "exceeds the 1024 positions of openai-community/gpt2's learned position table"),
    ],
)
def test_bad_input_is_one_line_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1


def test_interrupted_exits_130(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(args: argparse.Namespace) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(core.cli.models, "run", interrupted)
    code, out, err = run_cli(capsys, "models")
    assert code == 130 and out == "" and err.strip() == "interrupted before it finished"


def test_models_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "models")
    assert code == 0 and err == "" and "meta-llama/Llama-2-7b-hf" in out


def test_example_estimate_scenarios_all_check() -> None:
    """Every row of data/examples/estimate_scenarios.csv is a valid scenario (checked, not estimated: fast)."""
    subparsers = argparse.ArgumentParser().add_subparsers()
    estimate_cli.register(subparsers)
    parser = subparsers.choices["estimate"]
    path = ROOT / "data" / "examples" / "estimate_scenarios.csv"
    base = parser.parse_args(["--input", str(path)])
    columns = estimate_cli.scenario_columns(parser)
    _, rows = estimate_cli.read_rows(path, columns)
    checked = [estimate_cli.check_row(n, row, base, columns) for n, row in rows]
    assert [c.number for c in checked] == [1, 2, 3, 4, 5]
    assert {c.scenario.model.name for c in checked} == {"meta-llama/Llama-2-7b-hf", "FacebookAI/roberta-base"}
    assert checked[3].scenario.training.sharding == "zero3" and checked[3].scenario.training.gpus == 8
    assert [m.method for m in checked[4].scenario.methods] == ["lora", "bitfit"] and checked[4].several


def test_example_gap_scenarios_all_predicted(seeded_file: Path, isolated_settings: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copyfile(seeded_file, isolated_settings)
    out_path = tmp_path / "gaps.csv"
    source = ROOT / "data" / "examples" / "gap_scenarios.csv"
    code, out, err = run_cli(capsys, "gap", "--input", str(source), "--output", str(out_path))
    rows = out_path.read_text(encoding="utf-8").splitlines()
    assert code == 0 and err == ""
    assert out.strip() == f"wrote 5 rows to {out_path} (5 predicted, 0 with problems)"
    assert len(rows) == 6 and rows[0].startswith("id,gap_mean,gap_low,gap_high")


def test_a_config_transformers_cannot_build_is_one_line_exit_2(capsys: pytest.CaptureFixture[str],
                                                                 tmp_path: Path) -> None:
    """Reformer's LM head needs `is_decoder=True`; transformers asserts it while building (an AssertionError, not
    the ValueError a config usually raises): one line naming transformers' reason, no traceback."""
    config = tmp_path / "reformer.json"
    config.write_text(json.dumps({"model_type": "reformer", "is_decoder": False}))
    code, out, err = run_cli(capsys, "estimate", "--model", str(config), "--method", "lora", "--targets", "all-linear")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert "cannot build" in err and "AssertionError" in err and "is_decoder=True" in err


def test_a_length_past_the_position_table_is_refused_before_any_trace(capsys: pytest.CaptureFixture[str],
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import core.estimate

    def no_trace(*args: object, **kwargs: object) -> None:
        raise AssertionError("a trace started before the length was checked")

    monkeypatch.setattr(core.estimate, "trace_ahead", no_trace)
    code, out, err = run_cli(capsys, "estimate", "--model", "gpt2", "--method", "lora,fft", "--seq-len", "2048")
    assert code == 2 and out == "" and "use --seq-len 1024 or less" in err
