"""The curvature, the Laplace posterior and the evidence on a Dask cluster equal those computed in memory.

Every quantity is a sum over patterns, so on Dask data it is computed block by
block on the workers (:mod:`twolayer.cluster`); here the in-memory functions on
the whole arrays are the reference, and ``numpy.linalg`` checks the operator.
The cluster is a real :class:`distributed.LocalCluster` with two worker
processes; a few checks also run on Dask's local scheduler (no client).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

from twolayer import BayesianTwoLayerClassifier, TwoLayerClassifier, cluster, curvature  # noqa: E402
from twolayer import network as nw  # noqa: E402
from twolayer.bayes import laplace  # noqa: E402
from twolayer.bayes.map import map_estimate  # noqa: E402
from twolayer.errors import DataError, NonFiniteInput  # noqa: E402

RTOL = 1e-12


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # distributed's start-up notes (ports, dashboards)
        lc = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            # The scheduler's HTTP server on a free port, not 8787: the README's Dask example, run by
            # tests/test_readme.py at the same time under pytest-xdist, takes 8787 and fails without it.
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            memory_limit="1GiB",
        )
        c = distributed.Client(lc)
    yield c
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c.close()
        lc.close()


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    N, D, K = 403, 4, 3
    X = rng.standard_normal((N, D))
    k = rng.integers(0, K, N)
    return {
        "X": X,
        "k": k,
        "T": np.eye(K)[k],
        "Tml": (rng.random((N, K)) < 0.4).astype(np.float64),
        "s": rng.uniform(0.0, 2.0, N),
        "v": rng.standard_normal(nw.n_params(D, 5, K)),
    }


def _dask(a: np.ndarray, rows: int) -> object:
    return da.from_array(a, chunks=(rows, *a.shape[1:]))


def _close(a: object, b: object) -> None:
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    assert np.max(np.abs(a - b)) <= RTOL * max(1.0, float(np.max(np.abs(a))))


PARAMS = nw.init_params(4, 5, 3, random_state=3)


@pytest.mark.parametrize("output", ["softmax", "sigmoid"])
def test_every_sum_equals_the_in_memory_one_on_the_cluster(client: object, data: dict, output: str) -> None:
    X, s, v = data["X"], data["s"], data["v"]
    T = data["T"] if output == "softmax" else data["Tml"]
    # blocks of X, T and s cut differently: aligned to X's on the way
    Xd, Td, sd = _dask(X, 90), _dask(T, 130), _dask(s, 200)
    alpha = (0.1, 0.2, 0.3, 0.4)
    kw = {"activation": "tanh", "output": output}
    _close(
        curvature.hessian(PARAMS, X, T, s, alpha=alpha, **kw), curvature.hessian(PARAMS, Xd, Td, sd, alpha=alpha, **kw)
    )
    _close(
        curvature.gauss_newton(PARAMS, X, T, s, alpha=0.5, **kw),
        curvature.gauss_newton(PARAMS, Xd, Td, sd, alpha=0.5, **kw),
    )
    _close(curvature.last_layer_hessian(PARAMS, X, s, **kw), curvature.last_layer_hessian(PARAMS, Xd, sd, **kw))
    for product in (curvature.hessian_vector_product, curvature.gauss_newton_vector_product):
        _close(
            nw.flatten(product(PARAMS, X, T, v, s, alpha=0.3, **kw)),
            nw.flatten(product(PARAMS, Xd, Td, v, sd, alpha=0.3, **kw)),
        )
    for approximation in (None, "gauss-newton", "becker-lecun"):
        _close(
            nw.flatten(curvature.hessian_diagonal(PARAMS, X, T, s, alpha=alpha, approximation=approximation, **kw)),
            nw.flatten(curvature.hessian_diagonal(PARAMS, Xd, Td, sd, alpha=alpha, approximation=approximation, **kw)),
        )


def test_the_hessian_is_the_sum_of_its_blocks_without_a_client(data: dict) -> None:
    """On Dask's local scheduler too; and against the in-memory Hessians of the blocks added by hand."""
    import dask

    X, T, s = data["X"], data["T"], data["s"]
    by_hand = sum(curvature.hessian(PARAMS, X[a : a + 100], T[a : a + 100], s[a : a + 100]) for a in range(0, 403, 100))
    with dask.config.set(scheduler="threads"):  # even where a test before made a client current
        assert cluster.current_client() is None
        _close(by_hand, curvature.hessian(PARAMS, _dask(X, 100), _dask(T, 100), _dask(s, 100)))


def test_a_large_block_is_summed_in_slices(data: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker bounds a block's temporaries by summing it in slices (here of 7 rows): the same sums."""
    import dask

    X, T, s = data["X"], data["T"], data["s"]
    monkeypatch.setattr(curvature, "_CHUNK_ELEMENTS", 7 * (4 + 8 * 5 + 6 * 3))
    assert curvature._block_slice_rows(4, 5, 3) == 7
    with dask.config.set(scheduler="threads"):  # in this process, where the patch holds
        for fn in (curvature.hessian, curvature.gauss_newton):
            _close(fn(PARAMS, X, T, s), fn(PARAMS, _dask(X, 200), _dask(T, 200), _dask(s, 200)))
        _close(
            nw.flatten(curvature.hessian_diagonal(PARAMS, X, T, s)),
            nw.flatten(curvature.hessian_diagonal(PARAMS, _dask(X, 200), _dask(T, 200), _dask(s, 200))),
        )


def test_the_hessian_operator_on_the_cluster_has_the_dense_spectrum(client: object, data: dict) -> None:
    from scipy.sparse.linalg import eigsh

    X, T = data["X"], data["T"]
    op = curvature.hessian_operator(PARAMS, _dask(X, 90), _dask(T, 90), alpha=0.1)
    dense = np.linalg.eigvalsh(curvature.hessian(PARAMS, X, T, alpha=0.1))
    top = np.sort(eigsh(op, k=3, which="LA", return_eigenvectors=False))
    np.testing.assert_allclose(top, dense[-3:], rtol=1e-9)


def test_the_map_fit_on_the_cluster_is_the_in_memory_one(client: object, data: dict) -> None:
    X, T, s = data["X"], data["T"], data["s"]
    alpha = np.array([0.5, 0.1, 0.5, 0.1])
    a = map_estimate(X, T, alpha, init=PARAMS, sample_weight=s, max_iter=60)
    b = map_estimate(_dask(X, 90), _dask(T, 90), alpha, init=PARAMS, sample_weight=_dask(s, 90), max_iter=60)
    assert a.n_iter == b.n_iter
    np.testing.assert_allclose(nw.flatten(b.params), nw.flatten(a.params), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(b.data_error, a.data_error, rtol=1e-9)


def test_laplace_on_the_cluster_is_the_in_memory_posterior(client: object, data: dict) -> None:
    X, k, s = data["X"], data["k"], data["s"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the few iterations do not converge
        model = TwoLayerClassifier(n_hidden=5, solver="lbfgs", alpha=0.1, max_iter=40, random_state=0).fit(X, k)
    for structure in ("full", "diagonal", "last_layer"):
        a = laplace(model, X, k, structure=structure, sample_weight=s)
        b = laplace(model, _dask(X, 90), _dask(k, 110), structure=structure, sample_weight=_dask(s, 70))
        np.testing.assert_allclose(b.log_evidence, a.log_evidence, rtol=RTOL)
        np.testing.assert_allclose(b.precision, a.precision, rtol=1e-11, atol=1e-11)
        np.testing.assert_allclose(b.gamma, a.gamma, rtol=1e-10)


def test_the_bayesian_network_fits_on_the_cluster_as_in_memory(client: object, data: dict) -> None:
    X, k = data["X"], data["k"]
    kw = {"n_hidden": 3, "random_state": 0, "n_restarts": 1, "max_cycles": 3}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # three cycles need not settle
        a = BayesianTwoLayerClassifier(**kw).fit(X, k)
        b = BayesianTwoLayerClassifier(**kw).fit(_dask(X, 90), _dask(k, 90))
    np.testing.assert_allclose(b.log_evidence_, a.log_evidence_, rtol=1e-9)
    np.testing.assert_allclose(b.alpha_, a.alpha_, rtol=1e-7)
    np.testing.assert_allclose(b.predict_proba(X), a.predict_proba(X), atol=1e-8)
    for method in ("predict_proba", "predict_log_proba", "predict_proba_map", "predict"):
        lazy = getattr(b, method)(_dask(X, 90))
        assert isinstance(lazy, da.Array), method
        np.testing.assert_allclose(lazy.compute(), getattr(b, method)(X), atol=1e-12, err_msg=method)


def test_bad_dask_data_for_the_bayesian_network_is_named(client: object, data: dict) -> None:
    X = data["X"].copy()
    X[250, 2] = np.nan
    with pytest.raises(NonFiniteInput, match=r"NaN in block 2 at its row 70 \(row 250 of the whole\), column 2"):
        BayesianTwoLayerClassifier(n_hidden=2).fit(_dask(X, 90), _dask(data["k"], 90))
    model = TwoLayerClassifier(n_hidden=2, solver="lbfgs", max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(data["X"], data["k"])
    with pytest.raises(DataError, match=r"labels \[7\] not among classes_"):
        laplace(model, _dask(data["X"], 90), _dask(np.where(data["k"] == 0, 7, data["k"]), 90))
    with pytest.raises(DataError, match="X has 403 rows but y has 400"):
        laplace(model, _dask(data["X"], 90), _dask(data["k"][:400], 90))
