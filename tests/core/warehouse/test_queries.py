"""The dashboard's read queries: filters, pages, counts, summaries, stats."""

from __future__ import annotations

import pytest

from core.errors import InputError
from core.warehouse import (
    Filters,
    Warehouse,
    claims,
    count_pairs,
    count_results,
    gap_summary,
    method_counts,
    pairs,
    results,
)


def test_filter_by_task_type_model_size_and_method(ro: Warehouse) -> None:
    code = results(ro, Filters(task_types=["code"]))
    assert len(code) == 104 + 43 and set(code["task_type"]) == {"code"}  # 43 from the 7 more papers
    small = results(ro, Filters(min_params_b=0.1, max_params_b=0.4))
    assert len(small) > 0 and small["params_b"].between(0.1, 0.4).all()
    both = results(ro, Filters(task_types=["classification"], methods=["lora", "dora"], max_params_b=1))
    assert set(both["method_id"]) == {"lora", "dora"} and (both["params_b"] <= 1).all()
    assert count_results(ro, Filters(methods=["qlora"])) == 29
    assert count_results(ro) == 1784


def test_pages_cover_the_results_once(ro: Warehouse) -> None:
    filters = Filters(task_types=["generation"])
    pages = [results(ro, filters, limit=50, offset=offset) for offset in range(0, 250, 50)]
    ids = [i for page in pages for i in page["result_id"]]
    assert len(ids) == len(set(ids)) == count_results(ro, filters) == 155 + 73
    assert ids == sorted(ids)


def test_pairs_for_one_task_type_and_their_summary(ro: Warehouse) -> None:
    classification = Filters(task_types=["classification"])
    frame = pairs(ro, classification)
    assert len(frame) == count_pairs(ro, classification) > 0
    summary = gap_summary(ro, classification).set_index("method_id")
    lora = frame[frame["method_id"] == "lora"]
    assert summary.loc["lora", "pairs"] == len(lora)
    assert summary.loc["lora", "gap_median"] == pytest.approx(lora["gap"].median())
    assert summary.loc["lora", "share_peft_at_least_fft"] == pytest.approx((lora["peft_advantage"] >= 0).mean())


def test_forgetting_metrics_can_be_left_out(ro: Warehouse) -> None:
    everything = count_pairs(ro, Filters(task_types=["code"]))
    target = count_pairs(ro, Filters(task_types=["code"], metric_kinds=["target"]))
    assert everything - target == 24 + 15  # Tables S2 and S6 measure forgetting after code training


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"methods": ["turbo"]}, "unknown methods 'turbo'"),
        ({"distributions": ["sideways"]}, "unknown distributions 'sideways'"),
        ({"min_params_b": 10, "max_params_b": 1}, "model size range is empty"),
        ({"task_types": "code"}, r"filter task_types takes a list, e.g. \['code'\]"),
    ],
)
def test_bad_filters_are_explained(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        Filters(**kwargs)  # type: ignore[arg-type]


def test_bad_pages_are_explained(ro: Warehouse) -> None:
    with pytest.raises(InputError, match="page limit must be at least 1"):
        results(ro, limit=0)


def test_claims_and_the_method_report(ro: Warehouse) -> None:
    frame = claims(ro)
    assert frame["claim_id"].tolist() == [f"S{i}" for i in range(1, 20)]
    report = method_counts(ro).set_index("method_id")
    assert report.loc["lora", "rows"] == 466 + 123
    assert "LoRA r=16 (all modules, alpha=2r)" in list(report.loc["lora", "raw_names"])
    assert "SVFT-P" in list(report.loc["other", "raw_names"])  # kept under its raw name, counted


def test_stats_has_the_documented_keys(ro: Warehouse) -> None:
    stats = ro.stats()
    assert {"results", "sources", "claims", "pairs", "calibration_runs", "memory_measurements"} <= set(stats)
    assert (stats["results"], stats["sources"], stats["claims"], stats["pairs"]) == (1784, 54, 19, 1119)


def test_an_empty_page_keeps_its_columns(ro: Warehouse) -> None:
    nobody = Filters(sources=["Nobody et al."])
    page = results(ro, nobody, limit=10)
    assert page.empty and "method_raw" in page.columns
    assert count_results(ro, nobody) == 0
    assert (
        results(ro, Filters(task_types=["code"]), limit=50, offset=100)["result_id"].tolist()
        == (results(ro, Filters(task_types=["code"]))["result_id"].tolist()[100:])
    )
