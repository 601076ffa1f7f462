"""Numerical safety: no overflow or NaN for heavy buyers and long histories, stable forms
equal to the textbook ones where those work, and analytic derivatives equal to numerical."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import gammaln, hyp2f1

from memberlab.analytics import bgnbd, gamma_gamma, pnbd, special
from memberlab.analytics.fitting import numerical_gradient, numerical_hessian
from memberlab.analytics.simulate import simulate_bgnbd, simulate_pnbd
from memberlab.analytics.special import hyp2f1_safe, hyp2f1_unit, log1mexp, softplus

BG = (0.243, 4.414, 0.793, 2.426)  # CDNOW estimates, weeks
PARETO = (0.553, 10.578, 0.606, 11.669)
PARETO_BETA_SMALL = (0.553, 10.578, 0.606, 2.0)  # the alpha >= beta branch

# Heavy and long-lived customers: up to 2,000 repeat purchases, up to 5,000 time units.
X = np.array([0, 1, 5, 50, 500, 500, 2000, 2000], dtype=float)
T = np.array([30, 30, 300, 700, 700, 5000, 5000, 5000], dtype=float)
TX = np.array([0, 12, 250, 690, 700, 4999, 4000, 5000], dtype=float)


def bgnbd_direct(params, t, x, t_x, age):
    """FHL (2005) equation (10) as printed, with scipy's 2F1 on the original arguments."""
    r, alpha, a, b = params
    hyp = hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + age + t))
    bracket = 1 - ((alpha + age) / (alpha + age + t)) ** (r + x) * hyp
    alive = bgnbd.p_alive(params, x, t_x, age)
    return (a + b + x - 1) / (a - 1) * bracket * alive


def pnbd_direct(params, x, t_x, age):
    """Note 009 equations (18)-(20) as printed."""
    r, alpha, s, beta = params
    if alpha >= beta:
        top, c = alpha, s + 1
    else:
        top, c = beta, r + x
    rsx = r + s + x
    gap = abs(alpha - beta)
    a0 = (
        hyp2f1(rsx, c, rsx + 1, gap / (top + t_x)) / (top + t_x) ** rsx
        - hyp2f1(rsx, c, rsx + 1, gap / (top + age)) / (top + age) ** rsx
    )
    head = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    return head + np.log((alpha + age) ** -(r + x) * (beta + age) ** -s + s / rsx * a0)


@pytest.mark.parametrize("model", [bgnbd, pnbd])
def test_heavy_buyers_and_long_histories_stay_finite(model):
    params = BG if model is bgnbd else PARETO

    with np.errstate(over="raise", divide="raise", invalid="raise"):
        ll = model.log_likelihood(params, X, TX, age=T)
        alive = model.p_alive(params, X, TX, T)
        expected = model.conditional_expected_purchases(params, 52.0, X, TX, T)

    assert np.all(np.isfinite(ll))
    assert np.all((alive >= 0) & (alive <= 1))
    assert np.all(np.isfinite(expected))
    assert np.all(expected >= 0)
    # A customer who bought 2,000 times up to today keeps buying at about their rate.
    rate = (params[0] + 2000) / (params[1] + 5000)
    assert 0.5 * rate * 52 < expected[-1] <= rate * 52


def test_the_textbook_bgnbd_expectation_overflows_where_the_stable_one_does_not():
    # 2F1(r+x, b+x; a+b+x-1; z) grows like (1-z)^-(x+...): beyond 1e308 for x = 2,000 and
    # z = 0.34, and the textbook product inf * 0 is NaN. The Euler-transformed form is fine.
    x, t_x, age = np.array([2000.0]), np.array([990.0]), np.array([1000.0])
    with np.errstate(all="ignore"):
        direct = bgnbd_direct(BG, 520.0, x, t_x, age)
    stable = bgnbd.conditional_expected_purchases(BG, 520.0, x, t_x, age)

    assert not np.isfinite(direct[0])
    assert np.isfinite(stable[0])
    assert 0 < stable[0] < 520 * 2000 / 1000
    moderate = X <= 50
    assert bgnbd.conditional_expected_purchases(BG, 52.0, X, TX, T)[moderate] == pytest.approx(
        bgnbd_direct(BG, 52.0, X, TX, T)[moderate], rel=1e-9
    )


@pytest.mark.parametrize("params", [PARETO, PARETO_BETA_SMALL], ids=["alpha<beta", "alpha>=beta"])
def test_the_stable_pareto_nbd_likelihood_equals_the_textbook_one(params):
    moderate = X <= 50

    stable = pnbd.log_likelihood(params, X[moderate], TX[moderate], T[moderate])

    assert stable == pytest.approx(
        pnbd_direct(params, X[moderate], TX[moderate], T[moderate]), rel=1e-10
    )


@pytest.mark.parametrize(
    ("model", "simulate", "truth"),
    [
        (bgnbd, simulate_bgnbd, {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}),
        (pnbd, simulate_pnbd, {"r": 0.55, "alpha": 10.5, "s": 0.6, "beta": 11.7}),
    ],
    ids=["bgnbd", "pnbd"],
)
def test_a_few_extreme_customers_do_not_break_a_fit(model, simulate, truth):
    data = simulate(3000, **truth, age=np.random.default_rng(5).uniform(27, 39, 3000), seed=5)
    x = np.append(data["frequency"].to_numpy().astype(float), [500.0, 800.0, 1200.0])
    t_x = np.append(data["recency"].to_numpy(), [39.0, 38.5, 40.0])
    age = np.append(data["T"].to_numpy(), [40.0, 40.0, 40.0])

    fit = model.fit(x, t_x, age)

    assert all(np.isfinite(v) for v in fit.params.values())
    assert all(np.isfinite(v) and v > 0 for v in fit.standard_errors.values())
    assert np.all(np.isfinite(model.conditional_expected_purchases(fit.values, 52.0, x, t_x, age)))


def test_bgnbd_gradient_and_hessian_are_exact():
    rng = np.random.default_rng(6)
    x = rng.poisson(2.0, 500).astype(float)
    age = rng.uniform(0.5, 1.0, 500)
    t_x = np.where(x > 0, age * rng.uniform(0, 1, 500), 0.0)
    objective = bgnbd._LogLikelihood(x, t_x, age, rng.integers(1, 4, 500).astype(float))
    w = np.log([0.4, 0.2, 0.9, 2.2])

    assert objective.gradient(w) == pytest.approx(numerical_gradient(objective.value, w), abs=1e-8)
    assert objective.hessian(w) == pytest.approx(numerical_hessian(objective.gradient, w), abs=1e-7)


def test_pareto_nbd_gradient_is_exact_in_both_branches():
    rng = np.random.default_rng(7)
    x = rng.poisson(2.0, 400).astype(float)
    age = rng.uniform(0.5, 1.0, 400)
    t_x = np.where(x > 0, age * rng.uniform(0, 1, 400), 0.0)
    objective = pnbd._LogLikelihood(x, t_x, age, np.ones(400))

    for params in ([0.5, 0.3, 0.6, 0.4], [0.5, 0.4, 0.6, 0.05], [2.0, 0.02, 0.3, 3.0]):
        w = np.log(params)
        assert objective.gradient(w) == pytest.approx(
            numerical_gradient(objective.value, w), abs=1e-7
        )


def test_gamma_gamma_gradient_and_hessian_are_exact():
    rng = np.random.default_rng(8)
    x = rng.poisson(3.0, 500).astype(float) + 1
    m = rng.gamma(5.0, 8.0, 500)
    objective = gamma_gamma._LogLikelihood(x, m, np.ones(500))
    w = np.log([5.0, 3.0, 12.0])

    assert objective.gradient(w) == pytest.approx(numerical_gradient(objective.value, w), abs=1e-8)
    assert objective.hessian(w) == pytest.approx(numerical_hessian(objective.gradient, w), abs=1e-7)


def test_hyp2f1_unit_and_its_derivatives_match_scipy():
    rng = np.random.default_rng(9)
    b = rng.uniform(0.1, 60, 2000)
    c = b + rng.uniform(0.05, 5, 2000)
    z = rng.uniform(0, 0.995, 2000)
    h = 1e-6

    value, d_b, d_c, d_z = hyp2f1_unit(b, c, z)

    assert value == pytest.approx(hyp2f1(1, b, c, z), rel=1e-12)
    assert d_z == pytest.approx(b / c * hyp2f1(2, b + 1, c + 1, z), rel=1e-10)
    numeric_b = (hyp2f1(1, b + h, c, z) - hyp2f1(1, b - h, c, z)) / (2 * h)
    numeric_c = (hyp2f1(1, b, c + h, z) - hyp2f1(1, b, c - h, z)) / (2 * h)
    assert d_b == pytest.approx(numeric_b, rel=1e-5, abs=1e-6)
    assert d_c == pytest.approx(numeric_c, rel=1e-5, abs=1e-6)


def test_hyp2f1_safe_falls_back_to_the_series_when_scipy_gives_up(monkeypatch):
    a, b, c = np.array([0.5, 2.0]), np.array([1.5, 0.3]), np.array([3.0, 4.0])
    z = np.array([0.3, 0.7])
    expected = hyp2f1(a, b, c, z)
    monkeypatch.setattr(special, "hyp2f1", lambda *args: np.full(2, np.nan))

    assert hyp2f1_safe(a, b, c, z) == pytest.approx(expected, rel=1e-12)


def test_log1mexp_and_softplus_are_accurate_at_the_extremes():
    x = np.array([-1e-20, -1e-8, -0.5, -1.0, -50.0, -800.0])
    z = np.array([-800.0, -30.0, 0.0, 30.0, 800.0])

    assert log1mexp(x) == pytest.approx(np.log(-np.expm1(x)), rel=1e-12)
    value, slope = softplus(z)
    assert value == pytest.approx(
        [0.0, np.log1p(np.exp(-30.0)), np.log(2), 30.0, 800.0], rel=1e-12, abs=1e-300
    )
    tiny = np.exp(-30.0) / (1 + np.exp(-30.0))
    assert slope == pytest.approx([0.0, tiny, 0.5, 1 - tiny, 1.0], rel=1e-12, abs=1e-300)


def test_distinct_rows_groups_equal_rows_and_counts_them():
    rng = np.random.default_rng(10)
    x = rng.integers(0, 5, 5000).astype(float)
    t = rng.integers(0, 20, 5000) / 7

    (ux, ut), inverse, counts = special.distinct_rows(x, t)

    assert np.array_equal(ux[inverse], x)
    assert np.array_equal(ut[inverse], t)
    assert counts.sum() == 5000
    assert len(set(zip(ux.tolist(), ut.tolist(), strict=True))) == ux.size
    assert ux.size == len(set(zip(x.tolist(), t.tolist(), strict=True)))


def test_distinct_rows_stays_right_when_hashes_collide(monkeypatch):
    # The worst a collision can do is leave equal rows apart in the hash order (here: an
    # order that interleaves them). A distinct row may then come out as several groups, but
    # every row still maps to a group with its own values, and the counts add up.
    x = np.array([1.0, 2.0, 1.0, 3.0, 2.0, 1.0])
    monkeypatch.setattr(special, "_hash_order", lambda arrays: np.arange(arrays[0].size))

    (ux,), inverse, counts = special.distinct_rows(x)

    assert np.array_equal(ux[inverse], x)
    assert counts.sum() == x.size
    assert ux.size == 6  # nothing adjacent was equal: six groups, each right


def test_bgnbd_expectations_are_continuous_through_a_equal_to_one():
    # (a+b+x-1)/(a-1) * [1 - ...] is 0/0 at a = 1; the limit is taken, not a division.
    x, t_x, age = np.array([0.0, 3.0]), np.array([0.0, 20.0]), np.array([30.0, 30.0])
    values = [
        bgnbd.conditional_expected_purchases((0.3, 4.0, a, 2.0), 10.0, x, t_x, age)
        for a in (1 - 1e-6, 1.0, 1 + 1e-6)
    ]

    assert np.all(np.isfinite(values[1]))
    assert values[1] == pytest.approx(values[0], rel=1e-5)
    assert values[1] == pytest.approx(values[2], rel=1e-5)
    assert np.isfinite(bgnbd.expected_purchases((0.3, 4.0, 1.0, 2.0), 10.0))
