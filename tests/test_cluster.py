"""The Dask path (issue 17): sums over a cluster's row blocks, fits and predictions on Dask collections.

One module-scoped ``distributed.LocalCluster`` of two worker processes serves
the whole file. Its client is never the default: the tests that want it enter
``client.as_current()`` (the ``on_cluster`` fixture), and the tests marked
"local" run without any client, on Dask's local scheduler in this process
(``twolayer.cluster.current_client()`` is None there, which they check).
Every result is compared with the in-memory computation on the same data,
most of them bit for bit or to rounding.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import tracemalloc
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_multilabel_classification

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

from twolayer import TwoLayerClassifier, network  # noqa: E402
from twolayer import cluster as tc  # noqa: E402
from twolayer.errors import DataError, NonFiniteInput  # noqa: E402
from twolayer.training.blocked import BlockedFullBatch  # noqa: E402
from twolayer.training.full_batch import _FullBatch  # noqa: E402
from twolayer.training.optim import TrainingData  # noqa: E402

quiet_convergence = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

WORKER_MEMORY = "1GiB"


@pytest.fixture(scope="module")
def client():
    """Two worker processes of one thread each, under nannies (a killed worker is restarted)."""
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            # The scheduler's HTTP server (health, metrics) binds port 8787 even without a dashboard, and
            # warns (an error here) when another cluster has it: a free port instead.
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            memory_limit=WORKER_MEMORY,
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as c,  # closed before the cluster
    ):
        yield c


@pytest.fixture
def on_cluster(client):
    """The cluster's client, current for the test."""
    with client.as_current():
        assert tc.current_client() is client
        yield client


@pytest.fixture(params=["local", "cluster"])
def where(request):
    """Each test twice: on Dask's local scheduler (no client at all), and on the cluster."""
    if request.param == "local":
        assert tc.current_client() is None
        yield None
    else:
        c = request.getfixturevalue("client")
        with c.as_current():
            assert tc.current_client() is c
            yield c


def problem(n: int = 230, d: int = 5, n_classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    X, y = make_classification(
        n_samples=n,
        n_features=d,
        n_informative=3,
        n_redundant=0,
        n_classes=n_classes,
        n_clusters_per_class=1,
        random_state=seed,
    )
    return X, y


UNEVEN = (70, 70, 50, 40)  # four blocks of rows, not all the same size


def blocks_of(a: np.ndarray, chunks: tuple[int, ...] = UNEVEN) -> Any:
    return da.from_array(a, chunks=(chunks, *a.shape[1:]))


def theta_of(model: TwoLayerClassifier) -> np.ndarray:
    return network.flatten(model.params_)


def rel(a: Any, b: Any) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


# --------------------------------------------------------------------------
# 1. The blocked full-batch sums equal the in-memory ones
# --------------------------------------------------------------------------

DECAYS = [0.0, 0.013, (0.02, 0.003, 0.05, 0.007)]


def _targets(output: str, y: np.ndarray, K: int, rng: np.random.Generator) -> np.ndarray:
    if output == "softmax":
        return y.astype(np.intp)
    return (rng.random((y.shape[0], K)) < 0.4).astype(np.float64)


@pytest.mark.parametrize("output", ["softmax", "sigmoid"])
@pytest.mark.parametrize("lam", DECAYS, ids=["no-decay", "decay", "per-group"])
def test_blocked_sums_equal_the_in_memory_ones(where, output, lam):
    X, y = problem()
    N, D = X.shape
    M, K = 6, 3
    rng = np.random.default_rng(3)
    k = _targets(output, y, K, rng)
    w = rng.uniform(0.1, 3.0, N)
    w *= N / w.sum()  # mean one, as the estimator gives the trainers
    blocks = tc.as_row_blocks(blocks_of(X), k, w)
    assert blocks.lengths == UNEVEN and blocks.client is where and blocks.persisted
    theta = rng.normal(scale=0.5, size=network.n_params(D, M, K))
    v = rng.normal(size=theta.shape)

    in_memory = _FullBatch(TrainingData(X=X, k=k, w=w, lam=lam, output=output), (D, M, K), np.float64, "tanh")
    blocked = BlockedFullBatch(
        TrainingData(X=blocks, k=np.empty(0, np.intp), w=None, lam=lam, output=output), (D, M, K), np.float64, "tanh"
    )
    f0, g0 = in_memory(theta)
    g0 = g0.copy()
    f1, g1 = blocked(theta)
    assert abs(f1 - f0) <= 1e-12 * abs(f0)
    assert rel(g1, g0) <= 1e-12
    assert rel(blocked.hessp(theta, v), in_memory.hessp(theta, v)) <= 1e-12

    # An independent check: the network's error and gradient over all rows, the decay written out.
    params = network.unflatten(theta, D, M, K)
    T = np.eye(K)[k] if output == "softmax" else k
    E, grads = network.error_and_gradient(params, X, T, w, activation="tanh", output=output)
    groups = (lam, 0.0, lam, 0.0) if np.isscalar(lam) else lam
    f = E / N + sum(0.5 * a * float(np.vdot(p, p)) for a, p in zip(groups, params))
    g = network.flatten([gp / N + a * p for gp, a, p in zip(grads, groups, params)])
    assert abs(f1 - f) <= 1e-12 * abs(f)
    assert rel(g1, g) <= 1e-12
    # The Hessian-vector product against a central difference of that gradient (an independent check).
    h = 1e-5

    def grad_at(t: np.ndarray) -> np.ndarray:
        _, gr = network.error_and_gradient(network.unflatten(t, D, M, K), X, T, w, activation="tanh", output=output)
        decay = network.flatten([a * p for a, p in zip(groups, network.unflatten(t, D, M, K))])
        return network.flatten(gr) / N + decay

    fd = (grad_at(theta + h * v) - grad_at(theta - h * v)) / (2 * h)
    assert rel(blocked.hessp(theta, v), fd) <= 1e-6


def test_map_sum_adds_in_a_fixed_tree(on_cluster):
    """Partial sums added in one order whatever the scheduling: the same bits every time, and over chosen blocks."""
    values = np.random.default_rng(5).normal(size=(1000, 3)) * 10.0 ** np.arange(-8, 8, 16 / 1000)[:, None]
    blocks = tc.as_row_blocks(da.from_array(values, chunks=((10,) * 100, 3)))
    assert blocks.n_blocks == 100 > tc.FAN_IN**2  # a tree of three levels

    def column_sums(x: np.ndarray) -> np.ndarray:
        return x.sum(axis=0)

    first = blocks.map_sum(column_sums)
    assert all(np.array_equal(blocks.map_sum(column_sums), first) for _ in range(3))
    np.testing.assert_allclose(first, values.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(blocks.map_sum(column_sums, blocks=[3, 7]), values[30:40].sum(0) + values[70:80].sum(0))


# --------------------------------------------------------------------------
# 2. TwoLayerClassifier.fit on Dask collections equals the in-memory fit
# --------------------------------------------------------------------------


@quiet_convergence
def test_lbfgs_fit_equals_the_in_memory_fit(where):
    X, y = problem()
    settings = {"n_hidden": 6, "solver": "lbfgs", "max_iter": 40, "alpha": 0.01, "random_state": 0}
    memory = TwoLayerClassifier(**settings).fit(X, y)
    dask_fit = TwoLayerClassifier(**settings).fit(blocks_of(X), blocks_of(y))
    assert dask_fit.n_iter_ == memory.n_iter_ == 40
    for a, b in zip(dask_fit.coefs_ + dask_fit.intercepts_, memory.coefs_ + memory.intercepts_):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10)
    assert dask_fit.loss_ == pytest.approx(memory.loss_, rel=1e-12)
    np.testing.assert_allclose(dask_fit.loss_curve_, memory.loss_curve_, rtol=1e-10)
    np.testing.assert_array_equal(dask_fit.classes_, memory.classes_)
    assert dask_fit.n_features_in_ == 5 and not hasattr(dask_fit, "feature_names_in_")


@quiet_convergence
@pytest.mark.parametrize("solver", ["newton-cg", "trust-ncg", "scg"])
def test_second_order_fits_run_and_agree(on_cluster, solver):
    X, y = problem()
    # Few iterations: each is many Hessian products, a round trip to the workers each.
    settings = {"n_hidden": 5, "solver": solver, "max_iter": 5, "alpha": 0.01, "random_state": 1}
    memory = TwoLayerClassifier(**settings).fit(X, y)
    dask_fit = TwoLayerClassifier(**settings).fit(blocks_of(X), blocks_of(y))
    assert dask_fit.n_iter_ == memory.n_iter_
    np.testing.assert_allclose(theta_of(dask_fit), theta_of(memory), rtol=0, atol=1e-9)
    assert dask_fit.loss_ == pytest.approx(memory.loss_, rel=1e-10)


@quiet_convergence
@pytest.mark.parametrize(
    "weighting",
    ["sample_weight", "sample_weight-numpy", "balanced", "dict", "dict-and-sample_weight"],
)
def test_weighted_fits_equal_the_in_memory_ones(on_cluster, weighting):
    X, y = problem(seed=2)
    y[:150] = np.where(y[:150] == 2, 0, y[:150])  # unbalanced classes, for class_weight to matter
    s = np.random.default_rng(4).uniform(0.0, 2.0, X.shape[0])
    settings: dict[str, Any] = {"n_hidden": 4, "solver": "lbfgs", "max_iter": 25, "random_state": 0}
    sample_weight = None
    if weighting.startswith("sample_weight"):
        sample_weight = s
    if weighting == "balanced":
        settings["class_weight"] = "balanced"
    if weighting.startswith("dict"):
        settings["class_weight"] = {0: 0.5, 1: 2.0, 2: 3.0}
        sample_weight = s if weighting.endswith("sample_weight") else None
    memory = TwoLayerClassifier(**settings).fit(X, y, sample_weight=sample_weight)
    given = None
    if sample_weight is not None:
        given = sample_weight if weighting.endswith("numpy") else blocks_of(sample_weight, (100, 130))
    dask_fit = TwoLayerClassifier(**settings).fit(blocks_of(X), blocks_of(y), sample_weight=given)
    assert dask_fit.n_iter_ == memory.n_iter_
    np.testing.assert_allclose(theta_of(dask_fit), theta_of(memory), rtol=0, atol=1e-10)
    assert dask_fit.loss_ == pytest.approx(memory.loss_, rel=1e-12)
    unweighted = TwoLayerClassifier(**{**settings, "class_weight": None}).fit(X, y)
    assert not np.allclose(theta_of(dask_fit), theta_of(unweighted), atol=1e-3)  # the weights did act


@quiet_convergence
def test_dataframe_gives_feature_names_and_float32_stays_float32(on_cluster):
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    X, y = problem()
    names = ["alpha", "beta", "gamma", "delta", "eps"]
    frame = dd.from_pandas(pd.DataFrame(X, columns=names), npartitions=3)
    labels = dd.from_pandas(pd.Series(y, name="label"), npartitions=3)
    settings = {"n_hidden": 4, "solver": "lbfgs", "max_iter": 20, "random_state": 0}
    memory = TwoLayerClassifier(**settings).fit(pd.DataFrame(X, columns=names), y)
    dask_fit = TwoLayerClassifier(**settings).fit(frame, labels)
    assert list(dask_fit.feature_names_in_) == names
    np.testing.assert_allclose(theta_of(dask_fit), theta_of(memory), rtol=0, atol=1e-10)
    # Predictions on the dataframe: its blocks keep their column names (no warning that they were lost).
    np.testing.assert_allclose(
        dask_fit.predict_proba(frame).compute(), memory.predict_proba(pd.DataFrame(X, columns=names)), atol=1e-10
    )
    # Text labels of pandas' string dtype (what read_parquet gives), taken as they are, without Dask's warning.
    words = dd.from_pandas(pd.Series(np.array(["a", "b", "c"])[y], dtype="string"), npartitions=3)
    by_words = TwoLayerClassifier(**settings).fit(frame, words)
    assert list(by_words.classes_) == ["a", "b", "c"]
    np.testing.assert_allclose(theta_of(by_words), theta_of(memory), rtol=0, atol=1e-10)

    # In float32 a sum's last bit depends on where the blocks' buffers happen to lie, and twenty L-BFGS
    # steps magnify it past 1e-4 now and then: a few steps show the dtype kept and the same path.
    X32 = X.astype(np.float32)
    settings32 = {**settings, "max_iter": 5}
    memory32 = TwoLayerClassifier(**settings32).fit(X32, y)
    dask32 = TwoLayerClassifier(**settings32).fit(blocks_of(X32), blocks_of(y))
    assert all(p.dtype == np.float32 for p in dask32.coefs_ + dask32.intercepts_)
    assert dask32.predict_proba(X32).dtype == memory32.predict_proba(X32).dtype
    np.testing.assert_allclose(theta_of(dask32), theta_of(memory32), rtol=0, atol=2e-5)


@quiet_convergence
def test_a_label_column_of_a_parquet_folder_fits(where, tmp_path):
    """``fit(df[features], df[label])`` on ``read_parquet``: the one small column is read several files
    to a partition, fewer partitions than the features have (dask-expr then refused its own row counts)."""
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    X, y = problem(n=8 * 150, d=20)
    names = [f"x{j}" for j in range(20)]
    for k in range(8):
        part = pd.DataFrame(X[k * 150 : (k + 1) * 150], columns=names).assign(label=y[k * 150 : (k + 1) * 150])
        part.to_parquet(tmp_path / f"part-{k}.parquet")
    frame = dd.read_parquet(str(tmp_path))
    assert frame["label"].optimize().npartitions < frame[names].optimize().npartitions  # the case at hand
    settings = {"n_hidden": 4, "solver": "lbfgs", "max_iter": 10, "random_state": 0}
    from_files = TwoLayerClassifier(**settings).fit(frame[names], frame["label"])
    memory = TwoLayerClassifier(**settings).fit(X, y)
    np.testing.assert_allclose(theta_of(from_files), theta_of(memory), rtol=0, atol=1e-10)


@quiet_convergence
def test_multilabel_fit_equals_the_in_memory_fit(where):
    X, Y = make_multilabel_classification(n_samples=200, n_features=5, n_classes=3, random_state=0)
    X = X / X.max()
    settings = {"n_hidden": 4, "solver": "lbfgs", "max_iter": 20, "random_state": 0}
    memory = TwoLayerClassifier(**settings).fit(X, Y)
    dask_fit = TwoLayerClassifier(**settings).fit(blocks_of(X, (80, 80, 40)), blocks_of(Y, (80, 80, 40)))
    assert dask_fit.out_activation_ == "logistic" == memory.out_activation_
    np.testing.assert_array_equal(dask_fit.classes_, memory.classes_)
    np.testing.assert_allclose(theta_of(dask_fit), theta_of(memory), rtol=0, atol=1e-10)
    assert dask_fit.loss_ == pytest.approx(memory.loss_, rel=1e-12)
    lazy = dask_fit.predict(blocks_of(X, (80, 80, 40)))
    assert isinstance(lazy, da.Array)
    np.testing.assert_array_equal(lazy.compute(), memory.predict(X))


# --------------------------------------------------------------------------
# 3. Minibatch fits: one block is the in-memory fit; several are reproducible and resume exactly
# --------------------------------------------------------------------------

ADAM = {"n_hidden": 5, "solver": "adam", "batch_size": 32, "learning_rate_init": 0.01, "alpha": 0.001}


@quiet_convergence
def test_adam_on_one_block_is_the_in_memory_fit_bit_for_bit(where):
    X, y = problem()
    settings = {**ADAM, "max_iter": 8, "random_state": 3}
    memory = TwoLayerClassifier(**settings).fit(X, y)
    dask_fit = TwoLayerClassifier(**settings).fit(da.from_array(X, chunks=-1), da.from_array(y, chunks=-1))
    np.testing.assert_array_equal(theta_of(dask_fit), theta_of(memory))
    assert dask_fit.loss_curve_ == memory.loss_curve_ and dask_fit.t_ == memory.t_


@quiet_convergence
def test_adam_on_blocks_is_reproducible_and_resumes_bit_for_bit(on_cluster):
    X, y = problem()
    Xd, yd = blocks_of(X), blocks_of(y)
    common = {**ADAM, "random_state": 7}
    whole = TwoLayerClassifier(max_iter=6, **common).fit(Xd, yd)
    again = TwoLayerClassifier(max_iter=6, **common).fit(Xd, yd)
    np.testing.assert_array_equal(theta_of(again), theta_of(whole))
    assert again.loss_curve_ == whole.loss_curve_
    other = TwoLayerClassifier(max_iter=6, **{**common, "random_state": 8}).fit(Xd, yd)
    assert not np.array_equal(theta_of(other), theta_of(whole))  # the seed does choose the order

    first = TwoLayerClassifier(max_iter=6, callback=lambda m: m.n_iter_ == 3, **common).fit(Xd, yd)
    assert first.n_iter_ == 3
    resumed = TwoLayerClassifier(**common).set_training_state(first.get_training_state())
    resumed.set_params(warm_start=True, max_iter=3).fit(Xd, yd)
    np.testing.assert_array_equal(theta_of(resumed), theta_of(whole))
    assert resumed.loss_curve_ == whole.loss_curve_ and resumed.t_ == whole.t_


# --------------------------------------------------------------------------
# 4. Prediction on a Dask array is lazy and equals the in-memory one
# --------------------------------------------------------------------------


@quiet_convergence
@pytest.mark.parametrize("n_classes", [2, 3])
def test_predictions_on_a_dask_array_are_lazy_and_equal(where, n_classes):
    X, y = problem(n_classes=n_classes)
    model = TwoLayerClassifier(n_hidden=4, solver="lbfgs", max_iter=15, random_state=0).fit(X, y)
    Xd = blocks_of(X)
    for method in ("predict", "predict_proba", "predict_log_proba", "decision_function"):
        lazy = getattr(model, method)(Xd)
        expected = getattr(model, method)(X)
        assert isinstance(lazy, da.Array), method
        assert lazy.chunks[0] == UNEVEN and lazy.shape == expected.shape, method
        computed = lazy.compute()
        assert computed.dtype == expected.dtype, method
        np.testing.assert_array_equal(computed, expected, err_msg=method)


# --------------------------------------------------------------------------
# 5. Bad input
# --------------------------------------------------------------------------


def test_nan_in_one_block_is_named_by_block_row_and_column(where):
    X, y = problem()
    X[140 + 7, 3] = np.nan  # block 2 (rows 140 to 189), its row 7
    model = TwoLayerClassifier(n_hidden=3, solver="lbfgs", max_iter=5)
    with pytest.raises(NonFiniteInput, match=r"NaN in block 2 at its row 7 \(row 147 of the whole\), column 3"):
        model.fit(blocks_of(X), blocks_of(y))
    assert not hasattr(model, "classes_")  # refused before training: the estimator is as it was
    X[147, 3] = -np.inf
    X[200, 0] = np.nan  # a later block: the first bad block in row order is named
    with pytest.raises(NonFiniteInput, match=r"infinity in block 2 at its row 7 \(row 147 of the whole\), column 3"):
        tc.as_row_blocks(blocks_of(X)).check_finite()


def test_rows_that_do_not_match_are_refused(where):
    X, y = problem()
    with pytest.raises(DataError, match="X has 230 rows but y has 229"):
        TwoLayerClassifier(n_hidden=3, solver="lbfgs").fit(blocks_of(X), da.from_array(y[:-1], chunks=100))
    with pytest.raises(DataError, match="X has 230 rows but y has 229"):
        tc.as_row_blocks(blocks_of(X), da.from_array(y[:-1], chunks=100))


@quiet_convergence
def test_differently_chunked_x_and_y_are_aligned(where):
    X, y = problem()
    s = np.random.default_rng(1).uniform(0.5, 1.5, X.shape[0])
    settings = {"n_hidden": 4, "solver": "lbfgs", "max_iter": 15, "random_state": 0}
    aligned = TwoLayerClassifier(**settings).fit(blocks_of(X), blocks_of(y), sample_weight=blocks_of(s))
    mixed = TwoLayerClassifier(**settings).fit(
        blocks_of(X), da.from_array(y, chunks=33), sample_weight=da.from_array(s, chunks=101)
    )
    # The same sums over the same blocks; a rechunked y or s is a new buffer whose alignment can change
    # the last bit of NumPy's vectorised reductions, so equal to rounding rather than bit for bit.
    np.testing.assert_allclose(theta_of(mixed), theta_of(aligned), rtol=1e-11, atol=1e-13)
    blocks = tc.as_row_blocks(blocks_of(X), da.from_array(y, chunks=33), s)
    assert blocks.lengths == UNEVEN
    for b, (Xb, yb, sb) in blocks.iter_blocks([2, 0]):
        start = int(blocks.offsets[b])
        np.testing.assert_array_equal(Xb, X[start : start + UNEVEN[b]])
        np.testing.assert_array_equal(yb, y[start : start + UNEVEN[b]])
        np.testing.assert_array_equal(sb, s[start : start + UNEVEN[b]])


def test_a_text_column_is_refused_by_name(where):
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    X, y = problem(n=40)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(5)])
    frame["colour"] = np.where(y == 0, "red", "blue")
    with pytest.raises(DataError, match="column 'colour' is not numeric"):
        TwoLayerClassifier(n_hidden=3, solver="lbfgs").fit(
            dd.from_pandas(frame, npartitions=2), dd.from_pandas(pd.Series(y), npartitions=2)
        )


@quiet_convergence
def test_early_stopping_needs_a_validation_set_of_ones_own(on_cluster):
    X, y = problem()
    Xd, yd = blocks_of(X), blocks_of(y)
    settings = {**ADAM, "early_stopping": True, "n_iter_no_change": 3, "max_iter": 12, "random_state": 0}
    with pytest.raises(ValueError, match="needs a validation set of your own"):
        TwoLayerClassifier(**settings).fit(Xd, yd)
    X_val, y_val = problem(n=60, seed=9)
    model = TwoLayerClassifier(**settings).fit(Xd, yd, X_val=X_val, y_val=y_val)
    scores = model.validation_scores_
    assert len(scores) == model.n_iter_ >= 1
    # The recorded scores are the accuracies of the epochs' weights on the validation set.
    assert model.best_validation_score_ == max(scores)
    assert model.score(X_val, y_val) == pytest.approx(model.best_validation_score_)


# --------------------------------------------------------------------------
# 6. A worker killed during a fit: its blocks are computed again, the fit ends as it would have
# --------------------------------------------------------------------------


@quiet_convergence
def test_a_worker_killed_during_a_fit(on_cluster):
    client = on_cluster
    X, y = problem(n=400)
    Xd, yd = blocks_of(X, (50,) * 8), blocks_of(y, (50,) * 8)
    settings = {"n_hidden": 5, "solver": "lbfgs", "max_iter": 12, "alpha": 0.01, "random_state": 0}
    undisturbed = TwoLayerClassifier(**settings).fit(Xd, yd)
    before = client.run(os.getpid)
    assert len(before) == 2
    killed: list[int] = []

    def kill_one(model: TwoLayerClassifier) -> bool:
        if model.n_iter_ == 3 and not killed:
            pid = next(iter(before.values()))
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        return False

    disturbed = TwoLayerClassifier(**settings, callback=kill_one).fit(Xd, yd)
    assert killed
    np.testing.assert_array_equal(theta_of(disturbed), theta_of(undisturbed))
    assert disturbed.loss_curve_ == undisturbed.loss_curve_
    client.wait_for_workers(2, timeout=60)  # the nanny started a new one for the rest of the file
    after = client.run(os.getpid)
    assert killed[0] not in after.values() and len(after) == 2


# --------------------------------------------------------------------------
# 7. dask_ml's Incremental: partial_fit on each block
# --------------------------------------------------------------------------


@quiet_convergence
def test_dask_ml_incremental(on_cluster):
    wrappers = pytest.importorskip("dask_ml.wrappers")
    X, y = problem()
    Xd, yd = blocks_of(X), blocks_of(y)
    settings = {**ADAM, "random_state": 2}
    incremental = wrappers.Incremental(TwoLayerClassifier(**settings), shuffle_blocks=False)
    incremental.fit(Xd, yd, classes=[0, 1, 2])
    by_hand = TwoLayerClassifier(**settings)
    for start, stop in zip(np.cumsum((0, *UNEVEN[:-1])), np.cumsum(UNEVEN)):
        by_hand.partial_fit(X[start:stop], y[start:stop], classes=[0, 1, 2])
    np.testing.assert_array_equal(theta_of(incremental.estimator_), theta_of(by_hand))
    predicted = incremental.predict(Xd)
    assert isinstance(predicted, da.Array)
    np.testing.assert_array_equal(predicted.compute(), by_hand.predict(X))


# --------------------------------------------------------------------------
# 8. Dask stays out of the NumPy path
# --------------------------------------------------------------------------


def test_importing_and_fitting_on_numpy_does_not_import_dask():
    script = textwrap.dedent(
        """
        import sys
        import numpy as np
        import twolayer
        from twolayer import TwoLayerClassifier
        X = np.random.default_rng(0).normal(size=(60, 3)); y = (X[:, 0] > 0).astype(int)
        model = TwoLayerClassifier(n_hidden=3, solver="lbfgs", max_iter=5).fit(X, y)
        model.predict_proba(X)
        TwoLayerClassifier(n_hidden=3, max_iter=2).fit(X, y)
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in {"dask", "distributed", "dask_ml", "dask_expr"})
        print(loaded)
        """
    )
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


# --------------------------------------------------------------------------
# 9. The driver's memory does not grow with the data
# --------------------------------------------------------------------------


def _lazy_problem(n_rows: int, n_blocks: int, D: int) -> tuple[Any, Any]:
    """Patterns drawn block by block on the workers (never here) and labels computed from them."""
    rng = da.random.default_rng(42)
    X = rng.standard_normal((n_rows, D), chunks=(n_rows // n_blocks, D))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int64)
    return X, y


def _driver_peak(n_rows: int) -> tuple[int, TwoLayerClassifier]:
    X, y = _lazy_problem(n_rows, n_blocks=4, D=20)
    model = TwoLayerClassifier(n_hidden=8, solver="lbfgs", max_iter=4, random_state=0)
    tracemalloc.start()
    try:
        model.fit(X, y)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, model


@quiet_convergence
def test_driver_memory_stays_flat_while_the_data_grow(on_cluster, monkeypatch):
    monkeypatch.setattr(tc, "PERSIST_SHARE", 0.0)  # never held: every pass reads the blocks from their source
    small_rows = 10_000
    assert not tc.as_row_blocks(_lazy_problem(small_rows, 4, 20)[0]).persisted
    small, _ = _driver_peak(small_rows)
    large, model = _driver_peak(10 * small_rows)
    block_bytes = 10 * small_rows * 20 * 8 // 4  # one of the large X's four blocks: 4 MB
    assert model.n_iter_ == 4
    assert large < 1.5 * small + 512 * 1024, (small, large)
    # The scheduler runs in this process too and is counted; even so, not half of one block is ever here.
    assert large < block_bytes / 2, (large, block_bytes)
