"""The torch-free step spec and categories (core.memory.spec) agree with the trace's own copies."""

from __future__ import annotations

from dataclasses import fields

import pytest

from core.memory import spec, step, trace


def test_categories_and_phases_are_the_traces() -> None:
    assert (spec.CATEGORIES, spec.PHASES) == (trace.CATEGORIES, trace.PHASES)
    indices = ("WEIGHTS", "GRADIENTS", "OPTIMIZER", "ACTIVATIONS", "TEMPORARIES")
    assert [getattr(spec, name) for name in indices] == [getattr(trace, name) for name in indices]


@pytest.mark.parametrize("precision", ["fp32", "bf16-mixed", "bf16-true", "fp16-mixed", "fp16-true"])
def test_step_spec_is_the_traces(precision: str) -> None:
    assert [(f.name, f.default) for f in fields(spec.StepSpec)] == [(f.name, f.default) for f in fields(step.StepSpec)]
    light = spec.StepSpec(precision, "adamw", "sdpa", True, "none", reentrant=True)
    traced = step.StepSpec(precision, "adamw", "sdpa", True, "none", reentrant=True)
    assert (light.compute_dtype, light.mixed) == (traced.compute_dtype, traced.mixed)
    with pytest.raises(ValueError, match="reentrant"):
        spec.StepSpec(precision, "adamw", "sdpa", False, "none", reentrant=True)
