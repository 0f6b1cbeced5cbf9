"""Small UI pieces shared by pages: downloads, uploads into the warehouse, error display in plain words."""

from __future__ import annotations

import io
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from app.charts import GAP_COLUMN, GapAxis
from app.resources import warehouse
from core.errors import InputError
from core.warehouse import ImportRejectedError, ImportReport

_FLAG = re.compile(r"--([a-z][a-z0-9-]*)")


def plain_words(text: str, labels: Mapping[str, str]) -> str:
    """An engine message with its command-line flags named as the page names them: `--seq-len 9000` becomes
    `"Sequence length (tokens)" 9000`; flags the page does not show read as words ("init rank")."""
    def name(match: re.Match[str]) -> str:
        flag = match.group(0)
        return f'"{labels[flag]}"' if flag in labels else match.group(1).replace("-", " ")

    return _FLAG.sub(name, text)


@st.cache_data(show_spinner=False, max_entries=16)
def _file_bytes(frame: pd.DataFrame) -> tuple[bytes, bytes]:
    """A frame as CSV and as Parquet (written once per content: a rerun that shows the same rows reuses them)."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return frame.to_csv(index=False).encode("utf-8"), buffer.getvalue()


def download_buttons(frame: pd.DataFrame, name: str, key: str) -> None:
    """CSV and Parquet downloads of exactly what the page shows."""
    csv, parquet = _file_bytes(frame)
    left, right = st.columns(2)
    left.download_button("Download CSV", csv, f"{name}.csv", "text/csv", key=f"{key}_csv")
    right.download_button("Download Parquet", parquet, f"{name}.parquet", "application/vnd.apache.parquet",
                          key=f"{key}_pq")


def import_upload(upload: st.runtime.uploaded_file_manager.UploadedFile) -> ImportReport | None:
    """Import an uploaded results file all-or-nothing; show row-level errors when it is rejected."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / Path(upload.name).name
        path.write_bytes(upload.getvalue())
        try:
            return warehouse().import_file(path)
        except ImportRejectedError as exc:
            st.error(f"{upload.name} was rejected: {exc.count_text}, nothing was written; fix them, retry.")
            st.dataframe(
                pd.DataFrame(exc.errors, columns=[exc.unit, "reason"]), hide_index=True, key="import_errors"
            )
        except InputError as exc:
            st.error(str(exc))
    return None


def gap_points(container: Any, points: pd.DataFrame, axis: GapAxis, key: str) -> None:
    """The table of a gap-against chart's points (`app.charts.gap_points_table`), numbers in their units and
    the gap with its sign, so a reader never has to pick overlapping dots apart."""
    container.dataframe(points, hide_index=True, key=key, height=320, column_config={
        axis.column: st.column_config.NumberColumn(axis.column, format=axis.number_format),
        GAP_COLUMN: st.column_config.NumberColumn(GAP_COLUMN, format="%+.2f"),
    })
