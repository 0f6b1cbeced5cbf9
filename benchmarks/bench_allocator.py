"""The published GPU runs replayed through the caching-allocator model: allocated, reserved and nvidia-smi figures.

For each run of data/gpu_measurements/published_2/cases.csv (published runs mapped to `estimate` flags; the
sources are in sources.md beside it) the whole model is traced at the run's shape (every block, no
extrapolation), every allocation and free of a run's first two steps (the optimizer makes its states inside
the first, among that step's cached blocks) is replayed through `core.memory.allocator` (PyTorch's CUDA caching
allocator, rule for rule), and the table prints the engine's allocated peak, the replay's
allocated and reserved peaks, and reserved + the CUDA context prior of core/memory/overhead.py (what nvidia-smi
shows), beside what was measured. Runs on several GPUs are listed but not replayed: their sharding is
arithmetic over a single-GPU trace, not a traced step. Nothing here is fitted.

    python benchmarks/bench_allocator.py
"""

from __future__ import annotations

import csv
import re
import shlex
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_published_gpu import _parser  # noqa: E402
from core.cli._common import method_choices, model_from_args, training_from_args  # noqa: E402
from core.errors import InputError, NotApplicableError  # noqa: E402
from core.estimate import estimate  # noqa: E402
from core.memory.allocator import replay  # noqa: E402
from core.memory.budget import step_spec  # noqa: E402
from core.memory.overhead import OVERHEAD  # noqa: E402
from core.memory.quantization import check_quantization  # noqa: E402
from core.memory.step import TracedModel  # noqa: E402
from core.scenario import Scenario  # noqa: E402
from core.units import GIB  # noqa: E402

CASES = ROOT / "data" / "gpu_measurements" / "published_2" / "cases.csv"
STEPS = 2  # a third step reserves nothing more on these runs (checked on Mistral-7B full fine-tuning and LoRA)


def _measured(record: dict[str, str]) -> tuple[str, float, float | None]:
    """What was measured (allocated, reserved or nvidia-smi), its GiB, and the allocated GiB stated beside it."""
    kind = record["kind"]
    beside = re.search(r"alloc ([0-9.]+)", kind)
    what = "nvidia-smi" if kind.startswith("nvidia_smi") else "reserved" if "reserved" in kind else "allocated"
    return what, float(record["measured_gib"]), float(beside.group(1)) if beside else None


def main() -> None:
    start = time.perf_counter()
    print("| run | measured | engine allocated | replay allocated | replay reserved | reserved + context "
          "| error of the matching figure |")
    print("|---|---|---:|---:|---:|---:|---:|")
    errors: list[float] = []
    with CASES.open(newline="") as handle:
        for record in csv.DictReader(handle):
            model = record["model"].replace("@configs/", str(CASES.parent / "configs") + "/")
            args = _parser().parse_args(["estimate", "--model", model, *shlex.split(record["args"])])
            what, value, allocated_beside = _measured(record)
            measured = f"{what} {value:.2f}" + (f" (allocated {allocated_beside:.2f})" if allocated_beside else "")
            setup = training_from_args(args)
            if setup.gpus > 1:
                print(f"| {record['case']} | {measured} | sharded over {setup.gpus} GPUs: not replayed | | | | |")
                continue
            try:
                choices, _ = method_choices(args)
                scenario = Scenario(model_from_args(args), tuple(choices), args.task or "", args.num_labels or 2,
                                    setup)
                engine = estimate(scenario).methods[0].training
                spec = step_spec(setup, check_quantization(choices[0], setup))
                traced = TracedModel(scenario.skeleton_key, choices[0], spec, None)
                peaks = replay(traced.first_steps_log(setup.batch_size, setup.seq_len, steps=STEPS))
            except (InputError, NotApplicableError) as exc:
                print(f"| {record['case']} | {measured} | refused: {str(exc)[:80]} | | | | |")
                continue
            device = peaks.reserved + OVERHEAD.cuda_context
            figure = {"allocated": peaks.allocated, "reserved": peaks.reserved, "nvidia-smi": device}[what]
            error = 100 * (figure / GIB - value) / value
            errors.append(error)
            allocated = engine.memory.allocated if engine else 0
            print(f"| {record['case']} | {measured} | {allocated / GIB:.2f} | {peaks.allocated / GIB:.2f} | "
                  f"{peaks.reserved / GIB:.2f} | {device / GIB:.2f} | {error:+.1f}% |", flush=True)
    if errors:
        absolute = [abs(e) for e in errors]
        print(f"\n{len(errors)} runs replayed: median |error| {statistics.median(absolute):.1f}%, worst "
              f"{max(absolute):.1f}%; {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
