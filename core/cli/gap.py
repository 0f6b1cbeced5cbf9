"""`python -m core gap`: expected PEFT-minus-FFT gap with an 80% interval, for one scenario or a batch file.

Batch: `--input IN.csv --output OUT.csv`. IN has the columns id, task_type, base_params_b, train_examples,
method, rank, trainable_pct, adversarial (no / ood / yes); only id, task_type and method are required and
every other cell may be blank (an optional `targets` column is read too). Any method name is answered: a
registry id, a literature name read as its family (PiSSA, BOFT, Houlsby adapter...) or PEFT in general, and
any task type (qa is read as extraction), each with a note in `notes`. OUT has one row per input row, in
order: id, gap_mean, gap_low, gap_high, p_fft_better (FFT ahead by more than 1 point), n_evidence,
n_sources, verdict, method_read_as, notes, and for ood / adversarial rows the separate robustness estimate;
a row with a problem keeps its id, gets no numbers and says in `error` what is wrong and how to fix it (also
printed to stderr by id). Exit code 0 whenever OUT was written; 2 when IN cannot be read (missing, not a
CSV, or without the required columns) or OUT cannot be written.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.cli._common import print_json
from core.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

    from core.gap.features import GapScenario
    from core.gap.model import GapModel, GapPrediction

REQUIRED = ("id", "task_type", "method")
OPTIONAL = ("base_params_b", "train_examples", "rank", "trainable_pct", "adversarial", "targets")
OUTPUT = ("id", "gap_mean", "gap_low", "gap_high", "p_fft_better", "n_evidence", "n_sources", "verdict",
          "method_read_as", "notes", "robust_mean", "robust_low", "robust_high", "robust_basis", "error")  # fmt: skip


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("gap", help="expected accuracy gap of PEFT vs full fine-tuning, with evidence")
    parser.add_argument("--input", help="batch CSV: id, task_type, method, and optional scenario columns")
    parser.add_argument("--output", help="where the batch CSV of predictions is written")
    parser.add_argument("--task-type", help="single scenario: task type, e.g. classification")
    parser.add_argument("--method", help="single scenario: a PEFT method id, e.g. lora")
    parser.add_argument("--base-params-b", type=float, help="model size in billions of parameters")
    parser.add_argument("--train-examples", type=float, help="training examples")
    parser.add_argument("--rank", type=int, help="adapter rank")
    parser.add_argument("--trainable-pct", type=float, help="trainable share in percent of all parameters")
    parser.add_argument("--targets", help="adapted modules, e.g. q_proj,v_proj or all-linear")
    parser.add_argument("--adversarial", default="no", help="no (in-domain), ood or yes (adversarial)")
    parser.add_argument("--evidence", type=int, default=10, help="evidence rows to show (single scenario)")
    parser.add_argument("--theory", action="store_true", help="print what the evidence says about the theory")
    parser.add_argument("--json", action="store_true", help="single scenario: print one JSON object")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from core.gap.features import GapScenario
    from core.gap.forgetting import forgetting
    from core.gap.model import gap_model
    from core.gap.robustness import robustness

    if args.input or args.output:
        if not (args.input and args.output):
            raise InputError("batch mode needs both --input IN.csv and --output OUT.csv")
        return run_batch(Path(args.input), Path(args.output))
    model = gap_model()
    if args.theory and not (args.task_type or args.method):
        for line in model.theory_notes():
            print(f"- {line}")
        return 0
    if not (args.task_type and args.method):
        raise InputError("give --input/--output for a batch, or --task-type and --method for one scenario")
    scenario = GapScenario(
        task_type=args.task_type,
        method=args.method,
        base_params_b=args.base_params_b,
        train_examples=args.train_examples,
        rank=args.rank,
        trainable_pct=args.trainable_pct,
        targets=args.targets,
        distribution=args.adversarial,
    )
    prediction = model.predict(scenario)
    rob = robustness(model.pairs, list(model.claims), scenario)
    forget = forgetting(model_pairs_all(), task_type=scenario.task_type)
    if args.json:
        print_json(prediction.to_dict(evidence_limit=args.evidence) | {"robustness": rob.to_dict(),
                                                                         "forgetting": forget.to_dict()})  # fmt: skip
        return 0
    print(f"{scenario.method} on {scenario.task_type} ({scenario.distribution}): {prediction.summary()}")
    for line in [*prediction.notes, *([prediction.crossover.summary()] if prediction.crossover else [])]:
        print(f"note: {line}")
    print(f"held-out accuracy: {model.heldout_summary()}")
    if prediction.evidence:
        print(
            f"evidence (most similar first, {min(args.evidence, len(prediction.evidence))} of {prediction.n_evidence}):"
        )
        for row in prediction.evidence[: args.evidence]:
            print(f"  {row.gap:+6.2f}  sim {row.similarity:.2f}  {row.method_raw} on {row.model}, {row.task} "
                  f"[{row.source}, {row.source_table}]")  # fmt: skip
    for claim in prediction.claims:
        gap = "qualitative" if claim.gap is None else f"{claim.gap:+.2f}"
        print(f"claim {claim.claim_id} ({claim.citation}): {claim.task}, {claim.base_model}: {gap} {claim.text}")
    print("robustness:")
    for line in rob.lines():
        print(f"  {line}")
    print("forgetting:")
    for line in forget.lines():
        print(f"  {line}")
    print("theory:")
    for line in prediction.theory_notes:
        print(f"  {line}")
    return 0


def model_pairs_all() -> pd.DataFrame:
    """Every warehouse pair (forgetting metrics included), for the forgetting summary."""
    from core.warehouse import open_warehouse, pairs

    with open_warehouse() as wh:
        return pairs(wh)


def _cell(row: pd.Series, name: str) -> str:
    value = row.get(name, "")
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value).strip()


def _number(row: pd.Series, name: str, kind: type = float) -> Any:
    text = _cell(row, name)
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{name} {text!r} is not a number") from None
    if kind is int:
        if not value.is_integer():
            raise InputError(f"{name} {text!r} is not a whole number")
        return int(value)
    return value


def read_batch(path: Path) -> pd.DataFrame:
    """The batch file as text cells; a missing file or missing required columns is an InputError (exit 2)."""
    import pandas as pd

    if not path.is_file():
        raise InputError(f"no such input file: {path}")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} is not a readable CSV: {str(exc).splitlines()[0]}") from None
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise InputError(
            f"{path} lacks the required column{'s' if len(missing) > 1 else ''} {', '.join(missing)}: "
            f"the header needs {', '.join(REQUIRED)} (optional: {', '.join(OPTIONAL)})"
        )
    return frame


def scenario_from_row(row: pd.Series) -> GapScenario:
    """The row as a scenario; every problem it has is reported at once."""
    from core.gap.features import GapScenario

    problems = [f"{name} is blank" for name in ("task_type", "method") if not _cell(row, name)]
    numbers: dict[str, Any] = {}
    for name, kind in (("base_params_b", float), ("train_examples", float), ("rank", int), ("trainable_pct", float)):
        try:
            numbers[name] = _number(row, name, kind)
        except InputError as exc:
            problems.append(str(exc))
    if problems:
        raise InputError("; ".join(problems))
    return GapScenario(
        task_type=_cell(row, "task_type"),
        method=_cell(row, "method"),
        targets=_cell(row, "targets") or None,
        distribution=_cell(row, "adversarial") or "no",
        **numbers,
    )


def _read_as(prediction: GapPrediction) -> str:
    match = prediction.scenario.match
    return {"method": match.method_id or "", "family": f"family {match.family}", "peft": "PEFT in general"}[match.level]


def predict_batch(frame: pd.DataFrame, model: GapModel) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """One output row per input row, and (id, problem) for every row that could not be predicted."""
    import pandas as pd

    from core.gap.robustness import robustness

    out = pd.DataFrame({c: pd.Series([""] * len(frame), dtype=object) for c in OUTPUT})
    out["id"] = [_cell(r, "id") for _, r in frame.iterrows()]
    problems: list[tuple[str, str]] = []
    seen: set[str] = set()
    for i, row in frame.iterrows():
        rid = out.at[i, "id"]
        try:
            if not rid:
                raise InputError(f"id is blank (line {int(i) + 2} of the file): give every row an id")
            if rid in seen:
                raise InputError("id repeats an earlier row: give every row its own id")
            seen.add(rid)
            prediction = model.predict(scenario_from_row(row))
        except (InputError, ValueError) as exc:  # a row's problem never stops the others
            out.at[i, "error"] = str(exc).splitlines()[0]
            problems.append((rid or f"<blank, line {int(i) + 2}>", out.at[i, "error"]))
            continue
        out.loc[i, ["gap_mean", "gap_low", "gap_high", "p_fft_better"]] = [
            round(prediction.mean, 3), round(prediction.low, 3), round(prediction.high, 3),
            round(prediction.p_fft_better, 4),
        ]  # fmt: skip
        out.loc[i, ["n_evidence", "n_sources", "verdict"]] = [
            prediction.n_evidence, prediction.n_sources, prediction.verdict
        ]
        out.at[i, "method_read_as"] = _read_as(prediction)
        out.at[i, "notes"] = "; ".join(prediction.notes)
        scenario = prediction.scenario
        if scenario.distribution == "in-domain":
            continue
        rob = robustness(model.pairs, list(model.claims), scenario)
        est = rob.ood if scenario.distribution == "ood" else rob.adversarial
        if est.mean is not None and est.low is not None and est.high is not None:
            out.loc[i, ["robust_mean", "robust_low", "robust_high"]] = [
                round(est.mean, 3), round(est.low, 3), round(est.high, 3)
            ]
        out.at[i, "robust_basis"] = f"{est.n} {est.basis} in {est.n_sources} source{'s' if est.n_sources != 1 else ''}"
    return out, problems


def run_batch(input_path: Path, output_path: Path) -> int:
    from core.gap.model import gap_model

    frame = read_batch(input_path)
    out, problems = predict_batch(frame, gap_model())
    try:
        output_path.parent.mkdir(parents=True, exist_ok=True)
        out.to_csv(output_path, index=False)
    except OSError as exc:
        raise InputError(f"cannot write {output_path}: {exc.strerror}") from None
    for rid, problem in problems:
        print(f"row id {rid}: {problem}", file=sys.stderr)
    print(
        f"wrote {len(out)} rows to {output_path} ({len(out) - len(problems)} predicted, {len(problems)} with problems)"
    )
    return 0
