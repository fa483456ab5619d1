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


def _same_fit(model: TwoLayerClassifier, reference: TwoLayerClassifier, name: str) -> None:
    """``model``, fitted on the device, is ``reference``, fitted on NumPy: weights, counters and records."""
    assert _module_of(model.coefs_[0]) == name  # the weights stay in the namespace of the data
    assert model.n_iter_ == reference.n_iter_
    assert model.t_ == reference.t_
    np.testing.assert_allclose(model.loss_curve_, reference.loss_curve_, rtol=1e-9)
    host = model.to_numpy()
    for a, b in zip((*host.coefs_, *host.intercepts_), (*reference.coefs_, *reference.intercepts_)):
        np.testing.assert_allclose(a, b, atol=1e-9)
    assert (model.validation_scores_ is None) == (reference.validation_scores_ is None)
    if reference.validation_scores_ is not None:
        np.testing.assert_allclose(model.validation_scores_, reference.validation_scores_, atol=1e-9)
        assert model.best_validation_score_ == pytest.approx(reference.best_validation_score_, abs=1e-9)
    assert (model.best_loss_ is None) == (reference.best_loss_ is None)


#: Minibatch settings whose state a continuation must carry: Adam's moments and step count,
#: SGD's velocity and a learning rate that moves (``invscaling``, ``adaptive``).
MINIBATCH = {
    "adam": {"solver": "adam", "learning_rate_init": 0.01},
    "sgd-adaptive": {"solver": "sgd", "learning_rate": "adaptive", "momentum": 0.9, "n_iter_no_change": 1},
    "sgd-invscaling": {"solver": "sgd", "learning_rate": "invscaling", "nesterovs_momentum": False},
}


def _on_device(xp: Any, *arrays: Any) -> list[Any]:
    return [xp.asarray(a) for a in arrays]


@pytest.mark.parametrize("name", NAMESPACES)
@pytest.mark.parametrize("setting", [*MINIBATCH, "lbfgs"])
def test_a_warm_start_on_the_device_goes_on_as_on_numpy(wine: tuple, name: str, setting: str) -> None:
    xp = _namespace(name)
    X, y = wine
    solver = MINIBATCH.get(setting, {"solver": setting})
    kw = {
        "n_hidden": 5,
        "random_state": 0,
        "max_iter": 6,
        "alpha": 1e-2,
        "batch_size": 32,
        "warm_start": True,
        **solver,
    }
    reference = _fit(TwoLayerClassifier(**kw), X, y)
    _fit(reference, X, y)
    with sklearn.config_context(array_api_dispatch=True):
        model = _fit(TwoLayerClassifier(**kw), *_on_device(xp, X, y))
        _fit(model, *_on_device(xp, X, y))
    assert len(model.loss_curve_) == 2 * model.n_iter_  # the second fit went on from the first
    _same_fit(model, reference, name)


@pytest.mark.parametrize("name", NAMESPACES)
def test_a_warm_start_crosses_between_the_host_and_the_device(wine: tuple, name: str) -> None:
    xp = _namespace(name)
    X, y = wine
    kw = {"n_hidden": 5, "random_state": 1, "max_iter": 5, "batch_size": 50, "warm_start": True, **MINIBATCH["adam"]}
    reference = _fit(TwoLayerClassifier(**kw), X, y)
    _fit(reference, X, y)
    _fit(reference, X, y)
    model = _fit(TwoLayerClassifier(**kw), X, y)  # on the host
    with sklearn.config_context(array_api_dispatch=True):
        _fit(model, *_on_device(xp, X, y))  # goes on on the device, the host's Adam moments moved there
    assert _module_of(model.coefs_[0]) == name
    _fit(model, X, y)  # and back on the host (dispatch off), the device's moments brought back
    assert isinstance(model.coefs_[0], np.ndarray)
    np.testing.assert_allclose(model.loss_curve_, reference.loss_curve_, rtol=1e-9)
    for a, b in zip((*model.coefs_, *model.intercepts_), (*reference.coefs_, *reference.intercepts_)):
        np.testing.assert_allclose(a, b, atol=1e-9)
    assert model.t_ == reference.t_


@pytest.mark.parametrize("name", NAMESPACES)
def test_a_warm_start_from_weights_set_by_hand_on_the_device(wine: tuple, name: str) -> None:
    xp = _namespace(name)
    X, y = wine
    rng = np.random.default_rng(5)
    weights = [rng.normal(0.0, 0.3, shape) for shape in ((13, 4), (4,), (4, 3), (3,))]
    kw = {"n_hidden": 4, "random_state": 0, "max_iter": 4, "warm_start": True, **MINIBATCH["adam"]}
    models = []
    for on_device in (False, True):
        model = TwoLayerClassifier(**kw)
        model.coefs_, model.intercepts_ = [weights[0], weights[2]], [weights[1], weights[3]]
        with sklearn.config_context(array_api_dispatch=on_device):
            models.append(_fit(model, *(_on_device(xp, X, y) if on_device else (X, y))))
    reference, model = models
    _same_fit(model, reference, name)


@pytest.mark.parametrize("name", NAMESPACES)
@pytest.mark.parametrize("setting", list(MINIBATCH))
def test_partial_fit_on_the_device_is_numpys(wine: tuple, name: str, setting: str) -> None:
    xp = _namespace(name)
    X, y = wine
    rng = np.random.default_rng(0)
    order = rng.permutation(y.shape[0])
    X, y = X[order], y[order]
    kw = {"n_hidden": 4, "random_state": 0, "batch_size": 20, **MINIBATCH[setting]}
    s = rng.uniform(0.5, 1.5, y.shape[0])
    classes = np.unique(y)
    reference, model = TwoLayerClassifier(**kw), TwoLayerClassifier(**kw)
    # Blocks of the stream: the first does not hold every class.
    blocks = [slice(0, 40), slice(40, 120), slice(120, None)]
    first = np.isin(y[blocks[0]], classes[:2])
    for i, rows in enumerate(blocks):
        Xb, yb, sb = X[rows], y[rows], s[rows]
        if i == 0:
            Xb, yb, sb = Xb[first], yb[first], sb[first]
        reference.partial_fit(Xb, yb, classes=classes if i == 0 else None, sample_weight=sb)
        with sklearn.config_context(array_api_dispatch=True):
            model.partial_fit(
                *_on_device(xp, Xb, yb), classes=classes if i == 0 else None, sample_weight=xp.asarray(sb)
            )
        assert model.n_iter_ == 1  # one epoch per call
    _same_fit(model, reference, name)
    np.testing.assert_array_equal(model.classes_, classes)


@pytest.mark.parametrize("name", NAMESPACES)
@pytest.mark.parametrize("setting", ["adam", "sgd-adaptive"])
def test_early_stopping_on_the_device_holds_out_numpys_rows_and_stops_with_it(
    wine: tuple, name: str, setting: str
) -> None:
    xp = _namespace(name)
    X, y = wine
    # Noisy labels, so that the held-out score rises, falls and stalls instead of reaching 1 at once.
    y = np.where(np.random.default_rng(3).random(y.shape[0]) < 0.25, (y + 1) % 3, y)
    s = np.random.default_rng(0).uniform(0.2, 2.0, y.shape[0])
    kw = {
        "n_hidden": 6,
        "random_state": 0,
        "max_iter": 300,
        "batch_size": 16,
        "early_stopping": True,
        "validation_fraction": 0.25,
        **MINIBATCH[setting],
        "n_iter_no_change": 4,
    }
    reference = _fit(TwoLayerClassifier(**kw), X, y, sample_weight=s)
    with sklearn.config_context(array_api_dispatch=True):
        model = _fit(TwoLayerClassifier(**kw), *_on_device(xp, X, y), sample_weight=xp.asarray(s))
    assert reference.n_iter_ < kw["max_iter"]  # it did stop early ...
    assert reference.best_validation_score_ > reference.validation_scores_[0]  # ... after improving
    assert model.best_loss_ is None  # the score was watched, not the loss
    _same_fit(model, reference, name)  # the same epoch, scores and best weights
    # A warm start goes on with the record and the best weights so far.
    reference.set_params(warm_start=True, max_iter=5)
    model.set_params(warm_start=True, max_iter=5)
    _fit(reference, X, y, sample_weight=s)
    with sklearn.config_context(array_api_dispatch=True):
        _fit(model, *_on_device(xp, X, y), sample_weight=xp.asarray(s))
    _same_fit(model, reference, name)


@pytest.mark.parametrize("name", NAMESPACES)
@pytest.mark.parametrize(("solver", "early_stopping"), [("adam", True), ("sgd", False), ("lbfgs", False)])
def test_a_validation_set_of_ones_own_on_the_device(wine: tuple, name: str, solver: str, early_stopping: bool) -> None:
    xp = _namespace(name)
    X, y = wine
    rng = np.random.default_rng(1)
    X_val = X[::2] + rng.normal(0.0, 0.8, X[::2].shape)
    y_val = y[::2]
    kw = {
        "n_hidden": 4,
        "solver": solver,
        "random_state": 0,
        "max_iter": 40,
        "early_stopping": early_stopping,
        "n_iter_no_change": 3,
        "class_weight": {0: 1.0, 1: 2.0, 2: 0.5},  # the score is weighted by it
    }
    reference = _fit(TwoLayerClassifier(**kw), X, y, X_val=X_val, y_val=y_val)
    with sklearn.config_context(array_api_dispatch=True):
        model = _fit(TwoLayerClassifier(**kw), *_on_device(xp, X, y), X_val=xp.asarray(X_val), y_val=xp.asarray(y_val))
        # X_val elsewhere (here NumPy) is moved to the device of X.
        moved = _fit(TwoLayerClassifier(**kw), *_on_device(xp, X, y), X_val=X_val, y_val=y_val)
    assert len(reference.validation_scores_) == reference.n_iter_ > 1
    _same_fit(model, reference, name)
    _same_fit(moved, reference, name)


@pytest.mark.parametrize("name", NAMESPACES)
def test_multilabel_early_stopping_and_validation_sets_on_the_device(wine: tuple, name: str) -> None:
    xp = _namespace(name)
    X, y = wine
    Y = np.stack([y == 0, y == 2, X[:, 0] > 0], axis=1).astype(np.int64)
    kw = {"n_hidden": 4, "solver": "adam", "random_state": 2, "max_iter": 60, "n_iter_no_change": 3}
    for fit_kw in ({"early_stopping": True}, {"early_stopping": False}):
        model_kw = {**kw, **fit_kw}
        extra = {} if fit_kw["early_stopping"] else {"X_val": X[1::2], "y_val": Y[1::2]}
        reference = _fit(TwoLayerClassifier(**model_kw), X, Y, **extra)
        device_extra = {key: xp.asarray(value) for key, value in extra.items()}
        with sklearn.config_context(array_api_dispatch=True):
            model = _fit(TwoLayerClassifier(**model_kw), *_on_device(xp, X, Y), **device_extra)
        assert model.out_activation_ == "logistic"
        _same_fit(model, reference, name)


@pytest.mark.parametrize("name", NAMESPACES)
def test_a_divergence_on_the_device_keeps_the_last_epoch_as_numpy_does(wine: tuple, name: str) -> None:
    from twolayer.errors import TrainingDiverged

    xp = _namespace(name)
    X, y = wine
    kw = {"n_hidden": 4, "solver": "sgd", "random_state": 0, "max_iter": 5, "warm_start": True, "momentum": 0.9}
    reference = _fit(TwoLayerClassifier(**kw), X, y)
    with sklearn.config_context(array_api_dispatch=True):
        model = _fit(TwoLayerClassifier(**kw), *_on_device(xp, X, y))
    # Three epochs of steps too long to overflow yet, then an overflow in the fourth.
    reference.set_params(learning_rate_init=1e100)
    model.set_params(learning_rate_init=1e100)
    with pytest.raises(TrainingDiverged, match="epoch 9"):
        _fit(reference, X, y)
    with sklearn.config_context(array_api_dispatch=True), pytest.raises(TrainingDiverged, match="epoch 9"):
        _fit(model, *_on_device(xp, X, y))
    assert model.n_iter_ == 3
    _same_fit(model, reference, name)
    # The optimiser is as after the last finished epoch too, ready for a warm start.
    state, expected = model.get_training_state(), reference.get_training_state()
    np.testing.assert_allclose(state["velocity"], expected["velocity"], rtol=1e-9)
    np.testing.assert_allclose(state["theta"], expected["theta"], rtol=1e-9)


def test_what_numpy_refuses_the_device_refuses_too_and_leaves_the_model_as_it_was(wine: tuple) -> None:
    xp = _namespace("array_api_strict")
    X, y = wine
    Xd, yd = _on_device(xp, X, y)
    with sklearn.config_context(array_api_dispatch=True):
        model = TwoLayerClassifier(n_hidden=3, solver="adam", max_iter=2, random_state=0)
        with pytest.raises(ValueError, match="classes must be passed on the first call to partial_fit"):
            model.partial_fit(Xd, yd)
        assert not hasattr(model, "classes_")
        # Still refused, on NumPy too: partial_fit sees one block, from which no split can be held out.
        with pytest.raises(ValueError, match="partial_fit does not support early_stopping=True"):
            TwoLayerClassifier(early_stopping=True).partial_fit(Xd, yd, classes=np.unique(y))
        fitted = _fit(
            TwoLayerClassifier(n_hidden=3, solver="adam", max_iter=3, random_state=0, warm_start=True), Xd, yd
        )
        weights, record = fitted.coefs_, list(fitted.loss_curve_)
        with pytest.raises(ValueError, match="warm_start can only be used where `y` has the same classes"):
            fitted.fit(Xd, xp.asarray(np.minimum(y, 1)))
        with pytest.raises(ValueError, match="X_val must have the 13 features"):
            fitted.fit(Xd, yd, X_val=xp.asarray(X[:, :5]), y_val=yd)
        with pytest.raises(ValueError, match=r"y_val holds labels \[7\]"):
            fitted.fit(Xd, yd, X_val=Xd, y_val=xp.asarray(np.full_like(y, 7)))
        with pytest.raises(ValueError, match="differs from classes_"):
            fitted.partial_fit(Xd, yd, classes=[0, 1, 2, 3])
    assert fitted.coefs_ is weights and fitted.loss_curve_ == record  # refused before training: as it was


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


def test_the_bayesian_network_fits_on_device_inputs_and_keeps_them_there(wine: tuple) -> None:
    from twolayer.bayes import BayesianTwoLayerClassifier

    xp = _namespace("array_api_strict")
    X, y = wine
    X, y = X[::2], y[::2]
    model = BayesianTwoLayerClassifier(n_hidden=3, alpha_search="grid", alpha_grid=[1.0], n_restarts=0, n_samples=50)
    with sklearn.config_context(array_api_dispatch=True):
        _fit(model, xp.asarray(X), xp.asarray(y))
        assert _module_of(model.coefs_[0]) == "array_api_strict"
        assert _module_of(model.predict_proba(xp.asarray(X))) == "array_api_strict"
        with pytest.raises(ValueError, match="X must be an array of array_api_strict"):
            model.predict_proba(X)  # NumPy X for a model on the device: not moved silently
    assert isinstance(model.log_evidence_, float) and isinstance(model.alpha_, np.ndarray)


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


@pytest.mark.parametrize("name", NAMESPACES)
@pytest.mark.parametrize("solver", ["lbfgs", "newton-cg"])
def test_a_callback_on_the_device_sees_the_iterate_of_a_whole_batch_solver(wine: tuple, name: str, solver: str) -> None:
    # The weights, n_iter_ and the state a callback reads are those of the iterate, as on NumPy.
    xp = _namespace(name)
    X, y = wine
    kw = {"n_hidden": 4, "solver": solver, "random_state": 0, "max_iter": 5, "alpha": 1e-2}
    seen: dict[str, list[tuple[int, np.ndarray, np.ndarray]]] = {"host": [], "device": []}

    def recorder(where: str) -> Any:
        def callback(model: TwoLayerClassifier) -> bool:
            W1 = np.asarray(model.to_numpy().coefs_[0])
            seen[where].append((model.n_iter_, W1.copy(), model.get_training_state()["theta"].copy()))
            return model.n_iter_ >= 3  # a stopping rule that reads n_iter_

        return callback

    _fit(TwoLayerClassifier(**kw, callback=recorder("host")), X, y)
    with sklearn.config_context(array_api_dispatch=True):
        _fit(TwoLayerClassifier(**kw, callback=recorder("device")), xp.asarray(X), xp.asarray(y))
    assert [n for n, *_ in seen["device"]] == [n for n, *_ in seen["host"]] == [1, 2, 3]
    for (_, W1_host, theta_host), (_, W1_device, theta_device) in zip(seen["host"], seen["device"], strict=True):
        np.testing.assert_allclose(W1_device, W1_host, rtol=0, atol=1e-8)
        np.testing.assert_allclose(theta_device, theta_host, rtol=0, atol=1e-8)
    assert not np.allclose(seen["device"][0][2], seen["device"][-1][2])  # the iterates move


@pytest.mark.parametrize("name", NAMESPACES)
@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_a_callback_on_the_device_sees_the_state_of_its_epoch(wine: tuple, name: str, solver: str) -> None:
    # What get_training_state gives inside a callback (a checkpoint) is the state after that epoch,
    # the optimiser's included, as on NumPy; without a callback nothing is brought back each epoch.
    xp = _namespace(name)
    X, y = wine
    kw = {"n_hidden": 4, "solver": solver, "random_state": 0, "max_iter": 6, "early_stopping": True}
    kw = {**kw, "n_iter_no_change": 50, "batch_size": 32}
    states: dict[str, list[dict[str, Any]]] = {"host": [], "device": []}

    def recorder(where: str) -> Any:
        return lambda model: states[where].append(model.get_training_state()) and False

    _fit(TwoLayerClassifier(**kw, callback=recorder("host")), X, y)
    with sklearn.config_context(array_api_dispatch=True):
        _fit(TwoLayerClassifier(**kw, callback=recorder("device")), xp.asarray(X), xp.asarray(y))
    assert len(states["device"]) == len(states["host"]) == 6
    moments = ("adam_m", "adam_v") if solver == "adam" else ("velocity",)
    for host, device in zip(states["host"], states["device"], strict=True):
        assert device["n_iter"] == host["n_iter"]
        for key in ("theta", "best_theta", *moments):
            assert isinstance(device[key], np.ndarray)
            np.testing.assert_allclose(device[key], host[key], rtol=0, atol=1e-10, err_msg=key)
    assert not np.array_equal(states["device"][0]["theta"], states["device"][-1]["theta"])
