"""Test support that is not a fixture: helpers tests import, and folders a test's subprocesses put on their path."""

from __future__ import annotations

import os
from pathlib import Path

FORCED_FAILURE = Path(__file__).resolve().parent / "forced_failure"


def forced_failure_env(*methods: str) -> dict[str, str]:
    """Environment variables under which a calibration runner process fails `methods` when it builds their model
    (tests/support/forced_failure/sitecustomize.py), keeping whatever PYTHONPATH the test process has."""
    path = os.pathsep.join(filter(None, (str(FORCED_FAILURE), os.environ.get("PYTHONPATH", ""))))
    return {"FORCED_FAILURE": ",".join(methods), "PYTHONPATH": path}
