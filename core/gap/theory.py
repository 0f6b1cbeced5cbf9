"""The linear model behind the theory checks: what the evidence says about rank, share, data and model size.

gap_i = x_i'b + u_source(i) + e_i, with Gaussian priors on b by block (task type, family and distribution
effects; method-within-family deviations; slopes; missing-value indicators), a random source intercept
u ~ N(0, tau2) and Student-t errors (nu = 4) so a few extreme rows (an unseen WebNLG split, 20B tokens of
code) do not drag every slope. Prior and variance components are empirical Bayes: they maximise the Gaussian
marginal likelihood (type-II maximum likelihood; MacKay 1992, Tipping 2001), evaluated with the Woodbury
identity; the t errors are then fitted by iteratively reweighted least squares (Lange, Little & Taylor 1989).

The fitted slopes adjust neighbours to the scenario's rank, share, data size and model size in the
predictor, and `theory_notes` reports them against the theory with their uncertainty; nothing here is
hard-coded to agree with the theory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from core.gap.features import SLOPES, Design, FeatureTable, slope_values

T_DOF = 4.0  # Student-t degrees of freedom for the errors (Lange, Little & Taylor 1989 suggest 4)
Z80 = 1.2816  # two-sided 80% normal quantile: the notes call a slope clear when its 80% interval excludes 0
_LOG_BOUNDS = (-7.0, 6.0)  # log-variance search range: prior sds from 0.03 to 20 points
_IRLS_STEPS = 20


@dataclass(frozen=True)
class LinearFit:
    """Posterior mean and covariance of the coefficients, and the variance components."""

    names: tuple[str, ...]
    coef: np.ndarray
    cov: np.ndarray
    tau2: float
    sigma2: float
    prior_var: dict[str, float]
    n: int
    n_groups: int
    log_hyper: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.coef.shape != (len(self.names),) or self.cov.shape != (len(self.names), len(self.names)):
            raise ValueError("coefficients and covariance do not match the column names")
        if not (self.tau2 >= 0 and self.sigma2 > 0):
            raise ValueError("variance components must be non-negative (tau2) and positive (sigma2)")

    def contrast(self, weights: dict[str, float]) -> tuple[float, float]:
        """Mean and sd of a linear combination of coefficients, e.g. {'log2_rank': 1.0}."""
        vec = np.zeros(len(self.names))
        for name, w in weights.items():
            vec[self.names.index(name)] = w
        return float(vec @ self.coef), float(math.sqrt(max(vec @ self.cov @ vec, 0.0)))

    def slopes(self) -> np.ndarray:
        """The coefficients of `SLOPES`, in that order."""
        return np.array([self.coef[self.names.index(name)] for name in SLOPES])

    def adjust(self, query: FeatureTable, pairs: FeatureTable, y: np.ndarray) -> np.ndarray:
        """Each pair's gap moved to each query's rank, share, size and model size (nq x n).

        Only features both sides know are moved (partially linear model: the kernel handles the rest).
        """
        qv, qk = slope_values(query)
        pv, pk = slope_values(pairs)
        both = qk[:, None, :] & pk[None, :, :]
        delta = np.where(both, qv[:, None, :] - pv[None, :, :], 0.0) @ self.slopes()
        return y[None, :] + delta


def _prior_variances(theta: np.ndarray, blocks: tuple[str, ...]) -> np.ndarray:
    """theta = log variances of (category, method, slope); intercept and indicators share `category`."""
    by_block = {
        "intercept": theta[0],
        "category": theta[0],
        "indicator": theta[0],
        "method": theta[1],
        "slope": theta[2],
    }
    return np.exp(np.array([by_block[b] for b in blocks]))


def fit_linear(
    design: Design, y: np.ndarray, groups: np.ndarray, *, log_hyper: tuple[float, ...] | None = None
) -> LinearFit:
    """Empirical-Bayes fit of the random-intercept model with t errors (see the module docstring).

    `log_hyper` (a previous fit's) skips the marginal-likelihood search: leave-one-source-out refits reuse
    the hyperparameters of the fit on all their training sources.
    """
    x = design.matrix
    n, k = x.shape
    labels, index = np.unique(groups.astype(str), return_inverse=True)
    z = np.zeros((n, len(labels)))
    z[np.arange(n), index] = 1.0
    a = np.hstack([x, z])

    def system(theta: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        prior = np.concatenate([_prior_variances(theta[:3], design.blocks), np.full(len(labels), np.exp(theta[3]))])
        noise = np.exp(theta[4]) / weights
        # einsum, not `@`: for these small matrices threaded BLAS only contends for shared cores
        precision = np.diag(1.0 / prior) + np.einsum("ij,ik->jk", a, a / noise[:, None])
        return prior, noise, precision

    def neg_log_marginal(theta: np.ndarray) -> float:
        # y ~ N(0, diag(noise) + A D A'); log|K| and y'K^-1 y through the Woodbury identity.
        prior, noise, precision = system(theta, np.ones(n))
        try:
            chol = np.linalg.cholesky(precision)
        except np.linalg.LinAlgError:
            return 1e12
        rhs = a.T @ (y / noise)
        solved = np.linalg.solve(precision, rhs)
        logdet = 2 * np.log(np.diag(chol)).sum() + np.log(prior).sum() + np.log(noise).sum()
        return float(0.5 * (logdet + y @ (y / noise) - rhs @ solved))

    if log_hyper is None:
        start = np.log([1.0, 1.0, 1.0, 1.0, max(float(np.var(y)), 0.1) / 2])
        theta = optimize.minimize(neg_log_marginal, start, method="L-BFGS-B", bounds=[_LOG_BOUNDS] * 5).x
    else:
        theta = np.asarray(log_hyper, dtype=float)
    sigma2 = float(np.exp(theta[4]))
    weights = np.ones(n)
    for _ in range(_IRLS_STEPS):
        _, noise, precision = system(theta, weights)
        mean = np.linalg.solve(precision, a.T @ (y / noise))
        resid = y - a @ mean
        new = (T_DOF + 1) / (T_DOF + resid**2 / sigma2)
        if np.max(np.abs(new - weights)) < 1e-6:
            break
        weights = new
    _, noise, precision = system(theta, weights)
    cov = np.linalg.inv(precision)
    mean = cov @ (a.T @ (y / noise))
    prior = dict(zip(("category", "method", "slope"), np.exp(theta[:3]).tolist(), strict=True))
    return LinearFit(
        names=design.names,
        coef=mean[:k],
        cov=cov[:k, :k],
        tau2=float(np.exp(theta[3])),
        sigma2=sigma2,
        prior_var=prior,
        n=n,
        n_groups=len(labels),
        log_hyper=tuple(float(v) for v in theta),
    )


# -- reading the fit against the theory -----------------------------------------------------------------


def _interval(mean: float, sd: float) -> str:
    return f"{mean:+.2f} points (80% interval {mean - Z80 * sd:+.2f} to {mean + Z80 * sd:+.2f})"


def _sign(mean: float, sd: float) -> int:
    """+1 / -1 when the 80% interval excludes 0 on that side, else 0."""
    if mean - Z80 * sd > 0:
        return 1
    if mean + Z80 * sd < 0:
        return -1
    return 0


def rank_note(fit: LinearFit) -> str:
    """Diminishing returns in rank: the gain per doubling at r=8 and at r=64 (gap vs log2 rank is quadratic).

    A straight line in log2(rank) already means diminishing returns per added rank; the theory (the seed
    paper's S19: rank "barely moves" results) is the stronger claim that doublings stop paying off.
    """
    # gain from r to 2r = b1 + b2 * (2x + 1), x = log2(r) - 3 (features.RANK_CENTRE)
    low = fit.contrast({"log2_rank": 1.0, "log2_rank_sq": 1.0})
    high = fit.contrast({"log2_rank": 1.0, "log2_rank_sq": 7.0})
    text = f"rank: doubling r=8->16 moves the gap {_interval(*low)}; r=64->128 {_interval(*high)}"
    if _sign(*high) > 0 and high[0] >= low[0]:
        return f"{text}; the evidence DISAGREES with saturating returns: doubling still pays at high rank"
    if _sign(*low) < 0 and _sign(*high) < 0:
        return f"{text}; the evidence DISAGREES with the theory: higher rank did worse"
    if _sign(*high) <= 0:
        return f"{text}; the evidence agrees with diminishing returns (no clear gain from doubling a large rank)"
    return f"{text}; gains per doubling shrink with rank: agrees with diminishing returns"


def share_note(fit: LinearFit) -> str:
    """More trainable parameters should close the gap, with diminishing returns (a log-scale slope >= 0)."""
    slope = fit.contrast({"log10_share": 1.0})
    text = f"trainable share: 10x more trainable parameters moves the gap {_interval(*slope)}"
    verdict = {
        1: "agrees with the theory (more capacity, closer to FFT)",
        0: "no clear effect",
        -1: "DISAGREES with the theory",
    }
    return f"{text}; {verdict[_sign(*slope)]}"


def data_note(fit: LinearFit) -> str:
    """FFT should pull ahead as data grows: a negative slope in log data size."""
    examples = fit.contrast({"log10_examples": 1.0})
    tokens = fit.contrast({"log10_tokens": 1.0})
    parts = [
        f"data size: 10x more training examples moves the gap {_interval(*examples)}",
        f"10x more continued-pretraining tokens {_interval(*tokens)}",
    ]
    signs = {_sign(*examples), _sign(*tokens)}
    if -1 in signs and 1 not in signs:
        verdict = "agrees with the theory that FFT pulls ahead as data grows"
    elif 1 in signs and -1 not in signs:
        verdict = "DISAGREES with the theory: PEFT gains on FFT as data grows"
    elif signs == {0}:
        verdict = "no clear data-size effect"
    else:
        verdict = "mixed: examples and tokens point different ways"
    return f"{'; '.join(parts)}; {verdict}"


_CONFOUNDED = "; no source reports both sides, so this contrast is confounded with the source: read it with care"


def task_note(fit: LinearFit, task_types: tuple[str, ...], *, confounded: bool = False) -> str | None:
    """Complex tasks (reasoning-math, code, instruction) against classification: FFT should win more there."""
    complex_types = [t for t in ("reasoning-math", "code", "instruction") if t in task_types]
    if "classification" not in task_types or not complex_types:
        return None
    weights = {f"task:{t}": 1.0 / len(complex_types) for t in complex_types} | {"task:classification": -1.0}
    diff = fit.contrast(weights)
    verdict = {
        -1: "agrees with the theory (FFT gains more on complex tasks)",
        0: "no clear difference",
        1: "DISAGREES with the theory",
    }[_sign(*diff)]
    text = f"task complexity: {', '.join(complex_types)} vs classification: {_interval(*diff)}; {verdict}"
    return text + (_CONFOUNDED if confounded else "")


def targets_note(fit: LinearFit, *, confounded: bool = False) -> str:
    """Attention-only adapters against adapters that cover the MLP too (LoRA Without Regret, 2025)."""
    diff = fit.contrast({"targets:attention": 1.0})
    verdict = {-1: "agrees: attention-only trails", 0: "no clear difference", 1: "DISAGREES: attention-only leads"}
    text = f"targets: attention-only vs all-linear adapters {_interval(*diff)}; {verdict[_sign(*diff)]}"
    return text + (_CONFOUNDED if confounded else "")


def theory_notes(fit: LinearFit, task_types: tuple[str, ...], confounded: frozenset[str] = frozenset()) -> list[str]:
    """Every theory check on the whole evidence, one line each; `confounded` names contrasts ('task',
    'targets') that no single source reports both sides of."""
    notes = [rank_note(fit), share_note(fit), data_note(fit), targets_note(fit, confounded="targets" in confounded)]
    task = task_note(fit, task_types, confounded="task" in confounded)
    if task is not None:
        notes.append(task)
    return notes
