"""Second derivatives of the two-layer network, in closed form.

This module is the mathematics of ``docs/curvature.md`` (after
Bishop, *Pattern Recognition and Machine Learning*, §5.3.4 and §5.4) as pure
functions beside :mod:`twolayer.network`: the Jacobian of the outputs with
respect to the inputs, the Jacobian of the output activations with respect to
the weights, the exact Hessian, fast Hessian-vector products by Pearlmutter's
:math:`\\mathcal{R}` operator, the Gauss–Newton (outer-product) matrix and
its products, the exact and the Becker–LeCun diagonal, and SciPy linear
operators for Lanczos and conjugate gradients.

It is one module, past the house's usual length, because it is one idea: every
quantity here is built from the same per-pattern state (the forward pass, the
output curvature :math:`\\Lambda_n` and the back-propagated factors), and
splitting them apart would put that shared state behind an import.

As in :mod:`twolayer.network`, errors are **sums** over patterns (PRML eq.
5.24), so every second derivative here is a sum over patterns too; a
``sample_weight`` :math:`s_n` multiplies each pattern's contribution. Flat
quantities (rows and columns of the Hessian, the last axis of
:func:`weight_jacobian`) follow :func:`twolayer.network.flatten`:
``W1.ravel()``, ``b1``, ``W2.ravel()``, ``b2``.

Notation (``docs/derivation.md``): ``a1`` the hidden activations :math:`a_j`, ``z``
the hidden outputs, ``a2`` the output activations :math:`a_k`, ``y`` the
softmax outputs, ``delta2`` :math:`\\delta_k = s_n (y_k - t_k)`, ``hp`` and
``hpp`` :math:`h'(a_j)` and :math:`h''(a_j)`, and per pattern

.. math::

    \\Lambda = \\frac{\\partial^2 E_n}{\\partial a_k \\partial a_{k'}}
             = \\operatorname{diag}(y) - y y^\\top ,

which does not depend on the targets because each target row sums to one
(the same assumption that makes :math:`\\delta_k = y_k - t_k`).

Every function takes ``output="sigmoid"`` for K independent logistic outputs
with the binary cross-entropy (multilabel targets, each entry 0 or 1): there
:math:`\\delta_k = y_k - t_k` as well and the output curvature is diagonal,

.. math::

    \\Lambda = \\operatorname{diag}\\bigl(y_k (1 - y_k)\\bigr),

again free of the targets, so every formula below holds with this
:math:`\\Lambda` in place of the softmax's (``docs/derivation.md``, "Sigmoid outputs").

A bias is a weight from a unit fixed at one. Appending a column of ones to
``X`` (written ``Xb``, :math:`x_0`) and to ``z`` (``zb``, :math:`z_0`) turns
``(W1, b1)`` into one ``(D+1, M)`` matrix and ``(W2, b2)`` into one
``(M+1, K)`` matrix whose C-order ravels are exactly the flatten order, so
each Hessian block below is one matrix product over the batch.

The dense functions (:func:`jacobian`, :func:`weight_jacobian`,
:func:`hessian`, :func:`gauss_newton`, :func:`hessian_diagonal`) and the
products are written against the Python array API standard and follow the
namespace and dtype of their inputs exactly as :mod:`twolayer.network` does
(float32 in, float32 out; float64 in, float64 out). The linear operators are
SciPy objects and therefore NumPy only.

An optional ``alpha`` adds the weight-decay term
:math:`\\tfrac{\\alpha}{2}\\lVert w \\rVert^2` over the **weights** ``W1`` and
``W2`` (biases not penalised, as in scikit-learn's ``MLPClassifier``), whose
Hessian is :math:`\\alpha` on the diagonal entries of the weights; four values
:math:`(\\alpha_{W1}, \\alpha_{b1}, \\alpha_{W2}, \\alpha_{b2})` (or a mapping by
group) give the grouped prior's term :math:`\\sum_g \\tfrac{\\alpha_g}{2}\\lVert w_g
\\rVert^2` (PRML §5.5.1, eqs. 5.122–5.123), whose Hessian is :math:`\\alpha_g` on the diagonal
entries of group ``g`` (see :mod:`twolayer.prior`).

It is one module so that each second-order quantity sits beside the pieces it shares with the others
(the output curvature, the R-operator passes, the Jacobians); docs/curvature.md is its map.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import array_api_compat
import numpy as np
from scipy.sparse.linalg import LinearOperator

from twolayer.cluster import RowBlocks, as_row_blocks, is_dask
from twolayer.network import (
    Activation,
    Params,
    check_output,
    flatten,
    forward_pass,
    get_activation,
    log_outputs,
    n_params,
    param_shapes,
    unflatten,
    working_arrays,
)
from twolayer.prior import Decay, decay_per_group
from twolayer.resources import check_memory

__all__ = [
    "gauss_newton",
    "gauss_newton_operator",
    "gauss_newton_vector_product",
    "hessian",
    "hessian_diagonal",
    "hessian_operator",
    "hessian_vector_product",
    "jacobian",
    "last_layer_hessian",
    "memory_estimate",
    "weight_jacobian",
]

Array = Any  # an array of any array-API namespace

# Elements allowed in one per-chunk temporary of hessian(): 2**22 float64 is
# 32 MiB. Chunking over patterns keeps the (n, (D+1)^2) outer products of the
# first-layer block bounded however large N is, while each chunk stays big
# enough for the matrix products to run at full speed.
_CHUNK_ELEMENTS = 2**22


#: What :func:`memory_estimate` estimates: a dense matrix, a diagonal, products, the Jacobian.
MEMORY_KINDS = ("hessian", "gauss_newton", "last_layer", "diagonal", "products", "weight_jacobian")


# --------------------------------------------------------------------------
# Memory
# --------------------------------------------------------------------------


def memory_estimate(
    kind: str, n_samples: int, n_features: int, n_hidden: int, n_classes: int, itemsize: int = 8
) -> int:
    """The bytes one call of this module allocates at its peak, besides its inputs.

    Counted from the arrays the functions below build, with ``W`` the number
    of parameters, :math:`W_1 = (D + 1) M`, :math:`W_2 = (M + 1) K`, and
    :math:`N (3M + 3K)` numbers of forward quantities in every case:

    - ``"hessian"``, ``"gauss_newton"`` (:func:`hessian`, :func:`gauss_newton`):
      the larger of the accumulation, the block sums (twice each: a sum and its
      update) and two per-chunk temporaries of the widest product, and the
      assembly, the ``W x W`` result with a ``W1 x W1`` gather of the first
      block and copies of the other blocks;
    - ``"last_layer"`` (:func:`last_layer_hessian`): four :math:`W_2 \\times W_2`
      matrices and a chunk's products;
    - ``"diagonal"`` (:func:`hessian_diagonal`): about :math:`8M + 6K + D` numbers per pattern;
    - ``"products"`` (the operators and the vector products): the forward
      quantities and one R pass, about :math:`8M + 6K` per pattern, and a few vectors;
    - ``"weight_jacobian"`` (:func:`weight_jacobian`): the ``(N, K, W)``
      result and its two halves.

    ``tests/test_resources.py`` compares these with what ``tracemalloc`` records.

    Parameters
    ----------
    kind : str
        One of :data:`MEMORY_KINDS`.
    n_samples, n_features, n_hidden, n_classes : int
        :math:`N`, :math:`D`, :math:`M`, :math:`K`.
    itemsize : int, default 8
        Bytes per number of the working dtype.

    Returns
    -------
    int
    """
    N, D, M, K = (int(v) for v in (n_samples, n_features, n_hidden, n_classes))
    W, W1, W2 = n_params(D, M, K), (D + 1) * M, (M + 1) * K
    state = N * (3 * M + 3 * K)
    if kind in ("hessian", "gauss_newton"):
        pairs = (D + 1) * (D + 2) // 2 * (M * (M + 1) // 2)
        H12 = W1 * W2
        sums = pairs + H12 + W2 * W2 + W2 * (M + 1) + (D + 1) * M * K
        widest = max((D + 1) ** 2, M * M, (D + 1) * (M + 1), M * K, W2)
        n = min(N, max(1, _CHUNK_ELEMENTS // widest))
        loop = 2 * sums + n * (2 * widest + (D + 1) * (M + 1) + 3 * M * K)
        assembly = W * W + W1 * W1 + pairs + 3 * H12 + 3 * W2 * W2
        numbers = state + max(loop, assembly)
    elif kind == "last_layer":
        n = min(N, max(1, _CHUNK_ELEMENTS // W2))
        numbers = state + 4 * W2 * W2 + 2 * W2 * (M + 1) + 2 * n * W2
    elif kind == "diagonal":
        numbers = N * (8 * M + 6 * K + D)
    elif kind == "products":
        numbers = N * (8 * M + 6 * K) + 4 * W
    elif kind == "weight_jacobian":
        numbers = state + 2 * N * K * W + N * K * M
    else:
        raise ValueError(f"kind must be one of {MEMORY_KINDS}, got {kind!r}")
    return numbers * int(itemsize)


_MEMORY_WHAT = {
    "hessian": "the exact Hessian",
    "gauss_newton": "the Gauss-Newton matrix",
    "last_layer": "the last layer's Hessian",
    "diagonal": "the Hessian's diagonal",
    "products": "the curvature products",
    "weight_jacobian": "the weight Jacobian",
}


def _check_memory(kind: str, params: Params, X: Array) -> None:
    """Refuse (or warn of) a call whose :func:`memory_estimate` exceeds the memory available (half of it).

    Only for NumPy arrays: other namespaces may hold their arrays elsewhere (a GPU).
    """
    if not (array_api_compat.is_numpy_array(X) and all(array_api_compat.is_numpy_array(p) for p in params)):
        return
    _check_data(params, X, None, None)
    D, M, K = param_shapes(params)
    floating = [a.dtype for a in (X, *params)]
    itemsize = 4 if all(d == np.float32 for d in floating) else 8
    N = X.shape[0]
    nbytes = memory_estimate(kind, N, D, M, K, itemsize)
    W = n_params(D, M, K)
    if kind in ("hessian", "gauss_newton"):
        parts = f"a {W} x {W} matrix, its blocks and the working arrays of up to {N} patterns"
        lower: tuple[str, ...] = ()
    elif kind == "last_layer":
        parts = f"a {(M + 1) * K} x {(M + 1) * K} matrix and the working arrays of {N} patterns"
        lower = ()
    else:
        parts = f"the working arrays of {N} patterns for a {D}-{M}-{K} network"
        lower = ("the number of rows of X",)
    check_memory(nbytes, f"{_MEMORY_WHAT[kind]} of a {D}-{M}-{K} network", lower, parts=parts, stacklevel=4)


# --------------------------------------------------------------------------
# Checking and the forward quantities every function shares
# --------------------------------------------------------------------------


def _check_data(params: Params, X: Array, T: Array | None, sample_weight: Array | None) -> None:
    D, _, K = param_shapes(params)
    if getattr(X, "ndim", None) != 2 or X.shape[1] != D:
        raise ValueError(f"X must have shape (N, {D}) to match W1; got {tuple(getattr(X, 'shape', ()))}")
    N = X.shape[0]
    if T is not None and (getattr(T, "ndim", None) != 2 or tuple(T.shape) != (N, K)):
        raise ValueError(f"T must have shape (N, K) = ({N}, {K}); got {tuple(getattr(T, 'shape', ()))}")
    if sample_weight is not None and (getattr(sample_weight, "ndim", None) != 1 or sample_weight.shape[0] != N):
        raise ValueError(
            f"sample_weight must have shape (N,) = ({N},); got {tuple(getattr(sample_weight, 'shape', ()))}"
        )


Alphas = tuple[float, float, float, float]


def _check_alpha(alpha: Decay) -> Alphas:
    """The four group decays of ``alpha`` (one number: the weights only)."""
    try:
        return decay_per_group(alpha)
    except ValueError as exc:
        raise ValueError(f"alpha must be a non-negative number or four (W1, b1, W2, b2), got {alpha!r}") from exc


class _State(NamedTuple):
    """What the forward pass leaves for the second derivatives, per pattern."""

    xp: Any
    params: Params  # cast to the working dtype
    X: Array  # (N, D)
    z: Array  # (N, M)  z_j = h(a_j)
    y: Array  # (N, K)  the outputs
    lam: Array | None  # (N, K)  sigmoid outputs: Lambda = diag(lam), lam = y (1 - y); None for softmax
    s: Array | None  # (N,)  sample weights, None for all ones
    delta2: Array | None  # (N, K)  s_n (y_k - t_k); None when no targets were given
    hp: Array  # (N, M)  h'(a_j)
    hpp: Array  # (N, M)  h''(a_j)


def _state(
    params: Params,
    X: Array,
    T: Array | None,
    sample_weight: Array | None,
    activation: str,
    need_targets: bool = False,
    output: str = "softmax",
) -> _State:
    """Validate, cast to the working dtype and run the forward pass once."""
    act: Activation = get_activation(activation)
    check_output(output)
    if T is None and need_targets:
        raise ValueError("T is required: the exact Hessian depends on the targets through delta = y - t")
    _check_data(params, X, T, sample_weight)
    xp, params, X, (T, s) = working_arrays(params, X, T, sample_weight)
    z, a2 = forward_pass(xp, params, X, act)
    y = xp.exp(log_outputs(xp, a2, output))  # (N, K)  through the log for stability
    # Sigmoid outputs are independent: Lambda_kk' = I_kk' y_k (1 - y_k) (docs/derivation.md).
    lam = y * (1 - y) if output == "sigmoid" else None
    delta2 = None
    if T is not None:
        delta2 = y - T  # (N, K)  delta_k = y_k - t_k for either output (docs/derivation.md)
        if s is not None:
            delta2 = s[:, None] * delta2
    return _State(xp, params, X, z, y, lam, s, delta2, act.h_prime(xp, z), act.h_second(xp, z))


def _weighted(st: _State, A: Array) -> Array:
    """``s_n * A[n, ...]``: a pattern's share of a sum over patterns."""
    if st.s is None:
        return A
    return st.s[(slice(None),) + (None,) * (A.ndim - 1)] * A


def _lambda_times(st: _State, U: Array) -> Array:
    """``Lambda_n @ U[n]`` for each pattern, with ``Lambda = diag(y) - y y^T``; U (N, K).

    For sigmoid outputs ``Lambda = diag(y (1 - y))``.
    """
    if st.lam is not None:
        return st.lam * U
    y = st.y
    return y * (U - st.xp.sum(y * U, axis=1, keepdims=True))


def _W2_lambda(st: _State) -> Array:
    """``(W2 Lambda_n)[j, k] = sum_k' w_kj Lambda_k'k`` per pattern, shape (N, M, K)."""
    xp, y, W2 = st.xp, st.y, st.params.W2
    if st.lam is not None:  # sigmoid outputs: (W2 Lambda)_jk = w_kj y_k (1 - y_k)
        return st.lam[:, None, :] * W2[None, :, :]
    Wy = y @ xp.permute_dims(W2, (1, 0))  # (N, M)  sum_k w_kj y_k
    # (W2 Lambda)_jk = w_kj y_k - (sum_k' w_k'j y_k') y_k
    return y[:, None, :] * (W2[None, :, :] - Wy[:, :, None])


def _with_ones(xp: Any, A: Array) -> Array:
    """``A`` with a column of ones appended: the bias unit x_0 = 1 or z_0 = 1."""
    ones = xp.ones((A.shape[0], 1), dtype=A.dtype, device=array_api_compat.device(A))
    return xp.concat([A, ones], axis=1)


def _decay_diagonal(xp: Any, alpha: Alphas, D: int, M: int, K: int, dtype: Any, device: Any) -> Array:
    """alpha_g on the flat positions of each group g: the Hessian of sum_g alpha_g ||w_g||^2 / 2."""
    sizes = (D * M, M, M * K, K)
    return xp.concat([xp.full((n,), a_g, dtype=dtype, device=device) for a_g, n in zip(alpha, sizes)])


def _add_to_diagonal(xp: Any, H: Array, d: Array) -> Array:
    """``H + diag(d)``; in place for NumPy (H is our own fresh array), else by broadcasting."""
    if array_api_compat.is_numpy_array(H):
        H[np.diag_indices(H.shape[0])] += d
        return H
    W = H.shape[0]
    eye = xp.eye(W, dtype=H.dtype, device=array_api_compat.device(H))
    return H + d[:, None] * eye


def _as_params(v: Params | Array, params: Params, xp: Any, dtype: Any) -> Params:
    """Accept a direction as Params or as a flat vector in flatten order, in the working namespace."""
    D, M, K = param_shapes(params)
    device = array_api_compat.device(params.W1)
    if isinstance(v, tuple):
        if len(v) != 4:
            raise ValueError("v given as a tuple must be a Params (W1, b1, W2, b2)")
        for name, vi, pi in zip(Params._fields, v, params):
            if tuple(vi.shape) != tuple(pi.shape):
                raise ValueError(
                    f"v.{name} must have the shape of params.{name}, {tuple(pi.shape)}; got {tuple(vi.shape)}"
                )
        v = Params(*(xp.asarray(vi, device=device) for vi in v))
    else:
        if getattr(v, "ndim", None) != 1 or v.shape[0] != n_params(D, M, K):
            raise ValueError(
                f"v must be a Params or a flat vector of length W = {n_params(D, M, K)} "
                f"for D={D}, M={M}, K={K}; got shape {tuple(getattr(v, 'shape', ()))}"
            )
        v = unflatten(xp.asarray(v, device=device), D, M, K)
    return Params(*(vi if vi.dtype == dtype else xp.astype(vi, dtype) for vi in v))


# --------------------------------------------------------------------------
# Jacobians
# --------------------------------------------------------------------------


def jacobian(params: Params, X: Array, *, activation: str = "tanh", output: str = "softmax") -> Array:
    """The Jacobian of the network outputs with respect to the inputs.

    .. math::

        J_{nki} = \\frac{\\partial y_k(x_n)}{\\partial x_i}
                = \\sum_j \\Big(\\sum_l \\Lambda_{kl}\\, w^{(2)}_{lj}\\Big)\\,
                  h'(a_j)\\, w^{(1)}_{ji}

    Parameters
    ----------
    params : Params
    X : array of shape (N, D)
    activation : {"tanh", "logistic", "relu", "identity"}, default "tanh"
    output : {"softmax", "sigmoid"}, default "softmax"
        The output nonlinearity (:data:`twolayer.network.OUTPUTS`); see the module notes.

    Returns
    -------
    array of shape (N, K, D)
        ``J[n, k, i]`` is :math:`\\partial y_k / \\partial x_i` at pattern ``n``.

    References
    ----------
    PRML §5.3.4 (with softmax outputs,
    :math:`\\partial y_k / \\partial a_l = \\Lambda_{kl}`).
    """
    st = _state(params, X, None, None, activation, output=output)
    xp = st.xp
    # Lambda W2^T = (W2 Lambda)^T because Lambda is symmetric.
    dy_da1 = xp.permute_dims(_W2_lambda(st) * st.hp[:, :, None], (0, 2, 1))  # (N, K, M)  dy_k/da_j
    return dy_da1 @ xp.permute_dims(st.params.W1, (1, 0))  # (N, K, D)  sum_j dy_k/da_j w_ji


def weight_jacobian(params: Params, X: Array, *, activation: str = "tanh") -> Array:
    """The Jacobian of the output activations with respect to every weight.

    .. math::

        \\frac{\\partial a_k}{\\partial w^{(1)}_{ji}} = w^{(2)}_{kj} h'(a_j) x_i, \\qquad
        \\frac{\\partial a_k}{\\partial w^{(2)}_{k'j}} = I_{kk'} z_j
        \\qquad (x_0 = z_0 = 1)

    This is :math:`B = \\partial a / \\partial w` of the linearised Laplace
    predictive and :math:`J_n` of the Gauss–Newton matrix. It holds
    ``N * K * W`` numbers; for large problems prefer the products.

    Parameters
    ----------
    params : Params
    X : array of shape (N, D)
    activation : {"tanh", "logistic", "relu", "identity"}, default "tanh"
    output : {"softmax", "sigmoid"}, default "softmax"
        The output nonlinearity (:data:`twolayer.network.OUTPUTS`); see the module notes.

    Returns
    -------
    array of shape (N, K, W)
        The last axis in :func:`twolayer.network.flatten` order.

    References
    ----------
    PRML §5.4.2 (the gradients :math:`\\nabla a_n` of the outer-product
    approximation) and §5.7.1 (the linearised predictive's
    :math:`\\mathbf{g}`).
    """
    _check_memory("weight_jacobian", params, X)
    st = _state(params, X, None, None, activation)
    xp = st.xp
    N, D = st.X.shape
    M, K = st.params.W2.shape
    Xb, zb = _with_ones(xp, st.X), _with_ones(xp, st.z)  # (N, D+1), (N, M+1)
    W2T_hp = xp.permute_dims(st.params.W2, (1, 0))[None, :, :] * st.hp[:, None, :]  # (N, K, M)
    first = Xb[:, None, :, None] * W2T_hp[:, :, None, :]  # (N, K, D+1, M)  w_kj h'(a_j) x_i
    eye_K = xp.eye(K, dtype=zb.dtype, device=array_api_compat.device(zb))
    second = zb[:, None, :, None] * eye_K[None, :, None, :]  # (N, K, M+1, K)  I_kk' z_j
    return xp.concat([xp.reshape(first, (N, K, (D + 1) * M)), xp.reshape(second, (N, K, (M + 1) * K))], axis=2)


# --------------------------------------------------------------------------
# The exact Hessian and the Gauss-Newton matrix, in closed form
# --------------------------------------------------------------------------


def _second_layer_terms(c: _State, zb: Array) -> tuple[Array, Array]:
    """One chunk's share of the second-layer block ``sum_n s zb_j zb_j' Lambda_kk'``.

    ``Lambda = diag(y) - y y^T`` splits it into a part diagonal in (k, k'),
    returned as ``s zb_j y_k zb_j'`` of shape ((M+1) K, M+1), and a rank-one part
    per pattern, ``s zb_j y_k zb_j' y_k'`` of shape ((M+1) K, (M+1) K).
    Sigmoid outputs have only the diagonal part, ``s zb_j y_k (1 - y_k) zb_j'``,
    and a zero rank-one part.
    """
    xp = c.xp
    n, K = c.y.shape
    diagonal = c.y if c.lam is None else c.lam
    U = xp.reshape(zb[:, :, None] * diagonal[:, None, :], (n, zb.shape[1] * K))  # zb_j Lambda_kk
    Us = _weighted(c, U)
    if c.lam is not None:
        width = zb.shape[1] * K
        outer = xp.zeros((width, width), dtype=U.dtype, device=array_api_compat.device(U))
        return outer, xp.permute_dims(Us, (1, 0)) @ zb
    return xp.permute_dims(Us, (1, 0)) @ U, xp.permute_dims(Us, (1, 0)) @ zb


def _second_layer_block(xp: Any, outer: Array, diag: Array, M: int, K: int) -> Array:
    """The ((M+1) K, (M+1) K) second-layer block from the sums of ``_second_layer_terms``."""
    eye_K = xp.eye(K, dtype=outer.dtype, device=array_api_compat.device(outer))
    diag = xp.reshape(diag, (M + 1, K, M + 1, 1)) * eye_K[None, :, None, :]
    return xp.reshape(diag, ((M + 1) * K, (M + 1) * K)) - outer


def _curvature_blocks(st: _State, exact: bool) -> Array:
    """Assemble the (W, W) Hessian (``exact``) or Gauss–Newton matrix, chunk by chunk.

    With ``Xb``, ``zb`` the inputs and hidden outputs with the bias unit
    appended, per pattern (docs/curvature.md, "Exact Hessian"):

    - first/first:  ``x_i x_i' B[j, j']`` with
      ``B = s h'_j h'_j' (W2 Lambda W2^T)_jj' + I_jj' h''_j sum_k w_kj delta_k``;
    - first/second: ``x_i zb_j' C[j, k] + I_jj' x_i h'_j delta_k`` with
      ``C = s h'_j (W2 Lambda)_jk``;
    - second/second: ``zb_j zb_j' s Lambda_kk'``.

    Each sum over patterns of such an outer product is one matrix product over
    the batch. The Gauss–Newton matrix drops the two terms with ``delta``.
    """
    xp, X, W2 = st.xp, st.X, st.params.W2
    N, D = X.shape
    M, K = W2.shape
    dtype, device = X.dtype, array_api_compat.device(X)
    W2T = xp.permute_dims(W2, (1, 0))
    # First/first block: both x_i x_i' and B[j, j'] are symmetric, so only
    # pairs i <= i' and j <= j' are summed (a quarter of the products) and the
    # rest is read back from them (_pairs).
    x_first, x_second, x_full = _pairs(xp, D + 1, device)
    m_first, m_second, m_full = _pairs(xp, M, device)
    H11_pairs = xp.zeros((x_first.shape[0], m_first.shape[0]), dtype=dtype, device=device)
    H12 = xp.zeros(((D + 1) * (M + 1), M * K), dtype=dtype, device=device)
    H12_delta = xp.zeros((D + 1, M * K), dtype=dtype, device=device)
    H22_outer = xp.zeros(((M + 1) * K, (M + 1) * K), dtype=dtype, device=device)
    H22_diag = xp.zeros(((M + 1) * K, M + 1), dtype=dtype, device=device)

    widest = max((D + 1) ** 2, M * M, (D + 1) * (M + 1), M * K, (M + 1) * K)
    step = max(1, _CHUNK_ELEMENTS // widest)
    for start in range(0, N, step):
        c = _chunk(st, start, min(start + step, N))
        n = c.X.shape[0]
        Xb, zb = _with_ones(xp, c.X), _with_ones(xp, c.z)  # (n, D+1), (n, M+1)

        C = _weighted(c, c.hp[:, :, None] * _W2_lambda(c))  # (n, M, K)  s h'_j (W2 Lambda)_jk
        B = (C @ W2T) * c.hp[:, None, :]  # (n, M, M)  s h'_j h'_j' (W2 Lambda W2^T)_jj'
        if exact:  # the two terms with delta: first/first and first/second
            assert c.delta2 is not None  # _state() required the targets
            back = c.delta2 @ W2T  # (n, M)  sum_k w_kj delta_k
            eye_M = xp.eye(M, dtype=dtype, device=device)
            B = B + (c.hpp * back)[:, :, None] * eye_M  # + I_jj' h''_j sum_k w_kj delta_k
            hd = xp.reshape(c.hp[:, :, None] * c.delta2[:, None, :], (n, M * K))  # h'_j delta_k
            H12_delta = H12_delta + xp.permute_dims(Xb, (1, 0)) @ hd  # x_i h'_j delta_k
        XX = xp.take(Xb, x_first, axis=1) * xp.take(Xb, x_second, axis=1)  # x_i x_i', i <= i'
        B = xp.reshape(B, (n, M * M))
        B = xp.take(B, m_first * M + m_second, axis=1)  # B[j, j'], j <= j'
        H11_pairs = H11_pairs + xp.permute_dims(XX, (1, 0)) @ B

        Xz = xp.reshape(Xb[:, :, None] * zb[:, None, :], (n, (D + 1) * (M + 1)))  # x_i zb_j'
        H12 = H12 + xp.permute_dims(Xz, (1, 0)) @ xp.reshape(C, (n, M * K))

        outer, diag = _second_layer_terms(c, zb)
        H22_outer, H22_diag = H22_outer + outer, H22_diag + diag

    W1n, W2n = (D + 1) * M, (M + 1) * K
    H12 = xp.reshape(xp.permute_dims(xp.reshape(H12, (D + 1, M + 1, M, K)), (0, 2, 1, 3)), (W1n, W2n))
    if exact:
        # I_jj' with j' running over M+1 second-layer inputs: the bias z_0 has none.
        eye_MM1 = xp.eye(M, M + 1, dtype=dtype, device=device)
        H12_delta = xp.reshape(H12_delta, (D + 1, M, 1, K)) * eye_MM1[None, :, :, None]
        H12 = H12 + xp.reshape(H12_delta, (W1n, W2n))
    H22 = _second_layer_block(xp, H22_outer, H22_diag, M, K)

    H = xp.empty((W1n + W2n, W1n + W2n), dtype=dtype, device=device)
    _unfold_first_block(xp, H, H11_pairs, x_full, m_full, D + 1, M)
    H[:W1n, W1n:] = H12
    H[W1n:, :W1n] = xp.permute_dims(H12, (1, 0))
    H[W1n:, W1n:] = H22
    return H


def _unfold_first_block(xp: Any, H: Array, pairs: Array, x_full: Array, m_full: Array, n_in: int, M: int) -> None:
    """Fill ``H[(i, j), (i', j')] = pairs[pair(i, i'), pair(j, j')]`` for the first layer."""
    W1n = n_in * M
    if array_api_compat.is_numpy_array(H):
        # One gather straight into a (D+1, M, D+1, M) strided view of H's block:
        # no (W1n, W1n) temporaries to permute and copy.
        s0, s1 = H.strides
        block = np.lib.stride_tricks.as_strided(
            H, shape=(n_in, M, n_in, M), strides=(M * s0, s0, M * s1, s1), writeable=True
        )
        px, pm = np.reshape(x_full, (n_in, n_in)), np.reshape(m_full, (M, M))
        block[...] = pairs[px[:, None, :, None], pm[None, :, None, :]]
        return
    full = xp.take(xp.take(pairs, x_full, axis=0), m_full, axis=1)  # (i i', j j')
    full = xp.permute_dims(xp.reshape(full, (n_in, n_in, M, M)), (0, 2, 1, 3))  # (i, j, i', j')
    H[:W1n, :W1n] = xp.reshape(full, (W1n, W1n))


def _pairs(xp: Any, n: int, device: Any) -> tuple[Array, Array, Array]:
    """Index pairs ``a <= b`` of ``range(n)``, and for every ``(a, b)`` in C order its pair.

    Returns ``first``, ``second`` (the pairs, length n(n+1)/2) and ``full``
    (length n*n) with ``(first[full[a*n + b]], second[full[a*n + b]]) ==
    (min(a, b), max(a, b))``.
    """
    first, second = np.triu_indices(n)
    position = np.empty((n, n), dtype=np.int64)
    position[first, second] = np.arange(first.size)
    position[second, first] = position[first, second]
    return tuple(xp.asarray(a, device=device) for a in (first, second, position.ravel()))


def _chunk(st: _State, start: int, stop: int) -> _State:
    """The patterns ``start:stop`` of a state."""

    def rows(a: Array | None) -> Array | None:
        return None if a is None else a[start:stop, ...]

    return st._replace(
        X=rows(st.X),
        z=rows(st.z),
        y=rows(st.y),
        lam=rows(st.lam),
        s=rows(st.s),
        delta2=rows(st.delta2),
        hp=rows(st.hp),
        hpp=rows(st.hpp),
    )


# --------------------------------------------------------------------------
# On a cluster: every quantity here is a sum over patterns
# --------------------------------------------------------------------------


def _block_term(
    X: np.ndarray, T: np.ndarray | None, s: np.ndarray | None, name: str, params: Params, kwargs: dict[str, Any]
) -> Any:
    """The function ``name`` of this module on one block of rows, without decay (added once, for the whole).

    Summed over slices of the block, so that a worker's temporaries are those of
    ``_block_slice_rows`` patterns however large the blocks of the data are
    (the per-pattern forward quantities of a whole block of a million rows
    would not fit beside it in a worker's memory).
    """
    fn = globals()[name]
    D, M, K = param_shapes(params)
    step = _block_slice_rows(D, M, K)
    total: Any = None
    for start in range(0, max(X.shape[0], 1), step):  # an empty block still gives its (zero) term
        rows = slice(start, start + step)
        s_rows = None if s is None else s[rows]
        if name == "last_layer_hessian":
            part = fn(params, X[rows], s_rows, **kwargs)
        else:
            part = fn(params, X[rows], None if T is None else T[rows], sample_weight=s_rows, **kwargs)
        part = flatten(part) if isinstance(part, Params) else part
        total = part if total is None else total + part
    return total


def _block_slice_rows(D: int, M: int, K: int) -> int:
    """Rows per slice of a block: about ``_CHUNK_ELEMENTS`` numbers of per-pattern quantities."""
    return max(1, _CHUNK_ELEMENTS // (D + 8 * M + 6 * K))


def _on_blocks(
    name: str, params: Params, X: Any, T: Any, sample_weight: Any, blocks: RowBlocks | None = None, **kwargs: Any
) -> Any:
    """:math:`\\sum_b` ``name(params, X_b, T_b, s_b, **kwargs)`` over the row blocks of Dask data, on the cluster.

    The per-block work is this module's own function on NumPy blocks; only the
    sum comes back (see :mod:`twolayer.cluster`). Its memory is checked here for
    the sum (a block's own temporaries are the workers').
    """
    params = Params(*(np.asarray(p) for p in params))
    D = param_shapes(params)[0]
    _check_memory(_MEMORY_KIND.get(name, "products"), params, np.empty((1, D), dtype=params.W1.dtype))
    if blocks is None:
        blocks = as_row_blocks(X, T, sample_weight, names=("X", "T", "sample_weight"))
    return blocks.map_sum(_block_term, name, params, kwargs)


def _with_decay(H: np.ndarray, params: Params, alpha: Decay) -> np.ndarray:
    """``H`` plus :math:`\\alpha_g` on the diagonal entries of each decayed group."""
    alphas = _check_alpha(alpha)
    if not any(alphas):
        return H
    D, M, K = param_shapes(Params(*(np.asarray(p) for p in params)))
    return _add_to_diagonal(np, H, _decay_diagonal(np, alphas, D, M, K, H.dtype, None))


def _product_on_blocks(
    name: str,
    params: Params,
    X: Any,
    T: Any,
    v: Params | Array,
    sample_weight: Any,
    activation: str,
    alpha: Decay,
    output: str,
    blocks: RowBlocks | None = None,
) -> Params:
    """A curvature-vector product over the blocks of Dask data, the decay added once."""
    params = Params(*(np.asarray(p) for p in params))
    v = _as_params(v, params, np, params.W1.dtype)
    flat = _on_blocks(name, params, X, T, sample_weight, blocks, v=v, activation=activation, output=output)
    D, M, K = param_shapes(params)
    return _decayed(unflatten(np.asarray(flat), D, M, K), v, _check_alpha(alpha))


_MEMORY_KIND = {
    "hessian": "hessian",
    "gauss_newton": "gauss_newton",
    "last_layer_hessian": "last_layer",
    "hessian_diagonal": "diagonal",
}


def _dense(
    params: Params,
    X: Array,
    T: Array | None,
    sample_weight: Array | None,
    activation: str,
    alpha: Decay,
    exact: bool,
    output: str = "softmax",
) -> Array:
    alphas = _check_alpha(alpha)
    _check_memory("hessian" if exact else "gauss_newton", params, X)
    st = _state(params, X, T, sample_weight, activation, need_targets=exact, output=output)
    H = _curvature_blocks(st, exact)
    if any(alphas):
        D, M, K = param_shapes(st.params)
        H = _add_to_diagonal(st.xp, H, _decay_diagonal(st.xp, alphas, D, M, K, H.dtype, array_api_compat.device(H)))
    return H


def hessian(
    params: Params,
    X: Array,
    T: Array,
    sample_weight: Array | None = None,
    *,
    activation: str = "tanh",
    alpha: Decay = 0.0,
    output: str = "softmax",
) -> Array:
    """The exact Hessian :math:`\\nabla\\nabla E` of the cross-entropy error.

    Assembled from PRML's three closed-form blocks (docs/curvature.md, "Exact
    Hessian"): both weights in the second layer, both in the first, one in
    each. Every block is a sum over patterns of outer products, computed as
    one matrix product over the batch (in chunks of patterns, so memory stays
    :math:`O(W^2)` plus a bounded temporary). No finite differences and no
    :math:`W` gradient passes.

    Parameters
    ----------
    params : Params
    X : array of shape (N, D)
    T : array of shape (N, K)
        Targets; each row sums to one (1-of-K codes or probability vectors).
    sample_weight : array of shape (N,), optional
        The weights :math:`s_n` multiplying each pattern's error.
    activation : {"tanh", "logistic", "relu", "identity"}, default "tanh"
    output : {"softmax", "sigmoid"}, default "softmax"
        The output nonlinearity (:data:`twolayer.network.OUTPUTS`); see the module notes.
        For ReLU, :math:`h'' = 0` almost everywhere is used.
    alpha : float, 4 floats or mapping, default 0.0
        Weight decay: adds :math:`\\alpha` on the diagonal entries of the
        weights ``W1`` and ``W2`` (the Hessian of
        :math:`\\tfrac{\\alpha}{2}\\lVert w \\rVert^2`, biases not penalised);
        four values (``W1``, ``b1``, ``W2``, ``b2``) add :math:`\\alpha_g` on the
        diagonal entries of each group (the grouped prior, PRML §5.5.1, eqs. 5.122–5.123).

    Returns
    -------
    array of shape (W, W)
        Symmetric, rows and columns in :func:`twolayer.network.flatten` order,
        ``W = (D + 1) M + (M + 1) K``. The data part has at least ``M + 1``
        zero eigenvalues (softmax's null directions) and may be indefinite.

    References
    ----------
    PRML §5.4.5; C. M. Bishop, "Exact
    calculation of the Hessian matrix for the multilayer perceptron", Neural
    Computation 4 (1992).
    """
    if is_dask(X):
        H = _on_blocks("hessian", params, X, T, sample_weight, activation=activation, output=output)
        return _with_decay(H, params, alpha)
    return _dense(params, X, T, sample_weight, activation, alpha, exact=True, output=output)


def last_layer_hessian(
    params: Params,
    X: Array,
    sample_weight: Array | None = None,
    *,
    activation: str = "tanh",
    output: str = "softmax",
) -> Array:
    """The Hessian of :math:`E` with respect to the second layer ``[W2; b2]`` alone.

    :math:`\\sum_n s_n \\tilde z_n \\tilde z_n^\\top \\otimes \\Lambda_n`, with
    :math:`\\tilde z = (z, 1)` and :math:`\\Lambda = \\operatorname{diag}(y) - y y^\\top`:
    the second/second block of :func:`hessian`, computed without the rest. The
    output activations are linear in these weights, so the exact Hessian and
    the Gauss–Newton matrix agree here, and no targets are needed.

    Parameters
    ----------
    params : Params
    X : array of shape (N, D)
    sample_weight : array of shape (N,), optional
    activation : str, default "tanh"

    Returns
    -------
    array of shape ((M + 1) K, (M + 1) K)
        Rows and columns in the order of ``[W2.ravel(), b2]``, the tail of
        :func:`twolayer.network.flatten`.

    References
    ----------
    PRML eq. 5.93 (the second-layer block); ``docs/curvature.md``, "Exact Hessian".
    """
    if is_dask(X):
        return _on_blocks("last_layer_hessian", params, X, None, sample_weight, activation=activation, output=output)
    _check_memory("last_layer", params, X)
    st = _state(params, X, None, sample_weight, activation, output=output)
    xp = st.xp
    N = st.X.shape[0]
    M, K = st.params.W2.shape
    dtype, device = st.X.dtype, array_api_compat.device(st.X)
    outer = xp.zeros(((M + 1) * K, (M + 1) * K), dtype=dtype, device=device)
    diag = xp.zeros(((M + 1) * K, M + 1), dtype=dtype, device=device)
    step = max(1, _CHUNK_ELEMENTS // ((M + 1) * K))
    for start in range(0, N, step):
        c = _chunk(st, start, min(start + step, N))
        o, d = _second_layer_terms(c, _with_ones(xp, c.z))
        outer, diag = outer + o, diag + d
    return _second_layer_block(xp, outer, diag, M, K)


def gauss_newton(
    params: Params,
    X: Array,
    T: Array | None = None,
    sample_weight: Array | None = None,
    *,
    activation: str = "tanh",
    alpha: Decay = 0.0,
    output: str = "softmax",
) -> Array:
    """The generalised Gauss–Newton matrix :math:`G = \\sum_n s_n J_n^\\top \\Lambda_n J_n`.

    :math:`J_n = \\partial a_n / \\partial w` is :func:`weight_jacobian`'s
    ``(K, W)`` slice and :math:`\\Lambda_n = \\operatorname{diag}(y_n) -
    y_n y_n^\\top` the Hessian of :math:`E_n` in the output activations.
    :math:`H = G + \\sum_n \\sum_k \\delta_{nk} \\nabla\\nabla a_{nk}`; ``G``
    is the exact Hessian with the two terms carrying :math:`\\delta_k` dropped.
    It is positive semi-definite and equals the Hessian when every output
    equals its target. Computed from the same closed-form blocks as
    :func:`hessian`, without forming ``J``.

    Parameters
    ----------
    params : Params
    X : array of shape (N, D)
    T : array of shape (N, K), optional
        Not needed (:math:`\\Lambda` does not depend on the targets when each
        target row sums to one); accepted and shape-checked so that
        ``gauss_newton`` and :func:`hessian` can be called alike.
    sample_weight : array of shape (N,), optional
    activation : {"tanh", "logistic", "relu", "identity"}, default "tanh"
    output : {"softmax", "sigmoid"}, default "softmax"
        The output nonlinearity (:data:`twolayer.network.OUTPUTS`); see the module notes.
    alpha : float, 4 floats or mapping, default 0.0
        Weight decay on ``W1`` and ``W2``, or one per group, as in :func:`hessian`.

    Returns
    -------
    array of shape (W, W)
        Symmetric positive semi-definite, in :func:`twolayer.network.flatten`
        order.

    References
    ----------
    PRML §5.4.2 (the outer-product approximation);
    N. N. Schraudolph, "Fast curvature matrix-vector products for
    second-order gradient descent", Neural Computation 14 (2002).
    """
    if is_dask(X):
        G = _on_blocks("gauss_newton", params, X, T, sample_weight, activation=activation, output=output)
        return _with_decay(G, params, alpha)
    return _dense(params, X, T, sample_weight, activation, alpha, exact=False, output=output)


# --------------------------------------------------------------------------
# Fast products: Pearlmutter's R operator
# --------------------------------------------------------------------------


def _r_pass(st: _State, v: Params, exact: bool) -> Params:
    """``H v`` (``exact``) or ``G v`` by one R-forward and one R-backward pass.

    Equations from docs/curvature.md, "Fast multiplication by the Hessian". For
    Gauss–Newton the h'' term, the ``v2 delta`` term and the ``delta R{z}``
    term are dropped.
    """
    xp, X, z = st.xp, st.X, st.z
    W2 = st.params.W2
    V1, c1, V2, c2 = v
    W2T, V2T = xp.permute_dims(W2, (1, 0)), xp.permute_dims(V2, (1, 0))
    Ra1 = X @ V1 + c1  # (N, M)  R{a_j} = sum_i v_ji x_i
    Rz = st.hp * Ra1  # (N, M)  R{z_j} = h'(a_j) R{a_j}
    Ra2 = Rz @ W2 + z @ V2 + c2  # (N, K)  R{a_k} = sum_j w_kj R{z_j} + sum_j v_kj z_j
    Rdelta2 = _weighted(st, _lambda_times(st, Ra2))  # (N, K)  R{delta_k} = s (Lambda R{a})_k
    back = Rdelta2 @ W2T  # (N, M)  sum_k w_kj R{delta_k}
    if exact:
        delta2 = st.delta2
        # R{delta_j} = h'' R{a_j} sum_k w_kj delta_k + h' sum_k v_kj delta_k + h' sum_k w_kj R{delta_k}
        Rdelta1 = st.hpp * Ra1 * (delta2 @ W2T) + st.hp * (delta2 @ V2T + back)
        RgW2 = xp.permute_dims(z, (1, 0)) @ Rdelta2 + xp.permute_dims(Rz, (1, 0)) @ delta2
    else:
        Rdelta1 = st.hp * back
        RgW2 = xp.permute_dims(z, (1, 0)) @ Rdelta2  # R{dE/dw_kj} = R{delta_k} z_j (+ delta_k R{z_j})
    Rgb2 = xp.sum(Rdelta2, axis=0)  # (K,)  z_0 = 1, R{z_0} = 0
    RgW1 = xp.permute_dims(X, (1, 0)) @ Rdelta1  # (D, M)  R{dE/dw_ji} = R{delta_j} x_i
    Rgb1 = xp.sum(Rdelta1, axis=0)  # (M,)
    return Params(RgW1, Rgb1, RgW2, Rgb2)


def _decayed(product: Params, v: Params, alpha: Alphas) -> Params:
    """``product + alpha_g v_g`` on every decayed group g."""
    return Params(*(p if not a_g else p + a_g * v_g for p, v_g, a_g in zip(product, v, alpha)))


def hessian_vector_product(
    params: Params,
    X: Array,
    T: Array,
    v: Params | Array,
    sample_weight: Array | None = None,
    *,
    activation: str = "tanh",
    alpha: Decay = 0.0,
    output: str = "softmax",
) -> Params:
    """The product :math:`H v` of the exact Hessian with a vector, by the R operator.

    Pearlmutter's :math:`\\mathcal{R}\\{\\cdot\\} = v^\\top\\nabla` applied to
    the forward and backward passes: about twice the cost of one gradient
    evaluation, memory :math:`O(N(M + K) + W)`, no :math:`W \\times W` matrix.

    Parameters
    ----------
    params : Params
    X : array of shape (N, D)
    T : array of shape (N, K)
    v : Params or array of shape (W,)
        The direction: either in the layout of ``params`` or as a flat vector
        in :func:`twolayer.network.flatten` order.
    sample_weight : array of shape (N,), optional
    activation : {"tanh", "logistic", "relu", "identity"}, default "tanh"
    output : {"softmax", "sigmoid"}, default "softmax"
        The output nonlinearity (:data:`twolayer.network.OUTPUTS`); see the module notes.
    alpha : float, 4 floats or mapping, default 0.0
        Weight decay on ``W1`` and ``W2``, or one per group, as in :func:`hessian`.

    Returns
    -------
    Params
        :math:`H v` in the layout of ``params`` (whatever the form of ``v``;
        :func:`twolayer.network.flatten` gives the flat vector).

    References
    ----------
    PRML §5.4.6; B. A. Pearlmutter, "Fast exact
    multiplication by the Hessian", Neural Computation 6 (1994).
    """
    if is_dask(X):
        return _product_on_blocks("hessian_vector_product", params, X, T, v, sample_weight, activation, alpha, output)
    alphas = _check_alpha(alpha)
    _check_memory("products", params, X)
    st = _state(params, X, T, sample_weight, activation, need_targets=True, output=output)
    v = _as_params(v, st.params, st.xp, st.X.dtype)
    return _decayed(_r_pass(st, v, exact=True), v, alphas)


def gauss_newton_vector_product(
    params: Params,
    X: Array,
    T: Array | None,
    v: Params | Array,
    sample_weight: Array | None = None,
    *,
    activation: str = "tanh",
    alpha: Decay = 0.0,
    output: str = "softmax",
) -> Params:
    """The product :math:`G v` of the Gauss–Newton matrix with a vector.

    :math:`J_n v` by the R-forward pass, :math:`\\Lambda_n` on the result,
    :math:`J_n^\\top` by backpropagation (the R pass of
    :func:`hessian_vector_product` without its three :math:`\\delta` terms).

    Parameters
    ----------
    params : Params
    X : array of shape (N, D)
    T : array of shape (N, K) or None
        Not needed, as for :func:`gauss_newton`; shape-checked when given.
    v : Params or array of shape (W,)
        As for :func:`hessian_vector_product`.
    sample_weight : array of shape (N,), optional
    activation : {"tanh", "logistic", "relu", "identity"}, default "tanh"
    output : {"softmax", "sigmoid"}, default "softmax"
        The output nonlinearity (:data:`twolayer.network.OUTPUTS`); see the module notes.
    alpha : float, 4 floats or mapping, default 0.0
        Weight decay on ``W1`` and ``W2``, or one per group, as in :func:`hessian`.

    Returns
    -------
    Params
        :math:`G v` in the layout of ``params``.

    References
    ----------
    PRML §5.4.2 and §5.4.6; N. N. Schraudolph, Neural Computation 14 (2002).
    """
    if is_dask(X):
        return _product_on_blocks(
            "gauss_newton_vector_product", params, X, T, v, sample_weight, activation, alpha, output
        )
    alphas = _check_alpha(alpha)
    _check_memory("products", params, X)
    st = _state(params, X, T, sample_weight, activation, output=output)
    v = _as_params(v, st.params, st.xp, st.X.dtype)
    return _decayed(_r_pass(st, v, exact=False), v, alphas)


# --------------------------------------------------------------------------
# The diagonal
# --------------------------------------------------------------------------


def hessian_diagonal(
    params: Params,
    X: Array,
    T: Array | None,
    sample_weight: Array | None = None,
    *,
    approximation: str | None = None,
    activation: str = "tanh",
    alpha: Decay = 0.0,
    output: str = "softmax",
) -> Params:
    """The diagonal of the Hessian: exact, Becker and LeCun's, or the Gauss–Newton matrix's.

    Per pattern (docs/curvature.md, "Diagonal"):

    .. math::

        \\frac{\\partial^2 E_n}{\\partial (w^{(2)}_{kj})^2} = z_j^2\\, y_k (1 - y_k), \\qquad
        \\frac{\\partial^2 E_n}{\\partial (w^{(1)}_{ji})^2} = x_i^2 \\Big[ h'(a_j)^2
        \\sum_{k,k'} w^{(2)}_{kj} w^{(2)}_{k'j} \\Lambda_{kk'}
        + h''(a_j) \\sum_k w^{(2)}_{kj} \\delta_k \\Big]

    Becker and LeCun keep only :math:`k = k'` in the double sum; the
    Gauss–Newton diagonal, :math:`\\operatorname{diag}(G)` of
    :func:`gauss_newton`, drops the :math:`h''` term (and needs no targets).
    The second-layer entries are exact either way. Cost: a few matrix products
    of the size of one gradient evaluation.

    Parameters
    ----------
    params : Params
    X : array of shape (N, D)
    T : array of shape (N, K), or None with ``approximation="gauss-newton"``
    sample_weight : array of shape (N,), optional
    approximation : {None, "becker-lecun", "gauss-newton"}, default None
        ``None`` for the exact diagonal.
    activation : {"tanh", "logistic", "relu", "identity"}, default "tanh"
    output : {"softmax", "sigmoid"}, default "softmax"
        The output nonlinearity (:data:`twolayer.network.OUTPUTS`); see the module notes.
    alpha : float, 4 floats or mapping, default 0.0
        Weight decay: adds :math:`\\alpha` to the entries of ``W1`` and ``W2``,
        or :math:`\\alpha_g` to the entries of each group, as in :func:`hessian`.

    Returns
    -------
    Params
        :math:`\\partial^2 E / \\partial w^2` for every weight, in the layout of
        ``params``.

    References
    ----------
    PRML §5.4.1; S. Becker and Y. LeCun, "Improving the convergence
    of back-propagation learning with second order methods", Proc. 1988
    Connectionist Models Summer School (1989).
    """
    if is_dask(X):
        flat = _on_blocks(
            "hessian_diagonal",
            params,
            X,
            T,
            sample_weight,
            activation=activation,
            approximation=approximation,
            output=output,
        )
        D, M, K = param_shapes(Params(*(np.asarray(p) for p in params)))
        diag = unflatten(np.asarray(flat), D, M, K)
        return Params(*(d if not a_g else d + a_g for d, a_g in zip(diag, _check_alpha(alpha))))
    if approximation not in (None, "becker-lecun", "gauss-newton"):
        raise ValueError(f"approximation must be None, 'becker-lecun' or 'gauss-newton', got {approximation!r}")
    alphas = _check_alpha(alpha)
    gauss_newton = approximation == "gauss-newton"
    _check_memory("diagonal", params, X)
    st = _state(params, X, T, sample_weight, activation, need_targets=not gauss_newton, output=output)
    xp, X, z, y, W2 = st.xp, st.X, st.z, st.y, st.params.W2
    W2T = xp.permute_dims(W2, (1, 0))
    W2T_sq = W2T * W2T  # (K, M)  w_kj^2
    lam_diag = y * (1 - y)  # (N, K)  Lambda_kk = y_k (1 - y_k), for either output
    if approximation == "becker-lecun" or st.lam is not None:  # sigmoid: Lambda is diagonal, k = k' is exact
        quad = lam_diag @ W2T_sq  # (N, M)  only k = k'
    else:
        Wy = y @ W2T  # (N, M)
        quad = y @ W2T_sq - Wy * Wy  # (N, M)  sum_kk' w_kj w_k'j Lambda_kk'
    # d2E_n/da_j^2 on the diagonal: h'^2 (W2 Lambda W2^T)_jj s + h'' sum_k w_kj delta_k
    d2a1 = _weighted(st, st.hp * st.hp * quad)  # (N, M)
    if not gauss_newton:
        assert st.delta2 is not None  # _state() required the targets
        d2a1 = d2a1 + st.hpp * (st.delta2 @ W2T)
    d2a2 = _weighted(st, lam_diag)  # (N, K)
    diag = Params(
        xp.permute_dims(X * X, (1, 0)) @ d2a1,  # (D, M)  x_i^2 d2E/da_j^2
        xp.sum(d2a1, axis=0),  # (M,)  x_0 = 1
        xp.permute_dims(z * z, (1, 0)) @ d2a2,  # (M, K)  z_j^2 y_k (1 - y_k)
        xp.sum(d2a2, axis=0),  # (K,)  z_0 = 1
    )
    return Params(*(d if not a_g else d + a_g for d, a_g in zip(diag, alphas)))


# --------------------------------------------------------------------------
# SciPy linear operators
# --------------------------------------------------------------------------


def _operator(
    params: Params,
    X: Array,
    T: Array | None,
    sample_weight: Array | None,
    activation: str,
    alpha: Decay,
    exact: bool,
    output: str = "softmax",
) -> LinearOperator:
    alphas = _check_alpha(alpha)
    params = Params(*(np.asarray(p) for p in params))
    if is_dask(X):  # every product a sum over the cluster's blocks, held there once
        return _operator_on_blocks(params, X, T, sample_weight, activation, alpha, exact, output)
    X = np.asarray(X)
    T = None if T is None else np.asarray(T)
    sample_weight = None if sample_weight is None else np.asarray(sample_weight)
    # The forward quantities do not depend on v: compute them once, so each
    # product costs only the R-forward and R-backward passes.
    _check_memory("products", params, X)
    st = _state(params, X, T, sample_weight, activation, need_targets=exact, output=output)
    D, M, K = param_shapes(st.params)
    W = n_params(D, M, K)
    dtype = st.X.dtype

    def matvec(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=dtype).reshape(W)  # LinearOperator may pass (W, 1)
        v = unflatten(x, D, M, K)
        return flatten(_decayed(_r_pass(st, v, exact), v, alphas))

    return LinearOperator((W, W), matvec=matvec, rmatvec=matvec, dtype=dtype)


def _operator_on_blocks(
    params: Params,
    X: Any,
    T: Any,
    sample_weight: Any,
    activation: str,
    alpha: Decay,
    exact: bool,
    output: str,
) -> LinearOperator:
    blocks = as_row_blocks(X, T, sample_weight, names=("X", "T", "sample_weight"))
    D, M, K = param_shapes(params)
    W = n_params(D, M, K)
    dtype = params.W1.dtype
    name = "hessian_vector_product" if exact else "gauss_newton_vector_product"

    def matvec(x: np.ndarray) -> np.ndarray:
        v = unflatten(np.asarray(x, dtype=dtype).reshape(W), D, M, K)
        return flatten(_product_on_blocks(name, params, None, None, v, None, activation, alpha, output, blocks))

    return LinearOperator((W, W), matvec=matvec, rmatvec=matvec, dtype=dtype)


def hessian_operator(
    params: Params,
    X: Array,
    T: Array,
    sample_weight: Array | None = None,
    *,
    activation: str = "tanh",
    alpha: Decay = 0.0,
    output: str = "softmax",
) -> LinearOperator:
    """The exact Hessian as a SciPy ``LinearOperator`` over the flat parameters.

    Each product is one :math:`\\mathcal{R}` pass
    (:func:`hessian_vector_product`) on forward quantities computed once when
    the operator is built; no :math:`W \\times W` matrix is ever formed, so
    ``scipy.sparse.linalg.eigsh`` (Lanczos), ``cg`` or ``minres`` work on
    networks whose Hessian would not fit in memory.

    Parameters
    ----------
    params, X, T, sample_weight, activation, alpha, output
        As for :func:`hessian`; NumPy arrays (SciPy operators are NumPy only).

    Returns
    -------
    scipy.sparse.linalg.LinearOperator
        Shape ``(W, W)``, symmetric (``rmatvec`` is ``matvec``), dtype the
        working dtype of the inputs; acts on vectors in
        :func:`twolayer.network.flatten` order.

    References
    ----------
    PRML §5.4.6; B. A. Pearlmutter, Neural Computation 6 (1994).
    """
    return _operator(params, X, T, sample_weight, activation, alpha, exact=True, output=output)


def gauss_newton_operator(
    params: Params,
    X: Array,
    T: Array | None = None,
    sample_weight: Array | None = None,
    *,
    activation: str = "tanh",
    alpha: Decay = 0.0,
    output: str = "softmax",
) -> LinearOperator:
    """The Gauss–Newton matrix as a SciPy ``LinearOperator`` over the flat parameters.

    As :func:`hessian_operator`, with :func:`gauss_newton_vector_product`'s
    pass: symmetric positive semi-definite (definite for ``alpha > 0`` up to
    the unpenalised biases), suitable for ``cg``.

    Parameters
    ----------
    params, X, T, sample_weight, activation, alpha, output
        As for :func:`gauss_newton`; NumPy arrays.

    Returns
    -------
    scipy.sparse.linalg.LinearOperator
        Shape ``(W, W)``, symmetric, dtype the working dtype of the inputs.

    References
    ----------
    PRML §5.4.2; N. N. Schraudolph, Neural Computation 14 (2002).
    """
    return _operator(params, X, T, sample_weight, activation, alpha, exact=False, output=output)
