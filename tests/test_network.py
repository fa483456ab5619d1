"""Tests of twolayer.network against oracles that share none of its code.

The oracles: central differences of the error (PRML eq. 5.69), HIPS autograd
applied to an independently written error, scipy's logsumexp, scikit-learn's
log_loss, and a tiny example worked out by hand.
"""

from __future__ import annotations

import math

import array_api_strict as xs
import autograd
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp
from sklearn.metrics import log_loss

from oracles import ACTIVATIONS, rel_err
from oracles import error as autograd_error
from twolayer import network as nw
from twolayer.network import Params

XSArray = type(xs.asarray(0.0))


def problem(D: int, M: int, K: int, N: int, seed: int = 0, dtype=np.float64):
    """A random network, inputs, 1-of-K targets and positive sample weights."""
    rng = np.random.default_rng(seed)
    params = nw.init_params(D, M, K, random_state=rng, dtype=dtype)
    X = rng.normal(size=(N, D)).astype(dtype)
    T = np.eye(K, dtype=dtype)[rng.integers(0, K, size=N)]
    s = rng.uniform(0.5, 2.0, size=N).astype(dtype)
    return params, X, T, s


def central_differences(params: Params, X, T, s=None, activation="tanh", eps=1e-6) -> np.ndarray:
    """dE/dw by (E(w + eps e) - E(w - eps e)) / 2 eps for every weight (PRML eq. 5.69)."""
    D, M = params.W1.shape
    K = params.W2.shape[1]
    theta = nw.flatten(params)
    grad = np.empty_like(theta)
    for i in range(theta.size):
        step = np.zeros_like(theta)
        step[i] = eps
        up = nw.error(nw.unflatten(theta + step, D, M, K), X, T, s, activation=activation)
        down = nw.error(nw.unflatten(theta - step, D, M, K), X, T, s, activation=activation)
        grad[i] = (up - down) / (2 * eps)
    return grad


# --- the gradient -----------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    D=st.integers(1, 5),
    M=st.integers(1, 5),
    K=st.integers(2, 4),
    N=st.integers(1, 6),
    seed=st.integers(0, 2**16),
    weighted=st.booleans(),
)
def test_gradient_matches_central_differences(D, M, K, N, seed, weighted):
    params, X, T, s = problem(D, M, K, N, seed)
    s = s if weighted else None
    analytic = nw.flatten(nw.gradient(params, X, T, s))
    numeric = central_differences(params, X, T, s)
    assert rel_err(analytic, numeric) < 1e-7, (analytic, numeric)


def test_smallest_network_by_central_differences():
    params, X, T, _ = problem(D=1, M=1, K=2, N=1, seed=3)
    analytic = nw.flatten(nw.gradient(params, X, T))
    numeric = central_differences(params, X, T)
    assert analytic.shape == (1 + 1 + 2 + 2,)
    assert rel_err(analytic, numeric) < 1e-7, (analytic, numeric)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_each_activation_by_central_differences(activation):
    params, X, T, s = problem(D=3, M=4, K=3, N=7, seed=11)
    analytic = nw.flatten(nw.gradient(params, X, T, s, activation=activation))
    numeric = central_differences(params, X, T, s, activation=activation)
    assert rel_err(analytic, numeric) < 1e-7


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("shape", [(1, 1, 2, 1), (4, 3, 2, 9), (6, 5, 4, 20)])
def test_gradient_matches_autograd(activation, shape):
    D, M, K, N = shape
    params, X, T, s = problem(D, M, K, N, seed=sum(shape))
    theta = nw.flatten(params)
    E_ag = autograd_error(theta, X, T, s, D, M, K, activation)
    g_ag = autograd.grad(autograd_error)(theta, X, T, s, D, M, K, activation)
    E, g = nw.error_and_gradient(params, X, T, s, activation=activation)
    assert E == pytest.approx(E_ag, rel=1e-12)
    assert rel_err(nw.flatten(g), g_ag) < 1e-10


def test_float32_gradient_agrees_with_float64():
    p64, X64, T64, s64 = problem(D=10, M=8, K=4, N=50, seed=5)
    p32 = Params(*(a.astype(np.float32) for a in p64))
    E32, g32 = nw.error_and_gradient(p32, X64.astype(np.float32), T64.astype(np.float32), s64.astype(np.float32))
    E64, g64 = nw.error_and_gradient(p64, X64, T64, s64)
    assert E32 == pytest.approx(E64, rel=1e-5)
    for a, b in zip(g32, g64):
        assert a.dtype == np.float32
        assert rel_err(a.astype(np.float64), b) < 1e-4


def test_gradient_and_error_and_gradient_agree():
    params, X, T, s = problem(3, 4, 3, 10)
    E, g = nw.error_and_gradient(params, X, T, s)
    assert E == nw.error(params, X, T, s)
    for a, b in zip(g, nw.gradient(params, X, T, s)):
        np.testing.assert_array_equal(a, b)


# --- the error ------------------------------------------------------------------------------


def test_error_matches_scipy_logsumexp_and_sklearn_log_loss():
    params, X, T, s = problem(D=5, M=6, K=4, N=40, seed=2)
    W1, b1, W2, b2 = params
    a2 = np.tanh(X @ W1 + b1) @ W2 + b2
    log_y = a2 - logsumexp(a2, axis=1, keepdims=True)
    assert nw.error(params, X, T) == pytest.approx(-np.sum(T * log_y), rel=1e-13)
    np.testing.assert_allclose(nw.log_forward(params, X), log_y, rtol=1e-13, atol=1e-15)
    labels = T.argmax(axis=1)
    # log_loss is a (weighted) mean; E is the (weighted) sum.
    expected = log_loss(labels, nw.forward(params, X), labels=range(4), normalize=False)
    assert nw.error(params, X, T) == pytest.approx(expected, rel=1e-12)
    expected_w = log_loss(labels, nw.forward(params, X), labels=range(4), sample_weight=s, normalize=False)
    assert nw.error(params, X, T, s) == pytest.approx(expected_w, rel=1e-12)


def test_tiny_example_worked_by_hand():
    # D = M = 1, K = 2, one pattern x = 1 of class 0.
    # W1 = 0.5, b1 = 0.5: a_1 = 0.5 * 1 + 0.5 = 1, z = tanh(1) = 0.76159416.
    # W2 = [[1, -1]], b2 = [0, 0]: a = (z, -z), so
    # y_0 = e^z / (e^z + e^-z) = 1 / (1 + e^(-2z)) = 1 / (1 + e^-1.52318831) = 1 / 1.21801568 = 0.82100750
    # E = -ln y_0 = ln(1.21801568) = 0.19722304
    # dE/da = y - t = (y_0 - 1, 1 - y_0) = (-0.17899250, 0.17899250)
    # dE/dW2 = z * delta = (-0.13631965, 0.13631965); dE/db2 = delta
    # delta_1 = (1 - z^2) * (W2 . delta) = 0.41997434 * (-0.17899250 - 0.17899250) = -0.15034452
    # dE/dW1 = delta_1 * x = dE/db1 = -0.15034452
    z = math.tanh(1.0)
    y0 = 1.0 / (1.0 + math.exp(-2 * z))
    params = Params(np.array([[0.5]]), np.array([0.5]), np.array([[1.0, -1.0]]), np.zeros(2))
    X = np.array([[1.0]])
    T = np.array([[1.0, 0.0]])
    E, g = nw.error_and_gradient(params, X, T)
    assert E == pytest.approx(math.log1p(math.exp(-2 * z)), rel=1e-14)
    assert E == pytest.approx(0.19722304, abs=1e-8)
    d = y0 - 1.0
    np.testing.assert_allclose(g.W2, [[z * d, -z * d]], rtol=1e-14)
    np.testing.assert_allclose(g.W2, [[-0.13631965, 0.13631965]], atol=1e-8)
    np.testing.assert_allclose(g.b2, [d, -d], rtol=1e-14)
    delta1 = (1 - z * z) * (d - (-d))
    assert delta1 == pytest.approx(-0.15034452, abs=1e-8)
    np.testing.assert_allclose(g.W1, [[delta1]], rtol=1e-13)
    np.testing.assert_allclose(g.b1, [delta1], rtol=1e-13)


def test_forward_rows_are_probabilities():
    params, X, _, _ = problem(4, 5, 6, 30)
    Y = nw.forward(params, X)
    assert Y.shape == (30, 6)
    assert np.all(Y > 0)
    np.testing.assert_allclose(Y.sum(axis=1), 1.0, rtol=1e-14)


# --- additivity and sample weights ------------------------------------------------------------


def test_gradient_is_additive_over_batches():
    params, X, T, s = problem(3, 4, 3, 30, seed=9)
    E, g = nw.error_and_gradient(params, X, T, s)
    parts = [nw.error_and_gradient(params, X[a:b], T[a:b], s[a:b]) for a, b in ((0, 7), (7, 19), (19, 30))]
    assert E == pytest.approx(sum(p[0] for p in parts), rel=1e-13)
    for block, name in enumerate(Params._fields):
        total = sum(p[1][block] for p in parts)
        np.testing.assert_allclose(g[block], total, rtol=1e-12, atol=1e-14, err_msg=name)


@pytest.mark.parametrize("weighted", [False, True])
def test_large_batches_are_summed_over_chunks(monkeypatch, weighted):
    # With chunks of 7 rows, 30 patterns take five chunks (the last one short); the sums
    # must equal the one-chunk computation to rounding, on NumPy and array_api_strict.
    params, X, T, s = problem(5, 4, 3, 30, seed=8)
    s = s if weighted else None
    E1, g1 = nw.error_and_gradient(params, X, T, s)
    monkeypatch.setattr(nw, "CHUNK_ROWS", 7)
    E7, g7 = nw.error_and_gradient(params, X, T, s)
    assert E7 == pytest.approx(E1, rel=1e-13)
    for a, b in zip(g7, g1):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    sp = Params(*(xs.asarray(a) for a in params))
    Ex, gx = nw.error_and_gradient(sp, xs.asarray(X), xs.asarray(T), None if s is None else xs.asarray(s))
    assert Ex == pytest.approx(E1, rel=1e-13)
    for a, b in zip(gx, g1):
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-12, atol=1e-14)


def test_zero_weight_removes_the_pattern_exactly():
    params, X, T, s = problem(3, 4, 3, 12, seed=4)
    s0 = s.copy()
    s0[[2, 5]] = 0.0
    keep = np.setdiff1d(np.arange(12), [2, 5])
    E0, g0 = nw.error_and_gradient(params, X, T, s0)
    E1, g1 = nw.error_and_gradient(params, X[keep], T[keep], s[keep])
    assert E0 == pytest.approx(E1, rel=1e-14)
    for a, b in zip(g0, g1):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-16)


def test_unit_weights_equal_no_weights():
    params, X, T, _ = problem(3, 4, 3, 12, seed=4)
    E0, g0 = nw.error_and_gradient(params, X, T)
    E1, g1 = nw.error_and_gradient(params, X, T, np.ones(12))
    assert E0 == E1
    for a, b in zip(g0, g1):
        np.testing.assert_array_equal(a, b)


# --- numerics ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_logits_stay_finite(dtype):
    # Output activations that differ by 1e4: softmax underflows to exactly 0 for the
    # losing class, so ln(softmax) would be -inf; the log-sum-exp form stays finite.
    params = Params(np.ones((1, 1), dtype), np.zeros(1, dtype), np.array([[5e3, -5e3]], dtype), np.zeros(2, dtype))
    X = np.array([[10.0], [-10.0]], dtype)  # z = tanh(+-10) = +-1, logits +-5e3
    T = np.array([[0.0, 1.0], [0.0, 1.0]], dtype)  # the first pattern is confidently wrong
    E, g = nw.error_and_gradient(params, X, T)
    log_y = nw.log_forward(params, X)
    assert log_y.dtype == dtype
    assert np.all(np.isfinite(log_y))
    assert math.isfinite(E)
    assert E == pytest.approx(1e4 * float(np.tanh(dtype(10.0))), rel=1e-5)
    assert all(np.all(np.isfinite(b)) for b in g)
    assert nw.forward(params, X)[0, 1] == 0.0  # underflow, handled


def test_large_inputs_stay_finite():
    params, X, T, _ = problem(3, 4, 3, 5)
    E, g = nw.error_and_gradient(params, 1e30 * X, T, activation="logistic")
    assert math.isfinite(E) and all(np.all(np.isfinite(b)) for b in g)


# --- dtypes, inputs, shapes -------------------------------------------------------------------


def test_float32_in_float32_out():
    params, X, T, s = problem(3, 4, 3, 6, dtype=np.float32)
    assert nw.forward(params, X).dtype == np.float32
    assert nw.log_forward(params, X).dtype == np.float32
    _, g = nw.error_and_gradient(params, X, T, s)
    assert all(b.dtype == np.float32 for b in g)
    assert nw.flatten(params).dtype == np.float32


def test_integer_input_is_computed_in_float64():
    params, _, T, _ = problem(3, 4, 3, 6, dtype=np.float32)
    X = np.arange(18).reshape(6, 3) % 3  # integers
    _, g = nw.error_and_gradient(params, X, T.astype(int))
    assert all(b.dtype == np.float64 for b in g)
    assert nw.forward(params, X).dtype == np.float64


def test_inputs_are_never_modified():
    params, X, T, s = problem(3, 4, 3, 6)
    copies = [a.copy() for a in (*params, X, T, s)]
    nw.error_and_gradient(params, X, T, s)
    nw.forward(params, X)
    nw.error(params, X, T, s)
    for before, after in zip(copies, (*params, X, T, s)):
        np.testing.assert_array_equal(before, after)


def test_flatten_order_and_round_trip():
    params, _, _, _ = problem(D=2, M=3, K=2, N=1)
    theta = nw.flatten(params)
    assert theta.shape == (nw.n_params(2, 3, 2),) == (2 * 3 + 3 + 3 * 2 + 2,)
    np.testing.assert_array_equal(theta[:6], params.W1.ravel())  # W1 row by row (C order)
    assert theta[1] == params.W1[0, 1]
    np.testing.assert_array_equal(theta[6:9], params.b1)
    np.testing.assert_array_equal(theta[9:15], params.W2.ravel())
    np.testing.assert_array_equal(theta[15:], params.b2)
    back = nw.unflatten(theta, 2, 3, 2)
    for a, b in zip(back, params):
        np.testing.assert_array_equal(a, b)
        assert a.shape == b.shape
    # NumPy blocks are views: an in-place update of theta shows in them.
    theta[0] = 42.0
    assert back.W1[0, 0] == 42.0


def test_unflatten_rejects_wrong_length():
    with pytest.raises(ValueError, match=r"length .* = 17"):
        nw.unflatten(np.zeros(16), 2, 3, 2)


def test_init_params_glorot_bounds_and_determinism():
    p = nw.init_params(50, 30, 10, random_state=0)
    assert [a.shape for a in p] == [(50, 30), (30,), (30, 10), (10,)]
    b1, b2 = math.sqrt(6 / 80), math.sqrt(6 / 40)
    assert np.abs(p.W1).max() <= b1 and np.abs(p.b1).max() <= b1
    assert np.abs(p.W2).max() <= b2 and np.abs(p.b2).max() <= b2
    assert np.abs(p.W1).max() > 0.9 * b1  # the full range is used
    q = nw.init_params(50, 30, 10, random_state=0)
    for a, b in zip(p, q):
        np.testing.assert_array_equal(a, b)
    assert nw.init_params(2, 2, 2, dtype=np.float32).W1.dtype == np.float32
    with pytest.raises(ValueError, match="n_hidden"):
        nw.init_params(2, 0, 2)


def test_unknown_activation_is_named():
    params, X, _, _ = problem(2, 2, 2, 2)
    with pytest.raises(ValueError, match=r"activation must be one of .*'softsign'"):
        nw.forward(params, X, activation="softsign")


def test_hidden_and_output_shapes():
    params, X, _, _ = problem(3, 4, 5, 6)
    z, a2 = nw.hidden_and_output(params, X)
    assert z.shape == (6, 4) and a2.shape == (6, 5)
    np.testing.assert_allclose(nw.log_forward(params, X), a2 - logsumexp(a2, axis=1, keepdims=True))


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activation_derivatives_from_outputs(activation):
    # h'(a) and h''(a), written from the output z, against central differences of h.
    act = nw.get_activation(activation)
    a = np.linspace(-3, 3, 13) + 0.05  # avoid ReLU's kink at 0
    eps = 1e-5
    h = lambda t: act.h(np, t)  # noqa: E731
    z = h(a)
    np.testing.assert_allclose(act.h_prime(np, z), (h(a + eps) - h(a - eps)) / (2 * eps), rtol=1e-8, atol=1e-10)
    second = (h(a + eps) - 2 * h(a) + h(a - eps)) / eps**2
    np.testing.assert_allclose(act.h_second(np, z), second, rtol=1e-4, atol=1e-5)


# --- the array API --------------------------------------------------------------------------


def test_runs_on_array_api_strict():
    params, X, T, s = problem(4, 3, 3, 8)
    sp = Params(*(xs.asarray(a) for a in params))
    E, g = nw.error_and_gradient(sp, xs.asarray(X), xs.asarray(T), xs.asarray(s))
    E_np, g_np = nw.error_and_gradient(params, X, T, s)
    assert E == pytest.approx(E_np, rel=1e-14)
    for a, b in zip(g, g_np):
        assert isinstance(a, XSArray)
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-13)
    Y = nw.forward(sp, xs.asarray(X))
    np.testing.assert_allclose(np.asarray(Y), nw.forward(params, X), rtol=1e-14)
    theta = nw.flatten(sp)
    assert isinstance(theta, XSArray)
    np.testing.assert_array_equal(np.asarray(theta), nw.flatten(params))


def test_a_batch_costs_exactly_five_matrix_products(monkeypatch):
    # Count the matrix products on array_api_strict arrays: two forward, three backward.
    count = {"n": 0}
    original = XSArray.__matmul__

    def counting(self, other):
        count["n"] += 1
        return original(self, other)

    monkeypatch.setattr(XSArray, "__matmul__", counting)
    params, X, T, s = problem(4, 3, 3, 8)
    sp = Params(*(xs.asarray(a) for a in params))
    nw.error_and_gradient(sp, xs.asarray(X), xs.asarray(T), xs.asarray(s))
    assert count["n"] == 5
    count["n"] = 0
    nw.forward(sp, xs.asarray(X))
    assert count["n"] == 2


def test_runs_on_torch_tensors():
    torch = pytest.importorskip("torch", reason="PyTorch is an optional oracle")
    params, X, T, s = problem(4, 3, 3, 8)
    tp = Params(*(torch.from_numpy(a) for a in params))
    E, g = nw.error_and_gradient(tp, torch.from_numpy(X), torch.from_numpy(T), torch.from_numpy(s))
    E_np, g_np = nw.error_and_gradient(params, X, T, s)
    assert E == pytest.approx(E_np, rel=1e-12)
    for a, b in zip(g, g_np):
        assert isinstance(a, torch.Tensor)
        np.testing.assert_allclose(a.numpy(), b, rtol=1e-12)


def test_param_shapes_reads_d_m_k_and_names_a_mismatch():
    params = nw.init_params(3, 4, 2, random_state=0)
    assert nw.param_shapes(params) == (3, 4, 2)
    with pytest.raises(ValueError, match=r"inconsistent parameter shapes: .* got \(3, 4\), \(3,\), \(4, 2\), \(2,\)"):
        nw.param_shapes(params._replace(b1=params.b1[:3]))
    with pytest.raises(ValueError, match="must hold W1"):
        nw.param_shapes(params._replace(W1=params.W1.ravel()))
    with pytest.raises(TypeError, match="must be a Params"):
        nw.param_shapes(list(params))
