"""The compiled kernels of the training loops, and the switch that turns them off.

When numba is installed (the optional ``fast`` extra), the elementwise work
between the matrix products runs as compiled loops: each optimiser step, with
the weight decay folded in, is one pass over the flat vector instead of about
fourteen ufunc passes, and the softmax, output delta, hidden delta and bias
gradients of a batch are two passes instead of about twenty ufunc calls.

The optimiser loops (``_adam_loop``, ``_sgd_loop``) perform the
NumPy updates of :mod:`twolayer.training.optimizers` operation by operation,
in the same order, each rounded to the working dtype (no fused multiply-add,
no reassociation: numba's default without fastmath), so they give the same
bits; the tests assert it. The scalars reach them in the working dtype, as
NumPy casts Python floats against float32 arrays (NEP 50), so float32 stays
float32 in both. They take all four blocks of the vector in one call, each
block with its own decay. The gradient loops sum in a different order from
NumPy and agree with it to rounding. A hidden activation brings its own fused
delta loop (:attr:`twolayer.network.Activation.delta_kernel`), compiled here
on first use.

Without numba, or with :data:`FUSED` set to False, the NumPy code runs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np

__all__ = ["FUSED", "checks_rows_as_it_gathers"]

#: Whether the fast paths use the compiled kernels when numba (optional, the "fast" extra) is
#: installed; NumPy computes the same numbers without it. The tests switch it to compare both.
FUSED = True


def _output_delta_loop(
    A2: np.ndarray, b2: np.ndarray, target: np.ndarray, w: np.ndarray | None, scale: Any, grad_b2: np.ndarray
) -> float:
    # The NumPy chain of _batch_error_and_gradient for softmax outputs, row by row: A2 = z W2
    # becomes scale w_n (y_k - t_k); returns sum_n w_n E_n; grad_b2 gets its column sums.
    # Sums run in float64 (NumPy's run pairwise in the working dtype): equal to rounding.
    B, K = A2.shape
    E = 0.0
    for k in range(K):
        grad_b2[k] = 0.0
    for n in range(B):
        row = A2[n]
        top = row[0] + b2[0]
        for k in range(K):
            a = row[k] + b2[k]  # a_k (eq. 5.9)
            row[k] = a
            top = max(top, a)
        t = target[n]  # k_n, the class of pattern n
        picked = row[t] - top  # a_t - max
        total = 0.0
        for k in range(K):
            e = np.exp(row[k] - top)  # shifted: exp cannot overflow
            row[k] = e
            total += e
        E_n = np.log(total) - picked  # -ln y_t  (eq. 5.24)
        coef = scale
        if w is not None:
            E_n = w[n] * E_n
            coef = w[n] * scale
        E += E_n
        for k in range(K):
            row[k] = row[k] / total  # y_k (eq. 4.104)
        row[t] -= 1.0  # delta_k = y_k - t_k
        for k in range(K):
            d = row[k] * coef
            row[k] = d
            grad_b2[k] += d
    return E


def _adam_loop(
    theta: np.ndarray,
    g: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    bounds: np.ndarray,
    lams: np.ndarray,
    beta1: Any,
    c1: Any,
    beta2: Any,
    c2: Any,
    eps: Any,
    step: Any,
) -> None:
    # _adam_numpy's operations, element by element, on each block bounds[s] with its decay lams[s]:
    # one call per step. Slices, so that every inner loop counts from 0 and vectorises.
    for s in range(bounds.shape[0]):
        lo, hi, lam = bounds[s, 0], bounds[s, 1], lams[s]
        w, gs, ms, vs = theta[lo:hi], g[lo:hi], m[lo:hi], v[lo:hi]
        if lam != 0.0:
            for i in range(w.shape[0]):
                gi = gs[i] + w[i] * lam
                mi = ms[i] * beta1 + gi * c1
                vi = vs[i] * beta2 + (gi * gi) * c2
                ms[i] = mi
                vs[i] = vi
                w[i] = w[i] - (mi / (np.sqrt(vi) + eps)) * step
        else:
            for i in range(w.shape[0]):
                gi = gs[i]
                mi = ms[i] * beta1 + gi * c1
                vi = vs[i] * beta2 + (gi * gi) * c2
                ms[i] = mi
                vs[i] = vi
                w[i] = w[i] - (mi / (np.sqrt(vi) + eps)) * step


def _sgd_loop(
    theta: np.ndarray,
    g: np.ndarray,
    vel: np.ndarray,
    bounds: np.ndarray,
    lams: np.ndarray,
    mu: Any,
    eta: Any,
    nesterov: bool,
) -> None:
    # _sgd_numpy's operations, element by element, block by block as _adam_loop
    for s in range(bounds.shape[0]):
        lo, hi, lam = bounds[s, 0], bounds[s, 1], lams[s]
        w, gs, vs = theta[lo:hi], g[lo:hi], vel[lo:hi]
        for i in range(w.shape[0]):
            gi = gs[i] + w[i] * lam if lam != 0.0 else gs[i]
            vi = vs[i] * mu - gi * eta
            vs[i] = vi
            if nesterov:
                w[i] = (w[i] - gi * eta) + vi * mu
            else:
                w[i] = w[i] + vi


@functools.cache
def _compiled() -> SimpleNamespace | None:
    """The numba kernels (compiled on first call, cached on disk), or None without numba.

    Imported here, not with the module: numba is slow to import.
    error_model="numpy" drops the zero-division checks that would stop vectorisation;
    no fastmath, so every operation is IEEE-rounded as NumPy's ufuncs round it.
    """
    try:
        import numba
    except ImportError:  # pragma: no cover - exercised where numba is not installed
        return None
    try:  # numba's extension API (intrinsics, llvmlite): should it move, only the gather falls back to np.take
        from twolayer.training import _gather

        gather = _gather.gather
    except ImportError:  # pragma: no cover
        gather = None
    jit = numba.njit(nogil=True, cache=True, error_model="numpy")

    @functools.cache
    def delta(kernel: Callable[..., None] | None) -> Callable[..., None] | None:
        """An activation's ``delta_kernel``, compiled on first use."""
        return None if kernel is None else jit(kernel)

    return SimpleNamespace(
        adam=jit(_adam_loop),
        sgd=jit(_sgd_loop),
        output_delta=jit(_output_delta_loop),
        delta=delta,
        gather=gather,
    )


def _kernels() -> SimpleNamespace | None:
    """The compiled kernels when :data:`FUSED` and numba is installed, else None."""
    return _compiled() if FUSED else None


def checks_rows_as_it_gathers() -> bool:
    """Whether a shuffled minibatch epoch checks unchecked rows in its compiled gather (numba installed).

    Where it does not, :class:`TrainingData` ``checked=False`` costs a pass of
    :func:`~twolayer.training.batch.check_finite` before the epoch, no less than checking up front.
    """
    kernels = _kernels()
    return kernels is not None and kernels.gather is not None
