"""The BG/NBD purchase model (Fader, Hardie and Lee 2005).

Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005), "'Counting Your Customers' the Easy Way:
An Alternative to the Pareto/NBD Model", *Marketing Science* 24 (2), 275-284; and the
technical notes at brucehardie.com (notes 004 and 021).

While active, a customer buys as a Poisson process with rate ``lambda ~ Gamma(r, alpha)``
(shape ``r``, rate ``alpha``); after each repeat purchase they drop out with probability
``p ~ Beta(a, b)``. A customer's history is ``x`` repeat purchases, the last at ``t_x``,
observed for ``T`` time units since the first purchase. All functions take arrays and
broadcast; parameters are the tuple ``(r, alpha, a, b)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import digamma, expit, gammaln, polygamma

from memberlab.analytics.fitting import (
    FitResult,
    LogLikelihood,
    ModelFitError,
    fit_purchase_likelihood,
)
from memberlab.analytics.special import hyp2f1_safe, softplus, unique_inverse

__all__ = [
    "PARAMS",
    "conditional_expected_purchases",
    "cumulative_expected_purchases",
    "expected_purchases",
    "fit",
    "log_likelihood",
    "p_alive",
]

MODEL = "BG/NBD"
PARAMS = ("r", "alpha", "a", "b")
Params = tuple[float, float, float, float]


def log_likelihood(params: Params, x: np.ndarray, t_x: np.ndarray, age: np.ndarray) -> np.ndarray:
    """Individual log-likelihoods, FHL (2005) equation (6), in log-sum-exp form.

    ``L = B(a, b+x)/B(a, b) * G(r+x) alpha^r / G(r) * [(alpha+T)^-(r+x)
    + 1{x>0} a/(b+x-1) (alpha+t_x)^-(r+x)]``; the bracket is summed as
    ``logaddexp`` so that neither term overflows for large ``x`` or ``T``.
    """
    r, alpha, a, b = params
    x = np.asarray(x, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        common = (
            gammaln(r + x)
            - gammaln(r)
            + r * np.log(alpha)
            + gammaln(b + x)
            - gammaln(a + b + x)
            - gammaln(b)
            + gammaln(a + b)
        )
        u = -(r + x) * np.log(alpha + np.asarray(age, float))
        v = np.where(
            x > 0,
            np.log(a) - np.log(b + x - 1) - (r + x) * np.log(alpha + np.asarray(t_x, float)),
            -np.inf,
        )
    return common + np.logaddexp(u, v)


class _LogLikelihood(LogLikelihood):
    """The BG/NBD log-likelihood of weighted rows, with analytic gradient and Hessian.

    It splits as ``common(x) - (r+x) log(alpha+T) + softplus(z)``, where
    ``z = log(a/(b+x-1)) + (r+x) [log(alpha+T) - log(alpha+t_x)]`` for ``x > 0`` (no
    softplus term for ``x = 0``). The first part is summed per distinct ``x``, the second per
    distinct ``T`` (with weights precomputed), so only ``softplus(z)`` needs a pass over the
    rows, and only over those with a repeat purchase. Its derivatives follow from
    ``softplus' = pi = expit(z)`` (the share of the likelihood from "dropped out after the
    last purchase") and ``softplus'' = pi (1 - pi)``.
    """

    order = 2

    def __init__(self, x: np.ndarray, t_x: np.ndarray, age: np.ndarray, w: np.ndarray) -> None:
        self.total = float(w.sum())
        self.ux, ix = np.unique(x, return_inverse=True)
        self.wx = np.bincount(ix, weights=w, minlength=self.ux.size)
        self.uage, iage = np.unique(age, return_inverse=True)
        self.w_age = np.bincount(iage, weights=w, minlength=self.uage.size)
        self.wx_age = np.bincount(iage, weights=w * x, minlength=self.uage.size)
        repeat = x > 0
        self.xr = x[repeat]
        self.wr = w[repeat]
        self.ixr = ix[repeat]
        self.iager = iage[repeat]
        self.utx, self.itxr = np.unique(t_x[repeat], return_inverse=True)

    def loglik(
        self, theta: np.ndarray, order: int
    ) -> tuple[float, np.ndarray | None, np.ndarray | None]:
        r, alpha, a, b = theta
        ux, wx = self.ux, self.wx
        common = (
            gammaln(r + ux)
            - gammaln(r)
            + r * np.log(alpha)
            + gammaln(b + ux)
            - gammaln(a + b + ux)
            - gammaln(b)
            + gammaln(a + b)
        )
        positive = ux > 0
        log_ratio = np.where(positive, np.log(a) - np.log(b + ux - 1), 0.0)
        inv_bx = np.where(positive, 1.0 / (b + ux - 1), 0.0)
        log_age = np.log(alpha + self.uage)
        log_tx = np.log(alpha + self.utx)
        age_weight = r * self.w_age + self.wx_age  # sum of w (r+x) per distinct T

        rx = r + self.xr
        gap = log_age[self.iager] - log_tx[self.itxr]  # >= 0
        z = log_ratio[self.ixr] + rx * gap
        tail, pi = softplus(z)
        value = float(wx @ common - age_weight @ log_age + self.wr @ tail)
        if order == 0:
            return value, None, None

        inv_age = 1.0 / (alpha + self.uage)
        inv_tx = 1.0 / (alpha + self.utx)
        wpi = self.wr * pi
        wpi_x = np.bincount(self.ixr, weights=wpi, minlength=ux.size)
        d_inv = inv_age[self.iager] - inv_tx[self.itxr]  # dz/dalpha = (r+x) d_inv
        z_alpha = rx * d_inv
        psi_ab, psi_abx = digamma(a + b), digamma(a + b + ux)
        grad = np.array(
            [
                wx @ (digamma(r + ux) - digamma(r) + np.log(alpha))
                - self.w_age @ log_age
                + wpi @ gap,
                self.total * r / alpha - age_weight @ inv_age + wpi @ z_alpha,
                wx @ (psi_ab - psi_abx) + wpi_x.sum() / a,
                wx @ (digamma(b + ux) - psi_abx - digamma(b) + psi_ab) - wpi_x @ inv_bx,
            ]
        )
        if order == 1:
            return value, grad, None

        q = wpi * (1.0 - pi)  # w softplus''(z)
        q_gap = q * gap
        q_alpha = q * z_alpha
        q_x = np.bincount(self.ixr, weights=q, minlength=ux.size)
        q_gap_x = np.bincount(self.ixr, weights=q_gap, minlength=ux.size)
        q_alpha_x = np.bincount(self.ixr, weights=q_alpha, minlength=ux.size)
        d2_inv = (inv_tx**2)[self.itxr] - (inv_age**2)[self.iager]  # d2z/dalpha2 / (r+x)
        tri_ab, tri_abx = polygamma(1, a + b), polygamma(1, a + b + ux)
        h = np.empty((4, 4))
        h[0, 0] = wx @ (polygamma(1, r + ux) - polygamma(1, r)) + q_gap @ gap
        h[0, 1] = self.total / alpha - self.w_age @ inv_age + q_gap @ z_alpha + wpi @ d_inv
        h[0, 2] = q_gap_x.sum() / a
        h[0, 3] = -(q_gap_x @ inv_bx)
        h[1, 1] = (
            -self.total * r / alpha**2
            + age_weight @ inv_age**2
            + q_alpha @ z_alpha
            + (wpi * rx) @ d2_inv
        )
        h[1, 2] = q_alpha_x.sum() / a
        h[1, 3] = -(q_alpha_x @ inv_bx)
        h[2, 2] = wx @ (tri_ab - tri_abx) + (q_x.sum() - wpi_x.sum()) / a**2
        h[2, 3] = wx @ (tri_ab - tri_abx) - (q_x @ inv_bx) / a
        h[3, 3] = (
            wx @ (polygamma(1, b + ux) - tri_abx - polygamma(1, b) + tri_ab)
            + (q_x + wpi_x) @ inv_bx**2
        )
        lower = np.tril_indices(4, -1)
        h[lower] = h.T[lower]
        return value, grad, h


def fit(
    x: np.ndarray,
    t_x: np.ndarray,
    age: np.ndarray,
    weights: np.ndarray | None = None,
) -> FitResult:
    """Maximum-likelihood estimates of ``(r, alpha, a, b)`` with standard errors.

    ``weights`` counts the customers sharing each ``(x, t_x, T)`` row (1 when not given).
    Times are rescaled so that the longest ``T`` is 1 while fitting (as lifetimes does), which
    keeps ``log alpha`` near 0 whatever the time unit; only ``alpha`` depends on the scale.
    """
    x, t_x, age, w = check_purchase_data(MODEL, x, t_x, age, weights)
    scale = 1.0 / float(age.max())
    mean_rate = float(w @ x) / float(w @ (age * scale))  # repeat purchases per scaled unit
    starts = [
        np.log([1.0, 1.0, 1.0, 1.0]),
        np.log([0.5, 0.5 / max(mean_rate, 1e-3), 0.8, 2.5]),
        np.log([0.1, 0.1, 0.1, 0.5]),
        np.log([2.0, 5.0, 3.0, 8.0]),
    ]
    return fit_purchase_likelihood(
        model=MODEL,
        names=PARAMS,
        likelihood=_LogLikelihood,
        x=x,
        t_x=t_x,
        age=age,
        w=w,
        scale=scale,
        starts=starts,
        rate_params=(1,),
    )


def check_purchase_data(
    model: str,
    x: np.ndarray,
    t_x: np.ndarray,
    age: np.ndarray,
    weights: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Arrays as float, weights defaulted; raises :class:`ModelFitError` on unusable data."""
    x = np.asarray(x, dtype=float).ravel()
    t_x = np.asarray(t_x, dtype=float).ravel()
    age = np.asarray(age, dtype=float).ravel()
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float).ravel()
    if not (x.size == t_x.size == age.size == w.size):
        raise ValueError("frequency, recency, T and weights must have the same length")
    keep = w > 0
    x, t_x, age, w = x[keep], t_x[keep], age[keep], w[keep]
    n = round(float(w.sum()))
    if x.size == 0:
        raise ModelFitError("analytics.fit.no_customers", model=model)
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(t_x)) and np.all(np.isfinite(age))):
        raise ModelFitError("analytics.fit.bad_data", model=model)
    bad = (x < 0) | (x != np.round(x)) | (t_x < 0) | (t_x > age) | ((x == 0) & (t_x != 0))
    if bad.any():
        raise ModelFitError("analytics.fit.bad_data", model=model)
    if not (w @ x > 0):
        raise ModelFitError("analytics.fit.no_repeat", model=model, n=n)
    if not (age.max() > 0):
        raise ModelFitError("analytics.fit.no_time", model=model, n=n)
    return x, t_x, age, w


def p_alive(params: Params, x: np.ndarray, t_x: np.ndarray, age: np.ndarray) -> np.ndarray:
    """P(active at T | x, t_x, T), Fader, Hardie and Lee (2008), note 021.

    ``1 / (1 + 1{x>0} a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))``, computed as a logistic of
    the log-odds so a large ``x`` or a long silence gives 0 or 1, never NaN.
    """
    r, alpha, a, b = params
    x = np.asarray(x, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_odds = (
            np.log(a)
            - np.log(b + np.maximum(x, 1) - 1)
            + (r + x) * (np.log(alpha + np.asarray(age, float)) - np.log(alpha + t_x))
        )
    return np.where(x > 0, expit(-log_odds), 1.0)


def _bracket(params: Params, t: np.ndarray | float, x: np.ndarray, age: np.ndarray) -> np.ndarray:
    """``1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z)``, ``z = t/(alpha+T+t)``.

    Euler's transformation ``2F1(A, B; C; z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z)`` turns the
    product into ``(1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z)``: ``x`` moves to the lower
    parameter only, so the series shrinks as ``x`` grows. The direct form overflows for
    heavy buyers (``2F1`` beyond 1e308 times a power below 1e-308: NaN); lifetimes switches
    to this form only after getting ``inf``.
    """
    r, alpha, a, b = params
    z = t / (alpha + age + t)
    log_1mz = np.log1p(-z)
    hyp = hyp2f1_safe(a + b - 1 - r, a - 1, a + b + x - 1, z)
    # 1 - (1-z)^(a-1) * hyp, split so that small t loses no digits.
    return -np.expm1((a - 1) * log_1mz) - np.exp((a - 1) * log_1mz) * (hyp - 1.0)


def _bracket_ratio(
    params: Params, t: np.ndarray | float, x: np.ndarray, age: np.ndarray
) -> np.ndarray:
    """``bracket / (a - 1)``, which stays finite as ``a`` goes to 1 (both parts vanish).

    Within 1e-7 of ``a = 1`` it is the mean of the values just either side.
    """
    r, alpha, a, b = params
    if abs(a - 1.0) > 1e-7:
        return _bracket(params, t, x, age) / (a - 1.0)
    step = 1e-7
    below = _bracket((r, alpha, 1.0 - step, b), t, x, age) / -step
    above = _bracket((r, alpha, 1.0 + step, b), t, x, age) / step
    return (below + above) / 2


def cumulative_expected_purchases(
    params: Params,
    horizons: Sequence[float],
    x: np.ndarray,
    t_x: np.ndarray,
    age: np.ndarray,
    *,
    combine: np.ndarray | None = None,
    alive: np.ndarray | None = None,
) -> np.ndarray:
    """E[Y(t) | x, t_x, T] for each horizon ``t``: an array of shape (horizons, customers).

    FHL (2005) equation (10): ``(a+b+x-1)/(a-1) * bracket / (1 + 1{x>0} a/(b+x-1)
    ((alpha+T)/(alpha+t_x))^(r+x))``; the denominator is ``1 / P(alive)``. The
    hypergeometric part depends on ``(x, T)`` only, so it is computed once per distinct pair.
    With ``combine`` (a matrix, one row of weights over the horizons per output row) the
    result is ``combine @ E``, formed on the distinct pairs before spreading to customers:
    this is how CLV discounts a month-by-month path without a (horizons x customers) array.
    ``alive`` may pass :func:`p_alive` when the caller has it already.
    """
    _, _, a, b = params
    x = np.asarray(x, dtype=float).ravel()
    t_x = np.asarray(t_x, dtype=float).ravel()
    age = np.asarray(age, dtype=float).ravel()
    (ux, uage), inverse = unique_inverse(x, age)
    brackets = np.zeros((len(horizons), ux.size))
    for i, t in enumerate(horizons):
        if t > 0:
            brackets[i] = _bracket_ratio(params, float(t), ux, uage)
    if combine is not None:
        brackets = np.atleast_2d(np.asarray(combine, dtype=float)) @ brackets
    if alive is None:
        alive = p_alive(params, x, t_x, age)
    return brackets[:, inverse] * ((a + b + x - 1) * alive)


def conditional_expected_purchases(
    params: Params,
    t: float,
    x: np.ndarray,
    t_x: np.ndarray,
    age: np.ndarray,
    *,
    alive: np.ndarray | None = None,
) -> np.ndarray:
    """Expected repeat purchases in the next ``t`` time units, given the history."""
    return cumulative_expected_purchases(params, [t], x, t_x, age, alive=alive)[0]


def expected_purchases(params: Params, t: np.ndarray | float) -> np.ndarray:
    """E[X(t)] for a new customer, FHL (2005) equation (9).

    ``(a+b-1)/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1; t/(alpha+t))]``: the
    conditional formula at ``x = 0, T = 0`` (where P(alive) is 1).
    """
    _, _, a, b = params
    t = np.asarray(t, dtype=float)
    zero = np.zeros_like(t)
    positive = np.where(t > 0, t, 1.0)
    value = (a + b - 1) * _bracket_ratio(params, positive, zero, zero)
    return np.where(t > 0, value, 0.0)
