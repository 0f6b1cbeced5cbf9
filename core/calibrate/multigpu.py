"""More than one GPU: an accelerate config (FSDP or DeepSpeed ZeRO) and the `accelerate launch` command.

The config is what `accelerate config` would write for one machine (accelerate's ClusterConfig keys:
`distributed_type`, `num_processes`, `fsdp_config` / `deepspeed_config`); `accelerate launch` then starts
one worker per GPU, each running `python -m core calibrate` with the same flags. Workers see WORLD_SIZE > 1
and train through `accelerate.Accelerator`, which shards the model as configured.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from core.errors import InputError

SHARDING: tuple[str, ...] = ("fsdp", "zero1", "zero2", "zero3")
CONFIG_FILE = "accelerate_config.yaml"
# accelerate's mixed_precision values: weights stay fp32, compute is autocast to the named dtype.
MIXED_PRECISION: dict[str, str] = {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}


def accelerate_config(gpus: int, sharding: str, compute_dtype: str, *, checkpointing: bool = False) -> dict[str, Any]:
    """The accelerate config dict for `gpus` processes on this machine."""
    if gpus < 2:
        raise InputError(f"--gpus {gpus}: a multi-GPU launch needs at least 2 GPUs")
    if sharding not in SHARDING:
        raise InputError(f"--sharding {sharding!r} is not one of {', '.join(SHARDING)}")
    if compute_dtype not in MIXED_PRECISION:
        raise InputError(f"compute dtype {compute_dtype!r} is not one of {', '.join(MIXED_PRECISION)}")
    config: dict[str, Any] = {
        "compute_environment": "LOCAL_MACHINE",
        "machine_rank": 0,
        "num_machines": 1,
        "num_processes": gpus,
        "gpu_ids": "all",
        "mixed_precision": MIXED_PRECISION[compute_dtype],
        "rdzv_backend": "static",
        "same_network": True,
        "use_cpu": False,
        "main_training_function": "main",
    }
    if sharding == "fsdp":
        config["distributed_type"] = "FSDP"
        config["fsdp_config"] = {
            "fsdp_version": 2,  # FSDP2 (per-parameter DTensor sharding): works with frozen + trainable mixes (PEFT)
            "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
            "fsdp_reshard_after_forward": True,  # FULL_SHARD: parameters, gradients and optimizer states sharded
            "fsdp_offload_params": False,
            "fsdp_state_dict_type": "SHARDED_STATE_DICT",
            "fsdp_cpu_ram_efficient_loading": False,
            "fsdp_activation_checkpointing": checkpointing,
        }
    else:
        stage = int(sharding[-1])
        config["distributed_type"] = "DEEPSPEED"
        config["deepspeed_config"] = {
            "zero_stage": stage,  # ZeRO-1: optimizer states; ZeRO-2: + gradients; ZeRO-3: + parameters
            "offload_optimizer_device": "none",
            "offload_param_device": "none",
            "gradient_accumulation_steps": 1,
            "zero3_init_flag": stage == 3,
            **({"zero3_save_16bit_model": True} if stage == 3 else {}),
        }
    return config


def write_config(folder: Path, gpus: int, sharding: str, compute_dtype: str, *, checkpointing: bool = False) -> Path:
    """Write the config as YAML into `folder` and return its path."""
    path = folder / CONFIG_FILE
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(accelerate_config(gpus, sharding, compute_dtype, checkpointing=checkpointing),
                                   sort_keys=True), encoding="utf-8")
    return path


def launch_command(config_file: Path, calibrate_args: Sequence[str]) -> list[str]:
    """`accelerate launch --config_file X -m core calibrate ARGS`, run by this interpreter's accelerate."""
    return [sys.executable, "-m", "accelerate.commands.accelerate_cli", "launch", "--config_file", str(config_file),
            "-m", "core", "calibrate", *calibrate_args]


def shell(command: Sequence[str]) -> str:
    """The command as one copy-pasteable shell line."""
    return shlex.join(command)


def world_size() -> int:
    """Processes in this launch (accelerate launch / torchrun set WORLD_SIZE); 1 when run directly."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0") or 0) == 0
