"""Maximum-likelihood machinery shared by the lifetime-value models.

Every model is fitted the same way:

1. the data are collapsed to distinct rows with a weight (the number of customers with that
   history), so the cost of a likelihood evaluation grows with the number of distinct
   histories, not of customers; the model's :class:`LogLikelihood` also computes each term
   once per distinct value of what it depends on (``x``, ``T``, ...);
2. the mean negative log-likelihood is minimised over the logarithms of the parameters
   (they are all positive). Models with an analytic Hessian (BG/NBD, Gamma-Gamma) use a
   trust-region Newton method (``trust-exact``): a handful of iterations, each one pass over
   the data. Pareto/NBD has an analytic gradient only: L-BFGS-B, then a few Newton steps on
   a Hessian by differences of the gradient, since L-BFGS-B stops on a relative change of
   the objective that can leave the estimates a little short of the optimum;
3. with many distinct rows, a fit on a fixed random subsample gives the starting point, so
   that the full-data iterations start next to the optimum; otherwise a few fixed starting
   points are tried in turn until one converges;
4. the estimates must be interior (no parameter running off to 0 or infinity), the gradient
   small, and the Hessian of the total negative log-likelihood positive definite and well
   conditioned: its inverse is the covariance of the log-parameters, carried to the natural
   parameters by the delta method (``d theta / d log theta = theta``).

Any failure along the way raises :class:`ModelFitError`; a fit never returns estimates that
the data do not support.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import minimize

from memberlab.core.errors import MemberLabError
from memberlab.core.i18n import Language, t

__all__ = [
    "FitResult",
    "FitWarning",
    "LogLikelihood",
    "ModelFitError",
    "maximise_likelihood",
]

# Box for the optimiser on the log-parameters, and the edge beyond which an estimate counts
# as running off to 0 or infinity: with time rescaled to a longest T of 1, no sensible
# parameter is beyond exp(+-20) (5e8). An "optimum" out there means the likelihood keeps
# improving as a parameter runs off: the data do not identify it.
LOG_BOUND = 30.0
RUNAWAY = 20.0
# An estimate whose standard error is this many times itself says nothing.
RELATIVE_SE_LIMIT = 100.0
# A converged optimum has a small gradient of the *mean* negative log-likelihood.
GRADIENT_TOLERANCE = 1e-4
# Below this ratio of smallest to largest Hessian eigenvalue a direction is flat.
CONDITION_LIMIT = 1e-10


class ModelFitError(MemberLabError):
    """A model could not be fitted to these data; the message says why and what to try."""

    status = 422
    key = "analytics.fit.failed"
    title_key = "analytics.title.fit_failed"


@dataclass(frozen=True)
class FitWarning:
    """Something the analyst should know about a fit that did succeed (a message key)."""

    key: str
    params: dict[str, Any] = field(default_factory=dict)

    def message(self, lang: Language | None = None) -> str:
        return t(self.key, lang, **self.params)

    def __str__(self) -> str:
        return self.message("en")


@dataclass(frozen=True)
class FitResult:
    """Maximum-likelihood estimates of one model, with their standard errors.

    ``loglik`` is the log-likelihood of the data at the estimates (natural time units, as
    published by Fader, Hardie and Lee); ``n`` is the number of customers;
    ``covariance`` is the asymptotic covariance of the natural parameters, in ``params``
    order.
    """

    model: str
    params: dict[str, float]
    standard_errors: dict[str, float]
    loglik: float
    n: int
    converged: bool
    iterations: int
    message: str
    covariance: np.ndarray = field(repr=False, compare=False)
    warnings: tuple[FitWarning, ...] = ()

    @property
    def values(self) -> tuple[float, ...]:
        """The parameters as a tuple, in the model's order (what the model functions take)."""
        return tuple(self.params.values())

    def as_dict(self, lang: Language | None = None) -> dict[str, Any]:
        """A JSON-ready view: parameters, standard errors, log-likelihood, diagnostics."""
        return {
            "model": self.model,
            "params": dict(self.params),
            "standard_errors": dict(self.standard_errors),
            "loglik": self.loglik,
            "n": self.n,
            "converged": self.converged,
            "iterations": self.iterations,
            "message": self.message,
            "warnings": [w.message(lang) for w in self.warnings],
        }


class LogLikelihood:
    """A model's weighted log-likelihood on fixed data, seen by the optimiser.

    Subclasses implement :meth:`loglik`: the *total* log-likelihood at the (working) natural
    parameters ``theta`` and, up to ``self.order``, its gradient and Hessian in ``theta``.
    This base turns them into the mean negative log-likelihood over ``w = log theta``
    (chain rule: ``df/dw_i = theta_i f_i``; ``d2f/dw_i dw_j = theta_i theta_j f_ij
    + [i = j] theta_i f_i``) and caches the last point, since optimisers ask for the value,
    gradient and Hessian at one point in separate calls.
    """

    order = 0  # highest derivative loglik() can compute: 0, 1 or 2
    total = 1.0  # total weight (customers)
    _cache: tuple[bytes, int, float, np.ndarray | None, np.ndarray | None] | None = None

    def loglik(
        self, theta: np.ndarray, order: int
    ) -> tuple[float, np.ndarray | None, np.ndarray | None]:
        raise NotImplementedError

    def _at(self, w: np.ndarray, order: int) -> tuple[float, np.ndarray | None, np.ndarray | None]:
        w = np.asarray(w, dtype=float)
        key = w.tobytes()
        if self._cache is not None and self._cache[0] == key and self._cache[1] >= order:
            return self._cache[2], self._cache[3], self._cache[4]
        # The trust-region method asks for the value at a point, then for the gradient and
        # Hessian there once it accepts the step (nearly always near the optimum): computing
        # everything at once costs far less than a second pass over the data.
        order = self.order
        theta = np.exp(w)
        with np.errstate(all="ignore"):
            ll, grad, hess = self.loglik(theta, order)
        value = -ll / self.total if np.isfinite(ll) else np.inf
        g = None if grad is None else -(theta * grad) / self.total
        h = None
        if hess is not None and grad is not None:
            h = -(np.outer(theta, theta) * hess + np.diag(theta * grad)) / self.total
        self._cache = (key, order, value, g, h)
        return value, g, h

    def value(self, w: np.ndarray) -> float:
        return self._at(w, 0)[0]

    def gradient(self, w: np.ndarray) -> np.ndarray:
        if self.order < 1:
            return numerical_gradient(self.value, np.asarray(w, dtype=float))
        grad = self._at(w, 1)[1]
        assert grad is not None
        return grad

    def hessian(self, w: np.ndarray) -> np.ndarray:
        if self.order < 2:
            return numerical_hessian(self.gradient, np.asarray(w, dtype=float))
        hess = self._at(w, 2)[2]
        assert hess is not None
        return hess


def numerical_gradient(
    objective: Callable[[np.ndarray], float], w: np.ndarray, step: float = 1e-6
) -> np.ndarray:
    """Central differences; the objective is smooth and cheap on collapsed data."""
    grad = np.empty_like(w)
    for i in range(w.size):
        e = np.zeros_like(w)
        e[i] = step
        grad[i] = (objective(w + e) - objective(w - e)) / (2 * step)
    return grad


def numerical_hessian(
    gradient: Callable[[np.ndarray], np.ndarray], w: np.ndarray, step: float = 1e-4
) -> np.ndarray:
    """Hessian by central differences of the gradient, symmetrised."""
    k = w.size
    hess = np.empty((k, k))
    for j in range(k):
        e = np.zeros(k)
        e[j] = step
        hess[:, j] = (gradient(w + e) - gradient(w - e)) / (2 * step)
    return (hess + hess.T) / 2


def _newton_polish(
    objective: LogLikelihood, w: np.ndarray, steps: int = 6
) -> tuple[np.ndarray, int]:
    """A few damped Newton steps from an L-BFGS-B optimum; stops when they stop helping."""
    f = objective.value(w)
    done = 0
    for _ in range(steps):
        g = objective.gradient(w)
        if np.max(np.abs(g)) < 1e-9:
            break  # already as good as the data's rounding allows
        hess = objective.hessian(w)
        try:
            np.linalg.cholesky(hess)
            direction = -np.linalg.solve(hess, g)
        except np.linalg.LinAlgError:
            break
        improved = False
        for damping in (1.0, 0.5, 0.25, 0.125):
            candidate = np.clip(w + damping * direction, -LOG_BOUND, LOG_BOUND)
            f_new = objective.value(candidate)
            if np.isfinite(f_new) and f_new <= f:
                w, f, improved = candidate, f_new, True
                break
        done += 1
        if not improved or np.max(np.abs(direction)) < 1e-12:
            break
    return w, done


def _run(objective: LogLikelihood, start: np.ndarray) -> tuple[np.ndarray, int, str]:
    """One optimisation from one start: trust region with an exact Hessian when the model
    has one (a handful of iterations, each one pass over the data), else L-BFGS-B."""
    if objective.order >= 2:
        result = minimize(
            objective.value,
            start,
            jac=objective.gradient,
            hess=objective.hessian,
            method="trust-exact",
            options={"gtol": 1e-10, "maxiter": 200},
        )
        return np.asarray(result.x, dtype=float), int(result.nit), str(result.message)

    def fun(w: np.ndarray) -> tuple[float, np.ndarray]:
        value = objective.value(w)
        if not np.isfinite(value):
            return 1e300, np.zeros_like(w)  # L-BFGS-B backs off from a large value
        return value, objective.gradient(w)

    result = minimize(
        fun,
        start,
        jac=True,
        method="L-BFGS-B",
        bounds=[(-LOG_BOUND, LOG_BOUND)] * start.size,
        options={"maxiter": 500, "ftol": 1e-14, "gtol": 1e-9},
    )
    w, polish = _newton_polish(objective, np.asarray(result.x, dtype=float))
    return w, int(result.nit) + polish, str(result.message)


# Above this many distinct rows, a fit first runs on a random subsample of this size.
WARM_ROWS = 50_000


def subsample(n: int, size: int) -> np.ndarray:
    """A fixed pseudo-random subset of row indices (fixed seed: fits are reproducible)."""
    return np.sort(np.random.default_rng(20050101).choice(n, size=size, replace=False))


def warm_start(objective: LogLikelihood, starts: Sequence[np.ndarray]) -> np.ndarray | None:
    """An approximate optimum on a subsample, to start the full fit close to the answer.

    Near the optimum the trust-region method converges quadratically, so a start from a
    subsample fit saves most of the (expensive) iterations on the full data.
    """
    for start in starts:
        if not np.isfinite(objective.value(start)):
            continue
        w, _, _ = _run(objective, np.asarray(start, dtype=float))
        if np.all(np.isfinite(w)) and np.all(np.abs(w) < RUNAWAY):
            return w
    return None


def maximise_likelihood(
    *,
    model: str,
    names: Sequence[str],
    objective: LogLikelihood,
    starts: Sequence[np.ndarray],
) -> tuple[np.ndarray, np.ndarray, int, str]:
    """Minimise a mean negative log-likelihood over log-parameters.

    Returns the log-parameters at the optimum, the covariance of the log-parameters (inverse
    Hessian of the *total* negative log-likelihood), the number of iterations and the
    optimiser's message. Raises :class:`ModelFitError` when no start converges to an interior
    optimum with a positive definite, well-conditioned Hessian.
    """
    # Why the last start failed, as a message key and its parameters.
    failure: tuple[str, dict[str, Any]] = ("analytics.fit.not_finite", {})
    best: tuple[np.ndarray, int, str] | None = None
    for start in starts:
        if not np.isfinite(objective.value(start)):
            failure = ("analytics.fit.not_finite", {})
            continue
        w, iterations, message = _run(objective, np.asarray(start, dtype=float))
        if not (np.all(np.isfinite(w)) and np.isfinite(objective.value(w))):
            failure = ("analytics.fit.not_finite", {})
            continue
        runaway = np.abs(w) >= RUNAWAY
        if runaway.any():
            failed = ", ".join(n for n, b in zip(names, runaway, strict=True) if b)
            failure = ("analytics.fit.boundary", {"params": failed})
            continue
        largest = float(np.max(np.abs(objective.gradient(w))))
        if largest > GRADIENT_TOLERANCE:
            failure = ("analytics.fit.stopped", {"detail": message})
            continue
        best = (w, iterations, f"converged, largest gradient {largest:.1e} ({message})")
        break  # the first start that converges is the answer; the others are fall-backs

    if best is None:
        key, params = failure
        raise ModelFitError(key, model=model, **params)

    w, iterations, message = best
    hess = objective.hessian(w) * objective.total
    if not np.all(np.isfinite(hess)):
        raise ModelFitError("analytics.fit.not_identified", model=model)
    eigenvalues = np.linalg.eigvalsh(hess)
    if eigenvalues[0] <= 0 or eigenvalues[0] < CONDITION_LIMIT * eigenvalues[-1]:
        raise ModelFitError("analytics.fit.not_identified", model=model)
    covariance = np.linalg.inv(hess)
    covariance = (covariance + covariance.T) / 2
    # sqrt(var(log theta)) is the relative standard error of theta (delta method).
    if np.any(np.sqrt(np.diag(covariance)) > RELATIVE_SE_LIMIT):
        raise ModelFitError("analytics.fit.not_identified", model=model)
    return w, covariance, iterations, message


def delta_method(natural: np.ndarray, log_covariance: np.ndarray) -> np.ndarray:
    """Covariance of ``theta = exp(w) * c`` from that of ``w``: ``J C J``, ``J = diag(theta)``."""
    jacobian = np.diag(natural)
    return jacobian @ log_covariance @ jacobian


def build_result(
    *,
    model: str,
    names: Sequence[str],
    natural: np.ndarray,
    log_covariance: np.ndarray,
    loglik: float,
    n: int,
    iterations: int,
    message: str,
    warnings: Sequence[FitWarning] = (),
) -> FitResult:
    """Assemble a :class:`FitResult`, refusing non-finite estimates or standard errors."""
    covariance = delta_method(natural, log_covariance)
    errors = np.sqrt(np.diag(covariance))
    if not (np.all(np.isfinite(natural)) and np.all(np.isfinite(errors)) and np.isfinite(loglik)):
        raise ModelFitError("analytics.fit.not_identified", model=model)
    return FitResult(
        model=model,
        params={name: float(v) for name, v in zip(names, natural, strict=True)},
        standard_errors={name: float(e) for name, e in zip(names, errors, strict=True)},
        loglik=float(loglik),
        n=int(n),
        converged=True,
        iterations=iterations,
        message=message,
        covariance=covariance,
        warnings=tuple(warnings),
    )


def fit_purchase_likelihood(
    *,
    model: str,
    names: Sequence[str],
    likelihood: Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], LogLikelihood],
    x: np.ndarray,
    t_x: np.ndarray,
    age: np.ndarray,
    w: np.ndarray,
    scale: float,
    starts: list[np.ndarray],
    rate_params: Sequence[int],
) -> FitResult:
    """The fit both purchase models share, on times rescaled by ``scale``.

    A warm start from a subsample on big data, the likelihood maximised from each start, the
    rate parameters (``rate_params``, per unit of time) scaled back, and the log-likelihood
    shifted back to the natural time unit: rescaling time by s multiplies each customer's
    likelihood by s^-x (FHL 2005, (6)).
    """
    objective = likelihood(x, t_x * scale, age * scale, w)
    if x.size > WARM_ROWS:
        pick = subsample(x.size, WARM_ROWS)
        sample = likelihood(x[pick], t_x[pick] * scale, age[pick] * scale, w[pick])
        start = warm_start(sample, starts)
        starts = starts if start is None else [start, *starts]
    logp, log_cov, iterations, message = maximise_likelihood(
        model=model, names=names, objective=objective, starts=starts
    )
    natural = np.exp(logp)
    for index in rate_params:
        natural[index] /= scale
    loglik = -objective.value(logp) * objective.total + np.log(scale) * float(w @ x)
    return build_result(
        model=model,
        names=names,
        natural=natural,
        log_covariance=log_cov,
        loglik=loglik,
        n=round(float(w.sum())),
        iterations=iterations,
        message=message,
    )
