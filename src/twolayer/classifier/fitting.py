"""How :class:`~twolayer.classifier.TwoLayerClassifier` drives the trainers of :mod:`twolayer.training`.

The estimator checks its hyperparameters and data, encodes the labels as class
indices :math:`k_n` and the sample and class weights as pattern weights
:math:`s_n`; this module turns those into what a trainer reads, the
:class:`~twolayer.training.optim.TrainingData` (pattern weights rescaled to
mean one, :math:`\\lambda = \\alpha / S`), the settings and, for early
stopping, the validation split and its score. Each ``*_run`` function does
all of that first and hands back the training itself as a :data:`Run`, so
that the estimator can store the fitted attributes however the run ends.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.validation import _check_sample_weight

from twolayer import network
from twolayer.classifier.chunked import logits
from twolayer.estimator import seed_sequence
from twolayer.network import Params
from twolayer.training import optim

if TYPE_CHECKING:
    from twolayer.classifier.classifier import TwoLayerClassifier

__all__ = [
    "OPTIMIZER_KEYS",
    "Run",
    "fresh_state",
    "full_batch_run",
    "minibatch_run",
    "pattern_weights",
    "training_data",
]

#: ``run(on_epoch) -> (reason, message)``: the training, ready to start (see :func:`minibatch_run`).
Run = Callable[[optim.EpochHook], tuple[str, str]]

#: The hyperparameters that shape an optimiser: a warm start continues the
#: stored optimiser exactly when these are unchanged, and starts a fresh one
#: (keeping the weights, as scikit-learn does) when any differs.
OPTIMIZER_KEYS = {
    "sgd": ("learning_rate_init", "momentum", "nesterovs_momentum", "learning_rate", "power_t"),
    "adam": ("learning_rate_init", "beta_1", "beta_2", "epsilon"),
}


def pattern_weights(
    model: TwoLayerClassifier, y: np.ndarray, k: np.ndarray, sample_weight: Any, X: Any
) -> np.ndarray | None:
    """The pattern weights :math:`s_n`: sample weight times class weight.

    Parameters
    ----------
    model : TwoLayerClassifier
        Its ``class_weight`` and ``classes_`` are read.
    y : ndarray of shape (N,)
        The labels.
    k : ndarray of shape (N,)
        Their class indices :math:`k_n`.
    sample_weight : array-like of shape (N,) or None
    X : ndarray or sparse matrix of shape (N, D)
        The patterns (to check the length of ``sample_weight``).

    Returns
    -------
    ndarray of shape (N,) (float64) or None
        None when there are neither sample nor class weights (all ones).
    """
    s = None
    if sample_weight is not None:
        s = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True, copy=True)
    if model.class_weight is not None:
        cw = compute_class_weight(model.class_weight, classes=model.classes_, y=y)
        s = cw[k] if s is None else s * cw[k]
    if s is not None:
        if not np.all(np.isfinite(s)):
            raise ValueError("sample_weight times class_weight must be finite")
        if not np.any(s > 0):
            raise ValueError("the sample weights (times the class weights) are all zero; at least one must be positive")
    return s


def fresh_state(
    model: TwoLayerClassifier, n_features: int, dtype: Any, class_totals: np.ndarray | None
) -> optim.TrainingState:
    """Initial weights by Glorot's rule, output biases shifted to the log class prior.

    With ``class_totals`` (the pattern weight of each class), the output
    biases start at :math:`b_k + \\ln \\pi_k - \\overline{\\ln \\pi}`, so the
    untrained network already predicts the class frequencies :math:`\\pi_k`
    (the best constant model) wherever its hidden units are quiet, instead
    of a random class. Balanced classes leave the biases unchanged; a class
    of zero weight starts at :math:`\\ln 10^{-12}` below the others.
    ``partial_fit``, which sees one batch of a stream, passes None.

    Parameters
    ----------
    model : TwoLayerClassifier
        Its ``n_hidden``, ``classes_`` and ``random_state`` are read.
    n_features : int
        :math:`D`.
    dtype : numpy dtype
        The working dtype of the weights.
    class_totals : ndarray of shape (K,) or None
        The total pattern weight of each class.

    Returns
    -------
    TrainingState
        The weights, the shuffling generator and the seed of the validation split.
    """
    seeds = seed_sequence(model.random_state).spawn(3)  # initial weights, shuffling, validation split
    params = network.init_params(
        n_features, model.n_hidden, len(model.classes_), random_state=np.random.default_rng(seeds[0]), dtype=dtype
    )
    if class_totals is not None:
        log_prior = np.log(np.maximum(class_totals / np.sum(class_totals), 1e-12))
        params.b2[...] += (log_prior - np.mean(log_prior)).astype(dtype)
    return optim.TrainingState(
        theta=np.ascontiguousarray(network.flatten(params)),
        rng=np.random.default_rng(seeds[1]),
        split_seed=int(seeds[2].generate_state(1)[0]),
    )


def minibatch_run(
    model: TwoLayerClassifier,
    state: optim.TrainingState,
    X: Any,
    k: np.ndarray,
    s: np.ndarray | None,
    *,
    incremental: bool,
    finite: bool = True,
) -> Run:
    """Prepare an ``sgd`` or ``adam`` fit: the optimiser, the validation split, the data and settings.

    Parameters
    ----------
    model : TwoLayerClassifier
        The estimator whose hyperparameters and ``classes_`` are read.
    state : TrainingState
        The state to train; given an optimiser (kept when its
        hyperparameters are unchanged), a shuffling generator and, with early
        stopping, a validation record.
    X : ndarray or scipy CSR matrix of shape (N, D)
    k : ndarray of shape (N,)
        Class indices :math:`k_n \\in \\{0, \\dots, K - 1\\}`.
    s : ndarray of shape (N,) or None
        Pattern weights :math:`s_n`; None for all ones.
    incremental : bool
        One epoch for ``partial_fit``.
    finite : bool
        Whether the rows of ``X`` are known to be finite (see
        :attr:`TrainingData.checked <twolayer.training.optim.TrainingData>`).

    Returns
    -------
    Run
        Runs :func:`twolayer.training.optim.train_minibatch`.
    """
    settings = {key: getattr(model, key) for key in OPTIMIZER_KEYS[model.solver]}
    if state.optimizer is None or state.optimizer.name != model.solver or state.optimizer_settings != settings:
        state.optimizer = optim.make_optimizer(model.solver, state.theta.shape[0], state.theta.dtype, settings)
        state.optimizer_settings = settings
    if state.rng is None:
        state.rng = np.random.default_rng(seed_sequence(model.random_state).spawn(3)[1])
    validation_score: Callable[[Params], float] | None
    if model.early_stopping:
        rows, validation_score = _validation_split(model, state, X, k, s, finite)
        if state.validation_scores is None:
            state.validation_scores, state.best_validation_score = [], -math.inf
        state.best_loss = None
    else:
        rows, validation_score = None, None
        if state.best_loss is None:
            state.best_loss = math.inf
    data = training_data(X, k, s, model.alpha, rows)
    data.checked = finite
    n = data.n
    if model.batch_size == "auto":
        batch_size = min(200, n)
    else:
        if int(model.batch_size) > n:
            warnings.warn(
                f"batch_size={model.batch_size} is larger than the {n} training patterns; using {n}",
                UserWarning,
                # minibatch_run, _fit_validated, _fit, fit, scikit-learn's _fit_context, the caller of fit
                stacklevel=6,
            )
        batch_size = min(int(model.batch_size), n)
    minibatch = optim.MinibatchSettings(
        activation=model.activation,
        batch_size=batch_size,
        shuffle=bool(model.shuffle),
        max_iter=int(model.max_iter),
        tol=float(model.tol),
        n_iter_no_change=_patience(model.n_iter_no_change),
        early_stopping=bool(model.early_stopping),
        incremental=incremental,
        verbose=bool(model.verbose),
    )
    n_classes = len(model.classes_)

    def run(on_epoch: optim.EpochHook) -> tuple[str, str]:
        reason = optim.train_minibatch(
            state, data, minibatch, n_classes=n_classes, validation_score=validation_score, on_epoch=on_epoch
        )
        return reason, "the loss was still changing"

    return run


def full_batch_run(
    model: TwoLayerClassifier, state: optim.TrainingState, X: Any, k: np.ndarray, s: np.ndarray | None
) -> Run:
    """Prepare an ``lbfgs`` or second-order fit on every pattern.

    Parameters
    ----------
    model : TwoLayerClassifier
        The estimator whose hyperparameters and ``classes_`` are read.
    state : TrainingState
        The state to train; its optimiser is dropped (the full-batch solvers
        keep none between calls).
    X : ndarray or scipy CSR matrix of shape (N, D)
    k : ndarray of shape (N,)
        Class indices :math:`k_n \\in \\{0, \\dots, K - 1\\}`.
    s : ndarray of shape (N,) or None
        Pattern weights :math:`s_n`; None for all ones.

    Returns
    -------
    Run
        Runs :func:`twolayer.training.optim.train_lbfgs` or
        :func:`twolayer.training.optim.train_second_order` with ``method=model.solver``.
    """
    if state.best_loss is None:
        state.best_loss = math.inf
    data = training_data(X, k, s, model.alpha, None)
    settings = optim.LbfgsSettings(
        activation=model.activation,
        max_iter=int(model.max_iter),
        max_fun=int(model.max_fun),
        tol=float(model.tol),
        verbose=bool(model.verbose),
    )
    solver, n_classes = model.solver, len(model.classes_)

    def run(on_epoch: optim.EpochHook) -> tuple[str, str]:
        state.optimizer, state.optimizer_settings = None, {}
        if solver == "lbfgs":
            return optim.train_lbfgs(state, data, settings, n_classes=n_classes, on_epoch=on_epoch)
        return optim.train_second_order(state, data, settings, method=solver, n_classes=n_classes, on_epoch=on_epoch)

    return run


def _patience(n_iter_no_change: float) -> int:
    """``n_iter_no_change`` as the count the loop compares with; ``numpy.inf`` (never stop early) as one never reached."""
    return sys.maxsize if math.isinf(n_iter_no_change) else int(n_iter_no_change)


def training_data(
    X: Any, k: np.ndarray, s: np.ndarray | None, alpha: float, rows: np.ndarray | None
) -> optim.TrainingData:
    """The training rows with their weights rescaled to mean one, and :math:`\\lambda = \\alpha / S`.

    Parameters
    ----------
    X : ndarray or scipy CSR matrix of shape (N, D)
    k : ndarray of shape (N,)
        Class indices :math:`k_n`.
    s : ndarray of shape (N,) or None
        Pattern weights :math:`s_n`; None for all ones.
    alpha : float
        The weight decay :math:`\\alpha`.
    rows : ndarray or None
        The training rows; None for all.

    Returns
    -------
    TrainingData
        Equal weights become no weights (exactly the unweighted problem, with
        :math:`S` their sum); others are :math:`\\bar w_n = s_n N / S` over the
        :math:`N` training rows.
    """
    n = X.shape[0] if rows is None else rows.shape[0]
    if s is None:
        return optim.TrainingData(X=X, k=k, w=None, lam=float(alpha) / n, rows=rows)
    s_train = s if rows is None else s[rows]
    S = float(np.sum(s_train))
    if not S > 0:
        raise ValueError("the training patterns' sample weights are all zero; at least one must be positive")
    if np.all(s_train == s_train[0]):  # equal weights: exactly the unweighted problem
        return optim.TrainingData(X=X, k=k, w=None, lam=float(alpha) / S, rows=rows)
    w = (s * (n / S)).astype(X.dtype)
    return optim.TrainingData(X=X, k=k, w=w, lam=float(alpha) / S, rows=rows)


def _validation_split(
    model: TwoLayerClassifier,
    state: optim.TrainingState,
    X: Any,
    k: np.ndarray,
    s: np.ndarray | None,
    finite: bool = True,
) -> tuple[np.ndarray, Callable[[Params], float]]:
    """The training rows (sorted) and the held-out accuracy, from a stratified split seeded once per state."""
    if state.split_seed is None:
        state.split_seed = int(seed_sequence(model.random_state).spawn(3)[2].generate_state(1)[0])
    train, val = train_test_split(
        np.arange(X.shape[0]),
        test_size=model.validation_fraction,
        random_state=state.split_seed,
        stratify=k,
    )
    if val.shape[0] < 2:
        raise ValueError("the validation set is too small: increase validation_fraction or the data")
    train = np.sort(train)
    if not finite:  # the training rows are checked as the epoch gathers them, these are not
        optim.check_finite(X, np.sort(val))
    X_val, k_val = X[val], k[val]
    s_val = None if s is None else s[val]
    if s_val is not None and not np.any(s_val > 0):
        raise ValueError("the validation set's sample weights are all zero; change random_state or validation_fraction")

    def score(params: Params) -> float:
        predicted = np.argmax(logits(params, X_val, model.activation), axis=1)
        return float(np.average(predicted == k_val, weights=s_val))

    return train, score
