"""The same network as scikit-learn's ``MLPClassifier``, both ways.

``MLPClassifier`` writes a binary problem with one logistic output
:math:`\\sigma(a)`; the two-layer network here always has a softmax over
``K`` outputs. The two are the same model: the logits :math:`(0, a)` give the
softmax :math:`(1 - \\sigma(a), \\sigma(a))`, and the logit difference
:math:`a_1 - a_0` of a two-way softmax is the logistic unit's input.
A multilabel ``MLPClassifier`` has K logistic outputs, and so has a multilabel
network here (sigmoid outputs): those weights carry over unchanged.
"""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.validation import check_is_fitted

from twolayer.network import Params

if TYPE_CHECKING:
    from twolayer.classifier.classifier import TwoLayerClassifier

__all__ = ["SKLEARN_SOLVERS", "from_sklearn", "mlp_network", "to_mlp"]

SKLEARN_SOLVERS = ("adam", "sgd", "lbfgs")  # the solvers MLPClassifier also has


def to_mlp(model: TwoLayerClassifier) -> MLPClassifier:
    """A fitted ``MLPClassifier`` with the network of ``model`` (see :meth:`TwoLayerClassifier.to_sklearn`)."""
    check_is_fitted(model)
    W1, b1, W2, b2 = (np.array(p, copy=True) for p in model.params_)
    binary = W2.shape[1] == 2 and model._output == "softmax"
    if binary:
        W2 = (W2[:, 1] - W2[:, 0])[:, None]
        b2 = np.array([b2[1] - b2[0]])
    mlp = MLPClassifier(
        hidden_layer_sizes=(int(model.n_hidden),),
        activation=model.activation,
        solver=model.solver if model.solver in SKLEARN_SOLVERS else "lbfgs",
        alpha=model.alpha,
        batch_size=model.batch_size,
        learning_rate=model.learning_rate,
        learning_rate_init=model.learning_rate_init,
        power_t=model.power_t,
        max_iter=model.max_iter,
        shuffle=model.shuffle,
        random_state=model.random_state
        if model.random_state is None or isinstance(model.random_state, numbers.Integral)
        else None,
        tol=model.tol,
        verbose=model.verbose,
        warm_start=model.warm_start,
        momentum=model.momentum,
        nesterovs_momentum=model.nesterovs_momentum,
        early_stopping=model.early_stopping,
        validation_fraction=model.validation_fraction,
        beta_1=model.beta_1,
        beta_2=model.beta_2,
        epsilon=model.epsilon,
        n_iter_no_change=model.n_iter_no_change,
        max_fun=model.max_fun,
    )
    mlp.coefs_ = [W1, W2]
    mlp.intercepts_ = [b1, b2]
    mlp.classes_ = model.classes_.copy()
    multilabel = model._output == "sigmoid"
    # A multilabel binarizer is fitted on an indicator matrix: its y_type_ is what MLPClassifier reads.
    mlp._label_binarizer = LabelBinarizer().fit(
        np.eye(2, len(model.classes_), dtype=int) if multilabel else model.classes_
    )
    mlp.n_features_in_ = model.n_features_in_
    if hasattr(model, "feature_names_in_"):
        mlp.feature_names_in_ = model.feature_names_in_.copy()
    mlp.n_layers_ = 3
    mlp.n_outputs_ = 1 if binary else W2.shape[1]
    mlp.out_activation_ = "logistic" if binary or multilabel else "softmax"
    mlp.n_iter_ = model.n_iter_
    mlp.t_ = model.t_
    mlp.loss_ = getattr(model, "loss_", None)
    mlp.loss_curve_ = list(model.loss_curve_)
    mlp.best_loss_ = model.best_loss_
    mlp.validation_scores_ = None if model.validation_scores_ is None else list(model.validation_scores_)
    mlp.best_validation_score_ = model.best_validation_score_
    mlp._no_improvement_count = 0
    if model.early_stopping:
        mlp._best_coefs = [c.copy() for c in mlp.coefs_]
        mlp._best_intercepts = [c.copy() for c in mlp.intercepts_]
    return mlp


def mlp_network(mlp: MLPClassifier) -> tuple[Params, dict[str, Any]]:
    """The network of a fitted one-hidden-layer ``MLPClassifier`` as softmax weights, and its training record.

    Returns
    -------
    params : Params
        Copies of the MLP's weights; a binary MLP's logistic output becomes
        the two logits :math:`(0, a)`.
    record : dict
        ``classes``, ``feature_names_in``, ``loss``,
        ``loss_curve``, ``best_loss``, ``validation_scores``,
        ``best_validation_score``, ``n_iter``, ``t`` and ``output`` (the output nonlinearity), as
        :meth:`TwoLayerClassifier.from_params` takes them.
    """
    if not isinstance(mlp, MLPClassifier):
        raise TypeError(f"from_sklearn needs an MLPClassifier, got {type(mlp).__name__}")
    check_is_fitted(mlp)
    if len(mlp.coefs_) != 2:
        raise ValueError(
            f"from_sklearn needs an MLPClassifier with one hidden layer; this one has {len(mlp.coefs_) - 1}"
        )
    if mlp.out_activation_ not in ("softmax", "logistic"):
        raise ValueError(f"from_sklearn supports softmax and logistic outputs, not {mlp.out_activation_!r}")
    multilabel = getattr(getattr(mlp, "_label_binarizer", None), "y_type_", "") == "multilabel-indicator"
    W1, W2 = (np.array(c, copy=True) for c in mlp.coefs_)
    b1, b2 = (np.array(c, copy=True) for c in mlp.intercepts_)
    if mlp.out_activation_ == "logistic" and not multilabel:
        W2 = np.hstack([np.zeros_like(W2), W2])  # logits (0, a): softmax gives (1 - sigma(a), sigma(a))
        b2 = np.concatenate([np.zeros_like(b2), b2])
    validation_scores = getattr(mlp, "validation_scores_", None)
    record = {
        "output": "sigmoid" if multilabel else "softmax",
        "classes": np.array(mlp.classes_, copy=True),
        "feature_names_in": getattr(mlp, "feature_names_in_", None),
        "loss": float(mlp.loss_),
        "loss_curve": [float(v) for v in getattr(mlp, "loss_curve_", None) or []],
        "best_loss": getattr(mlp, "best_loss_", math.inf),
        "validation_scores": None if validation_scores is None else [float(v) for v in validation_scores],
        "best_validation_score": getattr(mlp, "best_validation_score_", None),
        "n_iter": int(getattr(mlp, "n_iter_", 0)),
        "t": int(getattr(mlp, "t_", 0)),
    }
    return Params(W1, b1, W2, b2), record


def from_sklearn(mlp: MLPClassifier) -> TwoLayerClassifier:
    """A fitted :class:`TwoLayerClassifier` with the network of a fitted ``MLPClassifier``.

    The MLP must have one hidden layer. Its ``predict_proba`` is kept (to
    rounding): a binary MLP's single logistic output :math:`\\sigma(a)` becomes
    a two-way softmax over the logits :math:`(0, a)`. Hyperparameters with the
    same names are copied, ``hidden_layer_sizes=(M,)`` becomes
    ``n_hidden=M``; ``loss_``, ``loss_curve_`` and the counters are the MLP's
    own. A warm start from the result starts a fresh optimiser.

    Parameters
    ----------
    mlp : sklearn.neural_network.MLPClassifier
        Fitted, with one hidden layer, on a binary, multiclass or multilabel
        problem (a multilabel MLP's logistic outputs stay K sigmoid outputs).

    Returns
    -------
    TwoLayerClassifier
    """
    from twolayer.classifier.classifier import TwoLayerClassifier  # which imports this module

    params, record = mlp_network(mlp)
    names = TwoLayerClassifier().get_params()
    shared = {k: v for k, v in mlp.get_params().items() if k in names}
    return TwoLayerClassifier.from_params(
        params,
        record.pop("classes"),
        hyperparameters={"n_hidden": params.W1.shape[1], **shared},
        feature_names_in=record.pop("feature_names_in"),
        **record,
    )
