"""The scikit-learn estimator that chooses the prior by the evidence and predicts with the moderated predictive."""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from sklearn.base import _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import _check_sample_weight, check_is_fitted

from twolayer import network as nw
from twolayer.bayes.choices import ALPHA_SEARCHES
from twolayer.bayes.fitted import _data_curvature
from twolayer.bayes.map import MapFit, map_estimate
from twolayer.bayes.memory import fit_estimate, laplace_estimate, predict_estimate
from twolayer.bayes.posterior import (
    ALPHA_MAX,
    ALPHA_MIN,
    HESSIANS,
    METHODS,
    STRUCTURES,
    LaplacePosterior,
    _centred,
    posterior_from_curvature,
)
from twolayer.errors import InsufficientMemory
from twolayer.estimator import (
    RANDOM_STATE_CONSTRAINT,
    BaseTwoLayerClassifier,
    activation_constraint,
    check_choice,
    check_positive_int,
    check_positive_number,
    seed_sequence,
    validate_data,
)
from twolayer.network import Params
from twolayer.prior import as_prior_precision, precision_vector
from twolayer.resources import check_memory, covered

__all__ = ["ALPHA_SEARCHES", "BayesianTwoLayerClassifier"]


class BayesianTwoLayerClassifier(BaseTwoLayerClassifier):
    """A two-layer network classifier whose weight decay is chosen by the evidence.

    The evidence framework (PRML §5.7.2, MacKay 1992) chooses the prior
    precisions :math:`\\alpha` from the training data alone, and the
    classifier then predicts with the moderated predictive of the final
    Laplace posterior (PRML §5.7.3) rather than the MAP network's outputs.
    Two ways to choose :math:`\\alpha`:

    ``alpha_search="fixed_point"`` (MacKay's re-estimation)
        Train the MAP network under :math:`\\alpha`, build the Laplace
        posterior there, set :math:`\\alpha_g \\leftarrow \\gamma_g / \\lVert w_g \\rVert^2`
        and repeat, re-training from the current weights, until the
        precisions settle. One precision for all groups, or one per group.
    ``alpha_search="grid"``
        Train the MAP network at each :math:`\\alpha` of ``alpha_grid``,
        every time from the same initial weights, and keep the one of
        largest log evidence. One precision for all groups.

    The two differ because the fixed point makes the evidence stationary
    with the MAP weights (and so the curvature) held fixed, while the
    evidence of the re-trained network also changes through
    :math:`\\ln |A|` as :math:`w_{\\text{MAP}}` moves with :math:`\\alpha`.
    On the digits the fixed point settles at several times the
    :math:`\\alpha` that the largest re-trained evidence (and held-out data)
    prefer.

    Moderation helps most where the MAP network is over-confident (a weak
    prior, few data, extrapolation). Where the training data are nearly
    separable the output curvature :math:`\\Lambda` vanishes at the
    confidently fitted patterns, the Gaussian posterior is far broader than
    the true (one-sided) one, and the moderated predictive is under-confident:
    on 500 digits with 8 hidden units its held-out log-loss was about twice
    the MAP network's (0.39 against 0.19 at the fixed point's alpha; the
    MAP probabilities are available from :meth:`predict_proba_map`).

    The MAP network is trained here by L-BFGS (:func:`map_estimate`) on the
    network's exact gradient plus the grouped penalty
    :math:`\\sum_g \\tfrac{\\alpha_g}{2} \\lVert w_g \\rVert^2`, biases
    included: :class:`~twolayer.classifier.TwoLayerClassifier` has one
    weight-decay coefficient and leaves biases unpenalised, which cannot
    express a grouped prior.

    Parameters
    ----------
    n_hidden : int, default 20
        The number of hidden units :math:`M`.
    activation : {"tanh", "logistic", "relu", "identity"}, default "tanh"
    alpha : float, default 1.0
        The starting prior precision of every group for ``"fixed_point"``,
        in the units of TwoLayerClassifier's ``alpha`` (the coefficient of
        :math:`\\tfrac12 \\lVert w \\rVert^2` added to the summed error).
    alpha_search : {"fixed_point", "grid"}, default "fixed_point"
    per_group : bool, default False
        With ``"fixed_point"``, re-estimate one precision per group (``W1``,
        ``b1``, ``W2``, ``b2``; MacKay 1992) instead of one for all.
        Per-group precisions can drift along the rescaling between the layers:
        where the hidden units work in their linear range, a smaller ``W1``
        and a larger ``W2`` fit alike, each re-estimation shrinks
        :math:`\\alpha_{W2}` and grows :math:`\\alpha_{W1}`, and the cycles
        can run off towards a linear network (seen on the digits, and on two
        moons with 8 hidden units; a warning says when a precision reaches
        the bounds 1e-8 or 1e8).
    alpha_grid : array-like of positive floats or None, default None
        The precisions tried by ``"grid"``; None is
        ``numpy.logspace(-2, 2, 17)`` (four per decade).
    hessian : {"gauss_newton", "exact"}, default "gauss_newton"
        The curvature of the posterior. Gauss–Newton is positive
        semi-definite; the exact Hessian's negative eigenvalues are set to
        zero (counted in ``n_negative_eigenvalues_``).
    structure : {"full", "last_layer", "diagonal"}, default "full"
        ``full`` costs :math:`O(W^3)` time and :math:`O(W^2)` memory (a few
        thousand weights); ``diagonal`` scales to any size. ``last_layer``
        treats the first layer as fixed: cheap and exact for the second
        layer, but its evidence ignores the first layer's weights, so it
        re-estimates only ``W2``'s and ``b2``'s precisions (a tied
        ``alpha`` is applied to every group) and is a poor guide for ``"grid"``.
    max_cycles : int, default 10
        The most train / re-estimate cycles of ``"fixed_point"``.
    alpha_tol : float, default 1e-2
        ``"fixed_point"`` stops when no precision changes by more than this
        relative amount.
    max_iter : int, default 1000
        L-BFGS iterations per training.
    tol : float, default 1e-6
        L-BFGS's tolerance on the largest gradient component of
        :math:`\\tilde E / S`.
    method : {"mc", "probit"}, default "mc"
        How the predictive integral is evaluated (see
        :meth:`LaplacePosterior.predict_proba`).
    n_samples : int, default 1000
        Monte Carlo samples for ``method="mc"``.
    random_state : int, numpy.random.Generator, RandomState or None, default None
        Seeds the initial weights and the Monte Carlo draws (fixed at fit
        time, so that the predictions of a fitted model never change).

    Attributes
    ----------
    alpha_ : ndarray of shape (4,)
        The chosen prior precisions of ``W1``, ``b1``, ``W2``, ``b2`` (all
        equal unless ``per_group``).
    gamma_ : float
        The number of well-determined parameters of the final posterior.
    gamma_groups_ : ndarray of shape (4,)
        :math:`\\gamma_g` per group (NaN for groups ``last_layer`` does not cover).
    log_evidence_ : float
        The log evidence of the final posterior.
    evidence_curve_ : list of float
        The log evidence after each training, in the order trained (for
        ``"fixed_point"`` it need not increase).
    alpha_curve_ : list of ndarray of shape (4,)
        The precisions of each training.
    n_cycles_ : int
        Trainings run.
    n_negative_eigenvalues_ : int
        Of the final posterior's curvature (see :class:`LaplacePosterior`).
    posterior_ : LaplacePosterior
        The final Laplace posterior.
    predict_seed_ : int
        The seed of the Monte Carlo predictive, drawn at fit time, so that
        the moderated predictions of a fitted (or saved and loaded) model
        never change.
    classes_, coefs_, intercepts_, params_, n_features_in_, feature_names_in_
        As for TwoLayerClassifier; the weights are the chosen MAP network's,
        moved along the softmax's flat directions to their least-norm point
        (which changes no prediction).
    loss_ : float
        :math:`\\tilde E / S` of the chosen MAP network, :math:`S` the total
        pattern weight.
    best_loss_ : float
        The least entry of ``loss_curve_`` in the chosen network's training.
    loss_curve_ : list of float
        :math:`\\tilde E / S` after each L-BFGS iteration of every training in turn.
    validation_scores_, best_validation_score_ : None
    n_iter_ : int
        L-BFGS iterations over all trainings.
    t_ : int
        Patterns processed (``N`` per function evaluation).
    n_layers_ : int
        3.
    n_outputs_ : int
        ``K``.
    out_activation_ : str
        "softmax".

    Notes
    -----
    ``fit`` and ``predict_proba`` estimate their memory first
    (:mod:`twolayer.bayes.memory`) and raise
    :class:`twolayer.errors.InsufficientMemory` (a ``MemoryError`` naming
    ``n_hidden``, ``structure``, ``n_samples`` or ``method``) instead of
    starting what cannot fit; ``fit`` also refuses an ``n_samples`` whose
    draws for a single pattern would not fit, before training.

    References
    ----------
    D. J. C. MacKay, "A practical Bayesian framework for backpropagation
    networks" and "The evidence framework applied to classification
    networks", Neural Computation 4 (1992); PRML §5.7.
    """

    # The hyperparameters it shares with TwoLayerClassifier, declared as scikit-learn declares them;
    # the others are checked by _check_hyperparameters.
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "n_hidden": [Interval(numbers.Integral, 1, None, closed="left")],
        "activation": [activation_constraint()],
        "alpha": [Interval(numbers.Real, 0, None, closed="neither")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="neither")],
        "random_state": RANDOM_STATE_CONSTRAINT,
    }

    def __init__(
        self,
        n_hidden: int = 20,
        activation: str = "tanh",
        alpha: float = 1.0,
        alpha_search: str = "fixed_point",
        per_group: bool = False,
        alpha_grid: Any = None,
        hessian: str = "gauss_newton",
        structure: str = "full",
        max_cycles: int = 10,
        alpha_tol: float = 1e-2,
        max_iter: int = 1000,
        tol: float = 1e-6,
        method: str = "mc",
        n_samples: int = 1000,
        random_state: Any = None,
    ) -> None:
        self.n_hidden = n_hidden
        self.activation = activation
        self.alpha = alpha
        self.alpha_search = alpha_search
        self.per_group = per_group
        self.alpha_grid = alpha_grid
        self.hessian = hessian
        self.structure = structure
        self.max_cycles = max_cycles
        self.alpha_tol = alpha_tol
        self.max_iter = max_iter
        self.tol = tol
        self.method = method
        self.n_samples = n_samples
        self.random_state = random_state

    def _check_hyperparameters(self) -> np.ndarray:
        """Check the hyperparameters; return the grid of ``"grid"`` (largest first).

        Those shared with TwoLayerClassifier by scikit-learn's constraints
        (an ``InvalidParameterError``, a ``ValueError``), the others here.
        """
        self._check_constraints()
        for name in ("max_cycles", "n_samples"):
            check_positive_int(name, getattr(self, name))
        check_positive_number("alpha_tol", self.alpha_tol)
        check_choice("alpha_search", self.alpha_search, ALPHA_SEARCHES)
        check_choice("hessian", self.hessian, HESSIANS)
        check_choice("structure", self.structure, STRUCTURES)
        check_choice("method", self.method, METHODS)
        if not isinstance(self.per_group, (bool, np.bool_)):
            raise TypeError(f"per_group must be True or False, got {self.per_group!r}")
        if self.per_group and self.alpha_search == "grid":
            raise ValueError("per_group=True needs alpha_search='fixed_point' (a grid holds one alpha)")
        grid = np.logspace(-2, 2, 17) if self.alpha_grid is None else np.asarray(self.alpha_grid, dtype=np.float64)
        if grid.ndim != 1 or grid.size < 1 or not np.all(np.isfinite(grid)) or np.any(grid <= 0):
            raise ValueError(f"alpha_grid must be a list of positive finite numbers, got {self.alpha_grid!r}")
        return np.sort(grid)[::-1]

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> BayesianTwoLayerClassifier:
        """Choose the prior precisions by the evidence and fit the final posterior.

        Parameters
        ----------
        X : array-like of shape (N, D)
            Dense; computed in float64.
        y : array-like of shape (N,)
        sample_weight : array-like of shape (N,), optional
            Non-negative pattern weights; an integer weight is the same as
            repeating the pattern.

        Returns
        -------
        self
        """
        grid = self._check_hyperparameters()
        before = dict(self.__dict__)
        X, y = validate_data(self, X, y, dtype=np.float64)
        k = self._class_indices(y)  # (N,)  the class index of each pattern
        s = None
        if sample_weight is not None:
            s = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
            if not np.any(s > 0):
                raise ValueError("the sample weights are all zero; at least one must be positive")
        try:
            self._check_memory(
                X.shape[0], X.shape[1], self.classes_.shape[0], stacklevel=5
            )  # check_memory, _check_memory, fit, scikit-learn's _fit_context, the caller of fit
        except InsufficientMemory:  # refused before training: as it was
            self.__dict__.clear()
            self.__dict__.update(before)
            raise
        with covered():  # checked as a whole just above
            return self._fit_checked(X, k, s, grid)

    def check_fit_memory(
        self, n_samples: int, n_features: int, n_classes: int, *, dtype: Any = np.float64, sparse: bool = False
    ) -> None:
        """Refuse a fit, or the predictions it leaves, that would not fit in memory; warn past half of it.

        ``fit`` checks this itself; a caller that prepares much before
        fitting can check first. The estimates are those of
        :mod:`twolayer.bayes.memory`: a cycle's MAP fit, curvature and
        factorisation beside the previous posterior, and the Monte Carlo
        draws of one pattern's prediction (needed whatever is predicted).

        Parameters
        ----------
        n_samples, n_features, n_classes : int
            The training patterns, their features and the classes.
        dtype, sparse
            Accepted as :meth:`TwoLayerClassifier.check_fit_memory
            <twolayer.classifier.TwoLayerClassifier.check_fit_memory>` takes
            them; this network computes in dense float64 whatever ``X`` is.

        Raises
        ------
        twolayer.errors.InsufficientMemory
            Naming the estimate, the memory available and the parameters to
            change (``n_hidden``, ``structure``; ``n_samples``, ``method``).

        Warns
        -----
        twolayer.errors.HighMemoryWarning
            When an estimate exceeds half of the memory available.
        """
        self._check_hyperparameters()
        self._check_memory(n_samples, n_features, n_classes, stacklevel=4)

    def _check_memory(self, n_samples: int, n_features: int, n_classes: int, *, stacklevel: int) -> None:
        M, K = int(self.n_hidden), int(n_classes)
        nbytes, parts = fit_estimate(
            n_samples=n_samples,
            n_features=n_features,
            n_hidden=M,
            n_classes=K,
            structure=self.structure,
            hessian=self.hessian,
            alpha_search=self.alpha_search,
        )
        diagonal = self.structure == "diagonal"
        check_memory(
            nbytes,
            "the Bayesian network's fit",
            "n_hidden",
            parts=parts,
            switch=None if diagonal else {"structure": "diagonal"},
            stacklevel=stacklevel,
        )
        # A prediction needs a pattern's Monte Carlo draws at least, whatever the patterns: say so now, not
        # after the fit (the posterior is kept meanwhile).
        _, kept = laplace_estimate(1, n_features, M, K, self.structure, self.hessian)
        mc = self.method == "mc"
        n_samples_mc = int(self.n_samples) if mc else 1
        check_memory(
            kept + predict_estimate(1, n_features, M, K, self.structure, self.method, n_samples_mc),
            "prediction",
            "n_samples" if mc else (),
            parts=f"{n_samples_mc} Monte Carlo draws of {K} logits for each pattern" if mc else "",
            switch={"method": "probit"} if mc else None,
            stacklevel=stacklevel,
        )

    def _fit_checked(
        self, X: np.ndarray, k: np.ndarray, s: np.ndarray | None, grid: np.ndarray
    ) -> BayesianTwoLayerClassifier:
        N, D = X.shape
        K = self.classes_.shape[0]
        T = np.eye(K)[k]  # 1-of-K targets
        init_seed, predict_seed = seed_sequence(self.random_state).spawn(2)
        params = nw.init_params(D, int(self.n_hidden), K, random_state=np.random.default_rng(init_seed))

        evidence_curve: list[float] = []
        alpha_curve: list[np.ndarray] = []
        loss_curve: list[float] = []
        n_iter = n_evaluations = 0

        def train(alpha: np.ndarray, init: Params) -> tuple[MapFit, LaplacePosterior]:
            nonlocal n_iter, n_evaluations
            fit = map_estimate(
                X,
                T,
                alpha,
                init=init,
                sample_weight=s,
                activation=self.activation,
                max_iter=int(self.max_iter),
                tol=float(self.tol),
            )
            n_iter += fit.n_iter
            n_evaluations += fit.n_evaluations
            loss_curve.extend(fit.loss_curve)
            w = _centred(fit.params)  # changes no prediction: the posterior mode along the flat directions
            H = _data_curvature(w, X, T, s, activation=self.activation, hessian=self.hessian, structure=self.structure)
            E = nw.error(w, X, T, s, activation=self.activation)
            posterior = posterior_from_curvature(
                w, H, alpha, E, structure=self.structure, hessian=self.hessian, activation=self.activation
            )
            evidence_curve.append(posterior.log_evidence)
            alpha_curve.append(alpha.copy())
            return fit, posterior

        if self.alpha_search == "grid":
            best: tuple[MapFit, LaplacePosterior] | None = None
            for value in grid:
                # Every alpha from the same initial weights: a path of warm starts would carry one
                # alpha's basin (an underfit one, from a large alpha) into the next.
                fit, posterior = train(np.full(4, value), params)
                if best is None or posterior.log_evidence > best[1].log_evidence:
                    best = (fit, posterior)
            assert best is not None  # the grid is never empty
            fit, posterior = best
            if grid.size > 1 and posterior.prior_precision[0] in (grid[0], grid[-1]):
                warnings.warn(
                    f"the evidence is largest at the end of alpha_grid (alpha = {posterior.prior_precision[0]:g}); "
                    "widen the grid",
                    ConvergenceWarning,
                    stacklevel=4,  # _fit_checked, fit, scikit-learn's _fit_context, the caller of fit
                )
        else:
            alpha = np.full(4, float(self.alpha))
            for _ in range(int(self.max_cycles)):
                fit, posterior = train(alpha, params)
                params = posterior.params
                new = posterior.reestimated_prior_precision(tie=not self.per_group)
                if np.all(np.abs(new - alpha) <= self.alpha_tol * alpha):
                    break
                alpha = new
            else:
                warnings.warn(
                    f"the evidence re-estimation of alpha did not settle within max_cycles={self.max_cycles} "
                    f"(last alpha {alpha.tolist()}); increase max_cycles or alpha_tol",
                    ConvergenceWarning,
                    stacklevel=4,  # _fit_checked, fit, scikit-learn's _fit_context, the caller of fit
                )
        if np.any(posterior.prior_precision <= ALPHA_MIN) or np.any(posterior.prior_precision >= ALPHA_MAX):
            warnings.warn(
                f"a prior precision reached the bound {ALPHA_MIN:g} or {ALPHA_MAX:g} "
                f"(alpha = {posterior.prior_precision.tolist()}): the evidence drove a group's weights to "
                "zero or without bound, as per-group precisions can along the rescaling between the "
                "layers; use one alpha (per_group=False)",
                ConvergenceWarning,
                stacklevel=4,  # _fit_checked, fit, scikit-learn's _fit_context, the caller of fit
            )
        if not fit.converged:
            warnings.warn(
                f"L-BFGS did not converge within max_iter={self.max_iter} iterations for the chosen "
                "alpha; increase max_iter",
                ConvergenceWarning,
                stacklevel=4,  # _fit_checked, fit, scikit-learn's _fit_context, the caller of fit
            )

        S = float(N if s is None else np.sum(s))
        # E~ of the centred weights: centring changes E not at all and the penalty only downwards.
        penalty = 0.5 * float(np.sum(precision_vector(posterior.prior_precision, *posterior.shape) * posterior.mean**2))
        loss = (posterior.data_error + penalty) / S
        self._set_posterior(
            posterior,
            evidence_curve=evidence_curve,
            alpha_curve=alpha_curve,
            loss=loss,
            best_loss=min(fit.loss_curve, default=loss),
            loss_curve=loss_curve,
            n_iter=n_iter,
            t=N * n_evaluations,
            # Drawn at fit time so that a fitted model's Monte Carlo predictions never change.
            predict_seed=int(predict_seed.generate_state(1)[0]),
        )
        return self

    @classmethod
    def from_posterior(
        cls,
        posterior: LaplacePosterior,
        classes: Any,
        *,
        hyperparameters: Mapping[str, Any] | None = None,
        predict_seed: int | None = None,
        evidence_curve: Sequence[float] | None = None,
        alpha_curve: Sequence[Any] | None = None,
        loss: float | None = None,
        best_loss: float | None = None,
        loss_curve: Sequence[float] = (),
        n_iter: int = 0,
        t: int = 0,
        feature_names_in: Sequence[str] | None = None,
    ) -> BayesianTwoLayerClassifier:
        """A fitted estimator from a Laplace posterior, without training (a model file's way back).

        Parameters
        ----------
        posterior : LaplacePosterior
            Its structure, Hessian and activation must be the hyperparameters'.
        classes : array-like of shape (K,)
            The class labels, sorted and distinct, in the order of the network's outputs.
        hyperparameters : mapping, optional
            The estimator's parameters (``get_params``); the defaults otherwise.
        predict_seed : int, optional
            The seed of the Monte Carlo predictive that :meth:`fit` drew; by
            default the one ``fit`` draws from ``random_state`` (a fresh one
            when that is None).
        evidence_curve, alpha_curve : sequence, optional
            The log evidence and the four precisions of each training; by
            default the posterior's alone.
        loss, best_loss : float, optional
            :math:`\\tilde E / S` of the MAP network, and the least of its
            training; ``loss_`` is not set when None.
        loss_curve : sequence of float, default ()
        n_iter, t : int, default 0
            L-BFGS iterations, and patterns processed, over all trainings.
        feature_names_in : sequence of str, optional
            The names of the D input columns.

        Returns
        -------
        BayesianTwoLayerClassifier
            Predicting as the estimator whose posterior this is.
        """
        model = cls(**dict(hyperparameters or {}))
        model._check_hyperparameters()
        if not isinstance(posterior, LaplacePosterior):
            raise TypeError(f"posterior must be a LaplacePosterior, got {type(posterior).__name__}")
        for name in ("structure", "hessian", "activation"):
            if getattr(posterior, name) != getattr(model, name):
                raise ValueError(
                    f"the posterior's {name} {getattr(posterior, name)!r} does not match the "
                    f"hyperparameter {name}={getattr(model, name)!r}"
                )
        D, M, K = posterior.shape
        labels = np.asarray(classes)
        if labels.shape != (K,) or not np.array_equal(np.unique(labels), labels):
            raise ValueError(f"classes must be the {K} sorted, distinct labels of the network's outputs")
        if M != model.n_hidden:
            raise ValueError(f"the posterior has {M} hidden units but n_hidden is {model.n_hidden}")
        if predict_seed is None:
            predict_seed = int(seed_sequence(model.random_state).spawn(2)[1].generate_state(1)[0])
        elif isinstance(predict_seed, bool) or not isinstance(predict_seed, numbers.Integral) or predict_seed < 0:
            raise ValueError(f"predict_seed must be a non-negative integer, got {predict_seed!r}")
        model.classes_ = labels
        model._set_inputs(D, feature_names_in)
        model._set_posterior(
            posterior,
            evidence_curve=[posterior.log_evidence] if evidence_curve is None else [float(v) for v in evidence_curve],
            alpha_curve=[posterior.prior_precision.copy()]
            if alpha_curve is None
            else [as_prior_precision(a) for a in alpha_curve],
            loss=None if loss is None else float(loss),
            best_loss=None if best_loss is None else float(best_loss),
            loss_curve=[float(v) for v in loss_curve],
            n_iter=int(n_iter),
            t=int(t),
            predict_seed=int(predict_seed),
        )
        return model

    def _set_posterior(
        self,
        posterior: LaplacePosterior,
        *,
        evidence_curve: list[float],
        alpha_curve: list[np.ndarray],
        loss: float | None,
        best_loss: float | None,
        loss_curve: list[float],
        n_iter: int,
        t: int,
        predict_seed: int,
    ) -> None:
        """Set every fitted attribute from the final posterior and the record of the trainings."""
        self.posterior_ = posterior
        self.alpha_ = posterior.prior_precision.copy()
        self.gamma_ = posterior.gamma
        self.gamma_groups_ = posterior.gamma_groups.copy()
        self.log_evidence_ = posterior.log_evidence
        self.n_negative_eigenvalues_ = posterior.n_negative_eigenvalues
        self.evidence_curve_ = evidence_curve
        self.alpha_curve_ = alpha_curve
        self.n_cycles_ = len(evidence_curve)
        self._set_network(posterior.params, n_iter=n_iter, t=t, loss_curve=loss_curve, loss=loss, best_loss=best_loss)
        self.predict_seed_ = predict_seed

    def _check_X(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        return validate_data(self, X, dtype=np.float64, reset=False)

    def predict_proba(self, X: Any) -> np.ndarray:
        """The moderated predictive :math:`p(C_k \\mid x, \\mathcal D)`.

        Returns
        -------
        ndarray of shape (N, K)
            Columns in the order of ``classes_``.
        """
        X = self._check_X(X)
        return self.posterior_.predict_proba(
            X, method=self.method, n_samples=int(self.n_samples), random_state=self.predict_seed_
        )

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """The logarithm of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """The class of largest moderated probability.

        Returns
        -------
        ndarray of shape (N,)
        """
        proba = self.predict_proba(X)  # first: it checks that the model is fitted
        return self.classes_[np.argmax(proba, axis=1)]

    def predict_proba_map(self, X: Any) -> np.ndarray:
        """The MAP network's own outputs :math:`y_k(x, w_{\\text{MAP}})`, without moderation.

        Returns
        -------
        ndarray of shape (N, K)
        """
        X = self._check_X(X)
        return nw.forward(self.params_, X, activation=self.activation)
