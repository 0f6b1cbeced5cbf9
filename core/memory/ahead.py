"""Trace several methods' missing profiles at once, in worker processes, before an estimate reads them.

A cold estimate of many methods (the recommender's 15 candidates, `--method all`) traces each method's step in
turn, about 2 s each; the traces are independent, so worker processes run them side by side and store each in
the disk cache (`core.memory.cache`), which the estimate then reads as if warm. Each worker is a fresh
`python -m core.memory.ahead JOBS INDEX COUNT` process (no fork of a process that holds threads, as a Streamlit
server does, and no re-run of the caller's main script, which multiprocessing's spawn would do), so each pays the
engine's imports once; this only pays off for two or more missing profiles and a machine with cores to spare.
`TUNEWISE_TRACE_WORKERS` caps the workers (1 turns this off); without a disk cache there is nothing to share.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from core.errors import InputError
from core.memory import cache
from core.memory.budget import profile_known, remembered_profile
from core.memory.spec import StepSpec
from core.registry import MethodChoice
from core.skeleton_key import SkeletonKey

MAX_WORKERS = 8
PROJECT_ROOT = Path(__file__).resolve().parents[2]


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
    if workers < 2 or not _writable(cache.cache_dir()) or key.model.trust_remote_code:
        return 0
    # a step the cache answers either way (a profile, or a record that it cannot be traced) is not missing: else a
    # warm estimate of a method that cannot be traced would start workers every time
    missing = [(choice, spec) for choice, spec in dict.fromkeys(steps) if not profile_known(key, choice, spec)]
    if len(missing) < 2:
        return 0
    count = min(workers, len(missing))
    with tempfile.TemporaryDirectory(prefix="tunewise-trace-") as folder:
        jobs = Path(folder) / "jobs.pickle"
        jobs.write_bytes(pickle.dumps([(key, choice, spec) for choice, spec in missing]))
        # run from the folder holding the `core` package, so `-m` finds it wherever the caller runs
        processes = [subprocess.Popen([sys.executable, "-m", "core.memory.ahead", str(jobs), str(i), str(count)],
                                      cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                     for i in range(count)]
        for process in processes:
            process.wait()
    return len(missing)


def _writable(folder: Path | None) -> bool:
    """Whether workers can hand profiles back through `folder` (a read-only deployment's cache may not take them:
    their traces would be lost and done again here)."""
    if folder is None:
        return False
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK)


def _trace_share(jobs: Path, index: int, count: int) -> None:
    """In a worker: trace every `count`-th step from `index` and store each profile (or that it cannot be
    traced) in the disk cache; a refusal is stored where that holds, and the caller raises it again."""
    for job in pickle.loads(jobs.read_bytes())[index::count]:  # the caller's own file
        with contextlib.suppress(InputError):  # NotApplicableError included
            remembered_profile(*job)


if __name__ == "__main__":
    _trace_share(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
