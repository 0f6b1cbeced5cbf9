"""`python -m core estimate`: parameter counts, per-GPU memory breakdown, fit, time and cost per method.

One scenario from the flags, or a batch with `--input scenarios.csv`: one scenario per row, the columns named as
the flags (`batch_size` or `batch-size` for `--batch-size`), blank cells taking the command line's value (or
the flag's default). Every row is checked before any is estimated, and all rows run in this one process, so
the counts and traced profiles of one row serve the next. A bad row stops the batch with one line naming its
row and column, and nothing else is printed. The engine is imported only when a command runs (`--help`
stays fast).
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.cli._common import (
    add_method_flags,
    add_model_flags,
    add_training_flags,
    method_choices,
    model_from_args,
    print_json,
    print_table,
    training_from_args,
)
from core.errors import InputError
from core.units import human_bytes, human_count

if TYPE_CHECKING:
    from core.estimate import EstimateReport, MethodEstimate
    from core.scenario import Scenario

_MEMORY = ("weights", "gradients", "optimizer", "activations", "temporaries", "allocated", "reserved", "device")
_NOT_COLUMNS = ("input", "json", "help")  # flags of the command itself, not of a scenario
_TRUE, _FALSE = ("yes", "true", "1", "on"), ("no", "false", "0", "off", "")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "estimate", help="trainable parameters, GPU memory, fit, time and cost per method",
        description="One scenario from the flags, or one per row of --input (columns named as the flags).",
    )  # fmt: skip
    parser.add_argument(
        "--input", type=Path, metavar="SCENARIOS.csv",
        help="batch: one scenario per row, columns named as these flags (model, method, batch_size, seq_len, gpu, "
             "...); a blank cell takes the command line's value; e.g. data/examples/estimate_scenarios.csv",
    )  # fmt: skip
    add_model_flags(parser, required=False)
    add_method_flags(parser, required=False)  # required unless --input gives it per row (checked in run)
    add_training_flags(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object (with --input: a JSON list)")
    parser.set_defaults(handler=lambda args: run(args, parser))


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.input is not None:
        return run_batch(args, parser)
    from core.estimate import estimate

    scenario, everything = scenario_from_args(args)
    report = estimate(scenario, skip_inapplicable=everything)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        print_json(payload(report, everything))
    else:
        render(report)
    return 0


class ColumnError(InputError):
    """Bad input that one scenario column is to blame for (a batch row's message names it)."""

    def __init__(self, message: str, column: str) -> None:
        super().__init__(message)
        self.column = column


def _blame(column: str, exc: InputError) -> ColumnError:
    """`exc` attributed to the first flag its message names, else to `column`."""
    for flag in (w.strip("'\"()") for w in str(exc).replace(",", " ").replace(":", " ").split()):
        if flag.startswith("--") and len(flag) > 2:
            return ColumnError(str(exc), flag[2:].replace("-", "_"))
    return ColumnError(str(exc), column)


def scenario_from_args(args: argparse.Namespace) -> tuple[Scenario, bool]:
    """The scenario of one set of flags, and whether several methods were asked for. A problem is a `ColumnError`
    naming the flag (as a column) it is about."""
    from core.memory.gpus import find_gpu
    from core.scenario import Scenario

    for flag, value in (("--model", args.model), ("--method", args.method)):
        if not value:
            raise ColumnError(f"{flag} is missing: give {flag} (or --input SCENARIOS.csv for a batch)", flag[2:])
    try:
        choices, everything = method_choices(args)
    except InputError as exc:
        raise _blame("method", exc) from None
    try:
        training = training_from_args(args)
    except InputError as exc:
        raise _blame("batch_size", exc) from None
    if training.gpu:
        try:
            find_gpu(training.gpu)  # an unknown name fails before any model work
        except InputError as exc:
            raise ColumnError(str(exc), "gpu") from None
    try:
        model = model_from_args(args)
        return Scenario(model, tuple(choices), args.task or "", args.num_labels, training), everything
    except InputError as exc:
        raise _blame("model", exc) from None


def payload(report: EstimateReport, several: bool) -> dict[str, Any]:
    """The JSON of a report: one flat object for one method, `methods` listing them for several."""
    out = report.to_dict()
    return out if several else {k: v for k, v in out.items() if k != "methods"} | out["methods"][0]


# ---- batch: --input scenarios.csv ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchRow:
    """One checked row of a batch file: its number (row n is line n + 1, under the header) and its scenario."""

    number: int
    scenario: Scenario
    several: bool

    def __post_init__(self) -> None:
        if self.number < 1:
            raise ValueError("batch rows are numbered from 1")


def scenario_columns(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """The columns a batch file may have: every flag of `estimate` but --input/--json, by its dest name."""
    return {action.dest: action for action in parser._actions
            if action.option_strings and action.dest not in _NOT_COLUMNS}  # fmt: skip


def read_rows(path: Path, columns: dict[str, argparse.Action]) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """The header's column names (as flag dests) and the rows as (number, text cells): row n is line n + 1 of the
    file (blank lines are skipped but keep their number). A bad file or header is an InputError."""
    if not path.is_file():
        raise InputError(f"no such input file: {path}; give a CSV with one scenario per row")
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            lines = list(reader)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path} is not a readable CSV ({exc}); save it as UTF-8 comma-separated text") from None
    if not header or not any(cell.strip() for cell in header):
        raise InputError(f"{path} is empty: the first line names the columns, e.g. model,method,batch_size,seq_len")
    names = [cell.strip().lstrip("-").replace("-", "_").lower() for cell in header]
    for name in names:
        if name not in columns:
            raise InputError(f"{path}: column {name!r} is not an estimate flag; columns are named as the flags: "
                             f"{', '.join(columns)}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(f"{path}: column {repeated[0]!r} appears twice; keep one")
    rows = []
    for number, cells in enumerate(lines, start=1):
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) > len(names):
            raise InputError(f"row {number}: {len(cells)} cells but the header names {len(names)} columns; "
                             "quote cells that contain commas, e.g. \"lora,qlora\"")
        rows.append((number, {name: cell.strip() for name, cell in zip(names, cells, strict=False)}))
    if not rows:
        raise InputError(f"{path} has a header but no rows: add one scenario per line")
    return names, rows


def _cell_value(action: argparse.Action, text: str) -> Any:
    """A cell as the flag would read it: a switch takes yes/no, a choice one of its choices, a number a number."""
    if action.nargs == 0:  # a switch such as --gradient-checkpointing
        if text.lower() not in (*_TRUE, *_FALSE):
            raise InputError(f"{text!r} is not yes or no")
        return text.lower() in _TRUE
    kind = action.type if callable(action.type) else str
    try:
        value = kind(text)
    except (TypeError, ValueError):
        noun = {int: "a whole number", float: "a number"}.get(kind, "valid")  # type: ignore[call-overload]
        raise InputError(f"{text!r} is not {noun}") from None
    if action.choices is not None and value not in action.choices:
        raise InputError(f"{text!r} is not one of {', '.join(map(str, action.choices))}")
    return value


def check_row(number: int, row: dict[str, str], base: argparse.Namespace,
              columns: dict[str, argparse.Action]) -> BatchRow:
    """One row as a checked scenario (blank cells keep the command line's values); any problem is one InputError
    line naming the row and the column."""
    args = argparse.Namespace(**vars(base))
    for name, text in row.items():
        if not text:
            continue
        try:
            setattr(args, name, _cell_value(columns[name], text))
        except InputError as exc:
            raise InputError(f"row {number}, column {name}: {exc}") from None
    try:
        scenario, several = scenario_from_args(args)
    except ColumnError as exc:
        raise InputError(f"row {number}, column {exc.column}: {exc}") from None
    return BatchRow(number, scenario, several)


def run_batch(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Check every row, estimate every row in this process, then print all results at once."""
    from core.estimate import estimate

    columns = scenario_columns(parser)
    _, rows = read_rows(args.input, columns)
    checked = [check_row(number, row, args, columns) for number, row in rows]
    reports = []
    for item in checked:
        try:
            reports.append(estimate(item.scenario, skip_inapplicable=item.several))
        except InputError as exc:
            raise InputError(f"row {item.number}, column {_blame('method', exc).column}: {exc}") from None
    for item, report in zip(checked, reports, strict=True):
        for warning in report.warnings:
            print(f"warning: row {item.number}: {warning}", file=sys.stderr)
    if args.json:
        print_json([{"row": item.number} | payload(report, item.several)
                    for item, report in zip(checked, reports, strict=True)])  # fmt: skip
    else:
        render_batch([(item.number, report) for item, report in zip(checked, reports, strict=True)])
    return 0


# ---- text output -----------------------------------------------------------------------------------------------


def _setup_text(t: dict[str, Any]) -> str:
    return (f"batch {t['batch_size']} x {t['seq_len']} tokens, {t['precision']}, {t['optimizer']}, {t['attention']}"
            f"{', checkpointing' if t['gradient_checkpointing'] else ''}"
            f"{' (reentrant)' if t['reentrant_checkpointing'] else ''}, {t['gpus']} GPU(s)"
            f"{', ' + t['sharding'] if t['sharding'] != 'none' else ''}")


def _headers(with_fit: bool, with_time: bool) -> list[str]:
    headers = ["method", "trainable", "share", "weights", "grads", "optim", "activ", "temp", "allocated", "reserved",
               "device", "peak at"]
    return headers + (["fits", "max batch"] if with_fit else []) + (["hours", "USD"] if with_time else [])


def render(report: EstimateReport) -> None:
    t = report.training
    print(f"{report.model} ({report.model_origin}, {report.task}) - {_setup_text(t)}; memory per GPU at the step's "
          "peak")
    print("allocated / reserved: what torch.cuda.max_memory_allocated / max_memory_reserved would show (reserved: "
          "the step replayed through the caching allocator); device: what nvidia-smi shows (what must fit)")
    with_fit, with_time = bool(t.get("gpu")), bool(t.get("dataset_tokens"))
    headers = _headers(with_fit, with_time)
    print_table([*headers, "note"], [_row(m, with_fit, with_time, len(headers)) for m in report.methods])


def render_batch(results: list[tuple[int, EstimateReport]]) -> None:
    """One table for the whole batch: a line per row and method, its model and setup in front."""
    with_fit = any(r.training.get("gpu") for _, r in results)
    with_time = any(r.training.get("dataset_tokens") for _, r in results)
    headers = _headers(with_fit, with_time)
    lines = []
    for number, report in results:
        t = report.training
        setup = f"{t['batch_size']}x{t['seq_len']}, {t['gpus']}x {t.get('gpu') or 'any GPU'}"
        for m in report.methods:
            lines.append([str(number), report.model, setup,
                          *_row(m, bool(t.get("gpu")), bool(t.get("dataset_tokens")), len(headers),
                                pad_fit=with_fit, pad_time=with_time)])  # fmt: skip
    print("device: what nvidia-smi shows (what must fit), per GPU at the step's peak")
    print_table(["row", "model", "batch, GPUs", *headers, "note"], lines)


def _row(m: MethodEstimate, with_fit: bool, with_time: bool, width: int, *, pad_fit: bool = False,
         pad_time: bool = False) -> list[str]:
    """A method's cells; `pad_*` leaves blank fit/time cells for a row without a GPU/dataset in a batch table."""
    if m.count is None:
        return [m.label, "n/a", *([""] * (width - 2)), m.error]
    c = m.count
    row = [m.label, human_count(c.trainable_params), f"{100 * c.trainable_share:.3f}%"]
    if m.training is None:
        return [*row, *([""] * (width - 3)), m.memory_error]
    memory = m.training.memory.to_dict()
    row += [*(human_bytes(memory[k]) for k in _MEMORY), memory["phase"]]
    fit, time = m.training.fit, m.training.time
    note = []
    if m.training.memory.reserved_from != "replay":  # say when reserved (and so device) is not the replay
        from core.memory.budget import RESERVED_SOURCES  # here: `--help` imports no engine module

        note.append(f"reserved: {RESERVED_SOURCES[m.training.memory.reserved_from]}")
    if with_fit and fit is not None:
        row += ["yes" if fit.fits else "no", fit.batch_text]
        note.append(f"headroom {human_bytes(fit.headroom)}; fewest GPUs: {fit.fewest_text}")
    elif pad_fit:
        row += ["", ""]
    if with_time:
        row += ["", ""] if time.hours is None or time.usd is None else [f"{time.hours:.1f}", f"{time.usd:,.0f}"]
        if time.note:
            note.append(time.note)
    elif pad_time:
        row += ["", ""]
    return [*row, "; ".join(note)]
