"""The spectrum of a network's curvature against numpy.linalg.eigvalsh of matrices built independently."""

from __future__ import annotations

import math

import autograd
import numpy as np
import pytest
from scipy.sparse.linalg import aslinearoperator

from oracles import error, logits, rel_err
from twolayer import network
from twolayer.report import spectrum as sp

D, M, K, N = 3, 4, 3, 25


def random_problem(seed: int) -> tuple[network.Params, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    params = network.Params(
        rng.normal(size=(D, M)), rng.normal(size=M) * 0.5, rng.normal(size=(M, K)), rng.normal(size=K) * 0.5
    )
    X = rng.normal(size=(N, D))
    T = np.eye(K)[rng.integers(0, K, size=N)]
    s = rng.uniform(0.5, 2.0, size=N)
    return params, X, T, s


def autograd_hessian(
    params: network.Params, X: np.ndarray, T: np.ndarray, s: np.ndarray, alpha: list[float]
) -> np.ndarray:
    theta = np.asarray(network.flatten(params))
    return np.asarray(autograd.hessian(lambda t: error(t, X, T, s, D, M, K, "tanh", alpha))(theta))


def autograd_gauss_newton(
    params: network.Params, X: np.ndarray, T: np.ndarray, s: np.ndarray, alpha: list[float]
) -> np.ndarray:
    """sum_n s_n J_n^T (diag(y_n) - y_n y_n^T) J_n (PRML eq. 5.84's cross-entropy analogue) plus the decay."""
    theta = np.asarray(network.flatten(params))
    J = np.asarray(autograd.jacobian(lambda t: logits(t, X, D, M, K))(theta))  # (N, K, W)
    a = logits(theta, X, D, M, K)
    y = np.exp(a - a.max(axis=1, keepdims=True))
    y /= y.sum(axis=1, keepdims=True)
    G = sum(s[n] * J[n].T @ (np.diag(y[n]) - np.outer(y[n], y[n])) @ J[n] for n in range(N))
    decay = np.concatenate([np.full(np.size(p), a_g) for p, a_g in zip(params, alpha)])
    return np.asarray(G + np.diag(decay))


def rest_of(eigenvalues: np.ndarray, flat: int) -> np.ndarray:
    """The eigenvalues without the ``flat`` ones closest to zero."""
    return np.sort(np.delete(eigenvalues, np.argsort(np.abs(eigenvalues))[:flat]))


# --------------------------------------------------------------------------
# A plain symmetric matrix with known eigenvalues
# --------------------------------------------------------------------------


def matrix_with(eigenvalues: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    Q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(eigenvalues.size, eigenvalues.size)))
    return (Q * eigenvalues) @ Q.T, Q


def test_lanczos_finds_both_ends_of_a_known_spectrum() -> None:
    values = np.linspace(-3.0, 5.0, 40)
    A, _ = matrix_with(values)
    v0 = np.random.default_rng(1).normal(size=40)
    top, products = sp.lanczos(aslinearoperator(A), 3, "LA", 500, v0)
    bottom, _ = sp.lanczos(aslinearoperator(A), 3, "SA", 500, v0)
    np.testing.assert_allclose(np.sort(top), values[-3:], rtol=1e-9)
    np.testing.assert_allclose(np.sort(bottom), values[:3], rtol=1e-9, atol=1e-12)
    assert products > 0


def test_deflation_finds_a_repeated_known_eigenvalue_k_times() -> None:
    # 7 is the largest eigenvalue, three times over, along known vectors; 0 twice, also known (flat).
    values = np.concatenate([[7.0, 7.0, 7.0, 0.0, 0.0], np.linspace(-2.0, 4.0, 25)])
    A, Q = matrix_with(values, seed=2)
    known = sp.KnownEigenvectors(Q[:, :5], values[:5])
    assert known.flat == 2
    np.testing.assert_array_equal(known.nonzero, [7.0, 7.0, 7.0])
    k = 5
    result = sp.spectrum("A", aslinearoperator(A), lambda: A, known, k, 1000)
    exact = np.linalg.eigvalsh(A)
    rest = rest_of(exact, 2)
    np.testing.assert_allclose(result.full, np.sort(values), atol=1e-12)  # the eigenvalues it was built from
    np.testing.assert_allclose(result.largest, rest[::-1][:k])
    np.testing.assert_allclose(result.smallest, rest[:k])
    # Lanczos alone on the deflated operator, with the known values merged back: 7 three times, then 4.
    np.testing.assert_allclose(result.lanczos_largest, rest[::-1][:k], rtol=1e-9)
    np.testing.assert_allclose(result.lanczos_largest[:3], [7.0, 7.0, 7.0])
    np.testing.assert_allclose(result.lanczos_smallest, rest[:k], rtol=1e-9)
    assert result.lanczos_error() < 1e-9
    assert result.scale == pytest.approx(7.0)


def test_decayed_operator_and_matrix() -> None:
    A, _ = matrix_with(np.linspace(-1.0, 1.0, 12))
    decay = np.random.default_rng(4).uniform(0, 3, size=12)
    expected = A + np.diag(decay)
    v = np.random.default_rng(5).normal(size=12)
    np.testing.assert_allclose(sp.decayed_operator(aslinearoperator(A), decay).matvec(v), expected @ v, rtol=1e-13)
    np.testing.assert_array_equal(sp.decayed_matrix(A, decay), expected)
    assert not np.array_equal(A, expected)  # the input is left alone


# --------------------------------------------------------------------------
# The curvature of a tiny network
# --------------------------------------------------------------------------


def test_known_eigenvectors_of_a_tiny_network() -> None:
    params, X, T, s = random_problem(0)
    alpha = [0.3, 0.1, 0.7, 0.2]
    known = sp.known_eigenvectors(D, M, K, alpha[2], alpha[3])
    assert known.vectors.shape == (network.n_params(D, M, K), M + 1)
    np.testing.assert_allclose(known.vectors.T @ known.vectors, np.eye(M + 1), atol=1e-15)
    for A in (autograd_hessian(params, X, T, s, alpha), autograd_gauss_newton(params, X, T, s, alpha)):
        for v, value in zip(known.vectors.T, known.values):
            assert rel_err(A @ v, value * v) < 1e-10
    np.testing.assert_array_equal(known.values, [0.2, 0.7, 0.7, 0.7, 0.7])
    assert sp.known_eigenvectors(D, M, K, 0.7, 0.0).flat == 1
    assert sp.known_eigenvectors(D, M, K, 0.0, 0.0).flat == M + 1


@pytest.mark.parametrize("full", [True, False], ids=["full", "lanczos"])
@pytest.mark.parametrize(
    "alpha", [[0.0, 0.0, 0.0, 0.0], [0.01, 0.0, 0.01, 0.0], [0.3, 0.1, 0.7, 0.2]], ids=["none", "weights", "groups"]
)
def test_curvature_spectra_equal_eigvalsh(full: bool, alpha: list[float]) -> None:
    params, X, T, s = random_problem(1)
    W = network.n_params(D, M, K)
    k = 4
    result = sp.curvature_spectra(
        params, X, T, s, activation="tanh", prior_precision=alpha, k=k, max_products=2000, full=full
    )
    assert result.full is full and result.n_params == W
    flat = int(alpha[3] == 0) + M * int(alpha[2] == 0)
    assert result.known.flat == flat
    theta = np.asarray(network.flatten(params))
    g = autograd.grad(lambda t: error(t, X, T, s, D, M, K, "tanh", alpha))(theta)
    assert rel_err(result.gradient, g) < 1e-12
    assert result.gradient_norm == pytest.approx(float(np.sqrt(np.sum(g * g))), rel=1e-10)
    assert result.gradient_max == pytest.approx(float(np.max(np.abs(g))), rel=1e-10)
    for got, A in (
        (result.hessian, autograd_hessian(params, X, T, s, alpha)),
        (result.gauss_newton, autograd_gauss_newton(params, X, T, s, alpha)),
    ):
        exact = np.linalg.eigvalsh(A)
        rest = rest_of(exact, flat)
        scale = np.max(np.abs(exact))
        assert np.max(np.abs(got.largest - rest[::-1][:k])) <= 1e-9 * scale, got.name
        assert np.max(np.abs(got.smallest - rest[:k])) <= 1e-9 * scale, got.name
        if full:
            assert got.full is not None and np.max(np.abs(got.full - exact)) <= 1e-10 * scale
            assert got.lanczos_error() < 1e-9
        else:
            assert got.full is None and math.isnan(got.lanczos_error())


def test_the_most_eigenvalues_per_end() -> None:
    params, X, T, s = random_problem(2)
    most = sp.max_eigenvalues_per_end(D, M, K)
    assert most == network.n_params(D, M, K) - (M + 1) - 1
    result = sp.curvature_spectra(
        params, X, T, s, activation="tanh", prior_precision=[0.1, 0.1, 0.1, 0.1], k=most, max_products=5000
    )
    exact = np.linalg.eigvalsh(autograd_hessian(params, X, T, s, [0.1, 0.1, 0.1, 0.1]))
    np.testing.assert_allclose(result.hessian.smallest, exact[:most], rtol=1e-8, atol=1e-10)


def test_full_spectrum_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    params, X, T, s = random_problem(3)
    kwargs = {"activation": "tanh", "prior_precision": [0.1, 0.0, 0.1, 0.0], "k": 2, "max_products": 500}
    assert sp.curvature_spectra(params, X, T, s, **kwargs).full  # type: ignore[arg-type]
    monkeypatch.setattr(sp, "FULL_SPECTRUM_MAX_PARAMS", network.n_params(D, M, K) - 1)
    assert not sp.curvature_spectra(params, X, T, s, **kwargs).full  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# Negative eigenvalues and condition numbers
# --------------------------------------------------------------------------


def made(largest: list[float], smallest: list[float], full: list[float] | None = None) -> sp.Spectrum:
    return sp.Spectrum(
        "A",
        np.array(largest),
        np.array(smallest),
        None if full is None else np.array(full),
        np.array(largest),
        np.array(smallest),
        0,
    )


def test_negative_count_and_condition_from_a_full_spectrum() -> None:
    values = np.array([-2.0, -0.5, 1e-18, 0.25, 3.0, 8.0])
    A, _ = matrix_with(values)
    result = sp.spectrum(
        "A", aslinearoperator(A), lambda: A, sp.KnownEigenvectors(np.zeros((6, 0)), np.zeros(0)), 2, 200
    )
    assert sp.negative_count(result, 6) == sp.NegativeCount(2, "exact", 6)
    assert sp.condition_number(result, 6).kind == "indefinite"
    positive, _ = matrix_with(np.array([0.5, 1.0, 2.0, 4.0, 5.0, 10.0]))
    result = sp.spectrum(
        "A", aslinearoperator(positive), lambda: positive, sp.KnownEigenvectors(np.zeros((6, 0)), np.zeros(0)), 2, 200
    )
    condition = sp.condition_number(result, 6)
    assert condition.kind == "finite" and condition.value == pytest.approx(20.0, rel=1e-12)
    assert sp.negative_count(result, 6) == sp.NegativeCount(0, "exact", 6)


def test_negative_count_from_lanczos_values() -> None:
    nan = math.nan
    assert sp.negative_count(made([5.0, 4.0], [-1.0, 2.0]), 10) == sp.NegativeCount(1, "estimated", 2)
    assert sp.negative_count(made([5.0, 4.0], [-3.0, -1.0]), 10) == sp.NegativeCount(2, "at_least", 2)
    assert sp.negative_count(made([5.0, 4.0], [-3.0, nan]), 10) == sp.NegativeCount(1, "at_least", 1)
    assert sp.negative_count(made([5.0, 4.0], [nan, nan]), 10) == sp.NegativeCount(None, "unknown", 0)


def test_condition_number_kinds() -> None:
    nan = math.nan
    assert sp.condition_number(made([8.0], [2.0]), 10) == sp.Condition("finite", 4.0)
    assert sp.condition_number(made([8.0], [-2.0]), 10).kind == "indefinite"
    # Zero to double precision: below W * eps * the largest |lambda|.
    assert sp.condition_number(made([8.0], [1e-16]), 10) == sp.Condition("singular", math.inf)
    assert sp.condition_number(made([8.0], [1e-13]), 10).kind == "finite"
    assert sp.condition_number(made([nan], [2.0]), 10).kind == "unknown"


# --------------------------------------------------------------------------
# The inputs: targets, pattern weights, group precisions
# --------------------------------------------------------------------------


def test_one_hot_and_class_sample_weight() -> None:
    classes = np.array([2, 5, 9])
    y = np.array([5, 9, 9, 2, 9])
    T = sp.one_hot(y, classes)
    np.testing.assert_array_equal(T, [[0, 1, 0], [0, 0, 1], [0, 0, 1], [1, 0, 0], [0, 0, 1]])
    # "balanced": N / (K n_k) for each pattern's class.
    np.testing.assert_allclose(sp.class_sample_weight("balanced", y, classes), [5 / 3, 5 / 9, 5 / 9, 5 / 3, 5 / 9])
    np.testing.assert_allclose(sp.class_sample_weight({2: 1.0, 5: 2.0, 9: 0.5}, y, classes), [2, 0.5, 0.5, 1, 0.5])


def test_prior_precision() -> None:
    assert sp.prior_precision(0.3, bayesian=False) == [0.3, 0.0, 0.3, 0.0]  # weight decay leaves the biases free
    assert sp.prior_precision(0.3, bayesian=True) == [0.3, 0.3, 0.3, 0.3]  # a prior covers every group
    for bayesian in (False, True):
        assert sp.prior_precision(np.array([1.0, 2.0, 3.0, 4.0]), bayesian=bayesian) == [1.0, 2.0, 3.0, 4.0]


def test_what_a_spectrum_reports_of_itself() -> None:
    nan = np.nan
    partial = sp.Spectrum(
        "H", np.array([3.0, nan]), np.array([-1.0, 0.5]), None, np.array([3.0, nan]), np.array([-1.0, 0.5]), 40
    )
    assert partial.n_converged == 3
    np.testing.assert_array_equal(partial.known_values, [3.0, nan, -1.0, 0.5])
    whole = sp.Spectrum(
        "H", np.array([3.0]), np.array([-1.0]), np.array([-1.0, 3.0]), np.array([3.0]), np.array([-1.0]), 9
    )
    np.testing.assert_array_equal(whole.known_values, [-1.0, 3.0])
