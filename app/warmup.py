"""Start-up warm-up: one background thread per server process loads what every first page needs.

A cold process spends tens of seconds importing torch/transformers/peft, opening the warehouse and estimating the
default model; done in the page that would be a blank screen. `start()` (called by app/main.py on every run,
effective once per process) runs those steps in order on a daemon thread and records which one it is on, so
main.py can show a skeleton with the current step until the imports and the warehouse are ready; the default
estimates then keep warming behind the first page. Heavy modules are imported inside the steps, so importing this
module stays cheap.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import streamlit as st

LOG = logging.getLogger("tunewise.app")


def _import_engine() -> None:
    import peft  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401

    import core.estimate
    import core.gap  # noqa: F401


def _open_warehouse() -> None:
    from app.resources import data_version

    data_version()


def default_estimates() -> None:
    """The Memory page's opening estimate and its advice for each method that does not fit (re-estimates of other
    steps: checkpointing, 8-bit optimizers, QLoRA), under the page's own cache keys."""
    from app.estimates import estimate_for
    from app.memory_inputs import START, default_choices
    from app.memory_rows import cached_advice
    from app.models import DEFAULT_MODEL, cached_model

    model, choices = cached_model(DEFAULT_MODEL), default_choices()
    report = estimate_for(model, choices, START)
    for choice, method in zip(choices, report.methods, strict=True):
        if method.training is not None and method.training.fit is not None and not method.training.fit.fits:
            cached_advice(model, choice, START, model.config_json)


# What a page needs before it can render (then the skeleton goes), and what only speeds the first estimate up.
STEPS: tuple[tuple[str, Callable[[], None], bool], ...] = (
    ("loading PyTorch, transformers and peft", _import_engine, True),
    ("opening the results warehouse", _open_warehouse, True),
    ("estimating the default model", default_estimates, False),
)


@dataclass
class Warmup:
    """Progress of the warm-up thread: the step running, seconds per finished step, and when the pages may run."""

    step: str = "starting"
    ready: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    seconds: dict[str, float] = field(default_factory=dict)

    def run(self) -> None:
        for name, step, needed in STEPS:
            if not needed:
                self.ready.set()
            self.step = name
            began = time.perf_counter()
            try:
                step()
            except Exception:  # a failed warm-up only costs speed: the page meets the same error and shows it
                LOG.exception("warm-up step %r failed", name)
            self.seconds[name] = time.perf_counter() - began
        self.ready.set()
        self.done.set()
        LOG.info("warm-up done: %s", ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items()))


@st.cache_resource(show_spinner=False)
def start() -> Warmup:
    """The process's warm-up, started on the first call."""
    warmup = Warmup()
    threading.Thread(target=warmup.run, name="tunewise-warmup", daemon=True).start()
    return warmup
