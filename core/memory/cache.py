"""A persistent cache of traced step profiles, so each (model, method, step setup) is traced once per machine.

A profile is a few kilobytes (the fitted events that can be a phase's peak, per traced copy). Entries are keyed
by the content that determines them (the config JSON, head, method knobs, step setup) and by the versions of
torch, transformers and peft and of the trace itself, so an upgrade never reads a stale entry. Files are
written to a temporary name and renamed, so concurrent processes never read half an entry. The folder is
`$TUNEWISE_CACHE_DIR`, or the user cache directory (`platformdirs`); `TUNEWISE_CACHE_DIR=off` disables it.

Processes (app sessions, replicas, CLI calls) that need the same missing entry at once trace it once: the first
holds the entry's lock file while it traces, the others wait on it and then read what it stored (`claim`).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import numpy as np
import peft
import torch
import transformers

from core.memory.step import StepSpec
from core.registry import MethodChoice
from core.skeleton import SkeletonKey

ENV_CACHE = "TUNEWISE_CACHE_DIR"
TRACE_VERSION = "5"  # bump when the traced step or the fit changes what a profile holds

Entry = tuple[list[tuple[int, dict[str, int] | None]], list[tuple[np.ndarray, np.ndarray]] | None]


def cache_dir() -> Path | None:
    """The cache folder, or None when caching is off."""
    configured = os.environ.get(ENV_CACHE, "").strip()
    if configured.lower() == "off":
        return None
    if configured:
        return Path(configured)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("tunewise")) / "traces"


def entry_key(key: SkeletonKey, choice: MethodChoice, spec: StepSpec) -> str:
    """A content hash of everything a profile depends on."""
    parts = {
        "config": key.model.config_json, "task": key.task, "labels": key.num_labels,
        "choice": repr(choice), "spec": asdict(spec), "trace": TRACE_VERSION,
        "versions": [torch.__version__, transformers.__version__, peft.__version__],
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def load(name: str) -> Entry | None:
    """The cached entry, or None when there is none (or it cannot be read: it is then traced again)."""
    folder = cache_dir()
    path = folder / f"{name}.npz" if folder else None
    if path is None or not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            variants = [(int(w), k) for w, k in json.loads(str(data["variants"]))]
            if not bool(data["fitted"]):
                return variants, None
            fitted = [(data[f"coef{i}"], data[f"phase{i}"]) for i in range(len(variants))]
    except (OSError, ValueError, KeyError):
        return None
    return variants, fitted


@contextmanager
def claim(name: str) -> Iterator[None]:
    """Hold the entry's lock while it is traced, so concurrent processes and threads trace it once (POSIX
    `flock` on a lock file beside the entry; without a cache folder, or where it cannot be locked, no lock)."""
    folder = cache_dir()
    try:
        import fcntl

        if folder is None:
            raise OSError("no cache folder")
        folder.mkdir(parents=True, exist_ok=True)
        handle = open(folder / f"{name}.lock", "w")  # noqa: SIM115  (closed by the `with` below)
    except (ImportError, OSError):
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def store(name: str, entry: Entry) -> None:
    """Write an entry atomically; a cache that cannot be written is skipped (the estimate stands)."""
    folder = cache_dir()
    if folder is None:
        return
    variants, fitted = entry
    arrays: dict[str, np.ndarray] = {"variants": np.array(json.dumps(variants)),
                                     "fitted": np.array(fitted is not None)}
    for i, (coef, phase) in enumerate(fitted or []):
        arrays[f"coef{i}"], arrays[f"phase{i}"] = coef, phase
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(handle, "wb") as out:
            out.write(buffer.getvalue())
        os.replace(temporary, folder / f"{name}.npz")
    except OSError:
        return
