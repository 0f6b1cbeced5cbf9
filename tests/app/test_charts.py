"""Shared chart helpers: one colour per method on every page, the Pareto chart of expected gap vs memory, and the
gap-against charts with their labelled points and the table of points beside."""

from __future__ import annotations

import pandas as pd

from app.charts import (
    CAPACITY_COLOR,
    FFT_COLOR,
    GAP_COLUMN,
    LABEL_LIMIT,
    METHOD_COLORS,
    RANK,
    TRAIN_EXAMPLES,
    TRAINABLE_SHARE,
    gap_against,
    gap_points_table,
    method_color,
    method_color_scale,
    paper_name,
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


def _pairs(n: int = 4) -> pd.DataFrame:
    """`n` charted pairs cycling through LoRA, DoRA and VeRA; the first states no rank, the second a zero share
    (neither can sit on a log axis)."""
    methods = ["lora", "dora", "vera"]
    return pd.DataFrame({
        "source": ["LoRA (Hu et al. 2021, arXiv 2106.09685 v2)", "SVFT (Lingam et al. 2024, arXiv 2405.17604)"] * n,
        "model": "RoBERTa-base", "task": [f"task {i}" for i in range(2 * n)], "task_type": "classification",
        "method_id": [methods[i % 3] for i in range(2 * n)], "method_raw": "raw",
        "gap": [(-1) ** i * (i + 0.5) for i in range(2 * n)],
        "trainable_pct": [0.5, 0.0, *[0.1 * (i + 1) for i in range(2 * n - 2)]],
        "rank": [None, *[float(2 ** (i % 5)) for i in range(2 * n - 1)]],
        "train_examples": [1000.0 * (2 * n - i) for i in range(2 * n)],
    })


def test_points_table_lists_each_plotted_point_with_units_and_the_gap_sign() -> None:
    pairs = _pairs()
    table = gap_points_table(pairs, RANK)
    assert list(table.columns) == ["method", "rank r", GAP_COLUMN, "paper", "task"]
    assert GAP_COLUMN == "PEFT minus FFT (points)"
    # one row per plotted point: the pair without a rank is not on the chart, so not in the table
    assert len(table) == len(pairs) - 1 and "task 0" not in set(table["task"])
    assert table["rank r"].dtype == "int64" and table["rank r"].is_monotonic_increasing
    by_task = pairs.set_index("task")["gap"]
    assert (table[GAP_COLUMN] == table["task"].map(by_task)).all()  # PEFT minus FFT, never flipped
    assert (table[GAP_COLUMN] < 0).any() and (table[GAP_COLUMN] > 0).any()
    assert set(table["paper"]) == {"LoRA", "SVFT"}
    assert set(table["method"]) == {"LoRA", "DoRA", "VeRA"}
    share = gap_points_table(pairs, TRAINABLE_SHARE)
    assert len(share) == len(pairs) - 1 and "task 1" not in set(share["task"])  # a zero share has no log position
    assert share.columns[1] == "trainable share (%)" and share["trainable share (%)"].dtype == "float64"
    examples = gap_points_table(pairs, TRAIN_EXAMPLES)
    assert len(examples) == len(pairs) and examples["training examples"].tolist() == [1000 * i for i in range(1, 9)]


def test_paper_name_is_the_citation_short_name_cut_to_fit() -> None:
    assert paper_name("QLoRA (Dettmers et al. 2023)") == "QLoRA"
    long = paper_name("Sun et al. 2023 'A Comparative Study between Full-Parameter and LoRA' (arXiv 2304.08109)")
    assert long.startswith("Sun et al. 2023") and long.endswith("…") and len(long) <= 28


def _layer_marks(spec: dict) -> list[str]:
    return [layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"] for layer in spec["layer"]]


def test_few_points_are_each_labelled_with_method_and_paper_in_the_method_colour() -> None:
    pairs = _pairs()
    spec = gap_against(pairs, "rank", "adapter rank r", log_base=2).to_dict()
    assert _layer_marks(spec) == ["point", "text", "text", "text", "text", "rule"]
    point, texts = spec["layer"][0], spec["layer"][1:5]
    assert point["encoding"]["x"]["title"] == "adapter rank r (log scale)"
    assert "PEFT minus FFT" in point["encoding"]["y"]["title"]
    colours = point["encoding"]["color"]["scale"]
    assert dict(zip(colours["domain"], colours["range"], strict=True)) == {
        "LoRA": method_color("lora"), "DoRA": method_color("dora"), "VeRA": method_color("vera"),
    }
    # the left half reads rightwards, the right half leftwards; neighbours alternate above and below their dots
    places = [(t["mark"]["align"], t["mark"]["dx"], t["mark"]["dy"]) for t in texts]
    assert places == [("left", 6, -9), ("left", 6, 11), ("right", -6, -9), ("right", -6, 11)]
    rows = [spec["datasets"][t["data"]["name"]] for t in texts]
    ranks = [[row["rank"] for row in part] for part in rows]
    assert max(ranks[0] + ranks[1]) <= min(ranks[2] + ranks[3])
    labels = [row["label"] for part in rows for row in part]
    plotted = spec["datasets"][point["data"]["name"]]
    assert len(labels) == len(plotted) == len(gap_points_table(pairs, RANK))  # each point named once
    assert {"LoRA · LoRA", "DoRA · SVFT", "VeRA · LoRA"} <= set(labels)
    assert all(t["encoding"]["text"]["field"] == "label" and t["encoding"]["color"]["scale"] == colours
               for t in texts)


def test_labels_leave_the_paper_out_when_every_point_has_the_same_one() -> None:
    pairs = _pairs().assign(source="QLoRA (Dettmers et al. 2023)")
    spec = gap_against(pairs, "train_examples", "training examples").to_dict()
    labels = {row["label"] for layer in spec["layer"][1:5] for row in spec["datasets"][layer["data"]["name"]]}
    assert labels == {"LoRA", "DoRA", "VeRA"}


def test_many_points_carry_no_labels_only_the_table_beside() -> None:
    pairs = _pairs(LABEL_LIMIT)
    spec = gap_against(pairs, "train_examples", "training examples").to_dict()
    assert _layer_marks(spec) == ["point", "rule"]
    assert len(spec["datasets"][spec["layer"][0]["data"]["name"]]) == len(gap_points_table(pairs, TRAIN_EXAMPLES))
