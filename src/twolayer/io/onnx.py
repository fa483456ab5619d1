"""Export to ONNX: a fitted network, its scaler and a model file's column encoding as one graph.

:func:`to_onnx` builds the graph with the ``onnx`` package (``onnx.helper``), for serving with
onnxruntime or anything else that runs ONNX. It follows the conventions of a classifier converted
by skl2onnx (without its ZipMap): one input ``X`` of shape ``(N, D)``, and two outputs, ``label``
(``(N,)``, int64 or string, as the classes are) and ``probabilities`` (``(N, K)``, columns in the
order of ``classes_``). :func:`register_skl2onnx` teaches skl2onnx itself to convert the two
estimators, so that ``skl2onnx.to_onnx`` converts a pipeline with other scikit-learn steps.

What exports:

* a fitted :class:`~twolayer.classifier.TwoLayerClassifier`, and a pipeline of a
  ``StandardScaler`` and one (what :func:`twolayer.io.modelfile.read` gives): the network's
  softmax probabilities, as ``predict_proba`` computes them;
* a :class:`~twolayer.bayes.BayesianTwoLayerClassifier`: by default its **MAP network's**
  probabilities (``predict_proba_map``), not the moderated predictive of its ``predict_proba``.
  With ``predictive="probit"`` the graph computes the moderated predictive's probit
  approximation (the estimator's ``method="probit"``): the linearised Gaussian over the output
  activations, :math:`\\Sigma_n = B_n A^{-1} B_n^\\top` with the weight Jacobian :math:`B_n`
  built in the graph and :math:`A^{-1}` a constant of it, then the pairwise probit moderation.
  The Monte Carlo predictive (``method="mc"``) is not a fixed graph of ONNX operators (its draws
  go through an eigendecomposition of each :math:`\\Sigma_n`) and is not exported;
* a model file (:class:`~twolayer.io.models.ModelFile`, or its path) trained from a table with
  text columns or missing cells, which stores a :class:`~twolayer.io.encoding.FeatureEncoding`:
  the graph then takes the table's columns, one input each, named as the columns and of shape
  ``(N, 1)``: a float tensor for a numeric column (a boolean one as 0 and 1; a missing cell is
  NaN), a string tensor for a text one (the cell as twolayer reads it, surrounding spaces
  removed; an empty string, or one of the words ``twolayer.io.tables.MISSING_VALUES`` that
  is not a category, is a missing cell). Missing cells are filled with the stored values and
  text columns one-hot encoded with the stored categories (a category never seen in training
  gives all zeros, as in twolayer), before the scaler and the network. Under ``--missing error``
  or ``drop`` nothing is filled: a missing cell makes that row's probabilities NaN (twolayer
  refuses such a row instead).

What is refused, with a ``ValueError`` naming the reason: an activation registered with
:func:`twolayer.activations.register_activation` that has no ONNX operator (the four built-in
ones export), class labels that are neither integers nor strings, a network whose outputs are not
a softmax, a probit graph whose constant :math:`A^{-1}` would not fit in ONNX's 2 GB, and an
encoded model whose column is named ``label`` or ``probabilities`` (the outputs' names).

The graph computes in float32 by default: its float inputs, weights and probabilities are
float32. onnxruntime's probabilities then agree with ``predict_proba`` to a few 1e-7 for a
network trained in float32 (``twolayer train``'s default); for float64 weights (a Bayesian
network's always), rounding them and the inputs to float32 adds an error that grows with the
weights and the inputs' range, a few 1e-7 on the standardised digits and past 1e-6 on badly
scaled inputs. With ``dtype="float64"`` the graph computes in float64 and agrees to about 1e-15.
The probit graph costs :math:`K P^2` multiply-adds per row, :math:`P` the parameters the
posterior covers, as the estimator's own probit predictive does. It uses the default ONNX domain at opset :data:`OPSET` and, for an encoded
model file, ``ai.onnx.ml`` at opset 1 (``OneHotEncoder``), with IR version :data:`IR_VERSION`, so
that onnxruntime 1.17 and later load it.

It is one module because every exported form (the network, the probit predictive, the encoded
inputs, skl2onnx's converter) is built on the one graph object defined here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from twolayer.io.encoding import FeatureEncoding

if TYPE_CHECKING:
    import onnx

__all__ = ["IR_VERSION", "ONNX_ACTIVATIONS", "OPSET", "PREDICTIVES", "register_skl2onnx", "to_onnx"]

#: The opset of the default ONNX domain the graphs use.
OPSET = 17
#: The IR version of the models written (that of opset 17), so that older runtimes load them.
IR_VERSION = 8
_ML_DOMAIN = "ai.onnx.ml"
_ML_OPSET = 1

#: The hidden-unit activations that export, and the ONNX operator of each (None: the identity).
ONNX_ACTIVATIONS: dict[str, str | None] = {"tanh": "Tanh", "logistic": "Sigmoid", "relu": "Relu", "identity": None}
#: What the graph of a Bayesian network computes: its MAP network's outputs or the probit predictive.
PREDICTIVES: tuple[str, ...] = ("map", "probit")
# The operators are those of opset 13 onwards (ReduceSum takes its axes as an input since 13).
_MIN_SKL2ONNX_OPSET = 13
_OUTPUTS = ("label", "probabilities")
_INPUT = "X"
# An ONNX file is a protocol buffer, which cannot pass 2 GiB; the probit graph's constant A^{-1} is
# refused well before that, leaving room for the rest.
_MAX_CONSTANT_BYTES = 1 << 30


def _import_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ImportError("exporting to ONNX needs the onnx package: pip install 'twolayer[onnx]'") from None
    return onnx


# --------------------------------------------------------------------------
# The graph, as a list of nodes and constants that either onnx.helper or skl2onnx's container takes
# --------------------------------------------------------------------------


@dataclass
class _Node:
    op_type: str
    inputs: list[str]
    outputs: list[str]
    domain: str
    attrs: dict[str, Any]


@dataclass
class _Graph:
    """Nodes and constants in the order they are added, named by ``unique`` (a name not yet used)."""

    dtype: np.dtype[Any]
    unique: Callable[[str], str]
    nodes: list[_Node] = field(default_factory=list)
    constants: list[tuple[str, np.ndarray]] = field(default_factory=list)

    def const(self, hint: str, value: Any, dtype: Any = None) -> str:
        """A constant tensor, in the working dtype unless ``dtype`` says otherwise."""
        name = self.unique(hint)
        self.constants.append((name, np.asarray(value, dtype=self.dtype if dtype is None else dtype)))
        return name

    def op(self, op_type: str, *inputs: str, out: str | None = None, domain: str = "", **attrs: Any) -> str:
        """Add a node of one output; return that output's name."""
        output = out if out is not None else self.unique(op_type.lower())
        self.nodes.append(_Node(op_type, list(inputs), [output], domain, attrs))
        return output

    @property
    def uses_ml(self) -> bool:
        return any(node.domain == _ML_DOMAIN for node in self.nodes)


def _onnx_type(array: np.ndarray) -> int:
    onnx = _import_onnx()
    if array.dtype.kind in "UO":
        return int(onnx.TensorProto.STRING)
    return int(onnx.helper.np_dtype_to_tensor_dtype(array.dtype))


def _tensor(name: str, array: np.ndarray) -> Any:
    onnx = _import_onnx()
    if array.dtype.kind in "UO":
        values = [str(v).encode("utf-8") for v in array.ravel()]
        return onnx.helper.make_tensor(name, onnx.TensorProto.STRING, list(array.shape), values)
    return onnx.numpy_helper.from_array(np.ascontiguousarray(array), name)


def _namer(taken: Sequence[str]) -> Callable[[str], str]:
    """Fresh names ``twolayer/hint_i`` that none of ``taken`` (the graph's inputs and outputs) can be."""
    used = set(taken)
    count = [0]

    def unique(hint: str) -> str:
        while True:
            count[0] += 1
            name = f"twolayer/{hint}_{count[0]}"
            if name not in used:
                used.add(name)
                return name

    return unique


# --------------------------------------------------------------------------
# The parts of a graph
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Network:
    """What a graph needs of a fitted estimator: its weights, activation and classes."""

    W1: np.ndarray
    b1: np.ndarray
    W2: np.ndarray
    b2: np.ndarray
    activation: str
    classes: np.ndarray
    posterior: Any = None  # the LaplacePosterior of a Bayesian network


def _classes_for_onnx(classes: np.ndarray) -> np.ndarray:
    """int64 or str labels; refuse the rest."""
    classes = np.asarray(classes)
    if classes.dtype.kind in "iub":
        return classes.astype(np.int64)
    if classes.dtype.kind == "f" and np.all(np.isfinite(classes)) and np.all(classes == np.round(classes)):
        return classes.astype(np.int64)
    if classes.dtype.kind in "UO" and all(isinstance(c, str) for c in classes.tolist()):
        return np.asarray(classes.tolist(), dtype=object)
    raise ValueError(f"only integer or string class labels export to ONNX, got {classes.dtype} labels")


def _network(estimator: Any) -> _Network:
    """The weights of a fitted TwoLayerClassifier or BayesianTwoLayerClassifier (its MAP network)."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    if getattr(estimator, "out_activation_", "softmax") != "softmax":
        raise ValueError(
            f"only softmax outputs export to ONNX; this network's outputs are {estimator.out_activation_!r}"
        )
    activation = str(estimator.activation)
    if activation not in ONNX_ACTIVATIONS:
        raise ValueError(
            f"activation {activation!r} has no ONNX form; the activations that export are "
            f"{', '.join(sorted(ONNX_ACTIVATIONS))}"
        )
    (W1, W2), (b1, b2) = estimator.coefs_, estimator.intercepts_
    return _Network(
        np.asarray(W1, dtype=np.float64),
        np.asarray(b1, dtype=np.float64),
        np.asarray(W2, dtype=np.float64),
        np.asarray(b2, dtype=np.float64),
        activation=activation,
        classes=_classes_for_onnx(estimator.classes_),
        posterior=getattr(estimator, "posterior_", None),
    )


def _standardise(g: _Graph, x: str, mean: np.ndarray | None, scale: np.ndarray | None) -> str:
    """``(x - mean) / scale``, as scikit-learn's StandardScaler transforms."""
    if mean is not None:
        x = g.op("Sub", x, g.const("scaler_mean", mean))
    if scale is not None:
        x = g.op("Div", x, g.const("scaler_scale", scale))
    return x


def _hidden(g: _Graph, x: str, W1: np.ndarray, b1: np.ndarray, activation: str) -> str:
    a = g.op("Gemm", x, g.const("W1", W1), g.const("b1", b1))
    op = ONNX_ACTIVATIONS[activation]
    return a if op is None else g.op(op, a)


def _hidden_derivative(g: _Graph, z: str, activation: str) -> str | None:
    """h'(a) from z = h(a), as :mod:`twolayer.activations` writes it; None where it is 1."""
    one = g.const("one", 1.0)
    if activation == "tanh":
        return g.op("Sub", one, g.op("Mul", z, z))
    if activation == "logistic":
        return g.op("Mul", z, g.op("Sub", one, z))
    if activation == "relu":
        return g.op("Cast", g.op("Greater", z, g.const("zero", 0.0)), to=_onnx_type(np.zeros(0, g.dtype)))
    return None


def _labels(g: _Graph, scores: str, classes: np.ndarray, out: str) -> str:
    """The class of the largest score of each row (the first of equals, as numpy.argmax)."""
    index = g.op("ArgMax", scores, axis=1, keepdims=0)
    return g.op("Gather", g.const("classes", classes, dtype=classes.dtype), index, axis=0, out=out)


def _softmax_outputs(g: _Graph, x: str, net: _Network, outputs: Sequence[str]) -> None:
    z = _hidden(g, x, net.W1, net.b1, net.activation)
    logits = g.op("Gemm", z, g.const("W2", net.W2), g.const("b2", net.b2))
    g.op("Softmax", logits, axis=1, out=outputs[1])
    _labels(g, logits, net.classes, outputs[0])


def _posterior_covariance(posterior: Any, dtype: np.dtype[Any]) -> tuple[str, np.ndarray]:
    """The posterior's structure and A^{-1} over the parameters it covers (its diagonal for "diagonal")."""
    import scipy.linalg

    factor = np.asarray(posterior.to_dict()["factor"], dtype=np.float64)
    if posterior.structure == "diagonal":
        return "diagonal", 1.0 / factor
    n = factor.shape[0]
    size = n * n * dtype.itemsize
    if size > _MAX_CONSTANT_BYTES:
        raise ValueError(
            f"the probit graph would hold the {n} x {n} posterior covariance, {size / 2**30:.1f} GiB, more than an "
            "ONNX file holds; export the MAP network, or train with the 'diagonal' or 'last_layer' structure"
        )
    covariance = scipy.linalg.cho_solve((factor, True), np.eye(n), check_finite=False)
    return str(posterior.structure), (covariance + covariance.T) / 2


def _shape(g: _Graph, *dims: int) -> str:
    return g.const("shape", list(dims), np.int64)


def _probit_outputs(g: _Graph, x: str, net: _Network, outputs: Sequence[str]) -> None:
    """The probit approximation of the moderated predictive (twolayer.bayes.predictive.predictive_probit).

    The logits' covariance :math:`\\Sigma_n = B_n A^{-1} B_n^\\top` is built from the weight
    Jacobian :math:`B_n = [B^w_n, I]`, whose last block (the ``b2`` columns) is the identity for every
    pattern: :math:`\\Sigma_n = B^w_n S_{ww} B^{w\\top}_n + V_n + V_n^\\top + S_{bb}` with
    :math:`V_n = B^w_n S_{wb}` and :math:`S = A^{-1}` split into its blocks.
    """
    posterior = net.posterior
    W1, b1, W2, b2 = (np.asarray(p, dtype=np.float64) for p in posterior.params)
    structure, covariance = _posterior_covariance(posterior, g.dtype)
    D, M = W1.shape
    K = W2.shape[1]
    z = _hidden(g, x, W1, b1, net.activation)
    mean = g.op("Gemm", z, g.const("W2", W2), g.const("b2", b2))  # (N, K)

    # B^w (N, K, P - K), in twolayer.network.flatten's order: W1, b1 (unless last_layer), W2.
    blocks = []
    if structure != "last_layer":
        back = g.const("W2T", W2.T.reshape(1, K, M))  # d a_k / d b1_j = h'(a_j) W2_jk
        derivative = _hidden_derivative(g, z, net.activation)
        if derivative is not None:
            back = g.op("Mul", g.op("Reshape", derivative, _shape(g, -1, 1, M)), back)  # (N, K, M)
        first = g.op(
            "Mul", g.op("Reshape", x, _shape(g, -1, 1, D, 1)), g.op("Reshape", back, _shape(g, -1, K, 1, M))
        )  # d a_k / d W1_dj = x_d h'(a_j) W2_jk: (N, K, D, M)
        blocks += [g.op("Reshape", first, _shape(g, 0, K, D * M)), back]
    eye = g.const("eye", np.eye(K).reshape(1, K, 1, K))
    second = g.op("Mul", g.op("Reshape", z, _shape(g, -1, 1, M, 1)), eye)  # d a_k / d W2_jl = z_j [k = l]
    blocks.append(g.op("Reshape", second, _shape(g, 0, K, M * K)))
    Bw = blocks[0] if len(blocks) == 1 else g.op("Concat", *blocks, axis=2)
    BwT = g.op("Transpose", Bw, perm=[0, 2, 1])
    if structure == "diagonal":
        cov = g.op("MatMul", g.op("Mul", Bw, g.const("posterior_variance", covariance[:-K])), BwT)
        cov = g.op("Add", cov, g.const("posterior_variance_b2", np.diag(covariance[-K:])))
    else:
        cov = g.op("MatMul", g.op("MatMul", Bw, g.const("posterior_covariance", covariance[:-K, :-K])), BwT)
        V = g.op("MatMul", Bw, g.const("posterior_covariance_b2", covariance[:-K, -K:]))  # (N, K, K)
        cov = g.op("Add", g.op("Add", cov, V), g.op("Transpose", V, perm=[0, 2, 1]))
        cov = g.op("Add", cov, g.const("posterior_covariance_b2_b2", covariance[-K:, -K:]))

    # var(a_k - a_l) = S_kk + S_ll - 2 S_kl (S symmetric), kappa = (1 + pi/8 var)^(-1/2): PRML eq. 4.154
    diag = g.op("ReduceSum", g.op("Mul", cov, g.const("eye", np.eye(K))), _shape(g, 2), keepdims=0)  # (N, K)
    var = g.op(
        "Sub",
        g.op("Add", g.op("Reshape", diag, _shape(g, -1, K, 1)), g.op("Reshape", diag, _shape(g, -1, 1, K))),
        g.op("Add", cov, g.op("Transpose", cov, perm=[0, 2, 1])),
    )
    var = g.op("Max", var, g.const("zero", 0.0))
    kappa = g.op(
        "Reciprocal",
        g.op("Sqrt", g.op("Add", g.const("one", 1.0), g.op("Mul", g.const("pi_over_8", np.pi / 8.0), var))),
    )
    diff = g.op("Sub", g.op("Reshape", mean, _shape(g, -1, K, 1)), g.op("Reshape", mean, _shape(g, -1, 1, K)))
    # ln p~_k = -logsumexp_l(-kappa_kl (mu_k - mu_l)), shifted by its largest term so that exp cannot overflow
    t = g.op("Neg", g.op("Mul", kappa, diff))  # (N, K, K)
    top = g.op("GatherElements", t, g.op("ArgMax", t, axis=2, keepdims=1), axis=2)  # (N, K, 1)
    total = g.op("ReduceSum", g.op("Exp", g.op("Sub", t, top)), _shape(g, 2), keepdims=0)
    log_p = g.op("Neg", g.op("Add", g.op("Log", total), g.op("Reshape", top, _shape(g, -1, K))))
    probabilities = g.op("Softmax", log_p, axis=1, out=outputs[1])
    _labels(g, probabilities, net.classes, outputs[0])


def _outputs(g: _Graph, x: str, net: _Network, predictive: str, outputs: Sequence[str]) -> None:
    if predictive == "probit":
        _probit_outputs(g, x, net, outputs)
    else:
        _softmax_outputs(g, x, net, outputs)


def _encoded_inputs(g: _Graph, encoding: FeatureEncoding) -> str:
    """The network's input matrix (N, D) from one input per column: filled and one-hot as twolayer encodes."""
    from twolayer.io.tables import MISSING_VALUES

    float_type = _onnx_type(np.zeros(0, g.dtype))
    parts = []
    for name, fill, cats in zip(encoding.names, encoding.fill, encoding.categories):
        if cats is None:
            column = name
            if encoding.fills:
                column = g.op("Where", g.op("IsNaN", name), g.const("fill", [[fill]]), name)
            parts.append(column)
            continue
        m = len(cats)
        # An unseen category sets no input (zeros=1: all zeros rather than an error).
        onehot = g.op("OneHotEncoder", name, domain=_ML_DOMAIN, cats_strings=list(cats), zeros=1)  # (N, 1, m)
        onehot = g.op("Reshape", onehot, _shape(g, -1, m))
        if g.dtype != np.float32:
            onehot = g.op("Cast", onehot, to=float_type)
        words = ["", *(w for w in MISSING_VALUES if w and w not in cats)]
        missing = g.op("OneHotEncoder", name, domain=_ML_DOMAIN, cats_strings=words, zeros=1)  # (N, 1, w)
        missing = g.op("Reshape", missing, _shape(g, -1, len(words)))
        missing = g.op("ReduceSum", missing, _shape(g, 1), keepdims=1)  # (N, 1): 1 where missing
        if g.dtype != np.float32:
            missing = g.op("Cast", missing, to=float_type)
        if encoding.fills:
            assert isinstance(fill, str)
            filled = np.zeros((1, m))
            filled[0, cats.index(fill)] = 1.0
            onehot = g.op("Add", onehot, g.op("Mul", missing, g.const("fill", filled)))
        else:
            # Nothing fills it: the row's inputs, hence its probabilities, are NaN.
            is_missing = g.op("Cast", missing, to=int(_import_onnx().TensorProto.BOOL))
            onehot = g.op("Where", is_missing, g.const("nan", np.nan), onehot)
        parts.append(onehot)
    return parts[0] if len(parts) == 1 else g.op("Concat", *parts, axis=1)


# --------------------------------------------------------------------------
# The public functions
# --------------------------------------------------------------------------


def _check_dtype(dtype: Any) -> np.dtype[Any]:
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved is None or resolved not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    return resolved


def _parts(model: Any) -> tuple[Any, Any, FeatureEncoding | None]:
    """The estimator, the scaler (or None) and the encoding (or None) of what ``to_onnx`` is given."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from twolayer.io.models import ModelFile, is_bayesian, read, split_encoding

    if isinstance(model, (str, os.PathLike)):
        model = read(model)
    if isinstance(model, ModelFile):
        classifier = model.classifier
        scaler = model.model[0] if isinstance(model.model, Pipeline) else None
        return classifier, scaler, model.encoding
    model, encoding = split_encoding(model)  # a pipeline twolayer.load began with a table's encoding
    try:
        is_bayesian(model)  # raises TypeError unless a network or a StandardScaler and one
    except TypeError:
        return None, None, None
    if isinstance(model, Pipeline):
        steps = [step for _, step in model.steps if step not in (None, "passthrough")]
        scaler = steps[0] if isinstance(steps[0], StandardScaler) else None
        return steps[-1], scaler, encoding
    return model, None, encoding


def to_onnx(model: Any, *, dtype: Any = np.float32, predictive: str = "map", name: str = "twolayer") -> onnx.ModelProto:
    """The ONNX graph of a fitted network, a pipeline holding one, or a model file.

    Parameters
    ----------
    model : TwoLayerClassifier, BayesianTwoLayerClassifier, sklearn.pipeline.Pipeline, ModelFile or path
        Fitted. A pipeline of a ``StandardScaler`` and a network (what
        :func:`twolayer.io.modelfile.read` gives as ``.model``) becomes one graph here; a pipeline
        with other scikit-learn steps before the network is converted by skl2onnx, with the
        converter of :func:`register_skl2onnx` (registered on the way). A
        :class:`~twolayer.io.models.ModelFile` (or the path of a model file) whose model was
        trained from a table with text columns or missing cells takes one input per column.
    dtype : {float32, float64}, default float32
        The type the graph computes in, and that of its float inputs and ``probabilities``.
    predictive : {"map", "probit"}, default "map"
        For a :class:`~twolayer.bayes.BayesianTwoLayerClassifier`: ``"map"``, its MAP network's
        probabilities (``predict_proba_map``); ``"probit"``, the probit approximation of its
        moderated predictive (its ``predict_proba`` when ``method="probit"``), with the posterior
        covariance a constant of the graph. The Monte Carlo predictive does not export. Only
        ``"map"`` applies to a plain network.
    name : str, default "twolayer"
        The graph's name.

    Returns
    -------
    onnx.ModelProto
        Inputs ``X`` of shape ``(N, D)`` (or, for an encoded model file, one ``(N, 1)`` input per
        table column, float or string); outputs ``label`` of shape ``(N,)`` (int64 or string) and
        ``probabilities`` of shape ``(N, K)``, in the order of ``classes_``. Save it with
        ``onnx.save`` or ``model.SerializeToString()``.

    Raises
    ------
    ImportError
        Without the ``onnx`` package (``pip install 'twolayer[onnx]'``), or skl2onnx for a pipeline
        with other steps.
    TypeError
        For a model of another kind.
    ValueError
        For what does not export (see the module's description): an activation without an ONNX
        operator, labels that are not integers or strings, ``predictive`` not one of
        :data:`PREDICTIVES` or ``"probit"`` for a plain network, ``dtype`` not a float type.
    sklearn.exceptions.NotFittedError
        For an estimator not fitted.

    Examples
    --------
    >>> import numpy as np, onnxruntime  # doctest: +SKIP
    >>> session = onnxruntime.InferenceSession(twolayer.to_onnx(clf).SerializeToString())  # doctest: +SKIP
    >>> label, proba = session.run(None, {"X": X.astype(np.float32)})  # doctest: +SKIP
    """
    onnx = _import_onnx()
    working = _check_dtype(dtype)
    if predictive not in PREDICTIVES:
        raise ValueError(f"predictive must be one of {', '.join(PREDICTIVES)}, got {predictive!r}")
    estimator, scaler, encoding = _parts(model)
    if estimator is None:
        return _pipeline_to_onnx(model, working, predictive, name)
    net = _network(estimator)
    if predictive == "probit" and net.posterior is None:
        raise ValueError("predictive='probit' needs a BayesianTwoLayerClassifier; a plain network has only 'map'")
    float_type = _onnx_type(np.zeros(0, working))
    if encoding is not None:
        clash = sorted(set(encoding.names) & set(_OUTPUTS))
        if clash:
            raise ValueError(
                f"the model's feature column {clash[0]!r} would be an input named as an output of the graph "
                f"({', '.join(_OUTPUTS)}); rename the column and train again"
            )
        inputs = [
            onnx.helper.make_tensor_value_info(
                column, float_type if kind == "numeric" else onnx.TensorProto.STRING, [None, 1]
            )
            for column, kind in zip(encoding.names, encoding.kinds)
        ]
    else:
        inputs = [onnx.helper.make_tensor_value_info(_INPUT, float_type, [None, net.W1.shape[0]])]
    g = _Graph(working, _namer([i.name for i in inputs] + list(_OUTPUTS)))
    x = _encoded_inputs(g, encoding) if encoding is not None else _INPUT
    if scaler is not None:
        x = _standardise(g, x, scaler.mean_, scaler.scale_)
    _outputs(g, x, net, predictive, _OUTPUTS)
    label_type = _onnx_type(net.classes)
    outputs = [
        onnx.helper.make_tensor_value_info(_OUTPUTS[0], label_type, [None]),
        onnx.helper.make_tensor_value_info(_OUTPUTS[1], float_type, [None, len(net.classes)]),
    ]
    nodes = [
        onnx.helper.make_node(n.op_type, n.inputs, n.outputs, name=n.outputs[0], domain=n.domain, **n.attrs)
        for n in g.nodes
    ]
    graph = onnx.helper.make_graph(
        nodes, name, inputs, outputs, initializer=[_tensor(c, array) for c, array in g.constants]
    )
    opsets = [onnx.helper.make_opsetid("", OPSET)]
    if g.uses_ml:
        opsets.append(onnx.helper.make_opsetid(_ML_DOMAIN, _ML_OPSET))
    from twolayer import __version__

    exported = onnx.helper.make_model(
        graph, opset_imports=opsets, producer_name="twolayer", producer_version=__version__, ir_version=IR_VERSION
    )
    exported.doc_string = _description(estimator, scaler, encoding, predictive)
    onnx.checker.check_model(exported)
    return exported


def _description(estimator: Any, scaler: Any, encoding: FeatureEncoding | None, predictive: str) -> str:
    what = type(estimator).__name__
    if getattr(estimator, "posterior_", None) is not None:
        what += ": the probit moderated predictive" if predictive == "probit" else ": its MAP network"
    steps = ["the table's columns filled and one-hot encoded"] if encoding is not None else []
    steps += ["a StandardScaler"] if scaler is not None else []
    return f"{what}, activation {estimator.activation}" + (f", after {' and '.join(steps)}" if steps else "")


def _pipeline_to_onnx(model: Any, dtype: np.dtype[Any], predictive: str, name: str) -> onnx.ModelProto:
    """A scikit-learn pipeline ending in a twolayer network, through skl2onnx and the registered converter."""
    from sklearn.pipeline import Pipeline

    from twolayer.io.models import is_bayesian

    final = model[-1] if isinstance(model, Pipeline) and len(model.steps) else None
    try:
        bayesian = final is not None and is_bayesian(final)
    except TypeError:
        final = None
    if final is None:
        raise TypeError(
            "to_onnx takes a fitted TwoLayerClassifier or BayesianTwoLayerClassifier, a scikit-learn Pipeline "
            f"ending in one, or a model file, not {type(model).__name__}"
        )
    if predictive == "probit" and not bayesian:
        raise ValueError("predictive='probit' needs a BayesianTwoLayerClassifier; a plain network has only 'map'")
    try:
        import skl2onnx
        from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType
    except ImportError:
        raise ImportError("converting a pipeline to ONNX needs skl2onnx: pip install 'twolayer[onnx]'") from None
    register_skl2onnx()
    n_features = getattr(model, "n_features_in_", None)
    if n_features is None:
        raise ValueError("the pipeline does not record its number of features (n_features_in_); fit it first")
    tensor = DoubleTensorType if dtype == np.float64 else FloatTensorType
    options: dict[str, Any] = {"zipmap": False}
    if bayesian:
        options["predictive"] = predictive
    return skl2onnx.to_onnx(
        model,
        initial_types=[(_INPUT, tensor([None, int(n_features)]))],
        options={id(final): options},
        target_opset=OPSET,
        naming=name,
    )


# --------------------------------------------------------------------------
# skl2onnx
# --------------------------------------------------------------------------


def _skl2onnx_shape(operator: Any) -> None:
    """skl2onnx's shape calculator: label (N,) int64 or string, probabilities (N, K) as the input's type."""
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, Int64TensorType, StringTensorType

    (source,) = operator.inputs
    if not isinstance(source.type, (FloatTensorType, DoubleTensorType)):
        raise TypeError(
            f"a twolayer network converts from float or double tensors, not {type(source.type).__name__}; "
            "put a step that makes floats before it"
        )
    N = source.get_first_dimension()
    classes = _classes_for_onnx(operator.raw_operator.classes_)
    label_type = StringTensorType if classes.dtype.kind == "O" else Int64TensorType
    operator.outputs[0].type = label_type([N])
    operator.outputs[1].type = type(source.type)([N, len(classes)])


def _skl2onnx_convert(scope: Any, operator: Any, container: Any) -> None:
    """skl2onnx's converter: the graph of :func:`to_onnx` between the operator's input and outputs."""
    from skl2onnx.common.data_types import DoubleTensorType

    estimator = operator.raw_operator
    opset = container.target_opset
    if isinstance(opset, int) and opset < _MIN_SKL2ONNX_OPSET:
        raise ValueError(f"a twolayer network converts at target_opset {_MIN_SKL2ONNX_OPSET} or later, not {opset}")
    (source,) = operator.inputs
    dtype = np.dtype(np.float64 if isinstance(source.type, DoubleTensorType) else np.float32)
    net = _network(estimator)
    predictive = "map"
    if net.posterior is not None:
        predictive = scope.get_options(estimator, {"predictive": "map"})["predictive"]
    g = _Graph(dtype, scope.get_unique_variable_name)
    _outputs(g, source.full_name, net, predictive, [o.full_name for o in operator.outputs])
    for constant, array in g.constants:
        content = [str(v) for v in array.ravel()] if array.dtype.kind in "UO" else _tensor(constant, array)
        container.add_initializer(constant, _onnx_type(array), list(array.shape), content)
    for node in g.nodes:
        container.add_node(
            node.op_type,
            node.inputs,
            node.outputs,
            op_domain=node.domain,
            name=scope.get_unique_operator_name(node.op_type),
            **node.attrs,
        )


def register_skl2onnx() -> None:
    """Register converters for the two estimators with skl2onnx, so that ``skl2onnx.to_onnx`` converts pipelines holding them.

    After this call, ``skl2onnx.to_onnx(pipeline, X)`` converts a pipeline whose last step is a
    :class:`~twolayer.classifier.TwoLayerClassifier` or a
    :class:`~twolayer.bayes.BayesianTwoLayerClassifier` (its MAP network, or with the option
    ``{"predictive": "probit"}`` the probit predictive), after any steps skl2onnx converts. The
    usual classifier options apply: by default skl2onnx adds its ZipMap (outputs
    ``output_label`` and ``output_probability``, a list of dicts); with ``{"zipmap": False}`` the
    outputs are ``label`` and ``probabilities`` as :func:`to_onnx` writes them. Calling it again
    changes nothing.

    Raises
    ------
    ImportError
        Without skl2onnx (``pip install 'twolayer[onnx]'``).
    """
    try:
        from skl2onnx import update_registered_converter
    except ImportError:
        raise ImportError("registering with skl2onnx needs skl2onnx: pip install 'twolayer[onnx]'") from None
    from twolayer.bayes import BayesianTwoLayerClassifier
    from twolayer.classifier import TwoLayerClassifier

    # skl2onnx's classifier parser reads these: the ZipMap and the class labels as an output; "nocl"
    # (indices instead of labels) is declared with its default only.
    options: dict[str, list[Any]] = {
        "zipmap": [True, False, "columns"],
        "output_class_labels": [False, True],
        "nocl": [False],
    }
    update_registered_converter(
        TwoLayerClassifier, "TwolayerTwoLayerClassifier", _skl2onnx_shape, _skl2onnx_convert, options=options
    )
    update_registered_converter(
        BayesianTwoLayerClassifier,
        "TwolayerBayesianTwoLayerClassifier",
        _skl2onnx_shape,
        _skl2onnx_convert,
        options={**options, "predictive": list(PREDICTIVES)},
    )
