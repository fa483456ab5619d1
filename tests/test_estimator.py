"""Tests of twolayer.estimator, the skeleton both estimators share, and of their public constructors."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.utils._param_validation import InvalidParameterError

from twolayer import network
from twolayer.bayes import BayesianTwoLayerClassifier
from twolayer.classifier import TwoLayerClassifier
from twolayer.estimator import check_activation, check_number, seed_sequence


@pytest.mark.parametrize("estimator", [TwoLayerClassifier, BayesianTwoLayerClassifier])
def test_an_activation_registered_at_run_time_is_accepted(monkeypatch: pytest.MonkeyPatch, estimator: type) -> None:
    with pytest.raises(InvalidParameterError, match=r"'activation' parameter .* must be a str among .*'tanh'"):
        estimator(activation="late")._check_hyperparameters()
    monkeypatch.setitem(network.ACTIVATIONS, "late", network.ACTIVATIONS["tanh"])
    estimator(activation="late")._check_hyperparameters()  # the registry as it is now, not a list copied earlier
    assert check_activation("late") == "tanh"


def test_seed_sequence_gives_the_same_seeds_for_equal_sources() -> None:
    state = seed_sequence(7).generate_state(2)
    np.testing.assert_array_equal(state, np.random.SeedSequence(7).generate_state(2))
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    np.testing.assert_array_equal(seed_sequence(a).generate_state(2), seed_sequence(b).generate_state(2))
    with pytest.raises(ValueError, match="non-negative"):
        seed_sequence(-1)
    with pytest.raises(ValueError, match="random_state must be"):
        seed_sequence(True)


def test_check_number_names_the_interval() -> None:
    assert check_number("x", 0.5, 0.0, 1.0, high_open=True) == 0.5
    with pytest.raises(ValueError, match=r"x must be a finite number in \[0.0, 1.0\)"):
        check_number("x", 1.0, 0.0, 1.0, high_open=True)
    with pytest.raises(ValueError, match="finite number"):
        check_number("x", True, 0.0)


def test_from_params_predicts_as_the_fitted_model() -> None:
    X, y = make_blobs(60, n_features=3, centers=3, random_state=0)
    model = TwoLayerClassifier(n_hidden=4, solver="lbfgs", max_iter=30, random_state=0).fit(X, y * 2 + 1)
    again = TwoLayerClassifier.from_params(
        model.params_,
        model.classes_,
        hyperparameters=model.get_params(),
        loss_curve=model.loss_curve_,
        best_loss=model.best_loss_,
    )
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
    assert again.params_.W1 is not model.params_.W1  # the weights are copied
    assert again.best_loss_ == model.best_loss_ == min(model.loss_curve_) and again.n_outputs_ == 3
    with pytest.raises(ValueError, match="n_hidden"):
        TwoLayerClassifier.from_params(model.params_, model.classes_, hyperparameters={"n_hidden": 5})
    with pytest.raises(ValueError, match="sorted, distinct"):
        TwoLayerClassifier.from_params(model.params_, model.classes_[::-1], hyperparameters={"n_hidden": 4})


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_from_posterior_predicts_as_the_fitted_model() -> None:
    X, y = make_blobs(60, n_features=3, centers=3, random_state=0)
    model = BayesianTwoLayerClassifier(n_hidden=3, max_cycles=2, n_samples=50, random_state=0).fit(X, y)
    again = BayesianTwoLayerClassifier.from_posterior(
        model.posterior_, model.classes_, hyperparameters=model.get_params(), predict_seed=model.predict_seed_
    )
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(again.alpha_, model.alpha_)
    # Without a seed, the one fit draws from the same random_state.
    default = BayesianTwoLayerClassifier.from_posterior(
        model.posterior_, model.classes_, hyperparameters=model.get_params()
    )
    assert default.predict_seed_ == model.predict_seed_
    with pytest.raises(ValueError, match="structure 'last_layer' does not match"):
        BayesianTwoLayerClassifier.from_posterior(
            model.posterior_, model.classes_, hyperparameters={**model.get_params(), "structure": "diagonal"}
        )
