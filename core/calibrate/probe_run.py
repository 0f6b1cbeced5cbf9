"""The probe mode: a few real training steps per method on random-init weights, measured against the estimate.

Per method: build the model from the config on the device with the method applied (the CPU probe's own
builder), one warm-up step, then the measured steps (forward, backward, optimizer step) on random tokens.
On CUDA the allocator's peaks are reset before the model is built, so `max_memory_allocated` /
`max_memory_reserved` cover weights, gradients, optimizer states and activations of this method alone; an
out-of-memory error is caught and recorded as `oom`. On CPU there is no allocator peak to read: the
activations are measured by the estimator's CPU probe (`core.memory.probe`, what autograd saved in one
forward) and the states by counting the weight, gradient and optimizer-state storages after a real step.
Tokens per second count only the steps after the warm-up.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from core.calibrate.predict import predict
from core.calibrate.runfolder import RunFolder
from core.calibrate.spec import CalibrationSpec
from core.calibrate.train import (
    Stepper,
    build_model,
    enable_checkpointing,
    failure,
    make_optimizer,
    precision,
    release,
    synchronize,
    watch,
)
from core.errors import InputError
from core.memory.probe import make_inputs, probe_activations
from core.registry import MethodChoice

WARMUP_STEPS = 1


def run_probe(
    spec: CalibrationSpec, device: str, folder: RunFolder, cancelled: Callable[[], bool]
) -> list[dict[str, Any]]:
    """Probe every method in turn; a method that fails or runs out of memory does not stop the others."""
    return [_probe_one(spec, device, choice, folder, cancelled) for choice in spec.methods]


def _probe_one(
    spec: CalibrationSpec, device: str, choice: MethodChoice, folder: RunFolder, cancelled: Callable[[], bool]
) -> dict[str, Any]:
    record: dict[str, Any] = {"method": choice.method, "label": choice.label(), "device": device}
    folder.event("method_start", method=choice.method, total_steps=spec.steps)
    prediction = predict(spec, choice, device)
    record.update(prediction.to_dict())
    model = stepper = None
    try:
        release(device)
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        compute = precision(spec.precision)
        torch.manual_seed(spec.seed)
        model = build_model(spec.key, choice, device=device, weights=compute.weights, attention=spec.attention)
        if spec.gradient_checkpointing:
            enable_checkpointing(model)
        stepper = Stepper(model, make_optimizer(model, spec.optimizer, spec.lr_for(choice)), device=device,
                          compute=compute)
        vocab = int(spec.model.config_dict.get("vocab_size") or 32)
        inputs = make_inputs(spec.key, spec.batch_size, spec.seq_len, vocab=vocab, task_ids=choice.spec.task_ids)
        for _ in range(WARMUP_STEPS):
            stepper.step(inputs)
        steps, elapsed = _measured_steps(spec, stepper, inputs, choice, folder=folder, cancelled=cancelled)
        record.update(status="ok", reason=None, steps=steps,
                      tokens_per_s=spec.batch_size * spec.seq_len * steps / elapsed if elapsed > 0 else None)
        if device == "cuda":
            record.update(measured_peak_allocated=int(torch.cuda.max_memory_allocated()),
                          measured_peak_reserved=int(torch.cuda.max_memory_reserved()))
        else:
            states = stepper.states
            del stepper, model
            model = stepper = None
            activations = probe_activations(spec.key, choice, batch_size=spec.batch_size, seq_len=spec.seq_len,
                                            dtype=spec.training_setup.compute_dtype, attention=spec.attention,
                                            seed=spec.seed)
            record.update(measured_activations=activations.activation_bytes, measured_weights=states["weights"],
                          measured_gradients=states["gradients"], measured_optimizer=states["optimizer"],
                          measured_states=sum(states.values()),
                          measured_total=activations.activation_bytes + sum(states.values()))
    except InputError:
        raise
    except Exception as exc:
        status, reason = failure(exc)
        record.update(status=status, reason=reason)
    finally:
        del model, stepper
        release(device)
    folder.event("method_done", **record)
    return record


def _measured_steps(
    spec: CalibrationSpec, stepper: Stepper, inputs: dict[str, torch.Tensor], choice: MethodChoice,
    *, folder: RunFolder, cancelled: Callable[[], bool],
) -> tuple[int, float]:
    """Run the budget (steps or seconds) after the warm-up; the last step records the states' bytes."""
    synchronize(stepper.device)
    start = time.perf_counter()
    steps = 0
    while True:
        watch(cancelled)
        last = spec.steps is not None and steps + 1 >= spec.steps
        loss = stepper.step(inputs, measure_states=last or spec.steps is None)
        synchronize(stepper.device)
        steps += 1
        elapsed = time.perf_counter() - start
        folder.event("step", method=choice.method, step=steps, total_steps=spec.steps, loss=loss, elapsed_s=elapsed)
        if last or (spec.time_budget_s is not None and elapsed >= spec.time_budget_s):
            return steps, elapsed
