"""Trace several methods' missing profiles at once, in worker processes, before an estimate reads them.

A cold estimate of many methods (the recommender's 15 candidates, `--method all`) traces each method's step in
turn, about 2 s each; the traces are independent, so worker processes run them side by side and store each in
the disk cache (`core.memory.cache`), which the estimate then reads as if warm. Workers are spawned (a fresh
interpreter: no fork of a process that holds threads, as a Streamlit server does), so each pays the engine's
imports once; this only pays off for two or more missing profiles and a machine with cores to spare.
`TUNEWISE_TRACE_WORKERS` caps the workers (1 turns this off); without a disk cache there is nothing to share.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

from core.errors import InputError
from core.memory import cache
from core.memory.spec import StepSpec
from core.registry import MethodChoice
from core.skeleton_key import SkeletonKey

MAX_WORKERS = 8


def trace_workers() -> int:
    """How many worker processes may trace at once: `TUNEWISE_TRACE_WORKERS`, else one per core up to 8."""
    raw = os.environ.get("TUNEWISE_TRACE_WORKERS", "")
    if not raw:
        return min(os.cpu_count() or 1, MAX_WORKERS)
    try:
        value = int(raw)
    except ValueError:
        raise InputError(f"TUNEWISE_TRACE_WORKERS={raw!r} must be a whole number of processes, e.g. 4") from None
    if value < 1:
        raise InputError(f"TUNEWISE_TRACE_WORKERS={value} must be at least 1 (1: trace in this process only)")
    return value


def trace_ahead(key: SkeletonKey, steps: Sequence[tuple[MethodChoice, StepSpec]]) -> int:
    """Trace the profiles of `steps` that the disk cache lacks in parallel workers; returns how many were handed
    to workers (0 when fewer than two are missing, one worker is allowed, or there is no disk cache). A step that
    fails in a worker is left to the caller, which traces it again and reports why."""
    workers = trace_workers()
    if workers < 2 or cache.cache_dir() is None or key.model.trust_remote_code:
        return 0
    missing = [(choice, spec) for choice, spec in dict.fromkeys(steps)
               if cache.load(cache.entry_key(key, choice, spec)) is None]
    if len(missing) < 2:
        return 0
    with ProcessPoolExecutor(max_workers=min(workers, len(missing)), mp_context=get_context("spawn")) as pool:
        list(pool.map(_trace, [(key, choice, spec) for choice, spec in missing]))
    return len(missing)


def _trace(job: tuple[SkeletonKey, MethodChoice, StepSpec]) -> None:
    """In a worker: trace one step and store its profile (or that it cannot be traced) in the disk cache."""
    from core.errors import NotApplicableError
    from core.memory.budget import remembered_profile

    # a refusal is stored as untraceable where that holds; the caller raises it again with its message
    with contextlib.suppress(NotApplicableError, InputError):
        remembered_profile(*job)
