"""The published GPU runs against the engine's three peaks: allocated, reserved (the caching allocator replayed) and
device (what nvidia-smi shows).

For each run of data/gpu_measurements/published_2/cases.csv (published runs mapped to `estimate` flags; the
sources are in sources.md beside it) the table prints what `python -m core estimate` answers (allocated, and
reserved from the step's full-depth allocation log replayed through `core.memory.allocator`, PyTorch's CUDA
caching allocator rule for rule; device adds the CUDA context prior of core/memory/overhead.py) beside what
was measured, and the error of the figure that matches the measurement. Runs on several GPUs are arithmetic
over the single-GPU trace (their reserved peak is the single-GPU replay's ratio, scaled). With `--direct`, each
single-GPU run is also traced whole at its shape (every block, no extrapolation) and every allocation and free
of its first two steps (the optimizer makes its states inside the first) replayed: the check that the engine's
log, built from small copies, is the step's. Nothing here is fitted.

    python benchmarks/bench_allocator.py [--direct]
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
from core.memory.budget import step_spec  # noqa: E402
from core.memory.quantization import check_quantization  # noqa: E402
from core.memory.replay import replay  # noqa: E402
from core.memory.setup import TrainingSetup  # noqa: E402
from core.memory.step import TracedModel  # noqa: E402
from core.registry import MethodChoice  # noqa: E402
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
    direct = "--direct" in sys.argv[1:]
    start = time.perf_counter()
    print("| run | measured | allocated | reserved | device | reserved from | error of the matching figure |"
          + (" direct trace: allocated / reserved |" if direct else ""))
    print("|---|---|---:|---:|---:|---|---:|" + ("---:|" if direct else ""))
    errors: dict[str, list[float]] = {"high": [], "all": []}
    with CASES.open(newline="") as handle:
        for record in csv.DictReader(handle):
            model = record["model"].replace("@configs/", str(CASES.parent / "configs") + "/")
            args = _parser().parse_args(["estimate", "--model", model, *shlex.split(record["args"])])
            what, value, allocated_beside = _measured(record)
            measured = f"{what} {value:.2f}" + (f" (allocated {allocated_beside:.2f})" if allocated_beside else "")
            setup = training_from_args(args)
            try:
                choices, _ = method_choices(args)
                scenario = Scenario(model_from_args(args), tuple(choices), args.task or "", args.num_labels or 2,
                                    setup)
                training = estimate(scenario).methods[0].training
            except (InputError, NotApplicableError) as exc:
                print(f"| {record['case']} | {measured} | refused: {str(exc)[:80]} | | | | |")
                continue
            if training is None:
                print(f"| {record['case']} | {measured} | not estimated | | | | |")
                continue
            memory = training.memory
            figure = {"allocated": memory.allocated, "reserved": memory.reserved, "nvidia-smi": memory.device}[what]
            error = 100 * (figure / GIB - value) / value
            errors["all"].append(error)
            if record["confidence"] == "high":
                errors["high"].append(error)
            line = (f"| {record['case']} | {measured} | {memory.allocated / GIB:.2f} | {memory.reserved / GIB:.2f} | "
                    f"{memory.device / GIB:.2f} | {memory.reserved_from} | {error:+.1f}% |")
            if direct:
                line += f" {_direct(scenario, choices[0], setup)} |"
            print(line, flush=True)
    for name, values in errors.items():
        if values:
            absolute = [abs(e) for e in values]
            print(f"\n{name} runs ({len(values)}): median |error| {statistics.median(absolute):.1f}%, worst "
                  f"{max(absolute):.1f}%", end="")
    print(f"; {time.perf_counter() - start:.0f} s")


def _direct(scenario: Scenario, choice: MethodChoice, setup: TrainingSetup) -> str:
    """Allocated / reserved GiB of the whole model traced at the run's shape and replayed ('' when sharded)."""
    if setup.gpus > 1:
        return ""
    spec = step_spec(setup, check_quantization(choice, setup))
    traced = TracedModel(scenario.skeleton_key, choice, spec, None)
    peaks = replay(traced.first_steps_log(setup.batch_size, setup.seq_len, steps=STEPS))
    return f"{peaks.allocated / GIB:.2f} / {peaks.reserved / GIB:.2f}"


if __name__ == "__main__":
    main()
