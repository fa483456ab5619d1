"""The Laplace posterior on array-API inputs: built, factorised and predicted where the arrays are.

The oracle is the same computation on NumPy arrays (float64, SciPy's
triangular solves on the host). ``array_api_strict`` refuses every silent
conversion to NumPy, so a posterior that passes on it keeps its arrays in the
namespace; PyTorch on the CPU stands for a GPU, whose code path is the same.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
import sklearn
from sklearn.exceptions import ConvergenceWarning

from twolayer import TwoLayerClassifier, curvature
from twolayer import network as nw
from twolayer.bayes import laplace, posterior_from_curvature
from twolayer.errors import InsufficientMemory
from twolayer.training.on_device import to_host

NAMESPACES = ["array_api_strict", "torch"]
PRIOR = (0.3, 0.5, 0.2, 0.7)
D, M, K, N = 3, 4, 3, 40


def _namespace(name: str) -> Any:
    return pytest.importorskip(name)


def _module_of(a: Any) -> str:
    return type(a).__module__.split(".")[0]


@pytest.fixture(scope="module")
def problem() -> tuple[nw.Params, np.ndarray, np.ndarray]:
    """Weights away from a minimum (so the exact Hessian has negative eigenvalues), inputs and 1-of-K targets."""
    rng = np.random.default_rng(3)
    params = nw.Params(rng.normal(size=(D, M)), rng.normal(size=M), rng.normal(size=(M, K)) * 2.0, rng.normal(size=K))
    X = rng.normal(size=(N, D))
    T = np.eye(K)[rng.integers(0, K, N)]
    return params, X, T


def _curvature(params: nw.Params, X: Any, T: Any, structure: str, hessian: str) -> Any:
    """The curvature that posterior_from_curvature expects, in the namespace of its inputs."""
    if structure == "last_layer":
        return curvature.last_layer_hessian(params, X)
    if structure == "diagonal":
        approximation = "gauss-newton" if hessian == "gauss_newton" else None
        return nw.flatten(curvature.hessian_diagonal(params, X, T, approximation=approximation))
    if hessian == "gauss_newton":
        return curvature.gauss_newton(params, X, T)
    return curvature.hessian(params, X, T)


def _posteriors(problem: tuple, xp: Any, structure: str, hessian: str, dtype: Any = None) -> tuple[Any, Any, Any]:
    """The NumPy posterior, the same built from arrays of ``xp`` (in ``dtype``), and X there."""
    params, X, T = problem
    E = nw.error(params, X, T)
    reference = posterior_from_curvature(
        params, _curvature(params, X, T, structure, hessian), PRIOR, E, structure=structure, hessian=hessian
    )
    dtype = xp.float64 if dtype is None else dtype
    P = nw.Params(*(xp.asarray(p, dtype=dtype) for p in params))
    X_dev, T_dev = xp.asarray(X, dtype=dtype), xp.asarray(T, dtype=dtype)
    H = _curvature(P, X_dev, T_dev, structure, hessian)
    posterior = posterior_from_curvature(P, H, PRIOR, E, structure=structure, hessian=hessian)
    return reference, posterior, X_dev


@pytest.mark.parametrize("name", NAMESPACES)
@pytest.mark.parametrize("structure", ["full", "diagonal", "last_layer"])
@pytest.mark.parametrize("hessian", ["exact", "gauss_newton"])
def test_the_posterior_on_the_device_is_the_numpy_posterior(
    problem: tuple, name: str, structure: str, hessian: str
) -> None:
    xp = _namespace(name)
    reference, posterior, _ = _posteriors(problem, xp, structure, hessian)
    for array in (posterior.mean, posterior.precision, posterior.marginal_variance, posterior._factor):
        assert _module_of(array) == name  # kept in the namespace, never converted on the way
    assert posterior.mean.dtype == xp.float64
    assert posterior.log_evidence == pytest.approx(reference.log_evidence, rel=1e-10, abs=1e-10)
    assert posterior.gamma == pytest.approx(reference.gamma, rel=1e-10)
    np.testing.assert_allclose(posterior.gamma_groups, reference.gamma_groups, rtol=1e-10)
    np.testing.assert_allclose(to_host(posterior.precision), reference.precision, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(to_host(posterior.marginal_variance), reference.marginal_variance, rtol=1e-10)
    assert posterior.n_negative_eigenvalues == reference.n_negative_eigenvalues
    # The re-estimated prior reads the mean from the device.
    np.testing.assert_allclose(posterior.reestimated_prior_precision(), reference.reestimated_prior_precision())


@pytest.mark.parametrize("name", NAMESPACES)
def test_the_exact_hessian_clips_the_same_negative_eigenvalues(problem: tuple, name: str) -> None:
    xp = _namespace(name)
    reference, posterior, _ = _posteriors(problem, xp, "full", "exact")
    assert reference.n_negative_eigenvalues > 0  # the fixture is away from a minimum: there is something to clip
    assert posterior.n_negative_eigenvalues == reference.n_negative_eigenvalues
    # Not clipping would give another precision: H_+ is what both factorised.
    params, X, T = problem
    assert not np.allclose(reference.precision, curvature.hessian(params, X, T, alpha=PRIOR))


@pytest.mark.parametrize("name", NAMESPACES)
@pytest.mark.parametrize("structure", ["full", "diagonal", "last_layer"])
def test_the_predictive_on_the_device_is_the_numpy_predictive(problem: tuple, name: str, structure: str) -> None:
    xp = _namespace(name)
    reference, posterior, X_dev = _posteriors(problem, xp, structure, "gauss_newton")
    X = problem[1]
    mean, cov = posterior.logit_distribution(X_dev)
    expected_mean, expected_cov = reference.logit_distribution(X)
    for out in (mean, cov):
        assert _module_of(out) == name
    np.testing.assert_allclose(to_host(mean), expected_mean, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(to_host(cov), expected_cov, rtol=1e-10, atol=1e-12)
    mc = posterior.predict_proba(X_dev, method="mc", n_samples=300, random_state=7)
    probit = posterior.predict_proba(X_dev, method="probit")
    assert _module_of(mc) == name and _module_of(probit) == name
    # The draws are NumPy's for the seed, moved there: the same samples, to rounding.
    np.testing.assert_allclose(
        to_host(mc), reference.predict_proba(X, n_samples=300, random_state=7), rtol=1e-10, atol=1e-12
    )
    np.testing.assert_allclose(to_host(probit), reference.predict_proba(X, method="probit"), rtol=1e-10, atol=1e-12)
    # A different seed gives different samples: the agreement above is not a coincidence of constants.
    other = posterior.predict_proba(X_dev, n_samples=300, random_state=8)
    assert np.abs(to_host(other) - to_host(mc)).max() > 1e-6


@pytest.mark.parametrize("name", NAMESPACES)
def test_float32_stays_float32_and_agrees_to_its_precision(problem: tuple, name: str) -> None:
    xp = _namespace(name)
    reference, posterior, X_dev = _posteriors(problem, xp, "full", "gauss_newton", dtype=xp.float32)
    assert posterior.mean.dtype == xp.float32
    assert posterior.precision.dtype == xp.float32
    assert posterior.log_evidence == pytest.approx(reference.log_evidence, rel=1e-4)
    np.testing.assert_allclose(to_host(posterior.marginal_variance), reference.marginal_variance, rtol=1e-3)
    proba = posterior.predict_proba(X_dev, method="probit")
    assert proba.dtype == xp.float32
    # float64 inputs are computed at the posterior's precision
    assert posterior.predict_proba(xp.asarray(problem[1]), method="probit").dtype == xp.float32
    np.testing.assert_allclose(to_host(proba), reference.predict_proba(problem[1], method="probit"), atol=1e-4)


@pytest.mark.parametrize("name", NAMESPACES)
def test_a_device_posterior_saves_as_numpy(problem: tuple, name: str) -> None:
    from twolayer.bayes import LaplacePosterior

    xp = _namespace(name)
    reference, posterior, _ = _posteriors(problem, xp, "full", "exact")
    state = posterior.to_dict()
    for key in ("mean", "precision", "factor", "variance", "prior_precision", "gamma_groups"):
        assert isinstance(state[key], np.ndarray), key
    loaded = LaplacePosterior.from_dict(state)
    assert isinstance(loaded.mean, np.ndarray)
    assert loaded.log_evidence == posterior.log_evidence
    X = problem[1]
    np.testing.assert_allclose(
        loaded.predict_proba(X, method="probit"), reference.predict_proba(X, method="probit"), rtol=1e-10
    )


def test_inputs_elsewhere_are_refused_not_moved(problem: tuple) -> None:
    xp = _namespace("array_api_strict")
    params, X, T = problem
    _, posterior, _ = _posteriors(problem, xp, "diagonal", "gauss_newton")
    with pytest.raises(ValueError, match="X must be an array of array_api_strict"):
        posterior.predict_proba(X)  # NumPy X for a posterior elsewhere
    P = nw.Params(*(xp.asarray(p) for p in params))
    with pytest.raises(ValueError, match="must all be of one namespace"):
        posterior_from_curvature(P, curvature.gauss_newton(params, X, T), PRIOR, 1.0, hessian="gauss_newton")


@pytest.mark.parametrize("name", NAMESPACES)
def test_a_factorisation_too_big_for_the_device_is_refused(
    problem: tuple, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from twolayer.training import on_device

    xp = _namespace(name)
    params, X, T = problem
    P = nw.Params(*(xp.asarray(p) for p in params))
    H = curvature.gauss_newton(P, xp.asarray(X), xp.asarray(T))
    # The device's free memory made small, as a full GPU's would be; this machine's is untouched.
    monkeypatch.setattr(on_device, "free_memory", lambda xp, device: 1000)
    with pytest.raises(InsufficientMemory, match=r"factorisation on .* needs about .*structure='diagonal'"):
        posterior_from_curvature(P, H, PRIOR, 1.0, hessian="gauss_newton")
    with pytest.raises(InsufficientMemory):
        posterior_from_curvature(P, nw.flatten(P) ** 2 + 1.0, PRIOR, 1.0, structure="diagonal").predict_proba(
            xp.asarray(X), n_samples=10_000
        )
    # The same posterior from NumPy arrays is checked against this machine's memory, and fits.
    posterior_from_curvature(params, curvature.gauss_newton(params, X, T), PRIOR, 1.0, hessian="gauss_newton")


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_iris
    from sklearn.preprocessing import StandardScaler

    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X)[::3], y[::3]


@pytest.mark.parametrize("name", NAMESPACES)
@pytest.mark.parametrize(
    ("structure", "hessian"), [("full", "exact"), ("diagonal", "gauss_newton"), ("last_layer", "exact")]
)
def test_laplace_of_a_classifier_fitted_on_the_device_is_the_numpy_one(
    iris: tuple, name: str, structure: str, hessian: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from twolayer.training import on_device

    xp = _namespace(name)
    X, y = iris
    s = np.random.default_rng(0).uniform(0.5, 1.5, y.shape[0])
    kw = {"n_hidden": 3, "solver": "lbfgs", "random_state": 0, "max_iter": 40, "alpha": 1e-2}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # few iterations, on purpose
        with sklearn.config_context(array_api_dispatch=True):
            model = TwoLayerClassifier(**kw).fit(xp.asarray(X), xp.asarray(y))
    assert _module_of(model.coefs_[0]) == name
    reference = laplace(model.to_numpy(), X, y, structure=structure, hessian=hessian, sample_weight=s)
    posterior = laplace(model, xp.asarray(X), xp.asarray(y), structure=structure, hessian=hessian, sample_weight=s)
    assert _module_of(posterior.mean) == name and _module_of(posterior.precision) == name
    assert posterior.log_evidence == pytest.approx(reference.log_evidence, rel=1e-10)
    assert posterior.gamma == pytest.approx(reference.gamma, rel=1e-10)
    assert posterior.data_error == pytest.approx(reference.data_error, rel=1e-12)
    np.testing.assert_allclose(to_host(posterior.marginal_variance), reference.marginal_variance, rtol=1e-10)
    np.testing.assert_allclose(to_host(posterior.mean), reference.mean, rtol=1e-12, atol=1e-14)
    proba = posterior.predict_proba(xp.asarray(X), n_samples=200, random_state=0)
    assert _module_of(proba) == name
    np.testing.assert_allclose(
        to_host(proba), reference.predict_proba(X, n_samples=200, random_state=0), rtol=1e-9, atol=1e-12
    )
    with pytest.raises(ValueError, match="X must be an array of"):
        laplace(model, X, y)  # the weights are on the device: NumPy X is not moved silently
    monkeypatch.setattr(on_device, "free_memory", lambda xp, device: 1000)
    with pytest.raises(InsufficientMemory, match="the Laplace approximation on"):
        laplace(model, xp.asarray(X), xp.asarray(y), structure=structure, hessian=hessian)


# --------------------------------------------------------------------------
# The estimator: MAP fits, evidence search and predictions on the device
# --------------------------------------------------------------------------

ESTIMATOR_CASES = {
    "fixed_point-full": {"alpha_search": "fixed_point", "max_cycles": 3, "n_restarts": 1, "structure": "full"},
    "grid-diagonal-mixture": {
        "alpha_search": "grid",
        "alpha_grid": [0.1, 1.0, 10.0],
        "n_restarts": 0,
        "structure": "diagonal",
        "n_components": 2,
    },
}


def _bayes_fit(model: Any, *args: Any, **kwargs: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # few cycles, on purpose
        return model.fit(*args, **kwargs)


@pytest.mark.parametrize("name", NAMESPACES)
@pytest.mark.parametrize("case", list(ESTIMATOR_CASES))
def test_the_bayesian_network_fitted_on_the_device_is_the_numpy_one(iris: tuple, name: str, case: str) -> None:
    from twolayer.bayes import BayesianTwoLayerClassifier

    xp = _namespace(name)
    X, y = iris
    s = np.random.default_rng(0).uniform(0.5, 1.5, y.shape[0])
    kw = {"n_hidden": 3, "random_state": 0, "n_samples": 200, "tol": 1e-9, **ESTIMATOR_CASES[case]}
    reference = _bayes_fit(BayesianTwoLayerClassifier(**kw), X, y, sample_weight=s)
    X_dev = xp.asarray(X)
    with sklearn.config_context(array_api_dispatch=True):
        model = _bayes_fit(BayesianTwoLayerClassifier(**kw), X_dev, xp.asarray(y), sample_weight=xp.asarray(s))
        proba, proba_map, labels = model.predict_proba(X_dev), model.predict_proba_map(X_dev), model.predict(X_dev)
    for array in (*model.coefs_, *model.intercepts_, model.posterior_.mean, proba, proba_map, labels):
        assert _module_of(array) == name
    # The procedure's numbers are the host's.
    assert isinstance(model.log_evidence_, float) and isinstance(model.gamma_, float)
    assert isinstance(model.alpha_, np.ndarray) and isinstance(model.gamma_groups_, np.ndarray)
    assert all(isinstance(v, float) for v in model.evidence_curve_)
    assert all(isinstance(a, np.ndarray) for a in (*model.alpha_curve_, *model.restart_evidence_))
    # L-BFGS on the device sums in another order: the same fit, to its tolerance.
    assert model.log_evidence_ == pytest.approx(reference.log_evidence_, rel=1e-6)
    np.testing.assert_allclose(model.alpha_, reference.alpha_, rtol=1e-6)
    assert model.gamma_ == pytest.approx(reference.gamma_, rel=1e-6)
    np.testing.assert_allclose(model.component_evidence_, reference.component_evidence_, rtol=1e-6)
    np.testing.assert_allclose(model.evidence_curve_, reference.evidence_curve_, rtol=1e-6)
    assert model.loss_ == pytest.approx(reference.loss_, rel=1e-6)
    np.testing.assert_allclose(to_host(proba), reference.predict_proba(X), atol=1e-6)
    np.testing.assert_allclose(to_host(proba_map), reference.predict_proba_map(X), atol=1e-6)
    np.testing.assert_array_equal(to_host(labels), reference.predict(X))
    host = model.to_numpy()  # weights and every component's posterior back on the host, whole
    assert all(isinstance(a, np.ndarray) for a in (*host.coefs_, *host.intercepts_, host.posterior_.mean))
    assert all(isinstance(c.mean, np.ndarray) for c in host.components_)
    assert host.posterior_ is host.components_[0] and _module_of(model.posterior_.mean) == name  # a copy
    np.testing.assert_allclose(host.predict_proba(X), to_host(proba), rtol=0, atol=1e-12)
    np.testing.assert_allclose(host.predict_proba_map(X), to_host(proba_map), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", NAMESPACES)
def test_a_device_without_float64_fits_the_bayesian_network_in_float32(
    iris: tuple, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Where the device has no float64 (Apple's MPS, say) the procedure runs in float32: the same
    # network and evidence to float32's precision, and everything it returns stays float32.
    from twolayer.bayes import BayesianTwoLayerClassifier, estimator

    xp = _namespace(name)
    X, y = iris
    kw = {"n_hidden": 3, "random_state": 0, "method": "probit", "tol": 1e-5, **ESTIMATOR_CASES["fixed_point-full"]}
    reference = _bayes_fit(BayesianTwoLayerClassifier(**kw), X, y)
    monkeypatch.setattr(estimator, "has_float64", lambda xp, device: False)
    X_dev = xp.asarray(X)
    with sklearn.config_context(array_api_dispatch=True):
        model = _bayes_fit(BayesianTwoLayerClassifier(**kw), X_dev, xp.asarray(y))
        proba = model.predict_proba(xp.asarray(X, dtype=xp.float32))
    assert model.coefs_[0].dtype == xp.float32 and model.posterior_.mean.dtype == xp.float32
    assert proba.dtype == xp.float32
    assert model.log_evidence_ == pytest.approx(reference.log_evidence_, rel=1e-3)
    np.testing.assert_allclose(model.alpha_, reference.alpha_, rtol=1e-2)
    np.testing.assert_allclose(to_host(proba), reference.predict_proba(X), atol=2e-3)


@pytest.mark.parametrize("name", NAMESPACES)
def test_map_estimate_on_the_device_is_the_numpy_one(problem: tuple, name: str) -> None:
    from twolayer.bayes.map import map_estimate

    xp = _namespace(name)
    _, X, T = problem
    rng = np.random.default_rng(5)
    s = rng.uniform(0.5, 1.5, X.shape[0])
    soft = rng.dirichlet(np.ones(K), X.shape[0])  # rows that are not 1-of-K: one row per class on the device too
    init = nw.init_params(D, M, K, random_state=np.random.default_rng(1))
    for targets in (T, soft):
        reference = map_estimate(X, targets, PRIOR, init=init, sample_weight=s, tol=1e-9)
        fit = map_estimate(xp.asarray(X), xp.asarray(targets), PRIOR, init=init, sample_weight=xp.asarray(s), tol=1e-9)
        assert _module_of(fit.params.W1) == name
        assert isinstance(fit.data_error, float) and isinstance(fit.objective, float)
        assert fit.objective == pytest.approx(reference.objective, rel=1e-9)
        assert fit.data_error == pytest.approx(reference.data_error, rel=1e-6)
        for got, expected in zip(fit.params, reference.params):
            np.testing.assert_allclose(to_host(got), expected, atol=1e-5)
    with pytest.raises(ValueError, match="T must be an array of"):
        map_estimate(xp.asarray(X), T, PRIOR, init=init)  # NumPy targets beside device patterns: not moved


def test_a_bayesian_fit_too_big_for_the_device_is_refused(iris: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    from twolayer.bayes import BayesianTwoLayerClassifier
    from twolayer.training import on_device

    xp = _namespace("array_api_strict")
    X, y = iris
    monkeypatch.setattr(on_device, "free_memory", lambda xp, device: 1000)
    model = BayesianTwoLayerClassifier(n_hidden=3, n_restarts=0, max_cycles=1)
    with sklearn.config_context(array_api_dispatch=True):
        with pytest.raises(InsufficientMemory):
            model.fit(xp.asarray(X), xp.asarray(y))
    assert not hasattr(model, "classes_")  # refused before training: as it was
