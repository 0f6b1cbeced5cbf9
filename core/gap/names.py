"""Any method or task name a user types, read as what the evidence knows: a registry method, a method family,
or "PEFT in general"; a warehouse task type or "any task type". Unknown names never raise: they fall back to
the nearest level, and the prediction then carries a note and the wider interval of that level.

Method names are read first as the warehouse reads published names (`normalise_method`: registry ids, PEFT's
`type [config]` names, the literature's spellings), then as a family by the registry's literature names of
each family (`FAMILY_RULES`). Both come from the registry, never copied here, so a new registry method, a new
literature name or a renamed family needs no change in this module.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from core.errors import InputError
from core.registry import FAMILY_RULES, METHODS
from core.warehouse.normalise import OTHER, normalise_method

LEVELS: tuple[str, ...] = ("method", "family", "peft")  # how specific the match is: registry id, family, any PEFT
TASK_LEVELS: tuple[str, ...] = ("task", "any")

@dataclass(frozen=True)
class MethodMatch:
    """A user's method name read at one of `LEVELS`; `method_id` only at level 'method', `family` at 'method'
    and 'family'; `note` says what was assumed (empty for an exact registry id)."""

    name: str
    level: str
    method_id: str | None
    family: str | None
    note: str

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"unknown match level {self.level!r}")
        if (self.level == "method") != (self.method_id is not None):
            raise ValueError("a method id is given exactly when the level is 'method'")
        if (self.level == "peft") != (self.family is None):
            raise ValueError("a family is given unless the level is 'peft'")

    @property
    def key(self) -> str:
        """What the model features call this method: the registry id, else '' (no method-specific effect)."""
        return self.method_id or ""


def _squash(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def match_method(name: str) -> MethodMatch:
    """Read a method name (see the module docstring). Raises InputError only for a blank name, full
    fine-tuning (its gap is 0 by definition) and the no-training baseline."""
    text = str(name).strip()
    if not text:
        raise InputError("method is blank: give a PEFT method, e.g. lora, qlora, boft or 'Houlsby adapter'")
    read = normalise_method(text)
    if read.method_id != OTHER:
        method = METHODS[read.method_id]
        if method.family == "full":
            raise InputError(f"method {text!r} is the reference: its gap to full fine-tuning is 0 by definition")
        if method.family == "baseline":
            raise InputError(f"method {text!r} is not a fine-tuning method: choose a PEFT method, e.g. lora")
        exact = _squash(text) in (_squash(method.id), _squash(method.name))
        note = "" if exact else f"{text!r} read as {method.name}"
        return MethodMatch(text, "method", method.id, method.family, note)
    low = text.lower()
    family = next((fam for pattern, fam in FAMILY_RULES if pattern.search(low)), None)
    if family is not None:
        return MethodMatch(
            text, "family", None, family,
            f"{text!r} is not a registry method: answered for its family ({family}) with the wider interval of a "
            "method the evidence has not seen",
        )  # fmt: skip
    return MethodMatch(
        text, "peft", None, None,
        f"{text!r} is not a method TuneWise knows: answered for PEFT in general, with the widest interval",
    )  # fmt: skip


# Task names -> warehouse task types (data/published_results_sources.md conventions: multiple-choice QA
# counts as classification, extractive QA as extraction).
_TASK_SYNONYMS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), task_type)
    for pattern, task_type in (
        (r"multiple.?choice|mcq|commonsense|\bnli\b|sentiment|glue|label|classif", "classification"),
        (r"\bqa\b|question|squad|extract|\bner\b|span|retriev", "extraction"),
        (r"math|arithmetic|gsm|reason", "reasoning-math"),
        (r"code|program|humaneval", "code"),
        (r"instruct|chat|\bsft\b|assistant|alignment", "instruction"),
        (r"summar|translat|data.?to.?text|generat|caption|dialog", "generation"),
    )
)


@dataclass(frozen=True)
class TaskMatch:
    """A user's task type read as a warehouse task type (level 'task') or as any task type (level 'any')."""

    name: str
    level: str
    task_type: str | None
    note: str

    def __post_init__(self) -> None:
        if self.level not in TASK_LEVELS:
            raise ValueError(f"unknown task match level {self.level!r}")
        if (self.level == "task") != (self.task_type is not None):
            raise ValueError("a task type is given exactly when the level is 'task'")

    @property
    def key(self) -> str:
        return self.task_type or ""


def match_task(name: str, known: Sequence[str]) -> TaskMatch:
    """Read a task type: a known one as is; 'qa' and other names by the synonyms above, with a note; anything
    else as any task type (the average over task types, wider interval). Raises only for a blank name."""
    text = str(name).strip().lower()
    if not text:
        raise InputError("task_type is blank: give one, e.g. classification, qa, reasoning-math or code")
    if text in known:
        return TaskMatch(text, "task", text, "")
    mapped = next((t for pattern, t in _TASK_SYNONYMS if pattern.search(text) and t in known), None)
    if mapped is not None:
        extra = " (multiple-choice QA counts as classification: pass that for it)" if mapped == "extraction" else ""
        return TaskMatch(text, "task", mapped, f"task type {text!r} read as {mapped}{extra}")
    return TaskMatch(
        text, "any", None,
        f"task type {text!r} is not one TuneWise knows ({', '.join(known)}): answered for any task type, with a "
        "wider interval",
    )  # fmt: skip
