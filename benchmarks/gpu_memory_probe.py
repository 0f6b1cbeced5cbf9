"""Measure real training-step peak memory on a CUDA GPU and set it beside TuneWise's prediction.

For a matrix of random-init Llama-style configs (two sizes) x methods (FFT + five PEFT methods) x two micro-batch
sizes, run a few real training steps (forward with labels, backward, AdamW step, zero_grad) in bf16-mixed
precision as the estimator assumes it (frozen base in bf16, trained parameters in fp32 under autocast), and
record torch.cuda.max_memory_allocated / max_memory_reserved. Prints a table and writes a CSV with the GPU name
and library versions to data/gpu_measurements/, alongside the estimator's breakdown, so that the overhead
priors in core/memory/overhead.py can be refitted. QLoRA needs bitsandbytes; without it that row is skipped.

Usage: python benchmarks/gpu_memory_probe.py [--steps 3] [--seq-len 512]
On a machine without CUDA it exits with a message and status 1.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.units import GIB  # noqa: E402

OUT_DIR = ROOT / "data" / "gpu_measurements"
SIZES: dict[str, dict[str, Any]] = {
    "llama-160m": {"hidden_size": 768, "intermediate_size": 2048, "num_hidden_layers": 12, "num_attention_heads": 12,
                   "num_key_value_heads": 12, "vocab_size": 32000, "max_position_embeddings": 4096},
    "llama-1b": {"hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 16, "num_attention_heads": 32,
                 "num_key_value_heads": 8, "vocab_size": 32000, "max_position_embeddings": 4096},
}
METHODS: tuple[str, ...] = ("fft", "lora", "qlora", "dora", "ia3", "prefix_tuning")
BATCHES: tuple[int, ...] = (1, 4)


@dataclass(frozen=True)
class Row:
    """One measured configuration with its prediction."""

    model: str
    method: str
    batch_size: int
    seq_len: int
    predicted: dict[str, int]
    allocated: int
    reserved: int


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="training steps per configuration")
    parser.add_argument("--seq-len", type=int, default=512)
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("gpu_memory_probe: CUDA is not available on this machine; run it on a machine with an NVIDIA GPU "
              "(the estimator's CPU probe is core.memory.probe).", file=sys.stderr)
        return 1
    warnings.simplefilter("ignore")
    rows: list[Row] = []
    for model_name, config in SIZES.items():
        for method in METHODS:
            for batch in BATCHES:
                row = _measure(model_name, config, method, batch=batch, seq_len=args.seq_len, steps=args.steps)
                if row is not None:
                    rows.append(row)
                    _print(row)
    path = _write(rows)
    print(f"wrote {path}")
    return 0


def _measure(name: str, config: dict[str, Any], method: str, *, batch: int, seq_len: int, steps: int) -> Row | None:
    import torch

    from core.counting import count_parameters
    from core.memory.budget import estimate_training
    from core.memory.quantization import check_quantization
    from core.memory.setup import TrainingSetup
    from core.models import ResolvedModel
    from core.registry import MethodChoice
    from core.skeleton import SkeletonKey

    if method == "qlora":
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            print(f"skip {name} qlora: bitsandbytes is not installed", file=sys.stderr)
            return None
    data = {**config, "model_type": "llama", "architectures": ["LlamaForCausalLM"], "torch_dtype": "bfloat16"}
    resolved = ResolvedModel(name=name, origin="path", config_json=json.dumps(data, sort_keys=True))
    key = SkeletonKey(resolved, "causal-lm", 2)
    choice = MethodChoice(method)
    setup = TrainingSetup(batch_size=batch, seq_len=seq_len, precision="bf16-mixed", attention="sdpa")
    quant = check_quantization(choice, setup)
    predicted = estimate_training(key, choice, count_parameters(key, choice), setup, quant).memory.to_dict()

    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    model = _build(resolved, choice, method)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    ids = torch.randint(0, config["vocab_size"], (batch, seq_len), device="cuda")
    model.train()
    for _ in range(steps):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    row = Row(name, method, batch, seq_len, predicted, torch.cuda.max_memory_allocated(),
              torch.cuda.max_memory_reserved())
    del model, optimizer, loss
    torch.cuda.empty_cache()
    return row


def _build(resolved: Any, choice: Any, method: str) -> Any:
    """The model as the estimator assumes: FFT in fp32 (AMP master weights), a PEFT base in bf16 (4-bit NF4 for
    QLoRA), peft adapters in fp32."""
    import torch
    from peft import get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    config = resolved.build_config()
    config._attn_implementation = "sdpa"
    if method == "qlora":  # random weights saved once, then loaded the usual way through bitsandbytes
        quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                   bnb_4bit_compute_dtype=torch.bfloat16)
        with tempfile.TemporaryDirectory() as folder:
            AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16).save_pretrained(folder)
            model = AutoModelForCausalLM.from_pretrained(folder, quantization_config=quant, device_map={"": 0},
                                                         attn_implementation="sdpa")
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    else:
        dtype = torch.float32 if method == "fft" else torch.bfloat16
        with torch.device("cuda"):
            model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    if choice.spec.is_peft:
        model = get_peft_model(model, choice.peft_config("CAUSAL_LM"))
    return model


def _print(row: Row) -> None:
    total = row.predicted["total"]
    allocated = total - row.predicted["overhead"]
    print(f"{row.model:11s} {row.method:14s} b={row.batch_size} s={row.seq_len}: predicted {total / GIB:6.2f} GiB "
          f"(allocated {allocated / GIB:6.2f}) | measured reserved {row.reserved / GIB:6.2f} GiB, allocated "
          f"{row.allocated / GIB:6.2f} GiB | error {100 * (total - row.reserved) / row.reserved:+6.1f}%")


def _write(rows: list[Row]) -> Path:
    import peft
    import torch
    import transformers

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    gpu = torch.cuda.get_device_name(0)
    path = OUT_DIR / f"{gpu.replace(' ', '_')}-{time.strftime('%Y%m%d-%H%M%S')}.csv"
    fields = ["gpu", "torch", "transformers", "peft", "python", "model", "method", "batch_size", "seq_len",
              "pred_weights", "pred_gradients", "pred_optimizer", "pred_activations", "pred_overhead", "pred_total",
              "max_allocated", "max_reserved"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(fields)
        for r in rows:
            p = r.predicted
            writer.writerow([gpu, torch.__version__, transformers.__version__, peft.__version__,
                             platform.python_version(), r.model, r.method, r.batch_size, r.seq_len, p["weights"],
                             p["gradients"], p["optimizer"], p["activations"], p["overhead"], p["total"],
                             r.allocated, r.reserved])
    return path


if __name__ == "__main__":
    sys.exit(main())
