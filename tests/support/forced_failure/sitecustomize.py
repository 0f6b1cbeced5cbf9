"""Test support, not shipped behaviour: with this folder on PYTHONPATH, a calibration runner process (started by a
test, or by the app a test drives) fails the methods named in FORCED_FAILURE when it builds their model, so the
failure path (a failed method beside finished ones, its reason shown and stored) is tested without a fault hook
in the product. Python imports `sitecustomize` at start-up (the `site` module)."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

FORCED = frozenset(m.strip() for m in os.environ.get("FORCED_FAILURE", "").split(",") if m.strip())

if FORCED:
    # `python -m` puts the working folder on sys.path only after site ran: the project's root, explicitly
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
    from core.calibrate import train

    _build_model = train.build_model

    def _failing(key: Any, choice: Any, **kwargs: Any) -> Any:
        if choice.method in FORCED:
            raise RuntimeError(f"forced failure of {choice.method} (tests/support/forced_failure)")
        return _build_model(key, choice, **kwargs)

    for name in ("core.calibrate.probe_run", "core.calibrate.learn"):
        importlib.import_module(name).build_model = _failing
