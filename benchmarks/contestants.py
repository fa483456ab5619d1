"""The contestants: the floor, TwoLayerClassifier and its peers, one epoch each.

Every factory takes the same data and settings and returns a
:class:`harness.Contestant` whose ``run()`` trains one epoch from a fresh
start, as a user would (a new estimator / model / optimiser each time), or a
:class:`harness.Skipped` when its library is not installed. A library that is
installed but fails (to import, to set up, to run) is never a reason to skip:
the factory raises :class:`harness.ContestantFailed`, and so does the harness
when a warm-up or timed run raises, so that the report cannot quietly lose a
peer.

The network is the workload's: ``D`` inputs, ``M`` tanh hidden units, ``K``
softmax outputs, cross-entropy, Adam (learning rate 1e-3, betas 0.9 / 0.999,
epsilon 1e-8), minibatches of ``B`` shuffled patterns, one pass over the data.

What each contestant's epoch includes, so that the ratios are read fairly:

- **floor**: only the five matrix products of every batch (two forward, three
  backward), on preallocated arrays with ``np.matmul(..., out=)``, with each
  batch a contiguous slice of X (no gather). Nothing else: no tanh, no softmax,
  no optimiser, no shuffling. No trainer can be faster with NumPy's BLAS.
- **TwoLayerClassifier** and **MLPClassifier**: ``fit(X, y)`` with
  ``max_iter=1``: input validation, label encoding, initialisation, shuffling
  and one epoch; both add the L2 penalty ``alpha=1e-4`` (their default) and
  compute the epoch's loss.
- **PyTorch**: a fresh ``Linear``-``Tanh``-``Linear`` model, ``CrossEntropyLoss``
  and ``torch.optim.Adam`` (its defaults), then a loop over shuffled index
  batches (``index_select`` gathers, no DataLoader); the data are tensors that
  share NumPy's memory (``torch.from_numpy``), made before the clock starts.
  No L2 penalty. Its matrix products run on PyTorch's own BLAS (MKL / oneDNN),
  which ``OPENBLAS_CORETYPE`` does not affect.
- **JAX**: a jit-compiled training step (gather of the batch inside the step,
  forward, ``value_and_grad``, Adam from optax or, without it, a hand-written
  Adam) called once per batch; the data are on the device before the clock
  starts, the epoch's permutation is drawn with NumPy. No L2 penalty. XLA
  compiles its own kernels, so ``OPENBLAS_CORETYPE`` does not affect it either.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, TypeVar

import numpy as np

from harness import Contestant, ContestantFailed, Skipped

Factory = TypeVar("Factory", bound=Callable[..., Any])

# How many threads every contestant may use; run.py's --threads sets it (default: every usable core).
THREADS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1

LEARNING_RATE = 1e-3
BETA_1, BETA_2, EPSILON = 0.9, 0.999, 1e-8
WARMUP_ROWS = 2000


def installed(module: str) -> bool:
    """Whether the top-level ``module`` is installed, found without importing it.

    Only this decides that a peer is skipped: an installed module that then
    fails to import is a broken contestant, reported as such.
    """
    return importlib.util.find_spec(module) is not None


def failing_loudly(name: str) -> Callable[[Factory], Factory]:
    """Make a factory raise :class:`ContestantFailed` naming ``name`` when its set-up raises."""

    def wrap(factory: Factory) -> Factory:
        @functools.wraps(factory)
        def build(*args: Any, **kwargs: Any) -> Any:
            try:
                return factory(*args, **kwargs)
            except ContestantFailed:
                raise
            except Exception as exc:
                raise ContestantFailed(name, "set-up", exc) from exc

        return build  # type: ignore[return-value]

    return wrap


def load_libraries() -> None:
    """Import every contestant's native libraries, so that a thread limit reaches them all."""
    import scipy.linalg  # noqa: F401  (SciPy's own OpenBLAS)
    import sklearn.neural_network  # noqa: F401  (scikit-learn's OpenMP runtime)

    if installed("torch"):
        import torch  # noqa: F401


def workload(n_samples: int, dtype: Any = np.float32, *, n_features: int = 784) -> tuple[np.ndarray, np.ndarray]:
    """The reference data: ``make_classification`` with 60 informative features and 10 classes."""
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=n_samples, n_features=n_features, n_informative=60, n_classes=10, random_state=0
    )
    return np.ascontiguousarray(X, dtype=dtype), y.astype(np.int64)


def _glorot(rng: np.random.Generator, fan_in: int, fan_out: int, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    bound = np.sqrt(6.0 / (fan_in + fan_out))
    W = rng.uniform(-bound, bound, (fan_in, fan_out)).astype(dtype)
    b = rng.uniform(-bound, bound, fan_out).astype(dtype)
    return W, b


@contextlib.contextmanager
def silenced_convergence() -> Iterator[None]:
    """Hide ConvergenceWarning inside the block: one epoch is meant not to converge."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:  # twolayer may define its own warning class; silence it too
            from twolayer import classifier as _clf

            own = getattr(_clf, "ConvergenceWarning", None)
            if isinstance(own, type) and issubclass(own, Warning):
                warnings.simplefilter("ignore", own)
        except ImportError:
            pass
        yield


def _fit_silently(model: Any, X: np.ndarray, y: np.ndarray) -> Any:
    with silenced_convergence():
        return model.fit(X, y)


# --------------------------------------------------------------------------
# The floor
# --------------------------------------------------------------------------


@failing_loudly("floor (5 products)")
def floor_products(N: int, D: int, M: int, K: int, B: int, dtype: Any, X: np.ndarray | None = None) -> Contestant:
    """The five matrix products of every batch of an epoch, and nothing else.

    Per batch of ``b`` rows: ``a1 = Xb W1`` (b, M), ``a2 = z W2`` (b, K),
    ``gW2 = z^T delta2`` (M, K), ``g = delta2 W2^T`` (b, M) and
    ``gW1 = Xb^T delta1`` (D, M); every output is preallocated and written with
    ``out=``. ``B = N`` gives the floor of one full-batch gradient.
    """
    rng = np.random.default_rng(0)
    if X is None:
        X = rng.standard_normal((N, D)).astype(dtype)
    W1, _ = _glorot(rng, D, M, dtype)
    W2, _ = _glorot(rng, M, K, dtype)
    W2T = W2.T
    z = rng.uniform(-1, 1, (B, M)).astype(dtype)
    delta2 = rng.uniform(-0.1, 0.1, (B, K)).astype(dtype)
    delta1 = rng.uniform(-0.1, 0.1, (B, M)).astype(dtype)
    a1 = np.empty((B, M), dtype)
    a2 = np.empty((B, K), dtype)
    g = np.empty((B, M), dtype)
    gW1 = np.empty((D, M), dtype)
    gW2 = np.empty((M, K), dtype)

    def run(limit: int | None = None) -> dict[str, Any]:
        n = N if limit is None else min(limit, N)
        for start in range(0, n, B):
            Xb = X[start : min(start + B, n)]
            b = Xb.shape[0]
            np.matmul(Xb, W1, out=a1[:b])  # forward, layer 1
            np.matmul(z[:b], W2, out=a2[:b])  # forward, layer 2
            np.matmul(z[:b].T, delta2[:b], out=gW2)  # grad W2
            np.matmul(delta2[:b], W2T, out=g[:b])  # back-propagate
            np.matmul(Xb.T, delta1[:b], out=gW1)  # grad W1
        return {"dtype": str(np.dtype(dtype))}

    return Contestant("floor (5 products)", run, warmup=partial(run, WARMUP_ROWS))


# --------------------------------------------------------------------------
# Estimators
# --------------------------------------------------------------------------


@failing_loudly("TwoLayerClassifier")
def twolayer_fit(X: np.ndarray, y: np.ndarray, M: int, B: int) -> Contestant | Skipped:
    """``TwoLayerClassifier(n_hidden=M, batch_size=B, max_iter=1).fit(X, y)``."""
    name = "TwoLayerClassifier"
    if not installed("twolayer"):
        return Skipped(name, "twolayer is not installed (pip install -e .)")
    from twolayer.classifier import TwoLayerClassifier

    def make() -> Any:
        return TwoLayerClassifier(
            n_hidden=M,
            activation="tanh",
            solver="adam",
            batch_size=B,
            max_iter=1,
            learning_rate_init=LEARNING_RATE,
            random_state=0,
        )

    def run() -> dict[str, Any]:
        model = _fit_silently(make(), X, y)
        return {"loss": float(model.loss_), "dtype": str(model.coefs_[0].dtype)}

    return Contestant(name, run, warmup=lambda: _fit_silently(make(), X[:WARMUP_ROWS], y[:WARMUP_ROWS]))


@failing_loudly("MLPClassifier")
def sklearn_fit(X: np.ndarray, y: np.ndarray, M: int, B: int) -> Contestant | Skipped:
    """``MLPClassifier(hidden_layer_sizes=(M,), activation="tanh", batch_size=B, max_iter=1).fit``."""
    from sklearn.neural_network import MLPClassifier

    def make() -> Any:
        return MLPClassifier(
            hidden_layer_sizes=(M,),
            activation="tanh",
            solver="adam",
            batch_size=B,
            max_iter=1,
            learning_rate_init=LEARNING_RATE,
            random_state=0,
        )

    def run() -> dict[str, Any]:
        model = _fit_silently(make(), X, y)
        return {"loss": float(model.loss_), "dtype": str(model.coefs_[0].dtype)}

    return Contestant("MLPClassifier", run, warmup=lambda: _fit_silently(make(), X[:WARMUP_ROWS], y[:WARMUP_ROWS]))


# --------------------------------------------------------------------------
# PyTorch
# --------------------------------------------------------------------------


@failing_loudly("PyTorch")
def torch_epoch(X: np.ndarray, y: np.ndarray, M: int, B: int) -> Contestant | Skipped:
    """One epoch of Linear-Tanh-Linear with CrossEntropyLoss and Adam on the CPU."""
    name = "PyTorch"
    if not installed("torch"):
        return Skipped(name, "torch is not installed (pip install torch==2.13.0, the CPU build)")
    import torch
    from torch import nn

    torch.set_num_threads(THREADS)
    dtype = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[X.dtype]
    Xt = torch.from_numpy(X)  # shares memory: no copy of the data
    yt = torch.from_numpy(y.astype(np.int64))
    N, D = X.shape
    K = int(y.max()) + 1

    def run(limit: int | None = None) -> dict[str, Any]:
        n = N if limit is None else min(limit, N)
        gen = torch.Generator().manual_seed(0)
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(D, M), nn.Tanh(), nn.Linear(M, K)).to(dtype)
        opt = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE, betas=(BETA_1, BETA_2), eps=EPSILON)
        loss_fn = nn.CrossEntropyLoss()
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        for start in range(0, n, B):
            idx = perm[start : start + B]
            xb = Xt.index_select(0, idx)
            yb = yt.index_select(0, idx)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            total += loss.item() * idx.shape[0]
        return {"loss": total / n, "dtype": str(model[0].weight.dtype).replace("torch.", "")}

    return Contestant(name, run, warmup=partial(run, WARMUP_ROWS))


# --------------------------------------------------------------------------
# JAX
# --------------------------------------------------------------------------


def _hand_adam() -> tuple[Any, Any]:
    """Adam (Kingma & Ba 2015, Algorithm 1) for a pytree, when optax is absent."""
    import jax
    import jax.numpy as jnp

    def init(params: Any) -> Any:
        # Two separate trees of zeros, never one tree twice: the training step donates the
        # state's buffers, and XLA refuses to donate one buffer in two places (JAX 0.10:
        # "Attempt to donate the same buffer twice").
        m = jax.tree_util.tree_map(jnp.zeros_like, params)
        v = jax.tree_util.tree_map(jnp.zeros_like, params)
        return (jnp.zeros((), jnp.int32), m, v)

    def update(grads: Any, state: Any, params: Any) -> tuple[Any, Any]:
        t, m, v = state
        t = t + 1
        m = jax.tree_util.tree_map(lambda m_, g: BETA_1 * m_ + (1 - BETA_1) * g, m, grads)
        v = jax.tree_util.tree_map(lambda v_, g: BETA_2 * v_ + (1 - BETA_2) * g * g, v, grads)
        c1 = 1 - BETA_1 ** t.astype(jnp.float32)
        c2 = 1 - BETA_2 ** t.astype(jnp.float32)
        new = jax.tree_util.tree_map(
            lambda p, m_, v_: p - (LEARNING_RATE * (m_ / c1) / (jnp.sqrt(v_ / c2) + EPSILON)).astype(p.dtype),
            params,
            m,
            v,
        )
        return new, (t, m, v)

    return init, update


@failing_loudly("JAX (jit)")
def jax_epoch(X: np.ndarray, y: np.ndarray, M: int, B: int) -> Contestant | Skipped:
    """One epoch of jit-compiled training steps (optax Adam if installed)."""
    name = "JAX (jit)"
    if not installed("jax"):
        return Skipped(name, "jax is not installed (pip install jax)")
    if THREADS == 1 and "jax" not in sys.modules:
        # XLA reads its flags once, when it starts: one thread is all it can be limited to.
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()
    import jax
    import jax.numpy as jnp
    from jax import lax

    # float64 needs x64 mode; turning it on does not change float32 arrays,
    # whose dtypes are set explicitly below.
    jax.config.update("jax_enable_x64", True)
    if installed("optax"):
        import optax

        opt = optax.adam(LEARNING_RATE, b1=BETA_1, b2=BETA_2, eps=EPSILON)

        def opt_init(p: Any) -> Any:
            return opt.init(p)

        def opt_update(g: Any, s: Any, p: Any) -> tuple[Any, Any]:
            updates, s = opt.update(g, s, p)
            return optax.apply_updates(p, updates), s

        note = "optax.adam"
    else:
        opt_init, opt_update = _hand_adam()
        note = "hand-written Adam (optax not installed)"

    N, D = X.shape
    K = int(y.max()) + 1
    Xd = jax.device_put(X)
    yd = jax.device_put(y.astype(np.int32))

    def loss_fn(p: dict[str, Any], xb: Any, yb: Any) -> Any:
        z = jnp.tanh(xb @ p["W1"] + p["b1"])
        a2 = z @ p["W2"] + p["b2"]
        log_y = jax.nn.log_softmax(a2, axis=1)
        return -jnp.mean(jnp.take_along_axis(log_y, yb[:, None], axis=1))

    # The parameters and the optimiser state are donated, so that XLA updates them in place, as a
    # tuned training loop does; every leaf of (p, s) must then be a buffer of its own (optax's
    # init makes fresh zeros for each moment, and so does _hand_adam's).
    @partial(jax.jit, static_argnums=(6,), donate_argnums=(0, 1))
    def step(p: Any, s: Any, Xa: Any, ya: Any, perm: Any, start: Any, size: int) -> tuple[Any, Any, Any]:
        idx = lax.dynamic_slice(perm, (start,), (size,))
        xb = jnp.take(Xa, idx, axis=0)
        yb = jnp.take(ya, idx, axis=0)
        loss, grads = jax.value_and_grad(loss_fn)(p, xb, yb)
        p, s = opt_update(grads, s, p)
        return p, s, loss * size

    def run(limit: int | None = None) -> dict[str, Any]:
        n = N if limit is None else min(limit, N)
        rng = np.random.default_rng(0)
        W1, b1 = _glorot(rng, D, M, X.dtype)
        W2, b2 = _glorot(rng, M, K, X.dtype)
        p = jax.device_put({"W1": W1, "b1": b1, "W2": W2, "b2": b2})
        s = opt_init(p)
        # Always the full permutation: its shape is part of the compiled step's signature.
        perm = jax.device_put(rng.permutation(N).astype(np.int32))
        losses = []
        for start in range(0, n, B):
            size = min(B, n - start)
            p, s, loss = step(p, s, Xd, yd, perm, np.int32(start), size)
            losses.append(loss)
        jax.block_until_ready(p)
        return {"loss": float(sum(float(l) for l in losses)) / n, "dtype": str(p["W1"].dtype)}

    def warmup() -> None:
        # Compile for the full data's shapes (X is an argument of the step),
        # including the short last batch when N is not a multiple of B.
        run(2 * B)
        if N % B:
            rng = np.random.default_rng(0)
            W1, b1 = _glorot(rng, D, M, X.dtype)
            W2, b2 = _glorot(rng, M, K, X.dtype)
            p = jax.device_put({"W1": W1, "b1": b1, "W2": W2, "b2": b2})
            perm = jax.device_put(np.arange(N, dtype=np.int32))
            jax.block_until_ready(step(p, opt_init(p), Xd, yd, perm, np.int32(0), N % B))

    return Contestant(name, run, warmup=warmup, note=note)


FACTORIES = {
    "twolayer": twolayer_fit,
    "sklearn": sklearn_fit,
    "torch": torch_epoch,
    "jax": jax_epoch,
}
