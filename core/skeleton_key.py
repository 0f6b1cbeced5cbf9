"""What identifies a model skeleton (config and head), without torch: the warm path of an estimate reads cached
counts and profiles by this key and never builds the model (`core.skeleton` builds it on a cache miss)."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import InputError
from core.models import TASKS, ResolvedModel


@dataclass(frozen=True)
class SkeletonKey:
    """What identifies a skeleton: the config and the head."""

    model: ResolvedModel
    task: str
    num_labels: int

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise InputError(f"unknown task {self.task!r}: choose one of {', '.join(TASKS)}")
        if self.num_labels < 1:
            raise InputError(f"--num-labels {self.num_labels} must be at least 1")


def default_task(model: ResolvedModel) -> str:
    """Causal LM for decoders (multimodal ones included), seq2seq for encoder-decoders, sequence classification
    for encoders."""
    config = model.config_dict
    if config.get("is_encoder_decoder"):
        return "seq2seq"
    architectures = config.get("architectures") or []
    # Multimodal decoders (Gemma 3 4B+) publish "...ForConditionalGeneration": a causal LM with a vision tower.
    if any(a.endswith(("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")) for a in architectures):
        return "causal-lm"
    if architectures or model.model_type in {"bert", "roberta", "deberta", "deberta-v2", "distilbert", "electra"}:
        return "seq-cls"
    return "causal-lm"
