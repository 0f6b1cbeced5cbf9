"""More than one GPU: the generated accelerate config and the `accelerate launch` command, checked by accelerate
itself (its config loader and launch parser) without any GPU."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from accelerate.commands.config.config_args import load_config_from_file
from accelerate.commands.launch import _validate_launch_command, launch_command_parser
from accelerate.utils.launch import prepare_multi_gpu_env

from core.calibrate.multigpu import launch_command, write_config
from core.cli import main
from core.errors import InputError


@pytest.mark.parametrize(("sharding", "kind"), [("fsdp", "FSDP"), ("zero2", "DEEPSPEED"), ("zero3", "DEEPSPEED")])
def test_config_loads_in_accelerate(tmp_path: Path, sharding: str, kind: str) -> None:
    config = load_config_from_file(str(write_config(tmp_path, 4, sharding, "bf16")))
    assert config.distributed_type == kind
    assert config.num_processes == 4
    assert config.mixed_precision == "bf16"
    if kind == "DEEPSPEED":
        assert config.deepspeed_config["zero_stage"] == int(sharding[-1])
    else:
        assert config.fsdp_config["fsdp_version"] == 2


def test_fsdp_launch_prepares_the_worker_environment(tmp_path: Path) -> None:
    command = launch_command(write_config(tmp_path, 2, "fsdp", "bf16", checkpointing=True), ["--probe"])
    args = launch_command_parser().parse_args(command[command.index("launch") + 1 :])
    args, _, _ = _validate_launch_command(args)
    env = prepare_multi_gpu_env(args)
    assert (env["ACCELERATE_USE_FSDP"], env["FSDP_VERSION"]) == ("true", "2")
    assert env["FSDP_SHARDING_STRATEGY"] == "FULL_SHARD"
    assert env["FSDP_ACTIVATION_CHECKPOINTING"] == "true"
    assert env["ACCELERATE_MIXED_PRECISION"] == "bf16"


def test_dry_run_prints_the_launch_command(capsys: pytest.CaptureFixture[str], tiny_config: Path,
                                           tmp_path: Path) -> None:
    folder = tmp_path / "run"
    code = main(["calibrate", "--probe", "--model", str(tiny_config), "--methods", "fft,lora", "--gpus", "4",
                 "--sharding", "zero3", "--precision", "bf16-mixed", "--dry-run", "--run-dir", str(folder)])
    assert code == 0
    command = shlex.split(capsys.readouterr().out.strip())
    launch = command[command.index("launch") + 1 :]
    args = launch_command_parser().parse_args(launch)
    assert args.config_file == str(folder / "accelerate_config.yaml") and args.module
    assert args.training_script == "core"
    worker = args.training_script_args
    assert worker[0] == "calibrate" and "--probe" in worker and "--dry-run" not in worker
    assert worker[worker.index("--gpus") + 1] == "4"  # workers see WORLD_SIZE > 1 and train, not relaunch
    assert worker[worker.index("--run-dir") + 1] == str(folder)
    assert worker[worker.index("--methods") + 1] == "fft,lora"
    args, _, _ = _validate_launch_command(args)
    assert args.use_deepspeed and args.num_processes == 4 and args.zero_stage == 3


def test_one_gpu_is_not_a_multi_gpu_launch(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="at least 2 GPUs"):
        write_config(tmp_path, 1, "fsdp", "fp32")
