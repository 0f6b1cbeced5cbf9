"""A symbolic autograd tape: which tensors one forward pass saves for backward, as polynomials in batch and sequence.

The activation model (`activations.py`) replays a family's forward pass on `Sym` tensors whose sizes are
polynomials in b (micro-batch) and s (sequence). Each op applies torch's own saving rule (the formulas of
`tools/autograd/derivatives.yaml`): an op is recorded only when an input requires grad; a linear layer saves
its input only when its weight trains and saves its (parameter) weight only when its input needs a gradient;
`mul` saves each operand for the other's gradient; `silu`/`gelu`/`pow` save their input; `tanh`/`relu`/
`softmax`/`rsqrt` their output; dropout its mask. Parameters are never counted (they are weights), and a
storage saved twice (views, shared rotary tables) counts once, exactly as the probe counts.

Where kernels differ by device the tape says so: CUDA dropout keeps a 1-byte bool mask (`native_dropout`),
the CPU path multiplies by a mask in the input dtype; `kernels` picks the rule.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Kernels = Literal["cuda", "cpu"]
_ids = itertools.count(1)


class Poly:
    """A polynomial in batch b and sequence s: {(power of b, power of s): coefficient}."""

    __slots__ = ("terms",)

    def __init__(self, terms: Mapping[tuple[int, int], float] | None = None) -> None:
        self.terms: dict[tuple[int, int], float] = {k: v for k, v in (terms or {}).items() if v}

    @staticmethod
    def const(value: float) -> Poly:
        return Poly({(0, 0): value})

    def __add__(self, other: Poly | float) -> Poly:
        other = other if isinstance(other, Poly) else Poly.const(other)
        out = dict(self.terms)
        for k, v in other.terms.items():
            out[k] = out.get(k, 0.0) + v
        return Poly(out)

    __radd__ = __add__

    def __mul__(self, other: Poly | float) -> Poly:
        if not isinstance(other, Poly):
            return Poly({k: v * other for k, v in self.terms.items()})
        out: dict[tuple[int, int], float] = {}
        for (b1, s1), v1 in self.terms.items():
            for (b2, s2), v2 in other.terms.items():
                key = (b1 + b2, s1 + s2)
                out[key] = out.get(key, 0.0) + v1 * v2
        return Poly(out)

    __rmul__ = __mul__

    def __call__(self, b: float, s: float) -> float:
        return sum(v * b**i * s**j for (i, j), v in self.terms.items())

    def __repr__(self) -> str:
        return " + ".join(f"{v:g}*b^{i}*s^{j}" for (i, j), v in sorted(self.terms.items())) or "0"


B = Poly({(1, 0): 1.0})
S = Poly({(0, 1): 1.0})
ZERO = Poly()


@dataclass(eq=False)
class Sym:
    """A symbolic tensor: element count, bytes per element, whether it requires grad, and its storage id."""

    numel: Poly
    elem: int
    grad: bool
    sid: int
    storage: Poly | None = None  # bytes of the underlying storage when this is a view of a larger tensor

    @property
    def nbytes(self) -> Poly:
        return self.storage if self.storage is not None else self.numel * self.elem

    def like(self, numel: Poly | None = None, elem: int | None = None, grad: bool | None = None) -> Sym:
        """A new storage shaped like this one (an op's output)."""
        return Sym(self.numel if numel is None else numel, self.elem if elem is None else elem,
                   self.grad if grad is None else grad, next(_ids))

    def view(self, numel: Poly | None = None) -> Sym:
        """A view: same storage (what a saved view keeps alive is the whole storage, so bytes stay)."""
        return Sym(self.numel if numel is None else numel, self.elem, self.grad, self.sid, self.nbytes)


def sym(numel: Poly, elem: int, grad: bool = False) -> Sym:
    return Sym(numel, elem, grad, next(_ids))


def next_id() -> int:
    """A fresh storage id; ids only grow, so everything created after a mark has a larger id."""
    return next(_ids)


class Tape:
    """Records the storages autograd saves, with torch's rule per op."""

    def __init__(self, kernels: Kernels = "cuda") -> None:
        self.kernels = kernels
        self.saved: dict[int, Poly] = {}

    def save(self, *tensors: Sym) -> None:
        for t in tensors:
            if t.sid not in self.saved:
                self.saved[t.sid] = t.nbytes

    def total(self) -> Poly:
        return sum(self.saved.values(), ZERO)

    # --- elementwise -------------------------------------------------------------------------------------
    def cast(self, x: Sym, elem: int) -> Sym:
        """`.to(dtype)`: a no-op for the same dtype, else a new tensor; saves nothing."""
        return x if x.elem == elem else x.like(elem=elem)

    def add(self, a: Sym, b: Sym, elem: int | None = None) -> Sym:
        return a.like(elem=elem or max(a.elem, b.elem), grad=a.grad or b.grad)

    def mul(self, a: Sym, b: Sym, elem: int | None = None) -> Sym:
        """Tensor x tensor: each operand is saved for the other's gradient."""
        if b.grad:
            self.save(a)
        if a.grad:
            self.save(b)
        numel = a.numel if len(a.numel.terms) >= len(b.numel.terms) else b.numel
        return Sym(numel, elem or max(a.elem, b.elem), a.grad or b.grad, next(_ids))

    def scale(self, x: Sym) -> Sym:
        """Multiplication or division by a Python number: a new tensor, nothing saved."""
        return x.like()

    def param_mul(self, x: Sym, trains: bool, elem: int | None = None) -> Sym:
        """x * parameter: x is saved only when the parameter trains."""
        if trains:
            self.save(x)
        return x.like(elem=elem, grad=x.grad or trains)

    def unary(self, x: Sym, saves: Literal["input", "output", "none"], elem: int | None = None) -> Sym:
        """An activation function: silu/gelu/pow save the input; tanh/relu/sigmoid/softmax/rsqrt the output."""
        out = x.like(elem=elem)
        if x.grad and saves != "none":
            self.save(x if saves == "input" else out)
        return out

    def dropout(self, x: Sym, p: float) -> Sym:
        """Training-mode dropout: CUDA keeps a bool mask (1 byte/element), CPU a mask in the input dtype."""
        if p <= 0:
            return x
        out = x.like()
        if x.grad:
            self.save(sym(x.numel, 1 if self.kernels == "cuda" else x.elem))
        return out

    # --- layers -------------------------------------------------------------------------------------------
    def linear(self, x: Sym, features_in: int, features_out: int, trains: bool, *, elem: int | None = None,
               bias_trains: bool = False) -> Sym:
        """y = x W^T (+ b): saves x for the weight gradient only when the weight trains (a bias needs nothing)."""
        if trains:
            self.save(x)
        grad = x.grad or trains or bias_trains
        return Sym(x.numel * (features_out / features_in), elem or x.elem, grad, next(_ids))

    def matmul(self, a: Sym, b: Sym, numel: Poly) -> Sym:
        """Activation x activation (attention): each operand saved for the other's gradient."""
        if b.grad:
            self.save(a)
        if a.grad:
            self.save(b)
        return Sym(numel, a.elem, a.grad or b.grad, next(_ids))

    def embedding(self, ids: Sym, dim: int, trains: bool, elem: int) -> Sym:
        """Embedding lookup: the indices are saved only when the table trains."""
        if trains:
            self.save(ids)
        return Sym(ids.numel * dim, elem, trains, next(_ids))

    def layer_norm(self, x: Sym, dim: int, trains: bool) -> Sym:
        """native_layer_norm saves its input plus fp32 mean and rstd per row."""
        out = x.like(grad=x.grad or trains)
        if out.grad:
            rows = x.numel * (1 / dim)
            self.save(x, sym(rows, 4), sym(rows, 4))
        return out

    def rms_norm(self, x: Sym, dim: int, trains: bool, *, gemma: bool = False) -> Sym:
        """transformers' RMSNorm: upcast to fp32, x * rsqrt(mean(x^2) + eps), cast back, times the weight.

        Gemma scales by (1 + weight) in fp32 before casting back; Llama casts back, then multiplies."""
        x32 = self.cast(x, 4)
        self.unary(x32, "input")  # pow(x, 2)
        rstd = self.unary(sym(x.numel * (1 / dim), 4, x.grad), "output")
        normed = self.mul(x32, rstd)
        if gemma:  # normed * (1 + weight.float()): the (1 + w) vector is a new tensor, kept for normed's gradient
            out = self.mul(normed, sym(Poly.const(dim), 4, trains))
            return self.cast(out, x.elem)
        return self.param_mul(self.cast(normed, x.elem), trains)

    def t5_norm(self, x: Sym, dim: int, trains: bool) -> Sym:
        """T5LayerNorm: variance from an fp32 copy, the original x times rsqrt (promoted to fp32), cast back to a
        half-precision weight's dtype, times the weight."""
        self.unary(self.cast(x, 4), "input")  # pow(x.float(), 2)
        rstd = self.unary(sym(x.numel * (1 / dim), 4, x.grad), "output")
        normed = self.cast(self.mul(x, rstd, 4), x.elem)
        return self.param_mul(normed, trains)

    def cross_entropy(self, logits: Sym, classes: int) -> None:
        """transformers' loss: logits upcast to fp32, log_softmax saves its output, nll_loss the targets."""
        if not logits.grad:
            return
        self.unary(self.cast(logits, 4), "output")
        self.save(sym(logits.numel * (1 / classes), 8), sym(Poly.const(1), 4))
