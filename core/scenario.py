"""The scenario: everything a user asked about, validated once, then handed to the engine.

Data flows one way: inputs (CLI flags, page widgets) -> Scenario -> core -> result objects -> rendering.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import InputError
from core.models import ResolvedModel
from core.registry import MethodChoice
from core.skeleton import SkeletonKey, default_task


@dataclass(frozen=True)
class Scenario:
    """A model with its task head and the methods to compare on it."""

    model: ResolvedModel
    methods: tuple[MethodChoice, ...]
    task: str = ""
    num_labels: int = 2

    def __post_init__(self) -> None:
        if not self.methods:
            raise InputError("no method chosen: pass --method ID or --method all")
        if not self.task:
            object.__setattr__(self, "task", default_task(self.model))
        SkeletonKey(self.model, self.task, self.num_labels)  # validates task and labels

    @property
    def skeleton_key(self) -> SkeletonKey:
        return SkeletonKey(self.model, self.task, self.num_labels)
