"""GPU catalogue, fit (headroom, largest batch or length, fewest GPUs per sharding mode within the cap, or why
none), FLOPs with recomputation, the step time (compute, optimizer, communication), time and cost."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from core.counting import count_parameters, model_shape
from core.errors import InputError
from core.memory.budget import MAX_GPUS, SUITED_SHARE, _distribute, estimate_training, sizer, unsuited_modes
from core.memory.gpus import catalogue, find_gpu
from core.memory.quantization import check_quantization
from core.memory.setup import TrainingSetup
from core.memory.throughput import communication_bytes, flops_per_token, recompute_flops_per_token, step_time
from core.memory.trace import CATEGORIES, PHASES
from core.models import resolve_model
from core.registry import MethodChoice
from core.skeleton import SkeletonKey

KEY = SkeletonKey(resolve_model("HuggingFaceTB/SmolLM2-135M"), "causal-lm", 2)


def test_catalogue_has_the_common_gpus() -> None:
    ids = set(catalogue())
    assert len(ids) >= 15
    assert {"T4", "A10G", "L4", "RTX-3090", "RTX-4090", "RTX-5090", "A6000", "L40S", "A100-40GB", "A100-80GB",
            "H100-80GB", "H200", "B200", "MI300X"} <= ids


@pytest.mark.parametrize(("name", "gpu_id"), [("a100 80gb", "A100-80GB"), ("H100", "H100-80GB"),
                                              ("rtx4090", "RTX-4090"), ("Tesla T4", "T4"), ("a100-40GB", "A100-40GB")])
def test_gpu_names_match_forgivingly(name: str, gpu_id: str) -> None:
    assert find_gpu(name).id == gpu_id


def test_unknown_gpu_lists_close_names_and_price_is_editable() -> None:
    with pytest.raises(InputError, match="did you mean .*H200"):
        find_gpu("H2000")
    assert find_gpu("L4", price=9.5).usd_per_hour == 9.5


def _estimate(key: SkeletonKey, choice: MethodChoice, setup: TrainingSetup):  # type: ignore[no-untyped-def]
    return estimate_training(key, choice, count_parameters(key, choice), setup, check_quantization(choice, setup))


def test_largest_batch_fits_and_one_more_does_not() -> None:
    choice = MethodChoice("lora")
    setup = TrainingSetup(batch_size=2, seq_len=1024, gpu="T4")
    estimate = _estimate(KEY, choice, setup)
    fit = estimate.fit
    assert fit is not None and fit.max_batch_size > 1
    parts = sizer(KEY, choice, count_parameters(KEY, choice), setup, "none")
    capacity = find_gpu("T4").memory_bytes
    assert parts.breakdown(batch_size=fit.max_batch_size).device <= capacity
    assert parts.breakdown(batch_size=fit.max_batch_size + 1).device > capacity
    assert fit.fits and fit.headroom == capacity - estimate.memory.device


def test_fewest_gpus_per_sharding_mode() -> None:
    key = SkeletonKey(resolve_model("llama-2-7b"), "causal-lm", 2)
    choice = MethodChoice("fft")
    setup = TrainingSetup(batch_size=1, seq_len=512, gpu="A100-80GB")
    fit = _estimate(key, choice, setup).fit
    assert fit is not None and not fit.fits
    gpus = fit.min_gpus
    assert "none" not in gpus  # replicas do not lower the per-GPU peak
    assert gpus["zero3"] <= gpus["fsdp"]  # FSDP also holds its root unit (embeddings, head) gathered
    assert gpus["zero3"] <= gpus.get("zero2", MAX_GPUS) <= gpus.get("zero1", MAX_GPUS)
    fewest = min(gpus.values())
    first = next(mode for mode in ("zero1", "zero2", "zero3") if gpus.get(mode) == fewest)  # the lightest stage
    assert fit.fewest_gpus == (first, fewest) and f"{fewest} x A100-80GB with ZeRO-" in fit.fewest_text
    parts = sizer(key, choice, count_parameters(key, choice), setup, "none")
    n = gpus["zero3"]
    sharded = replace(setup, gpus=2, sharding="zero3")
    assert parts.breakdown(setup=sharded, gpus=n).device <= fit.gpu_memory
    assert parts.breakdown(setup=sharded, gpus=n - 1).device > fit.gpu_memory


def test_no_gpu_count_fits_says_why_within_the_cap() -> None:
    key = SkeletonKey(resolve_model("llama-2-7b"), "causal-lm", 2)
    setup = TrainingSetup(batch_size=64, seq_len=4096, gpu="T4")
    lora = MethodChoice("lora")
    fit = _estimate(key, lora, setup).fit
    assert fit is not None and fit.min_gpus == {} and fit.max_batch_size == 0
    assert fit.gpus_note.startswith(f"even {MAX_GPUS} GPUs with ZeRO-3 leave") and "activations" in fit.gpus_note
    assert "gradient checkpointing" in fit.gpus_note
    assert "not even 1 sequence of 4096 tokens fits; the longest that fits at micro-batch 1 is" in fit.batch_text
    parts = sizer(key, lora, count_parameters(key, lora), setup, "none")
    at = replace(setup, seq_len=fit.max_seq_len)
    assert 0 < fit.max_seq_len < 4096 and parts.breakdown(batch_size=1, setup=at).device <= fit.gpu_memory
    longer = replace(setup, seq_len=fit.max_seq_len + 64)
    assert parts.breakdown(batch_size=1, setup=longer).device > fit.gpu_memory


def test_checkpointing_adds_one_forward_of_recomputation() -> None:
    fft = MethodChoice("fft")
    n = count_parameters(KEY, fft)
    plain = flops_per_token(fft, n, layers=30, width=576, seq_len=512)
    again = flops_per_token(fft, n, layers=30, width=576, seq_len=512, checkpointing=True)
    assert again - plain == recompute_flops_per_token(fft, n, layers=30, width=576, seq_len=512)
    assert again / plain == pytest.approx(4 / 3)  # 8N instead of 6N, attention included the same way
    setup = TrainingSetup(seq_len=512, gpu="H100", dataset_tokens=10**8)
    off = _estimate(KEY, fft, setup).time
    on = _estimate(KEY, fft, replace(setup, gradient_checkpointing=True)).time
    assert on.hours is not None and off.hours is not None and on.step is not None and off.step is not None
    assert on.step.compute_s == pytest.approx(off.step.compute_s * 4 / 3)
    assert on.step.recompute_s == pytest.approx(off.step.compute_s / 3) and off.step.recompute_s == 0
    assert on.step.optimizer_s == off.step.optimizer_s  # the optimizer step does not grow
    assert on.hours > off.hours


def test_communication_follows_the_sharding() -> None:
    fft, lora = MethodChoice("fft"), MethodChoice("lora")
    n, c = count_parameters(KEY, fft), count_parameters(KEY, lora)
    ddp = TrainingSetup(gpus=8)
    zero3 = TrainingSetup(gpus=8, sharding="zero3")
    ring = 7 / 8
    assert communication_bytes(n, TrainingSetup(), "none") == 0
    assert communication_bytes(n, ddp, "none") == pytest.approx(ring * 2 * 4 * n.trainable_params)
    # ZeRO-3: bf16 weights gathered twice, fp32 gradients reduce-scattered once
    expected = ring * (2 * 2 * n.total_params + 4 * n.trainable_params)
    assert communication_bytes(n, zero3, "none") == pytest.approx(expected)
    # PEFT: DDP moves only the adapter's gradients, ZeRO-3 also gathers the frozen base
    assert communication_bytes(c, ddp, "none") < communication_bytes(c, zero3, "none") / 100
    h100, t4 = find_gpu("H100"), find_gpu("T4")
    fast = step_time(1e9, 0, n, zero3, h100, quantization="none")
    slow = step_time(1e9, 0, n, zero3, t4, quantization="none")
    assert fast.communication_s == pytest.approx(expected / 450e9)
    assert slow.communication_s / fast.communication_s == pytest.approx(450 / 16)
    across = step_time(1e9, 0, n, replace(zero3, gpus=16), h100, quantization="none")
    assert across.communication_s > fast.communication_s * 8  # beyond one node: the network's 50 GB/s
    assert fast.seconds == pytest.approx(max(fast.compute_s, fast.communication_s) + fast.optimizer_s)


def test_flops_per_token_full_backward_only_for_fft() -> None:
    fft, lora = MethodChoice("fft"), MethodChoice("lora")
    n = count_parameters(KEY, fft)
    c = count_parameters(KEY, lora)
    assert flops_per_token(fft, n, layers=0, width=0, seq_len=0) == 6 * n.total_params
    peft = flops_per_token(lora, c, layers=0, width=0, seq_len=0)
    assert peft == 4 * c.total_params + 2 * c.trainable_params
    assert 0.66 < peft / (6 * n.total_params) < 0.68


def test_time_and_cost() -> None:
    choice = MethodChoice("lora")
    setup = TrainingSetup(seq_len=512, gpus=2, gpu="H100", gpu_price=3.0, dataset_tokens=10**9, epochs=2, mfu=0.5)
    time = _estimate(KEY, choice, setup).time
    assert time.step is not None and time.steps == math.ceil(2 * 10**9 / 512 / 2)
    assert time.step.compute_s == pytest.approx(512 * time.flops_per_token / (989e12 * 0.5))
    assert time.step.optimizer_s > 0 and time.step.communication_s > 0 and time.step.recompute_s == 0
    assert time.hours == pytest.approx(time.steps * time.step.seconds / 3600)
    assert time.usd == pytest.approx(time.hours * 2 * 3.0)
    assert time.to_dict()["mfu"] == 0.5
    no_gpu = _estimate(KEY, choice, replace(setup, gpu=None)).time
    assert no_gpu.tokens == 2 * 10**9 and no_gpu.hours is None and "no GPU" in no_gpu.note
    assert "hours" not in no_gpu.to_dict() and "usd" not in no_gpu.to_dict()


def test_no_time_or_cost_when_it_does_not_fit() -> None:
    key = SkeletonKey(resolve_model("llama-2-7b"), "causal-lm", 2)
    setup = TrainingSetup(seq_len=512, gpu="T4", dataset_tokens=10**8)
    estimate = _estimate(key, MethodChoice("fft"), setup)
    assert estimate.fit is not None and not estimate.fit.fits
    time = estimate.time
    assert time.hours is None and time.usd is None and time.note.startswith("does not fit 1 x T4")
    assert set(time.to_dict()) == {"flops_per_token", "mfu", "tokens", "steps", "note"}


def test_sharding_divides_states_and_gathers_one_block() -> None:
    key = SkeletonKey(resolve_model("llama-2-7b"), "causal-lm", 2)
    choice = MethodChoice("fft")
    parts = sizer(key, choice, count_parameters(key, choice), TrainingSetup(seq_len=512), "none")
    single = parts.breakdown()
    ddp = parts.breakdown(setup=TrainingSetup(seq_len=512, gpus=8))
    zero1 = parts.breakdown(setup=TrainingSetup(seq_len=512, gpus=8, sharding="zero1"))
    zero3 = parts.breakdown(setup=TrainingSetup(seq_len=512, gpus=8, sharding="zero3"))
    offload = parts.breakdown(setup=TrainingSetup(seq_len=512, gpus=8, sharding="zero3", offload="optimizer"))
    assert ddp.allocated > single.allocated  # DDP's gradient buckets
    assert zero1.optimizer < single.optimizer / 7
    assert zero3.weights < single.weights / 2  # an eighth, plus the gathered and prefetched blocks
    assert offload.optimizer == 0 and offload.allocated < zero3.allocated


def test_fewest_gpus_searches_only_the_sharding_modes_that_suit_the_method() -> None:
    """A LoRA's optimizer states and gradients are a sliver of its peak: ZeRO-1/2 would add communication for no
    memory, so only the modes that partition the frozen weights are searched, and the fit says why."""
    key = SkeletonKey(resolve_model("llama-2-7b"), "causal-lm", 2)
    setup = TrainingSetup(batch_size=1, seq_len=512, gpu="T4")
    lora = _estimate(key, MethodChoice("lora"), setup).fit
    assert lora is not None and set(lora.unsuited) == {"zero1", "zero2"}
    assert "ZeRO-1 partitions only the optimizer states:" in lora.unsuited["zero1"]
    assert set(lora.min_gpus) == {"zero3", "fsdp"} and "ZeRO-3" in lora.fewest_text
    assert lora.unsuited_text.startswith("not searched: ZeRO-1 partitions only the optimizer states: ")
    single = _estimate(key, MethodChoice("lora"), replace(setup, gpu=None)).memory
    assert single.optimizer + single.gradients < SUITED_SHARE * single.device <= single.weights
    fft = _estimate(key, MethodChoice("fft"), setup).fit
    assert fft is not None and fft.unsuited == {}  # full fine-tuning: every stage partitions a large share
    assert unsuited_modes(single) == lora.unsuited


def test_a_paged_optimizers_states_sit_outside_the_allocator_and_the_fit() -> None:
    """bitsandbytes' paged AdamW keeps its states in unified memory: `allocated` and the device peak leave them
    out (they page to the CPU when the GPU is full) and `paged` reports them; the 8-bit states are the same. The
    device peak is never higher, and here equal: the allocator's reserved peak is reached in the backward, and a
    run's first step makes the states among the blocks the forward left cached."""
    choice = MethodChoice("fft")
    plain = _estimate(KEY, choice, TrainingSetup(batch_size=2, seq_len=256, optimizer="adamw-8bit", gpu="T4"))
    paged = _estimate(KEY, choice, TrainingSetup(batch_size=2, seq_len=256, optimizer="paged-adamw-8bit", gpu="T4"))
    assert plain.memory.paged == 0 and paged.memory.optimizer == 0
    assert paged.memory.paged == plain.memory.optimizer > 0  # the whole step's states, at the same size
    assert paged.memory.allocated < plain.memory.allocated and paged.memory.device <= plain.memory.device
    assert paged.memory.to_dict()["paged"] == paged.memory.paged
    assert plain.fit is not None and paged.fit is not None and paged.fit.max_batch_size >= plain.fit.max_batch_size


def test_zero3_gathers_blocks_in_the_compute_dtype_not_the_fp32_master() -> None:
    """Full fine-tuning under bf16-mixed keeps fp32 trained weights, but ZeRO-3/FSDP gather each block in bf16:
    the gathered and the prefetched block add two bf16 blocks (one fp32 block's bytes), not two fp32 blocks."""
    choice = MethodChoice("fft")
    setup = TrainingSetup(seq_len=256, gpus=8, sharding="zero3")
    parts = sizer(KEY, choice, count_parameters(KEY, choice), setup, "none")
    peaks, block = parts.profile.phase_peaks(1, 256).bytes, parts.profile.block_bytes
    out = _distribute(peaks, setup, 8, block, master=parts.master_bytes, root=parts.root_bytes,
                      largest_root=parts.largest_root_bytes)
    weights, forward, clip = CATEGORIES.index("weights"), PHASES.index("forward"), PHASES.index("clip")
    assert parts.master_bytes == pytest.approx(peaks[clip, weights] / 2)  # every weight trains, in fp32
    # two bf16 blocks are one fp32 block's bytes (SmolLM2's tied embedding outweighs them: it and one block, in bf16)
    in_flight = max(block[weights], parts.largest_root_bytes + block[weights] / 2)
    assert out[forward, weights] - out[clip, weights] == pytest.approx(in_flight)
    lora = MethodChoice("lora")
    lora_parts = sizer(KEY, lora, count_parameters(KEY, lora), setup, "none")
    lora_peaks, lora_block = lora_parts.profile.phase_peaks(1, 256).bytes, lora_parts.profile.block_bytes
    lora_out = _distribute(lora_peaks, setup, 8, lora_block, master=lora_parts.master_bytes,
                           root=lora_parts.root_bytes, largest_root=lora_parts.largest_root_bytes)
    lora_in_flight = max(2 * lora_block[weights], lora_parts.largest_root_bytes + lora_block[weights])
    assert lora_out[forward, weights] - lora_out[clip, weights] == pytest.approx(lora_in_flight)


def test_fsdp_holds_its_root_unit_gathered_through_forward_and_backward() -> None:
    """What no block holds (Llama-2-7B: embeddings and untied head, 2 x 32,000 x 4,096, and the final norm)
    stays unsharded under FSDP from the forward's start to the backward's end, in bf16; ZeRO-3 gathers
    modules on use, so it holds only blocks."""
    key = SkeletonKey(resolve_model("llama-2-7b"), "causal-lm", 2)
    assert model_shape(key).root_params == 2 * 32_000 * 4_096 + 4_096
    choice = MethodChoice("lora")
    parts = sizer(key, choice, count_parameters(key, choice), TrainingSetup(seq_len=256), "none")
    assert parts.root_bytes == 2 * model_shape(key).root_params
    peaks, block = parts.profile.phase_peaks(1, 256).bytes, parts.profile.block_bytes
    zero3, fsdp = (_distribute(peaks, TrainingSetup(seq_len=256, gpus=8, sharding=mode), 8, block, master=0,
                               root=parts.root_bytes, largest_root=parts.largest_root_bytes)
                   for mode in ("zero3", "fsdp"))
    weights = CATEGORIES.index("weights")
    for phase in ("forward", "backward"):
        assert fsdp[PHASES.index(phase), weights] - zero3[PHASES.index(phase), weights] == parts.root_bytes
    assert fsdp[PHASES.index("optimizer"), weights] == zero3[PHASES.index("optimizer"), weights]


def test_zero3_gathers_an_embedding_that_outweighs_a_block_with_its_neighbour() -> None:
    """Gemma-2-2B's tied 256k x 2,304 embedding is several blocks' worth: ZeRO-3 gathers it (with the next block)
    in the forward and backward, so that pair, not two blocks, is what sits gathered at the compute phases."""
    key = SkeletonKey(resolve_model("google/gemma-2-2b"), "causal-lm", 2)
    shape = model_shape(key)
    assert shape.largest_root_params == 256_000 * 2_304  # tied: the head is the embedding, counted once
    choice = MethodChoice("lora")
    setup = TrainingSetup(seq_len=128, gpus=8, sharding="zero3")
    parts = sizer(key, choice, count_parameters(key, choice), setup, "none")
    assert parts.largest_root_bytes == 2 * shape.largest_root_params > parts.profile.block_bytes[0]
    peaks, block = parts.profile.phase_peaks(1, 128).bytes, parts.profile.block_bytes
    out = _distribute(peaks, setup, 8, block, master=0, root=parts.root_bytes, largest_root=parts.largest_root_bytes)
    weights, forward, clip = CATEGORIES.index("weights"), PHASES.index("forward"), PHASES.index("clip")
    assert out[forward, weights] - out[clip, weights] == pytest.approx(parts.largest_root_bytes + block[weights])


def test_sharded_engines_hold_no_autocast_copy_of_every_weight() -> None:
    """Under AMP one GPU's forward holds torch.autocast's half-precision copy of every trained weight; FSDP and
    DeepSpeed run their own mixed precision, so a sharded forward does not (Llama-3.1-70B full fine-tuning with
    ZeRO-3 on 8 GPUs was charged 137 GiB of forward activations per GPU, a bf16 copy of all 70B weights)."""
    key = SkeletonKey(resolve_model("llama-2-7b"), "causal-lm", 2)
    choice = MethodChoice("fft")
    count = count_parameters(key, choice)
    setup = TrainingSetup(seq_len=512, precision="bf16-mixed", gradient_checkpointing=True)
    parts = sizer(key, choice, count, setup, "none")
    forward = PHASES.index("forward")
    single = parts.profile.phase_peaks(1, 512).bytes[forward, CATEGORIES.index("activations")]
    assert single > count.trainable_params * 2  # the autocast cache is in the single-GPU trace
    for mode in ("zero1", "zero3", "fsdp"):
        sharded = _distribute(parts.profile.phase_peaks(1, 512).bytes, replace(setup, gpus=8, sharding=mode), 8,
                              parts.profile.block_bytes, master=parts.master_bytes, root=parts.root_bytes,
                              largest_root=parts.largest_root_bytes, autocast_cache=parts.autocast_cache)
        assert sharded[forward, CATEGORIES.index("activations")] == single - count.trainable_params * 2, mode
    ddp = _distribute(parts.profile.phase_peaks(1, 512).bytes, replace(setup, gpus=8), 8, parts.profile.block_bytes,
                      master=parts.master_bytes, root=parts.root_bytes, largest_root=parts.largest_root_bytes,
                      autocast_cache=parts.autocast_cache)
    assert ddp[forward, CATEGORIES.index("activations")] == single  # DDP runs AMP: the cache stays
    assert parts.autocast_cache == count.trainable_params * 2
    true = sizer(key, choice, count, replace(setup, precision="bf16-true"), "none")
    assert true.autocast_cache == 0


@pytest.mark.parametrize("method", ["fft", "lora"])
def test_per_gpu_memory_never_grows_with_the_gpus_a_mode_shards_over(method: str) -> None:
    key = SkeletonKey(resolve_model("llama-2-7b"), "causal-lm", 2)
    choice = MethodChoice(method)
    setup = TrainingSetup(batch_size=2, seq_len=1024, gradient_checkpointing=True)
    parts = sizer(key, choice, count_parameters(key, choice), setup, "none")
    for mode in ("zero1", "zero2", "zero3", "fsdp"):
        devices = [parts.breakdown(setup=replace(setup, gpus=n, sharding=mode)).device for n in (2, 4, 8, 64, 512)]
        assert devices == sorted(devices, reverse=True), (mode, devices)
