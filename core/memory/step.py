"""One training step of the real model on fake tensors, traced allocation by allocation.

The loop is the one HF Trainer / accelerate run: forward with labels (the loss inside the model, the outputs
dropped), backward, `clip_grad_norm_(1.0)`, `optimizer.step()`, `zero_grad(set_to_none=True)`. The optimizer
is stepped once before the trace, so the traced step is a steady-state one (its states exist from the start).

Dtypes follow practice: the base is loaded in the compute dtype (bf16/fp16, fp32 only for `fp32`), then the
method is applied; weights a method trains are fp32 under `*-mixed` (autocast makes half-precision working
copies, cached for the forward) and stay in the compute dtype under `*-true`; peft adapters and peft's own
tensors keep the dtype peft gives them (fp32 adapters by default).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator

import torch
from torch import nn
from torch._subclasses.fake_tensor import (
    DataDependentOutputException,
    DynamicOutputShapeException,
    FakeTensorMode,
    UnsupportedOperatorException,
)

from core.apply import apply_method
from core.errors import NotApplicableError
from core.memory import standins
from core.memory.optimizers import OPTIMIZERS, Optimizer
from core.memory.spec import StepSpec
from core.memory.trace import (
    ACTIVATIONS,
    GRADIENTS,
    OPTIMIZER,
    PHASES,
    TEMPORARIES,
    WEIGHTS,
    AllocationTracker,
    Timeline,
)
from core.registry import MethodChoice
from core.skeleton import CLASSIFIER_HEAD_NAMES, SkeletonKey, fresh_copy, one_at_a_time, skeleton

# What a step can raise on fake tensors: the model's or peft's own refusals (shapes, unsupported arguments), and
# fake tensors' limits (below). The method is then counted, not sized, and the note says which it was.
TRACE_FAILURES = (RuntimeError, ValueError, TypeError, NotImplementedError, IndexError, KeyError, AttributeError)
# What only fake tensors raise: the step reads data values, or an op has no fake kernel.
FAKE_TENSOR_LIMITS = (DataDependentOutputException, DynamicOutputShapeException, UnsupportedOperatorException,
                      NotImplementedError)


class TracedModel:
    """The fake model of `key` (the first N blocks of each stack) trained as `choice`, with a warmed optimizer,
    built once and stepped at any batch shape."""

    @one_at_a_time
    def __init__(self, key: SkeletonKey, choice: MethodChoice, spec: StepSpec,
                 keep_blocks: dict[str, int] | None) -> None:
        self.key, self.spec, self.task_ids = key, spec, choice.spec.task_ids
        self.tracker = AllocationTracker()
        try:
            self._build(choice, keep_blocks)
        except NotApplicableError:
            raise
        except TRACE_FAILURES as exc:
            raise _refusal(exc, guessed=False) from None

    def _build(self, choice: MethodChoice, keep_blocks: dict[str, int] | None) -> None:
        spec, key = self.spec, self.key
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            base = fresh_copy(skeleton(key), keep_blocks)
            load_dtype(base, spec.compute_dtype)
            # the base is on meta already; peft's own index or permutation tensors need real data where its init
            # reads them (`Method.meta_init`), and are made fake with every other tensor below
            with torch.device("meta") if choice.spec.meta_init else contextlib.nullcontext():
                model = apply_method(base, key, choice)
            _set_attention(model, spec.attention)
            _train_dtype(model, choice, spec)
            quantized = _quantize(model, spec.quantization, spec.compute_dtype)
            if quantized:
                prepare_for_kbit_training(model, quantized)
            self.fake = FakeTensorMode(allow_non_fake_inputs=True)
            with self.fake:
                _materialize(model)
                self.placeholders = choice.spec.placeholders(model) if choice.spec.placeholders else []
                self.sizes = {_storage_key(layer.weight): standins.quantized_bytes(
                    layer.weight.numel(), layer.weight.shape[0], spec.quantization) for layer in quantized}
                model.train()
                if spec.checkpointing:
                    _enable_checkpointing(model, reentrant=spec.reentrant)
                self.trained = [p for p in model.parameters() if p.requires_grad]
                self.optimizer = _optimizer(spec.optimizer, self.trained)
                _warm_optimizer(self.optimizer, self.trained)
                for p in self.trained:
                    p.register_post_accumulate_grad_hook(lambda p: self.tracker.adopt([p.grad], GRADIENTS))
        self.model = model

    @one_at_a_time
    def trace(self, batch_size: int, seq_len: int) -> Timeline:
        """The allocation timeline of one steady-state step on a micro-batch of this shape."""
        return self._traced(batch_size, seq_len, steps=1, warm=True).timeline()

    @one_at_a_time
    def first_steps_log(self, batch_size: int, seq_len: int, *, steps: int) -> list[int]:
        """Every allocation and free of a run's first `steps` steps, from the weights on (the optimizer makes its
        states inside the first step, between that step's frees): what the caching allocator sees from the start
        (`core.memory.replay.replay`)."""
        return self._traced(batch_size, seq_len, steps=steps, warm=False).log

    def _traced(self, batch_size: int, seq_len: int, *, steps: int, warm: bool) -> AllocationTracker:
        """Run `steps` steps under a fresh tracker: from a warmed optimizer (its states exist already) or from
        none (the first step makes them)."""
        try:
            self.tracker = AllocationTracker(lambda s: self.sizes.get(s._cdata, s.nbytes()))
            if not warm:
                self.optimizer.state.clear()
            with warnings.catch_warnings(), _kernels(self.spec), self.fake:
                warnings.simplefilter("ignore")
                inputs = _inputs(self.key, batch_size, seq_len, task_ids=self.task_ids)
                if "task_ids" in inputs:
                    self.tracker.know(inputs["task_ids"], 0)  # one task: every example's id is 0
                self.tracker.adopt([*self.model.parameters(), *self.model.buffers(), *self.placeholders], WEIGHTS)
                # logged as the optimizer phase's: a run's first step makes them there (`core.memory.steplog`)
                self.tracker.phase = PHASES.index("optimizer")
                self.tracker.adopt(_optimizer_tensors(self.optimizer), OPTIMIZER)
                with self.tracker:
                    for _ in range(steps):
                        _run_step(self.model, self.optimizer, self.trained, inputs, spec=self.spec,
                                  tracker=self.tracker)
        except TRACE_FAILURES as exc:
            raise _refusal(exc, guessed=self.tracker.guessed) from None
        return self.tracker


def trace_step(key: SkeletonKey, choice: MethodChoice, spec: StepSpec, *, batch_size: int, seq_len: int,
               keep_blocks: dict[str, int] | None) -> Timeline:
    """The allocation timeline of one steady-state step of `choice` on `key` (the first N blocks of each stack)."""
    return TracedModel(key, choice, spec, keep_blocks).trace(batch_size, seq_len)


def _refusal(exc: BaseException, *, guessed: bool) -> NotApplicableError:
    """Why a step has no memory figure. Fake tensors check shapes and arguments as real ones do, so a failure that
    is not one of fake tensors' own (an op that needs data values, or has no fake kernel) and that no guessed value
    led to (`AllocationTracker.guessed`: a stand-in for a value, an upper bound for a size) is the real code's:
    peft or the model refuses this combination on real weights too (the CPU probe's real forwards fail alike)."""
    if isinstance(exc, FAKE_TENSOR_LIMITS):
        return NotApplicableError(f"memory cannot be traced on fake tensors for this model and method (the step "
                                  f"needs data values): {_first_line(exc)}")
    if guessed:
        return NotApplicableError("memory cannot be traced for this model and method: the step failed after it "
                                  "read values fake tensors do not hold (routing counts, masks), so a real run may "
                                  f"or may not fail alike: {_first_line(exc)}")
    return NotApplicableError(f"this method's training step fails on this model, on real weights too (peft or the "
                              f"model code raises it): {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _run_step(model: nn.Module, optimizer: torch.optim.Optimizer, trained: list[nn.Parameter],
              inputs: dict[str, torch.Tensor], *, spec: StepSpec, tracker: AllocationTracker) -> None:
    def phase(name: str, category: int) -> None:
        tracker.phase = PHASES.index(name)
        tracker.default_category = category
        tracker.mark()

    phase("forward", ACTIVATIONS)
    with _autocast(spec):
        loss = model(**inputs).loss
    phase("backward", TEMPORARIES)
    loss.backward()
    del loss
    phase("clip", TEMPORARIES)
    torch.nn.utils.clip_grad_norm_(trained, 1.0)
    phase("optimizer", TEMPORARIES)
    optimizer.step()
    phase("zero_grad", TEMPORARIES)
    optimizer.zero_grad(set_to_none=True)
    tracker.mark()


@contextlib.contextmanager
def _autocast(spec: StepSpec) -> Iterator[None]:
    if not spec.mixed:
        yield
        return
    with torch.autocast("cpu", dtype=spec.compute_dtype):
        yield


def _set_attention(model: nn.Module, attention: str) -> None:
    """`eager` runs the model's own attention code (it keeps the scores on CUDA too); `sdpa` and `flash` run SDPA,
    whose CUDA kernels the stand-in reproduces. Models without an SDPA path keep their own code. MoE experts run
    transformers' `grouped_mm` path."""
    from transformers import PretrainedConfig

    wanted = "eager" if attention == "eager" else "sdpa"
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    # every config the modules read: T5's and BART's stacks hold their own copies of the model's config, and so
    # does a network the method adds beside the base (SHADOW's backbone)
    configs = {id(c): c for m in model.modules() if isinstance(c := getattr(m, "config", None), PretrainedConfig)}
    for config in configs.values():
        if wanted == "eager" or getattr(type(base), "_supports_sdpa", False):
            config._attn_implementation = wanted
        if getattr(config, "_experts_implementation", None) is not None:
            config._experts_implementation = "grouped_mm"  # static shapes: k x tokens rows, however routed


@contextlib.contextmanager
def _kernels(spec: StepSpec) -> Iterator[None]:
    """CUDA's attention kernels, or (`kernels="cpu"`, to compare with a CPU run) the CPU's own."""
    if spec.attention == "eager" or spec.kernels == "cpu":
        yield
        return
    with standins.cuda_attention():
        yield


def load_dtype(model: nn.Module, dtype: torch.dtype) -> None:
    """The base as `from_pretrained(dtype=...)` loads it: every parameter in `dtype` except the modules its dtype
    plan keeps in fp32 (transformers' `_get_dtype_plan`: `_keep_in_fp32_modules` under fp16 only, e.g. T5's `wo`;
    `_keep_in_fp32_modules_strict` under fp16 and bf16); buffers keep their own dtype."""
    keep: set[str] = set()
    if dtype == torch.float16:
        keep |= set(getattr(model, "_keep_in_fp32_modules", None) or ())
    if dtype in (torch.float16, torch.bfloat16):
        keep |= set(getattr(model, "_keep_in_fp32_modules_strict", None) or ())
    for name, p in model.named_parameters():
        p.data = p.data.to(torch.float32 if any(f".{part}." in f".{name}" for part in keep) else dtype)


def _train_dtype(model: nn.Module, choice: MethodChoice, spec: StepSpec) -> None:
    """Methods that train base weights keep them in fp32 under `*-mixed` (AMP's master weights); peft keeps its
    adapters in their own dtype (fp32 by default, `--adapter-dtype` otherwise: `core.apply`)."""
    if choice.spec.is_peft or not spec.mixed:
        return
    for p in model.parameters():
        if p.requires_grad:
            p.data = p.data.to(torch.float32)


def _quantize(model: nn.Module, quant: str, compute: torch.dtype) -> list[nn.Linear]:
    """Give every frozen `nn.Linear` outside the heads bitsandbytes' forward, and return those layers. Only exact
    `nn.Linear` modules are quantized, as transformers' `replace_with_bnb_linear` does
    (integrations/bitsandbytes.py: `type(module) is nn.Linear`): an MoE's fused experts (3-D parameters) and
    its router stay in the load dtype (`unquantized_experts` says so to the user)."""
    if quant == "none":
        return []
    layers = [m for name, m in model.named_modules()
              if type(m) is nn.Linear and not m.weight.requires_grad and not _is_head_module(name)]
    for layer in layers:
        layer.forward = standins.quantized_linear_forward(layer, compute)
    return layers


def prepare_for_kbit_training(model: nn.Module, quantized: list[nn.Linear]) -> None:
    """peft's `prepare_model_for_kbit_training`, which the peft docs' and QLoRA's recipes run on a 4/8-bit base
    before adding adapters (peft/utils/other.py): every fp16/bf16 parameter that is not quantized (embeddings,
    norms, lm_head, unquantized experts) becomes fp32, so the residual stream and the logits are fp32 too.
    Applied to the frozen base only: the adapters peft adds afterwards keep their own dtype."""
    packed = {id(layer.weight) for layer in quantized}
    for p in model.parameters():
        if id(p) not in packed and not p.requires_grad and p.dtype in (torch.float16, torch.bfloat16):
            p.data = p.data.to(torch.float32)


def _is_head_module(name: str) -> bool:
    leaf = name.rsplit(".", maxsplit=1)[-1]
    return leaf == "lm_head" or leaf in CLASSIFIER_HEAD_NAMES or name.split(".", maxsplit=1)[0] in CLASSIFIER_HEAD_NAMES


def _materialize(model: nn.Module) -> None:
    """Replace meta parameters and buffers by fake ones, keeping tied weights tied (`to_empty` would untie)."""
    made: dict[int, torch.Tensor] = {}
    for module in model.modules():
        for registry in (module._parameters, module._buffers):
            for name, tensor in list(registry.items()):
                if tensor is None:
                    continue
                if id(tensor) not in made:
                    empty = torch.empty(tensor.shape, dtype=tensor.dtype, device="cpu")
                    made[id(tensor)] = (nn.Parameter(empty, requires_grad=tensor.requires_grad)
                                        if isinstance(tensor, nn.Parameter) else empty)
                registry[name] = made[id(tensor)]


def _storage_key(tensor: torch.Tensor) -> int:
    return tensor.untyped_storage()._cdata


def _enable_checkpointing(model: nn.Module, *, reentrant: bool) -> None:
    """Activation checkpointing per block as transformers applies it: non-reentrant (its default) or reentrant
    (torch's `CheckpointFunction`, which recomputes the whole block inside backward and sees no gradient unless
    its input requires one: with frozen embeddings peft and HF Trainer call `enable_input_require_grads`)."""
    target = model.get_base_model() if hasattr(model, "get_base_model") else model
    target.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": reentrant})
    if reentrant and not target.get_input_embeddings().weight.requires_grad:
        target.enable_input_require_grads()


def _optimizer(name: str, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    """The optimizer as a CUDA run builds it: torch AdamW/SGD with foreach (torch's CUDA default), fused AdamW
    (HF Trainer's default `adamw_torch_fused`), bitsandbytes 8-bit AdamW, or transformers' Adafactor."""
    record = OPTIMIZERS[name]
    return _BUILDERS[record.kind](params, record)


def _adafactor(params: list[nn.Parameter], _: Optimizer) -> torch.optim.Optimizer:
    from transformers.optimization import Adafactor

    return Adafactor(params, lr=1e-4, relative_step=False, scale_parameter=False, warmup_init=False)


# Each optimizer kind (`core.memory.optimizers`) as a CUDA run builds it (foreach is torch's CUDA default).
_BUILDERS: dict[str, Callable[[list[nn.Parameter], Optimizer], torch.optim.Optimizer]] = {
    "adamw": lambda params, o: torch.optim.AdamW(params, lr=1e-4,
                                                 **({"fused": True} if o.fused else {"foreach": True})),
    "adamw-8bit": lambda params, _: standins.Adam8bit(params),
    "sgd": lambda params, _: torch.optim.SGD(params, lr=1e-4, momentum=0.9, foreach=True),
    "adafactor": _adafactor,
}


def _warm_optimizer(optimizer: torch.optim.Optimizer, params: list[nn.Parameter]) -> None:
    for p in params:
        p.grad = torch.empty_like(p)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [v for state in optimizer.state.values() for v in state.values() if isinstance(v, torch.Tensor)]


def _inputs(key: SkeletonKey, batch_size: int, seq_len: int, *, task_ids: bool) -> dict[str, torch.Tensor]:
    """Token ids and labels of one micro-batch, no padding (so no attention mask), and a task id per example
    for the methods that route by task."""
    ids, tasks = torch.zeros(batch_size, seq_len, dtype=torch.long), task_inputs(batch_size, task_ids)
    if key.task == "seq-cls":
        return {"input_ids": ids, "labels": torch.zeros(batch_size, dtype=torch.long), **tasks}
    return {"input_ids": ids, "labels": ids.clone(), **tasks}


def task_inputs(batch_size: int, wanted: bool) -> dict[str, torch.Tensor]:
    """`task_ids` for the methods that route each example by task (`Method.task_ids`): one task, id 0."""
    return {"task_ids": torch.zeros(batch_size, dtype=torch.long)} if wanted else {}
