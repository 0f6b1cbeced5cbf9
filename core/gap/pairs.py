"""The matched pairs the gap model learns from: counted once, with every method family the evidence names.

Three steps on top of the warehouse's `pairs` view:
- literature pairs: published PEFT rows whose method the registry does not list (SVFT, BOFT, LiLy, ...) are
  stored as `other`, outside the pairs view; they are paired here with the same setup's FFT row (the view's
  choice: the source's own run before a quoted one, unrestricted before restricted, then the first stored)
  and given the family their name reads as (`names.match_method`);
- duplicates: the same comparison printed twice (one source, model, task, metric, method and values, in two
  tables) counts once;
- aggregates: a source's average over tasks ("GLUE-Avg", "Commonsense reasoning Avg", "WebNLG all") next to
  the per-task rows it averages counts once, as its parts; an average with no parts stored is kept.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from core.gap.names import match_method
from core.registry import METHODS

NOT_FITTED_FAMILIES = frozenset({"full", "baseline"})  # the reference itself, and rows that are not a method
_AGGREGATE_TASK = re.compile(r"\bavg\b|\baverage\b|\boverall\b|\ball\b|\bglue score\b|\(avg", re.IGNORECASE)
_AGGREGATE_METRIC = re.compile(r"^average\b|\baverage of\b", re.IGNORECASE)
_DUPLICATE_KEY = ("source", "model", "task", "task_type", "metric", "distribution", "method_raw", "rank",
                  "trainable_pct", "train_examples", "train_tokens", "epochs", "peft_value_100", "fft_value_100",
                  "peft_advantage")  # fmt: skip
_GROUP_KEY = ("source", "source_table", "model", "method_raw", "task_type", "metric_kind", "trainable_pct")


def literature_pairs(results: pd.DataFrame) -> pd.DataFrame:
    """Pairs (the pairs view's columns) for `other` rows of `results` (the results_wide columns)."""
    if results.empty:
        return pd.DataFrame()
    fft = results.loc[results["method_family"] == "full"].sort_values(
        ["setup_id", "quoted_from_prior_work", "restricted_setup", "result_id"]
    )
    chosen = fft.drop_duplicates("setup_id")
    other = results.loc[(results["method_id"] == "other") & results["value_100"].notna()]
    merged = other.merge(
        chosen[["setup_id", "result_id", "method_raw", "quoted_from_prior_work", "metric_value", "value_100"]],
        on="setup_id", suffixes=("", "_fft"),
    )  # fmt: skip
    merged = merged.loc[merged["value_100_fft"].notna()]
    sign = np.where(merged["higher_is_better"].astype(bool), 1.0, -1.0)
    gap = (merged["value_100"] - merged["value_100_fft"]).round(6)
    return pd.DataFrame(
        {
            "peft_result_id": merged["result_id"], "fft_result_id": merged["result_id_fft"],
            "source": merged["source"], "source_table": merged["source_table"], "model": merged["model"],
            "params_b": merged["params_b"], "task": merged["task"], "task_type": merged["task_type"],
            "metric": merged["metric"], "metric_kind": merged["metric_kind"],
            "higher_is_better": merged["higher_is_better"], "distribution": merged["distribution"],
            "train_examples": merged["train_examples"], "train_tokens": merged["train_tokens"],
            "epochs": merged["epochs"], "method_id": merged["method_id"], "method_raw": merged["method_raw"],
            "rank": merged["rank"], "targets": merged["targets"], "trainable_pct": merged["trainable_pct"],
            "peft_value_100": merged["value_100"], "fft_value_100": merged["value_100_fft"],
            "fft_method_raw": merged["method_raw_fft"], "gap": gap, "peft_advantage": (sign * gap).round(6),
            "origin": merged["origin"],
        }
    ).reset_index(drop=True)


def double_counts(pairs: pd.DataFrame) -> pd.DataFrame:
    """`pairs` with two boolean columns: `duplicate` (a repeat of an earlier pair) and `aggregate` (an average
    whose parts are also stored). Neither is fitted or counted as evidence."""
    if pairs.empty:
        return pairs.assign(duplicate=pd.Series(dtype=bool), aggregate=pd.Series(dtype=bool))
    key = [c for c in _DUPLICATE_KEY if c in pairs.columns]
    duplicate = pairs[key].astype(str).duplicated(keep="first")
    named = pairs["task"].astype(str).str.contains(_AGGREGATE_TASK) | pairs["metric"].astype(str).str.contains(
        _AGGREGATE_METRIC
    )
    group = [c for c in _GROUP_KEY if c in pairs.columns]
    parts = (~named).groupby([pairs[c] for c in group], dropna=False).transform("sum")
    return pairs.assign(duplicate=duplicate.to_numpy(), aggregate=(named & (parts >= 2)).to_numpy())


def _family(method_id: str, method_raw: str) -> str:
    if method_id in METHODS and METHODS[method_id].family not in NOT_FITTED_FAMILIES:
        return METHODS[method_id].family
    match = match_method(method_raw)
    return match.family or ""


def prepare_pairs(pairs: pd.DataFrame, extra: pd.DataFrame | None = None, *, unread: bool = False) -> pd.DataFrame:
    """The pairs the accuracy-gap model learns from, with `y`: the gap oriented so positive = PEFT better.

    `extra` (from `literature_pairs`) joins the view's pairs. Kept: target-task metrics (forgetting metrics
    measure retention, see `forgetting`), PEFT methods with a family (not `base`, not unreadable names), a gap
    on the 0-100 scale, counted once (`double_counts`); with `unread`, also literature methods whose family no
    rule reads (family ''), which an evaluation predicts but no fit learns from. Adds `family` (registry or
    literature family) and `y`, `peft_advantage`: PEFT minus FFT for higher-is-better metrics, sign-corrected
    otherwise.
    """
    frames = [f for f in (pairs, extra) if f is not None and not f.empty]
    if not frames:
        return pairs.assign(y=pd.Series(dtype=float), family=pd.Series(dtype=str))
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(drop=True)
    family = [_family(str(m), str(r)) for m, r in zip(frame["method_id"], frame["method_raw"], strict=True)]
    frame = double_counts(frame.assign(family=family))
    read = frame["family"] != ""
    if unread:  # also literature methods no family rule reads (a prediction answers them as PEFT in general)
        read |= frame["method_id"] == "other"
    keep = (
        (frame["metric_kind"] == "target")
        & read
        & frame["peft_advantage"].notna()
        & frame["task_type"].notna()
        & ~frame["duplicate"]
        & ~frame["aggregate"]
    )
    out = frame.loc[keep].reset_index(drop=True)
    return out.assign(y=out["peft_advantage"].astype(float))
