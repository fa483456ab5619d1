"""Tests of twolayer.training.optim: the fast gradient, the optimisers and the training loops.

The oracles share none of the code under test: :func:`twolayer.network.error_and_gradient`
(itself tested against central differences and autograd), central differences
of :func:`twolayer.training.optim.objective`, single steps worked out by hand in the
comments, and plain reference implementations of SGD, Nesterov and Adam
written here from their formulas.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from oracles import ACTIVATIONS, OPTIMIZER_SETTINGS
from twolayer import network as nw
from twolayer.network import Params
from twolayer.training import batch, full_batch, kernels, optim, optimizers

try:
    import numba  # noqa: F401  (optional: the compiled optimiser updates)

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover
    HAVE_NUMBA = False
# numba is the optional 'fast' extra; `make test` installs it, so in CI these tests run.
NO_NUMBA = "numba (the optional 'fast' extra) is not installed"

# Both implementations of the optimiser updates; the compiled one only where numba is installed.
UPDATE_BACKENDS = [
    "numpy",
    pytest.param("numba", marks=pytest.mark.skipif(not HAVE_NUMBA, reason=NO_NUMBA)),
]


@pytest.fixture(params=UPDATE_BACKENDS)
def backend(request, monkeypatch):
    """Run the test with the NumPy ufunc updates, then with the compiled ones."""
    monkeypatch.setattr(kernels, "FUSED", request.param == "numba")
    return request.param


def problem(N: int = 23, D: int = 5, M: int = 4, K: int = 3, seed: int = 0, dtype=np.float64):
    """Random weights, inputs, class indices, 1-of-K targets and positive pattern weights."""
    rng = np.random.default_rng(seed)
    params = nw.init_params(D, M, K, random_state=rng, dtype=dtype)
    X = rng.normal(size=(N, D)).astype(dtype)
    y = rng.integers(0, K, size=N).astype(np.intp)
    T = np.eye(K, dtype=dtype)[y]
    w = rng.uniform(0.2, 2.0, size=N).astype(dtype)
    return params, X, y, T, w


def fast_gradient(params: Params, X, y, w, scale: float, activation: str, rows: int | None = None):
    """Run the fast path on fresh buffers, returning (E, grad as Params)."""
    D, M = params.W1.shape
    K = params.W2.shape[1]
    dtype = params.W1.dtype
    theta = nw.flatten(params)
    ws = batch._Workspace(rows or X.shape[0], D, M, K, dtype, gather=False)
    grad = np.full_like(theta, np.nan)  # every entry must be overwritten
    E = batch._batch_error_and_gradient(
        nw.unflatten(theta, D, M, K), X, y, w, scale, activation, ws, nw.unflatten(grad, D, M, K)
    )
    return E, nw.unflatten(grad, D, M, K)


# --------------------------------------------------------------------------
# the fast minibatch gradient equals the reference
# --------------------------------------------------------------------------


def minibatch(**changes: object) -> optim.MinibatchSettings:
    """The minibatch loop's settings of these tests: tanh, batches of 5 in order, 10 epochs, no early stop."""
    settings: dict[str, Any] = {
        "activation": "tanh",
        "batch_size": 5,
        "shuffle": False,
        "max_iter": 10,
        "tol": 0.0,
        "n_iter_no_change": 100,
        "early_stopping": False,
    }
    return optim.MinibatchSettings(**{**settings, **changes})


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("container", ["dense", "csr"])
def test_fast_gradient_equals_network(activation, weighted, container, backend):
    params, X, y, T, w = problem(seed=3)
    s = w if weighted else None
    E_ref, g_ref = nw.error_and_gradient(params, X, T, s, activation=activation)
    Xin = sp.csr_matrix(X) if container == "csr" else X
    scale = 0.37
    E, g = fast_gradient(params, Xin, y, s, scale, activation, rows=X.shape[0] + 5)  # buffers larger than the batch
    assert E == pytest.approx(E_ref, rel=1e-13)
    for name, a, b in zip(Params._fields, g, g_ref):
        assert isinstance(a, np.ndarray)
        np.testing.assert_allclose(a, scale * b, rtol=1e-12, atol=1e-14, err_msg=name)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_fast_gradient_float32_stays_float32_and_matches(activation, backend):
    params, X, y, T, w = problem(seed=4, dtype=np.float32)
    E_ref, g_ref = nw.error_and_gradient(params, X, T, w, activation=activation)
    E, g = fast_gradient(params, X, y, w, 1.0, activation)
    assert all(a.dtype == np.float32 for a in g)
    assert E == pytest.approx(E_ref, rel=1e-5)
    for a, b in zip(g, g_ref):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)


def test_fast_gradient_reuses_buffers_between_batches_of_different_sizes(backend):
    params, X, y, T, _ = problem(N=30, seed=5)
    D, M = params.W1.shape
    K = params.W2.shape[1]
    theta = nw.flatten(params)
    ws = batch._Workspace(20, D, M, K, np.float64, gather=False)
    grad = np.empty_like(theta)
    gp = nw.unflatten(grad, D, M, K)
    for rows in (slice(0, 20), slice(20, 30), slice(3, 23)):
        E = batch._batch_error_and_gradient(nw.unflatten(theta, D, M, K), X[rows], y[rows], None, 1.0, "tanh", ws, gp)
        E_ref, g_ref = nw.error_and_gradient(params, X[rows], T[rows])
        assert E == pytest.approx(E_ref, rel=1e-13)
        np.testing.assert_allclose(grad, nw.flatten(g_ref), rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(theta, nw.flatten(params))  # the weights were only read


# --------------------------------------------------------------------------
# the regularised objective and the full-batch gradient
# --------------------------------------------------------------------------


def test_objective_is_penalised_error_over_total_weight():
    params, X, _, T, w = problem(seed=6)
    alpha = 0.3
    E = nw.error(params, X, T, w)
    penalty = 0.5 * alpha * (np.sum(params.W1**2) + np.sum(params.W2**2))  # biases not penalised
    assert optim.objective(params, X, T, w, alpha=alpha) == pytest.approx((E + penalty) / w.sum(), rel=1e-14)
    assert optim.objective(params, X, T, alpha=alpha) == pytest.approx(
        (nw.error(params, X, T) + penalty) / X.shape[0], rel=1e-14
    )


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("chunk", [1000, 7])
def test_full_batch_gradient_against_central_differences(weighted, chunk):
    params, X, y, T, w = problem(N=17, D=3, M=3, K=3, seed=7)
    alpha = 0.7
    s = w if weighted else None
    S = X.shape[0] if s is None else float(s.sum())
    data = optim.TrainingData(X=X, k=y, w=None if s is None else s * (X.shape[0] / S), lam=alpha / S)
    D, M, K = 3, 3, 3
    full = full_batch._FullBatch(data, (D, M, K), np.float64, "tanh", chunk=chunk)
    theta = nw.flatten(params)
    f, g = full(theta.copy())
    assert f == pytest.approx(optim.objective(params, X, T, s, alpha=alpha), rel=1e-13)

    def obj(t):
        return optim.objective(nw.unflatten(t, D, M, K), X, T, s, alpha=alpha)

    eps = 1e-6
    numerical = np.array([(obj(theta + eps * e) - obj(theta - eps * e)) / (2 * eps) for e in np.eye(theta.size)])
    np.testing.assert_allclose(g, numerical, rtol=1e-6, atol=1e-9)


# --------------------------------------------------------------------------
# single steps worked by hand
# --------------------------------------------------------------------------

THETA0 = np.array([1.0, -2.0])
GRAD = np.array([0.5, 0.25])


def test_sgd_step_by_hand(backend):
    opt = optim.SGD(
        2, np.float64, learning_rate_init=0.1, momentum=0.9, nesterov=False, schedule="constant", power_t=0.5
    )
    theta = THETA0.copy()
    opt.step(theta, GRAD)
    # v = 0.9 * 0 - 0.1 * [0.5, 0.25] = [-0.05, -0.025];  w = w + v
    np.testing.assert_allclose(opt.velocity, [-0.05, -0.025], rtol=1e-15)
    np.testing.assert_allclose(theta, [0.95, -2.025], rtol=1e-15)
    opt.step(theta, GRAD)
    # v = 0.9 * [-0.05, -0.025] - [0.05, 0.025] = [-0.095, -0.0475]
    np.testing.assert_allclose(theta, [0.855, -2.0725], rtol=1e-15)


def test_nesterov_step_by_hand(backend):
    opt = optim.SGD(
        2, np.float64, learning_rate_init=0.1, momentum=0.9, nesterov=True, schedule="constant", power_t=0.5
    )
    theta = THETA0.copy()
    opt.step(theta, GRAD)
    # v = -0.1 g = [-0.05, -0.025];  w += 0.9 v - 0.1 g = [-0.045 - 0.05, -0.0225 - 0.025]
    np.testing.assert_allclose(theta, [0.905, -2.0475], rtol=1e-15)
    opt.step(theta, GRAD)
    # v = [-0.095, -0.0475];  w += 0.9 v - 0.1 g = [-0.0855 - 0.05, -0.04275 - 0.025]
    np.testing.assert_allclose(theta, [0.7695, -2.11525], rtol=1e-14)


def test_adam_step_by_hand(backend):
    opt = optim.Adam(2, np.float64, learning_rate_init=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-8)
    theta = THETA0.copy()
    opt.step(theta, GRAD)
    # m = 0.1 g = [0.05, 0.025];  v = 0.001 g^2 = [2.5e-4, 6.25e-5]
    np.testing.assert_allclose(opt.m, [0.05, 0.025], rtol=1e-15)
    np.testing.assert_allclose(opt.v, [2.5e-4, 6.25e-5], rtol=1e-15)
    # eta_1 = 0.001 sqrt(1 - 0.999) / (1 - 0.9) = 0.001 * 0.316227766...
    # sqrt(v) = [0.0158113883, 0.0079056942]; m / (sqrt(v) + 1e-8) = sqrt(10) (1 - 1e-8/sqrt(v)),
    # so the first step moves each weight by 0.001 (less a hair for epsilon) against its gradient.
    eta1 = 0.001 * math.sqrt(0.001) / 0.1
    expected = THETA0 - eta1 * np.array([0.05 / (math.sqrt(2.5e-4) + 1e-8), 0.025 / (math.sqrt(6.25e-5) + 1e-8)])
    np.testing.assert_allclose(theta, expected, rtol=1e-15)
    np.testing.assert_allclose(theta, [0.999, -2.001], atol=2e-9)  # epsilon shortens the step by ~1e-9
    assert opt.t == 1


def test_float32_optimisers_stay_float32(backend):
    for opt in (
        optim.SGD(2, np.float32, learning_rate_init=0.1, momentum=0.9, nesterov=True, schedule="constant", power_t=0.5),
        optim.Adam(2, np.float32, learning_rate_init=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8),
    ):
        theta = THETA0.astype(np.float32)
        opt.step(theta, GRAD.astype(np.float32))
        assert theta.dtype == np.float32
        assert all(a.dtype == np.float32 for a in opt.state().values() if isinstance(a, np.ndarray))


def test_learning_rate_schedules():
    sgd = optim.SGD(
        1, np.float64, learning_rate_init=0.5, momentum=0.0, nesterov=False, schedule="invscaling", power_t=0.25
    )
    sgd.epoch_end(80)
    assert sgd.learning_rate == pytest.approx(0.5 / 81**0.25)  # eta_0 / (t + 1)^p
    assert sgd.plateau() is True  # a plateau stops non-adaptive schedules

    adaptive = optim.SGD(
        1, np.float64, learning_rate_init=1e-5, momentum=0.0, nesterov=False, schedule="adaptive", power_t=0.5
    )
    adaptive.epoch_end(1000)
    assert adaptive.learning_rate == 1e-5  # adaptive ignores t
    assert adaptive.plateau() is False and adaptive.learning_rate == pytest.approx(2e-6)
    assert adaptive.plateau() is False and adaptive.learning_rate == pytest.approx(4e-7)
    assert adaptive.plateau() is True  # at or below 1e-6: stop

    constant = optim.SGD(
        1, np.float64, learning_rate_init=0.5, momentum=0.0, nesterov=False, schedule="constant", power_t=0.5
    )
    constant.epoch_end(1000)
    assert constant.learning_rate == 0.5
    with pytest.raises(ValueError, match="learning_rate must be one of"):
        optim.SGD(1, np.float64, learning_rate_init=0.5, momentum=0.0, nesterov=False, schedule="cosine", power_t=0.5)


# --------------------------------------------------------------------------
# the compiled updates give the NumPy updates' bits
# --------------------------------------------------------------------------


def update_problem(dtype, n: int = 1037, seed: int = 11):
    """Weights, a gradient and Adam-like moments (v >= 0) of a vector split as W1 | b1 | W2 | b2."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=n).astype(dtype)
    grad = (rng.normal(size=n) * np.exp(rng.uniform(-8, 2, size=n))).astype(dtype)  # many scales
    grad[::97] = 0.0  # exact zeros: v stays 0 there and epsilon alone bounds the step
    m = (0.1 * rng.normal(size=n)).astype(dtype)
    v = (0.01 * rng.uniform(size=n) ** 2).astype(dtype)
    v[::89] = 0.0
    segments = ((slice(0, 600), True), (slice(600, 620), False), (slice(620, 1030), True), (slice(1030, n), False))
    return theta, grad, m, v, segments


@pytest.mark.skipif(not HAVE_NUMBA, reason=NO_NUMBA)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("lam", [0.0, 3e-3])
def test_fused_adam_equals_numpy_bit_for_bit(dtype, lam, monkeypatch):
    monkeypatch.setattr(optimizers, "UFUNC_CHUNK", 256)  # NumPy's chunks cut the segments: 600 = 256 + 256 + 88
    theta, grad, m, v, segments = update_problem(dtype)
    results = {}
    for fused in (False, True):
        monkeypatch.setattr(kernels, "FUSED", fused)
        opt = optim.Adam(theta.size, dtype, learning_rate_init=0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-8)
        opt.load_state({"learning_rate": 0.01, "t": 3, "m": m, "v": v})
        th = theta.copy()
        for k in range(4):  # steps 4..7: the bias correction changes every step
            opt.step(th, (grad * (1.0 + 0.25 * k)).astype(dtype), lam, segments)
        results[fused] = (th, opt.m, opt.v)
    for name, a, b in zip(("theta", "m", "v"), results[False], results[True]):
        assert a.dtype == b.dtype == dtype
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert not np.array_equal(results[True][0], theta)  # it did move


@pytest.mark.skipif(not HAVE_NUMBA, reason=NO_NUMBA)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("lam", [0.0, 3e-3])
def test_fused_sgd_equals_numpy_bit_for_bit(dtype, nesterov, lam, monkeypatch):
    monkeypatch.setattr(optimizers, "UFUNC_CHUNK", 256)
    theta, grad, velocity, _, segments = update_problem(dtype, seed=12)
    results = {}
    for fused in (False, True):
        monkeypatch.setattr(kernels, "FUSED", fused)
        opt = optim.SGD(
            theta.size,
            dtype,
            learning_rate_init=0.05,
            momentum=0.9,
            nesterov=nesterov,
            schedule="constant",
            power_t=0.5,
        )
        opt.load_state({"learning_rate": 0.05, "velocity": velocity})
        th = theta.copy()
        for k in range(3):
            opt.step(th, (grad * (1.0 - 0.3 * k)).astype(dtype), lam, segments)
        results[fused] = (th, opt.velocity)
    for name, a, b in zip(("theta", "velocity"), results[False], results[True]):
        assert a.dtype == b.dtype == dtype
        np.testing.assert_array_equal(a, b, err_msg=name)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_numpy_updates_in_chunks_equal_whole_vector_updates(solver, monkeypatch):
    # the NumPy path cuts the vector into cache-sized chunks; elementwise, so the bits cannot change
    monkeypatch.setattr(kernels, "FUSED", False)
    theta, grad, _, _, segments = update_problem(np.float32, seed=14)
    settings = dict(OPTIMIZER_SETTINGS)
    results = []
    for chunk in (100, 1 << 20):
        monkeypatch.setattr(optimizers, "UFUNC_CHUNK", chunk)
        opt, th = optim.make_optimizer(solver, theta.size, np.float32, settings), theta.copy()
        for _ in range(3):
            opt.step(th, grad.copy(), 0.01, segments)
        results.append(th)
    np.testing.assert_array_equal(results[0], results[1])


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_decay_in_the_step_is_the_decayed_gradient(solver, backend):
    # step(theta, g, lam, segments) equals step(theta, g + lam * w on the decayed blocks)
    theta, grad, _, _, segments = update_problem(np.float64, n=1037, seed=13)
    lam = 0.02
    settings = dict(OPTIMIZER_SETTINGS)
    a, b = theta.copy(), theta.copy()
    opt_a = optim.make_optimizer(solver, theta.size, np.float64, settings)
    opt_b = optim.make_optimizer(solver, theta.size, np.float64, settings)
    for _ in range(3):
        opt_a.step(a, grad.copy(), lam, segments)
        decayed = grad.copy()
        for block, on in segments:
            if on:
                decayed[block] += lam * b[block]  # eq. 5.112's gradient at the current weights
        opt_b.step(b, decayed)
    np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-16)
    plain = theta.copy()
    opt_c = optim.make_optimizer(solver, theta.size, np.float64, settings)
    for _ in range(3):
        opt_c.step(plain, grad.copy())
    assert not np.allclose(a[:600], plain[:600], rtol=1e-9)  # the decay moved the decayed weights...
    np.testing.assert_array_equal(a[600:620], plain[600:620])  # ...and left the biases alone


# --------------------------------------------------------------------------
# a few epochs of the fast loop against plain references
# --------------------------------------------------------------------------


def reference_minibatch(
    params,
    X,
    y,
    w,
    lam,
    *,
    solver,
    lr,
    epochs,
    B,
    perms,
    momentum=0.9,
    nesterov=True,
    beta_1=0.9,
    beta_2=0.999,
    epsilon=1e-8,
    activation="tanh",
):
    """SGD / Nesterov / Adam written from their formulas, with network.gradient for every batch."""
    D, M = params.W1.shape
    K = params.W2.shape[1]
    theta = nw.flatten(params).astype(np.float64)
    decay = np.zeros_like(theta)
    decay[: D * M] = 1.0
    decay[D * M + M : D * M + M + M * K] = 1.0  # W1 and W2 decay, b1 and b2 do not
    T = np.eye(K)[y]
    vel, m, v, t = np.zeros_like(theta), np.zeros_like(theta), np.zeros_like(theta), 0
    for epoch in range(epochs):
        order = perms[epoch]
        for start in range(0, len(order), B):
            idx = order[start : start + B]
            g_b = nw.gradient(
                nw.unflatten(theta, D, M, K), X[idx], T[idx], None if w is None else w[idx], activation=activation
            )
            g = nw.flatten(g_b) / len(idx) + lam * decay * theta  # (1/B) sum w_n grad E_n + lam w
            if solver == "sgd":
                vel = momentum * vel - lr * g
                theta = theta + (momentum * vel - lr * g if nesterov else vel)
            else:
                t += 1
                m = beta_1 * m + (1 - beta_1) * g
                v = beta_2 * v + (1 - beta_2) * g * g
                eta = lr * math.sqrt(1 - beta_2**t) / (1 - beta_1**t)
                theta = theta - eta * m / (np.sqrt(v) + epsilon)
    return theta


@pytest.mark.parametrize(
    "solver, nesterov, shuffle, weighted, container",
    [
        ("sgd", False, False, False, "dense"),
        ("sgd", True, True, True, "dense"),
        ("adam", False, True, False, "dense"),
        ("adam", False, False, True, "dense"),
        ("adam", False, True, True, "csr"),
        ("sgd", True, False, False, "csr"),
    ],
)
def test_fast_loop_equals_reference(solver, nesterov, shuffle, weighted, container, backend):
    params, X, y, _, w = problem(N=29, D=6, M=5, K=3, seed=8)
    w = w / w.mean() if weighted else None  # mean-one pattern weights, as the estimator passes them
    lam, lr, B, epochs = 0.01, 0.05, 8, 3  # 29 = 8 + 8 + 8 + 5: a short last batch
    theta = nw.flatten(params).copy()
    state = optim.TrainingState(theta=theta, rng=np.random.default_rng(42))
    settings = {
        "learning_rate_init": lr,
        "momentum": 0.9,
        "nesterovs_momentum": nesterov,
        "learning_rate": "constant",
        "power_t": 0.5,
        "beta_1": 0.9,
        "beta_2": 0.999,
        "epsilon": 1e-8,
    }
    state.optimizer = optim.make_optimizer(solver, theta.size, theta.dtype, settings)
    Xin = sp.csr_matrix(X) if container == "csr" else X
    data = optim.TrainingData(X=Xin, k=y, w=w, lam=lam)
    mb = minibatch(batch_size=B, shuffle=shuffle, max_iter=epochs)
    reason = optim.train_minibatch(state, data, mb, n_classes=3)
    assert reason == "max_iter" and state.n_iter == epochs and state.t == epochs * 29

    rng = np.random.default_rng(42)
    perms = [rng.permutation(29) if shuffle else np.arange(29) for _ in range(epochs)]
    expected = reference_minibatch(
        params, X, y, w, lam, solver=solver, lr=lr, epochs=epochs, B=B, perms=perms, nesterov=nesterov
    )
    np.testing.assert_allclose(state.theta, expected, rtol=1e-11, atol=1e-13)
    assert not np.array_equal(state.theta, nw.flatten(params))  # it did move


def test_loop_loss_curve_is_data_term_plus_final_decay():
    params, X, y, T, _ = problem(N=12, seed=9)
    theta = nw.flatten(params).copy()
    lam = 0.05
    state = optim.TrainingState(theta=theta, rng=np.random.default_rng(0))
    state.optimizer = optim.make_optimizer(
        "sgd",
        theta.size,
        theta.dtype,
        {
            "learning_rate_init": 0.1,
            "momentum": 0.0,
            "nesterovs_momentum": False,
            "learning_rate": "constant",
            "power_t": 0.5,
        },
    )
    data = optim.TrainingData(X=X, k=y, w=None, lam=lam)
    mb = minibatch(batch_size=12, max_iter=1, n_iter_no_change=10)
    E0 = nw.error(params, X, T)  # one full batch: the data term is the error at the starting weights
    optim.train_minibatch(state, data, mb, n_classes=3)
    after = nw.unflatten(state.theta, 5, 4, 3)
    penalty = 0.5 * lam * (np.sum(after.W1**2) + np.sum(after.W2**2))
    assert state.loss_curve == [pytest.approx(E0 / 12 + penalty, rel=1e-13)]


def test_stopping_rule_counts_epochs_without_improvement():
    params, X, y, _, _ = problem(N=12, seed=10)
    theta = nw.flatten(params).copy()
    state = optim.TrainingState(theta=theta, rng=np.random.default_rng(0))
    state.optimizer = optim.make_optimizer(
        "sgd",
        theta.size,
        theta.dtype,
        {
            "learning_rate_init": 1e-12,
            "momentum": 0.0,
            "nesterovs_momentum": False,
            "learning_rate": "constant",
            "power_t": 0.5,
        },
    )
    data = optim.TrainingData(X=X, k=y, w=None, lam=0.0)
    mb = minibatch(batch_size=12, max_iter=50, tol=0.001, n_iter_no_change=3)
    # a negligible learning rate: the first epoch sets best_loss, then every epoch fails to improve by tol,
    # and the count must exceed n_iter_no_change = 3: stop after 1 + 4 epochs
    assert optim.train_minibatch(state, data, mb, n_classes=3) == "converged"
    assert state.n_iter == 5 and state.no_improvement_count == 4


def test_hook_stops_after_the_epoch_it_returns_true():
    params, X, y, _, _ = problem(N=12, seed=11)
    theta = nw.flatten(params).copy()
    state = optim.TrainingState(theta=theta, rng=np.random.default_rng(0))
    state.optimizer = optim.make_optimizer(
        "adam", theta.size, theta.dtype, {"learning_rate_init": 1e-3, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-8}
    )
    seen = []

    def hook(s):
        seen.append((s.n_iter, len(s.loss_curve)))
        return s.n_iter == 2

    data = optim.TrainingData(X=X, k=y, w=None, lam=0.0)
    mb = minibatch(shuffle=True)
    assert optim.train_minibatch(state, data, mb, n_classes=3, on_epoch=hook) == "callback"
    assert seen == [(1, 1), (2, 2)]


def test_divergence_raises_naming_the_learning_rate_and_keeps_finite_weights():
    params, X, y, _, _ = problem(N=20, seed=12)
    X = X * 1e3
    theta = nw.flatten(params).copy()
    state = optim.TrainingState(theta=theta, rng=np.random.default_rng(0))
    state.optimizer = optim.make_optimizer(
        "sgd",
        theta.size,
        theta.dtype,
        {
            "learning_rate_init": 1e30,
            "momentum": 0.9,
            "nesterovs_momentum": True,
            "learning_rate": "constant",
            "power_t": 0.5,
        },
    )
    data = optim.TrainingData(X=X, k=y, w=None, lam=0.0)
    mb = minibatch(activation="identity", max_iter=50)
    kept = []
    with pytest.raises(optim.TrainingDiverged, match=r"learning_rate_init=1e\+30"):
        optim.train_minibatch(state, data, mb, n_classes=3, on_epoch=lambda s: kept.append(s.theta.copy()) and False)
    assert isinstance(optim.TrainingDiverged("x"), ValueError)
    assert np.all(np.isfinite(state.theta)) and np.all(np.isfinite(state.optimizer.velocity))
    expected = kept[-1] if kept else nw.flatten(params)  # the last finished epoch
    np.testing.assert_array_equal(state.theta, expected)


def adam_settings(lr: float = 1e-2) -> dict:
    return {"learning_rate_init": lr, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-8}


def test_divergence_in_the_first_epoch_leaves_a_fresh_adam_as_new():
    # A fresh optimiser's zero moments are not copied into the snapshot; restoring resets them.
    params, X, y, _, _ = problem(N=20, seed=12)
    theta = nw.flatten(params).copy()
    state = optim.TrainingState(theta=theta, rng=np.random.default_rng(0))
    state.optimizer = optim.make_optimizer("adam", theta.size, theta.dtype, adam_settings(1e300))
    data = optim.TrainingData(X=X * 1e100, k=y, w=None, lam=0.0)  # steps of ~1e300 overflow the next batch
    mb = minibatch(activation="identity", shuffle=True, max_iter=5)
    with pytest.raises(optim.TrainingDiverged):
        optim.train_minibatch(state, data, mb, n_classes=3)
    opt = state.optimizer
    np.testing.assert_array_equal(state.theta, nw.flatten(params))
    assert opt.fresh and opt.t == 0 and not opt.m.any() and not opt.v.any()


def test_divergence_after_some_epochs_restores_the_last_epochs_moments(backend):
    # The snapshot's buffers are reused from epoch to epoch; the restored state is the last finished epoch's.
    params, X, y, _, _ = problem(N=20, seed=12)
    theta = nw.flatten(params).copy()
    state = optim.TrainingState(theta=theta, rng=np.random.default_rng(0))
    state.optimizer = optim.make_optimizer("adam", theta.size, theta.dtype, adam_settings())
    data = optim.TrainingData(X=X, k=y, w=None, lam=0.0)
    mb = minibatch(activation="identity", shuffle=True)
    kept = {}

    def hook(s):
        if s.n_iter == 3:  # after three good epochs, make the fourth diverge
            kept.update(theta=s.theta.copy(), **{k: np.copy(v) for k, v in s.optimizer.state().items()})
            data.X *= 1e100
            s.optimizer.learning_rate = 1e300
        return False

    with pytest.raises(optim.TrainingDiverged, match="epoch 4"):
        optim.train_minibatch(state, data, mb, n_classes=3, on_epoch=hook)
    opt = state.optimizer
    np.testing.assert_array_equal(state.theta, kept["theta"])
    np.testing.assert_array_equal(opt.m, kept["m"])
    np.testing.assert_array_equal(opt.v, kept["v"])
    assert opt.t == kept["t"] == 12 and not opt.fresh


@pytest.mark.skipif(not HAVE_NUMBA, reason=NO_NUMBA)
def test_gather_kernel_copies_rows_and_finds_the_first_non_finite_one():
    compiled = kernels._compiled()
    rng = np.random.default_rng(3)
    for dtype in (np.float32, np.float64):
        X = rng.normal(size=(40, 33)).astype(dtype)
        idx = rng.permutation(40)[:17]
        out = np.empty((17, 33), dtype)
        assert compiled.gather(X, idx, out) == -1
        np.testing.assert_array_equal(out, X[idx])
        for bad in (np.nan, np.inf, -np.inf):
            Y = X.copy()
            Y[idx[9], 32] = bad  # the last column
            Y[idx[12], 0] = bad
            assert compiled.gather(Y, idx, out) == 9


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("value, kind", [(np.nan, "NaN"), (-np.inf, "infinity")])
def test_unchecked_rows_are_checked_in_the_first_epoch(shuffle, value, kind, backend):
    params, X, y, _, _ = problem(N=29, seed=4)
    X[17, 2] = value
    theta = nw.flatten(params).copy()
    state = optim.TrainingState(theta=theta, rng=np.random.default_rng(0))
    state.optimizer = optim.make_optimizer("adam", theta.size, theta.dtype, adam_settings())
    data = optim.TrainingData(X=X, k=y, w=None, lam=0.0, checked=False)
    mb = minibatch(batch_size=4, shuffle=shuffle, max_iter=3)
    with pytest.raises(optim.NonFiniteInput, match=f"Input X contains {kind} at row 17, column 2"):
        optim.train_minibatch(state, data, mb, n_classes=3)
    assert isinstance(optim.NonFiniteInput("x"), ValueError)
    np.testing.assert_array_equal(state.theta, nw.flatten(params))  # restored
    assert state.optimizer.fresh and not state.optimizer.m.any() and state.loss_curve == []


def test_a_bad_row_after_a_divergence_is_named_not_the_divergence(backend):
    # Batches in row order (rows given, no shuffling); the steps blow up in the second batch, long
    # before the last row, which holds a NaN: the error is the input's, and the state is restored.
    params, X, y, _, _ = problem(N=40, seed=6)
    X = X * 1e100
    X[39, 3] = np.nan
    theta = nw.flatten(params).copy()
    state = optim.TrainingState(theta=theta, rng=np.random.default_rng(0))
    state.optimizer = optim.make_optimizer(
        "sgd",
        theta.size,
        theta.dtype,
        {
            "learning_rate_init": 10.0,
            "momentum": 0.9,
            "nesterovs_momentum": True,
            "learning_rate": "constant",
            "power_t": 0.5,
        },
    )
    data = optim.TrainingData(X=X, k=y, w=None, lam=0.0, rows=np.arange(40), checked=False)
    mb = minibatch(activation="relu", max_iter=3)
    with pytest.raises(optim.NonFiniteInput, match="NaN at row 39, column 3"):
        optim.train_minibatch(state, data, mb, n_classes=3)
    np.testing.assert_array_equal(state.theta, nw.flatten(params))
    data.X[39, 3] = 0.0  # the same run on finite input is a divergence
    with pytest.raises(optim.TrainingDiverged):
        optim.train_minibatch(state, data, mb, n_classes=3)


def test_check_finite_works_in_pieces(monkeypatch):
    monkeypatch.setattr(batch, "CHECK_ROWS", 3)
    X = np.ones((10, 2))
    X[7, 1] = np.nan
    with pytest.raises(optim.NonFiniteInput, match="row 7, column 1"):
        optim.check_finite(X)
    with pytest.raises(optim.NonFiniteInput, match="row 7, column 1"):
        optim.check_finite(X, np.array([9, 0, 7, 3]))
    optim.check_finite(X, np.array([9, 0, 6, 3, 8]))


@pytest.mark.parametrize("rows", [None, "subset"])
def test_checking_rows_as_they_are_gathered_changes_no_number(rows, backend):
    params, X, y, _, _ = problem(N=29, seed=5)
    subset = None if rows is None else np.sort(np.random.default_rng(1).permutation(29)[:21])
    runs = []
    for checked in (True, False):
        theta = nw.flatten(params).copy()
        state = optim.TrainingState(theta=theta, rng=np.random.default_rng(0))
        state.optimizer = optim.make_optimizer("adam", theta.size, theta.dtype, adam_settings())
        data = optim.TrainingData(X=X, k=y, w=None, lam=1e-3, rows=subset, checked=checked)
        mb = minibatch(batch_size=4, shuffle=True, max_iter=3)
        optim.train_minibatch(state, data, mb, n_classes=3)
        assert data.checked  # every row was seen
        runs.append((state.theta, state.loss_curve))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]


def test_check_finite_names_the_first_bad_row_of_those_asked():
    X = np.ones((6, 3))
    optim.check_finite(X)
    X[4, 1] = np.inf
    X[1, 2] = np.nan
    with pytest.raises(optim.NonFiniteInput, match="NaN at row 1, column 2"):
        optim.check_finite(X)
    with pytest.raises(optim.NonFiniteInput, match="infinity at row 4, column 1"):
        optim.check_finite(X, np.array([0, 4, 5]))
    optim.check_finite(X, np.array([0, 2, 3]))
    optim.check_finite(np.full((3, 2), np.finfo(np.float32).max, np.float32))  # the sum overflows, the rows are finite


# --------------------------------------------------------------------------
# L-BFGS
# --------------------------------------------------------------------------


def lbfgs_problem(dtype=np.float64):
    params, X, y, T, _ = problem(N=40, D=4, M=3, K=3, seed=13, dtype=dtype)
    data = optim.TrainingData(X=X, k=y, w=None, lam=1e-2 / 40)
    return params, X, y, T, data


def test_lbfgs_follows_scipy_on_the_reference_objective():
    import scipy.optimize

    params, X, _y, T, data = lbfgs_problem()
    state = optim.TrainingState(theta=nw.flatten(params).copy())
    reason, _ = optim.train_lbfgs(
        state, data, optim.LbfgsSettings("tanh", max_iter=8, max_fun=15000, tol=1e-12), n_classes=3
    )
    assert reason == "max_iter" and state.n_iter == 8 and len(state.loss_curve) == 8

    def fun(t):  # the objective and its gradient from the reference network functions
        p = nw.unflatten(t, 4, 3, 3)
        _E, g = nw.error_and_gradient(p, X, T)
        g = nw.flatten(g) / 40
        g[:12] += 1e-2 / 40 * t[:12]
        g[15:24] += 1e-2 / 40 * t[15:24]
        return optim.objective(p, X, T, alpha=1e-2), g

    ref = scipy.optimize.minimize(
        fun, nw.flatten(params), jac=True, method="L-BFGS-B", options={"maxiter": 8, "gtol": 1e-12}
    )
    np.testing.assert_allclose(state.theta, ref.x, rtol=1e-7, atol=1e-9)
    assert state.loss_curve[-1] == pytest.approx(ref.fun, rel=1e-10)
    assert all(a >= b for a, b in zip(state.loss_curve, state.loss_curve[1:]))  # L-BFGS-B descends


def test_lbfgs_float32_keeps_float32_and_converges():
    params, _X, _y, _T, data = lbfgs_problem(np.float32)
    theta = nw.flatten(params).copy()
    state = optim.TrainingState(theta=theta)
    reason, message = optim.train_lbfgs(
        state, data, optim.LbfgsSettings("tanh", max_iter=500, max_fun=15000, tol=1e-4), n_classes=3
    )
    assert state.theta is theta and theta.dtype == np.float32
    assert reason == "converged", message
    assert state.t > 0 and state.t % 40 == 0  # N patterns per function evaluation


def test_lbfgs_hook_stops_at_an_iterate():
    params, X, _y, T, data = lbfgs_problem()
    state = optim.TrainingState(theta=nw.flatten(params).copy())
    recorded = []

    def hook(s):
        recorded.append(s.theta.copy())
        return s.n_iter == 3

    reason, _ = optim.train_lbfgs(
        state, data, optim.LbfgsSettings("tanh", max_iter=100, max_fun=15000, tol=1e-12), n_classes=3, on_epoch=hook
    )
    assert reason == "callback" and state.n_iter == 3
    np.testing.assert_array_equal(state.theta, recorded[-1])
    f = optim.objective(nw.unflatten(state.theta, 4, 3, 3), X, T, alpha=1e-2)
    assert state.loss_curve[-1] == pytest.approx(f, rel=1e-12)


def test_lbfgs_non_finite_error_raises_and_keeps_the_start():
    params, X, y, _T, _ = lbfgs_problem()
    data = optim.TrainingData(X=X * 1e300, k=y, w=None, lam=0.0)
    start = nw.flatten(params).copy()
    state = optim.TrainingState(theta=start.copy())
    with pytest.raises(optim.TrainingDiverged, match="non-finite"):
        optim.train_lbfgs(state, data, optim.LbfgsSettings("identity", max_iter=5, max_fun=100, tol=1e-4), n_classes=3)
    np.testing.assert_array_equal(state.theta, start)


# --------------------------------------------------------------------------
# divergence names its likely cause, and overflow is never taken for bad input
# --------------------------------------------------------------------------


def test_likely_cause_tells_the_decay_the_inputs_and_the_steps_apart():
    cause = optim.likely_cause
    # A decay whose penalty and squares overflow: a fourth root of the dtype's largest number.
    assert cause(1e10, np.float32, 1.0, None, True) == "alpha"
    assert cause(1e10, np.float64, 1.0, None, True) == "learning_rate_init"
    assert cause(1e80, np.float64, 1.0, None, False) == "alpha"
    assert cause((0.0, 1e80, 0.0, 0.0), np.float64, 1.0, None, False) == "alpha"  # any group's decay
    # Plain SGD: a decay step beyond 2 overshoots; blamed on the decay only where it outweighs the data.
    assert cause(10.0, np.float64, 1.0, 1.0, True) == "alpha"
    assert cause(1e-3, np.float64, 1.0, 1e4, True) == "learning_rate_init"
    # Inputs whose products overflow.
    assert cause(1e-4, np.float64, 1e300, None, True) == "X"
    assert cause(1e-4, np.float32, 1e20, None, False) == "X"
    assert cause(1e-4, np.float64, 1e20, None, False) == "solver"


def test_a_huge_decay_in_lbfgs_is_blamed_on_alpha_not_the_inputs():
    params, X, y, _T, _ = lbfgs_problem()
    data = optim.TrainingData(X=X, k=y, w=None, lam=1e300 / 40)
    state = optim.TrainingState(theta=nw.flatten(params).copy())
    with pytest.raises(optim.Diverged, match="lower alpha") as raised:
        optim.train_lbfgs(state, data, optim.LbfgsSettings("tanh", max_iter=5, max_fun=100, tol=1e-4), n_classes=3)
    assert raised.value.cause == "alpha"
    assert "inputs" not in str(raised.value) and "NaN" not in str(raised.value)


@pytest.mark.parametrize("method", optim.SECOND_ORDER_METHODS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_huge_decay_in_the_second_order_solvers_is_a_divergence(method, dtype):
    # trust-ncg's norms refused the overflow with SciPy's own ValueError, and Newton-CG's
    # conjugate gradients ran on NaN to their limit of 20 W products per iteration.
    params, X, y, _T, _ = lbfgs_problem(dtype)
    data = optim.TrainingData(X=X, k=y, w=None, lam=1e300 / 40)
    start = nw.flatten(params).copy()
    state = optim.TrainingState(theta=start.copy())
    settings = optim.LbfgsSettings("tanh", max_iter=5, max_fun=100, tol=1e-4)
    try:
        optim.train_second_order(state, data, settings, method=method, n_classes=3)
    except optim.Diverged as exc:
        assert exc.cause == "alpha" and "lower alpha" in str(exc)
        assert np.isfinite(state.theta).all()
    else:  # a solver that stays finite ends at a finite point
        assert np.isfinite(state.theta).all() and state.loss is not None and math.isfinite(state.loss)


def test_huge_inputs_are_named_as_the_cause_not_as_bad_input():
    # Finite inputs whose products overflow: a divergence about their scale, never NonFiniteInput.
    params, X, y, _, _ = problem(N=20, seed=12)
    theta = nw.flatten(params).copy()
    state = optim.TrainingState(theta=theta, rng=np.random.default_rng(0))
    state.optimizer = optim.make_optimizer("adam", theta.size, theta.dtype, adam_settings(1e300))
    data = optim.TrainingData(X=X * 1e100, k=y, w=None, lam=0.0, checked=False)
    mb = minibatch(activation="identity", shuffle=True, max_iter=5)
    with pytest.raises(optim.TrainingDiverged) as raised:
        optim.train_minibatch(state, data, mb, n_classes=3)
    assert not isinstance(raised.value, optim.NonFiniteInput)
    assert raised.value.cause == "X" and "the inputs reach" in str(raised.value) and "scale them" in str(raised.value)


def test_make_optimizer_rejects_unknown_solver():
    with pytest.raises(ValueError, match="'sgd' or 'adam'"):
        optim.make_optimizer("rmsprop", 3, np.float64, {})


# --------------------------------------------------------------------------
# the facade: every name of the one-module optim, and its switches
# --------------------------------------------------------------------------


def test_the_facade_keeps_every_public_name():
    import twolayer.optim

    assert twolayer.optim is optim
    names = (
        "SGD Adam LbfgsSettings MinibatchSettings NonFiniteInput TrainingData TrainingDiverged TrainingState "
        "check_finite checks_rows_as_it_gathers make_optimizer objective train_lbfgs train_minibatch "
        "train_second_order LEARNING_RATE_SCHEDULES SMALL_PROBLEM SECOND_ORDER_METHODS EpochHook Optimizer "
        "Segments Snapshot FUSED UFUNC_CHUNK CHECK_ROWS Diverged CAUSES likely_cause largest_input"
    ).split()
    missing = [name for name in names if not hasattr(optim, name)]
    assert not missing, missing


def test_setting_a_switch_on_the_facade_sets_it_where_it_is_read(monkeypatch):
    from twolayer.training import full_batch

    for module, name, value in (
        (kernels, "FUSED", False),
        (optimizers, "UFUNC_CHUNK", 7),
        (batch, "CHECK_ROWS", 3),
        (full_batch, "SMALL_PROBLEM", 11),
    ):
        before = getattr(module, name)
        with monkeypatch.context() as patch:
            patch.setattr(optim, name, value)
            assert getattr(module, name) == value and getattr(optim, name) == value
        assert getattr(module, name) == before and getattr(optim, name) == before
    X = np.ones((10, 2))
    X[7, 1] = np.nan
    monkeypatch.setattr(optim, "CHECK_ROWS", 3)  # the check then works in pieces of three rows
    with pytest.raises(optim.NonFiniteInput, match="row 7, column 1"):
        optim.check_finite(X)
