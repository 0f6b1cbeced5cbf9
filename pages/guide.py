"""Guide: what PEFT and FFT are, the seed research's theorems in plain words, and the evidence on each."""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from app.charts import RANK, TRAIN_EXAMPLES, gap_against, gap_points_table
from app.estimates import comparison_table, recommendation_for
from app.models import model_picker
from app.resources import cached_pairs, data_version, warehouse
from app.state import mirror, seed
from app.widgets import gap_points
from core.errors import InputError
from core.gap import gap_model
from core.gap.recommend import RecommendRequest
from core.registry import FAMILIES, METHODS, REFERENCE, method_ids
from core.warehouse import Filters

COMPARED = (REFERENCE, "lora", "qlora")
TASKS = 10
GUIDE_GPU = "A100-80GB"
GUIDE_EXAMPLES = 50_000

st.title("Guide")
st.markdown(
    """
**Full fine-tuning (FFT)** updates every weight of the model. **Parameter-efficient fine-tuning (PEFT)**
freezes the model and trains a small number of new or selected parameters: a low-rank update beside each
weight (LoRA and its relatives), learned scaling vectors (IA3), virtual tokens (prompt and prefix tuning),
or a subset of existing weights (BitFit, the top blocks). PEFT needs far less memory for gradients and
optimizer states, trains faster per step, and stores a few megabytes per task instead of a full copy.
"""
)
with st.expander("The methods TuneWise counts and estimates"):
    st.dataframe(
        [{"method": METHODS[m].name, "id": m, "family": FAMILIES[METHODS[m].family], "how": METHODS[m].summary,
          "reference": METHODS[m].reference} for m in method_ids()],
        hide_index=True, key="guide_methods",
    )

st.header("What the seed research argues")
st.caption("Liu et al., *Look Within or Look Beyond? A Theoretical Comparison Between Parameter-Efficient and Full "
           "Fine-Tuning* (arXiv 2505.22355). TuneWise shows these as claims and puts the published evidence beside "
           "them: the evidence points both ways.")
st.markdown(
    """
1. **PEFT is a strict subset of FFT.** A PEFT method reaches weights θ₀ + g(Φ) with k ≪ d trainable
   numbers, so the functions it can represent are a k-dimensional slice of what FFT can reach.
2. **Its capacity is bounded.** Within that slice, how far the fine-tuned model can move from the base
   model has an upper bound set by the adapter's size (for LoRA: its rank and the layers it covers).
3. **Extra parameters pay off less and less.** Raising the rank enlarges the slice, but with diminishing
   marginal returns.
4. **Extra data pays off less.** With more training data FFT keeps improving after PEFT saturates, so FFT
   pulls ahead as data grows; with little data PEFT can match or beat FFT.
5. **PEFT is more sensitive to perturbations.** The bound on its capacity also bounds how well it can
   absorb adversarial shifts, so the paper expects larger drops under adversarial tests.
"""
)

version = data_version()
pairs = cached_pairs(Filters(metric_kinds=["target"]), version)
task_types = sorted(pairs["task_type"].unique())
seed("guide_task", "code" if "code" in task_types else task_types[0], str, task_types)
task = st.selectbox("Look at the evidence for task type", task_types, key="guide_task")
mirror(("guide_task",))
chosen = pairs[pairs["task_type"] == task]
left, right = st.columns(2)
with left:
    st.subheader("Rank saturation (claims 2-3)")
    ranked = chosen.dropna(subset=["rank"])
    if ranked.empty:
        st.info(f"No published {task} pairs state a rank: pick another task type.")
    else:
        st.altair_chart(gap_against(ranked, RANK.field, RANK.title, log_base=2), key="guide_rank")
        st.caption(f"{len(ranked)} pairs. Diminishing returns show as a curve that flattens toward the right.")
        with st.expander("The points, as a table"):
            gap_points(st, gap_points_table(ranked, RANK), RANK, "guide_rank_points")
with right:
    st.subheader("Marginal benefit of data (claim 4)")
    sized = chosen.dropna(subset=["train_examples"])
    if sized.empty:
        st.info(f"No published {task} pairs state their training-set size: pick another task type.")
    else:
        st.altair_chart(gap_against(sized, TRAIN_EXAMPLES.field, TRAIN_EXAMPLES.title), key="guide_data")
        st.caption(f"{len(sized)} pairs. The claim predicts the gap falls below zero as data grows.")
        with st.expander("The points, as a table"):
            gap_points(st, gap_points_table(sized, TRAIN_EXAMPLES), TRAIN_EXAMPLES, "guide_data_points")

st.header("The seed paper's comparison, with TuneWise's numbers")
request = RecommendRequest(task_type=task, train_examples=GUIDE_EXAMPLES, model="gpt2", gpu=GUIDE_GPU, tasks=TASKS,
                           methods=COMPARED, tokens_per_example=1024)
st.caption("The paper compares PEFT and FFT on resources, accuracy, training time, memory, multi-task use and cost. "
           "Here each cell is the recommender's own estimate for the model you pick, for "
           f"{TASKS} tasks on one {GUIDE_GPU}: {request.settings_text()}.")
try:
    model = model_picker()
    result = recommendation_for(replace(request, model=model.name), model, warehouse(), version)
except InputError as exc:
    st.error(str(exc))
    st.stop()
st.dataframe(comparison_table(result), key="guide_comparison")
st.caption(f"Expected gaps for a paper the evidence has not seen: {gap_model(warehouse()).heldout_summary()}.")
