"""scikit-learn's own tests of ``MLPClassifier``, run against :class:`TwoLayerClassifier`.

The module ``sklearn.neural_network.tests.test_mlp`` ships in scikit-learn's
wheel. Each of its tests in scope is called here as it is, with its
assertions and tolerances, after the module's name ``MLPClassifier`` is bound
(for that test only) to an adapter: ``hidden_layer_sizes=(M,)`` becomes
``n_hidden=M``, ``MLPClassifier``'s default ``activation="relu"`` is kept,
and every other parameter goes through unchanged. The adapter also answers to
two private names the tests read, ``_no_improvement_count`` and
``_optimizer.learning_rate``, from the public
:meth:`~TwoLayerClassifier.get_training_state`.

Every test of the module is listed below: run, out of scope (skipped, with
the reason: the regressor, several hidden layers, ``MLPClassifier``'s private
training internals), or run but knowingly different (a strict xfail, with the
design choice that makes it fail). The summary line of ``pytest tests/test_sklearn_mlp_suite.py``
gives the count: passed of those in scope, skipped out of scope.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from twolayer.classifier import TwoLayerClassifier

sk = pytest.importorskip(
    "sklearn.neural_network.tests.test_mlp", reason="this scikit-learn was installed without its tests"
)


class MLPAdapter(TwoLayerClassifier):
    """TwoLayerClassifier, answering to the two private names of ``MLPClassifier`` the tests read."""

    @property
    def _no_improvement_count(self) -> int:
        return int(self.get_training_state()["no_improvement_count"])

    @property
    def _optimizer(self) -> SimpleNamespace:
        return SimpleNamespace(learning_rate=self.get_training_state()["optimizer"]["learning_rate"])


def mlp_classifier(hidden_layer_sizes: Any = (100,), activation: str = "relu", **params: Any) -> MLPAdapter:
    """``MLPClassifier(...)`` as the tests call it, made a TwoLayerClassifier."""
    sizes = np.atleast_1d(hidden_layer_sizes)
    if sizes.shape != (1,):
        raise NotImplementedError(f"hidden_layer_sizes={hidden_layer_sizes!r}: twolayer has one hidden layer")
    return MLPAdapter(n_hidden=int(sizes[0]), activation=activation, **params)


ADAPTER = "<the adapter>"  # stands for mlp_classifier in the arguments below
CAPSYS = "<capsys>"  # stands for pytest's capsys fixture

REGRESSOR = "MLPRegressor: twolayer has no regressor"
DEEP = "hidden_layer_sizes=(5, 3): twolayer has one hidden layer"


def run(name: str, *kwargs: dict[str, Any], ids: list[str] | None = None) -> list[Any]:
    """The cases of test ``name``, with the test's own marks (its warning filters)."""
    marks = [m for m in getattr(getattr(sk, name), "pytestmark", []) if m.name != "parametrize"]
    cases = kwargs or ({},)
    return [
        pytest.param(name, k, id=name if i is None else f"{name}[{i}]", marks=marks)
        for k, i in zip(cases, ids or [None] * len(cases))
    ]


def out(name: str, reason: str, ids: list[str] | None = None) -> list[Any]:
    """A test (or some of its cases) out of scope: collected, and skipped with the reason."""
    return [
        pytest.param(name, {}, id=name if i is None else f"{name}[{i}]", marks=pytest.mark.skip(reason=reason))
        for i in (ids or [None])
    ]


def different(name: str, reason: str, *kwargs: dict[str, Any], ids: list[str] | None = None) -> list[Any]:
    """A test run as the others that fails by a design choice: a strict xfail, so that it is noticed if it passes."""
    return [
        pytest.param(*p.values, id=p.id, marks=[*p.marks, pytest.mark.xfail(strict=True, reason=reason)])
        for p in run(name, *kwargs, ids=ids)
    ]


DATASETS = [{"X": X, "y": y} for X, y in sk.classification_datasets]
DATASET_IDS = ["multiclass", "binary"]

CASES = [
    *run("test_alpha"),
    *out(
        "test_fit",
        "sets MLPClassifier's private training attributes (gradients, velocities) and the weights of its "
        "single logistic output for two classes (coefs_[1] of shape (2, 1)); twolayer's binary network has "
        "two softmax outputs (from_sklearn/to_sklearn convert; tests/test_classifier.py sets weights by hand)",
    ),
    *out(
        "test_gradient",
        "calls MLPClassifier's private _loss_grad_lbfgs; twolayer's gradients are checked against central "
        "differences and autograd in tests/test_gradcheck.py",
    ),
    *run("test_lbfgs_classification", *DATASETS, ids=DATASET_IDS),
    *out("test_lbfgs_regression", REGRESSOR),
    *run("test_lbfgs_classification_maxfun", *DATASETS, ids=DATASET_IDS),
    *out("test_lbfgs_regression_maxfun", REGRESSOR),
    *run("test_learning_rate_warmstart"),
    *run("test_multilabel_classification"),
    *out("test_multioutput_regression", REGRESSOR),
    *run("test_partial_fit_classes_error"),
    *run("test_partial_fit_classification"),
    *run("test_partial_fit_unseen_classes"),
    *out("test_partial_fit_regression", REGRESSOR),
    *run("test_partial_fit_errors"),
    *out("test_nonfinite_params", REGRESSOR),
    *run("test_predict_proba_binary"),
    *run("test_predict_proba_multiclass"),
    *run("test_predict_proba_multilabel"),
    *out("test_shuffle", REGRESSOR),
    *run(
        "test_sparse_matrices",
        *({"csr_container": c} for c in sk.CSR_CONTAINERS),
        ids=[c.__name__ for c in sk.CSR_CONTAINERS],
    ),
    *run("test_tolerance"),
    *run("test_verbose_sgd", {"capsys": CAPSYS}),
    *run("test_early_stopping", {"MLPEstimator": ADAPTER}, ids=["MLPClassifier"]),
    *out("test_early_stopping", REGRESSOR, ids=["MLPRegressor"]),
    *run("test_adaptive_learning_rate"),
    *run("test_warm_start"),
    *run("test_warm_start_full_iteration", {"MLPEstimator": ADAPTER}, ids=["MLPClassifier"]),
    *out("test_warm_start_full_iteration", REGRESSOR, ids=["MLPRegressor"]),
    *run("test_n_iter_no_change"),
    *run("test_n_iter_no_change_inf"),
    *different(
        "test_early_stopping_stratified",
        "expects the message of a split stratified on MLPClassifier's one-output binary coding (too few "
        "members in class 'True'); twolayer stratifies on the labels themselves and names class 1",
    ),
    *run("test_mlp_early_stopping_string_labels"),
    *out("test_mlp_classifier_dtypes_casting", DEEP),
    *out("test_mlp_regressor_dtypes_casting", REGRESSOR),
    *out(
        "test_mlp_param_dtypes",
        DEEP,
        ids=[f"{d}-{e}" for e in ("MLPClassifier", "MLPRegressor") for d in ("float32", "float64")],
    ),
    *out("test_mlp_loading_from_joblib_partial_fit", REGRESSOR),
    *different(
        "test_preserve_feature_names",
        "fits labels of a single class, which MLPClassifier's logistic output accepts and twolayer refuses "
        "(a softmax over one class predicts nothing)",
        {"Estimator": ADAPTER},
        ids=["MLPClassifier"],
    ),
    *out("test_preserve_feature_names", REGRESSOR, ids=["MLPRegressor"]),
    *run("test_mlp_warm_start_with_early_stopping", {"MLPEstimator": ADAPTER}, ids=["MLPClassifier"]),
    *out("test_mlp_warm_start_with_early_stopping", REGRESSOR, ids=["MLPRegressor"]),
    *run(
        "test_mlp_warm_start_no_convergence",
        *({"MLPEstimator": ADAPTER, "solver": s} for s in ("sgd", "adam", "lbfgs")),
        ids=["sgd-MLPClassifier", "adam-MLPClassifier", "lbfgs-MLPClassifier"],
    ),
    *out(
        "test_mlp_warm_start_no_convergence",
        REGRESSOR,
        ids=["sgd-MLPRegressor", "adam-MLPRegressor", "lbfgs-MLPRegressor"],
    ),
    *run("test_mlp_partial_fit_after_fit", {"MLPEstimator": ADAPTER}, ids=["MLPClassifier"]),
    *out("test_mlp_partial_fit_after_fit", REGRESSOR, ids=["MLPRegressor"]),
    *out("test_mlp_diverging_loss", REGRESSOR),
    *out("test_mlp_sample_weight_with_early_stopping", REGRESSOR),
    *out("test_mlp_vs_poisson_glm_equivalent", REGRESSOR),
    *out("test_minimum_input_sample_size", REGRESSOR),
]


@pytest.mark.parametrize(("name", "kwargs"), CASES)
def test_sklearn_mlp(name: str, kwargs: dict[str, Any], monkeypatch: pytest.MonkeyPatch, request: Any) -> None:
    monkeypatch.setattr(sk, "MLPClassifier", mlp_classifier)
    stand_ins: dict[str, Callable[[], Any]] = {
        ADAPTER: lambda: mlp_classifier,
        CAPSYS: lambda: request.getfixturevalue("capsys"),
    }
    arguments = {k: stand_ins[v]() if isinstance(v, str) and v in stand_ins else v for k, v in kwargs.items()}
    getattr(sk, name)(**arguments)


def test_every_test_of_the_module_is_listed() -> None:
    # A scikit-learn with tests this file does not list: each must be judged in scope or out, with a reason.
    tests = {name for name in dir(sk) if name.startswith("test_") and callable(getattr(sk, name))}
    listed = {p.values[0] for p in CASES}
    assert tests == listed, f"not listed: {sorted(tests - listed)}; no longer in scikit-learn: {sorted(listed - tests)}"


def test_the_adapter_refuses_several_hidden_layers() -> None:
    assert mlp_classifier(hidden_layer_sizes=7).n_hidden == 7
    assert mlp_classifier(hidden_layer_sizes=(7,)).get_params()["activation"] == "relu"
    with pytest.raises(NotImplementedError, match="one hidden layer"):
        mlp_classifier(hidden_layer_sizes=(5, 3))
