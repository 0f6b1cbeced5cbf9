"""Trainable parameters per method for any model: the counts come from peft on the real model class."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core import catalogue
from core.errors import InputError
from core.estimate import estimate
from core.models import resolve_model
from core.registry import MethodChoice, method_ids
from core.scenario import Scenario


@st.cache_data(show_spinner="Counting with peft on the meta device...")
def count_table(model_name: str, rank: int) -> pd.DataFrame:
    model = resolve_model(model_name)
    choices = tuple(
        MethodChoice(m, rank=rank) if "rank" in MethodChoice(m).spec.defaults and m != "oft" else MethodChoice(m)
        for m in method_ids()
    )
    report = estimate(Scenario(model, choices), skip_inapplicable=True)
    rows = []
    for m in report.methods:
        c = m.count
        rows.append(
            {
                "method": m.label,
                "trainable": c.trainable_params if c else None,
                "total": c.total_params if c else None,
                "trainable share (%)": 100 * c.trainable_share if c else None,
                "saved size (MiB)": c.adapter_bytes / 2**20 if c else None,
                "note": m.error,
            }
        )
    return pd.DataFrame(rows)


st.title("Trainable parameters")
st.caption("Exact counts: each method's real peft config applied to the model on the meta device (no weights).")
ids = sorted(catalogue.entries())
default = st.query_params.get("model", "meta-llama/Llama-2-7b-hf")
model_name = st.selectbox(
    "Model (catalogue) or type any Hub id",
    ids,
    index=ids.index(default) if default in ids else 0,
    key="model",
    accept_new_options=True,
)
rank = st.number_input("Rank (low-rank methods)", min_value=1, max_value=1024, value=8, key="rank")
st.query_params["model"] = model_name
try:
    st.dataframe(count_table(model_name, int(rank)), hide_index=True, width="stretch")
except InputError as exc:
    st.error(str(exc))
