"""The analytical activation model against the CPU probe (what autograd really saves), on tiny configs.

Every estimable method meets every family once (the variants rotate, so each family sees every dtype x
attention x dropout combination and each method sees both of each), plus the full variant cube for the
methods whose memory matters most. The full product is printed by benchmarks/bench_probe_accuracy.py.
"""

from __future__ import annotations

import pytest

from core.memory.accuracy import VARIANTS, Case, covering_matrix, run_case

TOLERANCE = 10.0  # percent; the model aims for 3 %
_CASES = [*covering_matrix(per_pair=1),
          *(Case(f, m, *v) for f in ("llama", "gpt2") for m in ("fft", "lora", "qlora") for v in VARIANTS)]


@pytest.mark.parametrize("case", _CASES, ids=[c.id for c in _CASES])
def test_estimate_matches_probe(case: Case) -> None:
    result = run_case(case)
    if result.skipped:
        pytest.skip(result.skipped)
    assert abs(result.error) <= TOLERANCE, f"estimate {result.estimate} vs probe {result.probe} ({result.error:+.1f}%)"
