"""Every causal-LM architecture the installed transformers can name: does TuneWise give it a memory figure?

For each model type in transformers' causal-LM mapping, the config class's own defaults (usually its reference
checkpoint's sizes: fake tensors make size free) are written to a config.json, resolved as a user's upload would
be, and estimated for full fine-tuning and LoRA (all linear layers) at batch 1 x 128 tokens. Each type runs in
its own process with a time limit, two at a time. Outcomes:

- memory: a traced peak (the whole capability);
- count only: exact counts, and a note saying why there is no memory figure;
- refused: one line of bad input (InputError), e.g. transformers cannot build the class from its defaults, or the
  architecture needs custom code;
- crashed: anything else, a traceback: a bug to fix;
- no default config: transformers cannot make the config class's own defaults (its validation rejects them), so
  there is nothing to estimate.

Run: python benchmarks/bench_architectures.py [--types a,b] [--seconds 180]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("fft", "lora")
OUTCOMES = ("memory", "count only", "refused", "crashed", "no default config")


def one(model_type: str, folder: Path) -> dict[str, str]:
    """Outcome per method for one model type (run in a child process: see `main`)."""
    import warnings

    warnings.simplefilter("ignore")
    from transformers import AutoConfig

    from core.errors import InputError
    from core.estimate import estimate
    from core.memory.setup import TrainingSetup
    from core.models import resolve_model
    from core.registry import ALL_LINEAR, MethodChoice
    from core.scenario import Scenario

    path = folder / f"{model_type}.json"
    try:
        defaults = AutoConfig.for_model(model_type).to_dict()
    except Exception as exc:  # transformers' own defaults fail its validation: nothing for TuneWise to read
        return dict.fromkeys(METHODS, f"no default config: {type(exc).__name__}: {_first_line(exc)}")
    path.write_text(json.dumps({**defaults, "model_type": model_type}))
    outcome: dict[str, str] = {}
    for method in METHODS:
        # LoRA on every linear layer: peft names default targets for some model types only
        choice = MethodChoice(method, targets=ALL_LINEAR) if method == "lora" else MethodChoice(method)
        try:
            scenario = Scenario(resolve_model(str(path)), (choice,), task="causal-lm",
                                training=TrainingSetup(batch_size=1, seq_len=128))
            result = estimate(scenario).methods[0]
        except InputError as exc:
            outcome[method] = f"refused: {_first_line(exc)}"
            continue
        except Exception as exc:  # what the benchmark counts: anything unexpected
            outcome[method] = f"crashed: {type(exc).__name__}: {_first_line(exc)}"
            continue
        outcome[method] = "memory" if result.training is not None else f"count only: {result.memory_error[:160]}"
    return outcome


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0][:160] if lines else "no message"


def _child(model_type: str, folder: Path, seconds: int) -> tuple[str, dict[str, str]]:
    try:
        done = subprocess.run([sys.executable, __file__, "--one", model_type, "--folder", str(folder)], cwd=ROOT,
                              capture_output=True, text=True, timeout=seconds, check=False)
    except subprocess.TimeoutExpired:
        return model_type, dict.fromkeys(METHODS, f"crashed: over {seconds} s")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1][:160]
        return model_type, dict.fromkeys(METHODS, f"crashed: {tail}")
    return model_type, json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--types", default="", help="comma-separated model types (default: every causal-LM type)")
    parser.add_argument("--seconds", type=int, default=180, help="time limit per model type")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, Path(args.folder))))
        return
    import transformers
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    types = [t for t in args.types.split(",") if t] or sorted(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)
    folder = Path(tempfile.mkdtemp(prefix="tunewise-architectures-"))
    os.environ.update(TUNEWISE_CACHE_DIR=str(folder / "cache"), TUNEWISE_TRACE_WORKERS="1", HF_HUB_OFFLINE="1")
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(pool.map(lambda t: _child(t, folder, args.seconds), types))
    print(f"transformers {transformers.__version__}: {len(types)} causal-LM model types, each at its config "
          "class's defaults, batch 1 x 128 tokens\n")
    print("| method | " + " | ".join(OUTCOMES) + " |")
    print("|---|" + "---:|" * len(OUTCOMES))
    for method in METHODS:
        counts = collections.Counter(results[t][method].split(":")[0] for t in types)
        print(f"| {method} | " + " | ".join(str(counts[o]) for o in OUTCOMES) + " |")
    print("\nEvery model type without a memory figure, and why:")
    for t in types:
        missing = {m: o for m, o in results[t].items() if o != "memory"}
        for method, why in missing.items():
            print(f"- {t} {method}: {why}")


if __name__ == "__main__":
    main()
