"""Catalogue models at their real width with fewer blocks: a direct trace of every block stays cheap."""

from __future__ import annotations

import json
from pathlib import Path

from core.models import resolve_model
from core.skeleton_key import SkeletonKey

CATALOGUE = Path(__file__).resolve().parents[1] / "data" / "catalogue"


def shallow(tmp_path: Path, name: str, layers: int) -> SkeletonKey:
    """The catalogue model `name` (its file name without .json) with `layers` blocks, as a causal LM."""
    config = json.loads((CATALOGUE / f"{name}.json").read_text())
    config["num_hidden_layers"] = layers
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return SkeletonKey(resolve_model(str(path)), "causal-lm", 2)
