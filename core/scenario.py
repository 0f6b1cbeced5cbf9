"""The scenario: everything a user asked about, validated once, then handed to the engine.

Data flows one way: inputs (CLI flags, page widgets) -> Scenario -> core -> result objects -> rendering.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from core.errors import InputError
from core.memory.setup import TrainingSetup
from core.memory.sharding import SHARDINGS
from core.models import ResolvedModel
from core.registry import KNOBS, MethodChoice
from core.skeleton_key import SkeletonKey, default_task


@dataclass(frozen=True)
class Scenario:
    """A model with its task head, the methods to compare on it, and how it would be trained."""

    model: ResolvedModel
    methods: tuple[MethodChoice, ...]
    task: str = ""
    num_labels: int = 2
    training: TrainingSetup = field(default_factory=TrainingSetup)

    def __post_init__(self) -> None:
        if not self.methods:
            raise InputError("no method chosen: pass --method ID or --method all")
        if not self.task:
            object.__setattr__(self, "task", default_task(self.model))
        SkeletonKey(self.model, self.task, self.num_labels)  # validates task and labels

    @property
    def skeleton_key(self) -> SkeletonKey:
        return SkeletonKey(self.model, self.task, self.num_labels)

    def to_argv(self) -> list[str]:
        """The `python -m core estimate` flags of this scenario; parsing them gives this scenario back.

        Knobs are shared by the methods that take them (as `--method a,b` applies them), so a knob is written
        once when those methods agree; where they differ only by their own defaults it is left out."""
        argv = ["--model", self.model.name, "--task", self.task]
        if self.task == "seq-cls":
            argv += ["--num-labels", str(self.num_labels)]
        argv += ["--method", ",".join(choice.method for choice in self.methods)]
        for name, knob in KNOBS.items():
            values = {getattr(c, name) for c in self.methods if name in c.spec.defaults}
            defaults = {c.spec.defaults[name] for c in self.methods if name in c.spec.defaults}
            if len(values) == 1 and values != defaults:
                value = values.pop()
                if value is not None:
                    argv += [knob.cli_flag, ",".join(value) if isinstance(value, tuple) else str(value)]
            elif len(values) > 1 and any(getattr(c, name) != c.spec.defaults[name]
                                         for c in self.methods if name in c.spec.defaults):
                raise InputError(f"the methods differ in {knob.cli_flag}, which one command applies to all of them: "
                                 "estimate them one at a time")
        return [*argv, *self.training.to_argv()]

    @property
    def warnings(self) -> tuple[str, ...]:
        """Questionable but estimable inputs (a sequence longer than the model's position table), and what the
        engine models by arithmetic instead of tracing (sharding)."""
        return tuple(filter(None, (self._past_positions(), self._sharding_note())))

    def _sharding_note(self) -> str:
        setup = self.training
        if not SHARDINGS[setup.sharding].shards or setup.gpus < 2:
            return ""
        return (f"--sharding {setup.sharding} on {setup.gpus} GPUs is modelled by arithmetic over a one-GPU traced "
                "step (partitioned optimizer states, gradients and weights; gathered blocks in flight), not traced "
                "as a sharded step")

    def _past_positions(self) -> str:
        limit = self.model.max_positions
        if limit is not None and self.training.seq_len > limit:
            factor = self.training.seq_len / limit
            rope = ("; a RoPE model needs its positions scaled by at least "
                    f"{factor:.2f}x (rope_scaling, e.g. {{\"rope_type\": \"yarn\", \"factor\": {math.ceil(factor)}}})"
                    if "rope_theta" in self.model.config_dict or "rope_scaling" in self.model.config_dict else "")
            return (f"--seq-len {self.training.seq_len} exceeds {self.model.name}'s maximum of {limit} positions; "
                    f"estimated anyway, but the model was not trained for it{rope}")
        return ""
