"""Tests of the grouped prior: twolayer.prior, and its decay in training and curvature.

The oracles: the autograd error of tests/oracles.py with its own per-group decay
(PRML eqs. 5.24 and 5.122–5.123, written without the package), its autograd
gradient and Hessian, SciPy's L-BFGS-B on that oracle, and the plain
weight-decay path itself, which a decay of (alpha, 0, alpha, 0) must reproduce
bit for bit.
"""

from __future__ import annotations

import autograd
import numpy as np
import pytest
import scipy.optimize
import scipy.sparse as sp

import oracles
from twolayer import curvature as cv
from twolayer import network as nw
from twolayer import prior
from twolayer.network import Params
from twolayer.training import full_batch, kernels, optim

try:
    import numba  # noqa: F401  (optional: the compiled kernels)

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover
    HAVE_NUMBA = False

BACKENDS = ["numpy", pytest.param("numba", marks=pytest.mark.skipif(not HAVE_NUMBA, reason="numba not installed"))]
GROUPED = (0.7, 0.2, 1.3, 0.05)  # alpha for W1, b1, W2, b2: all different, so a group mix-up shows


@pytest.fixture(params=BACKENDS)
def backend(request, monkeypatch):
    """The NumPy updates, then the compiled ones."""
    monkeypatch.setattr(kernels, "FUSED", request.param == "numba")
    return request.param


def problem(N: int = 19, D: int = 4, M: int = 3, K: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    params = nw.init_params(D, M, K, random_state=rng)
    X = rng.normal(size=(N, D))
    y = rng.integers(0, K, size=N).astype(np.intp)
    s = rng.uniform(0.3, 2.0, size=N)
    return params, X, y, np.eye(K)[y], s


# --------------------------------------------------------------------------
# the module
# --------------------------------------------------------------------------


def test_groups_sizes_ids_and_precision_vector_follow_flatten_order():
    D, M, K = 3, 2, 4
    assert prior.GROUPS == ("W1", "b1", "W2", "b2")
    assert prior.group_sizes(D, M, K) == (6, 2, 8, 4)
    ids = prior.group_ids(D, M, K)
    params = Params(np.zeros((D, M)), np.ones(M), np.full((M, K), 2.0), np.full(K, 3.0))
    np.testing.assert_array_equal(ids, nw.flatten(params))  # each entry holds its group's index
    alpha = np.array([0.5, 1.5, 2.5, 3.5])
    np.testing.assert_array_equal(prior.precision_vector(alpha, D, M, K), alpha[ids])
    np.testing.assert_array_equal(
        prior.precision_vector({"b2": 3.5, "W2": 2.5, "b1": 1.5, "W1": 0.5}, D, M, K), alpha[ids]
    )
    with pytest.raises(ValueError, match="four group precisions"):
        prior.precision_vector(0.5, D, M, K)


def test_as_prior_precision_reads_one_number_as_every_group():
    np.testing.assert_array_equal(prior.as_prior_precision(2.0), [2.0] * 4)
    np.testing.assert_array_equal(prior.as_prior_precision([1, 2, 3, 4]), [1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(prior.as_prior_precision({"W1": 1, "b1": 2, "W2": 3, "b2": 4}), [1, 2, 3, 4])
    for bad in (0.0, [1, 2, 3, -1], [1, 2, 3, np.inf], np.nan):
        with pytest.raises(ValueError, match="positive and finite"):
            prior.as_prior_precision(bad)
    with pytest.raises(ValueError, match="four numbers"):
        prior.as_prior_precision([1, 2, 3])
    with pytest.raises(ValueError, match="exactly the keys"):
        prior.as_prior_precision({"W1": 1.0})


def test_decay_per_group_reads_one_number_as_the_weights_only():
    assert prior.decay_per_group(0.3) == (0.3, 0.0, 0.3, 0.0)
    assert prior.decay_per_group(0) == (0.0, 0.0, 0.0, 0.0)
    assert prior.decay_per_group((1, 0, 2, 0.5)) == (1.0, 0.0, 2.0, 0.5)
    assert prior.decay_per_group({"W1": 1, "b1": 0, "W2": 2, "b2": 0.5}) == (1.0, 0.0, 2.0, 0.5)
    assert all(type(a) is float for a in prior.decay_per_group(np.float32(0.25)))
    assert prior.is_weight_decay(prior.decay_per_group(0.3))
    assert not prior.is_weight_decay((0.3, 0.0, 0.3, 1e-300))
    assert not prior.is_weight_decay((0.3, 0.0, 0.2, 0.0))
    for bad in (-1.0, np.nan, [1, 2, 3, -1e-300]):
        with pytest.raises(ValueError, match="non-negative"):
            prior.decay_per_group(bad)
    with pytest.raises(ValueError, match="four numbers"):
        prior.decay_per_group([1.0, 2.0])


# --------------------------------------------------------------------------
# training: the grouped decay against the autograd oracle
# --------------------------------------------------------------------------


def oracle_objective(theta, X, T, s, shape, alpha):
    """(E + sum_g alpha_g / 2 ||w_g||^2) / S from tests/oracles.py, and its autograd gradient."""
    S = X.shape[0] if s is None else float(np.sum(s))

    def f(t):
        return oracles.error(t, X, T, s, *shape, alpha=alpha) / S

    return f(theta), autograd.grad(f)(theta)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("chunk", [1000, 6])
def test_full_batch_objective_and_gradient_with_a_decay_per_group(weighted, chunk):
    params, X, y, T, s = problem(seed=1)
    s = s if weighted else None
    N, S = X.shape[0], (X.shape[0] if s is None else float(s.sum()))
    lam = tuple(a / S for a in GROUPED)  # lam_g = alpha_g / S
    data = optim.TrainingData(X=X, k=y, w=None if s is None else s * (N / S), lam=lam)
    full = full_batch._FullBatch(data, (4, 3, 3), np.float64, "tanh", chunk=chunk)
    theta = nw.flatten(params)
    f, g = full(theta.copy())
    f_ref, g_ref = oracle_objective(theta, X, T, s, (4, 3, 3), GROUPED)
    assert f == pytest.approx(f_ref, rel=1e-13)
    assert oracles.rel_err(g, g_ref) < 1e-12, (g, g_ref)
    assert optim.objective(params, X, T, s, alpha=GROUPED) == pytest.approx(f_ref, rel=1e-13)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("container", ["dense", "csr"])
def test_one_full_batch_step_follows_the_oracle_gradient(solver, container, backend):
    # One epoch of one batch of all N rows: the step is along grad(E~)/S = (1/N) grad E + lam_g w_g,
    # which autograd gives from the oracle; SGD without momentum moves by -eta g, Adam's first
    # step by -eta sqrt(1 - beta2) / (1 - beta1) * g / (|g| + eps).
    params, X, y, T, _ = problem(seed=2)
    N = X.shape[0]
    lam = tuple(a / N for a in GROUPED)
    theta0 = nw.flatten(params)
    state = optim.TrainingState(theta=theta0.copy(), rng=np.random.default_rng(0))
    settings = {
        "learning_rate_init": 0.1,
        "momentum": 0.0,
        "nesterovs_momentum": False,
        "learning_rate": "constant",
        "power_t": 0.5,
        "beta_1": 0.9,
        "beta_2": 0.999,
        "epsilon": 1e-8,
    }
    state.optimizer = optim.make_optimizer(solver, theta0.size, np.float64, settings)
    Xin = sp.csr_matrix(X) if container == "csr" else X
    data = optim.TrainingData(X=Xin, k=y, w=None, lam=lam)
    mb = optim.MinibatchSettings("tanh", N, False, 1, 0.0, 10, False)
    optim.train_minibatch(state, data, mb, n_classes=3)
    f0, g = oracle_objective(theta0, X, T, None, (4, 3, 3), GROUPED)
    if solver == "sgd":
        expected = theta0 - 0.1 * g
    else:
        m, v = 0.1 * g, 0.001 * g * g
        expected = theta0 - 0.1 * np.sqrt(0.001) / 0.1 * m / (np.sqrt(v) + 1e-8)
    np.testing.assert_allclose(state.theta, expected, rtol=1e-12, atol=1e-14)
    # the epoch's loss: the data term at the start plus the grouped decay at the end, over S
    E0 = oracles.error(theta0, X, T, None, 4, 3, 3) / N
    penalty = oracles.error(state.theta, X, T, None, 4, 3, 3, alpha=GROUPED) - oracles.error(
        state.theta, X, T, None, 4, 3, 3
    )
    assert state.loss_curve == [pytest.approx(E0 + penalty / N, rel=1e-12)]
    assert f0 > 0


def test_lbfgs_with_a_decay_per_group_follows_scipy_on_the_oracle():
    params, X, y, T, _ = problem(N=30, seed=3)
    N = X.shape[0]
    data = optim.TrainingData(X=X, k=y, w=None, lam={g: a / N for g, a in zip(prior.GROUPS, GROUPED)})
    state = optim.TrainingState(theta=nw.flatten(params).copy())
    optim.train_lbfgs(state, data, optim.LbfgsSettings("tanh", max_iter=6, max_fun=15000, tol=1e-12), n_classes=3)
    ref = scipy.optimize.minimize(
        lambda t: oracle_objective(t, X, T, None, (4, 3, 3), GROUPED),
        nw.flatten(params),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 6, "gtol": 1e-12},
    )
    np.testing.assert_allclose(state.theta, ref.x, rtol=1e-7, atol=1e-9)
    assert state.loss_curve[-1] == pytest.approx(ref.fun, rel=1e-10)


def test_lbfgs_with_a_tight_ftol_reaches_a_stationary_point_of_the_grouped_objective():
    # SciPy's default ftol stops on a small relative reduction of f before gtol is met;
    # with ftol set, the run goes on until the gradient of E~ (autograd of the oracle) vanishes.
    params, X, y, T, _ = problem(N=40, seed=13)
    N = X.shape[0]
    data = optim.TrainingData(X=X, k=y, w=None, lam=tuple(a / N for a in GROUPED))
    gradients = []
    for ftol in (None, 1e-10 * np.finfo(float).eps ** 0.5):
        state = optim.TrainingState(theta=nw.flatten(params).copy())
        settings = optim.LbfgsSettings("tanh", 5000, 15000, 1e-10, ftol=ftol)
        reason, message = optim.train_lbfgs(state, data, settings, n_classes=3)
        assert reason == "converged", message
        gradients.append(np.abs(oracle_objective(state.theta, X, T, None, (4, 3, 3), GROUPED)[1]).max())
    assert gradients[1] < 1e-7 < gradients[0], gradients


@pytest.mark.parametrize("method", optim.SECOND_ORDER_METHODS)
def test_second_order_hessian_products_carry_the_decay_per_group(method, monkeypatch):
    # The solvers see H v of E~/S; record one and compare with autograd's Hessian of the oracle.
    from twolayer.training import second_order

    params, X, y, T, _ = problem(N=15, seed=4)
    N = X.shape[0]
    data = optim.TrainingData(X=X, k=y, w=None, lam=tuple(a / N for a in GROUPED))
    seen = []
    solver = "scaled_conjugate_gradient" if method == "scg" else "minimize_newton"
    original = getattr(second_order, solver)

    def spy(fun, x0, *, hessp, **kwargs):
        v = np.random.default_rng(0).normal(size=x0.size)
        seen.append((x0.copy(), v, hessp(x0, v)))
        return original(fun, x0, hessp=hessp, **kwargs)

    monkeypatch.setattr(second_order, solver, spy)
    state = optim.TrainingState(theta=nw.flatten(params).copy())
    optim.train_second_order(state, data, optim.LbfgsSettings("tanh", 3, 100, 1e-10), method=method, n_classes=3)
    x0, v, Hv = seen[0]
    H = autograd.hessian(lambda t: oracles.error(t, X, T, None, 4, 3, 3, alpha=GROUPED) / N)(x0)
    assert oracles.rel_err(Hv, H @ v) < 1e-11


# --------------------------------------------------------------------------
# one number and its four groups (alpha, 0, alpha, 0): the same bits
# --------------------------------------------------------------------------


def run_minibatch(lam, solver, shuffle, container):
    params, X, y, _, s = problem(N=23, seed=5)
    theta = nw.flatten(params).copy()
    state = optim.TrainingState(theta=theta, rng=np.random.default_rng(7))
    settings = dict(oracles.OPTIMIZER_SETTINGS)
    state.optimizer = optim.make_optimizer(solver, theta.size, theta.dtype, settings)
    Xin = sp.csr_matrix(X) if container == "csr" else X
    data = optim.TrainingData(X=Xin, k=y, w=s / s.mean(), lam=lam)
    mb = optim.MinibatchSettings("tanh", 5, shuffle, 3, 0.0, 100, False)
    optim.train_minibatch(state, data, mb, n_classes=3)
    return state


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("shuffle, container", [(True, "dense"), (False, "csr")])
def test_minibatch_one_number_and_its_four_groups_give_the_same_bits(solver, shuffle, container, backend):
    a = run_minibatch(0.013, solver, shuffle, container)
    b = run_minibatch((0.013, 0.0, 0.013, 0.0), solver, shuffle, container)
    c = run_minibatch(0.0, solver, shuffle, container)
    np.testing.assert_array_equal(a.theta, b.theta)
    assert a.loss_curve == b.loss_curve
    assert not np.array_equal(a.theta, c.theta)  # the decay did act


def test_lbfgs_and_objective_one_number_and_its_four_groups_give_the_same_bits():
    params, X, y, T, s = problem(N=30, seed=6)
    runs = []
    for lam in (0.02, (0.02, 0.0, 0.02, 0.0)):
        state = optim.TrainingState(theta=nw.flatten(params).copy())
        data = optim.TrainingData(X=X, k=y, w=s / s.mean(), lam=lam)
        optim.train_lbfgs(state, data, optim.LbfgsSettings("tanh", 10, 15000, 1e-12), n_classes=3)
        runs.append(state)
    np.testing.assert_array_equal(runs[0].theta, runs[1].theta)
    assert runs[0].loss_curve == runs[1].loss_curve
    assert optim.objective(params, X, T, s, alpha=0.4) == optim.objective(params, X, T, s, alpha=(0.4, 0, 0.4, 0))


@pytest.mark.parametrize("method", optim.SECOND_ORDER_METHODS)
def test_second_order_one_number_and_its_four_groups_give_the_same_bits(method):
    params, X, y, _, _ = problem(N=20, seed=7)
    runs = []
    for lam in (0.01, (0.01, 0.0, 0.01, 0.0)):
        state = optim.TrainingState(theta=nw.flatten(params).copy())
        data = optim.TrainingData(X=X, k=y, w=None, lam=lam)
        optim.train_second_order(state, data, optim.LbfgsSettings("tanh", 5, 100, 1e-12), method=method, n_classes=3)
        runs.append(state)
    np.testing.assert_array_equal(runs[0].theta, runs[1].theta)
    assert runs[0].loss_curve == runs[1].loss_curve


@pytest.mark.skipif(not HAVE_NUMBA, reason="numba not installed")
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_compiled_and_numpy_steps_agree_bit_for_bit_with_a_decay_per_block(solver, monkeypatch):
    rng = np.random.default_rng(8)
    theta, grad = rng.normal(size=300), rng.normal(size=300)
    segments = ((slice(0, 100), 0.02), (slice(100, 110), 0.5), (slice(110, 290), 0.0), (slice(290, 300), 1e-3))
    settings = dict(oracles.OPTIMIZER_SETTINGS)
    results = []
    for fused in (False, True):
        monkeypatch.setattr(kernels, "FUSED", fused)
        opt, th = optim.make_optimizer(solver, theta.size, np.float64, settings), theta.copy()
        for _ in range(3):
            opt.step(th, grad.copy(), 1.0, segments)
        results.append(th)
    np.testing.assert_array_equal(results[0], results[1])
    # and each block's decay is its own: the same steps along g + c_s w, written out
    opt, ref = optim.make_optimizer(solver, theta.size, np.float64, settings), theta.copy()
    for _ in range(3):
        g = grad.copy()
        for block, c in segments:
            g[block] += c * ref[block]
        opt.step(ref, g)
    np.testing.assert_allclose(results[0], ref, rtol=1e-14, atol=1e-16)


# --------------------------------------------------------------------------
# curvature: the grouped decay against autograd
# --------------------------------------------------------------------------


def test_curvature_takes_a_decay_per_group():
    params, X, _, T, s = problem(N=9, D=3, M=2, K=3, seed=9)
    D, M, K = 3, 2, 3
    theta = nw.flatten(params)
    H_ag = autograd.hessian(lambda t: oracles.error(t, X, T, s, D, M, K, alpha=GROUPED))(theta)
    H = cv.hessian(params, X, T, s, alpha=GROUPED)
    assert oracles.rel_err(H, H_ag) < 1e-12
    G0 = cv.gauss_newton(params, X, T, s)
    decay = np.diag(prior.precision_vector(GROUPED, D, M, K))
    np.testing.assert_allclose(cv.gauss_newton(params, X, T, s, alpha=GROUPED), G0 + decay, rtol=0, atol=1e-15)
    v = np.random.default_rng(10).normal(size=theta.size)
    Hv = nw.flatten(cv.hessian_vector_product(params, X, T, v, s, alpha=GROUPED))
    assert oracles.rel_err(Hv, H_ag @ v) < 1e-12
    Gv = nw.flatten(cv.gauss_newton_vector_product(params, X, T, v, s, alpha=GROUPED))
    assert oracles.rel_err(Gv, (G0 + decay) @ v) < 1e-12
    assert oracles.rel_err(cv.hessian_operator(params, X, T, s, alpha=GROUPED) @ v, H_ag @ v) < 1e-12
    assert oracles.rel_err(cv.gauss_newton_operator(params, X, T, s, alpha=GROUPED) @ v, (G0 + decay) @ v) < 1e-12
    diag = nw.flatten(cv.hessian_diagonal(params, X, T, s, alpha=GROUPED))
    assert oracles.rel_err(diag, np.diag(H_ag)) < 1e-12
    mapping = dict(zip(prior.GROUPS, GROUPED))
    np.testing.assert_array_equal(cv.hessian(params, X, T, s, alpha=mapping), H)


def test_curvature_one_number_and_its_four_groups_give_the_same_bits():
    params, X, _, T, s = problem(N=9, D=3, M=2, K=3, seed=11)
    v = np.random.default_rng(12).normal(size=nw.n_params(3, 2, 3))
    a, groups = 0.37, (0.37, 0.0, 0.37, 0.0)
    for f in (cv.hessian, cv.gauss_newton):
        np.testing.assert_array_equal(f(params, X, T, s, alpha=a), f(params, X, T, s, alpha=groups))
    for f in (cv.hessian_vector_product, cv.gauss_newton_vector_product):
        for x, y in zip(f(params, X, T, v, s, alpha=a), f(params, X, T, v, s, alpha=groups)):
            np.testing.assert_array_equal(x, y)
    for x, y in zip(cv.hessian_diagonal(params, X, T, s, alpha=a), cv.hessian_diagonal(params, X, T, s, alpha=groups)):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(ValueError, match="alpha must be a non-negative number or four"):
        cv.hessian(params, X, T, s, alpha=(1.0, -1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="alpha must be a non-negative number or four"):
        cv.hessian(params, X, T, s, alpha=-0.5)
