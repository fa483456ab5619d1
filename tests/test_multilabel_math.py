"""Sigmoid outputs with the binary cross-entropy (multilabel targets): the network's error and
gradient, the fast batch gradient and the curvature module, against oracles that share none of
their code: an error written again below in HIPS autograd's NumPy from

    E = -sum_n s_n sum_k [t_nk ln y_nk + (1 - t_nk) ln(1 - y_nk)],  y = 1 / (1 + exp(-a)),

and central differences.
"""

from __future__ import annotations

import autograd
import autograd.numpy as anp
import numpy as np
import pytest

from oracles import ACTIVATIONS, logits, rel_err
from twolayer import curvature as cv
from twolayer import network as nw
from twolayer.network import Params
from twolayer.training import batch, kernels

SHAPES = [(1, 1, 1, 3), (2, 3, 2, 5), (3, 4, 3, 7)]


def problem(D: int, M: int, K: int, N: int, seed: int = 0, dtype=np.float64):
    """A random network, data, indicator targets (any number of ones per row) and pattern weights."""
    rng = np.random.default_rng(seed)
    params = Params(*(2 * p for p in nw.init_params(D, M, K, random_state=rng, dtype=dtype)))
    X = rng.normal(size=(N, D)).astype(dtype)
    T = (rng.random((N, K)) < 0.5).astype(dtype)
    s = rng.uniform(0.5, 2.0, size=N).astype(dtype)
    return params, X, T, s


def ag_error(theta, X, T, s, D, M, K, activation="tanh"):
    """The binary cross-entropy summed over outputs and patterns, with ln sigma(a) = -log(1 + e^-a)."""
    a = logits(theta, X, D, M, K, activation)
    log_y = -anp.logaddexp(0.0, -a)
    log_1my = -anp.logaddexp(0.0, a)
    per_pattern = -anp.sum(T * log_y + (1 - T) * log_1my, axis=1)
    return anp.sum(per_pattern if s is None else s * per_pattern)


def dims(params):
    return params.W1.shape[0], params.W1.shape[1], params.W2.shape[1]


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("shape", SHAPES)
def test_error_and_gradient_match_autograd(shape, activation):
    params, X, T, s = problem(*shape, seed=sum(shape))
    D, M, K = dims(params)
    theta = nw.flatten(params)
    E, grad = nw.error_and_gradient(params, X, T, s, activation=activation, output="sigmoid")
    assert E == pytest.approx(float(ag_error(theta, X, T, s, D, M, K, activation)), rel=1e-12)
    g_ag = autograd.grad(lambda th: ag_error(th, X, T, s, D, M, K, activation))(theta)
    assert rel_err(nw.flatten(grad), g_ag) < 1e-12


def test_gradient_matches_central_differences():
    params, X, T, s = problem(3, 4, 3, 7, seed=3)
    D, M, K = dims(params)
    theta = nw.flatten(params)
    eps = 1e-6

    def E(th):
        return nw.error(nw.unflatten(th, D, M, K), X, T, s, output="sigmoid")

    fd = np.array([(E(theta + eps * e) - E(theta - eps * e)) / (2 * eps) for e in np.eye(theta.size)])
    assert rel_err(nw.flatten(nw.gradient(params, X, T, s, output="sigmoid")), fd) < 1e-8


def test_the_softmax_error_differs_so_the_output_choice_is_used():
    params, X, T, s = problem(2, 3, 3, 5, seed=1)
    assert nw.error(params, X, T, s, output="sigmoid") != pytest.approx(nw.error(params, X, T, s))


def test_sigmoid_outputs_are_independent_probabilities_and_stable_at_extremes():
    params, X, _, _ = problem(2, 3, 3, 5, seed=2)
    y = nw.forward(params, X, output="sigmoid")
    a2 = nw.hidden_and_output(params, X)[1]
    np.testing.assert_allclose(y, 1 / (1 + np.exp(-a2)), rtol=1e-14)
    # activations of +-1000: the log-sigmoid stays finite where log(1 / (1 + exp(-a))) is -inf
    big = Params(params.W1, params.b1, params.W2 * 0, np.array([1000.0, -1000.0, 0.0]))
    log_y = nw.log_forward(big, X, output="sigmoid")
    assert np.isfinite(log_y).all()
    np.testing.assert_allclose(log_y[0], [0.0, -1000.0, -np.log(2)])
    T = np.tile([0.0, 1.0, 1.0], (5, 1))  # both wrong by 1000 nats
    E, grad = nw.error_and_gradient(big, X, T, output="sigmoid")
    assert E == pytest.approx(5 * (2000 + np.log(2)))
    assert all(np.isfinite(g).all() for g in grad)


def test_unknown_output_is_refused():
    params, X, T, _ = problem(2, 3, 2, 4)
    with pytest.raises(ValueError, match="output must be one of"):
        nw.error(params, X, T, output="relu")


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fast_batch_gradient_matches_the_reference(fused, dtype, monkeypatch):
    """The trainers' buffered gradient (numba installed or not) gives the reference's numbers."""
    monkeypatch.setattr(kernels, "FUSED", fused)
    params, X, T, s = problem(4, 5, 3, 9, seed=5, dtype=dtype)
    D, M, K = dims(params)
    ws = batch._Workspace(9, D, M, K, dtype, gather=False, output="sigmoid")
    grad = nw.unflatten(np.empty(nw.n_params(D, M, K), dtype=dtype), D, M, K)
    E = batch._batch_error_and_gradient(params, X, T, s, 0.5, "tanh", ws, grad, "sigmoid")
    E_ref, g_ref = nw.error_and_gradient(params, X, T, s, output="sigmoid")
    tol = 1e-12 if dtype == np.float64 else 1e-5
    assert E == pytest.approx(E_ref, rel=tol)
    assert rel_err(nw.flatten(grad), 0.5 * nw.flatten(g_ref)) < tol


# --- curvature ------------------------------------------------------------------------------------


def ag_hessian(params, X, T, s, activation="tanh"):
    D, M, K = dims(params)
    return autograd.hessian(lambda th: ag_error(th, X, T, s, D, M, K, activation))(nw.flatten(params))


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("shape", SHAPES)
def test_hessian_and_its_products_match_autograd(shape, activation):
    params, X, T, s = problem(*shape, seed=50 + sum(shape))
    H_ag = ag_hessian(params, X, T, s, activation)
    H = cv.hessian(params, X, T, s, activation=activation, output="sigmoid")
    assert rel_err(H, H_ag) < 1e-10
    v = np.random.default_rng(0).normal(size=H.shape[0])
    Hv = nw.flatten(cv.hessian_vector_product(params, X, T, v, s, activation=activation, output="sigmoid"))
    assert rel_err(Hv, H_ag @ v) < 1e-10
    op = cv.hessian_operator(params, X, T, s, activation=activation, output="sigmoid")
    assert rel_err(op @ v, H_ag @ v) < 1e-10
    diag = nw.flatten(cv.hessian_diagonal(params, X, T, s, activation=activation, output="sigmoid"))
    assert rel_err(diag, np.diag(H_ag)) < 1e-10


def test_hessian_matches_central_differences_of_the_gradient():
    params, X, T, s = problem(2, 3, 3, 6, seed=9)
    D, M, K = dims(params)
    theta = nw.flatten(params)
    eps = 1e-6

    def g(th):
        return nw.flatten(nw.gradient(nw.unflatten(th, D, M, K), X, T, s, output="sigmoid"))

    H_fd = np.stack([(g(theta + eps * e) - g(theta - eps * e)) / (2 * eps) for e in np.eye(theta.size)], axis=1)
    assert rel_err(cv.hessian(params, X, T, s, output="sigmoid"), H_fd) < 1e-7


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gauss_newton_is_the_sum_of_jacobian_outer_products_with_diagonal_output_curvature(activation):
    """G = sum_n s_n J_n^T diag(y_n (1 - y_n)) J_n, with J_n = da_n/dw from autograd."""
    params, X, T, s = problem(3, 4, 3, 7, seed=21)
    D, M, K = dims(params)
    theta = nw.flatten(params)
    y = nw.forward(params, X, activation=activation, output="sigmoid")
    G_ref = np.zeros((theta.size, theta.size))
    for n in range(X.shape[0]):
        J = autograd.jacobian(lambda th, n=n: logits(th, X[n : n + 1], D, M, K, activation)[0])(theta)  # (K, W)
        G_ref += s[n] * J.T @ np.diag(y[n] * (1 - y[n])) @ J
    G = cv.gauss_newton(params, X, T, s, activation=activation, output="sigmoid")
    assert rel_err(G, G_ref) < 1e-10
    assert np.linalg.eigvalsh(G).min() > -1e-10 * np.abs(G).max()
    v = np.random.default_rng(1).normal(size=theta.size)
    Gv = nw.flatten(cv.gauss_newton_vector_product(params, X, None, v, s, activation=activation, output="sigmoid"))
    assert rel_err(Gv, G_ref @ v) < 1e-10
    assert (
        rel_err(cv.gauss_newton_operator(params, X, None, s, activation=activation, output="sigmoid") @ v, Gv) < 1e-12
    )
    gn_diag = cv.hessian_diagonal(
        params, X, None, s, activation=activation, approximation="gauss-newton", output="sigmoid"
    )
    assert rel_err(nw.flatten(gn_diag), np.diag(G_ref)) < 1e-10
    W1n = (D + 1) * M
    last = cv.last_layer_hessian(params, X, s, activation=activation, output="sigmoid")
    assert rel_err(last, G_ref[W1n:, W1n:]) < 1e-10


def test_input_jacobian_of_sigmoid_outputs_matches_autograd():
    params, X, _, _ = problem(3, 4, 2, 5, seed=4)
    D, M, K = dims(params)
    theta = nw.flatten(params)
    J = cv.jacobian(params, X, output="sigmoid")
    for n in range(X.shape[0]):
        J_ag = autograd.jacobian(lambda x: 1 / (1 + anp.exp(-logits(theta, x[None, :], D, M, K)[0])))(X[n])
        assert rel_err(J[n], J_ag) < 1e-12
