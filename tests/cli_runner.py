"""Run `python -m core ...` in-process and capture (exit code, stdout, stderr)."""

from __future__ import annotations

import pytest

from core.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's own errors
        code = int(exc.code)
    out, err = capsys.readouterr()
    return code, out, err
