"""The Gamma-Gamma model of spend per transaction (Fader, Hardie and Lee 2005).

Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005), "RFM and CLV: Using Iso-Value Curves
for Customer Base Analysis", *Journal of Marketing Research* 42 (4), 415-430; and Fader and
Hardie (2013), "The Gamma-Gamma Model of Monetary Value" (brucehardie.com note 025).

A customer's transaction values are ``Gamma(p, nu)`` (shape ``p``, rate ``nu``), with
``nu ~ Gamma(q, gamma)`` across customers. Only the mean ``m`` of a customer's ``x`` repeat
transactions is used; spend is assumed independent of purchase frequency (check it with
:func:`spend_frequency_correlation` before trusting CLV). Parameters: ``(p, q, gamma)``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import digamma, gammaln, polygamma

from memberlab.analytics.fitting import (
    WARM_ROWS,
    FitResult,
    FitWarning,
    LogLikelihood,
    ModelFitError,
    build_result,
    maximise_likelihood,
    subsample,
    warm_start,
)

__all__ = [
    "CORRELATION_LIMIT",
    "PARAMS",
    "conditional_expected_spend",
    "fit",
    "log_likelihood",
    "spend_frequency_correlation",
]

MODEL = "Gamma-Gamma"
PARAMS = ("p", "q", "gamma")
Params = tuple[float, float, float]
# Above this |Pearson r| between frequency and mean spend, the independence assumption
# behind the model is doubtful (a common rule of thumb; FHL 2005 report 0.11 on CDNOW).
CORRELATION_LIMIT = 0.3


def log_likelihood(params: Params, x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Log-density of the mean spend ``m`` of ``x`` transactions, note 025 equation (1a).

    ``G(px+q)/(G(px) G(q)) gamma^q m^(px-1) x^(px) / (gamma + m x)^(px+q)``.
    """
    p, q, gamma = params
    x = np.asarray(x, dtype=float)
    m = np.asarray(m, dtype=float)
    px = p * x
    return (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(gamma)
        + (px - 1) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(gamma + m * x)
    )


class _LogLikelihood(LogLikelihood):
    """The Gamma-Gamma log-likelihood of weighted rows, with analytic gradient and Hessian.

    The gamma functions depend on ``x`` only (one value per distinct frequency) and the
    ``log m``, ``log x`` terms are linear in ``p`` (their weighted sums are computed once), so
    only ``log(gamma + m x)`` and ``1/(gamma + m x)`` need a pass over the customers.
    """

    order = 2

    def __init__(self, x: np.ndarray, m: np.ndarray, w: np.ndarray) -> None:
        self.total = float(w.sum())
        self.ux, ix = np.unique(x, return_inverse=True)
        self.wx = np.bincount(ix, weights=w, minlength=self.ux.size)
        self.w, self.w_x = w, w * x
        self.mx = m * x
        log_m = np.log(m)
        self.sum_w_log_m = float(w @ log_m)
        self.sum_wx_log_mx = float(self.w_x @ (log_m + np.log(x)))

    def loglik(
        self, theta: np.ndarray, order: int
    ) -> tuple[float, np.ndarray | None, np.ndarray | None]:
        p, q, gamma = theta
        ux, wx, total = self.ux, self.wx, self.total
        pux = p * ux
        log_gm = np.log(gamma + self.mx)
        s_log = float(self.w @ log_gm)  # sum w log(gamma + m x)
        s_x_log = float(self.w_x @ log_gm)  # sum w x log(gamma + m x)
        value = (
            wx @ (gammaln(pux + q) - gammaln(pux))
            + total * (q * np.log(gamma) - gammaln(q))
            + p * self.sum_wx_log_mx
            - self.sum_w_log_m
            - p * s_x_log
            - q * s_log
        )
        if order == 0:
            return float(value), None, None
        psi_pxq = digamma(pux + q)
        inv = 1.0 / (gamma + self.mx)
        s_inv = float(self.w @ inv)
        s_x_inv = float(self.w_x @ inv)
        grad = np.array(
            [
                (wx * ux) @ (psi_pxq - digamma(pux)) + self.sum_wx_log_mx - s_x_log,
                wx @ psi_pxq + total * (np.log(gamma) - digamma(q)) - s_log,
                total * q / gamma - p * s_x_inv - q * s_inv,
            ]
        )
        if order == 1:
            return float(value), grad, None
        inv2 = inv * inv
        s_inv2 = float(self.w @ inv2)
        s_x_inv2 = float(self.w_x @ inv2)
        tri_pxq = polygamma(1, pux + q)
        h = np.empty((3, 3))
        h[0, 0] = (wx * ux * ux) @ (tri_pxq - polygamma(1, pux))
        h[0, 1] = h[1, 0] = (wx * ux) @ tri_pxq
        h[0, 2] = h[2, 0] = -s_x_inv
        h[1, 1] = wx @ tri_pxq - total * polygamma(1, q)
        h[1, 2] = h[2, 1] = total / gamma - s_inv
        h[2, 2] = -total * q / gamma**2 + p * s_x_inv2 + q * s_inv2
        return float(value), grad, h


def spend_frequency_correlation(
    x: np.ndarray, m: np.ndarray, weights: np.ndarray | None = None
) -> float:
    """Pearson correlation of repeat frequency and mean spend among repeat customers.

    The Gamma-Gamma model assumes the two are independent (FHL 2005 report r = 0.11 on
    CDNOW); a strong correlation biases its CLV. ``weights`` counts customers per row (a
    weighted correlation equals the one over the expanded rows). NaN when undefined.
    """
    x = np.asarray(x, dtype=float).ravel()
    m = np.asarray(m, dtype=float).ravel()
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float).ravel()
    keep = (x > 0) & np.isfinite(m) & (w > 0)
    x, m, w = x[keep], m[keep], w[keep]
    if w.sum() < 3:
        return float("nan")
    dx = x - (w @ x) / w.sum()
    dm = m - (w @ m) / w.sum()
    denominator = np.sqrt((w @ (dx * dx)) * (w @ (dm * dm)))
    if not denominator > 0:
        return float("nan")
    return float((w @ (dx * dm)) / denominator)


def fit(
    x: np.ndarray,
    m: np.ndarray,
    weights: np.ndarray | None = None,
) -> FitResult:
    """Maximum-likelihood estimates of ``(p, q, gamma)`` on customers with ``x > 0``.

    Customers without a repeat purchase carry no spend information and are left out;
    customers with a non-positive mean spend (returns exceeding purchases) are left out with
    a warning. The fit also warns when frequency and spend are correlated
    (|r| > ``CORRELATION_LIMIT``) and when ``q <= 1`` (the mean spend is then infinite and
    the conditional expectation undefined).
    """
    x = np.asarray(x, dtype=float).ravel()
    m = np.asarray(m, dtype=float).ravel()
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float).ravel()
    if not (x.size == m.size == w.size):
        raise ValueError("frequency, monetary value and weights must have the same length")
    warnings: list[FitWarning] = []
    repeat = (x > 0) & (w > 0)
    usable = repeat & np.isfinite(m) & (m > 0)
    dropped = round(float(w[repeat & ~usable].sum()))
    if dropped:
        warnings.append(FitWarning("analytics.warn.non_positive_spend", {"n": dropped}))
    x, m, w = x[usable], m[usable], w[usable]
    if x.size == 0:
        raise ModelFitError("analytics.fit.no_repeat_spend", model=MODEL)
    if np.any(x != np.round(x)):
        raise ModelFitError("analytics.fit.bad_data", model=MODEL)

    correlation = spend_frequency_correlation(x, m, w)
    if np.isfinite(correlation) and abs(correlation) > CORRELATION_LIMIT:
        warnings.append(
            FitWarning(
                "analytics.warn.spend_correlation",
                {"r": f"{correlation:.2f}", "limit": f"{CORRELATION_LIMIT:.1f}"},
            )
        )

    objective = _LogLikelihood(x, m, w)
    mean_spend = float(w @ m) / float(w.sum())
    starts = [
        np.log([1.0, 1.0, 1.0]),
        np.log([2.0, 3.0, max(mean_spend, 1e-6)]),  # p gamma/(q-1) = mean spend
        np.log([5.0, 5.0, 5.0 * max(mean_spend, 1e-6)]),
    ]
    if x.size > WARM_ROWS:
        pick = subsample(x.size, WARM_ROWS)
        start = warm_start(_LogLikelihood(x[pick], m[pick], w[pick]), starts)
        starts = starts if start is None else [start, *starts]
    logp, log_cov, iterations, message = maximise_likelihood(
        model=MODEL,
        names=PARAMS,
        objective=objective,
        starts=starts,
    )
    natural = np.exp(logp)
    if natural[1] <= 1:
        warnings.append(FitWarning("analytics.warn.q_at_most_one", {"q": f"{natural[1]:.3f}"}))
    loglik = -objective.value(logp) * objective.total
    return build_result(
        model=MODEL,
        names=PARAMS,
        natural=natural,
        log_covariance=log_cov,
        loglik=loglik,
        n=round(float(w.sum())),
        iterations=iterations,
        message=message,
        warnings=warnings,
    )


def conditional_expected_spend(params: Params, x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """E[spend per transaction | x, m], note 025 equation (5).

    ``(q-1)/(px+q-1) * p gamma/(q-1) + px/(px+q-1) * m = p (gamma + x m)/(px+q-1)``:
    a weighted average of the population mean and the customer's own mean. For ``x = 0``
    it is the population mean ``p gamma/(q-1)``. Needs ``q > 1``.
    """
    p, q, gamma = params
    if q <= 1:
        raise ModelFitError("analytics.fit.spend_mean_infinite", model=MODEL, q=f"{q:.3f}")
    x = np.asarray(x, dtype=float)
    m = np.where(x > 0, np.asarray(m, dtype=float), 0.0)
    return p * (gamma + x * m) / (p * x + q - 1)
