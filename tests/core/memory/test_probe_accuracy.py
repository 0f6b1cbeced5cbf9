"""The traced step's activations against the CPU probe (what autograd really saves), on tiny configs.

The recommendation's candidate methods meet every family once (the dtype x attention x dropout variants
rotate, so each family sees all of them), every other peft method meets Llama and T5, and FFT, LoRA and QLoRA
run the whole variant cube on Llama and GPT-2. `python benchmarks/bench_probe_accuracy.py` prints the figures.
"""

from __future__ import annotations

import pytest

from core.registry import candidate_ids
from tests.support.accuracy import VARIANTS, Case, covering_matrix, run_case

TOLERANCE = 3.0  # percent of the probe's bytes
# Known gap (docs/accuracy.md), held to a loose bound so that it cannot grow unseen: DoRA on GPT-2's Conv1D in
# fp32, where the real forward keeps each fused QKV weight's update alive and the fake trace frees it.
# CPT, whose real forward keeps 31,300 bytes more than the trace on every tiny family (2-4% there; not found).
KNOWN_GAPS: dict[tuple[str, str], str] = {("gpt2", "dora"): "DoRA on Conv1D", ("*", "cpt"): "CPT's loss"}
LOOSE = 20.0
_CASES = [*(c for c in covering_matrix(per_pair=1) if c.method in candidate_ids() or c.family in ("llama", "t5")),
          *(Case(f, m, *v) for f in ("llama", "gpt2") for m in ("fft", "lora", "qlora") for v in VARIANTS)]


@pytest.mark.parametrize("case", _CASES, ids=[c.id for c in _CASES])
def test_trace_matches_probe(case: Case) -> None:
    result = run_case(case)
    if result.skipped:
        pytest.skip(result.skipped)
    known = {(case.family, "*"), ("*", case.method), (case.family, case.method)} & set(KNOWN_GAPS)
    bound = LOOSE if known else TOLERANCE
    assert abs(result.error) <= bound, f"trace {result.estimate} vs probe {result.probe} ({result.error:+.1f}%)"
