"""Write data/published_results_2.csv, the 388 matched comparisons of data/published_pairs_2.csv (7 papers; their
provenance in data/published_pairs_2_sources.md) as rows of the published-results format, so the warehouse seeds
and pairs them as it does the first file (a FFT row and a PEFT row on one setup: same source table, model, task,
metric and training-set size).

Run once after the pairs file changes; the output is committed (the app never reads ../shared):

    python data/convert_published_pairs.py

Conventions (data/published_results_sources.md):
* each pair gives a PEFT row; its FFT row is written once per setup (several methods share one FFT number). No
  FFT number here is quoted from prior work (the sources file: each paper's own run; GOAT does not say);
* task type `qa` follows the warehouse's rule (multiple-choice QA counts as classification, extractive QA as
  extraction): SQuAD is extraction; MMLU subsets, USMLE, PubMedQA and their averages classification; ConvFinQA
  (numerical reasoning over tables) reasoning-math;
* MT-Bench, given x10 in the pairs file, is written on its own 1-10 scale (the warehouse rescales it);
* the method is written as the pairs file names it (a registry id where it has one); names the registry does not
  know are kept and map to `other`, counted and never dropped. He et al.'s prefix + LoRA combination is named so
  that it does not read as either method alone.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

DATA = Path(__file__).resolve().parent
PAIRS = DATA / "published_pairs_2.csv"
OUT = DATA / "published_results_2.csv"
COLUMNS = ("source", "table", "base_model", "base_params_b", "task", "task_type", "train_examples", "method",
           "trainable_pct", "metric", "value", "adversarial", "notes")
QA_TYPES = ((re.compile(r"squad", re.I), "extraction"), (re.compile(r"convfinqa", re.I), "reasoning-math"),
            (re.compile(r"mmlu|usmle|pubmedqa|biomed", re.I), "classification"))
METHOD_NAMES = {"prefix_tuning+lora": "He et al. 2022 combined variant (see notes)"}


def _task_type(row: dict[str, str]) -> str:
    if row["task_type"] != "qa":
        return row["task_type"]
    for pattern, task_type in QA_TYPES:
        if pattern.search(row["task"]):
            return task_type
    raise ValueError(f"no task type for the QA task {row['task']!r}")


def _metric_value(row: dict[str, str], column: str) -> tuple[str, str]:
    value = float(row[column])
    if row["metric"].endswith(" x10"):
        return row["metric"][:-4], f"{value / 10:g}"
    return row["metric"], f"{value:g}"


def convert() -> list[dict[str, str]]:
    """The pairs as result rows: the FFT row of each setup once, then each pair's PEFT row."""
    out: list[dict[str, str]] = []
    seen: dict[tuple[str, ...], str] = {}
    with PAIRS.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            table = (re.search(r"Tables? [\w.-]+", row["notes"]) or re.search(r".*", "")).group(0) or "Table ?"
            common = {"source": row["source"], "table": table, "base_model": row["base_model"],
                      "base_params_b": row["base_params_b"], "task": row["task"], "task_type": _task_type(row),
                      "train_examples": row["train_examples"], "adversarial": "no"}
            metric, fft_value = _metric_value(row, "fft_score")
            setup = (row["source"], table, row["base_model"], row["task"], metric, row["train_examples"])
            if setup in seen:
                if seen[setup] != fft_value:
                    raise ValueError(f"two FFT numbers for one setup {setup}: {seen[setup]} and {fft_value}")
            else:
                seen[setup] = fft_value
                out.append({**common, "method": "FT (full fine-tuning)", "trainable_pct": "100",
                            "metric": metric, "value": fft_value,
                            "notes": f"FFT of pair {row['id']} (data/published_pairs_2.csv)"})
            _, peft_value = _metric_value(row, "peft_score")
            method = METHOD_NAMES.get(row["method"], row["method"])
            if row["rank"]:
                method += f" r={int(float(row['rank']))}"
            out.append({**common, "method": method, "trainable_pct": row["trainable_pct"], "metric": metric,
                        "value": peft_value, "notes": f"pair {row['id']}: {row['notes']}"})
    return out


def main() -> None:
    rows = convert()
    with OUT.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    print(f"{len(rows)} rows written to {OUT.name}")


if __name__ == "__main__":
    main()
