"""The scikit-learn estimator that chooses the prior by the evidence and predicts with the moderated predictive.

It is one module because the fit, the evidence cycles with their restarts and the mixture of
components all build and read the same fitted state; the posterior's algebra is in
:mod:`~twolayer.bayes.posterior`, the choices in :mod:`~twolayer.bayes.choices`, the memory estimate
in :mod:`~twolayer.bayes.memory`.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import array_api_compat
import numpy as np
from scipy.special import softmax
from sklearn.base import _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import _check_sample_weight, check_is_fitted

from twolayer import network as nw
from twolayer.bayes.choices import ALPHA_SEARCHES, MIXTURE_WEIGHTS, per_group_precisions
from twolayer.bayes.fitted import _data_curvature
from twolayer.bayes.map import MapFit, map_estimate
from twolayer.bayes.memory import fit_estimate, laplace_estimate, predict_estimate
from twolayer.bayes.on_cluster import data_error
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
from twolayer.classifier.on_device import device_namespace, has_float64
from twolayer.cluster import is_dask
from twolayer.errors import InsufficientMemory
from twolayer.estimator import (
    RANDOM_STATE_CONSTRAINT,
    BaseTwoLayerClassifier,
    activation_constraint,
    check_choice,
    check_number,
    check_positive_int,
    check_positive_number,
    seed_sequence,
    validate_data,
)
from twolayer.network import Params
from twolayer.prior import as_prior_precision, precision_vector
from twolayer.resources import check_memory, covered
from twolayer.training.on_device import to_host

__all__ = ["ALPHA_SEARCHES", "BayesianTwoLayerClassifier"]


@dataclass(eq=False)
class _Run:
    """One component's evidence procedure: the chosen MAP fit and posterior, and the record of its trainings."""

    fit: MapFit = field(init=False)
    posterior: LaplacePosterior = field(init=False)
    evidence_curve: list[float] = field(default_factory=list)
    alpha_curve: list[np.ndarray] = field(default_factory=list)
    restart_evidence: list[np.ndarray] = field(default_factory=list)
    loss_curve: list[float] = field(default_factory=list)
    n_iter: int = 0
    n_evaluations: int = 0
    settled: bool = True
    grid_edge: bool = False
    last_alpha: np.ndarray = field(default_factory=lambda: np.ones(4))


class BayesianTwoLayerClassifier(BaseTwoLayerClassifier):
    """A two-layer network classifier whose weight decay is chosen by the evidence.

    The evidence framework (PRML §5.7.2, MacKay 1992) chooses the prior
    precisions :math:`\\alpha` from the training data alone, and the
    classifier then predicts with the moderated predictive of the final
    Laplace posterior (PRML §5.7.3) rather than the MAP network's outputs.
    Two ways to choose :math:`\\alpha`:

    ``alpha_search="fixed_point"`` (MacKay's re-estimation)
        Train the MAP network under :math:`\\alpha` from the previous
        cycle's weights **and** from ``n_restarts`` fresh initial weights,
        keep the fit of largest evidence, build the Laplace posterior there,
        set :math:`\\alpha_g \\leftarrow (\\gamma_g + \\nu) / (\\lVert w_g \\rVert^2 + \\nu / \\alpha_0)`
        (MacKay's update under a weak Gamma hyperprior of strength
        :math:`\\nu` = ``alpha_hyperprior`` and mode :math:`\\alpha_0` =
        ``alpha``) and repeat until the precisions settle. The step is taken
        in :math:`\\ln \\alpha`, and a group's step is halved whenever its
        precision turns back (an oscillation between two basins dies out).
        One precision per group the posterior covers, or one for them all
        (``per_group``).
    ``alpha_search="grid"``
        Train the MAP network at each :math:`\\alpha` of ``alpha_grid``,
        every time from the same ``1 + n_restarts`` initial weights, and keep
        the fit of largest log evidence. One precision for all groups.

    Why restarts: a warm start stays in the basin it is in. On two moons
    (200 points, noise 0.3) the first training at :math:`\\alpha = 1` often
    lands on a nearly linear network whose own re-estimate keeps it there,
    while the same :math:`\\alpha` from fresh weights reaches a lower
    :math:`\\tilde E` and an evidence 10-20 nats higher. Why the
    hyperprior: without it per-group precisions run along the rescaling
    between the layers to their bounds (:math:`\\alpha_{W2} \\to 10^{-4}`,
    :math:`\\alpha_{b2} \\to 10^{6}` on every moons seed). The Gamma
    density :math:`\\operatorname{Gamma}(1 + \\nu/2, \\text{rate } \\nu / 2\\alpha_0)`
    acts as :math:`\\nu` pseudo-parameters of mean square :math:`1/\\alpha_0`
    in each group: it bounds :math:`\\alpha_g` above by
    :math:`\\alpha_0 (W_g + \\nu) / \\nu` and is negligible wherever a group
    has many well-determined parameters. ``docs/evidence.md`` has the
    measurements behind the defaults. ``n_components > 1`` fits a mixture
    of Laplace posteriors (MacKay's committee; Eschenhagen et al. 2021):
    that many independently initialised runs of the procedure, each with its
    posterior and evidence, predicting with the mixture of their moderated
    predictives.

    The two differ because the fixed point makes the evidence stationary
    with the MAP weights (and so the curvature) held fixed, while the
    evidence of the re-trained network also changes through
    :math:`\\ln |A|` as :math:`w_{\\text{MAP}}` moves with :math:`\\alpha`.
    On the digits the fixed point settles at several times the
    :math:`\\alpha` that the largest re-trained evidence (and held-out data)
    prefer.

    The posterior is by default the last layer's (``structure``): the
    output layer's weights under a Gaussian, the hidden layer at its MAP
    value with ``alpha`` as its decay, as laplace-torch does by default. On
    the calibration benchmark (two moons, wine, breast cancer, the digits)
    it predicts better than the whole network's posterior on every data
    set, and better than its own MAP network on two moons and breast
    cancer (BENCHMARKS.md, "Calibration").

    Moderation helps most where the MAP network is over-confident (a weak
    prior, few data, extrapolation). Where the training data are nearly
    separable the output curvature :math:`\\Lambda` vanishes at the
    confidently fitted patterns, the Gaussian posterior is broader than the
    true (one-sided) one, and the moderated predictive is under-confident
    (the MAP probabilities are available from :meth:`predict_proba_map`).

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
        and the mode of the hyperprior, in the units of TwoLayerClassifier's
        ``alpha`` (the coefficient of :math:`\\tfrac12 \\lVert w \\rVert^2`
        added to the summed error). With ``structure="last_layer"`` it stays
        the hidden layer's precision (its weight decay): that posterior's
        evidence says nothing of the first layer.
    alpha_search : {"fixed_point", "grid"}, default "fixed_point"
    per_group : bool or "auto", default "auto"
        With ``"fixed_point"``, re-estimate one precision per group the
        posterior covers (``W1``, ``b1``, ``W2``, ``b2``; MacKay 1992) instead
        of one for them all. "auto" is per group for the last-layer
        posterior (``W2`` and ``b2``) and one precision otherwise: on the
        calibration benchmark (BENCHMARKS.md) per-group precisions over the
        last layer fit best everywhere, while over the whole network they
        fit two moons better than one alpha but wine, breast cancer and the
        digits worse (a small :math:`\\alpha_{W2}`, a broad predictive;
        ``docs/evidence.md``). Without the hyperprior per-group precisions
        over the whole network drift along the rescaling between the
        layers: where the hidden units work in their linear range, a
        smaller ``W1`` and a larger ``W2`` fit alike, each re-estimation
        shrinks :math:`\\alpha_{W2}` and grows :math:`\\alpha_{W1}`, and the
        cycles run off (a warning says when a precision reaches the bounds
        1e-8 or 1e8).
    alpha_grid : array-like of positive floats or None, default None
        The precisions tried by ``"grid"``; None is
        ``numpy.logspace(-2, 2, 17)`` (four per decade).
    hessian : {"gauss_newton", "exact"}, default "gauss_newton"
        The curvature of the posterior. Gauss–Newton is positive
        semi-definite; the exact Hessian's negative eigenvalues are set to
        zero (counted in ``n_negative_eigenvalues_``).
    structure : {"last_layer", "full", "diagonal"}, default "last_layer"
        ``full`` covers every weight and costs :math:`O(W^3)` time and
        :math:`O(W^2)` memory (a few thousand weights); ``diagonal`` covers
        every weight at any size. ``last_layer`` is the Laplace posterior of
        the output layer with the hidden layer at its MAP value (as
        laplace-torch's default): the evidence chooses the output layer's
        precisions, ``alpha`` stays the hidden layer's, and it costs
        :math:`O((M K)^3)`. On the calibration benchmark (BENCHMARKS.md) the
        last layer's predictive, with its per-group precisions, is the best
        calibrated of the three on every data set: the whole network's
        Gaussian is broader than the exact posterior in the directions the
        data determine weakly, and its predictive under-confident
        (``docs/evidence.md``). With ``"grid"`` the last layer's evidence is
        a poor guide (it ignores the first layer, whose decay the grid also
        sets).
    max_cycles : int, default 30
        The most train / re-estimate cycles of ``"fixed_point"``.
    alpha_tol : float, default 1e-2
        ``"fixed_point"`` stops when no re-estimated precision differs from
        the current one by more than this relative amount.
    n_restarts : int, default 3
        Fresh initial weights trained beside the warm start in every cycle
        (0: the warm start alone, as before issue 19); the same fresh
        weights serve every cycle. Each cycle costs ``1 + n_restarts`` MAP fits.
    alpha_damping : float in (0, 1], default 1.0
        The first step towards the re-estimate in :math:`\\ln \\alpha`
        (1: MacKay's full update); halved for a group each time its
        precision turns back.
    alpha_hyperprior : float, default 5.0
        :math:`\\nu \\ge 0`, the strength of the Gamma hyperprior on each
        precision (0: none, the plain evidence); see
        :meth:`LaplacePosterior.reestimated_prior_precision`.
    n_components : int, default 1
        Laplace posteriors in the mixture, each from its own initial weights.
    mixture_weights : {"evidence", "equal"}, default "evidence"
        How the components are weighed: by their evidence
        (:math:`\\propto e^{\\ln Z_c}`, the posterior probability of each
        component's basin under equal prior odds), or equally.
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
        equal unless per group; with ``structure="last_layer"`` those of
        ``W1`` and ``b1`` stay at ``alpha``).
    gamma_ : float
        The number of well-determined parameters of the final posterior.
    gamma_groups_ : ndarray of shape (4,)
        :math:`\\gamma_g` per group (NaN for groups ``last_layer`` does not cover).
    log_evidence_ : float
        The log evidence of the final posterior.
    evidence_curve_ : list of float
        The log evidence of the chosen fit of each cycle (each grid value for
        ``"grid"``), in order (for ``"fixed_point"`` it need not increase).
    restart_evidence_ : list of ndarray of shape (1 + n_restarts,)
        The log evidence reached from every start of each cycle: the warm
        start first, then the fresh ones.
    alpha_curve_ : list of ndarray of shape (4,)
        The precisions of each cycle.
    n_cycles_ : int
        Cycles run (grid values for ``"grid"``).
    components_ : list of LaplacePosterior
        The mixture's posteriors, largest evidence first; ``components_[0]``
        is ``posterior_``. These three attributes, ``evidence_curve_``,
        ``restart_evidence_`` and ``alpha_curve_``, ``params_`` and the other
        single-network attributes are those of the first component.
    component_evidence_ : ndarray of shape (n_components,)
        Their log evidences, in decreasing order.
    mixture_weights_ : ndarray of shape (n_components,)
        Their weights in the predictive.
    n_negative_eigenvalues_ : int
        Of the final posterior's curvature (see :class:`LaplacePosterior`).
    posterior_ : LaplacePosterior
        The final Laplace posterior (of largest evidence, in a mixture).
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
        :math:`\\tilde E / S` after each L-BFGS iteration of every training in
        turn, over all components.
    validation_scores_, best_validation_score_ : None
    n_iter_ : int
        L-BFGS iterations over all trainings of all components.
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

    With scikit-learn's ``array_api_dispatch`` on, ``fit`` on arrays of
    PyTorch, CuPy or another array-API namespace computes where they are:
    the MAP fits (SciPy's L-BFGS-B driving, every error and gradient on the
    device), the curvature and the posteriors; ``coefs_``, ``intercepts_``
    and the posteriors' arrays stay there, and the predictions of such
    arrays are arrays of the same namespace and device. The precisions, the
    evidence and the other records are the host's numbers. Memory is checked
    against the device's free memory.

    References
    ----------
    D. J. C. MacKay, "A practical Bayesian framework for backpropagation
    networks" and "The evidence framework applied to classification
    networks", Neural Computation 4 (1992); PRML §5.7; R. M. Neal, *Bayesian
    Learning for Neural Networks* (1996), §1.2 and §3.2 (Gamma hyperpriors on
    the precision of each group of weights); R. Eschenhagen et al., "Mixtures
    of Laplace approximations for improved post-hoc uncertainty in deep
    learning", NeurIPS workshop on Bayesian deep learning (2021).
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
        per_group: bool | str = "auto",
        alpha_grid: Any = None,
        hessian: str = "gauss_newton",
        structure: str = "last_layer",
        max_cycles: int = 30,
        alpha_tol: float = 1e-2,
        n_restarts: int = 3,
        alpha_damping: float = 1.0,
        alpha_hyperprior: float = 5.0,
        n_components: int = 1,
        mixture_weights: str = "evidence",
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
        self.n_restarts = n_restarts
        self.alpha_damping = alpha_damping
        self.alpha_hyperprior = alpha_hyperprior
        self.n_components = n_components
        self.mixture_weights = mixture_weights
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
        for name in ("max_cycles", "n_samples", "n_components"):
            check_positive_int(name, getattr(self, name))
        if (
            isinstance(self.n_restarts, bool)
            or not isinstance(self.n_restarts, numbers.Integral)
            or self.n_restarts < 0
        ):
            raise ValueError(f"n_restarts must be a non-negative integer, got {self.n_restarts!r}")
        check_positive_number("alpha_tol", self.alpha_tol)
        check_number("alpha_damping", self.alpha_damping, 0.0, 1.0, low_open=True)
        check_number("alpha_hyperprior", self.alpha_hyperprior, 0.0)
        check_choice("mixture_weights", self.mixture_weights, MIXTURE_WEIGHTS)
        check_choice("alpha_search", self.alpha_search, ALPHA_SEARCHES)
        check_choice("hessian", self.hessian, HESSIANS)
        check_choice("structure", self.structure, STRUCTURES)
        check_choice("method", self.method, METHODS)
        if not (isinstance(self.per_group, (bool, np.bool_)) or self.per_group == "auto"):
            raise TypeError(f"per_group must be True, False or 'auto', got {self.per_group!r}")
        if self.per_group != "auto" and bool(self.per_group) and self.alpha_search == "grid":
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
        xp = device_namespace(X)
        if xp is not None:
            return self._fit_on_device(X, y, sample_weight, grid, before, xp)
        if is_dask(X) or is_dask(y):
            return self._fit_on_cluster(X, y, sample_weight, grid, before)
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

    def _fit_on_cluster(
        self, X: Any, y: Any, sample_weight: Any, grid: np.ndarray, before: dict[str, Any]
    ) -> BayesianTwoLayerClassifier:
        """``fit`` on Dask collections: the data held on the workers, every sum of the procedure computed there.

        See :mod:`twolayer.bayes.on_cluster`. Memory is checked here for what
        this process holds (the curvature and its factorisation, whatever N).
        """
        from twolayer.bayes.on_cluster import prepare

        try:
            X, T, s, k = prepare(self, X, y, sample_weight)
            block = max(X.chunks[0])  # the largest block: what one task of the workers holds at once
            self._check_memory(block, X.shape[1], self.classes_.shape[0], stacklevel=5)
        except (InsufficientMemory, ValueError):  # refused before training: as it was
            self.__dict__.clear()
            self.__dict__.update(before)
            raise
        with covered():  # checked as a whole just above
            return self._fit_checked(X, k, s, grid, T=T)

    def _fit_on_device(
        self, X: Any, y: Any, sample_weight: Any, grid: np.ndarray, before: dict[str, Any], xp: Any
    ) -> BayesianTwoLayerClassifier:
        """``fit`` on a device's arrays (scikit-learn's ``array_api_dispatch`` on): every product where ``X`` is.

        The MAP fits (:func:`map_estimate`), the curvature and the posterior
        are computed on the device of ``X``; the labels visit the host once
        (``classes_``), and the procedure's numbers (the precisions, the
        evidence, :math:`\\gamma`) are the host's. The fitted weights and the
        posteriors are arrays of ``X``'s namespace and device. Memory is
        checked against the device's free memory.
        """
        from twolayer.training.on_device import free_memory

        try:
            device = array_api_compat.device(X)
            dtype = xp.float64 if has_float64(xp, device) else xp.float32
            X = validate_data(self, X, dtype=dtype)
            y_host = to_host(y)
            if y_host.ndim == 2 and y_host.shape[1] == 1:  # a column of labels
                y_host = y_host.ravel()
            if y_host.shape[0] != X.shape[0]:
                raise ValueError(f"X has {X.shape[0]} rows but y has {y_host.shape[0]}")
            k = self._class_indices(y_host)  # (N,)  the class index of each pattern, on the host
            s = None
            if sample_weight is not None:
                s = _check_sample_weight(
                    to_host(sample_weight), np.empty((X.shape[0], 0)), dtype=np.float64, ensure_non_negative=True
                )
                if not np.any(s > 0):
                    raise ValueError("the sample weights are all zero; at least one must be positive")
            N, D, K = X.shape[0], X.shape[1], self.classes_.shape[0]
            self._check_memory(N, D, K, stacklevel=5, available=free_memory(xp, device))
        except (InsufficientMemory, ValueError):  # refused before training: as it was
            self.__dict__.clear()
            self.__dict__.update(before)
            raise
        T = xp.take(xp.eye(K, dtype=dtype, device=device), xp.asarray(k.astype(np.int64), device=device), axis=0)
        s_dev = None if s is None else xp.asarray(s, dtype=dtype, device=device)
        with covered():  # checked as a whole just above
            return self._fit_checked(X, k, s_dev, grid, T=T)

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

    def _check_memory(
        self, n_samples: int, n_features: int, n_classes: int, *, stacklevel: int, available: int | None = None
    ) -> None:
        M, K = int(self.n_hidden), int(n_classes)
        nbytes, parts = fit_estimate(
            n_samples=n_samples,
            n_features=n_features,
            n_hidden=M,
            n_classes=K,
            structure=self.structure,
            hessian=self.hessian,
            alpha_search=self.alpha_search,
            n_restarts=int(self.n_restarts),
            n_components=int(self.n_components),
        )
        diagonal = self.structure == "diagonal"
        check_memory(
            nbytes,
            "the Bayesian network's fit",
            "n_hidden",
            parts=parts,
            switch=None if diagonal else {"structure": "diagonal"},
            stacklevel=stacklevel,
            available=available,
        )
        # A prediction needs a pattern's Monte Carlo draws at least, whatever the patterns: say so now, not
        # after the fit (the posterior is kept meanwhile).
        _, kept = laplace_estimate(1, n_features, M, K, self.structure, self.hessian)
        kept *= int(self.n_components)
        mc = self.method == "mc"
        n_samples_mc = int(self.n_samples) if mc else 1
        check_memory(
            kept + predict_estimate(1, n_features, M, K, self.structure, self.method, n_samples_mc),
            "prediction",
            "n_samples" if mc else (),
            parts=f"{n_samples_mc} Monte Carlo draws of {K} logits for each pattern" if mc else "",
            switch={"method": "probit"} if mc else None,
            stacklevel=stacklevel,
            available=available,
        )

    def _fit_checked(self, X: Any, k: Any, s: Any, grid: np.ndarray, *, T: Any = None) -> BayesianTwoLayerClassifier:
        N, _D = X.shape
        K = self.classes_.shape[0]
        if T is None:
            T = np.eye(K)[k]  # 1-of-K targets
        n_components = int(self.n_components)
        # Children 0 and 1 are the first component's initial weights and the predictive's seed, as they were
        # before there were mixtures; the other components' seeds follow them.
        init_seed, predict_seed, *component_seeds = seed_sequence(self.random_state).spawn(1 + n_components)
        runs = [
            self._evidence_procedure(X, T, s, grid, seed) for seed in [init_seed, *component_seeds]
        ]  # (a component: its posterior, its record)
        for run in runs:
            self._warn_about(run)
        # The component of largest evidence is the estimator's network (params_, posterior_), the others follow
        # it in the order of their evidence; a stable sort keeps the first trained first among equals.
        order = sorted(range(n_components), key=lambda c: -runs[c].posterior.log_evidence)
        runs = [runs[c] for c in order]
        best = runs[0]
        posterior = best.posterior
        S = float(N if s is None else _total(s))
        # E~ of the centred weights: centring changes E not at all and the penalty only downwards.
        mean = to_host(posterior.mean)  # the array itself for NumPy
        penalty = 0.5 * float(np.sum(precision_vector(posterior.prior_precision, *posterior.shape) * mean**2))
        loss = (posterior.data_error + penalty) / S
        self._set_posterior(
            posterior,
            evidence_curve=best.evidence_curve,
            alpha_curve=best.alpha_curve,
            restart_evidence=best.restart_evidence,
            components=[run.posterior for run in runs[1:]],
            loss=loss,
            best_loss=min(best.fit.loss_curve, default=loss),
            loss_curve=[v for run in runs for v in run.loss_curve],
            n_iter=sum(run.n_iter for run in runs),
            t=N * sum(run.n_evaluations for run in runs),
            # Drawn at fit time so that a fitted model's Monte Carlo predictions never change.
            predict_seed=int(predict_seed.generate_state(1)[0]),
        )
        return self

    def _evidence_procedure(
        self, X: np.ndarray, T: np.ndarray, s: np.ndarray | None, grid: np.ndarray, seed: np.random.SeedSequence
    ) -> _Run:
        """One component: choose the precisions by the evidence, from ``1 + n_restarts`` initial weights."""
        D, K = X.shape[1], T.shape[1]
        M = int(self.n_hidden)
        first = nw.init_params(D, M, K, random_state=np.random.default_rng(seed))
        fresh = [
            nw.init_params(D, M, K, random_state=np.random.default_rng(child))
            for child in seed.spawn(int(self.n_restarts))
        ]
        run = _Run()

        def train(alpha: np.ndarray, init: Params) -> tuple[MapFit, LaplacePosterior]:
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
            run.n_iter += fit.n_iter
            run.n_evaluations += fit.n_evaluations
            run.loss_curve.extend(fit.loss_curve)
            w = _centred(fit.params)  # changes no prediction: the posterior mode along the flat directions
            H = _data_curvature(w, X, T, s, activation=self.activation, hessian=self.hessian, structure=self.structure)
            E = data_error(w, X, T, s, activation=self.activation)
            posterior = posterior_from_curvature(
                w, H, alpha, E, structure=self.structure, hessian=self.hessian, activation=self.activation
            )
            return fit, posterior

        def best_of(alpha: np.ndarray, starts: list[Params]) -> tuple[MapFit, LaplacePosterior]:
            """The MAP fit of largest evidence among those from ``starts``; the first wins a tie."""
            chosen: tuple[MapFit, LaplacePosterior] | None = None
            evidence = []
            for start in starts:  # one posterior beside the best so far, not all of them at once
                candidate = train(alpha, start)
                evidence.append(candidate[1].log_evidence)
                if chosen is None or candidate[1].log_evidence > chosen[1].log_evidence:
                    chosen = candidate
            assert chosen is not None  # there is always the first start
            run.restart_evidence.append(np.array(evidence))
            run.evidence_curve.append(chosen[1].log_evidence)
            run.alpha_curve.append(alpha.copy())
            return chosen

        if self.alpha_search == "grid":
            best: tuple[MapFit, LaplacePosterior] | None = None
            for value in grid:
                # Every alpha from the same initial weights: a path of warm starts would carry one
                # alpha's basin (an underfit one, from a large alpha) into the next.
                candidate = best_of(np.full(4, value), [first, *fresh])
                if best is None or candidate[1].log_evidence > best[1].log_evidence:
                    best = candidate
            assert best is not None  # the grid is never empty
            run.fit, run.posterior = best
            run.grid_edge = grid.size > 1 and run.posterior.prior_precision[0] in (grid[0], grid[-1])
        else:
            alpha = np.full(4, float(self.alpha))
            centre = float(self.alpha)
            previous = first
            run.settled = False
            step = np.full(4, float(self.alpha_damping))  # per group
            last_move: np.ndarray | None = None
            for _ in range(int(self.max_cycles)):
                # The previous cycle's weights, and fresh ones: a warm start alone stays in the basin it
                # is in, which need not be the one of largest evidence at the new alpha.
                run.fit, run.posterior = best_of(alpha, [previous, *fresh])
                previous = run.posterior.params
                target = run.posterior.reestimated_prior_precision(
                    tie=not per_group_precisions(self.per_group, self.structure, self.alpha_search),
                    hyperprior=float(self.alpha_hyperprior),
                    centre=centre,
                )
                if np.all(np.abs(target - alpha) <= self.alpha_tol * alpha):
                    run.settled = True
                    break
                # A step along the way to the re-estimate in log alpha (the update is multiplicative), halved
                # whenever a precision turns back: an oscillation between two basins of the MAP network then
                # dies out instead of going on for ever. A full step is MacKay's update, exactly.
                move = np.log(target) - np.log(alpha)
                if last_move is not None:
                    step = np.where(move * last_move < 0, step / 2, step)
                last_move = move
                alpha = target if np.all(step == 1.0) else np.exp(np.log(alpha) + step * move)
            run.last_alpha = alpha
        return run

    def _warn_about(self, run: _Run) -> None:
        """The warnings of one component's procedure (every stacklevel: this, _fit_checked, fit, _fit_context, the caller)."""
        if run.grid_edge:
            warnings.warn(
                f"the evidence is largest at the end of alpha_grid (alpha = {run.posterior.prior_precision[0]:g}); "
                "widen the grid",
                ConvergenceWarning,
                stacklevel=5,
            )
        if not run.settled and self.alpha_search == "fixed_point":
            warnings.warn(
                f"the evidence re-estimation of alpha did not settle within max_cycles={self.max_cycles} "
                f"(last alpha {run.last_alpha.tolist()}); increase max_cycles or alpha_tol",
                ConvergenceWarning,
                stacklevel=5,
            )
        precision = run.posterior.prior_precision
        if np.any(precision <= ALPHA_MIN) or np.any(precision >= ALPHA_MAX):
            warnings.warn(
                f"a prior precision reached the bound {ALPHA_MIN:g} or {ALPHA_MAX:g} "
                f"(alpha = {precision.tolist()}): the evidence drove a group's weights to "
                "zero or without bound, as per-group precisions can along the rescaling between the "
                "layers; use one alpha (per_group=False) or a stronger alpha_hyperprior",
                ConvergenceWarning,
                stacklevel=5,
            )
        if not run.fit.converged:
            warnings.warn(
                f"L-BFGS did not converge within max_iter={self.max_iter} iterations for the chosen "
                "alpha; increase max_iter",
                ConvergenceWarning,
                stacklevel=5,
            )

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
        restart_evidence: Sequence[Sequence[float]] | None = None,
        components: Sequence[LaplacePosterior] = (),
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
            The log evidence and the four precisions of each cycle; by
            default the posterior's alone.
        restart_evidence : sequence of sequences of float, optional
            The log evidence of every start of each cycle; by default each
            cycle's chosen one alone.
        components : sequence of LaplacePosterior, default ()
            The mixture's other components (``components_[1:]``), of the same
            shape, structure, Hessian and activation; ``n_components`` must
            count them with ``posterior``.
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
        components = list(components)
        if len(components) + 1 != model.n_components:
            raise ValueError(f"n_components is {model.n_components} but there are {len(components) + 1} posteriors")
        for component in components:
            if not isinstance(component, LaplacePosterior):
                raise TypeError(f"components must be LaplacePosteriors, got {type(component).__name__}")
            for name in ("shape", "structure", "hessian", "activation"):
                if getattr(component, name) != getattr(posterior, name):
                    raise ValueError(f"a component's {name} {getattr(component, name)!r} is not the posterior's")
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
            restart_evidence=[np.array([v]) for v in evidence_curve or [posterior.log_evidence]]
            if restart_evidence is None
            else [np.array(v, dtype=np.float64) for v in restart_evidence],
            components=components,
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
        restart_evidence: list[np.ndarray],
        components: list[LaplacePosterior],
        loss: float | None,
        best_loss: float | None,
        loss_curve: list[float],
        n_iter: int,
        t: int,
        predict_seed: int,
    ) -> None:
        """Set every fitted attribute from the final posterior(s) and the record of the trainings."""
        self.posterior_ = posterior
        self.components_ = [posterior, *components]
        self.component_evidence_ = np.array([c.log_evidence for c in self.components_])
        self.mixture_weights_ = _mixture_weights(self.component_evidence_, self.mixture_weights)
        self.restart_evidence_ = restart_evidence
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

    def _check_X(self, X: Any) -> Any:
        """``X`` checked: float64 NumPy, or, for a model fitted on a device, an array there in its weights' dtype.

        With scikit-learn's ``array_api_dispatch`` on, ``X`` must be where the
        weights are (nothing is moved silently): a device's array for a model
        fitted there, NumPy for one fitted on NumPy.
        """
        check_is_fitted(self)
        W1 = self.coefs_[0]
        on_device = array_api_compat.is_array_api_obj(W1) and not isinstance(W1, np.ndarray)
        xp = device_namespace(X)
        if xp is None and not on_device:
            return validate_data(self, X, dtype=np.float64, reset=False)
        if (
            xp is None
            or array_api_compat.array_namespace(W1) is not xp
            or array_api_compat.device(X) != array_api_compat.device(W1)
        ):
            where = (
                f"{array_api_compat.array_namespace(W1).__name__} on {array_api_compat.device(W1)}"
                if on_device
                else "NumPy"
            )
            raise ValueError(
                f"X must be an array of {where}, where the model's weights are (with array_api_dispatch on); "
                f"got {type(X).__module__}.{type(X).__name__}. Move it there first"
            )
        return validate_data(self, X, dtype=W1.dtype, reset=False)

    def predict_proba(self, X: Any) -> np.ndarray:
        """The moderated predictive :math:`p(C_k \\mid x, \\mathcal D)`.

        Returns
        -------
        ndarray of shape (N, K)
            Columns in the order of ``classes_``.
        """
        if is_dask(X):  # a lazy Dask array of the same blocks of rows
            from twolayer.classifier.on_cluster import lazy_predict

            return lazy_predict(self, X, "predict_proba")
        X = self._check_X(X)
        if len(self.components_) == 1:
            return self.posterior_.predict_proba(
                X, method=self.method, n_samples=int(self.n_samples), random_state=self.predict_seed_
            )
        if not isinstance(X, np.ndarray):  # a device's: the mixture summed there
            terms = [
                float(weight)
                * component.predict_proba(
                    X, method=self.method, n_samples=int(self.n_samples), random_state=self.predict_seed_
                )
                for weight, component in zip(self.mixture_weights_, self.components_, strict=True)
            ]
            total = terms[0]
            for term in terms[1:]:
                total = total + term
            return total
        proba = np.zeros((X.shape[0], self.classes_.shape[0]))
        for weight, component in zip(self.mixture_weights_, self.components_, strict=True):
            proba += weight * component.predict_proba(
                X, method=self.method, n_samples=int(self.n_samples), random_state=self.predict_seed_
            )
        return proba

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """The logarithm of :meth:`predict_proba`."""
        if is_dask(X):  # a lazy Dask array of the same blocks of rows
            from twolayer.classifier.on_cluster import lazy_predict

            return lazy_predict(self, X, "predict_log_proba")
        proba = self.predict_proba(X)
        with np.errstate(divide="ignore"):
            if isinstance(proba, np.ndarray):
                return np.log(proba)
            return array_api_compat.array_namespace(proba).log(proba)

    def predict(self, X: Any) -> np.ndarray:
        """The class of largest moderated probability.

        Returns
        -------
        ndarray of shape (N,)
        """
        if is_dask(X):  # a lazy Dask array of the same blocks of rows
            from twolayer.classifier.on_cluster import lazy_predict

            return lazy_predict(self, X, "predict")
        proba = self.predict_proba(X)  # first: it checks that the model is fitted
        if isinstance(proba, np.ndarray):
            return self.classes_[np.argmax(proba, axis=1)]
        # On a device: numeric labels there, others (strings) on the host, as TwoLayerClassifier's.
        xp = array_api_compat.array_namespace(proba)
        device = array_api_compat.device(proba)
        index = xp.argmax(proba, axis=1)
        if self.classes_.dtype.kind in "iufb":
            return xp.take(xp.asarray(self.classes_, device=device), index, axis=0)
        return self.classes_[to_host(index)]

    def predict_proba_map(self, X: Any) -> np.ndarray:
        """The MAP network's own outputs :math:`y_k(x, w_{\\text{MAP}})`, without moderation.

        Returns
        -------
        ndarray of shape (N, K)
        """
        if is_dask(X):  # a lazy Dask array of the same blocks of rows
            from twolayer.classifier.on_cluster import lazy_predict

            return lazy_predict(self, X, "predict_proba_map")
        X = self._check_X(X)
        if not isinstance(X, np.ndarray):  # the weights where X is, as they are
            params = Params(self.coefs_[0], self.intercepts_[0], self.coefs_[1], self.intercepts_[1])
            return nw.forward(params, X, activation=self.activation)
        return nw.forward(self.params_, X, activation=self.activation)

    def to_numpy(self) -> BayesianTwoLayerClassifier:
        """A copy whose weights and posteriors are NumPy arrays on the host (after a fit on a device); self when they are.

        Every component's posterior comes back whole (mean, precision and its
        factor), so the copy predicts on NumPy inputs as a fit on the host
        would.

        Returns
        -------
        BayesianTwoLayerClassifier
        """
        check_is_fitted(self)
        if all(isinstance(a, np.ndarray) for a in (*self.coefs_, *self.intercepts_)):
            return self
        import copy

        host = copy.copy(self)
        host.components_ = [LaplacePosterior.from_dict(c.to_dict()) for c in self.components_]
        host.posterior_ = host.components_[0]
        host.coefs_ = [to_host(a) for a in self.coefs_]
        host.intercepts_ = [to_host(a) for a in self.intercepts_]
        return host


def _total(s: Any) -> Any:
    """:math:`S = \\sum_n s_n`: ``s.sum()`` of NumPy or Dask, the namespace's sum of a device's array."""
    if isinstance(s, np.ndarray) or is_dask(s):
        return s.sum()
    return array_api_compat.array_namespace(s).sum(s)


def _mixture_weights(log_evidence: np.ndarray, rule: str) -> np.ndarray:
    """The components' weights: equal, or the posterior of each component given the data, :math:`\\propto \\exp(\\ln Z_c)`."""
    if rule == "equal" or log_evidence.shape[0] == 1:
        return np.full(log_evidence.shape[0], 1.0 / log_evidence.shape[0])
    return np.asarray(softmax(log_evidence), dtype=np.float64)
