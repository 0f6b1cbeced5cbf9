"""The GPU catalogue (`data/gpus.csv`): usable memory, dense bf16 tensor TFLOPS and an hourly price per GPU.

Memory is what `torch.cuda.get_device_properties(0).total_memory` reports (a little under the marketed size),
TFLOPS are the vendors' dense (non-sparse) bf16 figures (fp16 for T4/V100, which lack bf16; GeForce cards with
fp32 accumulation as PyTorch uses it). `memory_gbs` is the datasheet memory bandwidth (GB/s, what the optimizer
step is bound by) and `link_gbs` the GPU-to-GPU bandwidth per direction a collective gets inside one node
(GB/s): NVLink's total over 2 for SXM parts and MI300X's Infinity Fabric (V100 300, A100 600, H100/H200 900,
B200 1800 GB/s bidirectional), else the PCIe slot's x16 rate (Gen3 16, Gen4 32, Gen5 64 GB/s).
Prices are typical on-demand cloud rates in USD per GPU-hour and are
meant to be edited: change the CSV, or pass a price override. Names match forgivingly: case, spaces, dashes
and a trailing 'GB' do not matter ('a100 80gb' is A100-80GB), and an unknown name lists the closest ids.
"""

from __future__ import annotations

import csv
import difflib
import re
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

from core.errors import InputError
from core.units import GIB

GPU_CSV = Path(__file__).resolve().parent.parent.parent / "data" / "gpus.csv"


@dataclass(frozen=True)
class Gpu:
    """One catalogue GPU."""

    id: str
    name: str
    vendor: str
    memory_gib: float
    bf16_tflops: float
    usd_per_hour: float
    memory_gbs: float
    link_gbs: float
    aliases: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if min(self.memory_gib, self.bf16_tflops, self.memory_gbs, self.link_gbs) <= 0 or self.usd_per_hour < 0:
            raise ValueError(f"GPU {self.id}: memory, TFLOPS and bandwidths must be positive, price not negative")

    @property
    def memory_bytes(self) -> int:
        return int(self.memory_gib * GIB)


def _norm(name: str) -> str:
    text = re.sub(r"[^a-z0-9]", "", name.lower())
    return text.removeprefix("nvidia").removeprefix("amd").removeprefix("geforce")


@cache
def catalogue() -> dict[str, Gpu]:
    """All GPUs keyed by id, in file order."""
    with GPU_CSV.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return {
        row["id"]: Gpu(
            id=row["id"],
            name=row["name"],
            vendor=row["vendor"],
            memory_gib=float(row["memory_gib"]),
            bf16_tflops=float(row["bf16_tflops"]),
            usd_per_hour=float(row["usd_per_hour"]),
            memory_gbs=float(row["memory_gbs"]),
            link_gbs=float(row["link_gbs"]),
            aliases=tuple(a.strip() for a in row["aliases"].split(";") if a.strip()),
        )
        for row in rows
    }


@cache
def _lookup() -> dict[str, str]:
    table: dict[str, str] = {}
    for gpu in catalogue().values():
        for name in (gpu.id, gpu.name, *gpu.aliases):
            table.setdefault(_norm(name), gpu.id)
            table.setdefault(_norm(name).removesuffix("gb"), gpu.id)
    return table


def find_gpu(name: str, *, price: float | None = None) -> Gpu:
    """The GPU called `name` (forgiving match), with an optional hourly price override; unknown -> InputError."""
    key = _norm(name)
    gpu_id = _lookup().get(key) or _lookup().get(key.removesuffix("gb"))
    if gpu_id is None:
        close = difflib.get_close_matches(key, list(_lookup()), n=6, cutoff=0.4)
        ids = list(dict.fromkeys(_lookup()[c] for c in close))[:3] or list(catalogue())[:3]
        raise InputError(f"unknown GPU {name!r}: did you mean {', '.join(ids)}? (all: {', '.join(catalogue())})")
    gpu = catalogue()[gpu_id]
    return gpu if price is None else replace(gpu, usd_per_hour=price)
