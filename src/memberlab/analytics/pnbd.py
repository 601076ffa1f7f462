"""The Pareto/NBD purchase model (Schmittlein, Morrison and Colombo 1987).

Formulas from Fader, P. S. and Hardie, B. G. S. (2005), "A Note on Deriving the Pareto/NBD
Model and Related Expressions" (brucehardie.com note 009), equations (18)-(20), (27), (36)-(37)
and (41); published CDNOW estimates in Fader, Hardie and Lee (2005), *Marketing Science*.

While active, a customer buys as a Poisson process with rate ``lambda ~ Gamma(r, alpha)``; the
unobserved lifetime is exponential with rate ``mu ~ Gamma(s, beta)``. Parameters are the tuple
``(r, alpha, s, beta)``; histories ``(x, t_x, T)`` as for BG/NBD.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import digamma, expit, gammaln

from memberlab.analytics.bgnbd import check_purchase_data
from memberlab.analytics.fitting import (
    FitResult,
    LogLikelihood,
    fit_purchase_likelihood,
)
from memberlab.analytics.special import hyp2f1_safe, hyp2f1_unit, log1mexp, unique_inverse

__all__ = [
    "PARAMS",
    "conditional_expected_purchases",
    "cumulative_expected_purchases",
    "expected_purchases",
    "fit",
    "log_likelihood",
    "p_alive",
]

MODEL = "Pareto/NBD"
PARAMS = ("r", "alpha", "s", "beta")
Params = tuple[float, float, float, float]


def _log_term(params: Params, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``log [2F1(r+s+x, c; r+s+x+1; |alpha-beta|/(max+y)) / (max+y)^(r+s+x)]`` (note 009).

    With ``alpha >= beta`` (``c = s+1``) Euler's transformation gives
    ``(beta+y)^-s (alpha+y)^-(r+x) 2F1(1, r+x; r+s+x+1; z)``; with ``alpha < beta``
    (``c = r+x``) it gives ``(alpha+y)^(1-r-x) (beta+y)^-(s+1) 2F1(1, s+1; r+s+x+1; z)``.
    The remaining series have terms that shrink geometrically and a sum below ``1/(1-z)``, so
    nothing overflows however large ``x`` is; the powers are taken as logarithms.
    """
    r, alpha, s, beta = params
    if alpha >= beta:
        z = (alpha - beta) / (alpha + y)
        hyp = hyp2f1_safe(1.0, r + x, r + s + x + 1.0, z)
        return -s * np.log(beta + y) - (r + x) * np.log(alpha + y) + np.log(hyp)
    z = (beta - alpha) / (beta + y)
    hyp = hyp2f1_safe(1.0, s + 1.0, r + s + x + 1.0, z)
    return (1.0 - r - x) * np.log(alpha + y) - (s + 1.0) * np.log(beta + y) + np.log(hyp)


def _log_term_gradient(
    params: Params, x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_log_term` and its gradient in ``(r, alpha, s, beta)`` (shape ``(4, n)``).

    ``F = 2F1(1, B; C; z)`` comes with ``dF/dB``, ``dF/dC``, ``dF/dz`` from
    :func:`hyp2f1_unit`; ``C = r+s+x+1`` moves with ``r`` and ``s``, ``B`` with ``r``
    (``alpha >= beta``) or ``s`` (``alpha < beta``), ``z`` with ``alpha`` and ``beta``.
    """
    r, alpha, s, beta = params
    log_a, log_b = np.log(alpha + y), np.log(beta + y)
    grad = np.empty((4, y.size))
    if alpha >= beta:
        z = (alpha - beta) / (alpha + y)
        f, f_b, f_c, f_z = hyp2f1_unit(r + x, r + s + x + 1.0, z)
        value = -s * log_b - (r + x) * log_a + np.log(f)
        grad[0] = -log_a + (f_b + f_c) / f
        grad[1] = -(r + x) / (alpha + y) + f_z / f * (beta + y) / (alpha + y) ** 2
        grad[2] = -log_b + f_c / f
        grad[3] = -s / (beta + y) - f_z / f / (alpha + y)
        return value, grad
    z = (beta - alpha) / (beta + y)
    f, f_b, f_c, f_z = hyp2f1_unit(s + 1.0, r + s + x + 1.0, z)
    value = (1.0 - r - x) * log_a - (s + 1.0) * log_b + np.log(f)
    grad[0] = -log_a + f_c / f
    grad[1] = (1.0 - r - x) / (alpha + y) - f_z / f / (beta + y)
    grad[2] = -log_b + (f_b + f_c) / f
    grad[3] = -(s + 1.0) / (beta + y) + f_z / f * (alpha + y) / (beta + y) ** 2
    return value, grad


def _log_a0(params: Params, x: np.ndarray, t_x: np.ndarray, age: np.ndarray) -> np.ndarray:
    """``log A_0`` of note 009 (19)-(20): the difference of the terms at ``t_x`` and ``T``.

    The term decreases in ``y``, so ``A_0 >= 0``; it is 0 (log: ``-inf``) when ``t_x = T``.
    """
    at_tx = _log_term(params, x, t_x)
    at_age = _log_term(params, x, age)
    with np.errstate(divide="ignore"):
        return at_tx + log1mexp(np.minimum(at_age - at_tx, 0.0))


def _log_likelihood_from(
    params: Params, x: np.ndarray, age: np.ndarray, log_a0: np.ndarray
) -> np.ndarray:
    r, alpha, s, beta = params
    head = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    alive = -(r + x) * np.log(alpha + age) - s * np.log(beta + age)
    dead = np.log(s) - np.log(r + s + x) + log_a0
    return head + np.logaddexp(alive, dead)


def log_likelihood(params: Params, x: np.ndarray, t_x: np.ndarray, age: np.ndarray) -> np.ndarray:
    """Individual log-likelihoods, note 009 equation (18).

    ``L = G(r+x) alpha^r beta^s / G(r) * [1/((alpha+T)^(r+x) (beta+T)^s)
    + s/(r+s+x) A_0]``, summed in log space.
    """
    x = np.asarray(x, dtype=float)
    age = np.asarray(age, dtype=float)
    log_a0 = _log_a0(params, x, np.asarray(t_x, dtype=float), age)
    return _log_likelihood_from(params, x, age, log_a0)


class _LogLikelihood(LogLikelihood):
    """The Pareto/NBD log-likelihood of weighted rows, with its analytic gradient.

    The hypergeometric terms depend on ``(x, t_x)`` and ``(x, T)`` only, so each is evaluated
    once per distinct pair. With ``A_0 = e^l1 - e^l2`` (``l1``, ``l2`` the log-terms at
    ``t_x`` and ``T``) and ``rho = e^(l2-l1)``, ``d log A_0 = (dl1 - rho dl2) / (1 - rho)``;
    the likelihood mixes "alive at T" and "died after t_x" with weight
    ``pi = expit(dead - alive)``. The Hessian, needed only at the optimum, is taken by
    central differences of this gradient.
    """

    order = 1

    def __init__(self, x: np.ndarray, t_x: np.ndarray, age: np.ndarray, w: np.ndarray) -> None:
        (self.xa, self.ya), self.ia = unique_inverse(x, age)
        (self.xt, self.yt), self.it = unique_inverse(x, t_x)
        self.x, self.age, self.w = x, age, w
        self.total = float(w.sum())

    def loglik(
        self, theta: np.ndarray, order: int
    ) -> tuple[float, np.ndarray | None, np.ndarray | None]:
        params = tuple(float(v) for v in theta)
        r, alpha, s, beta = params
        x, age, w = self.x, self.age, self.w
        l1, g1 = _log_term_gradient(params, self.xt, self.yt)
        l2, g2 = _log_term_gradient(params, self.xa, self.ya)
        l1, g1, l2, g2 = l1[self.it], g1[:, self.it], l2[self.ia], g2[:, self.ia]
        gap = np.minimum(l2 - l1, 0.0)
        log_a0 = l1 + log1mexp(gap)
        head = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        log_a, log_b = np.log(alpha + age), np.log(beta + age)
        alive = -(r + x) * log_a - s * log_b
        rsx = r + s + x
        dead = np.log(s) - np.log(rsx) + log_a0
        value = float(w @ (head + np.logaddexp(alive, dead)))

        rho = np.exp(gap)
        with np.errstate(invalid="ignore", divide="ignore"):
            d_log_a0 = (g1 - rho * g2) / (1.0 - rho)
        d_log_a0 = np.where(rho < 1.0, d_log_a0, 0.0)  # t_x = T: no "died" term at all
        pi = expit(dead - alive)
        w_alive, w_dead = w * (1.0 - pi), w * pi
        grad = np.array(
            [
                w @ (digamma(r + x) - digamma(r) + np.log(alpha))
                - w_alive @ log_a
                + w_dead @ (d_log_a0[0] - 1.0 / rsx),
                self.total * r / alpha - w_alive @ ((r + x) / (alpha + age)) + w_dead @ d_log_a0[1],
                self.total * np.log(beta)
                - w_alive @ log_b
                + w_dead @ (1.0 / s - 1.0 / rsx + d_log_a0[2]),
                self.total * s / beta - w_alive @ (s / (beta + age)) + w_dead @ d_log_a0[3],
            ]
        )
        return value, grad, None


def fit(
    x: np.ndarray,
    t_x: np.ndarray,
    age: np.ndarray,
    weights: np.ndarray | None = None,
) -> FitResult:
    """Maximum-likelihood estimates of ``(r, alpha, s, beta)`` with standard errors.

    As for BG/NBD, times are rescaled to a longest ``T`` of 1 while fitting; ``alpha`` and
    ``beta`` are scaled back.
    """
    x, t_x, age, w = check_purchase_data(MODEL, x, t_x, age, weights)
    scale = 1.0 / float(age.max())
    starts = [
        np.log([1.0, 1.0, 1.0, 1.0]),
        np.log([0.5, 0.5, 0.5, 0.5]),
        np.log([0.2, 0.1, 1.5, 2.0]),
        np.log([2.0, 4.0, 0.3, 0.2]),
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
        rate_params=(1, 3),
    )


def _log_odds_dead(params: Params, x: np.ndarray, t_x: np.ndarray, age: np.ndarray) -> np.ndarray:
    """``log [s/(r+s+x) (alpha+T)^(r+x) (beta+T)^s A_0]``: the odds against being alive."""
    r, alpha, s, beta = params
    x = np.asarray(x, dtype=float).ravel()
    t_x = np.asarray(t_x, dtype=float).ravel()
    age = np.asarray(age, dtype=float).ravel()
    # Only (x, t_x, T) matters: evaluate per distinct history.
    (ux, utx, uage), inverse = unique_inverse(x, t_x, age)
    with np.errstate(divide="ignore"):
        log_odds = (
            np.log(s)
            - np.log(r + s + ux)
            + (r + ux) * np.log(alpha + uage)
            + s * np.log(beta + uage)
            + _log_a0(params, ux, utx, uage)
        )
    return log_odds[inverse]


def p_alive(params: Params, x: np.ndarray, t_x: np.ndarray, age: np.ndarray) -> np.ndarray:
    """P(active at T | x, t_x, T), note 009 equations (36)-(37), as a logistic of log-odds."""
    return expit(-_log_odds_dead(params, x, t_x, age))


def _horizon_factor(s: float, beta: float, age: np.ndarray, t: float) -> np.ndarray:
    """``(beta+T)/(s-1) [1 - ((beta+T)/(beta+T+t))^(s-1)]``, with its limit at ``s = 1``."""
    log_ratio = np.log1p(t / (beta + age))  # log((beta+T+t)/(beta+T))
    if abs(s - 1.0) < 1e-10:
        return (beta + age) * log_ratio
    return (beta + age) * -np.expm1(-(s - 1.0) * log_ratio) / (s - 1.0)


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
    """E[Y(t) | x, t_x, T] for each horizon, note 009 equation (41): shape (horizons, n).

    ``P(alive) * (r+x)/(alpha+T) * (beta+T)/(s-1) * [1 - ((beta+T)/(beta+T+t))^(s-1)]``.
    With ``combine`` (weights over the horizons, one row per output row), ``combine @ E``;
    ``alive`` may pass :func:`p_alive` when the caller has it already.
    """
    r, alpha, s, beta = params
    x = np.asarray(x, dtype=float).ravel()
    age = np.asarray(age, dtype=float).ravel()
    weights = np.eye(len(horizons)) if combine is None else np.atleast_2d(combine)
    if alive is None:
        alive = p_alive(params, x, t_x, age)
    rate = alive * (r + x) / (alpha + age)
    out = np.zeros((weights.shape[0], x.size))
    for i, t in enumerate(horizons):
        if t <= 0 or not np.any(weights[:, i]):
            continue
        factor = _horizon_factor(s, beta, age, float(t))
        for k in np.flatnonzero(weights[:, i]):
            out[k] += weights[k, i] * factor
    return out * rate


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
    """E[X(t)] for a new customer, note 009 equation (27): ``r beta/(alpha (s-1)) [1 - ...]``."""
    r, alpha, s, beta = params
    t = np.asarray(t, dtype=float)
    positive = np.where(t > 0, t, 1.0)
    value = r / alpha * _horizon_factor(s, beta, np.zeros_like(positive), positive)
    return np.where(t > 0, value, 0.0)
