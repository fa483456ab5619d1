"""Tests of twolayer.classifier: the scikit-learn estimator.

Oracles: scikit-learn's own estimator checks and ``MLPClassifier`` (its L-BFGS
loss, its predict_proba after conversion, its accuracy on the same split);
:func:`twolayer.network.gradient` for a full-batch step worked in the test;
the training state, which must reproduce an uninterrupted run bit for bit.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_digits, load_iris, make_classification
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.estimator_checks import check_param_validation, parametrize_with_checks

import twolayer
from twolayer import network as nw
from twolayer.classifier import TwoLayerClassifier, from_sklearn
from twolayer.training import optim

MLP_ACTIVATIONS = ["tanh", "logistic", "relu", "identity"]  # MLPClassifier's, for the conversions
SOLVERS = ["adam", "sgd", "lbfgs"]  # MLPClassifier's
SECOND_ORDER = ["trust-ncg", "newton-cg", "scg"]
ALL_SOLVERS = SOLVERS + SECOND_ORDER
FULL_BATCH = ["lbfgs", *SECOND_ORDER]
quiet_convergence = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def small_problem(n_classes: int = 3, n: int = 60, d: int = 5, seed: int = 0):
    X, y = make_classification(
        n_samples=n,
        n_features=d,
        n_informative=3,
        n_redundant=0,
        n_classes=n_classes,
        n_clusters_per_class=1,
        random_state=seed,
    )
    return X, y


def fitted(**kwargs) -> TwoLayerClassifier:
    X, y = small_problem()
    params = {"n_hidden": 6, "max_iter": 5, "random_state": 0, **kwargs}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return TwoLayerClassifier(**params).fit(X, y)


def theta_of(model: TwoLayerClassifier) -> np.ndarray:
    return nw.flatten(model.params_)


# --------------------------------------------------------------------------
# scikit-learn's estimator checks
# --------------------------------------------------------------------------


def _check_name(check) -> str:
    return getattr(check, "func", check).__name__


@quiet_convergence
@parametrize_with_checks(
    [
        TwoLayerClassifier(),
        TwoLayerClassifier(solver="sgd"),
        TwoLayerClassifier(solver="lbfgs"),
        TwoLayerClassifier(solver="scg"),
    ]
)
def test_sklearn_estimator_checks(estimator, check):
    if _check_name(check) == "check_array_api_input" and not os.environ.get("SCIPY_ARRAY_API"):
        # scikit-learn runs this check only when SciPy's array-API mode was switched on
        # before SciPy was imported: run it in a fresh interpreter with the switch set.
        code = (
            "import warnings; from sklearn.exceptions import ConvergenceWarning; "
            "warnings.simplefilter('ignore', ConvergenceWarning); "
            "from sklearn.utils import estimator_checks as ec; from twolayer.classifier import TwoLayerClassifier; "
            f"ec.{check.func.__name__}('TwoLayerClassifier', TwoLayerClassifier(**{estimator.get_params()!r}), "
            f"**{check.keywords!r})"
        )
        env = {**os.environ, "SCIPY_ARRAY_API": "1"}
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
    else:
        check(estimator)


# --------------------------------------------------------------------------
# accuracy against MLPClassifier
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_scores():
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = TwoLayerClassifier(random_state=0).fit(X_train, y_train).score(X_test, y_test)
        theirs = MLPClassifier(hidden_layer_sizes=(100,), activation="tanh", random_state=0).fit(X_train, y_train)
    return ours, theirs.score(X_test, y_test)


def test_digits_accuracy_with_defaults(digits_scores):
    ours, theirs = digits_scores
    assert ours >= 0.97, f"digits accuracy {ours:.4f} < 0.97"
    assert ours >= theirs - 0.01, f"digits accuracy {ours:.4f} < MLPClassifier's {theirs:.4f} - 0.01"


def test_iris_accuracy():
    X, y = load_iris(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        score = TwoLayerClassifier(random_state=0).fit(X_train, y_train).score(X_test, y_test)
    assert score >= 0.95


@quiet_convergence
def test_works_in_a_pipeline_with_grid_search():
    X, y = small_problem()
    pipe = make_pipeline(StandardScaler(), TwoLayerClassifier(n_hidden=5, solver="lbfgs", max_iter=50, random_state=0))
    search = GridSearchCV(pipe, {"twolayerclassifier__alpha": [1e-4, 1.0]}, cv=2).fit(X, y)
    assert search.best_score_ > 0.7  # chance is 1/3
    assert search.best_estimator_[-1].classes_.tolist() == [0, 1, 2]


# --------------------------------------------------------------------------
# the loss: MLPClassifier's L-BFGS loss for the same weights
# --------------------------------------------------------------------------


@quiet_convergence
@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("weighted", [False, True])
def test_loss_equals_mlpclassifier_lbfgs_loss(n_classes, weighted):
    X, y = small_problem(n_classes=n_classes, seed=1)
    sw = np.random.default_rng(0).uniform(0.5, 3.0, size=y.shape[0]) if weighted else None
    mlp = MLPClassifier(
        hidden_layer_sizes=(7,), activation="tanh", solver="lbfgs", alpha=0.5, max_iter=6, random_state=0
    ).fit(X, y, sample_weight=sw)
    ours = from_sklearn(mlp)
    T = np.eye(len(ours.classes_))[np.searchsorted(ours.classes_, y)]
    loss = optim.objective(ours.params_, X, T, sw, alpha=0.5)
    assert loss == pytest.approx(mlp.loss_, rel=1e-10)


@quiet_convergence
@pytest.mark.parametrize("solver", FULL_BATCH)
@pytest.mark.parametrize("weighted", [False, True])
def test_full_batch_loss_attribute_is_the_objective_at_the_fitted_weights(solver, weighted):
    X, y = small_problem(seed=2)
    sw = np.random.default_rng(1).uniform(0.5, 3.0, size=y.shape[0]) if weighted else None
    model = TwoLayerClassifier(n_hidden=5, solver=solver, alpha=0.1, max_iter=15, random_state=0).fit(
        X, y, sample_weight=sw
    )
    T = np.eye(3)[y]
    assert model.loss_ == pytest.approx(optim.objective(model.params_, X, T, sw, alpha=0.1), rel=1e-10)
    assert model.loss_curve_[-1] == model.loss_ and model.best_loss_ == min(model.loss_curve_)


@pytest.mark.parametrize("solver", FULL_BATCH)
def test_full_batch_solver_already_converged_at_the_start(solver):
    X, y = small_problem(seed=14)
    model = TwoLayerClassifier(n_hidden=3, solver=solver, tol=1e3, random_state=0).fit(X, y)  # |g| <= tol at once
    assert model.n_iter_ == 0 and model.loss_curve_ == []
    assert model.loss_ == pytest.approx(optim.objective(model.params_, X, np.eye(3)[y], alpha=1e-4), rel=1e-12)


@pytest.mark.parametrize("solver", FULL_BATCH)
@pytest.mark.parametrize("weighted", [False, True])
def test_full_batch_solvers_stop_at_a_stationary_point_of_the_objective(solver, weighted):
    X, y = small_problem(n=40, seed=13)
    sw = np.random.default_rng(4).uniform(0.5, 3.0, size=40) if weighted else None
    tol, alpha = 1e-6, 0.5
    model = TwoLayerClassifier(n_hidden=4, solver=solver, alpha=alpha, tol=tol, max_iter=2000, random_state=0)
    model.fit(X, y, sample_weight=sw)  # no ConvergenceWarning: it converged
    S = 40.0 if sw is None else sw.sum()
    grad = nw.gradient(model.params_, X, np.eye(3)[y], sw)  # the gradient of (E + alpha/2 ||w||^2) / S
    grad = grad._replace(W1=grad.W1 + alpha * model.params_.W1, W2=grad.W2 + alpha * model.params_.W2)
    largest = np.max(np.abs(nw.flatten(grad) / S))
    if solver == "lbfgs":
        # L-BFGS-B (as in MLPClassifier) also stops when the loss's relative reduction
        # falls to ftol = 2.2e-9, which can come first
        f_prev, f_last = model.loss_curve_[-2:]
        assert largest <= 1.01 * tol or (f_prev - f_last) / max(abs(f_prev), abs(f_last), 1.0) <= 2.3e-9
    else:
        assert largest <= 1.01 * tol


# --------------------------------------------------------------------------
# one full-batch step of each solver, by hand from network.gradient
# --------------------------------------------------------------------------


def one_step_model(solver: str, **kwargs) -> tuple[TwoLayerClassifier, np.ndarray, np.ndarray, np.ndarray]:
    """A model holding known weights and a fresh optimiser, and the data for one full-batch epoch."""
    X, y = small_problem(n=20, seed=3)
    model = fitted(solver=solver, **kwargs)
    state = model.get_training_state()
    rng = np.random.default_rng(5)
    state["theta"] = rng.normal(scale=0.3, size=state["theta"].shape)
    state["optimizer"] = None
    clone = TwoLayerClassifier(
        **{**model.get_params(), "warm_start": True, "max_iter": 1, "batch_size": 20, "shuffle": False}
    ).set_training_state(state)
    return clone, state["theta"].copy(), X, y


@quiet_convergence
@pytest.mark.parametrize("solver, nesterov", [("sgd", False), ("sgd", True), ("adam", False)])
def test_one_full_batch_step_by_hand(solver, nesterov):
    alpha, lr = 0.3, 0.05
    model, theta0, X, y = one_step_model(solver, alpha=alpha, learning_rate_init=lr, nesterovs_momentum=nesterov)
    model.fit(X, y)
    params0 = nw.unflatten(theta0, 5, 6, 3)
    g = nw.flatten(nw.gradient(params0, X, np.eye(3)[y])) / 20  # (1/B) sum grad E_n, B = N = 20
    decay = np.zeros_like(theta0)
    decay[: 5 * 6] = decay[5 * 6 + 6 : 5 * 6 + 6 + 6 * 3] = 1.0
    g += alpha / 20 * decay * theta0  # + (alpha / N) w on W1 and W2 only
    if solver == "sgd":
        v = -lr * g  # v = 0.9 * 0 - lr g
        expected = theta0 + (0.9 * v - lr * g if nesterov else v)
    else:
        m, v = 0.1 * g, 0.001 * g * g
        expected = theta0 - lr * math.sqrt(1 - 0.999) / (1 - 0.9) * m / (np.sqrt(v) + 1e-8)
    np.testing.assert_allclose(theta_of(model), expected, rtol=1e-12, atol=1e-15)


# --------------------------------------------------------------------------
# from_sklearn / to_sklearn
# --------------------------------------------------------------------------


@quiet_convergence
@pytest.mark.parametrize("activation", MLP_ACTIVATIONS)
@pytest.mark.parametrize("n_classes", [2, 3])
def test_from_sklearn_keeps_predict_proba(activation, n_classes):
    X, y = small_problem(n_classes=n_classes, seed=4)
    labels = np.array(["cat", "dog", "eel"])[y]
    mlp = MLPClassifier(hidden_layer_sizes=(5,), activation=activation, max_iter=30, random_state=0).fit(X, labels)
    ours = from_sklearn(mlp)
    assert isinstance(ours, TwoLayerClassifier) and ours.n_hidden == 5 and ours.activation == activation
    assert ours.coefs_[1].shape == (5, n_classes) and ours.n_outputs_ == n_classes
    np.testing.assert_allclose(ours.predict_proba(X), mlp.predict_proba(X), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(ours.predict(X), mlp.predict(X))
    back = ours.to_sklearn()
    for a, b in zip(back.coefs_ + back.intercepts_, mlp.coefs_ + mlp.intercepts_):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-15)
    np.testing.assert_allclose(back.predict_proba(X), mlp.predict_proba(X), rtol=0, atol=1e-12)


@quiet_convergence
@pytest.mark.parametrize("activation", MLP_ACTIVATIONS)
@pytest.mark.parametrize("n_classes", [2, 3])
def test_to_sklearn_keeps_predict_proba(activation, n_classes):
    X, y = small_problem(n_classes=n_classes, seed=5)
    ours = TwoLayerClassifier(n_hidden=4, activation=activation, max_iter=20, random_state=0).fit(X, y)
    mlp = ours.to_sklearn()
    assert isinstance(mlp, MLPClassifier) and mlp.hidden_layer_sizes == (4,)
    np.testing.assert_allclose(mlp.predict_proba(X), ours.predict_proba(X), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(mlp.predict(X), ours.predict(X))
    again = from_sklearn(mlp)
    np.testing.assert_allclose(again.predict_proba(X), ours.predict_proba(X), rtol=0, atol=1e-12)
    mlp.set_params(warm_start=True, max_iter=2).fit(X, y)  # scikit-learn can go on training it


def test_from_sklearn_rejects_what_it_cannot_represent_and_converts_multilabel():
    X, y = small_problem()
    with pytest.raises(TypeError, match="MLPClassifier"):
        from_sklearn(TwoLayerClassifier())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        deep = MLPClassifier(hidden_layer_sizes=(3, 3), max_iter=2).fit(X, y)
        multilabel = MLPClassifier(hidden_layer_sizes=(3,), max_iter=2).fit(X, np.eye(3)[y].astype(int))
    with pytest.raises(ValueError, match="one hidden layer"):
        from_sklearn(deep)
    # a multilabel MLP converts (its K logistic outputs become K sigmoid outputs)
    np.testing.assert_allclose(from_sklearn(multilabel).predict_proba(X), multilabel.predict_proba(X), rtol=1e-12)
    with pytest.raises(NotFittedError):
        from_sklearn(MLPClassifier())


def test_package_exports():
    assert twolayer.TwoLayerClassifier is TwoLayerClassifier
    assert twolayer.from_sklearn is from_sklearn


# --------------------------------------------------------------------------
# pattern weights
# --------------------------------------------------------------------------


@quiet_convergence
@pytest.mark.parametrize("solver", ALL_SOLVERS)
def test_balanced_class_weight_equals_the_matching_sample_weights(solver):
    X, y = small_problem(n=50, seed=6)
    y[:20] = 0  # imbalance the classes
    a = TwoLayerClassifier(n_hidden=5, solver=solver, class_weight="balanced", max_iter=10, random_state=0).fit(X, y)
    b = TwoLayerClassifier(n_hidden=5, solver=solver, max_iter=10, random_state=0).fit(
        X, y, sample_weight=compute_sample_weight("balanced", y)
    )
    np.testing.assert_array_equal(theta_of(a), theta_of(b))
    assert a.loss_curve_ == b.loss_curve_


@quiet_convergence
def test_dict_class_weight_times_sample_weight():
    X, y = small_problem(n=40, seed=7)
    sw = np.random.default_rng(2).uniform(0.5, 2.0, size=40)
    cw = {0: 2.0, 1: 0.5, 2: 1.5}
    a = TwoLayerClassifier(n_hidden=4, class_weight=cw, max_iter=5, random_state=0).fit(X, y, sample_weight=sw)
    b = TwoLayerClassifier(n_hidden=4, max_iter=5, random_state=0).fit(
        X, y, sample_weight=sw * np.array([2.0, 0.5, 1.5])[y]
    )
    np.testing.assert_array_equal(theta_of(a), theta_of(b))


@quiet_convergence
@pytest.mark.parametrize("solver", ALL_SOLVERS)
def test_integer_weights_equal_repeated_patterns(solver):
    X, y = small_problem(n=30, seed=8)
    counts = np.random.default_rng(3).integers(0, 4, size=30)
    a = TwoLayerClassifier(n_hidden=4, solver=solver, batch_size=500, shuffle=False, max_iter=8, random_state=0)
    b = TwoLayerClassifier(n_hidden=4, solver=solver, batch_size=500, shuffle=False, max_iter=8, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # batch_size above N is clipped, with a warning
        a.fit(X, y, sample_weight=counts)
        b.fit(np.repeat(X, counts, axis=0), np.repeat(y, counts))
    np.testing.assert_allclose(theta_of(a), theta_of(b), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-10)


def test_bad_sample_weights_are_refused():
    X, y = small_problem(n=20)
    with pytest.raises(ValueError, match="zero"):
        TwoLayerClassifier().fit(X, y, sample_weight=np.zeros(20))
    with pytest.raises(ValueError, match="all zero"):
        TwoLayerClassifier(class_weight={0: 0.0, 1: 0.0, 2: 0.0}).fit(X, y)
    with pytest.raises(ValueError, match=r"(?i)negative"):
        TwoLayerClassifier().fit(X, y, sample_weight=-np.ones(20))
    with pytest.raises(ValueError, match="balanced"):
        TwoLayerClassifier(class_weight="balanced").partial_fit(X, y, classes=[0, 1, 2])


# --------------------------------------------------------------------------
# dtypes and sparse input
# --------------------------------------------------------------------------


@quiet_convergence
@pytest.mark.parametrize("solver", ALL_SOLVERS)
def test_float32_stays_float32(solver):
    X, y = small_problem()
    model = TwoLayerClassifier(n_hidden=4, solver=solver, max_iter=5, random_state=0).fit(X.astype(np.float32), y)
    assert all(p.dtype == np.float32 for p in model.params_)
    assert model.predict_proba(X.astype(np.float32)).dtype == np.float32
    assert model.predict_log_proba(X.astype(np.float32)).dtype == np.float32
    state = model.get_training_state()
    assert all(v.dtype == np.float32 for v in state.values() if isinstance(v, np.ndarray))
    doubled = TwoLayerClassifier(n_hidden=4, solver=solver, max_iter=5, random_state=0).fit(X, y)
    assert all(p.dtype == np.float64 for p in doubled.params_)
    np.testing.assert_allclose(model.predict_proba(X.astype(np.float32)), doubled.predict_proba(X), atol=1e-4)


@quiet_convergence
def test_integer_input_becomes_float64():
    X, y = small_problem()
    model = TwoLayerClassifier(n_hidden=3, max_iter=2, random_state=0).fit(np.round(X * 10).astype(np.int32), y)
    assert model.params_.W1.dtype == np.float64


@quiet_convergence
@pytest.mark.parametrize("solver", ALL_SOLVERS)
@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_equals_dense(solver, fmt):
    X, y = small_problem(n=40, d=8, seed=9)
    X[np.abs(X) < 0.7] = 0.0
    Xs = sp.csr_matrix(X) if fmt == "csr" else sp.csc_matrix(X)
    dense = TwoLayerClassifier(n_hidden=5, solver=solver, max_iter=10, batch_size=16, random_state=0).fit(X, y)
    sparse = TwoLayerClassifier(n_hidden=5, solver=solver, max_iter=10, batch_size=16, random_state=0).fit(Xs, y)
    np.testing.assert_allclose(theta_of(sparse), theta_of(dense), rtol=1e-9, atol=1e-12)
    for method in ("predict_proba", "predict_log_proba", "decision_function"):
        out = getattr(sparse, method)(Xs)
        assert isinstance(out, np.ndarray)
        np.testing.assert_allclose(out, getattr(dense, method)(X), rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------
# predictions
# --------------------------------------------------------------------------


@quiet_convergence
def test_decision_function_and_log_proba():
    X, y = small_problem(n_classes=2)
    binary = TwoLayerClassifier(n_hidden=4, max_iter=3, random_state=0).fit(X, y)
    _, a2 = nw.hidden_and_output(binary.params_, X)
    np.testing.assert_allclose(binary.decision_function(X), a2[:, 1] - a2[:, 0], rtol=1e-14)
    assert binary.predict_proba(X).shape == (60, 2) and binary.n_outputs_ == 2
    X3, y3 = small_problem(n_classes=3)
    multi = TwoLayerClassifier(n_hidden=4, max_iter=3, random_state=0).fit(X3, y3)
    _, a2 = nw.hidden_and_output(multi.params_, X3)
    np.testing.assert_allclose(multi.decision_function(X3), a2, rtol=1e-14)
    np.testing.assert_array_equal(multi.predict(X3), multi.classes_[np.argmax(a2, axis=1)])
    np.testing.assert_allclose(np.exp(multi.predict_log_proba(X3)), multi.predict_proba(X3), rtol=1e-14)


def test_predict_log_proba_stays_finite_where_mlpclassifier_gives_minus_infinity():
    X, y = small_problem()
    mlp = MLPClassifier(hidden_layer_sizes=(3,), activation="identity", max_iter=300, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(X, y)
    far = X[:5] * 1e4
    with np.errstate(divide="ignore"):
        theirs = mlp.predict_log_proba(far)
    assert np.isneginf(theirs).any()
    ours = from_sklearn(mlp).predict_log_proba(far)
    assert np.all(np.isfinite(ours))
    np.testing.assert_allclose(np.exp(ours), mlp.predict_proba(far), atol=1e-12)


# --------------------------------------------------------------------------
# stopping, divergence, warnings, repeatability
# --------------------------------------------------------------------------


@pytest.mark.parametrize("solver", ALL_SOLVERS)
def test_max_iter_gives_a_convergence_warning(solver):
    X, y = small_problem()
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        TwoLayerClassifier(n_hidden=4, solver=solver, max_iter=2, tol=0.0, random_state=0).fit(X, y)


@pytest.mark.parametrize("solver", ALL_SOLVERS)
def test_callback_stops_without_a_warning(solver):
    X, y = small_problem()
    seen = []

    def callback(model):
        seen.append((model.n_iter_, len(model.loss_curve_), theta_of(model).copy()))
        return model.n_iter_ == 3

    model = TwoLayerClassifier(n_hidden=4, solver=solver, max_iter=3, tol=0.0, random_state=0, callback=callback).fit(
        X, y
    )
    assert [s[:2] for s in seen] == [(1, 1), (2, 2), (3, 3)]
    assert model.n_iter_ == 3 and len(model.loss_curve_) == 3
    np.testing.assert_array_equal(theta_of(model), seen[-1][2])  # the weights of that epoch


@pytest.mark.parametrize("activation", ["identity", "relu"])
def test_divergence_error_names_the_learning_rate(activation):
    X, y = small_problem()
    model = TwoLayerClassifier(
        n_hidden=4, activation=activation, solver="sgd", learning_rate_init=1e25, max_iter=20, random_state=0
    )
    with pytest.raises(ValueError, match="learning_rate_init=1e\\+25"):
        model.fit(X * 100, y)
    assert all(np.all(np.isfinite(p)) for p in model.params_)


def fitted_state(model: TwoLayerClassifier) -> dict:
    """The fitted attributes' values, arrays as lists, to compare a model before and after a failed fit."""
    state = {}
    for key, value in vars(model).items():
        if key.endswith("_") and not key.startswith("_"):
            if isinstance(value, (list, tuple)) and value and isinstance(value[0], np.ndarray):
                value = [v.tolist() for v in value]
            elif isinstance(value, np.ndarray):
                value = value.tolist()
            state[key] = value
    return state


@quiet_convergence
@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize(
    "solver, options",
    [
        ("adam", {}),
        ("sgd", {"shuffle": False}),
        ("adam", {"early_stopping": True}),
        ("lbfgs", {}),
    ],
)
@pytest.mark.parametrize("value, kind", [(np.nan, "NaN"), (np.inf, "inf")])
def test_non_finite_input_is_refused_and_the_old_model_kept(solver, options, value, kind, fused, monkeypatch):
    # A fresh shuffled minibatch fit checks the rows in its first epoch (with numba; up front
    # otherwise); whatever the path, the error names the entry and the estimator is left as it was:
    # unfitted, or with every fitted attribute it had.
    monkeypatch.setattr(optim, "FUSED", fused)
    X, y = small_problem()
    bad = X.copy()
    bad[37, 1] = value
    fresh = TwoLayerClassifier(n_hidden=4, solver=solver, max_iter=3, random_state=0, **options)
    with pytest.raises(ValueError, match=kind):
        fresh.fit(bad, y)
    with pytest.raises(NotFittedError):
        fresh.predict(X)
    model = TwoLayerClassifier(n_hidden=4, solver=solver, max_iter=3, random_state=0, **options).fit(X, y)
    before, proba = fitted_state(model), model.predict_proba(X)
    with pytest.raises(ValueError, match=kind):
        model.fit(bad, y)
    assert fitted_state(model) == before
    np.testing.assert_array_equal(model.predict_proba(X), proba)


@quiet_convergence
@pytest.mark.parametrize("case", ["sparse, other width", "divergence first", "dataframe", "float32"])
def test_a_refused_refit_keeps_everything_the_model_had(case):
    X, y = small_problem()
    model = TwoLayerClassifier(n_hidden=4, max_iter=3, random_state=0).fit(X, y)
    before, proba = fitted_state(model), model.predict_proba(X)
    if case == "sparse, other width":
        bad = sp.csr_matrix(np.hstack([X, X[:, :2]]))
        bad.data[5] = np.nan
    elif case == "divergence first":  # huge steps: for most rows, the error is non-finite before their batch
        model.set_params(solver="sgd", activation="relu", learning_rate_init=10.0, batch_size=5)
        for row in range(40, 59):
            bad = X * 1e100
            bad[row, 2] = np.nan
            with pytest.raises(optim.NonFiniteInput, match=f"row {row}, column 2"):
                model.fit(bad, y)
        bad[59, 2] = np.nan
    elif case == "dataframe":
        pd = pytest.importorskip("pandas", reason="a DataFrame needs pandas (in the test extra, so CI runs this)")
        bad = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
        bad.iloc[3, 1] = np.inf
    else:
        bad = X.astype(np.float32)
        bad[7, 0] = np.nan
    with pytest.raises(ValueError, match=r"NaN|inf"):
        model.fit(bad, y)
    model.set_params(solver="adam", activation="tanh", learning_rate_init=1e-3, batch_size="auto")
    assert fitted_state(model) == before
    np.testing.assert_array_equal(model.predict_proba(X), proba)


def test_non_finite_input_error_names_row_and_column():
    X, y = small_problem()
    X[37, 1] = np.nan
    with pytest.raises(optim.NonFiniteInput, match="Input X contains NaN at row 37, column 1"):
        TwoLayerClassifier(n_hidden=4, max_iter=2, random_state=0).fit(X, y)


@quiet_convergence
def test_every_row_is_checked_training_or_held_out():
    # With early stopping, some rows train and the others score: a bad value is refused in either.
    X, y = small_problem()
    for row in range(X.shape[0]):
        bad = X.copy()
        bad[row, row % X.shape[1]] = -np.inf
        with pytest.raises(ValueError, match=f"row {row}, column {row % X.shape[1]}"):
            TwoLayerClassifier(n_hidden=3, max_iter=1, random_state=0, early_stopping=True).fit(bad, y)


@quiet_convergence
@pytest.mark.parametrize("solver", ALL_SOLVERS)
def test_random_state_repeats_bit_for_bit(solver):
    X, y = small_problem()
    a = TwoLayerClassifier(n_hidden=5, solver=solver, max_iter=8, batch_size=16, random_state=3).fit(X, y)
    b = TwoLayerClassifier(n_hidden=5, solver=solver, max_iter=8, batch_size=16, random_state=3).fit(X, y)
    c = TwoLayerClassifier(n_hidden=5, solver=solver, max_iter=8, batch_size=16, random_state=4).fit(X, y)
    np.testing.assert_array_equal(theta_of(a), theta_of(b))
    assert a.loss_curve_ == b.loss_curve_
    assert not np.array_equal(theta_of(a), theta_of(c))


@quiet_convergence
def test_early_stopping_restores_the_best_weights():
    X, y = small_problem(n=120, seed=10)
    scores = []

    def callback(model):
        scores.append((model.validation_scores_[-1], theta_of(model).copy()))

    model = TwoLayerClassifier(
        n_hidden=6,
        solver="sgd",
        learning_rate_init=0.3,
        early_stopping=True,
        n_iter_no_change=4,
        max_iter=60,
        random_state=0,
        callback=callback,
    ).fit(X, y)
    assert model.best_loss_ is None and len(model.validation_scores_) == model.n_iter_ == len(scores)
    best = max(range(len(scores)), key=lambda i: (scores[i][0], -i))  # the first epoch with the best score
    assert model.best_validation_score_ == scores[best][0] == max(model.validation_scores_)
    np.testing.assert_array_equal(theta_of(model), scores[best][1])
    assert best < len(scores) - 1  # it did stop after the best, and went back


def test_stops_when_the_loss_stops_improving():
    X, y = small_problem()
    model = TwoLayerClassifier(
        n_hidden=4, solver="adam", tol=10.0, n_iter_no_change=2, max_iter=100, random_state=0
    ).fit(X, y)
    assert model.n_iter_ == 4  # the first epoch sets the best; after 3 more without improving by tol, 3 > 2


@pytest.mark.parametrize(
    "params, message",
    [
        ({"n_hidden": 0}, "n_hidden"),
        ({"activation": "softsign"}, "activation"),
        ({"solver": "rmsprop"}, "solver"),
        ({"alpha": -1.0}, "alpha"),
        ({"batch_size": 0}, "batch_size"),
        ({"learning_rate": "cosine"}, "learning_rate"),
        ({"learning_rate_init": 0.0}, "learning_rate_init"),
        ({"max_iter": 0}, "max_iter"),
        ({"momentum": 1.5}, "momentum"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
        ({"beta_2": 1.0}, "beta_2"),
        ({"epsilon": 0.0}, "epsilon"),
        ({"n_iter_no_change": 0}, "n_iter_no_change"),
        ({"class_weight": "even"}, "class_weight"),
        ({"callback": 3}, "callback"),
        ({"random_state": "seed"}, "random_state"),
        ({"random_state": True}, "random_state"),
        ({"n_hidden": True}, "n_hidden"),
        ({"shuffle": "yes"}, "shuffle"),
        ({"n_iter_no_change": 2.5}, "n_iter_no_change"),
    ],
)
def test_bad_hyperparameters_are_named(params, message):
    # scikit-learn's own error, in its words, for every hyperparameter (a bool is not a number here).
    X, y = small_problem(n=20)
    with pytest.raises(InvalidParameterError, match=f"The '{message}' parameter of TwoLayerClassifier must be"):
        TwoLayerClassifier(**params).fit(X, y)


def test_hyperparameters_are_declared_to_scikit_learn():
    # scikit-learn's check of _parameter_constraints: one constraint per parameter, and its
    # InvalidParameterError for a value of a wrong type or outside the constraint, from fit and partial_fit.
    check_param_validation("TwoLayerClassifier", TwoLayerClassifier(n_hidden=3, max_iter=2))
    check_param_validation("TwoLayerClassifier", TwoLayerClassifier(n_hidden=3, max_iter=2, solver="sgd"))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_n_iter_no_change_inf_never_stops_early():
    # As MLPClassifier: with a tolerance no epoch can meet, only max_iter ends the training.
    X, y = small_problem(n=40)
    model = TwoLayerClassifier(n_hidden=3, solver="sgd", tol=1e9, n_iter_no_change=np.inf, max_iter=25, random_state=0)
    model.fit(X, y)
    assert model.n_iter_ == 25 and model.get_training_state()["no_improvement_count"] == 24
    stopped = TwoLayerClassifier(n_hidden=3, solver="sgd", tol=1e9, n_iter_no_change=3, max_iter=25, random_state=0)
    assert stopped.fit(X, y).n_iter_ == 5  # the first epoch sets the best loss; 4 more without improving, 4 > 3


@quiet_convergence
def test_validation_fraction_zero_is_accepted_without_early_stopping():
    X, y = small_problem(n=30)
    TwoLayerClassifier(n_hidden=3, solver="lbfgs", max_iter=5, validation_fraction=0.0).fit(X, y)
    with pytest.raises(ValueError, match="validation_fraction must be above 0 with early_stopping=True"):
        TwoLayerClassifier(n_hidden=3, early_stopping=True, validation_fraction=0.0).fit(X, y)


def test_one_class_is_refused():
    with pytest.raises(ValueError, match="at least 2 classes"):
        TwoLayerClassifier().fit(np.ones((4, 2)), [1, 1, 1, 1])


@pytest.mark.slow  # a fresh interpreter
def test_solver_names_load_no_numerics():
    # The command line builds its parser from these names before NumPy, SciPy or scikit-learn load.
    code = (
        "import sys; from twolayer.training.solvers import SOLVERS; "
        "print(SOLVERS, sorted(m for m in ('numpy', 'scipy', 'sklearn') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith(" []"), done.stdout
    from twolayer import classifier

    assert classifier.SOLVERS == ("adam", "sgd", "lbfgs", "newton-cg", "trust-ncg", "scg")
    assert set(classifier.MINIBATCH_SOLVERS) | set(classifier.FULL_BATCH_SOLVERS) == set(classifier.SOLVERS)


# --------------------------------------------------------------------------
# partial_fit, warm start and the training state
# --------------------------------------------------------------------------


def test_partial_fit():
    X, y = small_problem()
    model = TwoLayerClassifier(n_hidden=4, random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        model.partial_fit(X, y)
    model.partial_fit(X[:30], y[:30], classes=[0, 1, 2]).partial_fit(X[30:], y[30:])
    assert model.n_iter_ == 1 and model.t_ == 60 and len(model.loss_curve_) == 2
    with pytest.raises(ValueError, match="not among classes_"):
        model.partial_fit(X[:5], y[:5] + 7)
    assert not hasattr(TwoLayerClassifier(solver="lbfgs"), "partial_fit")


CONTINUATIONS = [
    {"solver": "adam"},
    {"solver": "sgd", "learning_rate": "constant", "nesterovs_momentum": False},
    {"solver": "sgd", "learning_rate": "invscaling", "learning_rate_init": 0.5},
    {"solver": "sgd", "learning_rate": "adaptive", "learning_rate_init": 0.2, "n_iter_no_change": 1, "tol": 0.05},
    {"solver": "adam", "early_stopping": True, "n_iter_no_change": 100, "learning_rate_init": 0.01},
    {"solver": "sgd", "class_weight": "balanced", "learning_rate_init": 0.1},
]


@quiet_convergence
@pytest.mark.parametrize("settings", CONTINUATIONS, ids=lambda s: "-".join(f"{k}={v}" for k, v in s.items()))
def test_training_state_continues_bit_for_bit(settings):
    X, y = small_problem(n=70, seed=11)
    X = X.astype(np.float32)
    common = {"n_hidden": 5, "batch_size": 16, "random_state": 7, "alpha": 0.01, **settings}
    whole = TwoLayerClassifier(max_iter=10, **common).fit(X, y)

    first = TwoLayerClassifier(max_iter=10, callback=lambda m: m.n_iter_ == 4, **common).fit(X, y)
    state = json.loads(
        json.dumps({k: v for k, v in first.get_training_state().items() if not isinstance(v, np.ndarray)})
    )
    state.update({k: v for k, v in first.get_training_state().items() if isinstance(v, np.ndarray)})
    resumed = TwoLayerClassifier(**common).set_training_state(state)
    assert resumed.n_iter_ == 4 and len(resumed.loss_curve_) == 4
    np.testing.assert_array_equal(resumed.predict_proba(X), first.predict_proba(X))
    resumed.set_params(warm_start=True, max_iter=6).fit(X, y)

    np.testing.assert_array_equal(theta_of(resumed), theta_of(whole))
    assert resumed.loss_curve_ == whole.loss_curve_ and resumed.t_ == whole.t_
    assert resumed.validation_scores_ == whole.validation_scores_
    assert resumed.n_iter_ == 6  # n_iter_ counts the epochs of the last call, as in scikit-learn
    a, b = resumed.get_training_state(), whole.get_training_state()
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], np.ndarray):
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        elif key != "n_iter":
            assert a[key] == b[key], key


@quiet_convergence
def test_training_state_inside_the_callback_and_partial_fit_continuation():
    X, y = small_problem(n=50, seed=12)
    states = []
    TwoLayerClassifier(
        n_hidden=4, max_iter=3, random_state=1, callback=lambda m: states.append(m.get_training_state())
    ).fit(X, y)
    assert [s["n_iter"] for s in states] == [1, 2, 3]
    assert not np.array_equal(states[0]["theta"], states[2]["theta"])  # copies, not live views

    whole = TwoLayerClassifier(n_hidden=4, random_state=1)
    for _ in range(3):
        whole.partial_fit(X, y, classes=[0, 1, 2])
    split = TwoLayerClassifier(n_hidden=4, random_state=1).partial_fit(X, y, classes=[0, 1, 2])
    again = TwoLayerClassifier(n_hidden=4, random_state=1).set_training_state(split.get_training_state())
    again.partial_fit(X, y).partial_fit(X, y)
    np.testing.assert_array_equal(theta_of(again), theta_of(whole))


@quiet_convergence
def test_warm_start_with_changed_optimiser_settings_keeps_the_weights():
    X, y = small_problem()
    model = TwoLayerClassifier(n_hidden=4, max_iter=3, random_state=0).fit(X, y)
    before = model.get_training_state()
    model.set_params(warm_start=True, learning_rate_init=0.01, max_iter=1).fit(X, y)
    after = model.get_training_state()
    assert before["optimizer"]["t"] == 3  # three epochs of one batch each (batch_size "auto" = all 60)
    assert after["optimizer"]["t"] == 1  # a fresh Adam, one step old
    assert after["optimizer"]["settings"]["learning_rate_init"] == 0.01
    assert not np.array_equal(before["theta"], after["theta"])
    model.set_params(n_hidden=9)
    with pytest.raises(ValueError, match="n_hidden"):
        model.fit(X, y)


def test_set_training_state_refuses_a_mismatch():
    model = fitted()
    state = model.get_training_state()
    with pytest.raises(ValueError, match="solver"):
        TwoLayerClassifier(n_hidden=6, solver="sgd").set_training_state(state)
    with pytest.raises(ValueError, match="n_hidden"):
        TwoLayerClassifier(n_hidden=7).set_training_state(state)
    with pytest.raises(ValueError, match="training state"):
        TwoLayerClassifier(n_hidden=6).set_training_state({"theta": state["theta"]})


@quiet_convergence
def test_feature_names_in():
    pd = pytest.importorskip("pandas", reason="feature names need a DataFrame")
    X, y = small_problem()
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    model = TwoLayerClassifier(n_hidden=3, max_iter=2, random_state=0).fit(frame, y)
    assert model.feature_names_in_.tolist() == list(frame.columns)
    restored = TwoLayerClassifier(n_hidden=3).set_training_state(model.get_training_state())
    assert restored.feature_names_in_.tolist() == list(frame.columns)
    assert model.to_sklearn().feature_names_in_.tolist() == list(frame.columns)
    assert not hasattr(TwoLayerClassifier(n_hidden=3, max_iter=2).fit(X, y), "feature_names_in_")


@quiet_convergence
@pytest.mark.parametrize(
    ("name", "value"),
    [("batch_size", 0), ("learning_rate_init", float("inf")), ("random_state", -1), ("n_iter_no_change", 0)],
)
def test_training_state_refuses_bad_hyperparameters_at_once(name, value):
    # A checkpoint's hyperparameters come from a file: refused when restored, not by a later fit.
    X, y = small_problem(n=40, seed=3)
    state = TwoLayerClassifier(n_hidden=3, max_iter=3, random_state=0).fit(X, y).get_training_state()
    with pytest.raises(ValueError, match=name):
        TwoLayerClassifier(n_hidden=3, **{name: value}).set_training_state(state)


# --------------------------------------------------------------------------
# coefs_ and intercepts_ are the weights
# --------------------------------------------------------------------------


def plain_sgd(**kwargs) -> TwoLayerClassifier:
    """SGD whose step depends on the weights alone: no momentum, one batch of every pattern, no shuffling."""
    params = {"n_hidden": 4, "solver": "sgd", "momentum": 0.0, "batch_size": 60, "shuffle": False}
    return TwoLayerClassifier(**{**params, "learning_rate_init": 0.1, "random_state": 0, **kwargs})


def hand_weights(seed: int, D: int = 5, M: int = 4, K: int = 3) -> nw.Params:
    rng = np.random.default_rng(seed)
    return nw.Params(rng.normal(size=(D, M)), rng.normal(size=M), rng.normal(size=(M, K)), rng.normal(size=K))


def test_assigned_weights_are_what_predicts():
    X, _ = small_problem()
    model = fitted()
    W1, b1, W2, b2 = hand_weights(1, M=6)
    model.coefs_ = [W1, W2]  # a new list
    model.intercepts_ = [b1, b2]
    np.testing.assert_allclose(model.predict_proba(X), nw.forward(nw.Params(W1, b1, W2, b2), X), rtol=1e-12)
    logits = nw.hidden_and_output(nw.Params(W1, b1, W2, b2), X)[1]
    np.testing.assert_allclose(model.decision_function(X), logits, rtol=1e-12)
    np.testing.assert_array_equal(model.predict(X), np.argmax(logits, axis=1))
    assert model.params_.W1 is W1 and model.params_.b2 is b2  # params_ is a view of them, not a copy

    model.coefs_[1] = -W2  # an array of the list replaced
    np.testing.assert_allclose(model.predict_proba(X), nw.forward(nw.Params(W1, b1, -W2, b2), X), rtol=1e-12)
    model.coefs_[0][:, 0] = 0.0  # an edit in place
    np.testing.assert_allclose(model.predict_proba(X), nw.forward(nw.Params(W1, b1, -W2, b2), X), rtol=1e-12)
    assert W1[0, 0] == 0.0


@quiet_convergence
@pytest.mark.parametrize("how", ["in place", "new arrays"])
@pytest.mark.parametrize("call", ["warm start", "partial_fit"])
def test_warm_start_and_partial_fit_continue_from_the_weights_as_set(how, call):
    X, y = small_problem()
    model = plain_sgd(max_iter=3).fit(X, y)
    weights = hand_weights(2)
    if how == "in place":
        for public, new in zip(model.coefs_ + model.intercepts_, (weights.W1, weights.W2, weights.b1, weights.b2)):
            public[...] = new
    else:
        model.coefs_ = [weights.W1.copy(), weights.W2.copy()]
        model.intercepts_ = [weights.b1.copy(), weights.b2.copy()]
    # The same step from the same weights by an estimator that never had others.
    reference = TwoLayerClassifier.from_params(weights, model.classes_, hyperparameters=model.get_params())
    if call == "warm start":
        model.set_params(warm_start=True, max_iter=1).fit(X, y)
        reference.set_params(warm_start=True, max_iter=1).fit(X, y)
    else:
        model.partial_fit(X, y)
        reference.partial_fit(X, y)
    np.testing.assert_array_equal(theta_of(model), theta_of(reference))
    assert not np.array_equal(theta_of(model), nw.flatten(weights))  # it did take a step


@quiet_convergence
def test_weights_edited_after_early_stopping_replace_the_best_ones():
    X, y = small_problem(n=80, seed=6)
    settings = {"early_stopping": True, "batch_size": 72, "n_iter_no_change": 50, "max_iter": 6}
    model = plain_sgd(**settings).fit(X, y)
    weights = hand_weights(3)
    for public, new in zip(model.coefs_ + model.intercepts_, (weights.W1, weights.W2, weights.b1, weights.b2)):
        public[...] = new
    reference = TwoLayerClassifier.from_params(
        weights, model.classes_, hyperparameters=model.get_params(), validation_scores=[]
    )
    model.set_params(warm_start=True, max_iter=1).fit(X, y)
    reference.set_params(warm_start=True, max_iter=1).fit(X, y)
    # One epoch from the edited weights, and its weights are the best so far: the earlier best
    # belonged to other weights, so it is not brought back.
    np.testing.assert_array_equal(theta_of(model), theta_of(reference))
    assert model.best_validation_score_ == model.validation_scores_[-1]


@quiet_convergence
def test_untouched_weights_after_early_stopping_continue_exactly():
    X, y = small_problem(n=80, seed=0)
    settings = {"early_stopping": True, "batch_size": 16, "n_iter_no_change": 50, "learning_rate_init": 1.0}
    whole = plain_sgd(max_iter=8, **settings).fit(X, y)
    split = plain_sgd(max_iter=4, **settings).fit(X, y)
    assert not np.array_equal(split.get_training_state()["theta"], theta_of(split))  # best and running differ
    split.set_params(warm_start=True).fit(X, y)
    np.testing.assert_array_equal(theta_of(split), theta_of(whole))


@quiet_convergence
def test_pruned_weights_with_a_matching_n_hidden_continue_with_a_fresh_optimiser():
    X, y = small_problem()
    model = plain_sgd(max_iter=3).fit(X, y)
    keep = [0, 2, 3]  # hidden unit 1 pruned
    model.coefs_ = [model.coefs_[0][:, keep].copy(), model.coefs_[1][keep].copy()]
    model.intercepts_[0] = model.intercepts_[0][keep].copy()
    pruned = nw.flatten(model.params_).copy()
    with pytest.raises(ValueError, match=r"coefs_\[0\] has shape \(5, 3\).*M = 4 \(n_hidden = 4\).*set n_hidden"):
        model.set_params(warm_start=True, max_iter=1).fit(X, y)
    model.set_params(n_hidden=3).fit(X, y)
    reference = TwoLayerClassifier.from_params(
        nw.unflatten(pruned, 5, 3, 3), model.classes_, hyperparameters=model.get_params()
    ).fit(X, y)
    np.testing.assert_array_equal(theta_of(model), theta_of(reference))
    assert model.get_training_state()["n_hidden"] == 3
    assert len(model.loss_curve_) == 4 and model.loss_curve_[-1] == reference.loss_curve_[-1]  # the record goes on


@quiet_convergence
def test_hand_set_weights_on_an_unfitted_estimator_start_partial_fit():
    X, y = small_problem()
    weights = hand_weights(4)
    model = plain_sgd()
    model.coefs_ = [weights.W1.copy(), weights.W2.copy()]
    model.intercepts_ = [weights.b1.copy(), weights.b2.copy()]
    model.partial_fit(X, y, classes=[0, 1, 2])
    reference = TwoLayerClassifier.from_params(weights, [0, 1, 2], hyperparameters=plain_sgd().get_params())
    reference.partial_fit(X, y)
    np.testing.assert_array_equal(theta_of(model), theta_of(reference))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: setattr(m, "coefs_", [m.coefs_[0]]), r"coefs_ must be a list of two arrays.*got 1 items"),
        (lambda m: setattr(m, "intercepts_", None), "intercepts_ must be a list of two arrays.*NoneType"),
        (
            lambda m: m.coefs_.__setitem__(1, np.zeros((6, 2))),
            r"coefs_\[1\] has shape \(6, 2\).*K = len\(classes_\) = 3",
        ),
        (lambda m: m.intercepts_.__setitem__(0, np.zeros(5)), r"intercepts_\[0\] has shape \(5,\).*M = 6"),
        (lambda m: m.coefs_.__setitem__(0, np.zeros((4, 6))), r"coefs_\[0\] has shape \(4, 6\).*n_features_in_ = 5"),
        (lambda m: m.coefs_.__setitem__(0, np.zeros((5, 6), dtype=int)), r"coefs_\[0\] must be .* float64 .*int64"),
    ],
)
def test_weights_of_the_wrong_shape_or_dtype_are_named_when_used(edit, message):
    X, y = small_problem()
    model = fitted()
    edit(model)
    for use in (model.predict, model.predict_proba, model.decision_function, lambda X: model.params_):
        with pytest.raises(ValueError, match=message):
            use(X)
    with pytest.raises(ValueError, match=message):
        model.partial_fit(X, y)


@quiet_convergence
def test_float32_weights_assigned_to_a_float64_model_train_in_float64():
    X, y = small_problem()
    model = plain_sgd(max_iter=2).fit(X, y)
    model.coefs_ = [c.astype(np.float32) for c in model.coefs_]
    model.partial_fit(X, y)  # a warm start keeps the dtype of the first fit
    assert all(p.dtype == np.float64 for p in model.params_)


# --------------------------------------------------------------------------
# the classes of a warm start
# --------------------------------------------------------------------------


@quiet_convergence
@pytest.mark.parametrize("labels", [[0, 1], [0, 1, 2, 3], [0, 1, 3]], ids=["fewer", "more", "other"])
def test_a_warm_start_needs_the_classes_of_the_earlier_fit(labels):
    # MLPClassifier raises the same error (scikit-learn's test_warm_start matches its words).
    X, y = small_problem(n=60)
    model = TwoLayerClassifier(n_hidden=3, max_iter=2, warm_start=True, random_state=0).fit(X, y)
    before = theta_of(model).copy()
    other = np.asarray(labels)[np.arange(60) % len(labels)]
    expected = f"Previously got [0 1 2], `y` has {np.unique(other)}"
    with pytest.raises(ValueError, match=re.escape("warm_start can only be used where `y` has the same classes")):
        model.fit(X, other)
    with pytest.raises(ValueError, match=re.escape(expected)):
        model.fit(X, other)
    np.testing.assert_array_equal(theta_of(model), before)
    model.fit(X, y[::-1])  # the same classes, in any order and proportion
    model.partial_fit(X[y < 2], y[y < 2])  # a batch of partial_fit need not hold every class
