"""TwoLayerClassifier on multilabel targets (an indicator matrix): K sigmoid outputs, as MLPClassifier's."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.datasets import make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from twolayer import TwoLayerClassifier
from twolayer import network as nw
from twolayer.bayes import BayesianTwoLayerClassifier
from twolayer.classifier.mlp import from_sklearn
from twolayer.io import models


def data(n=300, seed=0):
    X, Y = make_multilabel_classification(n_samples=n, n_features=10, n_classes=4, random_state=seed)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    return X[: n * 2 // 3], Y[: n * 2 // 3], X[n * 2 // 3 :], Y[n * 2 // 3 :]


def quiet_fit(model, X, Y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, Y)


@pytest.mark.parametrize("solver", ["lbfgs", "adam", "trust-ncg"])
def test_multilabel_fit_matches_mlpclassifier_accuracy_within_noise(solver):
    Xtr, Ytr, Xte, Yte = data()
    ours = quiet_fit(TwoLayerClassifier(n_hidden=16, solver=solver, max_iter=200, alpha=1.0, random_state=0), Xtr, Ytr)
    mlp = quiet_fit(MLPClassifier(hidden_layer_sizes=(16,), max_iter=200, alpha=1.0, random_state=0), Xtr, Ytr)
    # subset accuracy on 100 test patterns: a standard error of about 0.05
    assert abs(ours.score(Xte, Yte) - mlp.score(Xte, Yte)) < 0.15
    # per-label accuracy (Hamming), a less noisy measure over 400 decisions, and above the majority rate
    hamming = np.mean(ours.predict(Xte) == Yte)
    assert hamming > np.mean(mlp.predict(Xte) == Yte) - 0.06
    assert hamming > np.mean(np.maximum(Yte.mean(axis=0), 1 - Yte.mean(axis=0))) + 0.05


def test_multilabel_attributes_predictions_and_probabilities():
    Xtr, Ytr, Xte, _ = data()
    model = quiet_fit(TwoLayerClassifier(n_hidden=8, max_iter=50, random_state=0), Xtr, Ytr)
    assert model.out_activation_ == "logistic"
    np.testing.assert_array_equal(model.classes_, np.arange(4))
    proba = model.predict_proba(Xte)
    assert proba.shape == (Xte.shape[0], 4)
    np.testing.assert_allclose(proba, nw.forward(model.params_, Xte, output="sigmoid"), rtol=1e-12)
    assert np.abs(proba.sum(axis=1) - 1).max() > 0.1  # independent, not a softmax
    predicted = model.predict(Xte)
    assert predicted.shape == (Xte.shape[0], 4) and predicted.dtype.kind == "i"
    np.testing.assert_array_equal(predicted, (proba > 0.5).astype(int))
    assert model.decision_function(Xte).shape == (Xte.shape[0], 4)
    log_proba = model.predict_log_proba(Xte)
    np.testing.assert_allclose(log_proba, np.log(proba), rtol=1e-12, atol=1e-300)


def test_two_labels_stay_two_sigmoid_outputs_and_a_refit_on_classes_is_softmax_again():
    Xtr, Ytr, _, _ = data()
    model = quiet_fit(TwoLayerClassifier(n_hidden=4, max_iter=20, random_state=0), Xtr, Ytr[:, :2])
    assert model.decision_function(Xtr).shape == (Xtr.shape[0], 2)
    assert model.predict(Xtr).shape == (Xtr.shape[0], 2)
    quiet_fit(model, Xtr, Ytr[:, 0])
    assert model.out_activation_ == "softmax" and model.predict(Xtr).shape == (Xtr.shape[0],)


def test_log_probabilities_are_finite_for_saturated_labels():
    Xtr, Ytr, _, _ = data()
    model = quiet_fit(TwoLayerClassifier(n_hidden=4, max_iter=20, random_state=0), Xtr, Ytr)
    model.intercepts_[1][...] = [1000.0, -1000.0, 0.0, 40.0]
    model.coefs_[1][...] = 0.0
    log_proba = model.predict_log_proba(Xtr[:3])
    assert np.isfinite(log_proba).all()
    np.testing.assert_allclose(log_proba[0], [0.0, -1000.0, -np.log(2), np.log(1 / (1 + np.exp(-40.0)))])


def test_multilabel_refusals():
    Xtr, Ytr, _, _ = data()
    with pytest.raises(ValueError, match="not a multilabel indicator matrix"):
        TwoLayerClassifier(n_hidden=2).fit(Xtr, Ytr * 2)
    with pytest.raises(ValueError, match="class_weight is not supported for multilabel"):
        TwoLayerClassifier(n_hidden=2, class_weight="balanced").fit(Xtr, Ytr)
    model = quiet_fit(TwoLayerClassifier(n_hidden=2, max_iter=5, warm_start=True), Xtr, Ytr)
    with pytest.raises(ValueError, match="multilabel indicator matrix but the earlier fit was not"):
        model.fit(Xtr, Ytr[:, 0])
    with pytest.raises(ValueError, match="y should be a 1d array"):
        BayesianTwoLayerClassifier(n_hidden=2).fit(Xtr, Ytr)


def test_early_stopping_scores_subset_accuracy():
    Xtr, Ytr, _, _ = data()
    model = quiet_fit(
        TwoLayerClassifier(n_hidden=8, solver="adam", early_stopping=True, max_iter=30, random_state=0), Xtr, Ytr
    )
    assert model.validation_scores_ and all(0.0 <= v <= 1.0 for v in model.validation_scores_)


def test_training_state_keeps_the_output_kind():
    Xtr, Ytr, _, _ = data()
    model = quiet_fit(TwoLayerClassifier(n_hidden=4, solver="sgd", max_iter=5, random_state=0), Xtr, Ytr)
    state = model.get_training_state()
    assert state["output"] == "sigmoid"
    again = TwoLayerClassifier(n_hidden=4, solver="sgd").set_training_state(state)
    np.testing.assert_array_equal(again.predict_proba(Xtr), model.predict_proba(Xtr))


def test_sklearn_conversion_both_ways():
    Xtr, Ytr, Xte, _ = data()
    mlp = quiet_fit(MLPClassifier(hidden_layer_sizes=(6,), max_iter=50, random_state=0), Xtr, Ytr)
    ours = from_sklearn(mlp)
    assert ours.out_activation_ == "logistic"
    np.testing.assert_allclose(ours.predict_proba(Xte), mlp.predict_proba(Xte), rtol=1e-12)
    np.testing.assert_array_equal(ours.predict(Xte), mlp.predict(Xte))
    back = ours.to_sklearn()
    np.testing.assert_allclose(back.predict_proba(Xte), mlp.predict_proba(Xte), rtol=1e-12)
    np.testing.assert_array_equal(back.predict(Xte), mlp.predict(Xte))


def test_model_file_round_trip_keeps_the_output(tmp_path):
    Xtr, Ytr, Xte, _ = data()
    model = quiet_fit(TwoLayerClassifier(n_hidden=4, max_iter=20, random_state=0), Xtr, Ytr)
    path = tmp_path / "m.safetensors"
    models.save(model, path)
    loaded = models.load(path)
    assert loaded.out_activation_ == "logistic"
    np.testing.assert_array_equal(loaded.predict_proba(Xte), model.predict_proba(Xte))
    softmax = quiet_fit(TwoLayerClassifier(n_hidden=4, max_iter=20, random_state=0), Xtr, Ytr[:, 0])
    models.save(softmax, tmp_path / "s.safetensors")
    assert models.load(tmp_path / "s.safetensors").out_activation_ == "softmax"


def test_a_multilabel_file_is_a_newer_version_that_older_readers_refuse(tmp_path):
    # A reader of version 2 or older ignores 'output' and would compute softmax probabilities: the
    # file's version makes it refuse instead; a plain network's file stays readable by every version.
    import json

    import safetensors.numpy

    from twolayer.errors import DataError
    from twolayer.io import container

    Xtr, Ytr, _, _ = data()
    model = quiet_fit(TwoLayerClassifier(n_hidden=4, max_iter=20, random_state=0), Xtr, Ytr)
    models.save(model, tmp_path / "m.safetensors")
    assert models.read(tmp_path / "m.safetensors").format_version == container.MULTILABEL_VERSION == 3
    softmax = quiet_fit(TwoLayerClassifier(n_hidden=4, max_iter=20, random_state=0), Xtr, Ytr[:, 0])
    models.save(softmax, tmp_path / "s.safetensors")
    assert models.read(tmp_path / "s.safetensors").format_version == container.NETWORK_VERSION == 1
    # The same file claiming version 1 (digest made to match) is refused, not read as softmax.
    raw = (tmp_path / "m.safetensors").read_bytes()
    size = int.from_bytes(raw[:8], "little")
    metadata = dict(json.loads(raw[8 : 8 + size])["__metadata__"])
    tensors = {k: np.array(v) for k, v in safetensors.numpy.load(raw).items()}
    metadata["format_version"] = "1"
    metadata["sha256"] = container._digest(tensors, metadata)
    (tmp_path / "old.safetensors").write_bytes(safetensors.numpy.save(tensors, metadata=metadata))
    with pytest.raises(DataError, match="needs format version 3"):
        models.read(tmp_path / "old.safetensors")
