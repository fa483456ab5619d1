"""Tests of twolayer.training.second_order against known minimisers and independent solvers.

The oracles: numpy.linalg.solve for quadratics, the analytic minimisers of
Rosenbrock's function and of a double well, scikit-learn's LogisticRegression
for a regularised logistic regression, SciPy's L-BFGS-B for the network, and
counting wrappers for the evaluation counts.
"""

from __future__ import annotations

import autograd
import numpy as np
import pytest
from scipy.optimize import minimize, rosen, rosen_der, rosen_hess_prod
from sklearn.linear_model import LogisticRegression

from oracles import error, rel_err
from twolayer import curvature as cv
from twolayer import network as nw
from twolayer.training import second_order as so

NEWTON_METHODS = ["trust-ncg", "newton-cg"]


def quadratic(n: int, cond: float, seed: int = 0):
    """f = x^T A x / 2 - b^T x with A's eigenvalues spread over [1, cond]; minimiser A^-1 b."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    A = Q @ np.diag(np.geomspace(1.0, cond, n)) @ Q.T
    A = (A + A.T) / 2
    b = rng.normal(size=n)

    def fun_and_grad(x):
        return 0.5 * x @ A @ x - b @ x, A @ x - b

    return fun_and_grad, (lambda x, v: A @ v), np.linalg.solve(A, b)


class Counted:
    """Wraps a callable and counts its calls."""

    def __init__(self, f):
        self.f, self.calls = f, 0

    def __call__(self, *args):
        self.calls += 1
        return self.f(*args)


def all_solvers(hessp):
    """(name, solve(fun_and_grad, theta0, **kw)) for every solver, with the given hessp."""
    return [
        ("scg-exact", lambda fg, x0, **kw: so.scaled_conjugate_gradient(fg, x0, hessp=hessp, **kw)),
        ("scg-fd", lambda fg, x0, **kw: so.scaled_conjugate_gradient(fg, x0, **kw)),
        *[
            (m, lambda fg, x0, m=m, **kw: so.minimize_newton(fg, x0, hessp=hessp, method=m, **kw))
            for m in NEWTON_METHODS
        ],
    ]


# --- quadratics and classic test functions -------------------------------------------------------


def test_scg_with_exact_curvature_is_conjugate_gradients_on_a_quadratic():
    # With p^T H p exact and the scale lambda negligible, each step is an exact line
    # minimisation along H-conjugate directions: the minimiser of an n-dimensional
    # well-conditioned quadratic in about n iterations.
    n = 12
    fg, hessp, x_star = quadratic(n, cond=10.0)
    res = so.scaled_conjugate_gradient(fg, np.zeros(n), hessp=hessp, tol=1e-10, lambda0=1e-12)
    assert res.success and res.status == 0, res.message
    assert res.nit <= n + 2, res.nit
    np.testing.assert_allclose(res.x, x_star, rtol=0, atol=1e-9)


@pytest.mark.parametrize("name", ["scg-exact", "scg-fd", *NEWTON_METHODS])
def test_every_solver_finds_the_minimiser_of_an_ill_conditioned_quadratic(name):
    fg, hessp, x_star = quadratic(20, cond=1e3, seed=1)
    solve = dict(all_solvers(hessp))[name]
    # |g| <= 1e-7 puts x within 1e-7 / lambda_min = 1e-7 of the minimiser
    res = solve(fg, np.zeros(20), tol=1e-7, max_iter=2000)
    assert res.status == 0, res.message
    assert np.max(np.abs(res.jac)) <= 1e-7
    np.testing.assert_allclose(res.x, x_star, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", ["scg-exact", "scg-fd", *NEWTON_METHODS])
def test_every_solver_finds_rosenbrocks_minimum(name):
    def fg(x):
        return rosen(x), rosen_der(x)

    solve = dict(all_solvers(rosen_hess_prod))[name]
    res = solve(fg, np.array([-1.2, 1.0, -0.5, 0.8]), tol=1e-8, max_iter=5000)
    assert res.status == 0, res.message
    np.testing.assert_allclose(res.x, np.ones(4), rtol=0, atol=1e-6)


def test_scg_makes_negative_curvature_positive():
    # f = x^4/4 - x^2/2 + y^2 has negative curvature f_xx = 3x^2 - 1 < 0 near x = 0,
    # where Møller's step 4 must raise lambda; its minima are (+-1, 0).
    def fg(v):
        x, y = v
        return x**4 / 4 - x**2 / 2 + y**2, np.array([x**3 - x, 2 * y])

    def hessp(v, p):
        return np.array([(3 * v[0] ** 2 - 1) * p[0], 2 * p[1]])

    lambdas = []
    res = so.scaled_conjugate_gradient(
        fg, np.array([0.1, 0.5]), hessp=hessp, tol=1e-10, callback=lambda r: lambdas.append(r.lambda_)
    )
    assert res.status == 0, res.message
    np.testing.assert_allclose(res.x, [1.0, 0.0], atol=1e-9)
    assert max(lambdas) > 1e-6  # the scale was raised above lambda0 = 1e-6 at some point


# --- regularised logistic regression against scikit-learn ---------------------------------------


def test_solvers_reach_scikit_learns_logistic_regression():
    rng = np.random.default_rng(3)
    N, D, C = 200, 5, 0.5
    X = rng.normal(size=(N, D))
    y = (X @ rng.normal(size=D) + 0.3 * rng.normal(size=N) > 0).astype(float)
    Xb = np.hstack([X, np.ones((N, 1))])
    penalised = np.r_[np.ones(D), 0.0]  # scikit-learn does not penalise the intercept

    def fg(w):
        # C * sum_n log-loss + ||w||^2 / 2, scikit-learn's objective
        a = Xb @ w
        loss = np.sum(np.logaddexp(0.0, a) - y * a)
        p = 1 / (1 + np.exp(-a))
        return C * loss + 0.5 * np.sum(penalised * w**2), C * Xb.T @ (p - y) + penalised * w

    def hessp(w, v):
        p = 1 / (1 + np.exp(-(Xb @ w)))
        return C * Xb.T @ (p * (1 - p) * (Xb @ v)) + penalised * v

    ref = LogisticRegression(C=C, tol=1e-12, max_iter=10_000).fit(X, y)
    w_star = np.r_[ref.coef_.ravel(), ref.intercept_]
    for name, solve in all_solvers(hessp):
        # the Hessian's eigenvalues are at least about 1 (the penalty), so |g| <= 1e-7
        # puts w within about 1e-7 of the minimiser (trust-ncg's model cannot resolve
        # much smaller decreases of f ~ 50 in float64)
        res = solve(fg, np.zeros(D + 1), tol=1e-7, max_iter=2000)
        assert res.status == 0, (name, res.message)
        np.testing.assert_allclose(res.x, w_star, rtol=0, atol=1e-6, err_msg=name)


# --- the network --------------------------------------------------------------------------------


def network_problem(seed: int = 2, N: int = 60, D: int = 4, M: int = 4, K: int = 3, alpha: float = 10.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, D))
    T = np.eye(K)[rng.integers(0, K, size=N)]
    fg, hessp = so.network_objective(X, T, n_hidden=M, alpha=alpha)
    theta0 = nw.flatten(nw.init_params(D, M, K, random_state=seed))
    return X, T, fg, hessp, theta0


def test_network_objective_is_the_regularised_error_and_its_derivatives():
    rng = np.random.default_rng(0)
    D, M, K, N, alpha = 3, 4, 3, 10, 0.7
    X = rng.normal(size=(N, D))
    T = np.eye(K)[rng.integers(0, K, size=N)]
    s = rng.uniform(0.5, 2, size=N)
    params = nw.init_params(D, M, K, random_state=1)
    theta = nw.flatten(params)
    fg, hessp = so.network_objective(X, T, s, n_hidden=M, alpha=alpha)
    f, g = fg(theta)
    expected = nw.error(params, X, T, s) + alpha / 2 * (np.sum(params.W1**2) + np.sum(params.W2**2))
    assert f == pytest.approx(expected, rel=1e-14)
    eps = 1e-6
    g_fd = np.array([(fg(theta + eps * e)[0] - fg(theta - eps * e)[0]) / (2 * eps) for e in np.eye(len(theta))])
    np.testing.assert_allclose(g, g_fd, rtol=1e-6, atol=1e-7)
    v = rng.normal(size=theta.size)
    np.testing.assert_allclose(hessp(theta, v), cv.hessian(params, X, T, s, alpha=alpha) @ v, rtol=1e-12)
    _, gn_p = so.network_objective(X, T, s, n_hidden=M, alpha=alpha, curvature_kind="gauss-newton")
    np.testing.assert_allclose(gn_p(theta, v), cv.gauss_newton(params, X, T, s, alpha=alpha) @ v, rtol=1e-12)


def test_network_objective_with_a_decay_per_group_against_autograd():
    rng = np.random.default_rng(3)
    D, M, K, N, alpha = 3, 2, 3, 9, (0.7, 0.2, 1.3, 0.05)
    X = rng.normal(size=(N, D))
    T = np.eye(K)[rng.integers(0, K, size=N)]
    s = rng.uniform(0.5, 2, size=N)
    theta = nw.flatten(nw.init_params(D, M, K, random_state=4))
    fg, hessp = so.network_objective(X, T, s, n_hidden=M, alpha=alpha)
    f, g = fg(theta)

    def oracle(t):
        return error(t, X, T, s, D, M, K, alpha=alpha)

    assert f == pytest.approx(oracle(theta), rel=1e-13)
    assert rel_err(g, autograd.grad(oracle)(theta)) < 1e-12
    v = rng.normal(size=theta.size)
    assert rel_err(hessp(theta, v), autograd.hessian(oracle)(theta) @ v) < 1e-12
    fg_plain, hessp_plain = so.network_objective(X, T, s, n_hidden=M, alpha=0.4)
    fg_groups, hessp_groups = so.network_objective(X, T, s, n_hidden=M, alpha=(0.4, 0.0, 0.4, 0.0))
    assert fg_plain(theta)[0] == fg_groups(theta)[0]  # one number and its four groups: the same bits
    np.testing.assert_array_equal(fg_plain(theta)[1], fg_groups(theta)[1])
    np.testing.assert_array_equal(hessp_plain(theta, v), hessp_groups(theta, v))


@pytest.mark.parametrize("seed", [0, 1])
def test_solvers_reach_an_error_no_higher_than_lbfgs_on_a_small_network(seed):
    # Weight decay alpha = 10 leaves one minimum within reach of this start; with weak
    # decay the methods may settle in different local minima, lower or higher.
    _, _, fg, hessp, theta0 = network_problem(seed)
    lbfgs = minimize(fg, theta0, jac=True, method="L-BFGS-B", options={"maxiter": 5000, "gtol": 1e-6})
    assert lbfgs.success, lbfgs.message
    for name, solve in all_solvers(hessp):
        res = solve(fg, theta0, tol=1e-6, max_iter=3000)
        assert res.status == 0, (name, res.message)
        # equal minima agree to the accuracy the gradient tolerances allow
        assert res.fun <= lbfgs.fun + 1e-9 * abs(lbfgs.fun), (name, res.fun, lbfgs.fun)
        assert res.fun == pytest.approx(fg(res.x)[0], rel=1e-15)


# --- what a trainer needs: counts, callbacks, statuses, purity --------------------------------


@pytest.mark.parametrize("name", ["scg-exact", "scg-fd", *NEWTON_METHODS])
def test_counts_callback_and_stopping(name):
    _, _, fg0, hessp0, theta0 = network_problem(seed=4)
    fg, hessp = Counted(fg0), Counted(hessp0)
    solve = dict(all_solvers(hessp))[name]
    seen = []
    res = solve(fg, theta0, tol=1e-6, max_iter=500, callback=lambda r: seen.append(r))
    assert res.nfev == fg.calls and res.njev == fg.calls
    assert res.nhev == hessp.calls
    assert (res.nhev == 0) == (name == "scg-fd")
    assert len(seen) == res.nit > 0
    assert [r.nit for r in seen] == list(range(1, res.nit + 1))
    np.testing.assert_array_equal(seen[-1].x, res.x)
    for r in seen[::7]:  # every intermediate result is consistent with the objective
        f, g = fg0(r.x)
        assert r.fun == pytest.approx(f, rel=1e-15)
        np.testing.assert_allclose(r.jac, g, rtol=1e-15, atol=1e-15)

    # a callback returning True stops training at that iteration
    stopped = solve(fg0, theta0, tol=1e-6, max_iter=500, callback=lambda r: r.nit >= 3)
    assert stopped.status == 3 and not stopped.success and stopped.nit == 3
    assert stopped.fun < fg0(theta0)[0]

    # max_iter
    capped = solve(fg0, theta0, tol=1e-12, max_iter=4)
    assert capped.status == 1 and not capped.success and capped.nit == 4


@pytest.mark.parametrize("name", ["scg-exact", "scg-fd", *NEWTON_METHODS])
def test_start_at_the_minimum_and_theta0_untouched(name):
    fg, hessp, x_star = quadratic(5, cond=3.0)
    solve = dict(all_solvers(hessp))[name]
    res = solve(fg, x_star.copy(), tol=1e-8)
    assert res.status == 0 and res.nit == 0
    theta0 = np.zeros(5)
    solve(fg, theta0, tol=1e-8)
    np.testing.assert_array_equal(theta0, np.zeros(5))


def test_scg_keeps_float32():
    X, T, _, _, theta0 = network_problem()
    X32, T32 = X.astype(np.float32), T.astype(np.float32)
    fg32, hessp32 = so.network_objective(X32, T32, n_hidden=4, alpha=1.0)
    res = so.scaled_conjugate_gradient(fg32, theta0.astype(np.float32), hessp=hessp32, tol=1e-2, max_iter=300)
    assert res.x.dtype == np.float32 and res.jac.dtype == np.float32
    assert res.status in (0, 2), res.message  # converged, or stopped at float32's resolution
    assert res.fun < fg32(theta0.astype(np.float32))[0] * 0.9


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda fg, h: so.scaled_conjugate_gradient(fg, np.zeros((2, 2))), "flat vector"),
        (lambda fg, h: so.scaled_conjugate_gradient(fg, np.zeros(2), tol=-1.0), "tol must be"),
        (lambda fg, h: so.scaled_conjugate_gradient(fg, np.zeros(2), max_iter=-1), "max_iter must be"),
        (lambda fg, h: so.scaled_conjugate_gradient(fg, np.zeros(2), sigma=0.0), "must be positive"),
        (lambda fg, h: so.minimize_newton(fg, np.zeros(2), hessp=h, method="bfgs"), "method must be"),
        (lambda fg, h: so.network_objective(np.zeros((3, 2)), np.zeros((4, 2)), n_hidden=2), "same N"),
        (lambda fg, h: so.network_objective(np.zeros((3, 2)), np.zeros((3, 2)), n_hidden=2, alpha=-1), "alpha must be"),
        (
            lambda fg, h: so.network_objective(np.zeros((3, 2)), np.zeros((3, 2)), n_hidden=2, curvature_kind="fisher"),
            "curvature_kind must be",
        ),
    ],
)
def test_bad_input_gets_a_clear_error(call, message):
    fg, hessp, _ = quadratic(2, cond=2.0)
    with pytest.raises(ValueError, match=message):
        call(fg, hessp)
