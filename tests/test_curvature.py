"""Tests of twolayer.curvature against oracles that share none of its code.

The oracles: central differences of the analytic gradient (network.gradient,
whose own tests pin it to central differences of the error), HIPS autograd's
Hessian and Jacobians of an error written independently below from PRML eqs.
5.9 and 5.24, numpy.linalg's eigenvalues, a per-pattern loop that builds the
Gauss–Newton matrix and the Becker–LeCun diagonal from autograd derivatives,
and one small Hessian worked out by hand.
"""

from __future__ import annotations

import warnings

import array_api_strict as xs
import autograd
import autograd.numpy as anp
import numpy as np
import pytest
from scipy.sparse.linalg import LinearOperator, cg, eigsh

from oracles import ACTIVATIONS, AUTOGRAD_ACTIVATIONS, logits, rel_err
from oracles import error as ag_error
from twolayer import curvature as cv
from twolayer import network as nw
from twolayer.network import Params

# (D, M, K, N), the tiny ones included
SHAPES = [(1, 1, 2, 1), (1, 1, 1, 3), (2, 3, 2, 5), (3, 4, 3, 7), (5, 2, 4, 11)]


def problem(D: int, M: int, K: int, N: int, seed: int = 0, dtype=np.float64):
    """A random network (weights large enough to leave tanh's linear region), data, targets, weights."""
    rng = np.random.default_rng(seed)
    params = Params(*(2 * p for p in nw.init_params(D, M, K, random_state=rng, dtype=dtype)))
    X = rng.normal(size=(N, D)).astype(dtype)
    T = np.eye(K, dtype=dtype)[rng.integers(0, K, size=N)]
    s = rng.uniform(0.5, 2.0, size=N).astype(dtype)
    return params, X, T, s


def decay_mask(D: int, M: int, K: int) -> np.ndarray:
    """1 on weights, 0 on biases, in flatten order (built by hand, not by the module)."""
    return np.concatenate([np.ones(D * M), np.zeros(M), np.ones(M * K), np.zeros(K)])


def flat_gradient(theta, shape, X, T, s, activation, alpha):
    """network.gradient of E + alpha/2 ||weights||^2 at a flat parameter vector."""
    D, M, K = shape
    grad = nw.flatten(nw.gradient(nw.unflatten(theta, D, M, K), X, T, s, activation=activation))
    return grad + alpha * decay_mask(D, M, K) * theta


def fd_hessian(params, X, T, s, activation="tanh", alpha=0.0, eps=1e-6) -> np.ndarray:
    """Central differences of the analytic gradient, one column per weight (PRML §5.4.4)."""
    shape = (params.W1.shape[0], params.W1.shape[1], params.W2.shape[1])
    theta = nw.flatten(params)
    cols = []
    for e in np.eye(theta.size):
        up = flat_gradient(theta + eps * e, shape, X, T, s, activation, alpha)
        down = flat_gradient(theta - eps * e, shape, X, T, s, activation, alpha)
        cols.append((up - down) / (2 * eps))
    H = np.stack(cols, axis=1)
    return (H + H.T) / 2


def ag_hessian(params, X, T, s, activation="tanh", alpha=0.0):
    D, M = params.W1.shape
    K = params.W2.shape[1]

    def f(th):
        return ag_error(th, X, T, s, D, M, K, activation, alpha)

    return autograd.hessian(f)(nw.flatten(params))


# --- the exact Hessian --------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("shape", SHAPES)
def test_hessian_matches_central_differences_of_the_gradient(shape, activation):
    params, X, T, s = problem(*shape, seed=sum(shape))
    H = cv.hessian(params, X, T, s, activation=activation)
    H_fd = fd_hessian(params, X, T, s, activation)
    err = rel_err(H, H_fd)
    assert err < 1e-7, f"closed form vs central differences: rel err {err:.2e}\n{H}\n{H_fd}"


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("shape", SHAPES)
def test_hessian_matches_autograd(shape, activation):
    params, X, T, s = problem(*shape, seed=100 + sum(shape))
    H = cv.hessian(params, X, T, s, activation=activation, alpha=0.7)
    H_ag = ag_hessian(params, X, T, s, activation, alpha=0.7)
    err = rel_err(H, H_ag)
    assert err < 1e-10, f"closed form vs autograd: rel err {err:.2e}"


def test_hessian_worked_by_hand():
    # D = M = 1, K = 2; W1 = b1 = 0 so a_j = 0, z = tanh(0) = 0, h' = 1, h'' = 0;
    # W2 = [[1, -1]], b2 = 0 so a_k = 0, y = (1/2, 1/2),
    # Lambda = diag(y) - y y^T = [[1/4, -1/4], [-1/4, 1/4]]; x = 2, t = (1, 0),
    # delta = y - t = (-1/2, 1/2). Order: w1, b1, w2_0, w2_1, b2_0, b2_1.
    #   first/first: x_i x_i' h'^2 W2 Lambda W2^T = x_i x_i' * (1/4 + 1/4 + 1/4 + 1/4) = x_i x_i'
    #                -> [[4, 2], [2, 1]]  (the h'' term vanishes)
    #   first/second weights: x_i h' [delta_k + z (W2 Lambda)_k] = x_i delta_k (z = 0)
    #                -> w1: (-1, 1), b1: (-1/2, 1/2)
    #   first/second biases: x_i h' (W2 Lambda)_k, W2 Lambda = (1/2, -1/2)
    #                -> w1: (1, -1), b1: (1/2, -1/2)
    #   second/second: zb zb' Lambda -> zero except the bias block, which is Lambda.
    params = Params(np.zeros((1, 1)), np.zeros(1), np.array([[1.0, -1.0]]), np.zeros(2))
    X, T = np.array([[2.0]]), np.array([[1.0, 0.0]])
    expected = np.array(
        [
            [4.0, 2.0, -1.0, 1.0, 1.0, -1.0],
            [2.0, 1.0, -0.5, 0.5, 0.5, -0.5],
            [-1.0, -0.5, 0.0, 0.0, 0.0, 0.0],
            [1.0, 0.5, 0.0, 0.0, 0.0, 0.0],
            [1.0, 0.5, 0.0, 0.0, 0.25, -0.25],
            [-1.0, -0.5, 0.0, 0.0, -0.25, 0.25],
        ]
    )
    np.testing.assert_allclose(cv.hessian(params, X, T), expected, rtol=0, atol=1e-15)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_hessian_is_symmetric_with_the_softmax_null_directions(activation):
    D, M, K, N = 4, 5, 3, 30
    params, X, T, s = problem(D, M, K, N, seed=3)
    H = cv.hessian(params, X, T, s, activation=activation)
    assert rel_err(H, H.T) < 1e-14
    eig = np.linalg.eigvalsh(H)
    n_zero = int(np.sum(np.abs(eig) <= 1e-10 * np.max(np.abs(eig))))
    # Adding one vector to every output unit's incoming weights (M weights and a bias)
    # leaves the softmax unchanged: at least M + 1 null directions.
    assert n_zero >= M + 1, f"{n_zero} zero eigenvalues, expected >= {M + 1}: {eig}"
    # ... and those directions are the ones named: u on (W2[:, k], b2[k]) for every k.
    u = np.zeros((M + 1) * K)
    u.reshape(M + 1, K)[:] = np.arange(1, M + 2)[:, None]  # the same (M + 1)-vector for each k
    null = np.concatenate([np.zeros((D + 1) * M), u])
    assert np.max(np.abs(H @ null)) <= 1e-12 * np.max(np.abs(H)) * np.max(np.abs(null))


def test_hessian_can_be_indefinite():
    params, X, T, s = problem(3, 4, 3, 20, seed=11)
    eig = np.linalg.eigvalsh(cv.hessian(params, X, T, s))
    assert eig.min() < -1e-6 * eig.max() and eig.max() > 0


def test_hessian_chunking_over_patterns_changes_nothing(monkeypatch):
    params, X, T, s = problem(3, 4, 3, 23, seed=5)
    whole = cv.hessian(params, X, T, s)
    G_whole = cv.gauss_newton(params, X, T, s)
    # 16 * (D+1)^2 elements per chunk: chunks of 1 pattern, the last chunk shorter than the rest.
    monkeypatch.setattr(cv, "_CHUNK_ELEMENTS", 7 * 16)
    np.testing.assert_allclose(cv.hessian(params, X, T, s), whole, rtol=0, atol=1e-13)
    np.testing.assert_allclose(cv.gauss_newton(params, X, T, s), G_whole, rtol=0, atol=1e-13)
    monkeypatch.setattr(cv, "_CHUNK_ELEMENTS", 5 * 16)
    np.testing.assert_allclose(cv.hessian(params, X, T, s), whole, rtol=0, atol=1e-13)


def test_sample_weight_multiplies_each_pattern():
    params, X, T, _ = problem(2, 3, 3, 6, seed=8)
    s = np.array([2.0, 0.0, 1.0, 1.0, 3.0, 1.0])
    # s_n = 2 is the pattern twice, s_n = 0 removes it, s_n = 3 three times.
    idx = [0, 0, 2, 3, 4, 4, 4, 5]
    for f in (cv.hessian, cv.gauss_newton):
        np.testing.assert_allclose(f(params, X, T, s), f(params, X[idx], T[idx]), rtol=1e-12, atol=1e-13)
    v = np.random.default_rng(0).normal(size=nw.n_params(2, 3, 3))
    np.testing.assert_allclose(
        nw.flatten(cv.hessian_vector_product(params, X, T, v, s)),
        nw.flatten(cv.hessian_vector_product(params, X[idx], T[idx], v)),
        rtol=1e-12,
        atol=1e-13,
    )
    np.testing.assert_allclose(
        nw.flatten(cv.hessian_diagonal(params, X, T, s)),
        nw.flatten(cv.hessian_diagonal(params, X[idx], T[idx])),
        rtol=1e-12,
        atol=1e-13,
    )


def test_alpha_adds_to_the_weights_only():
    D, M, K, N = 3, 2, 3, 9
    params, X, T, s = problem(D, M, K, N, seed=4)
    H0 = cv.hessian(params, X, T, s)
    np.testing.assert_allclose(
        cv.hessian(params, X, T, s, alpha=0.25) - H0, 0.25 * np.diag(decay_mask(D, M, K)), atol=1e-14
    )
    G0 = cv.gauss_newton(params, X, T, s)
    np.testing.assert_allclose(
        cv.gauss_newton(params, X, T, s, alpha=0.25) - G0, 0.25 * np.diag(decay_mask(D, M, K)), atol=1e-14
    )
    # against central differences of the regularised gradient, independently
    err = rel_err(cv.hessian(params, X, T, s, alpha=0.25), fd_hessian(params, X, T, s, alpha=0.25))
    assert err < 1e-7


# --- Hessian-vector products ----------------------------------------------------------------------


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("shape", SHAPES)
def test_hvp_matches_the_matrix_and_central_differences(shape, activation):
    params, X, T, s = problem(*shape, seed=200 + sum(shape))
    D, M, K, _ = shape
    theta = nw.flatten(params)
    v = np.random.default_rng(1).normal(size=theta.size)
    for alpha in (0.0, 0.3):
        Hv = cv.hessian_vector_product(params, X, T, v, s, activation=activation, alpha=alpha)
        assert isinstance(Hv, Params)
        Hv = nw.flatten(Hv)
        H = cv.hessian(params, X, T, s, activation=activation, alpha=alpha)
        err = rel_err(Hv, H @ v)
        assert err < 1e-12, f"R operator vs hessian @ v: rel err {err:.2e}"
        eps = 1e-6
        up = flat_gradient(theta + eps * v, (D, M, K), X, T, s, activation, alpha)
        down = flat_gradient(theta - eps * v, (D, M, K), X, T, s, activation, alpha)
        err = rel_err(Hv, (up - down) / (2 * eps))
        assert err < 1e-7, f"R operator vs central differences along v: rel err {err:.2e}"


def test_hvp_accepts_params_or_flat_and_builds_the_hessian_column_by_column():
    D, M, K, N = 3, 4, 3, 10
    params, X, T, s = problem(D, M, K, N, seed=9)
    H = cv.hessian(params, X, T, s, alpha=0.1)
    W = H.shape[0]
    cols = [nw.flatten(cv.hessian_vector_product(params, X, T, e, s, alpha=0.1)) for e in np.eye(W)]
    assert rel_err(np.stack(cols, axis=1), H) < 1e-12
    v = np.random.default_rng(2).normal(size=W)
    from_flat = cv.hessian_vector_product(params, X, T, v, s)
    from_params = cv.hessian_vector_product(params, X, T, nw.unflatten(v, D, M, K), s)
    for a, b in zip(from_flat, from_params):
        np.testing.assert_array_equal(a, b)


# --- Gauss–Newton -------------------------------------------------------------------------------


def gn_by_loop(params, X, s, activation):
    """sum_n s_n J_n^T Lambda_n J_n with J_n and Lambda_n from autograd, one pattern at a time."""
    D, M = params.W1.shape
    K = params.W2.shape[1]
    theta = nw.flatten(params)
    G = np.zeros((theta.size, theta.size))
    for n in range(X.shape[0]):
        x = X[n : n + 1]
        J = autograd.jacobian(lambda th, x=x: logits(th, x, D, M, K, activation)[0])(theta)  # (K, W)
        a = logits(theta, x, D, M, K, activation)[0]
        # Lambda = d2/da2 of -sum_k t_k ln softmax(a)_k, for any t summing to one
        t = np.full(K, 1.0 / K)
        Lam = autograd.hessian(lambda b, t=t: -anp.sum(t * (b - anp.log(anp.sum(anp.exp(b))))))(a)
        G += s[n] * J.T @ Lam @ J
    return G


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gauss_newton_matches_its_definition_and_is_psd(activation):
    params, X, T, s = problem(3, 4, 3, 8, seed=12)
    G = cv.gauss_newton(params, X, T, s, activation=activation)
    assert rel_err(G, gn_by_loop(params, X, s, activation)) < 1e-12
    assert rel_err(G, G.T) < 1e-14
    eig = np.linalg.eigvalsh(G)
    assert eig.min() >= -1e-12 * eig.max(), eig
    # T is not needed: Lambda does not depend on it
    np.testing.assert_array_equal(cv.gauss_newton(params, X, None, s, activation=activation), G)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gauss_newton_equals_hessian_when_targets_equal_outputs(activation):
    params, X, _, s = problem(3, 4, 3, 8, seed=13)
    T = nw.forward(params, X, activation=activation)  # soft targets: delta = 0
    H = cv.hessian(params, X, T, s, activation=activation)
    G = cv.gauss_newton(params, X, T, s, activation=activation)
    assert rel_err(G, H) < 1e-12
    # ... and differs from it otherwise (so the test above could fail)
    T_hard = np.eye(3)[np.argmin(T, axis=1)]
    G_hard = cv.gauss_newton(params, X, T_hard, s, activation=activation)
    assert rel_err(G_hard, cv.hessian(params, X, T_hard, s, activation=activation)) > 1e-3


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gauss_newton_product_matches_the_matrix(activation):
    D, M, K, N = 4, 3, 3, 9
    params, X, T, s = problem(D, M, K, N, seed=14)
    v = np.random.default_rng(3).normal(size=nw.n_params(D, M, K))
    for alpha in (0.0, 0.4):
        G = cv.gauss_newton(params, X, T, s, activation=activation, alpha=alpha)
        Gv = cv.gauss_newton_vector_product(params, X, T, v, s, activation=activation, alpha=alpha)
        assert isinstance(Gv, Params)
        assert rel_err(nw.flatten(Gv), G @ v) < 1e-12
        Gv_params = cv.gauss_newton_vector_product(
            params, X, None, nw.unflatten(v, D, M, K), s, activation=activation, alpha=alpha
        )
        np.testing.assert_allclose(nw.flatten(Gv_params), nw.flatten(Gv), rtol=0, atol=0)


# --- the diagonal -------------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_exact_diagonal_is_the_hessians_diagonal(activation):
    params, X, T, s = problem(3, 4, 3, 9, seed=15)
    diag = cv.hessian_diagonal(params, X, T, s, activation=activation, alpha=0.2)
    assert isinstance(diag, Params)
    H = ag_hessian(params, X, T, s, activation, alpha=0.2)
    assert rel_err(nw.flatten(diag), np.diag(H)) < 1e-10


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gauss_newton_diagonal_is_the_gauss_newton_matrixs_diagonal(activation):
    params, X, _, s = problem(3, 4, 3, 9, seed=27)
    diag = cv.hessian_diagonal(params, X, None, s, approximation="gauss-newton", activation=activation, alpha=0.2)
    G = gn_by_loop(params, X, s, activation) + 0.2 * np.diag(decay_mask(3, 4, 3))
    assert rel_err(nw.flatten(diag), np.diag(G)) < 1e-12


def becker_lecun_by_loop(params, X, T, s, activation):
    """Becker–LeCun's diagonal, one pattern at a time, every derivative from autograd.

    d2E/dw_ji^2 ~ x_i^2 [h'(a_j)^2 sum_k w_kj^2 d2E/da_k^2 + h''(a_j) sum_k w_kj dE/da_k],
    d2E/dw_kj^2 = z_j^2 d2E/da_k^2 (exact).
    """
    W1, b1, W2, b2 = params
    h = AUTOGRAD_ACTIVATIONS[activation]
    h1 = autograd.elementwise_grad(h)
    h2 = autograd.elementwise_grad(h1)
    out = [np.zeros_like(p) for p in params]
    for n in range(X.shape[0]):
        x, t = X[n], T[n]
        a1 = x @ W1 + b1
        z = h(a1)
        a2 = z @ W2 + b2

        def En(a, t=t):
            return -anp.sum(t * (a - anp.log(anp.sum(anp.exp(a)))))

        dE = autograd.grad(En)(a2)
        d2E = np.diag(autograd.hessian(En)(a2))
        with warnings.catch_warnings():
            # relu and identity: autograd notes that h' is piecewise constant (h'' = 0)
            warnings.filterwarnings("ignore", message="Output seems independent of input")
            hpp = h2(a1)
        d2a1 = h1(a1) ** 2 * (W2**2 @ d2E) + hpp * (W2 @ dE)
        out[0] += s[n] * np.outer(x**2, d2a1)
        out[1] += s[n] * d2a1
        out[2] += s[n] * np.outer(z**2, d2E)
        out[3] += s[n] * d2E
    return Params(*out)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_becker_lecun_matches_an_independent_computation(activation):
    params, X, T, s = problem(3, 4, 3, 9, seed=16)
    bl = cv.hessian_diagonal(params, X, T, s, approximation="becker-lecun", activation=activation)
    ref = becker_lecun_by_loop(params, X, T, s, activation)
    assert rel_err(nw.flatten(bl), nw.flatten(ref)) < 1e-12
    # an approximation in the first layer only: it differs from the exact diagonal there
    exact = cv.hessian_diagonal(params, X, T, s, activation=activation)
    assert rel_err(bl.W1, exact.W1) > 1e-3
    np.testing.assert_allclose(bl.W2, exact.W2, rtol=1e-14)
    np.testing.assert_allclose(bl.b2, exact.b2, rtol=1e-14)


def test_becker_lecun_is_exact_when_each_hidden_unit_feeds_one_output():
    # With one non-zero w_kj per hidden unit j, the neglected k != k' terms vanish.
    params, X, T, s = problem(3, 4, 3, 9, seed=17)
    W2 = np.zeros((4, 3))
    W2[np.arange(4), [0, 2, 1, 2]] = [1.5, -2.0, 0.7, 1.1]
    params = params._replace(W2=W2)
    bl = cv.hessian_diagonal(params, X, T, s, approximation="becker-lecun")
    assert rel_err(nw.flatten(bl), np.diag(ag_hessian(params, X, T, s))) < 1e-10


# --- Jacobians ----------------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("shape", SHAPES)
def test_input_jacobian_matches_central_differences(shape, activation):
    params, X, _, _ = problem(*shape, seed=300 + sum(shape))
    J = cv.jacobian(params, X, activation=activation)
    N, D = X.shape
    assert J.shape == (N, shape[2], D)
    eps = 1e-6
    J_fd = np.empty_like(J)
    for i in range(D):
        step = np.zeros(D)
        step[i] = eps
        up = nw.forward(params, X + step, activation=activation)
        down = nw.forward(params, X - step, activation=activation)
        J_fd[:, :, i] = (up - down) / (2 * eps)
    assert rel_err(J, J_fd) < 1e-7 or np.max(np.abs(J - J_fd)) < 1e-10


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("shape", SHAPES)
def test_weight_jacobian_matches_central_differences(shape, activation):
    params, X, _, _ = problem(*shape, seed=400 + sum(shape))
    D, M, K, N = shape
    J = cv.weight_jacobian(params, X, activation=activation)
    theta = nw.flatten(params)
    assert J.shape == (N, K, theta.size)
    eps = 1e-6
    cols = []
    for e in np.eye(theta.size):
        up = nw.hidden_and_output(nw.unflatten(theta + eps * e, D, M, K), X, activation=activation)[1]
        down = nw.hidden_and_output(nw.unflatten(theta - eps * e, D, M, K), X, activation=activation)[1]
        cols.append((up - down) / (2 * eps))
    assert rel_err(J, np.stack(cols, axis=2)) < 1e-7


def test_weight_jacobian_matches_autograd():
    D, M, K, N = 3, 4, 3, 5
    params, X, _, _ = problem(D, M, K, N, seed=18)
    J = cv.weight_jacobian(params, X)
    J_ag = autograd.jacobian(lambda th: logits(th, X, D, M, K, "tanh"))(nw.flatten(params))
    assert rel_err(J, J_ag) < 1e-13


# --- the SciPy operators ------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_operators_agree_with_the_matrices_and_run_under_eigsh(alpha):
    params, X, T, s = problem(4, 5, 3, 40, seed=19)
    W = nw.n_params(4, 5, 3)
    for build, dense in ((cv.hessian_operator, cv.hessian), (cv.gauss_newton_operator, cv.gauss_newton)):
        op = build(params, X, T, s, alpha=alpha)
        M = dense(params, X, T, s, alpha=alpha)
        assert isinstance(op, LinearOperator)
        assert op.shape == (W, W) and op.dtype == np.float64
        V = np.random.default_rng(4).normal(size=(W, 3))
        assert rel_err(op @ V[:, 0], M @ V[:, 0]) < 1e-12
        assert rel_err(op.matmat(V), M @ V) < 1e-12
        assert rel_err(op.rmatvec(V[:, 1]), M.T @ V[:, 1]) < 1e-12  # symmetric
        eig = np.linalg.eigvalsh(M)
        top = eigsh(op, k=2, which="LA", return_eigenvectors=False, tol=1e-12)
        np.testing.assert_allclose(np.sort(top), eig[-2:], rtol=1e-8)
    # the Hessian's most negative eigenvalue (the Gauss-Newton matrix's smallest are a
    # degenerate cluster at zero, which Lanczos resolves poorly)
    H = cv.hessian(params, X, T, s, alpha=alpha)
    bottom = eigsh(
        cv.hessian_operator(params, X, T, s, alpha=alpha), k=1, which="SA", return_eigenvectors=False, tol=1e-12
    )
    lowest = np.linalg.eigvalsh(H)[0]
    assert lowest < 0
    np.testing.assert_allclose(bottom, [lowest], rtol=1e-8)


def test_gauss_newton_operator_solves_with_conjugate_gradients():
    params, X, T, s = problem(3, 4, 3, 30, seed=20)
    op = cv.gauss_newton_operator(params, X, T, s, alpha=1.0)
    # biases are unpenalised and the softmax bias direction is null: solve in the range
    b = cv.gauss_newton(params, X, T, s, alpha=1.0) @ np.random.default_rng(5).normal(size=op.shape[0])
    x, info = cg(op, b, rtol=1e-12, maxiter=2000)
    assert info == 0
    assert rel_err(op @ x, b) < 1e-9


# --- dtypes, namespaces, inputs ------------------------------------------------------------------


def all_outputs(params, X, T, s, v):
    """Every public function's output as a list of arrays."""
    return [
        cv.jacobian(params, X),
        cv.weight_jacobian(params, X),
        cv.hessian(params, X, T, s, alpha=0.1),
        cv.gauss_newton(params, X, T, s, alpha=0.1),
        *cv.hessian_vector_product(params, X, T, v, s, alpha=0.1),
        *cv.gauss_newton_vector_product(params, X, T, v, s, alpha=0.1),
        *cv.hessian_diagonal(params, X, T, s),
        *cv.hessian_diagonal(params, X, T, s, approximation="becker-lecun"),
        *cv.hessian_diagonal(params, X, T, s, approximation="gauss-newton"),
    ]


def test_float32_in_float32_out_and_float64_in_float64_out():
    params, X, T, s = problem(3, 4, 3, 12, seed=21)
    v = np.random.default_rng(6).normal(size=nw.n_params(3, 4, 3))
    out64 = all_outputs(params, X, T, s, v)

    def as32(a):
        return a.astype(np.float32)

    out32 = all_outputs(Params(*map(as32, params)), as32(X), as32(T), as32(s), as32(v))
    for a64, a32 in zip(out64, out32):
        assert a64.dtype == np.float64 and a32.dtype == np.float32
        assert rel_err(a32, a64) < 1e-4
    op = cv.hessian_operator(Params(*map(as32, params)), as32(X), as32(T))
    assert op.dtype == np.float32 and (op @ as32(v)).dtype == np.float32
    assert cv.gauss_newton_operator(Params(*map(as32, params)), as32(X)).dtype == np.float32


def test_array_api_strict_namespace_matches_numpy():
    params, X, T, s = problem(3, 4, 3, 7, seed=22)
    v = np.random.default_rng(7).normal(size=nw.n_params(3, 4, 3))
    expected = all_outputs(params, X, T, s, v)
    X_, T_, s_, v_ = map(xs.asarray, (X, T, s, v))
    got = all_outputs(Params(*map(xs.asarray, params)), X_, T_, s_, v_)
    for a, b in zip(got, expected):
        assert type(a) is type(xs.asarray(0.0))
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-12, atol=1e-14)
    # a NumPy direction joins the namespace of the parameters
    Hv = cv.hessian_vector_product(Params(*map(xs.asarray, params)), X_, T_, v, s_)
    assert type(Hv.W1) is type(xs.asarray(0.0))
    np.testing.assert_allclose(
        np.asarray(nw.flatten(Hv)), nw.flatten(cv.hessian_vector_product(params, X, T, v, s)), rtol=1e-12
    )


def test_inputs_are_not_modified():
    params, X, T, s = problem(3, 4, 3, 7, seed=23)
    v = np.random.default_rng(8).normal(size=nw.n_params(3, 4, 3))
    copies = [a.copy() for a in (*params, X, T, s, v)]
    all_outputs(params, X, T, s, v)
    cv.hessian_operator(params, X, T, s, alpha=0.3) @ v
    for before, after in zip(copies, (*params, X, T, s, v)):
        np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda p, X, T, v: cv.hessian(p, X[:, :2], T), "X must have shape"),
        (lambda p, X, T, v: cv.hessian(p, X, T[:, :2]), "T must have shape"),
        (lambda p, X, T, v: cv.hessian(p, X, T[:3]), "T must have shape"),
        (lambda p, X, T, v: cv.hessian(p, X, T, np.ones(2)), "sample_weight must have shape"),
        (lambda p, X, T, v: cv.hessian(p, X, None), "T is required"),
        (lambda p, X, T, v: cv.hessian_operator(p, X, None), "T is required"),
        (lambda p, X, T, v: cv.hessian_diagonal(p, X, None), "T is required"),
        (lambda p, X, T, v: cv.hessian(p, X, T, alpha=-1.0), "alpha must be"),
        (lambda p, X, T, v: cv.gauss_newton(p, X, T, alpha=float("nan")), "alpha must be"),
        (lambda p, X, T, v: cv.hessian(p, X, T, activation="softplus"), "activation must be"),
        (lambda p, X, T, v: cv.hessian_vector_product(p, X, T, v[:-1]), "flat vector of length W"),
        (lambda p, X, T, v: cv.gauss_newton_vector_product(p, X, T, p._replace(b2=v[:2])), "v.b2 must"),
        (lambda p, X, T, v: cv.hessian_diagonal(p, X, T, approximation="lecun"), "approximation must"),
        (lambda p, X, T, v: cv.jacobian(p._replace(b1=p.b1[:2]), X), "inconsistent parameter shapes"),
        (lambda p, X, T, v: cv.weight_jacobian(p, X[0]), "X must have shape"),
    ],
)
def test_bad_input_gets_a_clear_error(call, message):
    params, X, T, _ = problem(3, 4, 3, 5, seed=24)
    v = np.zeros(nw.n_params(3, 4, 3))
    with pytest.raises(ValueError, match=message):
        call(params, X, T, v)


# --- PyTorch, where it is installed ---------------------------------------------------------------


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_hessian_and_products_match_torch_func(activation):
    torch = pytest.importorskip("torch", reason="PyTorch is an optional oracle")
    D, M, K, N = 3, 4, 3, 9
    params, X, T, s = problem(D, M, K, N, seed=25)
    h = {
        "tanh": torch.tanh,
        "logistic": torch.sigmoid,
        "relu": torch.relu,
        "identity": lambda a: a,
    }[activation]
    Xt, Tt, st = (torch.from_numpy(a) for a in (X, T, s))

    def E(theta):  # PRML eqs. 5.9 and 5.24, written for torch alone
        W1 = theta[: D * M].reshape(D, M)
        b1 = theta[D * M : D * M + M]
        W2 = theta[D * M + M : D * M + M + M * K].reshape(M, K)
        b2 = theta[D * M + M + M * K :]
        a = h(Xt @ W1 + b1) @ W2 + b2
        reg = 0.5 * 0.3 * ((W1**2).sum() + (W2**2).sum())
        return -(st * (Tt * torch.log_softmax(a, dim=1)).sum(dim=1)).sum() + reg

    theta = torch.from_numpy(nw.flatten(params))
    v = np.random.default_rng(9).normal(size=theta.numel())
    with warnings.catch_warnings():
        # torch.func's first use calls the deprecated torch.jit.script: torch's own warning
        warnings.filterwarnings("ignore", message=".*torch.jit.script", category=DeprecationWarning)
        H_torch = torch.func.hessian(E)(theta).numpy()
        _, Hv_torch = torch.func.jvp(torch.func.grad(E), (theta,), (torch.from_numpy(v),))
    H = cv.hessian(params, X, T, s, activation=activation, alpha=0.3)
    assert rel_err(H, H_torch) < 1e-10
    Hv = nw.flatten(cv.hessian_vector_product(params, X, T, v, s, activation=activation, alpha=0.3))
    assert rel_err(Hv, Hv_torch.numpy()) < 1e-12


def test_runs_on_torch_tensors():
    torch = pytest.importorskip("torch", reason="PyTorch is an optional oracle")
    params, X, T, s = problem(3, 4, 3, 7, seed=26)
    v = np.random.default_rng(10).normal(size=nw.n_params(3, 4, 3))
    expected = all_outputs(params, X, T, s, v)
    got = all_outputs(Params(*map(torch.from_numpy, params)), *map(torch.from_numpy, (X, T, s, v)))
    for a, b in zip(got, expected):
        assert isinstance(a, torch.Tensor) and a.dtype == torch.float64
        np.testing.assert_allclose(a.numpy(), b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_last_layer_hessian_is_the_second_layer_block_of_autograd(activation, monkeypatch):
    params, X, T, s = problem(3, 4, 3, 9, seed=12)
    D, M, K = 3, 4, 3
    last = slice((D + 1) * M, nw.n_params(D, M, K))
    H = ag_hessian(params, X, T, s, activation)
    block = cv.last_layer_hessian(params, X, s, activation=activation)  # no targets: the block does not need them
    assert rel_err(block, H[last, last]) < 1e-12
    monkeypatch.setattr(cv, "_CHUNK_ELEMENTS", 2 * (M + 1) * K)  # two patterns a chunk
    assert rel_err(cv.last_layer_hessian(params, X, s, activation=activation), block) < 1e-14
