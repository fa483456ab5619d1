""":class:`~twolayer.classifier.TwoLayerClassifier` on Dask collections: the data as blocks of a cluster.

``fit`` on a Dask array, dataframe or series checks and encodes the data as
it does in memory, but block by block on the workers: the classes are the
distinct labels found there, each block's labels become class indices
:math:`k_n` there, the pattern weights :math:`\\bar w_n = s_n N / S` are
computed there (:math:`S` and the class totals are sums over the blocks),
and a pass over the blocks names the first non-finite feature by its block
and row. The trainers then read a :class:`~twolayer.cluster.RowBlocks`
(:mod:`twolayer.training.blocked`). Prediction on a Dask array is a lazy Dask
array of the same blocks of rows (``map_blocks``), the estimator sent to the
workers once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.utils.class_weight import compute_class_weight

from twolayer import cluster
from twolayer.errors import DataError, NonFiniteInput
from twolayer.training import optim

if TYPE_CHECKING:
    from twolayer.classifier.classifier import TwoLayerClassifier

__all__ = ["Prepared", "class_weights", "lazy_predict", "prepare"]


def _class_index(labels: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Per block: the class index :math:`k_n` of each label."""
    return np.searchsorted(classes, labels).astype(np.intp)


def _survey(X: np.ndarray, k: np.ndarray, s: np.ndarray | None, K: int, multilabel: bool) -> tuple[Any, ...]:
    """Per block, in one pass: its first non-finite feature, and per class the count and the sum, least
    and largest of the sample weights (for multilabel targets, one "class": the whole block)."""
    bad = cluster.first_bad_row(X)
    group = np.zeros(X.shape[0], dtype=np.intp) if multilabel else np.asarray(k, dtype=np.intp)
    G = 1 if multilabel else K
    counts = np.bincount(group, minlength=G).astype(np.float64)
    weights = np.ones(X.shape[0]) if s is None else np.asarray(s, dtype=np.float64)
    sums = np.bincount(group, weights=weights, minlength=G)
    low, high = np.full(G, np.inf), np.full(G, -np.inf)
    np.minimum.at(low, group, weights)
    np.maximum.at(high, group, weights)
    return bad, counts, sums, low, high


def _times_class_weight(s: np.ndarray, k: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per block: :math:`s_n` times the weight of the pattern's class."""
    return s * weights[k]


class Prepared:
    """The training data as a cluster's blocks, and what the estimator learned on the way.

    Attributes
    ----------
    data : TrainingData
        ``X`` is a :class:`~twolayer.cluster.RowBlocks` of ``(X, k, w)``.
    class_totals : ndarray of shape (K,) or None
        The pattern weight of each class (None for multilabel targets).
    dtype : numpy dtype
        The working dtype.
    n_features : int
    feature_names : list of str or None
    counts : ndarray of shape (K,) or None
        The number of patterns of each class (None for multilabel targets).
    """

    def __init__(
        self,
        data: optim.TrainingData,
        class_totals: np.ndarray | None,
        dtype: np.dtype[Any],
        n_features: int,
        feature_names: list[str] | None,
        counts: np.ndarray | None = None,
    ) -> None:
        self.data, self.class_totals, self.dtype = data, class_totals, dtype
        self.n_features, self.feature_names, self.counts = n_features, feature_names, counts


def _as_dask_array(x: Any, name: str) -> tuple[Any, list[str] | None]:
    import dask.array as da

    if isinstance(x, da.Array):
        return x, None
    if hasattr(x, "columns") and getattr(x, "ndim", 2) == 2:  # a dataframe (a Dask series has .columns too)
        # pandas' tests, not NumPy's: np.issubdtype raises TypeError on pandas' own dtypes ("string", "category")
        from pandas.api.types import is_bool_dtype, is_numeric_dtype

        names = [str(c) for c in x.columns]
        bad = [str(c) for c, t in x.dtypes.items() if not (is_numeric_dtype(t) or is_bool_dtype(t))]
        if bad:
            raise DataError(
                f"{name} column {bad[0]!r} is not numeric ({x.dtypes[bad[0]]}): encode text columns before "
                "fitting on a Dask dataframe, or read the files with the twolayer command line"
            )
        return cluster.frame_to_array(x), names
    if hasattr(x, "to_dask_array"):  # a series
        return cluster.frame_to_array(x), None
    return da.asarray(np.asarray(x)), None


def prepare(
    model: TwoLayerClassifier, X: Any, y: Any, sample_weight: Any, *, dtype: Any = None, reset: bool = True
) -> Prepared:
    """Check and encode a Dask ``X`` and ``y`` on the cluster; set ``classes_`` when ``reset``.

    Parameters
    ----------
    model : TwoLayerClassifier
        Its ``class_weight``, ``alpha`` and (unless ``reset``) ``classes_`` are read.
    X : Dask array or dataframe of shape (N, D)
    y : Dask array or series of shape (N,), or (N, K) of 0/1 for multilabel
    sample_weight : Dask or NumPy array of shape (N,), optional
    dtype : numpy dtype, optional
        The working dtype (a warm start's); float32 data otherwise train in float32, all else in float64.
    reset : bool
        Set ``classes_`` (and ``out_activation_``) from ``y``.

    Returns
    -------
    Prepared

    Raises
    ------
    DataError
        For rows that do not match, text columns, labels outside ``classes_``, fewer than 2 classes.
    NonFiniteInput
        Naming the block, row and column of the first NaN or infinite feature.
    """
    import dask.array as da

    Xd, names = _as_dask_array(X, "X")
    yd, _ = _as_dask_array(y, "y")
    if Xd.ndim != 2:
        raise DataError(f"X must be 2-D (patterns by features), got a Dask array of shape {Xd.shape}")
    if dtype is None:
        dtype = np.float32 if Xd.dtype == np.float32 else np.float64
    dtype = np.dtype(dtype)
    if any(np.isnan(c) for c in Xd.chunks[0]):
        Xd = Xd.compute_chunk_sizes()
    Xd = Xd.astype(dtype).rechunk({1: -1})
    if any(np.isnan(c) for c in yd.chunks[0]):
        yd = yd.compute_chunk_sizes()
    if yd.shape[0] != Xd.shape[0]:
        raise DataError(f"X has {Xd.shape[0]} rows but y has {yd.shape[0]}: they must describe the same patterns")
    yd = yd.rechunk((Xd.chunks[0], *((-1,) * (yd.ndim - 1))))  # the blocks of X, aligned
    multilabel = yd.ndim == 2 and yd.shape[1] != 1
    if yd.ndim == 2 and not multilabel:
        yd = yd[:, 0]
    if multilabel:
        if model.class_weight is not None:
            raise ValueError("class_weight is not supported for multilabel y (an indicator matrix); use sample_weight")
        K = int(yd.shape[1])
        bad = da.any((yd != 0) & (yd != 1)).compute()
        if bad:
            raise DataError("a 2-D y must hold only 0 and 1 (one column per label): a multilabel indicator matrix")
        if reset:
            model.classes_ = np.arange(K)
            model.out_activation_ = "logistic"
        elif K != len(model.classes_):
            raise DataError(f"y has {K} labels (columns) but the earlier fit had {len(model.classes_)}")
        k = yd.astype(dtype)
    else:
        labels = np.asarray(da.unique(yd).compute())
        if reset:
            if labels.shape[0] < 2:
                raise DataError(f"{type(model).__name__} needs samples of at least 2 classes; got {labels.shape[0]}")
            model.classes_ = labels
            model.out_activation_ = "softmax"
        unseen = np.setdiff1d(labels, model.classes_)
        if unseen.size:
            raise DataError(f"y contains labels {unseen!r} not among classes_ {model.classes_!r}")
        k = yd.map_blocks(_class_index, model.classes_, dtype=np.intp)
    K = len(model.classes_)
    s = None
    if sample_weight is not None:
        s = sample_weight if cluster.is_dask(sample_weight) else da.from_array(np.asarray(sample_weight, np.float64))
        s = _as_dask_array(s, "sample_weight")[0].astype(np.float64)
        if s.ndim != 1 or s.shape[0] != Xd.shape[0]:
            raise DataError(f"sample_weight must have shape ({Xd.shape[0]},), got {s.shape}")
        s = s.rechunk((Xd.chunks[0],))
        if bool(da.any(~da.isfinite(s) | (s < 0)).compute()):
            raise DataError("sample_weight must hold finite, non-negative numbers")
    names3 = ("X", "y", "sample_weight")
    # One pass over the source (not held): the checks and the sums that the weights need.
    survey = cluster.as_row_blocks(Xd, k, s, names=names3, persist=False).map_each(_survey, K, multilabel)
    offsets = np.concatenate([[0], np.cumsum([part[1].sum() for part in survey])]).astype(np.int64)
    for b, part in enumerate(survey):
        if part[0] is not None:
            row, column, is_nan = part[0]
            raise NonFiniteInput(
                f"Input X contains {'NaN' if is_nan else 'infinity'} in block {b} at its row {row} (row "
                f"{int(offsets[b]) + row} of the whole), column {column}: every feature must be finite"
            )
    counts, sums = sum(p[1] for p in survey), sum(p[2] for p in survey)
    low = np.min([p[3] for p in survey], axis=0)
    high = np.max([p[4] for p in survey], axis=0)
    N = int(np.sum(counts))
    by_class = np.ones_like(sums)
    if not multilabel and model.class_weight is not None:
        by_class = class_weights(model, counts)
        s = s if s is not None else da.ones(N, chunks=(Xd.chunks[0],))
        s = da.map_blocks(_times_class_weight, s, k, by_class, dtype=np.float64)
    totals = by_class * sums  # the pattern weight of each class
    S = float(np.sum(totals))
    class_totals = None if multilabel else totals
    if not S > 0:
        raise DataError("the sample weights (times the class weights) are all zero; at least one must be positive")
    present = counts > 0
    equal = s is None or float(np.min((by_class * low)[present])) == float(np.max((by_class * high)[present]))
    # Weights rescaled to mean one, as in memory; equal weights are exactly the unweighted problem.
    w = None if equal or s is None else (s * (N / S)).astype(dtype)
    blocks = cluster.as_row_blocks(Xd, k, w, names=names3)
    data = optim.TrainingData(
        X=blocks, k=np.empty(0, dtype=np.intp), w=None, lam=float(model.alpha) / S, output=model._output
    )
    return Prepared(data, class_totals, dtype, int(Xd.shape[1]), names, None if multilabel else counts)


def class_weights(model: TwoLayerClassifier, counts: np.ndarray) -> np.ndarray:
    """``class_weight`` as one weight per class: a dict's values, or ``balanced`` from the class counts."""
    K = len(model.classes_)
    if model.class_weight == "balanced":
        N = float(np.sum(counts))
        with np.errstate(divide="ignore"):
            return np.where(counts > 0, N / (K * np.maximum(counts, 1e-300)), 1.0)
    # a dict: scikit-learn's own rules (labels must be classes), on a stand-in y with every class once
    return compute_class_weight(model.class_weight, classes=model.classes_, y=model.classes_)


def _predict_block(X: np.ndarray, model: Any, method: str, names: list[str] | None = None) -> np.ndarray:
    if names is not None:  # a dataframe's block: its column names go with it, for scikit-learn's check of them
        import pandas as pd

        X = pd.DataFrame(X, columns=names, copy=False)
    return np.asarray(getattr(model, method)(X))


def lazy_predict(model: Any, X: Any, method: str) -> Any:
    """``model.<method>`` of every block of a Dask ``X``, as a lazy Dask array of its blocks of rows.

    The fitted estimator goes to the workers once (one key of the graph); a
    block's result has one row per pattern: ``predict`` gives labels (or the
    0/1 rows of a multilabel network), the others one column per class.
    """
    import dask
    import dask.array as da

    Xd, names = _as_dask_array(X, "X")
    if Xd.ndim == 2:
        Xd = Xd.rechunk({1: -1})
    shared = dask.delayed(model, pure=True)
    K = len(model.classes_)
    one_column = method == "predict" and getattr(model, "_output", "softmax") == "softmax"
    if method == "decision_function" and K == 2 and getattr(model, "_output", "softmax") == "softmax":
        one_column = True
    if one_column:
        dtype = model.classes_.dtype if method == "predict" else np.float64
        return da.map_blocks(
            _predict_block, Xd, shared, method, names, drop_axis=1, dtype=dtype, meta=np.empty(0, dtype)
        )
    dtype = np.int64 if method == "predict" else np.float64
    return da.map_blocks(
        _predict_block,
        Xd,
        shared,
        method,
        names,
        chunks=(Xd.chunks[0], (K,)),
        dtype=dtype,
        meta=np.empty((0, 0), dtype),
    )
