"""Tests of the activation registry: a new entry works on every path, or cannot be registered.

The hazard these tests pin: the training loop's fast path once chose the
activation by its name and did nothing for a name it did not know, so a
registered activation trained one network and predicted with another. Here two
activations the package does not ship (softplus, with a compiled delta kernel,
and softsign, without) are registered for the length of a test, and every
path is compared with something independent: central differences of the
error, the reference backpropagation, and the activation's formula written
out in NumPy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

import oracles
from twolayer import activations
from twolayer import curvature as cv
from twolayer import network as nw
from twolayer.classifier import TwoLayerClassifier
from twolayer.network import Activation, Params
from twolayer.training import batch, kernels, optim

try:
    import numba  # noqa: F401  (optional: the compiled kernels)

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover
    HAVE_NUMBA = False

BACKENDS = ["numpy", pytest.param("numba", marks=pytest.mark.skipif(not HAVE_NUMBA, reason="numba not installed"))]


# --------------------------------------------------------------------------
# Two activations from outside the package, each with its derivatives from z = h(a)
# --------------------------------------------------------------------------


def softplus(xp: Any, a: Any) -> Any:
    return xp.logaddexp(xp.zeros_like(a), a)  # ln(1 + e^a), without overflow


def softplus_prime(xp: Any, z: Any) -> Any:
    return -xp.expm1(-z)  # sigma(a) = 1 - e^{-z}, since e^{-z} = 1 / (1 + e^a)


def softplus_second(xp: Any, z: Any) -> Any:
    return -xp.expm1(-z) * xp.exp(-z)  # sigma (1 - sigma)


def softplus_inplace(A: np.ndarray) -> None:
    np.logaddexp(0.0, A, out=A)


def softplus_delta_inplace(Z: np.ndarray, D: np.ndarray) -> None:
    np.negative(Z, out=Z)
    np.expm1(Z, out=Z)
    np.negative(Z, out=Z)  # 1 - e^{-z}
    D *= Z


def softplus_delta_kernel(Z: np.ndarray, D: np.ndarray, grad_b: np.ndarray, one: Any) -> None:
    B, M = D.shape
    for j in range(M):
        grad_b[j] = 0.0
    for n in range(B):
        for j in range(M):
            d = D[n, j] * -np.expm1(-Z[n, j])
            D[n, j] = d
            grad_b[j] += d


def softsign(xp: Any, a: Any) -> Any:
    return a / (1 + xp.abs(a))


def softsign_prime(xp: Any, z: Any) -> Any:
    return (1 - xp.abs(z)) ** 2  # 1 / (1 + |a|)^2, and 1 - |z| = 1 / (1 + |a|)


def softsign_second(xp: Any, z: Any) -> Any:
    return -2 * xp.sign(z) * (1 - xp.abs(z)) ** 3


def softsign_inplace(A: np.ndarray) -> None:
    np.divide(A, 1 + np.abs(A), out=A)


def softsign_delta_inplace(Z: np.ndarray, D: np.ndarray) -> None:
    np.abs(Z, out=Z)
    np.subtract(1.0, Z, out=Z)
    np.multiply(Z, Z, out=Z)
    D *= Z


NEW = {
    "softplus": Activation(
        "softplus",
        softplus,
        softplus_prime,
        softplus_second,
        softplus_inplace,
        softplus_delta_inplace,
        delta_kernel=softplus_delta_kernel,
    ),
    "softsign": Activation(
        "softsign", softsign, softsign_prime, softsign_second, softsign_inplace, softsign_delta_inplace
    ),
}
# h written once more, independently, for the forward pass's check
FORMULA = {"softplus": lambda a: np.log1p(np.exp(a)), "softsign": lambda a: a / (1 + np.abs(a))}


@pytest.fixture(params=sorted(NEW))
def activation(request):
    """Register one new activation for the test, and remove it afterwards."""
    name = request.param
    nw.register_activation(NEW[name])
    yield name
    del nw.ACTIVATIONS[name]


@pytest.fixture(params=BACKENDS)
def backend(request, monkeypatch):
    monkeypatch.setattr(kernels, "FUSED", request.param == "numba")
    return request.param


def problem(N: int = 13, D: int = 3, M: int = 4, K: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    params = Params(*(2 * p for p in nw.init_params(D, M, K, random_state=rng)))
    X = rng.normal(size=(N, D))
    y = rng.integers(0, K, size=N).astype(np.intp)
    s = rng.uniform(0.5, 2.0, size=N)
    return params, X, y, np.eye(K)[y], s


def central_differences(f, theta: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    return np.array([(f(theta + eps * e) - f(theta - eps * e)) / (2 * eps) for e in np.eye(theta.size)])


# --------------------------------------------------------------------------
# Every path computes the registered function
# --------------------------------------------------------------------------


@pytest.mark.parametrize("container", ["dense", "csr"])
def test_fast_path_error_and_gradient_equal_the_reference_and_central_differences(activation, container, backend):
    params, X, y, T, s = problem(seed=1)
    D, M, K = 3, 4, 3
    theta = nw.flatten(params)
    ws = batch._Workspace(X.shape[0], D, M, K, np.float64, gather=False)
    grad = np.full_like(theta, np.nan)  # every entry must be written
    Xin = sp.csr_matrix(X) if container == "csr" else X
    E = batch._batch_error_and_gradient(
        nw.unflatten(theta, D, M, K), Xin, y, s, 1.0, activation, ws, nw.unflatten(grad, D, M, K)
    )
    E_ref, g_ref = nw.error_and_gradient(params, X, T, s, activation=activation)
    assert E == pytest.approx(E_ref, rel=1e-13)
    assert oracles.rel_err(grad, nw.flatten(g_ref)) < 1e-12
    numerical = central_differences(lambda t: nw.error(nw.unflatten(t, D, M, K), X, T, s, activation=activation), theta)
    assert oracles.rel_err(grad, numerical) < 1e-7, (grad, numerical)


def test_network_forward_and_backward(activation):
    params, X, _, T, s = problem(seed=2)
    a1 = X @ params.W1 + params.b1
    z, a2 = nw.hidden_and_output(params, X, activation=activation)
    np.testing.assert_allclose(z, FORMULA[activation](a1), rtol=1e-13)
    a2_ref = FORMULA[activation](a1) @ params.W2 + params.b2
    np.testing.assert_allclose(a2, a2_ref, rtol=1e-12)
    y = np.exp(a2_ref - a2_ref.max(axis=1, keepdims=True))
    np.testing.assert_allclose(nw.forward(params, X, activation=activation), y / y.sum(axis=1, keepdims=True))
    theta = nw.flatten(params)
    grad = nw.flatten(nw.gradient(params, X, T, s, activation=activation))
    numerical = central_differences(lambda t: nw.error(nw.unflatten(t, 3, 4, 3), X, T, s, activation=activation), theta)
    assert oracles.rel_err(grad, numerical) < 1e-7


def test_curvature_hessian_against_central_differences_of_the_gradient(activation):
    params, X, _, T, s = problem(N=7, D=2, M=3, K=3, seed=3)
    theta = nw.flatten(params)

    def gradient(t):
        return nw.flatten(nw.gradient(nw.unflatten(t, 2, 3, 3), X, T, s, activation=activation))

    eps = 1e-6
    H_fd = np.stack([(gradient(theta + eps * e) - gradient(theta - eps * e)) / (2 * eps) for e in np.eye(theta.size)])
    H = cv.hessian(params, X, T, s, activation=activation, alpha=0.3)
    H_fd = (H_fd + H_fd.T) / 2 + 0.3 * np.diag(np.repeat([1.0, 0.0, 1.0, 0.0], [6, 3, 9, 3]))
    assert oracles.rel_err(H, H_fd) < 1e-7
    v = np.random.default_rng(4).normal(size=theta.size)
    Hv = nw.flatten(cv.hessian_vector_product(params, X, T, v, s, activation=activation, alpha=0.3))
    assert oracles.rel_err(Hv, H @ v) < 1e-12
    diag = nw.flatten(cv.hessian_diagonal(params, X, T, s, activation=activation, alpha=0.3))
    assert oracles.rel_err(diag, np.diag(H)) < 1e-12


@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
def test_the_estimator_trains_the_network_it_predicts_with(activation, solver, backend):
    _, X, y, T, _ = problem(N=40, seed=5)
    model = TwoLayerClassifier(n_hidden=4, activation=activation, solver=solver, max_iter=5, random_state=0)
    with pytest.warns(ConvergenceWarning):  # five iterations do not converge
        model.fit(X, y)
    np.testing.assert_allclose(model.predict_proba(X), nw.forward(model.params_, X, activation=activation), rtol=1e-12)
    if solver == "lbfgs":  # the loss the trainer reports is the error of the network it returns
        assert model.loss_ == pytest.approx(
            optim.objective(model.params_, X, T, alpha=1e-4, activation=activation), rel=1e-10
        )
    else:  # one more epoch of full batches: its loss is the data term at the weights it started from
        state = optim.TrainingState(theta=nw.flatten(model.params_).copy())
        state.optimizer = optim.make_optimizer(
            "sgd",
            state.theta.size,
            np.float64,
            {
                "learning_rate_init": 0.0,
                "momentum": 0.0,
                "nesterovs_momentum": False,
                "learning_rate": "constant",
                "power_t": 0.5,
            },
        )
        data = optim.TrainingData(X=X, k=y, w=None, lam=0.0)
        optim.train_minibatch(
            state, data, optim.MinibatchSettings(activation, 40, False, 1, 0.0, 10, False), n_classes=3
        )
        assert state.loss_curve[0] == pytest.approx(
            nw.error(model.params_, X, T, activation=activation) / 40, rel=1e-12
        )


# --------------------------------------------------------------------------
# An entry cannot be registered half-made
# --------------------------------------------------------------------------


def test_an_entry_needs_every_form():
    with pytest.raises(TypeError):
        Activation("softplus", softplus, softplus_prime, softplus_second)  # no in-place forms


def test_register_rejects_forms_that_disagree_and_names_that_are_taken():
    good = NEW["softplus"]
    for field, wrong in [
        ("h_inplace", softsign_inplace),
        ("delta_inplace", softsign_delta_inplace),
        ("h_prime", softsign_prime),
        ("h_second", softsign_second),
        ("delta_kernel", lambda Z, D, grad_b, one: None),
    ]:
        with pytest.raises(ValueError, match=f"{field} disagrees"):
            nw.register_activation(good._replace(**{field: wrong}))
    with pytest.raises(TypeError, match="delta_inplace must be callable"):
        nw.register_activation(good._replace(delta_inplace=None))
    with pytest.raises(ValueError, match="already registered"):
        nw.register_activation(nw.ACTIVATIONS["tanh"])
    with pytest.raises(TypeError, match="register an Activation"):
        nw.register_activation(tuple(good))
    assert "softplus" not in nw.ACTIVATIONS


@pytest.mark.parametrize("name", oracles.ACTIVATIONS)
def test_every_shipped_activation_passes_the_registry_checks(name):
    activations.check_activation(nw.ACTIVATIONS[name])  # what register_activation checks, without re-registering
