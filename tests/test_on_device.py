"""TwoLayerClassifier on array-API inputs (scikit-learn's ``array_api_dispatch``): trained and predicted where they are.

The oracle is the same estimator on NumPy arrays, which shares none of the
device path's loop (:mod:`twolayer.training.on_device`) and none of its
optimiser algebra. ``array_api_strict`` refuses every silent conversion to
NumPy, so a fit that passes on it keeps its data in the namespace; PyTorch
on the CPU stands for a GPU, whose code path is the same.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
import sklearn
from sklearn.datasets import load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from twolayer import TwoLayerClassifier

NAMESPACES = ["array_api_strict", "torch"]


def _namespace(name: str) -> Any:
    return pytest.importorskip(name)


@pytest.fixture(scope="module")
def wine() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_wine(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _module_of(a: Any) -> str:
    return type(a).__module__.split(".")[0]


def _fit(model: TwoLayerClassifier, *args: Any, **kwargs: Any) -> TwoLayerClassifier:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # few iterations, on purpose
        return model.fit(*args, **kwargs)


@pytest.mark.parametrize("name", NAMESPACES)
@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs", "newton-cg", "scg"])
def test_a_fit_on_the_device_is_the_numpy_fit(wine: tuple, name: str, solver: str) -> None:
    xp = _namespace(name)
    X, y = wine
    kw = {"n_hidden": 5, "solver": solver, "random_state": 0, "max_iter": 25, "alpha": 1e-2}
    reference = _fit(TwoLayerClassifier(**kw), X, y)
    with sklearn.config_context(array_api_dispatch=True):
        model = _fit(TwoLayerClassifier(**kw), xp.asarray(X), xp.asarray(y))
        proba = model.predict_proba(xp.asarray(X))
        labels = model.predict(xp.asarray(X))
        log_proba = model.predict_log_proba(xp.asarray(X))
    # Truncated Newton stops where its inner conjugate gradients meet a tolerance: rounding in the
    # last place may move that by an iteration, within the tolerance of the fit.
    newton = solver == "newton-cg"
    if newton:  # the same iterates at first; where a step's inner iterations stop may then differ
        np.testing.assert_allclose(model.loss_curve_[:5], reference.loss_curve_[:5], rtol=1e-7)
        np.testing.assert_allclose(model.loss_, reference.loss_, atol=1e-4)
    else:
        assert model.n_iter_ == reference.n_iter_
        np.testing.assert_allclose(model.loss_, reference.loss_, rtol=1e-9)
    for out in (*model.coefs_, *model.intercepts_, proba, labels, log_proba):
        assert _module_of(out) == name  # the weights and results stay in the namespace
    host = model.to_numpy()
    assert all(isinstance(a, np.ndarray) for a in host.coefs_)
    np.testing.assert_allclose(host.predict_proba(X), reference.predict_proba(X), atol=1e-2 if newton else 1e-9)
    assert np.mean(np.asarray(host.predict(X)) == reference.predict(X)) > (0.99 if newton else 1.0 - 1e-12)


@pytest.mark.parametrize("name", NAMESPACES)
def test_float32_weights_and_multilabel_outputs_on_the_device(wine: tuple, name: str) -> None:
    xp = _namespace(name)
    X, y = wine
    Y = np.stack([y == 0, y == 2, X[:, 0] > 0], axis=1).astype(np.int64)
    kw = {"n_hidden": 4, "solver": "lbfgs", "random_state": 1, "max_iter": 30}
    reference = _fit(TwoLayerClassifier(**kw), X.astype(np.float32), Y)
    with sklearn.config_context(array_api_dispatch=True):
        model = _fit(TwoLayerClassifier(**kw), xp.asarray(X.astype(np.float32)), xp.asarray(Y))
        labels = model.predict(xp.asarray(X.astype(np.float32)))
    assert model.coefs_[0].dtype == xp.float32
    assert model.out_activation_ == "logistic"
    np.testing.assert_allclose(model.loss_, reference.loss_, atol=1e-6)  # float32 rounding, summed differently
    host = model.to_numpy()
    assert np.mean(np.asarray(host.predict(X.astype(np.float32))) == reference.predict(X.astype(np.float32))) > 0.99
    assert tuple(labels.shape) == Y.shape


@pytest.mark.parametrize("name", NAMESPACES)
def test_weights_on_the_device_are_the_numpy_weights(wine: tuple, name: str) -> None:
    xp = _namespace(name)
    X, y = wine
    s = np.random.default_rng(0).uniform(0.0, 2.0, y.shape[0])
    kw = {"n_hidden": 4, "solver": "lbfgs", "random_state": 0, "max_iter": 30, "class_weight": "balanced"}
    reference = _fit(TwoLayerClassifier(**kw), X, y, sample_weight=s)
    with sklearn.config_context(array_api_dispatch=True):
        model = _fit(TwoLayerClassifier(**kw), xp.asarray(X), xp.asarray(y), sample_weight=xp.asarray(s))
    np.testing.assert_allclose(model.loss_, reference.loss_, rtol=1e-9)


@pytest.mark.parametrize("name", NAMESPACES)
def test_scikit_learns_array_api_checks_pass(name: str) -> None:
    from sklearn.utils.estimator_checks import check_array_api_input

    _namespace(name)
    model = TwoLayerClassifier(n_hidden=4, solver="lbfgs", max_iter=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check_array_api_input("TwoLayerClassifier", model, array_namespace=name, check_values=True)
        check_array_api_input(
            "TwoLayerClassifier", model, array_namespace=name, check_values=True, check_sample_weight=True
        )


def test_dispatch_off_converts_to_numpy_as_before(wine: tuple) -> None:
    torch = _namespace("torch")
    X, y = wine
    model = _fit(TwoLayerClassifier(n_hidden=3, solver="lbfgs", max_iter=10, random_state=0), torch.asarray(X), y)
    assert isinstance(model.coefs_[0], np.ndarray)
    assert isinstance(model.predict_proba(torch.asarray(X)), np.ndarray)


def test_what_the_device_path_does_not_do_yet_is_refused(wine: tuple) -> None:
    xp = _namespace("array_api_strict")
    X, y = wine
    with sklearn.config_context(array_api_dispatch=True):
        with pytest.raises(ValueError, match="early_stopping=True is not supported on array-API"):
            TwoLayerClassifier(early_stopping=True).fit(xp.asarray(X), xp.asarray(y))
        model = TwoLayerClassifier(n_hidden=3, solver="adam", max_iter=2, random_state=0)
        with pytest.raises(ValueError, match="partial_fit, warm_start and X_val need NumPy inputs"):
            model.partial_fit(xp.asarray(X), xp.asarray(y), classes=np.unique(y))


@pytest.mark.parametrize("name", NAMESPACES)
def test_a_fit_too_big_for_the_device_is_refused_before_it_starts(
    wine: tuple, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from twolayer import resources
    from twolayer.errors import InsufficientMemory

    xp = _namespace(name)
    X, y = wine
    fitted = _fit(TwoLayerClassifier(n_hidden=3, solver="lbfgs", max_iter=5, random_state=0), X, y)
    before = {key: value for key, value in vars(fitted).items() if key != "coefs_"}
    # A CPU device's free memory is this machine's: made small, as a full GPU's would be.
    monkeypatch.setattr(resources, "available_memory", lambda: 50_000)
    model = TwoLayerClassifier(n_hidden=50, solver="lbfgs")
    with sklearn.config_context(array_api_dispatch=True):
        with pytest.raises(InsufficientMemory, match=r"training on .* needs about .*lower n_hidden"):
            model.fit(xp.asarray(X), xp.asarray(y))
        assert not hasattr(model, "classes_")  # refused before anything was set
        fitted.set_params(n_hidden=400)
        with pytest.raises(InsufficientMemory):
            fitted.fit(xp.asarray(X), xp.asarray(y))
    assert {key: value for key, value in vars(fitted).items() if key != "coefs_"}.keys() == before.keys()
    assert isinstance(fitted.coefs_[0], np.ndarray)  # the earlier fit's weights, still NumPy's
    monkeypatch.setattr(resources, "available_memory", lambda: 10**12)
    with sklearn.config_context(array_api_dispatch=True):
        _fit(model.set_params(max_iter=3), xp.asarray(X), xp.asarray(y))
    assert _module_of(model.coefs_[0]) == name


def test_the_bayesian_network_refuses_device_inputs_in_one_line(wine: tuple) -> None:
    from twolayer.bayes import BayesianTwoLayerClassifier

    xp = _namespace("array_api_strict")
    X, y = wine
    model = BayesianTwoLayerClassifier(n_hidden=3)
    with sklearn.config_context(array_api_dispatch=True):
        with pytest.raises(ValueError, match=r"does not run on array-API \(device\) inputs yet"):
            model.fit(xp.asarray(X), xp.asarray(y))
    assert not hasattr(model, "classes_")


@pytest.mark.parametrize("name", NAMESPACES)
def test_a_model_trained_on_the_device_saves_and_loads_as_numpy(wine: tuple, name: str, tmp_path: Any) -> None:
    from twolayer.io import modelfile

    xp = _namespace(name)
    X, y = wine
    with sklearn.config_context(array_api_dispatch=True):
        model = _fit(
            TwoLayerClassifier(n_hidden=3, solver="lbfgs", max_iter=20, random_state=0), xp.asarray(X), xp.asarray(y)
        )
    modelfile.save(model, tmp_path / "device.safetensors")
    loaded = modelfile.load(tmp_path / "device.safetensors")
    assert all(isinstance(a, np.ndarray) for a in loaded.coefs_)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.to_numpy().predict_proba(X))
