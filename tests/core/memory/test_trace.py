"""The traced training step: exact polynomial fits, exact depth extrapolation, peaks in the right phase."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from core.memory.profile import DESIGN, StepProfile, timeline_peaks
from core.memory.step import StepSpec, TracedModel, trace_step
from core.memory.trace import CATEGORIES, PHASES, AllocationTracker
from core.models import resolve_model
from core.registry import METHODS, MethodChoice
from core.skeleton import SkeletonKey, default_task
from tests.support.tiny import tiny_model

SPEC = StepSpec("bf16-mixed", "adamw", "sdpa", False, "none")


def _tiny(family: str = "llama") -> SkeletonKey:
    model = tiny_model(family)
    return SkeletonKey(model, default_task(model), 2)


def _direct(key: SkeletonKey, choice: MethodChoice, spec: StepSpec, batch: int, seq: int) -> np.ndarray:
    timeline = trace_step(key, choice, spec, batch_size=batch, seq_len=seq, keep_blocks=None)
    return timeline_peaks(timeline).bytes


@pytest.mark.parametrize(("family", "method", "attention"), [
    ("llama", "fft", "sdpa"), ("llama", "lora", "eager"), ("llama", "prefix_tuning", "sdpa"),
    ("gpt2", "lora", "sdpa"), ("t5", "ia3", "sdpa"), ("bert", "bitfit", "eager"), ("llama", "partial_ft", "sdpa"),
    ("llama", "adaption_prompt", "sdpa"),
])
def test_profile_equals_a_direct_trace_of_the_whole_model_off_the_design_points(
        family: str, method: str, attention: str) -> None:
    """Fitted in (b, s) on 2- and 3-block copies, extrapolated to 4 blocks, evaluated at a shape never traced."""
    key, spec = _tiny(family), replace(SPEC, attention=attention)
    # the top-block methods train (or adapt) only the copy's top block, so the copies grow below it
    choice = MethodChoice(method, top_layers=1) if METHODS[method].top_blocks_only else MethodChoice(method)
    profile = StepProfile(key, choice, spec)
    assert profile.fitted is not None, "the op sequence should not depend on the shape"
    assert (5, 40) not in DESIGN
    np.testing.assert_allclose(profile.phase_peaks(5, 40).bytes, _direct(key, choice, spec, 5, 40), atol=64)


def test_a_trained_attention_bias_gets_its_gradient_under_cuda_attention() -> None:
    """T5's relative position bias enters SDPA as its mask: CUDA's memory-efficient kernel returns the bias's
    gradient (full size, summed down to the bias's shape), so full fine-tuning traces and every weight gets one."""
    peaks = _direct(_tiny("t5"), MethodChoice("fft"), SPEC, 2, 16)
    clip = peaks[PHASES.index("clip")]
    assert clip[CATEGORIES.index("gradients")] == clip[CATEGORIES.index("weights")] > 0  # fp32 masters and grads


def test_full_fine_tuning_peaks_at_the_optimizer_step_when_activations_are_small() -> None:
    key = _tiny()
    profile = StepProfile(key, MethodChoice("fft"), replace(SPEC, precision="bf16-true"))
    small = profile.phase_peaks(2, 8).bytes
    assert PHASES[int(np.argmax(small.sum(axis=1)))] == "optimizer"
    row = small[PHASES.index("optimizer")]
    assert row[CATEGORIES.index("gradients")] > 0 and row[CATEGORIES.index("activations")] == 0
    # a slightly larger batch does not move a peak that sits at the optimizer step
    assert profile.phase_peaks(3, 8).bytes.sum(axis=1).max() == pytest.approx(small.sum(axis=1).max())


def test_activations_are_freed_as_gradients_appear() -> None:
    """The backward peak is not forward activations plus all gradients (they never coexist)."""
    peaks = StepProfile(_tiny(), MethodChoice("fft"), SPEC).phase_peaks(4, 64).bytes
    forward, backward = peaks[PHASES.index("forward")], peaks[PHASES.index("backward")]
    grads = peaks[PHASES.index("clip"), CATEGORIES.index("gradients")]
    assert backward.sum() < forward.sum() + grads


def test_tied_embeddings_are_counted_once() -> None:
    key = SkeletonKey(resolve_model("HuggingFaceTB/SmolLM2-135M"), "causal-lm", 2)
    spec = replace(SPEC, precision="bf16-true", optimizer="sgd")
    timeline = trace_step(key, MethodChoice("lora"), spec, batch_size=2, seq_len=8, keep_blocks={"model.layers": 2})
    model = key.model.build_config()
    embedding = model.vocab_size * model.hidden_size * 2
    weights = timeline.live[-1, CATEGORIES.index("weights")]
    assert embedding < weights < 1.5 * embedding + 2 * 12 * model.hidden_size**2 * 2


def test_quantized_base_holds_nf4_bytes() -> None:
    key = _tiny()
    plain = StepProfile(key, MethodChoice("lora"), SPEC).phase_peaks(2, 8).bytes
    nf4 = StepProfile(key, MethodChoice("lora"), replace(SPEC, quantization="nf4")).phase_peaks(2, 8).bytes
    weights = CATEGORIES.index("weights")
    assert nf4[-1, weights] < plain[-1, weights]


def test_eight_bit_adam_keeps_a_quarter_of_adamw_states() -> None:
    key = _tiny()
    spec = replace(SPEC, precision="bf16-true")
    adamw = StepProfile(key, MethodChoice("fft"), spec).phase_peaks(2, 8).bytes
    eight = StepProfile(key, MethodChoice("fft"), replace(spec, optimizer="adamw-8bit")).phase_peaks(2, 8).bytes
    optimizer = CATEGORIES.index("optimizer")
    # AdamW keeps two bf16 states (4 bytes per weight), 8-bit AdamW two uint8 states plus block absmaxes
    assert eight[-1, optimizer] == pytest.approx(adamw[-1, optimizer] / 2, rel=0.05)


@pytest.mark.parametrize("method", ["lora", "fft"])
def test_a_mixture_of_experts_model_traces(method: str) -> None:
    """LoRA on attention, and full fine-tuning, whose fp32 experts (AMP's master weights) run CUDA's grouped GEMM
    outside bf16: its fallback path, whose output the stand-in gives where the fake kernel refuses fp32."""
    import json

    import transformers

    from core.models import ResolvedModel

    config = transformers.MixtralConfig(vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=4,
                                        num_attention_heads=4, num_key_value_heads=2, num_local_experts=4,
                                        num_experts_per_tok=2, max_position_embeddings=256).to_dict()
    config["architectures"] = ["MixtralForCausalLM"]
    model = ResolvedModel(name="tiny-mixtral", origin="path", config_json=json.dumps(config, sort_keys=True))
    key = SkeletonKey(model, "causal-lm", 2)
    choice = MethodChoice("lora", targets="q_proj,v_proj") if method == "lora" else MethodChoice("fft")
    profile = StepProfile(key, choice, SPEC)
    assert profile.fitted is not None  # grouped_mm experts: static shapes, whatever the routing
    peaks = profile.phase_peaks(3, 24).bytes
    np.testing.assert_allclose(peaks, _direct(key, choice, SPEC, 3, 24), atol=64)
    if method == "fft":  # every weight trains in fp32 under bf16-mixed: Adam's two fp32 states per weight (and a
        clip = peaks[PHASES.index("clip")]  # 4-byte step count per tensor)
        weights = clip[CATEGORIES.index("weights")]
        assert weights > 0 and clip[CATEGORIES.index("optimizer")] == pytest.approx(2 * weights, rel=1e-4)


def test_profiles_are_cached_on_disk_and_a_broken_entry_is_traced_again(
        tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.memory import cache

    monkeypatch.setenv("TUNEWISE_CACHE_DIR", str(tmp_path))
    key, choice = _tiny(), MethodChoice("lora")
    first = StepProfile(key, choice, SPEC).phase_peaks(4, 32).bytes
    entries = list(tmp_path.glob("*.npz"))
    assert len(entries) == 1 and entries[0].stem == cache.entry_key(key, choice, SPEC)
    np.testing.assert_array_equal(StepProfile(key, choice, SPEC).phase_peaks(4, 32).bytes, first)
    entries[0].write_bytes(b"not an npz file")
    np.testing.assert_array_equal(StepProfile(key, choice, SPEC).phase_peaks(4, 32).bytes, first)
    assert cache.entry_key(key, choice, replace(SPEC, optimizer="sgd")) != entries[0].stem


def test_a_profile_another_process_is_tracing_is_waited_for_and_read_not_traced_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.memory import cache

    key, choice = _tiny(), MethodChoice("ia3")
    monkeypatch.setenv("TUNEWISE_CACHE_DIR", "off")
    traced = StepProfile(key, choice, SPEC)
    monkeypatch.setenv("TUNEWISE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(StepProfile, "_fit", lambda self: pytest.fail("traced although another holder stored it"))
    name, waited = cache.entry_key(key, choice, SPEC), []
    with cache.claim(name):  # another holder is tracing this entry
        thread = threading.Thread(target=lambda: waited.append(StepProfile(key, choice, SPEC)))
        thread.start()
        assert cache.load(name) is None and not waited
        cache.store(name, (traced.variants, [(f.coef, f.phase) for f in traced.fitted or []],
                           None if traced.full is None else (traced.full.coef, traced.full.phase),
                           None if traced.log is None else traced.log.arrays()))
    thread.join()
    np.testing.assert_array_equal(waited[0].phase_peaks(3, 48).bytes, traced.phase_peaks(3, 48).bytes)
    assert traced.log is not None and waited[0].log is not None  # the allocation log is stored and read back too
    assert waited[0].log.peaks(3, 48) == traced.log.peaks(3, 48)


@pytest.mark.parametrize("method", ["fft", "lora"])
def test_reentrant_checkpointing_recomputes_inside_backward_and_still_reaches_every_gradient(method: str) -> None:
    key = _tiny()
    peaks = {}
    for reentrant in (False, True):
        spec = replace(SPEC, checkpointing=True, reentrant=reentrant)
        timeline = trace_step(key, MethodChoice(method), spec, batch_size=4, seq_len=64, keep_blocks=None)
        peaks[reentrant] = timeline_peaks(timeline).bytes
    clip, backward, gradients = PHASES.index("clip"), PHASES.index("backward"), CATEGORIES.index("gradients")
    assert peaks[True][clip, gradients] == peaks[False][clip, gradients] > 0  # frozen embeddings: input grads on
    assert peaks[True][backward].sum() >= peaks[False][backward].sum()
    with pytest.raises(ValueError, match="needs checkpointing"):
        replace(SPEC, checkpointing=False, reentrant=True)


def test_data_dependent_ops_get_stand_ins_of_their_upper_bound() -> None:
    """A boolean-mask index selects every element, a check for inf or nan finds none, a random draw keeps the
    module (the larger memory path), and `unique` finds one value."""
    tracker = AllocationTracker()
    with FakeTensorMode(allow_non_fake_inputs=True), tracker:
        x = torch.empty(10, 3)
        assert x[x[:, 0] > 0].shape == (10, 3)
        x[x > 0] = 1.0  # a masked write traces too
        assert not bool(torch.isinf(x).any()) and not bool(torch.isnan(x[0, 0]).any())
        assert bool(torch.rand(1) > 0.5)
        assert torch.unique(x[:, 0]).shape == (1,)
        tasks = torch.zeros(4, dtype=torch.long)
        tracker.know(tasks, 0)  # the step's task ids: Poly checks their largest against its task count
        assert tasks.max().item() == 0 and torch.ones(4, dtype=torch.long).max().item() == 1
        assert torch.randint(3, 7, (1,)).item() == 3 and torch.randint(5, (2,))[0].item() == 0  # in range


def test_a_sparse_tensor_counts_through_its_indices_and_values_and_its_mask_gradient_has_the_masks_entries() -> None:
    """SHiRA's update is a sparse COO tensor: it has no storage of its own, and the fake kernel of
    `sparse_mask` (its backward) would leave the values empty: the stand-in gives the mask's entries."""
    tracker = AllocationTracker()
    with FakeTensorMode(allow_non_fake_inputs=True):
        weight, values = torch.empty(64, 32), torch.nn.Parameter(torch.empty(100))
        indices = torch.zeros(2, 100, dtype=torch.long)
        with tracker:
            update = torch.sparse_coo_tensor(indices, values * 2.0, (64, 32))
            dense = weight.clone()
            dense += update
            torch.nn.functional.linear(torch.empty(4, 32), dense).sum().backward()
    assert values.grad is not None and values.grad.shape == (100,)
    # the scaled values (400 B) were made and kept while the update lived; the clone (8 KiB) came after them
    assert tracker.timeline().live[:, CATEGORIES.index("activations")].max() >= 400 + 64 * 32 * 4


@pytest.mark.parametrize("method", ["waveft", "vblora", "cpt", "poly", "boft", "unilora", "shira"])
def test_methods_with_data_dependent_steps_trace_at_real_size(method: str) -> None:
    """WaveFT filters its coefficients with a mask, VB-LoRA guards its logits against inf, CPT projects its
    prompt by mask and loops over label types, Poly checks its task ids, BOFT's init needs real permutations and
    its dropout draws a random block, UniLoRA indexes a shared vector built from data, SHiRA's indices come from a
    mask of the weight values (placeholders of their real shape): each traces on a 2-block copy of Llama-2-7B."""
    model = resolve_model("llama-2-7b")
    key = SkeletonKey(model, default_task(model), 2)
    traced = TracedModel(key, MethodChoice(method), SPEC, {"model.layers": 2})
    peaks = timeline_peaks(traced.trace(2, 64)).bytes
    clip = PHASES.index("clip")
    assert 0 < peaks[clip, CATEGORIES.index("gradients")] < peaks[clip, CATEGORIES.index("weights")] / 100
    assert peaks[PHASES.index("forward"), CATEGORIES.index("activations")] > 0


def test_traces_in_several_threads_equal_the_same_traces_one_after_another() -> None:
    """A Streamlit server estimates in threads (sessions, its warm-up). Interleaved, one thread's trace ran with
    the other's SDPA patched in or restored, and its peaks were wrong; the engine now takes turns."""
    jobs = [(_tiny("llama"), MethodChoice("lora"), SPEC), (_tiny("gpt2"), MethodChoice("fft"), SPEC),
            (_tiny("llama"), MethodChoice("fft"), replace(SPEC, attention="eager"))]
    alone = [_direct(*job, 3, 24) for job in jobs]
    sdpa = torch.nn.functional.scaled_dot_product_attention
    together: dict[int, list[np.ndarray]] = {}
    start = threading.Barrier(len(jobs))

    def run(i: int) -> None:
        start.wait()
        together[i] = [_direct(*jobs[i], 3, 24) for _ in range(3)]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i, peaks in enumerate(alone):
        for repeat in together[i]:
            np.testing.assert_array_equal(repeat, peaks)
    assert torch.nn.functional.scaled_dot_product_attention is sdpa  # nothing left patched


@pytest.mark.parametrize(("family", "method"), [("gpt2", "olora"), ("deberta-v2", "prefix_tuning")])
def test_a_step_the_real_code_refuses_says_so_and_a_real_forward_fails_too(family: str, method: str) -> None:
    """OLoRA's init on GPT-2's Conv1D and prefix tuning on a model without past key values fail in peft's or the
    model's own code: the note says the method fails there, not that TuneWise could not trace it, and the CPU
    probe's real forward raises the same."""
    from core.errors import NotApplicableError
    from core.memory.probe import probe_activations

    key = _tiny(family)
    with pytest.raises(NotApplicableError, match="fails on this model, on real weights too") as refused:
        _direct(key, MethodChoice(method), SPEC, 2, 16)
    with pytest.raises((RuntimeError, ValueError)) as real:
        probe_activations(key, MethodChoice(method), batch_size=2, seq_len=16)
    assert "fake tensors" not in str(refused.value) and str(real.value)


def test_a_failure_after_a_guessed_value_does_not_claim_the_real_run_fails() -> None:
    """DeBERTa's relative positions read a data-dependent size (`nonzero`, bounded above) before Poly's routing
    fails on a shape: the failure may be the bound's, so the note says a real run may or may not fail alike (here
    the real forward does fail, on the same shape)."""
    from core.errors import NotApplicableError

    with pytest.raises(NotApplicableError, match="a real run may or may not fail alike"):
        _direct(_tiny("deberta-v2"), MethodChoice("poly"), SPEC, 2, 16)


def test_an_op_fake_tensors_cannot_run_is_named_a_tracing_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where only fake tensors fail (the step reads data values), the note says tracing is the limit."""
    from torch._subclasses.fake_tensor import DataDependentOutputException

    from core.errors import NotApplicableError
    from core.memory import step

    def needs_values(*_: object, **__: object) -> None:
        raise DataDependentOutputException(torch.ops.aten.nonzero.default)

    monkeypatch.setattr(step, "_run_step", needs_values)
    with pytest.raises(NotApplicableError, match="cannot be traced on fake tensors"):
        _direct(_tiny(), MethodChoice("lora"), SPEC, 2, 16)


def test_transformers_notices_about_the_fake_model_stay_quiet_only_while_the_engine_works() -> None:
    """"`use_cache=True` is incompatible with gradient checkpointing" and the like speak of the engine's fake
    model: they stay off the CLI's stderr (one line for bad input), and the caller's logging is left as it was."""
    import logging

    from core.skeleton import one_at_a_time

    notices = logging.getLogger("transformers.modeling_utils")
    before = notices.isEnabledFor(logging.WARNING)

    @one_at_a_time
    def engine_work() -> tuple[bool, bool]:
        return notices.isEnabledFor(logging.WARNING), notices.isEnabledFor(logging.ERROR)

    assert engine_work() == (False, True)
    assert notices.isEnabledFor(logging.WARNING) == before


def test_a_quantized_base_is_prepared_for_kbit_training_as_peft_does() -> None:
    """peft's `prepare_model_for_kbit_training`: on a 4-bit base every weight bitsandbytes does not quantize
    (embeddings, norms, lm_head) is fp32, beside NF4 linear layers; compared on the same model's own parameters."""
    from core.counting import count_parameters
    from core.memory.standins import quantized_bytes
    from core.skeleton import fresh_copy, skeleton

    key = _tiny()
    spec = replace(SPEC, quantization="nf4-dq", checkpointing=True)
    model = fresh_copy(skeleton(key), None)
    linears = [m.weight for name, m in model.named_modules()
               if type(m) is torch.nn.Linear and not name.endswith("lm_head")]
    packed = sum(quantized_bytes(w.numel(), w.shape[0], "nf4-dq") for w in linears)
    others = count_parameters(key, MethodChoice("fft")).total_params - sum(w.numel() for w in linears)
    choice = MethodChoice("prompt_tuning")  # trains no base weight and adds only its prompt embedding
    clip = StepProfile(key, choice, spec).phase_peaks(2, 16).bytes[PHASES.index("clip")]
    weights = clip[CATEGORIES.index("weights")]
    prompt = count_parameters(key, choice).trainable_params * 4
    buffers = sum(b.numel() * b.element_size() for b in model.buffers())  # rotary frequencies
    assert weights == packed + 4 * others + prompt + buffers


def test_fused_moe_experts_on_a_quantized_base_are_named_and_counted_unquantized() -> None:
    from core.estimate import estimate
    from core.memory.setup import TrainingSetup
    from core.scenario import Scenario
    from tests.support.tiny import tiny_model

    setup = TrainingSetup(precision="bf16-mixed", gradient_checkpointing=True, batch_size=2, seq_len=32)
    qlora = (MethodChoice("qlora", rank=8, targets=("q_proj", "v_proj")),)
    moe = estimate(Scenario(tiny_model("mixtral"), qlora, training=setup))
    assert len(moe.warnings) == 1 and "fused MoE experts" in moe.warnings[0] and "not quantized" in moe.warnings[0]
    assert not estimate(Scenario(tiny_model("llama"), qlora, training=setup)).warnings
    plain = estimate(Scenario(tiny_model("mixtral"), (MethodChoice("lora", rank=8, targets=("q_proj", "v_proj")),),
                              training=setup))
    assert not plain.warnings


def test_the_step_log_holds_every_allocation_and_free_the_timeline_counts() -> None:
    """The allocator model replays the tracker's log: its live bytes reach exactly the traced peak, and the
    replay's rounded allocated and cached reserved peaks sit at or above it."""
    from core.memory.replay import replay

    traced = TracedModel(_tiny(), MethodChoice("lora"), replace(SPEC, checkpointing=True), None)
    timeline = traced.trace(2, 16)
    log, live, peak = traced.tracker.log, 0, 0
    for event in log:
        live += event if event > 0 else -log[-event - 1]
        peak = max(peak, live)
    assert peak == timeline.live.sum(axis=1).max() > 0
    replayed = replay(log)
    assert peak <= replayed.allocated <= replayed.reserved



def test_a_runs_first_steps_make_the_optimizer_states_inside_the_first_and_reuse_cached_blocks_after() -> None:
    """The log of a run's first steps starts from the weights alone: the first step adds the optimizer's states,
    later steps allocate what the first freed, so a second step reserves at least the first's and a third
    no more than the second's (the allocator replays them from its cache)."""
    from core.memory.replay import replay

    traced = TracedModel(_tiny(), MethodChoice("fft"), SPEC, None)
    one, two, three = (replay(traced.first_steps_log(2, 16, steps=n)) for n in (1, 2, 3))
    states = sum(v.numel() * v.element_size() for state in traced.optimizer.state.values()
                 for v in state.values() if isinstance(v, torch.Tensor))
    assert states > 0
    assert one.allocated <= two.allocated == three.allocated
    assert one.reserved <= two.reserved == three.reserved
    steady = timeline_peaks(traced.trace(2, 16)).bytes.sum(axis=1).max()
    assert two.allocated >= steady
