"""The recommender: PEFT when FFT does not fit (and what would make it fit), priorities moving the ranking the
expected way, many tasks favouring adapters by storage, and bad input."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping

import pandas as pd
import pytest

from core.errors import InputError
from core.gap.model import GapModel, fit_gap_model
from core.gap.recommend import MethodOption, Recommendation, RecommendRequest, recommend
from core.models import ResolvedModel, resolve_model
from core.registry import PEFT_DEFAULT, MethodChoice


@pytest.fixture(scope="module")
def qwen_small() -> ResolvedModel:
    return resolve_model("qwen2.5-0.5b")


@pytest.fixture(scope="module")
def small_model(synthetic: pd.DataFrame) -> GapModel:
    """Synthetic evidence at Qwen2.5-0.5B's size where LoRA trails FFT by 6 points on code (conftest's truth)."""
    return fit_gap_model(synthetic.assign(params_b=0.494))


@pytest.fixture(scope="module")
def qwen_mid() -> ResolvedModel:
    return resolve_model("qwen2.5-1.5b")


def _run(model: GapModel, resolved: ResolvedModel, **kwargs: object) -> Recommendation:
    defaults: dict[str, object] = {"task_type": "code", "train_examples": 20_000, "model": resolved.name,
                                   "gpu": "a100-80gb", "methods": ("lora",)}  # fmt: skip
    return recommend(RecommendRequest(**(defaults | kwargs)), model=model, resolved=resolved)  # type: ignore[arg-type]


def _option(rec: Recommendation, method: str) -> MethodOption:
    return next(o for o in rec.options if o.method == method)


def _position(rec: Recommendation, method: str) -> int:
    return [o.method for o in rec.options].index(method)


def test_peft_is_recommended_when_fft_does_not_fit(real_model: GapModel, qwen_mid: ResolvedModel) -> None:
    rec = _run(real_model, qwen_mid, gpu="t4", methods=("lora",))
    fft = _option(rec, "fft")
    assert not fft.fits and fft.plan is not None and fft.plan.headroom_gib < 0
    assert rec.choice is not None and rec.choice.method == "lora" and rec.choice.fits
    assert _position(rec, "fft") == len(rec.options) - 1
    assert any("does not fit the budget, so a PEFT method is recommended" in line for line in rec.rationale)
    fixes = "\n".join(rec.make_fft_fit)
    assert rec.fft_advice is not None and rec.make_fft_fit == rec.fft_advice.lines()
    assert "x T4" in fixes and "GiB per GPU of 14.7 GiB" in fixes
    assert "switch to QLoRA" in fixes  # re-estimated even though the request did not list QLoRA
    assert "does not fit 1 x T4: needs" in fft.reason and "no time or cost for a run that does not fit" in fft.reason
    assert fft.plan.hours is None and "hours_per_task" not in fft.to_dict()["plan"]
    # the guide's figure is the plan's, and its fix is the advice's cheapest change
    guide = rec.guide[0]
    assert f"FFT needs {fft.plan.per_gpu_bytes / 2**30:.1f} GiB per GPU" in guide and rec.make_fft_fit[0] in guide
    for change in rec.fft_advice.changes:
        assert change.peak_bytes <= change.gpu_memory


def test_make_fft_fit_agrees_with_the_sharded_plan(real_model: GapModel, qwen_mid: ResolvedModel) -> None:
    """Several GPUs: FFT is planned with ZeRO-3 over the budget, and what would make it fit starts from that
    figure, never from the unsharded one."""
    rec = _run(real_model, qwen_mid, gpu="t4", gpus=2, micro_batch=16, tokens_per_example=1024,
               gradient_checkpointing=False)
    fft = _option(rec, "fft")
    assert fft.plan is not None and fft.plan.sharding == "zero3" and fft.plan.gpus == 2
    assert rec.fft_advice is not None and rec.fft_advice.peak_bytes == fft.plan.per_gpu_bytes
    assert "with ZeRO-3 over 2 GPUs" in rec.guide[0]
    assert any(c.setup.sharding == "zero3" for c in rec.fft_advice.changes)
    assert "gradient checkpointing off" in rec.notes[0] and "micro-batch 16 x 1024 tokens" in rec.notes[0]


def test_lora_style_methods_compare_at_equal_settings(small_model: GapModel, qwen_small: ResolvedModel) -> None:
    rec = _run(small_model, qwen_small, methods=("lora", "qlora", "ia3"), rank=16)
    choices = {o.method: o.candidate.choice for o in rec.options if o.candidate is not None}
    assert choices["lora"].rank == choices["qlora"].rank == 16
    assert choices["lora"].targets == choices["qlora"].targets == PEFT_DEFAULT  # the registry's LoRA default
    assert choices["qlora"].dropout == choices["lora"].dropout == 0.0
    assert choices["ia3"] == MethodChoice("ia3")  # not LoRA-style: its own defaults
    assert "r=16 on peft's default modules" in rec.notes[0] and "equal settings" in rec.notes[0]
    assert rec.request.choice("lora") == MethodChoice("lora", rank=16)  # the registry's (and Memory's) default
    assert choices["lora"].targets == PEFT_DEFAULT  # the evidence reads peft's modules as attention-only
    own = RecommendRequest(task_type="code", train_examples=1000, model="gpt2", gpu="t4", equal_settings=False)
    assert own.choice("qlora") == MethodChoice("qlora") and "settings differ" in own.settings_text()


def test_fft_that_fits_needs_no_fixes(real_model: GapModel, qwen_small: ResolvedModel) -> None:
    rec = _run(real_model, qwen_small)
    assert _option(rec, "fft").fits and rec.make_fft_fit == []


def test_each_reason_has_fit_gap_hours_dollars_storage(small_model: GapModel, qwen_small: ResolvedModel) -> None:
    rec = _run(small_model, qwen_small, tasks=10)
    lora = _option(rec, "lora")
    for piece in ("GiB headroom per GPU", "largest micro-batch", "points (80% interval", "pairs of its own on code",
                  "P(FFT ahead by > 1)", "robustness:", "h wall-clock", "for 10 tasks", "storage",
                  "full copies"):  # fmt: skip
        assert piece in lora.reason, piece
    assert lora.gap is not None and lora.gap.n_evidence > 0


def _diff(rec: Recommendation) -> float:
    return _option(rec, "fft").score - _option(rec, "lora").score


def test_a_higher_accuracy_priority_moves_fft_up(small_model: GapModel, qwen_small: ResolvedModel) -> None:
    base: Mapping[str, float] = dict.fromkeys(("accuracy", "cost", "robustness", "storage", "time"), 1.0)
    # LoRA trails FFT by about 3 points on reasoning-math in the synthetic truth
    plain = _run(small_model, qwen_small, task_type="reasoning-math", tasks=50, priorities=base)
    accurate = _run(small_model, qwen_small, task_type="reasoning-math", tasks=50, priorities=dict(base, accuracy=5.0))
    assert _diff(accurate) > _diff(plain)
    assert _position(accurate, "fft") <= _position(plain, "fft")
    assert plain.choice is not None and plain.choice.method == "lora"  # 50 tasks: adapters win by default
    assert accurate.choice is not None and accurate.choice.method == "fft"


def test_a_higher_cost_priority_moves_peft_up(small_model: GapModel, qwen_small: ResolvedModel) -> None:
    plain = _run(small_model, qwen_small)
    thrifty = _run(small_model, qwen_small, priorities={"cost": 5.0, "time": 5.0})
    assert _diff(thrifty) < _diff(plain)


def test_many_tasks_move_peft_up_by_storage(small_model: GapModel, qwen_small: ResolvedModel) -> None:
    one = _run(small_model, qwen_small, tasks=1)
    many = _run(small_model, qwen_small, tasks=100)
    storage = {rec.request.tasks: _option(rec, "lora").criteria["storage"] - _option(rec, "fft").criteria["storage"]
               for rec in (one, many)}  # fmt: skip
    assert storage[100] > storage[1]
    assert _diff(many) < _diff(one)
    assert _position(many, "lora") <= _position(one, "lora")
    fft_bytes, lora_bytes = _option(many, "fft").storage_bytes, _option(many, "lora").storage_bytes
    assert fft_bytes is not None and lora_bytes is not None and fft_bytes > 30 * lora_bytes  # a LoRA adapter


def test_one_pair_does_not_outrank_forty_on_a_small_difference(
    pairs_factory: Callable[..., pd.DataFrame], qwen_small: ResolvedModel
) -> None:
    rows = [{"source": f"paper {s}", "task_type": "classification", "method_id": "lora", "truth": 0.0}
            for s in range(8) for _ in range(5)]  # fmt: skip
    rows.append({"source": "paper 0", "task_type": "classification", "method_id": "prompt_tuning", "truth": 0.5})
    model = fit_gap_model(pairs_factory(rows, source_sd=0.3, noise_sd=0.5).assign(params_b=0.494))
    rec = _run(model, qwen_small, task_type="classification", methods=("lora", "prompt_tuning"))
    lora, prompt, fft = _option(rec, "lora"), _option(rec, "prompt_tuning"), _option(rec, "fft")
    assert (lora.reported, prompt.reported) == (40, 1) and lora.fits and prompt.fits
    assert prompt.plan is not None and lora.plan is not None
    assert abs(prompt.plan.per_gpu_bytes - lora.plan.per_gpu_bytes) < 0.5 * 2**30  # a small memory difference
    assert _position(rec, "lora") < _position(rec, "prompt_tuning")
    # prompt tuning scores above FFT, but within the tie margin and indistinguishable: FFT's evidence wins
    assert prompt.score > fft.score and _position(rec, "fft") < _position(rec, "prompt_tuning")
    assert rec.choice is lora and rec.best_peft is lora
    assert rec.rationale[0].startswith("3 methods that fit are indistinguishable on accuracy at 80%")
    assert "evidence 40 pairs of its own on classification" in rec.rationale[1]
    assert lora.candidate is not None and lora.candidate.choice.targets == PEFT_DEFAULT  # the default of every page


def test_the_guide_is_quantified(small_model: GapModel, qwen_small: ResolvedModel) -> None:
    rec = _run(small_model, qwen_small, tasks=20, methods=("lora", "qlora"))
    guide = "\n".join(rec.guide)
    for start in ("limited resources: FFT needs", "accuracy on code:", "rapid deployment:", "20 tasks:",
                  "edge deployment:", "large datasets (20,000 examples):"):  # fmt: skip
        assert start in guide, start
    assert rec.to_dict()["recommended"] == (rec.choice.method if rec.choice else None)
    assert rec.best_peft is not None and f"the best PEFT option ({rec.best_peft.label})" in guide


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"gpu": "tpu-v5"}, "unknown GPU 'tpu-v5'"),
        ({"train_examples": -10}, "train examples must be at least 1"),
        ({"gpus": 0}, "gpus must be at least 1"),
        ({"tasks": 0}, "tasks must be at least 1"),
        ({"priorities": {"speed": 1.0}}, "unknown priorities speed"),
        ({"priorities": {"accuracy": -1.0}}, "priorities must be non-negative"),
        ({"priorities": dict.fromkeys(("accuracy", "cost", "robustness", "storage", "time"), 0.0)}, "at least one"),
        ({"methods": ("lorax",)}, "unknown method 'lorax'"),
        ({"methods": ("adapter",)}, "exist only as evidence"),
        ({"mfu": 1.5}, "--mfu 1.5 must be in"),
        ({"rank": 0}, "--rank 0 must be a positive integer"),
        ({"precision": "fp8"}, "precision 'fp8' is not one of"),
    ],
)
def test_bad_requests_fail_in_one_line(kwargs: dict[str, object], message: str) -> None:
    request = {"task_type": "code", "train_examples": 1000, "model": "gpt2", "gpu": "t4"} | kwargs
    with pytest.raises(InputError, match=message):
        RecommendRequest(**request)  # type: ignore[arg-type]


def test_an_unknown_task_type_is_answered_with_a_note(real_model: GapModel, qwen_small: ResolvedModel) -> None:
    rec = _run(real_model, qwen_small, task_type="poetry")
    lora = _option(rec, "lora")
    assert lora.gap is not None and any("'poetry' is not one TuneWise knows" in n for n in lora.gap.notes)


# The three scenarios at a size the suite can trace (Qwen2.5-1.5B for 8B and 7B, the GPU budgets
# scaled down with it): the order the rationale states must be the order applied, and the answers must differ
# where the evidence does.
SCENARIOS = (
    {"task_type": "classification", "train_examples": 20_000, "gpu": "t4", "gpus": 1},
    {"task_type": "reasoning-math", "train_examples": 100_000, "gpu": "l4", "gpus": 2},
    {"task_type": "code", "train_examples": 500_000, "gpu": "a10g", "gpus": 8},
)
COMPARED = ("lora", "qlora", "prompt_tuning", "ia3", "prefix_tuning", "adalora", "vera")


@pytest.fixture(scope="module")
def three(real_model: GapModel, qwen_mid: ResolvedModel) -> list[Recommendation]:
    return [_run(real_model, qwen_mid, methods=COMPARED, **scenario) for scenario in SCENARIOS]


def test_the_stated_ranking_is_the_applied_one(three: list[Recommendation]) -> None:
    from core.gap.recommend import RANKING

    for rec in three:
        options = [o for o in rec.options if o.candidate is not None]
        groups = [(o.fits, o.indistinguishable, o.candidate.evidenced) for o in options if o.candidate is not None]
        # rule 1-3: fits, then contenders, then the well evidenced: each a block, True before False
        assert groups == sorted(groups, reverse=True), [(o.method, g) for o, g in zip(options, groups, strict=True)]
        # rule 4: within a block, by score
        for a, b in itertools.pairwise(options):
            assert a.candidate is not None and b.candidate is not None
            if (a.fits, a.indistinguishable, a.candidate.evidenced) == (b.fits, b.indistinguishable,
                                                                       b.candidate.evidenced):
                assert a.score >= b.score, (a.method, b.method)
        assert rec.choice is options[0]
        stated = next(line for line in rec.rationale if "ranked by:" in line)
        assert [stated.index(rule) for rule in RANKING] == sorted(stated.index(rule) for rule in RANKING)
        why = next(line for line in rec.rationale if line.startswith("why:"))
        assert why.startswith(f"why: {rec.choice.label} is expected at" if rec.choice.gap is not None
                              else "why: full fine-tuning is the reference"), why


def test_the_three_scenarios_get_answers_that_differ_where_the_evidence_does(three: list[Recommendation]) -> None:
    lora = [_option(rec, "lora").gap for rec in three]
    prompt = [_option(rec, "prompt_tuning").gap for rec in three]
    assert all(g is not None for g in lora + prompt)
    means = [g.mean for g in lora if g is not None]
    assert len({round(m, 1) for m in means}) == 3, means  # one expected gap per scenario, not one constant
    classification, math = (g for g in (lora[0], lora[1]) if g is not None)
    assert classification.evidence_basis != math.evidence_basis  # each backed by its own task's comparisons
    chosen = [rec.choice.method for rec in three if rec.choice is not None]
    assert len(chosen) == 3 and len(set(chosen)) > 1, chosen  # not one answer for every scenario
    for rec in three:
        assert rec.choice is not None
        if rec.choice.gap is not None:  # a PEFT choice names the comparisons behind it
            why = next(line for line in rec.rationale if line.startswith("why:"))
            assert rec.choice.gap.n_evidence > 0 and "none" not in why.split("comparisons:")[1], why
