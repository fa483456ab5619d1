"""The memory guards: what is available, the estimates against real allocations, and the refusals.

The estimates are compared with the peak that ``tracemalloc`` records of the
real computation (it sees NumPy's allocations, not LAPACK's own workspace).
The refusals run with :func:`twolayer.resources.available_memory` patched to a
small value, so that nothing large is ever allocated: each refused call is
also checked to allocate almost nothing.
"""

from __future__ import annotations

import tracemalloc
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

from twolayer import curvature, network, resources
from twolayer.bayes import BayesianTwoLayerClassifier, predictive_mc
from twolayer.bayes.memory import fit_estimate as bayes_fit_estimate
from twolayer.bayes.memory import predict_estimate
from twolayer.classifier import TwoLayerClassifier
from twolayer.classifier.memory import fit_estimate
from twolayer.errors import HighMemoryWarning, InsufficientMemory, MemoryEstimate, format_bytes
from twolayer.report import spectrum

MiB = 1 << 20
GiB = 1 << 30

# An estimate is "honest" within these factors of what tracemalloc records: below 1 it would
# let through a little more than fits, above it refuse a little that would.
LOW, HIGH = 0.6, 1.7


def traced_peak(call: Callable[[], Any]) -> int:
    """The peak of NumPy's (and Python's) allocations during ``call()``, above what was there before."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        call()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


@contextmanager
def available(monkeypatch: pytest.MonkeyPatch, nbytes: int | None) -> Iterator[None]:
    with monkeypatch.context() as m:
        m.setattr(resources, "available_memory", lambda: nbytes)
        yield


def problem(N: int, D: int, K: int, dtype: Any = np.float64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((N, D)).astype(dtype), np.arange(N) % K


# --------------------------------------------------------------------------
# available_memory
# --------------------------------------------------------------------------


def test_available_memory_is_a_positive_number_at_most_the_physical_memory() -> None:
    found = resources.available_memory()
    if found is None:
        pytest.skip("this system does not say how much memory is available")
    assert isinstance(found, int) and found > 0
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        total = next(
            int(line.split()[1]) * 1024 for line in meminfo.read_text().splitlines() if line.startswith("MemTotal:")
        )
        assert found <= total


def test_a_control_group_limit_below_the_free_memory_is_what_is_available(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit, usage, stat = tmp_path / "memory.max", tmp_path / "memory.current", tmp_path / "memory.stat"
    limit.write_text("1073741824\n")
    usage.write_text("536870912\n")
    # Half the usage is page cache the kernel drops first: not in the way of an allocation.
    stat.write_text("anon 268435456\nfile 268435456\ninactive_file 268435456\nactive_file 0\n")
    monkeypatch.setattr(resources, "_CGROUP_FILES", ((limit, usage, stat, "inactive_file"),))
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24683784 kB\nMemFree:  100 kB\nMemAvailable:   20000000 kB\n")
    monkeypatch.setattr(resources, "_MEMINFO", meminfo)
    assert resources.available_memory() == (1 << 30) - (1 << 28)
    stat.unlink()  # without statistics, all of the usage counts
    assert resources.available_memory() == (1 << 30) - (1 << 29)
    limit.write_text("max\n")  # no limit: MemAvailable
    assert resources.available_memory() == 20000000 * 1024


def test_unknown_memory_checks_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resources, "_CGROUP_FILES", ())
    monkeypatch.setattr(resources, "_MEMINFO", tmp_path / "missing")
    monkeypatch.setattr(resources.os, "sysconf", lambda name: -1)
    assert resources.available_memory() is None
    resources.check_memory(1e30, "anything", "n_hidden")  # nothing known, nothing refused


# --------------------------------------------------------------------------
# check_memory and its sentences
# --------------------------------------------------------------------------


def test_the_refusal_is_one_sentence_with_the_estimate_the_memory_and_the_parameters() -> None:
    estimate = MemoryEstimate(
        int(74.5 * (1 << 30)),
        int(21.3 * (1 << 30)) + 1,
        "training",
        "weights, Adam state, a batch of 200 working arrays",
        ("n_hidden", "batch_size"),
    )
    assert str(InsufficientMemory(estimate)) == (
        "training needs about 74.5 GiB (weights, Adam state, a batch of 200 working arrays) but 21.3 GiB "
        "is available; lower n_hidden or batch_size"
    )
    switched = MemoryEstimate(3 * MiB, 2 * MiB, "prediction", "", ("n_samples",), (("method", "probit"),))
    assert (
        switched.refusal()
        == "prediction needs about 3.0 MiB but 2.0 MiB is available; lower n_samples, or use method='probit'"
    )
    assert switched.refusal({"n_samples": "--mc-samples"}, {"method": "--predictive probit"}).endswith(
        "lower --mc-samples, or use --predictive probit"
    )
    assert format_bytes(12) == "12 bytes" and format_bytes(1536) == "1.5 KiB" and format_bytes(3 << 40) == "3.0 TiB"


def test_check_memory_refuses_past_what_is_available_and_warns_past_half(monkeypatch: pytest.MonkeyPatch) -> None:
    with available(monkeypatch, 1000 * MiB):
        with pytest.raises(InsufficientMemory, match="lower n_hidden") as caught:
            resources.check_memory(1001 * MiB, "training", "n_hidden")
        assert isinstance(caught.value, MemoryError)
        assert caught.value.needed == 1001 * MiB and caught.value.available == 1000 * MiB
        assert caught.value.parameters == ("n_hidden",)
        with pytest.warns(HighMemoryWarning, match="more than half of the 1000.0 MiB available"):
            resources.check_memory(600 * MiB, "training", "n_hidden")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            resources.check_memory(500 * MiB, "training", "n_hidden")  # half: silent
            with resources.covered():  # a caller checked the whole
                resources.check_memory(1e30, "training", "n_hidden")
        with pytest.raises(InsufficientMemory):  # covered() ended
            resources.check_memory(1e30, "training", "n_hidden")


# --------------------------------------------------------------------------
# The estimates against what is really allocated
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("solver", "dtype", "N", "D", "M", "K", "extra"),
    [
        ("adam", np.float32, 300, 60, 1500, 10, {}),
        ("sgd", np.float64, 300, 60, 1500, 10, {}),
        ("adam", np.float32, 1000, 20, 600, 4, {"early_stopping": True}),
        ("adam", np.float64, 500, 60, 800, 10, {"batch_size": 500}),
        ("lbfgs", np.float32, 300, 60, 1500, 10, {}),
        ("lbfgs", np.float64, 3000, 10, 200, 3, {}),
        ("trust-ncg", np.float64, 2000, 10, 200, 3, {}),
        ("scg", np.float32, 200, 40, 800, 5, {}),
    ],
)
def test_the_fit_estimate_is_close_to_what_a_fit_allocates(
    solver: str, dtype: Any, N: int, D: int, M: int, K: int, extra: dict[str, Any]
) -> None:
    X, y = problem(N, D, K, dtype)
    settings = {"n_hidden": M, "solver": solver, "max_iter": 2, "random_state": 0, **extra}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # two iterations do not converge
        TwoLayerClassifier(**settings).fit(X[: 20 * K], y[: 20 * K])  # compile and import first
        peak = traced_peak(lambda: TwoLayerClassifier(**settings).fit(X, y))
    estimate = fit_estimate(
        n_samples=N,
        n_features=D,
        n_hidden=M,
        n_classes=K,
        dtype=dtype,
        solver=solver,
        batch_size=extra.get("batch_size", "auto"),
        early_stopping=extra.get("early_stopping", False),
    )[0]
    assert LOW <= estimate / peak <= HIGH, (estimate, peak)


@pytest.mark.parametrize("kind", ["hessian", "gauss_newton", "last_layer", "diagonal", "products", "weight_jacobian"])
@pytest.mark.parametrize(("N", "D", "M", "K"), [(500, 20, 30, 5), (1000, 10, 60, 3), (60, 40, 30, 10)])
def test_the_curvature_estimates_are_close_to_what_the_functions_allocate(
    kind: str, N: int, D: int, M: int, K: int
) -> None:
    X, y = problem(N, D, K)
    T = np.eye(K)[y]
    params = network.init_params(D, M, K, random_state=0)
    v = np.random.default_rng(1).standard_normal(network.n_params(D, M, K))
    calls: dict[str, Callable[[], Any]] = {
        "hessian": lambda: curvature.hessian(params, X, T),
        "gauss_newton": lambda: curvature.gauss_newton(params, X, T),
        "last_layer": lambda: curvature.last_layer_hessian(params, X),
        "diagonal": lambda: curvature.hessian_diagonal(params, X, T),
        "products": lambda: curvature.hessian_operator(params, X, T).matvec(v),
        "weight_jacobian": lambda: curvature.weight_jacobian(params, X),
    }
    peak = traced_peak(calls[kind])
    estimate = curvature.memory_estimate(kind, N, D, M, K)
    assert LOW <= estimate / peak <= HIGH, (estimate, peak)


@pytest.mark.parametrize(
    ("structure", "alpha_search", "N", "D", "M", "K"),
    [
        ("full", "fixed_point", 200, 30, 10, 5),
        ("full", "grid", 300, 10, 20, 3),
        ("last_layer", "fixed_point", 1000, 5, 8, 4),
        ("diagonal", "fixed_point", 1000, 5, 8, 4),
    ],
)
def test_the_bayesian_estimates_are_close_to_what_fit_and_predict_allocate(
    structure: str, alpha_search: str, N: int, D: int, M: int, K: int
) -> None:
    X, y = problem(N, D, K)
    settings = {
        "n_hidden": M,
        "structure": structure,
        "alpha_search": alpha_search,
        "alpha_grid": [0.1, 1.0, 10.0],
        "max_cycles": 2,
        "max_iter": 30,
        "random_state": 0,
    }
    fitted: list[BayesianTwoLayerClassifier] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few iterations and cycles do not converge
        BayesianTwoLayerClassifier(**settings).fit(X[:40], y[:40])  # import and compile first
        peak = traced_peak(lambda: fitted.append(BayesianTwoLayerClassifier(**settings).fit(X, y)))
    estimate = bayes_fit_estimate(
        n_samples=N,
        n_features=D,
        n_hidden=M,
        n_classes=K,
        structure=structure,
        hessian="gauss_newton",
        alpha_search=alpha_search,
    )[0]
    assert LOW <= estimate / peak <= HIGH, (estimate, peak)
    peak = traced_peak(lambda: fitted[0].predict_proba(X))
    estimate = predict_estimate(N, D, M, K, structure, "mc", 1000)
    assert LOW <= estimate / peak <= HIGH, (estimate, peak)


@pytest.mark.parametrize(("N", "D", "M", "K", "full"), [(200, 10, 20, 3, True), (100, 10, 150, 3, False)])
def test_the_spectrum_estimate_is_close_to_what_the_spectra_allocate(
    N: int, D: int, M: int, K: int, full: bool
) -> None:
    X, y = problem(N, D, K)
    T = np.eye(K)[y]
    params = network.init_params(D, M, K, random_state=0)

    def spectra() -> None:
        spectrum.curvature_spectra(
            params, X, T, None, activation="tanh", prior_precision=[1e-3, 0, 1e-3, 0], k=2, max_products=40, full=full
        )

    peak = traced_peak(spectra)
    parts = spectrum.memory_estimate(N, D, M, K, 2, full)
    estimate = parts["known"] + parts["products"] + max(parts["lanczos"], parts["dense"])
    assert LOW <= estimate / peak <= HIGH, (estimate, peak)


# --------------------------------------------------------------------------
# Refusals through the Python API: at once, naming the Python parameter, nothing allocated
# --------------------------------------------------------------------------


def test_a_fit_too_large_is_refused_before_it_allocates_and_leaves_the_estimator_as_it_was(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    X, y = problem(200, 8, 3)
    model = TwoLayerClassifier(n_hidden=5, max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, y)
    before = model.predict_proba(X)
    model.set_params(n_hidden=10**9)
    with available(monkeypatch, 64 * MiB):
        caught: list[InsufficientMemory] = []

        def fit() -> None:
            with pytest.raises(
                InsufficientMemory, match=r"training needs about .* TiB .* lower n_hidden or batch_size"
            ) as e:
                model.fit(X, y)
            caught.append(e.value)

        assert traced_peak(fit) < 4 * MiB  # refused before anything of the network's size
    assert caught[0].needed > (1 << 40)
    np.testing.assert_array_equal(model.predict_proba(X), before)  # the earlier fit is intact


def test_a_fresh_estimator_refused_stays_unfitted(monkeypatch: pytest.MonkeyPatch) -> None:
    X, y = problem(100, 8, 3)
    for model in (TwoLayerClassifier(n_hidden=10**7), BayesianTwoLayerClassifier(n_hidden=10**5)):
        with available(monkeypatch, 64 * MiB), pytest.raises(InsufficientMemory, match="n_hidden"):
            model.fit(X, y)
        with pytest.raises(Exception, match="not fitted"):
            check_is_fitted(model, "classes_")


def test_the_second_order_solvers_suggest_lbfgs_and_the_check_can_come_first(monkeypatch: pytest.MonkeyPatch) -> None:
    model = TwoLayerClassifier(n_hidden=1000, solver="trust-ncg")
    with available(monkeypatch, 64 * MiB), pytest.raises(InsufficientMemory, match="use solver='lbfgs'"):
        model.check_fit_memory(100_000, 50, 10)
    with available(monkeypatch, None):
        model.check_fit_memory(100_000, 50, 10)  # unknown memory: no opinion


def test_a_fit_past_half_the_memory_warns_and_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    X, y = problem(100, 8, 3, np.float32)
    nbytes = fit_estimate(n_samples=100, n_features=8, n_hidden=5, n_classes=3, dtype=np.float32, solver="adam")[0]
    model = TwoLayerClassifier(n_hidden=5, max_iter=2, random_state=0)
    with available(monkeypatch, int(1.5 * nbytes)), pytest.warns(HighMemoryWarning) as record:
        warnings.simplefilter("ignore", category=ConvergenceWarning)  # two epochs
        model.fit(X, y)
    assert len(record) == 1
    assert "training needs about" in str(record[0].message) and "more than half" in str(record[0].message)
    assert record[0].filename == __file__  # points at the caller of fit
    check_is_fitted(model)


def test_the_bayesian_network_refuses_huge_monte_carlo_samples_before_training(monkeypatch: pytest.MonkeyPatch) -> None:
    X, y = problem(100, 4, 3)
    model = BayesianTwoLayerClassifier(n_hidden=3, n_samples=10**10)
    calls: list[Any] = []
    monkeypatch.setattr("twolayer.bayes.estimator.map_estimate", lambda *a, **k: calls.append(a))
    with pytest.raises(InsufficientMemory, match=r"prediction needs about .* lower n_samples, or use method='probit'"):
        model.fit(X, y)  # on any machine: 10**10 draws of 3 logits are 240 GB
    assert calls == []  # no training was started


def test_the_bayesian_network_names_its_structure(monkeypatch: pytest.MonkeyPatch) -> None:
    X, y = problem(100, 64, 10)
    model = BayesianTwoLayerClassifier(n_hidden=2000)
    with (
        available(monkeypatch, 1 << 30),
        pytest.raises(InsufficientMemory, match=r"fit needs about .* lower n_hidden, or use structure='diagonal'"),
    ):
        model.fit(X, y)


def test_prediction_and_curvature_refuse_too_much(monkeypatch: pytest.MonkeyPatch) -> None:
    X, y = problem(50, 4, 3)
    model = BayesianTwoLayerClassifier(n_hidden=3, max_iter=20, max_cycles=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, y)
    posterior = model.posterior_
    with pytest.raises(InsufficientMemory, match="lower n_samples"):
        posterior.predict_proba(X, n_samples=10**11)
    mean, cov = posterior.logit_distribution(X)
    with pytest.raises(InsufficientMemory, match="Monte Carlo prediction needs about"):
        predictive_mc(mean, cov, n_samples=10**11)
    params = network.init_params(64, 3000, 10, random_state=0)  # W = 225,010: H would be 405 GB
    X_big = np.zeros((2, 64))
    with pytest.raises(InsufficientMemory, match=r"the exact Hessian of a 64-3000-10 network needs about .* GiB"):
        curvature.hessian(params, X_big, np.eye(10)[[0, 1]])
    with available(monkeypatch, MiB), pytest.raises(InsufficientMemory, match="lower the number of rows of X"):
        curvature.hessian_diagonal(
            network.init_params(4, 3, 3, random_state=0), np.zeros((10_000, 4)), np.eye(3)[np.zeros(10_000, int)]
        )


def test_the_spectra_name_the_rows_and_k_where_they_matter(monkeypatch: pytest.MonkeyPatch) -> None:
    D, M, K = 4, 50, 3
    params = network.init_params(D, M, K, random_state=0)
    X = np.zeros((20_000, D))
    T = np.eye(K)[np.zeros(20_000, int)]
    with available(monkeypatch, 2 * MiB), pytest.raises(InsufficientMemory, match=r"lower the number of rows of X$"):
        spectrum.curvature_spectra(
            params, X, T, None, activation="tanh", prior_precision=[0.1] * 4, k=2, max_products=50, full=False
        )


def test_both_estimators_can_be_checked_before_the_data_is_prepared(monkeypatch: pytest.MonkeyPatch) -> None:
    with available(monkeypatch, GiB):
        TwoLayerClassifier(n_hidden=100).check_fit_memory(1000, 64, 10, dtype=np.float32)
        BayesianTwoLayerClassifier(n_hidden=20).check_fit_memory(1000, 64, 10, dtype=np.float32)
        with pytest.raises(InsufficientMemory, match="lower n_hidden, or use structure='diagonal'"):
            BayesianTwoLayerClassifier(n_hidden=2000).check_fit_memory(1000, 64, 10)
        BayesianTwoLayerClassifier(n_hidden=2000, structure="diagonal").check_fit_memory(1000, 64, 10)
