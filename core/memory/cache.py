"""A persistent cache of what the engine derives from a model's config once per machine: traced step profiles
(`load`/`store`) and small JSON records such as parameter counts (`load_record`/`store_record`).

A profile is a few kilobytes (the fitted events that can be a phase's peak, per traced copy); a record a few
hundred bytes. Entries are keyed by the content that determines them (the config JSON, head, method knobs, step
setup), by the versions of torch, transformers and peft, and by a hash of the source of the code that derives
them (a profile: the whole engine, `ENGINE_SOURCES`), so neither an upgrade nor an edit of the engine ever reads a
stale entry, and no version number is bumped by hand. The versions are read from the installed packages'
metadata, not by importing them: a warm estimate never imports torch. Files are written to a temporary name and
renamed, so concurrent processes never read half an entry. The folder is `$TUNEWISE_CACHE_DIR`, or the user
cache directory (`platformdirs`); `TUNEWISE_CACHE_DIR=off` disables it.

Processes (app sessions, replicas, CLI calls) that need the same missing profile at once trace it once: the
first holds the entry's lock file while it traces, the others wait on it and then read what it stored (`claim`).

Entries missing from that folder are read from `data/profiles/`, the opening pages' entries shipped with
TuneWise (`python data/build_profiles.py` writes them), so a fresh install answers its default scenarios without
tracing. The shipped folder is read only while its manifest names the installed engine packages' versions
and the hash of the engine's source (`ENGINE_SOURCES`): after an upgrade or an edit of the engine
it is ignored (and a test says to rebuild it), never read stale.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from core.memory.spec import StepSpec
    from core.registry import MethodChoice
    from core.skeleton_key import SkeletonKey

ENV_CACHE = "TUNEWISE_CACHE_DIR"
ENGINE_PACKAGES = ("torch", "transformers", "peft")

Fit = tuple[np.ndarray, np.ndarray]  # (coefficients, phases)
# the copies traced, each copy's fitted events, the full-depth model's events (None: traced per shape) and the
# full-depth step's allocation log as named arrays (`core.memory.steplog.AllocationLog`; None: it has none)
Entry = tuple[list[tuple[int, dict[str, int] | None]], list[Fit] | None, Fit | None, dict[str, np.ndarray] | None]


# The code a shipped entry is the outcome of: the model, method and counting layers and the memory engine.
_CORE = Path(__file__).resolve().parent.parent
ENGINE_SOURCES: tuple[Path, ...] = (
    *sorted((_CORE / "memory").glob("*.py")),
    *(_CORE / name for name in ("apply.py", "counting.py", "models.py", "peft_counts.py", "registry.py",
                                "skeleton.py", "skeleton_key.py")),
)
SHIPPED_DIR = _CORE.parent / "data" / "profiles"
MANIFEST = "manifest.json"


def shipped_manifest() -> dict[str, Any]:
    """What the shipped entries must have been built with to be read: the engine packages' versions and source."""
    return {"versions": list(package_versions()), "source": source_version(*ENGINE_SOURCES)}


@cache
def shipped_dir() -> Path | None:
    """`data/profiles/` when its manifest matches this install and engine (see the module docstring), else None."""
    try:
        manifest = json.loads((SHIPPED_DIR / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return SHIPPED_DIR if manifest == shipped_manifest() else None


def _existing(filename: str) -> Path | None:
    """The entry's file in the cache folder, else in the shipped folder, else None."""
    for folder in (cache_dir(), shipped_dir()):
        if folder is not None and (folder / filename).is_file():
            return folder / filename
    return None


def cache_dir() -> Path | None:
    """The cache folder, or None when caching is off."""
    configured = os.environ.get(ENV_CACHE, "").strip()
    if configured.lower() == "off":
        return None
    if configured:
        return Path(configured)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("tunewise")) / "traces"


@cache
def package_versions() -> tuple[str, ...]:
    """The installed versions of torch, transformers and peft (from their metadata: nothing is imported)."""
    return tuple(version(package) for package in ENGINE_PACKAGES)


@cache
def source_version(*files: Path) -> str:
    """A hash of the source files of the code that derives an entry: editing that code re-derives its entries."""
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


@cache
def installed_packages() -> str:
    """A hash of the distributions installed on `sys.path` (their metadata folders' names: name and version), for
    entries that depend on what is installed (a method refused for a missing package is derived again after an
    install)."""
    names = sorted(entry.name for folder in sys.path if os.path.isdir(folder) for entry in os.scandir(folder)
                   if entry.name.endswith((".dist-info", ".egg-info")))
    return hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]


def content_key(parts: dict[str, Any]) -> str:
    """A content hash of `parts` (JSON-able: what an entry depends on) and the engine packages' versions."""
    text = json.dumps({**parts, "versions": package_versions()}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def record_name(kind: str, sources: tuple[Path, ...], **parts: Any) -> str:
    """The one recipe of a JSON record's name: its kind, what it is derived from, and the hash of the source of
    the code that derives it (editing that code derives the record again), with the engine packages' versions."""
    return content_key({"record": kind, **parts, "code": source_version(*sources)})


def entry_key(key: SkeletonKey, choice: MethodChoice, spec: StepSpec) -> str:
    """A content hash of everything a profile depends on."""
    return content_key({"config": key.model.config_json, "task": key.task, "labels": key.num_labels,
                        "choice": repr(choice), "spec": asdict(spec), "code": source_version(*ENGINE_SOURCES)})


def load(name: str) -> Entry | None:
    """The cached entry, or None when there is none (or it cannot be read: it is then traced again)."""
    path = _existing(f"{name}.npz")
    if path is None:
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            variants = [(int(w), k) for w, k in json.loads(str(data["variants"]))]
            log = {name[4:]: data[name] for name in data.files if name.startswith("log_")} or None
            if not bool(data["fitted"]):
                return variants, None, None, log
            fitted = [(data[f"coef{i}"], data[f"phase{i}"]) for i in range(len(variants))]
            full = (data["coef_full"], data["phase_full"])
    except (OSError, ValueError, KeyError):
        return None
    return variants, fitted, full, log


def has(name: str) -> bool:
    """Whether an entry is stored (a look, not a read: for deciding what is missing)."""
    return _existing(f"{name}.npz") is not None


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
    variants, fitted, full, log = entry
    arrays: dict[str, np.ndarray] = {"variants": np.array(json.dumps(variants)),
                                     "fitted": np.array(fitted is not None and full is not None)}
    arrays |= {f"log_{name}": array for name, array in (log or {}).items()}
    for i, (coef, phase) in enumerate(fitted or []):
        arrays[f"coef{i}"], arrays[f"phase{i}"] = coef, phase
    if full is not None:
        arrays["coef_full"], arrays["phase_full"] = full
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    _write(f"{name}.npz", buffer.getvalue())


def load_record(name: str) -> dict[str, Any] | None:
    """The cached JSON record, or None when there is none (or it cannot be read: it is then derived again)."""
    path = _existing(f"{name}.json")
    if path is None:
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def store_record(name: str, record: dict[str, Any]) -> None:
    """Write a JSON record atomically; a cache that cannot be written is skipped."""
    _write(f"{name}.json", json.dumps(record, sort_keys=True).encode())


def _write(filename: str, data: bytes) -> None:
    """Write `data` under the cache folder through a temporary file and a rename (readers never see half a file)."""
    folder = cache_dir()
    if folder is None:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, folder / filename)
    except OSError:
        return
