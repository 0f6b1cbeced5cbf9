"""The learn mode: FFT and the chosen PEFT methods trained on the user's data, per data size, with loss
curves and a held-out metric, to locate where FFT overtakes PEFT on this task.

Each (data size, method) starts from the same weights and seed and trains for the same budget (steps or
seconds); its training loss goes to progress.jsonl step by step (the page draws it live). The metric is
accuracy for classification and the loss (with perplexity) on completion tokens for generation.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from core.calibrate.data import ByteTokenizer, Example, HubTokenizer, batch, load_tokenizer, split, subset
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
    watch,
)
from core.counting import count_parameters
from core.errors import InputError
from core.registry import MethodChoice

EVAL_BATCH = 16


@dataclass(frozen=True)
class CurvePoint:
    """One training step of one (method, data size)."""

    method: str
    data_size: int
    step: int
    loss: float
    elapsed_s: float


@dataclass
class LearnContext:
    """What every (size, method) run shares: the spec, device, tokenizer and data."""

    spec: CalibrationSpec
    device: str
    folder: RunFolder
    cancelled: Callable[[], bool]
    tokenizer: ByteTokenizer | HubTokenizer
    source: str | None
    eval_rows: tuple[Example, ...]
    curves: list[CurvePoint]


def run_learn(
    spec: CalibrationSpec, device: str, folder: RunFolder, cancelled: Callable[[], bool]
) -> tuple[list[dict[str, Any]], list[CurvePoint]]:
    """Every (data size, method) run; returns their result dicts and all curve points."""
    data = spec.dataset
    assert data is not None  # the spec loads it in learn mode
    source = spec.weights_source
    tokenizer = load_tokenizer(spec.model.location if spec.model.origin == "path" else "",
                               int(spec.model.config_dict.get("vocab_size") or 0),
                               hub_name=source if spec.init == "pretrained" and source == spec.model.name else None,
                               specials=_specials(spec))
    parts = split(data, spec.eval_fraction, spec.seed)
    context = LearnContext(spec, device, folder, cancelled, tokenizer, source, parts.eval, [])
    results = []
    sizes: Sequence[int | None] = spec.data_sizes or (None,)
    for size in sizes:
        train = subset(data, parts.train, size)
        for choice in spec.methods:
            results.append(_one(context, choice, train, size))
    return results, context.curves


def _specials(spec: CalibrationSpec) -> tuple[int, int]:
    """(pad, eos) ids for the byte tokenizer: the config's when it has them, else 0 and 1."""
    config = spec.model.config_dict
    vocab = int(config.get("vocab_size") or 0)
    pad, eos = config.get("pad_token_id"), config.get("eos_token_id")
    eos = eos[0] if isinstance(eos, list) and eos else eos
    pad = pad if isinstance(pad, int) and 0 <= pad < vocab else 0
    eos = eos if isinstance(eos, int) and 0 <= eos < vocab and eos != pad else (1 if pad != 1 else 2)
    return pad, eos


def _one(context: LearnContext, choice: MethodChoice, train: Sequence[Example], size: int | None) -> dict[str, Any]:
    spec = context.spec
    count = len(train)
    record: dict[str, Any] = {"method": choice.method, "label": choice.label(), "data_size": size,
                              "train_examples": count, "lr": spec.lr_for(choice)}
    context.folder.event("method_start", method=choice.method, data_size=size)
    model = None
    try:
        params = count_parameters(spec.key, choice)
        record.update(trainable_params=params.trainable_params, total_params=params.total_params,
                      trainable_share=params.trainable_share)
        torch.manual_seed(spec.seed)
        compute = precision(spec.precision)
        model = build_model(spec.key, choice, device=context.device, weights=compute.weights,
                            attention=spec.attention, source=context.source, pad_token_id=context.tokenizer.pad_id)
        if spec.gradient_checkpointing:
            enable_checkpointing(model)
        stepper = Stepper(model, make_optimizer(model, spec.optimizer, spec.lr_for(choice)), device=context.device,
                          compute=compute)
        losses, tokens, elapsed = _train(context, stepper, choice, train, size)
        record.update(status="ok", reason=None, steps=len(losses), final_loss=losses[-1],
                      tokens_per_s=tokens / elapsed if elapsed > 0 else None, **_evaluate(context, stepper))
    except InputError:
        raise  # a problem of the whole run (e.g. weights that cannot load), not of this method
    except Exception as exc:
        status, reason = failure(exc)
        record.update(status=status, reason=reason)
    finally:
        del model
        release(context.device)
    context.folder.event("method_done", **record)
    return record


def _train(
    context: LearnContext, stepper: Stepper, choice: MethodChoice, train: Sequence[Example], size: int | None
) -> tuple[list[float], int, float]:
    """Step until the budget is spent; every step's loss goes to progress.jsonl and the curve."""
    spec = context.spec
    rng = random.Random(spec.seed)
    order: list[Example] = []
    losses: list[float] = []
    tokens = 0
    start = time.perf_counter()
    while True:
        elapsed = time.perf_counter() - start
        if (spec.steps is not None and len(losses) >= spec.steps) or (
            spec.time_budget_s is not None and elapsed >= spec.time_budget_s
        ):
            return losses, tokens, elapsed
        watch(context.cancelled)
        if len(order) < spec.batch_size:  # a new epoch: reshuffle (small data sizes cycle many times)
            fresh = list(train)
            rng.shuffle(fresh)
            order.extend(fresh * max(1, math.ceil(spec.batch_size / len(fresh))))
        rows, order = order[: spec.batch_size], order[spec.batch_size :]
        inputs = batch(rows, context.tokenizer, kind=spec.dataset.kind if spec.dataset else "", task=spec.task,
                       seq_len=spec.seq_len, labels=spec.dataset.labels if spec.dataset else ())
        loss = stepper.step(inputs)
        tokens += int(inputs["attention_mask"].sum())
        point = CurvePoint(choice.method, size or len(train), len(losses) + 1, loss, time.perf_counter() - start)
        losses.append(loss)
        context.curves.append(point)
        context.folder.event("loss", method=choice.method, data_size=size, step=point.step, loss=loss,
                             elapsed_s=point.elapsed_s, total_steps=spec.steps)


@torch.no_grad()
def _evaluate(context: LearnContext, stepper: Stepper) -> dict[str, Any]:
    """Accuracy (classification) or mean completion-token loss and perplexity (generation) on held-out rows."""
    spec = context.spec
    data = spec.dataset
    assert data is not None
    model = stepper.model
    model.eval()
    correct = seen = 0
    loss_sum = 0.0
    weight = 0
    for start in range(0, len(context.eval_rows), EVAL_BATCH):
        rows = context.eval_rows[start : start + EVAL_BATCH]
        inputs = {k: v.to(context.device) for k, v in batch(rows, context.tokenizer, kind=data.kind, task=spec.task,
                                                              seq_len=spec.seq_len, labels=data.labels).items()}
        with stepper.autocast():
            output = model(**inputs)
        if data.kind == "classification":
            correct += int((output.logits.argmax(-1) == inputs["labels"]).sum())
            seen += len(rows)
        else:
            targets = int((inputs["labels"] != -100).sum())
            loss_sum += float(output.loss) * targets
            weight += targets
    model.train()
    if data.kind == "classification":
        return {"metric": "accuracy", "eval_value": correct / seen, "eval_examples": seen}
    loss = loss_sum / max(weight, 1)
    return {"metric": "eval loss", "eval_value": loss, "eval_perplexity": math.exp(min(loss, 50.0)),
            "eval_examples": len(context.eval_rows)}
