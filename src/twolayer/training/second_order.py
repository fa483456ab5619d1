"""Second-order optimisers over a flat parameter vector.

Two ways of using curvature to train the network, both on a flat vector
``theta`` (:func:`twolayer.network.flatten` order) and a callable
``fun_and_grad(theta) -> (f, g)``:

- :func:`minimize_newton`: a thin wrapper around :func:`scipy.optimize.minimize`
  with ``method="trust-ncg"`` or ``"Newton-CG"`` (truncated Newton,
  "Hessian-free"), given the exact Hessian-vector product ``hessp(theta, v)``
  of :func:`twolayer.curvature.hessian_vector_product`;
- :func:`scaled_conjugate_gradient`: Møller's scaled conjugate gradient
  (Netlab's default trainer), which needs no line search: it takes its step
  length from the curvature along the search direction, :math:`p^\\top H p`,
  made positive by a Levenberg–Marquardt shift :math:`\\lambda`. Given
  ``hessp`` that curvature is exact; otherwise it is Møller's one-sided finite
  difference of two gradients.

Both return a :class:`scipy.optimize.OptimizeResult` with the same fields and
status codes, count every call of ``fun_and_grad`` (``nfev``, equal to
``njev``) and of ``hessp`` (``nhev``) so that a benchmark can count
gradient-equivalent passes, and call ``callback(intermediate_result)`` once per
iteration; a callback returning ``True`` stops training.

Status codes: ``0`` converged (:math:`\\lVert g \\rVert_\\infty \\le` ``tol``),
``1`` ``max_iter`` reached, ``2`` no further progress possible in floating
point, ``3`` stopped by the callback; any other code is SciPy's own (see
``message``). ``success`` is ``status == 0``.

:func:`network_objective` builds ``fun_and_grad`` and ``hessp`` for the
network's regularised error :math:`E(w) + \\tfrac{\\alpha}{2}\\lVert w \\rVert^2`
(weights only, biases not penalised), the sum over patterns of PRML eq. 5.24.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.optimize import OptimizeResult, minimize

from twolayer import curvature, network
from twolayer.prior import Decay, decay_per_group, is_weight_decay

__all__ = [
    "minimize_newton",
    "network_objective",
    "scaled_conjugate_gradient",
]

FunAndGrad = Callable[[np.ndarray], tuple[float, np.ndarray]]
HessP = Callable[[np.ndarray, np.ndarray], np.ndarray]
Callback = Callable[[OptimizeResult], Any]

_MESSAGES = {
    0: "Converged: the gradient's largest component is at most tol.",
    1: "Stopped: max_iter iterations reached.",
    2: "Stopped: no further progress is possible in floating point.",
    3: "Stopped by the callback.",
}


def _check_common(theta0: Any, max_iter: int, tol: float) -> np.ndarray:
    theta = np.array(theta0, dtype=np.result_type(np.asarray(theta0).dtype, np.float32), copy=True)
    if theta.ndim != 1:
        raise ValueError(f"theta0 must be a flat vector, got shape {theta.shape}")
    if int(max_iter) != max_iter or max_iter < 0:
        raise ValueError(f"max_iter must be a non-negative integer, got {max_iter!r}")
    if not tol >= 0:
        raise ValueError(f"tol must be a non-negative number, got {tol!r}")
    return theta


def _converged(g: np.ndarray, tol: float) -> bool:
    return bool(np.max(np.abs(g), initial=0.0) <= tol)


def _result(
    theta: np.ndarray, f: float, g: np.ndarray, nit: int, nfev: int, nhev: int, status: int, message: str
) -> OptimizeResult:
    return OptimizeResult(
        x=theta,
        fun=f,
        jac=g,
        nit=nit,
        nfev=nfev,
        njev=nfev,
        nhev=nhev,
        status=status,
        success=status == 0,
        message=message,
    )


def _intermediate(theta: np.ndarray, f: float, g: np.ndarray, nit: int, nfev: int, nhev: int) -> OptimizeResult:
    """What a callback sees after an iteration (copies: the caller may keep them)."""
    return OptimizeResult(x=theta.copy(), fun=f, jac=g.copy(), nit=nit, nfev=nfev, njev=nfev, nhev=nhev)


# --------------------------------------------------------------------------
# Møller's scaled conjugate gradient
# --------------------------------------------------------------------------


def scaled_conjugate_gradient(
    fun_and_grad: FunAndGrad,
    theta0: np.ndarray,
    *,
    hessp: HessP | None = None,
    max_iter: int = 1000,
    tol: float = 1e-5,
    callback: Callback | None = None,
    sigma: float = 1e-4,
    lambda0: float = 1e-6,
) -> OptimizeResult:
    """Minimise by Møller's scaled conjugate gradient.

    Each iteration computes the curvature along the search direction
    :math:`p`, :math:`\\delta = p^\\top s` with :math:`s = H p` (exact from
    ``hessp``, or Møller's :math:`s \\approx (g(\\theta + \\sigma_k p) -
    g(\\theta)) / \\sigma_k` with :math:`\\sigma_k = \\sigma / \\lVert p \\rVert`),
    shifted by :math:`\\lambda \\lVert p \\rVert^2` and raised if still not
    positive; steps :math:`\\alpha = \\mu / \\delta` with :math:`\\mu = -p^\\top g`;
    accepts the step when the comparison ratio
    :math:`\\Delta = 2\\delta (f(\\theta) - f(\\theta + \\alpha p)) / \\mu^2` is
    non-negative; shrinks :math:`\\lambda` by 4 when :math:`\\Delta \\ge 0.75`
    and raises it by :math:`\\delta (1 - \\Delta) / \\lVert p \\rVert^2` when
    :math:`\\Delta < 0.25`; and updates the direction by Møller's
    Polak–Ribière-type formula, restarting along :math:`-g` every ``W``
    accepted steps. With an exact ``hessp`` on a convex quadratic and a
    negligible :math:`\\lambda` its steps are those of linear conjugate
    gradients.

    One departure from Møller: when :math:`f(\\theta) - f(\\theta + \\alpha p)`
    is below about :math:`10^3` machine epsilons of :math:`|f|`, so that the
    difference is mostly rounding, the reduction is measured instead by the
    trapezoid rule :math:`-\\tfrac{\\alpha}{2} p^\\top (g + g_{\\text{new}})`
    (exact for a quadratic). Without it the ratio turns to noise near a
    minimum, :math:`\\lambda` explodes and the method stalls well above the
    gradient tolerance that float64 allows.

    Parameters
    ----------
    fun_and_grad : callable
        ``fun_and_grad(theta) -> (f, g)``: the objective and its gradient.
    theta0 : array of shape (W,)
        The starting point (not modified).
    hessp : callable, optional
        ``hessp(theta, v) -> H v``, the Hessian-vector product. When omitted,
        the curvature is a finite difference of two gradients, as in Møller.
    max_iter : int, default 1000
        The most iterations, accepted or not (each costs one ``fun_and_grad``
        and one ``hessp`` or one extra ``fun_and_grad``; a rejected step
        reuses the curvature and costs one ``fun_and_grad``).
    tol : float, default 1e-5
        Stop when :math:`\\max_i |g_i| \\le` ``tol``.
    callback : callable, optional
        ``callback(intermediate_result)`` after every iteration, with an
        :class:`~scipy.optimize.OptimizeResult` holding ``x``, ``fun``,
        ``jac``, ``nit``, ``nfev``, ``nhev`` and ``lambda_`` (the current
        scale). Returning ``True`` stops (status 3).
    sigma : float, default 1e-4
        Møller's :math:`\\sigma` for the finite-difference curvature.
    lambda0 : float, default 1e-6
        The initial scale :math:`\\lambda_1`.

    Returns
    -------
    scipy.optimize.OptimizeResult
        ``x``, ``fun``, ``jac``, ``nit``, ``nfev`` (= ``njev``), ``nhev``,
        ``status``, ``success``, ``message`` (status codes in the module
        docstring).

    References
    ----------
    M. F. Møller, "A scaled conjugate gradient algorithm for fast supervised
    learning", Neural Networks 6 (1993) 525–533; I. T. Nabney, *NETLAB:
    Algorithms for Pattern Recognition* (2002), §2.7 (``scg``); PRML §5.2.4.
    """
    theta = _check_common(theta0, max_iter, tol)
    if not sigma > 0 or not lambda0 > 0:
        raise ValueError(f"sigma and lambda0 must be positive, got {sigma!r} and {lambda0!r}")
    n_weights = theta.size
    lam_max = 1e100  # beyond this the steps are below floating-point resolution
    # Differences of f smaller than this fraction of |f| keep under three digits.
    resolution = 1e3 * float(np.finfo(theta.dtype).eps)

    f, g = fun_and_grad(theta)
    f, g = float(f), np.asarray(g, dtype=theta.dtype)
    nfev, nhev, nit = 1, 0, 0
    if _converged(g, tol):
        return _result(theta, f, g, 0, nfev, nhev, 0, _MESSAGES[0])

    r = -g  # Møller's r_k, the steepest-descent direction
    p = r.copy()
    lam = float(lambda0)
    success = True  # the last step was accepted: the curvature must be recomputed
    n_accepted = 0
    status = 1
    mu = pp = q = 0.0
    while nit < max_iter:
        nit += 1
        if success:
            mu = float(p @ r)
            if mu <= 0:  # not a descent direction (rounding): restart along -g
                p = r.copy()
                mu = float(p @ r)
            pp = float(p @ p)
            if hessp is not None:
                s = np.asarray(hessp(theta, p))  # s_k = H p_k, exactly
                nhev += 1
            else:
                sigma_k = sigma / np.sqrt(pp)
                _, g_plus = fun_and_grad(theta + sigma_k * p)
                nfev += 1
                s = (np.asarray(g_plus) - g) / sigma_k  # Møller step 2
            q = float(p @ s)  # p^T H p, unscaled

        delta = q + lam * pp  # Møller step 3: the curvature of H + lambda I along p
        if delta <= 0:
            # Møller step 4: make the shifted curvature positive (it becomes -q).
            lam = 2 * (lam - delta / pp)
            delta = q + lam * pp

        step = mu / delta  # Møller step 5
        theta_new = theta + step * p
        f_new, g_new = fun_and_grad(theta_new)
        nfev += 1
        f_new = float(f_new)
        g_new = np.asarray(g_new, dtype=theta.dtype)
        reduction = f - f_new
        if abs(reduction) <= resolution * abs(f):
            # Near a minimum the difference of two nearly equal values of f is
            # mostly rounding; the trapezoid rule on the directional derivatives
            # (exact for a quadratic) measures the reduction without cancellation.
            reduction = -0.5 * step * float(p @ (g + g_new))
        # Møller step 6: the comparison ratio of actual to predicted reduction.
        ratio = 2 * delta * reduction / mu**2 if np.isfinite(f_new) else -1.0

        stalled = False
        if ratio >= 0:  # Møller step 7: accept
            stalled = bool(np.array_equal(theta_new, theta))
            theta, f = theta_new, f_new
            g = g_new
            r_old, r = r, -g
            success = True
            n_accepted += 1
            if n_accepted % n_weights == 0:
                p = r.copy()  # restart every W accepted steps
            else:
                beta = (float(r @ r) - float(r @ r_old)) / mu
                p = r + beta * p
            if ratio >= 0.75:
                lam = lam / 4
        else:
            success = False
        if ratio < 0.25:  # Møller step 8: a poor quadratic model, raise the scale
            lam = lam + delta * (1 - ratio) / pp

        converged = success and _converged(g, tol)
        stop = False
        if callback is not None:
            info = _intermediate(theta, f, g, nit, nfev, nhev)
            info["lambda_"] = lam
            stop = callback(info) is True
        if converged:
            status = 0
            break
        if stop:
            status = 3
            break
        if stalled or not lam < lam_max:
            status = 2
            break
    return _result(theta, f, g, nit, nfev, nhev, status, _MESSAGES[status])


# --------------------------------------------------------------------------
# Truncated Newton through scipy.optimize.minimize
# --------------------------------------------------------------------------


def minimize_newton(
    fun_and_grad: FunAndGrad,
    theta0: np.ndarray,
    *,
    hessp: HessP,
    method: str = "trust-ncg",
    max_iter: int = 200,
    tol: float = 1e-5,
    callback: Callback | None = None,
) -> OptimizeResult:
    """Minimise by truncated Newton (``trust-ncg`` or ``Newton-CG``) with exact Hessian products.

    Each outer iteration solves the Newton system :math:`H p = -g`
    approximately by linear conjugate gradients, touching the Hessian only
    through ``hessp`` — a "Hessian-free" method. ``trust-ncg`` (Steihaug's
    conjugate gradients in a trust region) copes with the indefinite Hessians
    of neural networks; ``Newton-CG`` uses a line search.

    Parameters
    ----------
    fun_and_grad : callable
        ``fun_and_grad(theta) -> (f, g)``.
    theta0 : array of shape (W,)
        The starting point (not modified).
    hessp : callable
        ``hessp(theta, v) -> H v``.
    method : {"trust-ncg", "newton-cg"}, default "trust-ncg"
        SciPy's method (case-insensitive).
    max_iter : int, default 200
        The most outer iterations.
    tol : float, default 1e-5
        Stop when :math:`\\max_i |g_i| \\le` ``tol``, checked after every
        iteration (SciPy's own criteria are set tighter, so this one governs).
    callback : callable, optional
        ``callback(intermediate_result)`` after every outer iteration, with an
        :class:`~scipy.optimize.OptimizeResult` holding ``x``, ``fun``,
        ``jac``, ``nit``, ``nfev``, ``nhev``. Returning ``True`` stops
        (status 3).

    Returns
    -------
    scipy.optimize.OptimizeResult
        As :func:`scaled_conjugate_gradient`; ``nfev`` and ``nhev`` count this
        wrapper's own calls of ``fun_and_grad`` and ``hessp``.

    References
    ----------
    J. Nocedal and S. J. Wright, *Numerical Optimization*, 2nd ed. (2006),
    §7.1 (line-search and trust-region Newton-CG); J. Martens, "Deep learning
    via Hessian-free optimization", ICML 2010; PRML §5.4.6.
    """
    theta = _check_common(theta0, max_iter, tol)
    methods = {"trust-ncg": "trust-ncg", "newton-cg": "Newton-CG"}
    key = str(method).lower()
    if key not in methods:
        raise ValueError(f"method must be 'trust-ncg' or 'newton-cg', got {method!r}")

    counts = {"f": 0, "h": 0, "nit": 0}
    recent: list[tuple[np.ndarray, float, np.ndarray]] = []  # the last two evaluations

    def fg(x: np.ndarray) -> tuple[float, np.ndarray]:
        counts["f"] += 1
        f, g = fun_and_grad(x)
        f, g = float(f), np.asarray(g, dtype=theta.dtype)
        recent.append((x.copy(), f, g))
        del recent[:-2]
        return f, g

    def hp(x: np.ndarray, v: np.ndarray) -> np.ndarray:
        counts["h"] += 1
        return np.asarray(hessp(x, v), dtype=theta.dtype)

    def lookup(x: np.ndarray) -> tuple[float, np.ndarray]:
        # SciPy hands the callback x and f only; the gradient there was almost
        # always just computed.
        for x_seen, f, g in reversed(recent):
            if np.array_equal(x_seen, x):
                return f, g
        return fg(x)

    ours: dict[str, int] = {}

    def cb(intermediate_result: OptimizeResult) -> None:
        counts["nit"] += 1
        x = np.array(intermediate_result.x, copy=True)
        f, g = lookup(x)
        stop = False
        if callback is not None:
            info = _intermediate(x, f, g, counts["nit"], counts["f"], counts["h"])
            stop = callback(info) is True
        if _converged(g, tol):
            ours["status"] = 0
            raise StopIteration
        if stop:
            ours["status"] = 3
            raise StopIteration

    f0, g0 = fg(theta)
    if _converged(g0, tol):
        return _result(theta, f0, g0, 0, counts["f"], counts["h"], 0, _MESSAGES[0])
    options: dict[str, Any] = {"maxiter": int(max_iter)}
    if key == "trust-ncg":
        options["gtol"] = 0.0  # our max-norm test in the callback decides
    else:
        options["xtol"] = 1e-14  # the mean absolute step; our gradient test decides
    res = minimize(fg, theta, jac=True, hessp=hp, method=methods[key], callback=cb, options=options)

    x = np.array(res.x, copy=True)
    f, g = lookup(x)
    nit = counts["nit"]
    if "status" in ours:
        status = ours["status"]
        message = _MESSAGES[status]
    elif nit >= max_iter:
        status, message = 1, _MESSAGES[1]
    elif res.status == 2 or (res.status == 0 and not _converged(g, tol)):
        # SciPy's precision loss (a failed line search or a model that predicts no
        # decrease), or its step test met before ours.
        status, message = 2, f"{_MESSAGES[2]} (SciPy: {res.message})"
    else:
        status, message = int(res.status), f"SciPy: {res.message}"
    return _result(x, f, g, nit, counts["f"], counts["h"], status, message)


# --------------------------------------------------------------------------
# The network's objective over a flat vector
# --------------------------------------------------------------------------


def network_objective(
    X: np.ndarray,
    T: np.ndarray,
    sample_weight: np.ndarray | None = None,
    *,
    n_hidden: int,
    activation: str = "tanh",
    alpha: Decay = 0.0,
    curvature_kind: str = "hessian",
    output: str = "softmax",
) -> tuple[FunAndGrad, HessP]:
    """``fun_and_grad`` and ``hessp`` of the network's regularised error over a flat vector.

    .. math::

        \\tilde E(\\theta) = -\\sum_n s_n \\sum_k t_{nk} \\ln y_k(x_n, \\theta)
                             + \\tfrac{\\alpha}{2}\\big(\\lVert W_1 \\rVert^2
                             + \\lVert W_2 \\rVert^2\\big)

    or, with one decay per group, the penalty
    :math:`\\sum_g \\tfrac{\\alpha_g}{2} \\lVert w_g \\rVert^2` (PRML §5.5.1, eqs. 5.122–5.123).

    Parameters
    ----------
    X : array of shape (N, D)
    T : array of shape (N, K)
        Targets, each row summing to one.
    sample_weight : array of shape (N,), optional
    n_hidden : int
        ``M``; ``theta`` has length ``(D + 1) M + (M + 1) K``.
    activation : {"tanh", "logistic", "relu", "identity"}, default "tanh"
    alpha : float, 4 floats or mapping, default 0.0
        Weight decay on ``W1`` and ``W2``, or one per group ``W1``, ``b1``,
        ``W2``, ``b2`` (see :func:`twolayer.prior.decay_per_group`).
    curvature_kind : {"hessian", "gauss-newton"}, default "hessian"
        Whether ``hessp`` multiplies by the exact Hessian or by the
        (positive semi-definite) Gauss–Newton matrix.
    output : {"softmax", "sigmoid"}, default "softmax"
        The output nonlinearity (:data:`twolayer.network.OUTPUTS`); sigmoid
        outputs take K independent 0/1 targets and the binary cross-entropy.

    Returns
    -------
    fun_and_grad : callable
        ``theta -> (E~, dE~/dtheta)``, by :func:`twolayer.network.error_and_gradient`.
    hessp : callable
        ``(theta, v) -> H~ v`` by :func:`twolayer.curvature.hessian_vector_product`
        (or :func:`~twolayer.curvature.gauss_newton_vector_product`).

    References
    ----------
    PRML eq. 5.24, §5.5 (weight decay) and §5.4.6.
    """
    if curvature_kind not in ("hessian", "gauss-newton"):
        raise ValueError(f"curvature_kind must be 'hessian' or 'gauss-newton', got {curvature_kind!r}")
    try:
        decay = decay_per_group(alpha)
    except ValueError as exc:
        raise ValueError(f"alpha must be a non-negative number or four (W1, b1, W2, b2), got {alpha!r}") from exc
    # One decay on the weights keeps its own sum, so that alpha and (alpha, 0, alpha, 0) give the same bits.
    weight_decay = decay[0] if is_weight_decay(decay) else None
    network.get_activation(activation)  # a clear error now rather than at the first call
    network.check_output(output)
    X, T = np.asarray(X), np.asarray(T)
    if X.ndim != 2 or T.ndim != 2 or X.shape[0] != T.shape[0]:
        raise ValueError(f"X (N, D) and T (N, K) must have the same N; got {X.shape} and {T.shape}")
    D, K = X.shape[1], T.shape[1]
    M = int(n_hidden)
    product = curvature.hessian_vector_product if curvature_kind == "hessian" else curvature.gauss_newton_vector_product

    def fun_and_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        params = network.unflatten(theta, D, M, K)
        E, grad = network.error_and_gradient(params, X, T, sample_weight, activation=activation, output=output)
        if weight_decay is not None:
            if weight_decay:
                E += 0.5 * weight_decay * float(np.sum(params.W1**2) + np.sum(params.W2**2))
                grad = grad._replace(W1=grad.W1 + weight_decay * params.W1, W2=grad.W2 + weight_decay * params.W2)
        else:
            E += 0.5 * sum(a_g * float(np.sum(p_g**2)) for a_g, p_g in zip(decay, params))
            grad = network.Params(*(g + a_g * p_g if a_g else g for g, a_g, p_g in zip(grad, decay, params)))
        return E, network.flatten(grad)

    def hessp(theta: np.ndarray, v: np.ndarray) -> np.ndarray:
        params = network.unflatten(theta, D, M, K)
        Hv = product(params, X, T, v, sample_weight, activation=activation, alpha=decay, output=output)
        return network.flatten(Hv)

    return fun_and_grad, hessp
