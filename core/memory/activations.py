"""Activation memory per method and architecture: the bytes autograd saves during one forward of one micro-batch.

Each architecture family's forward pass is replayed on the symbolic tape (`symbolic.py`), layer by layer, with
the real module sizes read from the meta skeleton and the method's layout (`layout.py`): which weights train,
which layers carry which peft adapter, which soft prompt lengthens the sequence. Because the tape applies
torch's saving rules, the per-method differences follow from the mechanism rather than from constants:

* a frozen linear layer without an adapter saves no input, so a frozen base saves little before the first
  adapter and only what the activation-gradient path needs after it;
* an adapter saves its input again in the adapter's dtype (peft keeps adapters in fp32, so a bf16 input is
  saved once more in fp32), its rank-r intermediate, a dropout mask when dropout > 0; DoRA adds its magnitude
  terms, IA3 its scaled activations, LoHa/LoKr/OFT their dense delta or rotation matrices;
* prefix tuning lengthens keys/values, prompt tuning and p-tuning lengthen the whole sequence;
* `sdpa`/`flash` attention keeps q, k, v, output and the fp32 log-sum-exp (no s x s matrices); `eager` keeps
  scores and probabilities (Korthikanti et al. 2022, "Reducing Activation Recomputation", Table 2: the
  5·a·s/h term per token is what eager attention adds);
* gradient checkpointing keeps each block's input and recomputes one block at a time in backward.

The replay runs once per (model, method, dtype, attention, checkpointing) and is cached; the result is a
polynomial in batch b and sequence s, so a new batch, length or GPU costs a few multiplications.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from core.errors import NotApplicableError
from core.memory.layout import ELEM_BYTES, Adapter, Layout, features, layout
from core.memory.symbolic import ZERO, B, Kernels, Poly, S, Sym, Tape, next_id, sym
from core.registry import MethodChoice
from core.skeleton import SkeletonKey, skeleton

ATTENTION: tuple[str, ...] = ("sdpa", "flash", "eager")


@dataclass(frozen=True)
class ActivationModel:
    """Saved bytes as polynomials in (b, s): the whole forward, and the largest transient the loss creates."""

    saved: Poly
    logits: Poly

    def bytes(self, batch_size: int, seq_len: int) -> int:
        return max(0, round(self.saved(batch_size, seq_len)))

    def logits_bytes(self, batch_size: int, seq_len: int) -> int:
        return max(0, round(self.logits(batch_size, seq_len)))


@lru_cache(maxsize=256)
def activation_model(
    key: SkeletonKey,
    choice: MethodChoice,
    *,
    dtype: str,
    attention: str = "sdpa",
    checkpointing: bool = False,
    kernels: Kernels = "cuda",
) -> ActivationModel:
    """The activation polynomial of `choice` on `key`, in compute dtype `dtype` (fp32, bf16, fp16)."""
    program = _PROGRAMS.get(key.model.model_type)
    if program is None:
        raise NotApplicableError(
            f"no activation model for architecture {key.model.model_type!r} yet; supported: {', '.join(_PROGRAMS)}"
        )
    attention = effective_attention(key, attention)
    run = Forward(key, layout(key, choice), elem=ELEM_BYTES[dtype], attention=attention,
                  checkpointing=checkpointing, kernels=kernels)
    program(run)
    return ActivationModel(run.finish(), run.logits)


def effective_attention(key: SkeletonKey, attention: str) -> str:
    """What transformers runs: a model class without sdpa support (Gemma-2: soft-capping) falls back to eager."""
    if attention == "sdpa" and not getattr(type(skeleton(key)), "_supports_sdpa", True):
        return "eager"
    return attention


class Forward:
    """One symbolic forward pass: the tape plus the helpers every family program shares."""

    def __init__(self, key: SkeletonKey, plan: Layout, *, elem: int, attention: str, checkpointing: bool,
                 kernels: Kernels) -> None:
        self.key = key
        self.plan = plan
        self.elem = elem
        self.attention = attention
        self.checkpointing = checkpointing
        self.tape = Tape(kernels)
        self.config: Any = skeleton(key).config
        self.logits: Poly = ZERO
        self.adapter_elem = ELEM_BYTES[plan.adapter_dtype]
        prompt = plan.soft_prompt
        self.prefix = prompt.tokens if prompt and prompt.peft_type == "PREFIX_TUNING" else 0
        self.extra = prompt.tokens if prompt and prompt.peft_type != "PREFIX_TUNING" else 0
        self.seq = S + self.extra  # the sequence the blocks see (virtual tokens prepended)
        self._memo: dict[tuple[Any, ...], tuple[Poly, dict[int, Poly], bool, Poly]] = {}
        self._inputs: Poly = ZERO
        self._largest_block: Poly = ZERO
        self._block_bytes: Poly = ZERO

    # --- module helpers -----------------------------------------------------------------------------------
    def rows(self) -> Poly:
        return B * self.seq

    def tokens(self) -> Sym:
        """Token ids (int64) of the micro-batch."""
        return sym(B * S, 8)

    def linear(self, x: Sym, path: str) -> Sym:
        """The layer at `path` with whatever the method puts there (frozen, trained or adapted)."""
        features_in, features_out = features(self.key, path)
        adapter = self.plan.adapter(path)
        trains = self.plan.weight_trains(path)
        if adapter is None:
            bias = getattr(skeleton(self.key).get_submodule(path), "bias", None) is not None
            return self.tape.linear(x, features_in, features_out, trains,
                                    bias_trains=bias and self.plan.bias_trains(path))
        return _ADAPTERS[adapter.kind](self, x, adapter)

    def norm(self, x: Sym, path: str, kind: str) -> Sym:
        module = skeleton(self.key).get_submodule(path)
        dim = int(module.weight.shape[0])
        has_bias = getattr(module, "bias", None) is not None
        trains = self.plan.weight_trains(path) or (has_bias and self.plan.bias_trains(path))
        if kind == "layer":
            return self.tape.layer_norm(x, dim, trains)
        if kind == "t5":
            return self.tape.t5_norm(x, dim, trains)
        return self.tape.rms_norm(x, dim, trains, gemma=kind == "gemma")

    def embed(self, ids: Sym, path: str) -> Sym:
        dim = int(skeleton(self.key).get_submodule(path).weight.shape[1])
        return self.tape.embedding(ids, dim, self.plan.weight_trains(path), self.elem)

    def act(self, x: Sym, name: str) -> Sym:
        """transformers' ACT2FN by name: what each saves for backward."""
        tape = self.tape
        if name in ("silu", "swish", "gelu", "gelu_pytorch_tanh", "gelu_fast", "quick_gelu"):
            return tape.unary(x, "input")
        if name == "relu":
            return tape.unary(x, "output")
        if name == "gelu_new":  # 0.5 * x * (1 + tanh(c * (x + 0.044715 * x^3))), in Python ops
            tape.unary(x, "input")  # pow(x, 3)
            t = tape.unary(x.like(), "output")  # tanh
            return tape.mul(tape.scale(x), tape.scale(t))
        raise NotApplicableError(f"activation function {name!r} is not modelled")

    # --- soft prompts ---------------------------------------------------------------------------------------
    def prompt_embeddings(self, hidden: int) -> bool:
        """The soft prompt's own saved tensors; True when the virtual tokens carry gradient into the model."""
        prompt = self.plan.soft_prompt
        if prompt is None:
            return False
        if prompt.peft_type == "PREFIX_TUNING":
            self.tape.save(sym(Poly.const(prompt.tokens), 8))  # prefix ids (expanded over the batch: a view)
            return False
        if prompt.peft_type == "P_TUNING":  # prompt encoder runs once (batch 1): constants
            x = sym(Poly.const(prompt.tokens), 8, False)
            self.tape.save(x)
            widths = (hidden, *prompt.encoder_widths)
            self.tape.save(*(sym(Poly.const(prompt.tokens * w), self.adapter_elem) for w in widths[:-1]))
            return True
        self.tape.save(sym(Poly.const(prompt.tokens), 8))
        return True

    def prefix_kv(self, kv: Sym, kv_heads: int, head_dim: int) -> Sym:
        """Prefix tuning concatenates p learned positions in front of the keys/values (a new tensor)."""
        if not self.prefix:
            return kv
        return Sym(B * (self.seq + self.prefix) * (kv_heads * head_dim), kv.elem, True, kv.like().sid)

    # --- attention ------------------------------------------------------------------------------------------
    def attend(self, q: Sym, k: Sym, v: Sym, *, heads: int, kv_heads: int, head_dim: int, dropout: float,
               causal: bool = True, softcap: bool = False, softmax_fp32: bool = True) -> Sym:
        """Scaled dot-product attention as transformers calls it; returns the output laid out for o_proj."""
        tape = self.tape
        q_len, kv_len = self.seq, self.seq + self.prefix
        # sdpa gets a causal mask offset by the prefix (flash-attn aligns causality itself; encoders attend to all)
        masked = bool(self.prefix) and causal and self.attention == "sdpa"
        grad = q.grad or k.grad or v.grad
        rep = heads // kv_heads
        scores = B * heads * q_len * kv_len
        out_numel = B * q_len * (heads * head_dim)
        if self.attention != "eager" and not softcap:
            if rep > 1 and masked and kv_heads > 1:  # repeat_kv copies (one kv head: an expand, a view) unless
                k, v = k.like(numel=k.numel * rep), v.like(numel=v.numel * rep)  # sdpa may use enable_gqa
            math = tape.kernels == "cpu" and dropout > 0  # CPU flash kernel has no dropout: math fallback
            if not math:
                if tape.kernels == "cpu" and not masked:  # the CPU causal kernel copies strided q and v views
                    q, v = _contiguous(q), _contiguous(v)
                out = sym(out_numel, q.elem, grad)
                if grad:
                    tape.save(q, k, v, out, sym(B * heads * q_len, 4))
                    if masked:
                        tape.save(sym(B * q_len * kv_len, q.elem))  # boolean mask made additive, per call
                return out
            elem = 4 if tape.kernels == "cpu" and q.elem < 4 else q.elem  # CPU math upcasts half precision
            qs, ks = q.like(elem=elem), sym(B * kv_len * heads * head_dim, elem, k.grad)
            copy_v = rep > 1 or elem != v.elem or v.storage is not None  # bmm needs v contiguous per head
            vs = sym(B * kv_len * heads * head_dim, elem, v.grad) if copy_v else v
            probs = tape.unary(tape.matmul(qs, ks, scores), "output")
            dropped = tape.dropout(probs, dropout)
            tape.matmul(dropped, vs, out_numel)
            return sym(out_numel, q.elem, grad)
        if rep > 1:  # eager: repeat_kv copies keys and values to every query head
            k, v = k.like(numel=k.numel * rep), v.like(numel=v.numel * rep)
        q, k, v = _contiguous(q), _contiguous(k), _contiguous(v)  # matmul folds strided views into copies
        logits = tape.scale(tape.matmul(q, k, scores))
        if softcap:  # Gemma-2: tanh(scores / cap) * cap
            logits = tape.scale(tape.unary(tape.scale(logits), "output"))
        if softmax_fp32:  # softmax(dtype=float32), cast back to the compute dtype
            probs = tape.cast(tape.unary(logits.like(elem=4), "output"), q.elem)
        else:
            probs = tape.unary(logits, "output")
        dropped = tape.dropout(probs, dropout)
        context = tape.matmul(dropped, v, out_numel)
        return context.like()  # transpose(1, 2).contiguous(): a copy laid out for o_proj

    # --- blocks ---------------------------------------------------------------------------------------------
    def blocks(self, stack: str, x: Sym, body: Callable[[Forward, Sym, str], Sym]) -> Sym:
        """Run `body` over every block of `stack`, replaying once per distinct (state, input) and reusing it."""
        depth = len(skeleton(self.key).get_submodule(stack))
        for index in range(depth):
            path = f"{stack}.{index}"
            if self.checkpointing:
                x = x.like(grad=True)  # the checkpointed block's input is kept (HF makes it require grad)
                self._inputs = self._inputs + x.numel * x.elem
            memo_key = (stack, self.plan.block_state(path), x.grad, x.elem)
            if memo_key not in self._memo:
                outer, self.tape.saved = self.tape.saved, {}
                start = next_id()
                out = body(self, x, path)
                local = {sid: b for sid, b in self.tape.saved.items() if sid > start or sid == x.sid}
                shared = {sid: b for sid, b in self.tape.saved.items() if sid not in local}
                self.tape.saved = outer
                self._memo[memo_key] = (sum(local.values(), ZERO), shared, out.grad, out.numel)
            local_bytes, shared, grad, numel = self._memo[memo_key]
            for sid, size in shared.items():
                self.tape.saved.setdefault(sid, size)
            if self.checkpointing:
                self._largest_block = _larger(self._largest_block, local_bytes)
            else:
                self._block_bytes = self._block_bytes + local_bytes
            x = sym(numel, x.elem, grad)
        return x

    def finish(self) -> Poly:
        """Everything saved; with checkpointing, block inputs plus the one block recomputed at a time."""
        total = self.tape.total() + self._block_bytes
        if self.checkpointing:
            total = total + self._inputs + self._largest_block
        return total

    # --- the head -------------------------------------------------------------------------------------------
    def lm_loss(self, x: Sym, head: str, softcap: bool = False) -> None:
        """LM head and the loss: logits over the (extended) sequence, upcast to fp32 by transformers."""
        vocab = features(self.key, head)[1]
        logits = self.linear(x, head)
        if softcap:
            logits = self.tape.scale(self.tape.unary(self.tape.scale(logits), "output"))
        # backward transient: the returned logits, the fp32 gradient of their upcast copy, the cast-back gradient
        self.logits = self.rows() * vocab * (2 * self.elem + 4)
        self.tape.cross_entropy(logits, vocab)


def _contiguous(t: Sym) -> Sym:
    """A view of a larger storage (GPT-2's fused qkv) becomes its own copy where a kernel needs contiguity."""
    return t.like() if t.storage is not None else t


def _larger(a: Poly, b: Poly) -> Poly:
    """The larger of two per-block polynomials at a typical shape (they differ only by method state)."""
    return a if a(8, 2048) >= b(8, 2048) else b


# --- adapters (peft's forward, per tuner) ---------------------------------------------------------------------
def _lora(run: Forward, x: Sym, a: Adapter) -> Sym:
    tape = run.tape
    base = tape.linear(x, a.features_in, a.features_out, False)
    xa = tape.dropout(tape.cast(x, run.adapter_elem), a.dropout)
    low = tape.linear(xa, a.features_in, a.rank, True, elem=run.adapter_elem)
    update = tape.scale(tape.linear(low, a.rank, a.features_out, True))
    if a.dora:
        update = _dora(run, x, xa, base=base, update=update, a=a)
        if a.transposed and x.elem == run.adapter_elem:  # GPT-2's Conv1D: peft keeps a transposed weight copy
            tape.save(sym(Poly.const(a.features_in * a.features_out), run.adapter_elem))
    return tape.cast(tape.add(base, update), x.elem)


def _dora(run: Forward, x: Sym, xa: Sym, *, base: Sym, update: Sym, a: Adapter) -> Sym:
    """DoRA (peft's DoraLinearVariant): (m/||W+BA|| - 1) * base + m/||W+BA|| * lora * scaling."""
    tape = run.tape
    out = Poly.const(a.features_out)
    tape.save(sym(out, run.adapter_elem))  # ||W + BA|| (detached), kept for the magnitude's gradient
    magnitude = sym(out, run.adapter_elem, True)
    if a.dropout > 0:  # dropout: peft recomputes the base output on the dropped input with a cast weight
        if xa.grad and x.elem != run.adapter_elem:  # the cast copy is a new tensor (same dtype: the parameter)
            tape.save(sym(Poly.const(a.features_in * a.features_out), run.adapter_elem))
        base = Sym(base.numel, run.adapter_elem, xa.grad, next_id())
    tape.mul(magnitude.like(), base)
    return tape.mul(magnitude, update)


def _adalora(run: Forward, x: Sym, a: Adapter) -> Sym:
    tape = run.tape
    base = tape.linear(x, a.features_in, a.features_out, False)
    xa = tape.dropout(tape.cast(x, run.adapter_elem), a.dropout)
    if xa.grad:
        tape.save(sym(Poly.const(a.rank * a.features_in), run.adapter_elem))  # (A * E)^T for the input gradient
    low = tape.linear(xa, a.features_in, a.rank, True, elem=run.adapter_elem)
    update = tape.linear(low, a.rank, a.features_out, True)
    tape.save(sym(Poly.const(1), 4))  # divided by (ranknum + eps), which is kept
    gram = Poly.const(a.rank * a.rank)  # the loss adds an orthogonality penalty: A A^T and B^T B, with norms
    tape.save(sym(gram, run.adapter_elem), sym(gram, run.adapter_elem), sym(Poly.const(1), 4), sym(Poly.const(1), 4))
    if base.elem != update.elem:
        tape.save(update)  # `result += update` across dtypes keeps the update for the cast-back gradient
    return tape.add(base, update, base.elem)


def _ia3(run: Forward, x: Sym, a: Adapter) -> Sym:
    tape = run.tape
    if a.feedforward:  # scales the input of the layer
        scaled = tape.mul(tape.cast(x, run.adapter_elem), sym(Poly.const(a.features_in), run.adapter_elem, True))
        return tape.linear(tape.cast(scaled, x.elem), a.features_in, a.features_out, False)
    base = tape.linear(x, a.features_in, a.features_out, False)
    scaled = tape.mul(base, sym(Poly.const(a.features_out), run.adapter_elem, True))
    return tape.cast(scaled, x.elem)


def _vera(run: Forward, x: Sym, a: Adapter) -> Sym:
    tape = run.tape
    base = tape.linear(x, a.features_in, a.features_out, False)
    xa = tape.dropout(tape.cast(x, run.adapter_elem), a.dropout)
    low = tape.param_mul(tape.linear(xa, a.features_in, a.rank, False), True)  # lambda_d * (x A^T): A is frozen
    update = tape.param_mul(tape.linear(low, a.rank, a.features_out, False), True)  # lambda_b * (. B^T)
    return tape.cast(tape.add(base, update), x.elem)


def _delta_weight(run: Forward, x: Sym, a: Adapter) -> Sym:
    """LoHa/LoKr (peft's LyCORIS layers): F.linear(x, delta_W) with a dense delta built each forward."""
    tape = run.tape
    base = tape.linear(x, a.features_in, a.features_out, False)
    delta = sym(Poly.const(a.features_in * a.features_out), run.adapter_elem, True)
    if a.kind == "loha":
        tape.save(sym(Poly.const(1), 4))  # HadaWeight keeps its scale tensor
    if a.dropout > 0:
        tape.save(sym(Poly.const(a.features_out), run.adapter_elem))  # the rank-dropout mask
    xa = tape.cast(x, run.adapter_elem)
    tape.save(xa)
    if xa.grad:
        tape.save(delta)
    return tape.cast(tape.add(base, sym(base.numel, run.adapter_elem, True)), x.elem)


def _oft(run: Forward, x: Sym, a: Adapter) -> Sym:
    """OFT: the input is rotated block-wise by a Cayley-Neumann orthogonal matrix, then the frozen layer runs."""
    tape = run.tape
    rotation = Poly.const(a.blocks * a.block_size * a.block_size)
    tape.save(*(sym(rotation, run.adapter_elem) for _ in range(3)))  # Q, Q^2, Q^3 of the Neumann series
    xa = tape.cast(x, run.adapter_elem)
    tape.save(xa)  # einsum keeps (a view of) the input for the rotation's gradient
    if xa.grad:
        tape.save(sym(rotation, run.adapter_elem))
    rotated = tape.cast(sym(xa.numel, run.adapter_elem, True), x.elem)
    return tape.linear(rotated, a.features_in, a.features_out, False)


_ADAPTERS: dict[str, Callable[[Forward, Sym, Adapter], Sym]] = {
    "lora": _lora,
    "adalora": _adalora,
    "ia3": _ia3,
    "vera": _vera,
    "loha": _delta_weight,
    "lokr": _delta_weight,
    "oft": _oft,
}


# --- family programs ----------------------------------------------------------------------------------------
def _llama(run: Forward) -> None:
    """Llama, Mistral, Qwen2, Gemma, Gemma-2: RMSNorm, rotary, grouped-query attention, gated MLP."""
    c = run.config
    gemma = run.key.model.model_type.startswith("gemma")
    root = _root(run, "model")
    x = run.embed(run.tokens(), f"{root}embed_tokens")
    if gemma:
        x = run.tape.mul(x, sym(Poly.const(1), run.elem))  # * sqrt(hidden), a 0-dim tensor
    x = _prepend_prompt(run, x, c.hidden_size)
    heads, kv_heads = c.num_attention_heads, c.num_key_value_heads
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // heads
    rotary = (sym(run.seq * head_dim, run.elem), sym(run.seq * head_dim, run.elem))  # cos, sin: shared by layers
    norm = "gemma" if gemma else "rms"
    softcap = bool(getattr(c, "attn_logit_softcapping", None))
    dropout = float(getattr(c, "attention_dropout", 0.0) or 0.0)
    sandwich = run.key.model.model_type == "gemma2"

    def block(run: Forward, x: Sym, path: str) -> Sym:
        tape = run.tape
        h = run.norm(x, f"{path}.input_layernorm", norm)
        q = run.linear(h, f"{path}.self_attn.q_proj")
        k = run.linear(h, f"{path}.self_attn.k_proj")
        v = run.linear(h, f"{path}.self_attn.v_proj")
        q, k = (tape.add(tape.mul(t, rotary[0]), tape.mul(t.like(), rotary[1])) for t in (q, k))
        k, v = run.prefix_kv(k, kv_heads, head_dim), run.prefix_kv(v, kv_heads, head_dim)
        o = run.attend(q, k, v, heads=heads, kv_heads=kv_heads, head_dim=head_dim, dropout=dropout,
                       softcap=softcap and run.attention == "eager")
        o = run.linear(o, f"{path}.self_attn.o_proj")
        if sandwich:
            o = run.norm(o, f"{path}.post_attention_layernorm", norm)
            x = tape.add(x, o)
            h = run.norm(x, f"{path}.pre_feedforward_layernorm", norm)
        else:
            x = tape.add(x, o)
            h = run.norm(x, f"{path}.post_attention_layernorm", norm)
        gate = run.act(run.linear(h, f"{path}.mlp.gate_proj"), c.hidden_activation if gemma else c.hidden_act)
        up = run.linear(h, f"{path}.mlp.up_proj")
        d = run.linear(tape.mul(gate, up), f"{path}.mlp.down_proj")
        if sandwich:
            d = run.norm(d, f"{path}.post_feedforward_layernorm", norm)
        return tape.add(x, d)

    x = run.blocks(f"{root}layers", x, block)
    x = run.norm(x, f"{root}norm", norm)
    _head(run, x, softcap=bool(getattr(c, "final_logit_softcapping", None)))


def _gpt2(run: Forward) -> None:
    """GPT-2: learned positions, LayerNorm, fused c_attn (Conv1D), GELU (tanh form), dropout everywhere."""
    c = run.config
    tape = run.tape
    x = run.embed(run.tokens(), "transformer.wte")
    positions = run.embed(sym(S, 8), "transformer.wpe")
    x = _prepend_prompt(run, tape.add(x, positions), c.n_embd)
    x = tape.dropout(x, c.embd_pdrop)
    heads, head_dim = c.n_head, c.n_embd // c.n_head

    def block(run: Forward, x: Sym, path: str) -> Sym:
        h = run.norm(x, f"{path}.ln_1", "layer")
        qkv = run.linear(h, f"{path}.attn.c_attn")
        third = qkv.numel * (1 / 3)
        q, k, v = qkv.view(third), run.prefix_kv(qkv.view(third), heads, head_dim), qkv.view(third)
        v = run.prefix_kv(v, heads, head_dim)
        o = run.attend(q, k, v, heads=heads, kv_heads=heads, head_dim=head_dim, dropout=c.attn_pdrop,
                       softmax_fp32=False)
        o = tape.dropout(run.linear(o, f"{path}.attn.c_proj"), c.resid_pdrop)
        x = tape.add(x, o)
        h = run.norm(x, f"{path}.ln_2", "layer")
        m = run.act(run.linear(h, f"{path}.mlp.c_fc"), c.activation_function)
        m = tape.dropout(run.linear(m, f"{path}.mlp.c_proj"), c.resid_pdrop)
        return tape.add(x, m)

    x = run.blocks("transformer.h", x, block)
    _head(run, run.norm(x, "transformer.ln_f", "layer"))


def _opt(run: Forward) -> None:
    """OPT: learned positions (offset 2), pre-LayerNorm, ReLU MLP, dropout."""
    c = run.config
    tape = run.tape
    root = _root(run, "model.decoder")
    x = run.embed(run.tokens(), f"{root}embed_tokens")
    x = _prepend_prompt(run, x, c.hidden_size)
    positions = run.embed(sym(B * run.seq, 8), f"{root}embed_positions")
    x = tape.add(x, positions)
    heads = c.num_attention_heads
    head_dim = c.hidden_size // heads

    def block(run: Forward, x: Sym, path: str) -> Sym:
        h = run.norm(x, f"{path}.self_attn_layer_norm", "layer")
        q = run.linear(h, f"{path}.self_attn.q_proj")
        k = run.prefix_kv(run.linear(h, f"{path}.self_attn.k_proj"), heads, head_dim)
        v = run.prefix_kv(run.linear(h, f"{path}.self_attn.v_proj"), heads, head_dim)
        o = run.attend(q, k, v, heads=heads, kv_heads=heads, head_dim=head_dim, dropout=c.attention_dropout)
        x = tape.add(x, tape.dropout(run.linear(o, f"{path}.self_attn.out_proj"), c.dropout))
        h = run.norm(x, f"{path}.final_layer_norm", "layer")
        m = run.act(run.linear(h, f"{path}.fc1"), c.activation_function)
        return tape.add(x, tape.dropout(run.linear(m, f"{path}.fc2"), c.dropout))

    x = run.blocks(f"{root}layers", x, block)
    _head(run, run.norm(x, f"{root}final_layer_norm", "layer"))


def _bert(run: Forward) -> None:
    """BERT/RoBERTa encoders: post-LayerNorm blocks, GELU MLP, dropout; pooler or classification head."""
    c = run.config
    tape = run.tape
    root = _root(run, run.key.model.model_type)
    x = run.embed(run.tokens(), f"{root}embeddings.word_embeddings")
    x = tape.add(x, run.embed(sym(B * S, 8), f"{root}embeddings.token_type_embeddings"))
    position_ids = sym(B * S if run.key.model.model_type == "roberta" else S, 8)
    x = tape.add(x, run.embed(position_ids, f"{root}embeddings.position_embeddings"))
    x = run.norm(x, f"{root}embeddings.LayerNorm", "layer")
    x = _prepend_prompt(run, tape.dropout(x, c.hidden_dropout_prob), c.hidden_size)
    heads = c.num_attention_heads
    head_dim = c.hidden_size // heads

    def block(run: Forward, x: Sym, path: str) -> Sym:
        q = run.linear(x, f"{path}.attention.self.query")
        k = run.prefix_kv(run.linear(x, f"{path}.attention.self.key"), heads, head_dim)
        v = run.prefix_kv(run.linear(x, f"{path}.attention.self.value"), heads, head_dim)
        o = run.attend(q, k, v, heads=heads, kv_heads=heads, head_dim=head_dim,
                       dropout=c.attention_probs_dropout_prob, causal=False, softmax_fp32=False)
        o = tape.dropout(run.linear(o, f"{path}.attention.output.dense"), c.hidden_dropout_prob)
        x = run.norm(tape.add(o, x), f"{path}.attention.output.LayerNorm", "layer")
        m = run.act(run.linear(x, f"{path}.intermediate.dense"), c.hidden_act)
        m = tape.dropout(run.linear(m, f"{path}.output.dense"), c.hidden_dropout_prob)
        return run.norm(tape.add(m, x), f"{path}.output.LayerNorm", "layer")

    x = run.blocks(f"{root}encoder.layer", x, block)
    _classifier(run, x)


def _deberta(run: Forward) -> None:
    """DeBERTa-v2/v3: disentangled attention (content-to-position and position-to-content scores over a shared
    relative-position table), always computed explicitly with s x s matrices (no sdpa path in transformers)."""
    c = run.config
    tape = run.tape
    x = run.embed(run.tokens(), "deberta.embeddings.word_embeddings")
    x = run.norm(x, "deberta.embeddings.LayerNorm", "layer")
    x = tape.mul(x, sym(B * S, x.elem))  # * attention mask (b, s, 1), made in the compute dtype
    x = _prepend_prompt(run, tape.dropout(x, c.hidden_dropout_prob), c.hidden_size)
    heads = c.num_attention_heads
    kinds = tuple(c.pos_att_type or ())
    span = features(run.key, "deberta.encoder.rel_embeddings")[0] // 2  # rows of the table = 2 x span
    table = sym(Poly.const(2 * span * c.hidden_size), run.elem)  # rel_embeddings.weight (a parameter)
    if "layer_norm" in str(getattr(c, "norm_rel_ebd", "")):
        table = run.norm(table, "deberta.encoder.LayerNorm", "layer")
    seq = run.seq
    scores = B * heads * seq * seq
    per_head = B * seq * c.hidden_size

    def block(run: Forward, x: Sym, path: str) -> Sym:
        attn = f"{path}.attention.self"
        q, k, v = (run.linear(x, f"{attn}.{n}_proj").like() for n in ("query", "key", "value"))  # per-head copies
        scale = sym(Poly.const(1), run.elem)
        kt = tape.mul(k, scale)  # k^T / sqrt(d * factor): keeps the 0-dim scale
        total = tape.matmul(q, kt, scores)
        rel = tape.dropout(table, c.hidden_dropout_prob)
        for kind, own, proj in (("c2p", q, "key"), ("p2c", k, "query")):
            if kind not in kinds:
                continue
            pos = run.linear(rel, f"{attn}.{proj}_proj")
            pos = pos.like(numel=B * pos.numel)  # .repeat over the batch
            side = tape.matmul(own, pos, B * heads * seq * (2 * span))
            if side.grad:  # gather keeps its input and the index (relative positions, clamped)
                tape.save(side, sym(seq * seq, 8))
            total = tape.add(total, tape.mul(side.like(numel=scores), scale))
        tape.save(sym(B * seq * seq, 1))  # masked_fill keeps the (inverted) boolean mask
        probs = tape.dropout(tape.unary(total.like(), "output"), c.attention_probs_dropout_prob)
        context = tape.matmul(probs, v, per_head).like()  # permuted back: a copy
        o = tape.dropout(run.linear(context, f"{path}.attention.output.dense"), c.hidden_dropout_prob)
        x = run.norm(tape.add(o, x), f"{path}.attention.output.LayerNorm", "layer")
        m = run.act(run.linear(x, f"{path}.intermediate.dense"), c.hidden_act)
        m = tape.dropout(run.linear(m, f"{path}.output.dense"), c.hidden_dropout_prob)
        return run.norm(tape.add(m, x), f"{path}.output.LayerNorm", "layer")

    x = run.blocks("deberta.encoder.layer", x, block)
    first = tape.dropout(x.view(B * c.hidden_size), c.pooler_dropout)
    pooled = run.act(run.linear(first, "pooler.dense"), c.pooler_hidden_act)
    drop = c.cls_dropout if getattr(c, "cls_dropout", None) is not None else c.hidden_dropout_prob
    logits = run.linear(tape.dropout(pooled, drop), "classifier")
    tape.cross_entropy(logits, features(run.key, "classifier")[1])


def _t5(run: Forward) -> None:
    """T5: RMS-style T5LayerNorm, a relative-position bias computed once per stack (by block 0's table) and
    added to every layer's scores, encoder self-attention, decoder causal self- and cross-attention, ReLU or
    gated-GELU feed-forward, dropout everywhere; the decoder reads the labels shifted right."""
    c = run.config
    tape = run.tape
    if run.plan.soft_prompt is not None:  # peft prompts both stacks of an encoder-decoder: not modelled yet
        raise NotApplicableError("soft-prompt methods on encoder-decoder models have no activation model yet")
    heads, head_dim = c.num_heads, c.d_kv
    inner = heads * head_dim
    gated = bool(getattr(c, "is_gated_act", False))
    p = c.dropout_rate

    def bias(stack: str) -> Sym:
        """(1, h, s, s) bias from the relative_attention_bias table of the stack's first block (shared)."""
        path = f"{stack}.block.0.layer.0.SelfAttention.relative_attention_bias"
        return run.embed(sym(S * S, 8), path).like(numel=S * S * heads)

    def attention(q: Sym, k: Sym, v: Sym, mask: Sym) -> Sym:
        out_numel = B * S * inner
        grad = q.grad or k.grad or v.grad or mask.grad
        if run.attention == "eager":
            scores = tape.add(tape.matmul(q, k, B * heads * S * S), mask)
            probs = tape.dropout(tape.unary(scores, "output"), p)
            return tape.matmul(probs, v, out_numel).like()
        if tape.kernels == "cpu" and (mask.grad or p > 0):  # math fallback (no fused kernel for these)
            elem = 4 if q.elem < 4 else q.elem
            probs = tape.unary(tape.matmul(q.like(elem=elem), k.like(elem=elem), B * heads * S * S), "output")
            tape.matmul(tape.dropout(probs, p), v.like(elem=elem), out_numel)
            return sym(out_numel, q.elem, grad)
        out = sym(out_numel, q.elem, grad)
        if grad:
            tape.save(q, k, v, out, sym(B * heads * S, 4), mask)
        return out

    def ff(x: Sym, path: str) -> Sym:
        h = run.norm(x, f"{path}.layer_norm", "t5")
        if gated:
            g = run.act(run.linear(h, f"{path}.DenseReluDense.wi_0"), c.dense_act_fn)
            h = tape.mul(g, run.linear(h, f"{path}.DenseReluDense.wi_1"))
        else:
            h = run.act(run.linear(h, f"{path}.DenseReluDense.wi"), c.dense_act_fn)
        h = tape.dropout(h, p)
        return tape.add(x, tape.dropout(run.linear(h, f"{path}.DenseReluDense.wo"), p))

    def self_attention(x: Sym, path: str, mask: Sym, module: str = "SelfAttention", memory: Sym | None = None) -> Sym:
        h = run.norm(x, f"{path}.layer_norm", "t5")
        source = h if memory is None else memory
        q = run.linear(h, f"{path}.{module}.q")
        k, v = run.linear(source, f"{path}.{module}.k"), run.linear(source, f"{path}.{module}.v")
        o = run.linear(attention(q, k, v, mask), f"{path}.{module}.o")
        return tape.add(x, tape.dropout(o, p))

    encoder_bias = bias("encoder")
    x = tape.dropout(run.embed(run.tokens(), "encoder.embed_tokens"), p)
    x = _prepend_prompt(run, x, c.d_model)
    x = run.blocks("encoder.block", x, lambda r, x, path: ff(self_attention(x, f"{path}.layer.0", encoder_bias),
                                                              f"{path}.layer.1"))
    memory = tape.dropout(run.norm(x, "encoder.final_layer_norm", "t5"), p)

    decoder_bias = bias("decoder")
    causal = sym(S * S, 1)
    if decoder_bias.grad:
        tape.save(causal)  # torch.where(causal, bias, min) keeps the condition

    def decoder_block(run: Forward, x: Sym, path: str) -> Sym:
        # sdpa merges the bias with the causal mask: a new tensor per layer
        mask = decoder_bias if run.attention == "eager" else decoder_bias.like()
        x = self_attention(x, f"{path}.layer.0", mask)
        cross_bias = sym(S * S * heads, run.elem)  # zeros: cross-attention has no relative bias
        x = self_attention(x, f"{path}.layer.1", cross_bias, "EncDecAttention", memory)
        return ff(x, f"{path}.layer.2")

    y = tape.dropout(run.embed(run.tokens(), "decoder.embed_tokens"), p)
    y = run.blocks("decoder.block", y, decoder_block)
    y = tape.dropout(run.norm(y, "decoder.final_layer_norm", "t5"), p)
    if getattr(c, "scale_decoder_outputs", c.tie_word_embeddings):
        y = tape.scale(y)
    vocab = features(run.key, "lm_head")[1]
    logits = run.linear(y, "lm_head")
    run.logits = run.rows() * vocab * (2 * run.elem + 4)
    run.tape.cross_entropy(logits.like(elem=4) if logits.elem == 4 else logits, vocab)


def _root(run: Forward, base: str) -> str:
    """The path prefix of the base model inside the task head model (e.g. 'model.' for LlamaForCausalLM)."""
    model = skeleton(run.key)
    return f"{base}." if hasattr(model, base.split(".", maxsplit=1)[0]) else ""


def _prepend_prompt(run: Forward, x: Sym, hidden: int) -> Sym:
    """Prompt tuning / p-tuning: virtual token embeddings concatenated in front (b, s + p, h)."""
    grad = run.prompt_embeddings(hidden)
    if not run.extra:
        return x
    return Sym(B * run.seq * hidden, x.elem, x.grad or grad, next_id())


def _head(run: Forward, x: Sym, softcap: bool = False) -> None:
    """The task head: LM logits and loss, or a sequence-classification score on the last token."""
    if run.key.task == "seq-cls":
        head = "score"
        labels = features(run.key, head)[1]
        logits = run.linear(x, head)
        run.tape.cross_entropy(logits.like(numel=B * labels), labels)
        return
    run.lm_loss(x, "lm_head", softcap)


def _classifier(run: Forward, x: Sym) -> None:
    """Encoder classification heads: BERT's pooler + classifier, RoBERTa's dense-tanh-dense head."""
    tape = run.tape
    c = run.config
    model = skeleton(run.key)
    p = c.classifier_dropout if getattr(c, "classifier_dropout", None) is not None else c.hidden_dropout_prob
    first = x.view(B * c.hidden_size)  # hidden[:, 0]: a view that keeps the whole storage alive
    if hasattr(model, "bert"):
        pooled = tape.unary(run.linear(first, "bert.pooler.dense"), "output")
        logits = run.linear(tape.dropout(pooled, p), "classifier")
    else:
        h = tape.unary(run.linear(tape.dropout(first, p), "classifier.dense"), "output")
        logits = run.linear(tape.dropout(h, p), "classifier.out_proj")
    head = "classifier.out_proj" if hasattr(model, "roberta") else "classifier"
    tape.cross_entropy(logits, features(run.key, head)[1])


_PROGRAMS: dict[str, Callable[[Forward], None]] = {
    "llama": _llama,
    "mistral": _llama,
    "qwen2": _llama,
    "gemma": _llama,
    "gemma2": _llama,
    "gpt2": _gpt2,
    "opt": _opt,
    "bert": _bert,
    "roberta": _bert,
    "deberta-v2": _deberta,
    "t5": _t5,
}
