"""Shared chart helpers: one colour per method on every page, and the Pareto chart of expected gap vs memory."""

from __future__ import annotations

import pandas as pd

from app.charts import (
    CAPACITY_COLOR,
    FFT_COLOR,
    METHOD_COLORS,
    method_color,
    method_color_scale,
    pareto_chart,
    pareto_frontier,
)
from core.registry import candidate_ids, method_ids


def test_every_registry_method_has_a_colour_and_candidates_never_collide() -> None:
    assert set(method_ids(estimable_only=False)) <= set(METHOD_COLORS)
    colours = [method_color(m) for m in candidate_ids()]
    assert len(set(colours)) == len(candidate_ids()) == 15
    assert method_color("fft") == FFT_COLOR
    assert CAPACITY_COLOR not in colours


def test_scale_keeps_each_method_colour_whatever_the_order() -> None:
    one = method_color_scale(["lora", "fft", "qlora"]).to_dict()
    two = method_color_scale(["qlora", "lora", "lora"]).to_dict()
    assert dict(zip(one["domain"], one["range"], strict=True)) == {"lora": method_color("lora"), "fft": FFT_COLOR,
                                                      "qlora": method_color("qlora")}
    assert two["domain"] == ["qlora", "lora"]
    assert dict(zip(two["domain"], two["range"], strict=True)) == {m: method_color(m) for m in ("qlora", "lora")}


def _frame() -> pd.DataFrame:
    return pd.DataFrame({
        "method_id": ["fft", "lora", "qlora", "ia3", "dora"],
        "label": ["FFT", "LoRA r=16", "QLoRA r=16", "IA3", "DoRA r=16"],
        "peak_gib": [120.0, 30.0, 12.0, 28.0, 33.0],
        "gap": [0.0, -0.5, -1.2, -2.5, -0.4],
        "fits": [False, True, True, True, True],
    })


def test_frontier_keeps_only_undominated_methods() -> None:
    frame = _frame()
    front = pareto_frontier(frame)
    # qlora needs less memory than ia3 and has a better gap; every other method is best on one axis at its peak.
    assert dict(zip(frame["method_id"], front, strict=True)) == {
        "fft": True, "lora": True, "qlora": True, "ia3": False, "dora": True,
    }


def test_frontier_ties_are_not_dominated_by_each_other() -> None:
    frame = pd.DataFrame({"peak_gib": [10.0, 10.0, 12.0], "gap": [-1.0, -1.0, -1.0]})
    assert pareto_frontier(frame).tolist() == [True, True, False]


def test_pareto_chart_encodings_labels_and_red_capacity_rule() -> None:
    spec = pareto_chart(_frame(), 80.0, "H100 80GB").to_dict()
    layers = spec["layer"]
    marks = [layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"] for layer in layers]
    assert marks == ["line", "point", "text", "rule", "text"]
    point = layers[1]["encoding"]
    assert point["x"]["field"] == "peak_gib" and "GiB" in point["x"]["title"]
    assert point["y"]["field"] == "gap" and "PEFT minus FFT" in point["y"]["title"]
    assert point["color"]["scale"]["range"][0] == FFT_COLOR
    assert layers[2]["encoding"]["text"]["field"] == "label"
    assert layers[3]["mark"]["color"] == CAPACITY_COLOR
    datasets = spec["datasets"]
    front_rows = datasets[layers[0]["data"]["name"]]
    assert [row["method_id"] for row in front_rows] == ["qlora", "lora", "dora", "fft"]
    rule_rows = datasets[layers[3]["data"]["name"]]
    assert rule_rows == [{"peak_gib": 80.0, "text": "H100 80GB: 80.0 GiB"}]
