"""The sections of issue 5: epochs against the floor and the peers, and the rest.

Each function here is registered with :func:`harness.section` and returns the
tables it measured; it may also leave raw numbers in ``ctx.results`` for the
targets table. To add a section (the Hessian, the Laplace approximation),
write one more decorated function, here or in a module listed in ``run.py``'s
``SECTION_MODULES``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import contestants as cs
from harness import (
    Contestant,
    ContestantFailed,
    Skipped,
    Table,
    Timing,
    fmt_ratio,
    fmt_seconds,
    fmt_timing,
    log,
    section,
    time_interleaved,
)

HERE = Path(__file__).resolve().parent
MiB = 2**20
SLOW_PEER_REPEATS = 3


@dataclass
class Context:
    """What every section shares: the sizes, the repeats and the cached data."""

    quick: bool
    repeats: int
    n_samples: int
    hidden: int = 256
    batch: int = 200
    threads: int | None = None
    results: dict[str, Any] = field(default_factory=dict)
    _data: dict[tuple[int, str], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def data(self, dtype: Any = np.float32, n_samples: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The workload (made once per size; float64 is the float32 data widened)."""
        n = self.n_samples if n_samples is None else n_samples
        key = (n, np.dtype(dtype).name)
        if key not in self._data:
            if np.dtype(dtype) == np.float32:
                log(f"  making the workload: make_classification(n_samples={n}, n_features=784, ...)")
                self._data[key] = cs.workload(n, np.float32)
            else:
                X32, y = self.data(np.float32, n)
                # Widened from the float32 data, so both precisions train on the same numbers.
                self._data[key] = (X32.astype(dtype), y)
        return self._data[key]


def _ratio_rows(timings: dict[str, Timing], skipped: list[Skipped], *, floor: str, ours: str) -> list[list[str]]:
    """One row per contestant: time, × floor, how much slower than TwoLayerClassifier, facts."""
    rows = []
    f = timings.get(floor)
    o = timings.get(ours)
    for name, t in timings.items():
        loss = t.facts.get("loss")
        rows.append(
            [
                f"**{name}**" if name == ours else name,
                fmt_timing(t),
                fmt_ratio(t.median / f.median) if f else "-",
                fmt_ratio(t.median / o.median) if o and name not in (floor, ours) else "-",
                f"{loss:.4f}" if isinstance(loss, float) else "-",
                str(t.facts.get("dtype", "-")),
                t.note,
            ]
        )
    for s in skipped:
        rows.append([s.name, "skipped", "-", "-", "-", "-", s.reason])
    return rows


RATIO_COLUMNS = [
    "contestant",
    "time: median [min–max, n]",
    "× floor",
    "÷ TwoLayer (TwoLayer's speed-up)",
    "epoch loss",
    "dtype",
    "note",
]


def _epoch(ctx: Context, dtype: Any) -> list[Table]:
    X, y = ctx.data(dtype)
    N, D = X.shape
    K = int(y.max()) + 1
    M, B = ctx.hidden, ctx.batch
    contestants: list[Contestant | Skipped] = [
        cs.floor_products(N, D, M, K, B, dtype, X=X),
        cs.twolayer_fit(X, y, M, B),
        cs.sklearn_fit(X, y, M, B),
        cs.torch_epoch(X, y, M, B),
        cs.jax_epoch(X, y, M, B),
    ]
    # The two slowest peers run at most SLOW_PEER_REPEATS times, to keep the whole run to minutes.
    for c in contestants:
        if isinstance(c, Contestant) and c.name in ("MLPClassifier", "PyTorch"):
            c.max_repeats = min(ctx.repeats, SLOW_PEER_REPEATS)
    name = np.dtype(dtype).name
    timings, skipped = time_interleaved(contestants, ctx.repeats, what=name)
    ctx.results[f"epoch_{name}"] = {k: t.seconds for k, t in timings.items()}
    title = f"One epoch, {name}: {N} x {D}, M = {M} tanh, K = {K}, batch {B}, Adam"
    notes = [
        (
            "The floor is the five matrix products of every batch alone (preallocated, `np.matmul(out=)`); "
            "`× floor` is each median over the floor's median."
        ),
        "`÷ TwoLayer` is the contestant's median over TwoLayerClassifier's: how many times faster TwoLayerClassifier is.",
        (
            "TwoLayerClassifier and MLPClassifier time a whole `fit(max_iter=1)` (validation, initialisation, shuffling, "
            "one epoch, L2 alpha=1e-4); PyTorch and JAX a fresh model and optimiser and one epoch, without L2 penalty. "
            "`epoch loss` is each one's own report of the epoch's mean training loss (the estimators include the small "
            "L2 term): similar values show they did the same job."
        ),
        (
            "PyTorch and JAX do not use NumPy's OpenBLAS, so `OPENBLAS_CORETYPE` changes only the floor, "
            "TwoLayerClassifier and MLPClassifier."
        ),
        f"MLPClassifier and PyTorch, the slowest, run at most {SLOW_PEER_REPEATS} of the repeats (`n` in the time column).",
    ]
    return [
        Table(
            title,
            RATIO_COLUMNS,
            _ratio_rows(timings, skipped, floor="floor (5 products)", ours="TwoLayerClassifier"),
            notes,
        )
    ]


@section("epoch32", "One float32 epoch: the floor, TwoLayerClassifier and its peers")
def epoch32(ctx: Context) -> list[Table]:
    return _epoch(ctx, np.float32)


@section("parts", "Where a float32 epoch's time goes beyond the floor")
def parts(ctx: Context) -> list[Table]:
    return _parts(ctx, np.float32)


def _parts(ctx: Context, dtype: Any) -> list[Table]:
    """TwoLayerClassifier's work between the products, each part timed alone over one epoch's batches."""
    from twolayer import activations
    from twolayer.training import kernels as compiled
    from twolayer.training import objective, optim

    X, y = ctx.data(dtype)
    N, D = X.shape
    K = int(y.max()) + 1
    M, B = ctx.hidden, ctx.batch
    tanh = activations.get_activation("tanh")
    dtype_name = np.dtype(dtype).name
    starts = range(0, N, B)
    perm = np.random.default_rng(0).permutation(N)
    kernels = compiled._compiled()
    buffer = np.empty((B, D), dtype)
    layout = objective._Layout(D, M, K, 1e-4 / N)  # each block's decay, as the minibatch loop builds it
    W = layout.segments[-1][0].stop
    rng = np.random.default_rng(1)
    theta = (0.05 * rng.standard_normal(W)).astype(dtype)
    grad = (1e-3 * rng.standard_normal(W)).astype(dtype)
    adam = optim.Adam(
        W, dtype, learning_rate_init=cs.LEARNING_RATE, beta_1=cs.BETA_1, beta_2=cs.BETA_2, epsilon=cs.EPSILON
    )
    A1 = rng.standard_normal((B, M)).astype(dtype)
    Z, D1 = np.empty_like(A1), np.empty_like(A1)
    A2 = np.empty((B, K), dtype)
    logits = rng.standard_normal((B, K)).astype(dtype)
    b1, b2 = np.zeros(M, dtype), np.zeros(K, dtype)
    gb1, gb2 = np.empty(M, dtype), np.empty(K, dtype)
    yb = y[:B].astype(np.intp)
    x = np.dtype(dtype).type

    def gather_compiled() -> dict[str, Any]:
        for s in starts:
            index = perm[s : s + B]
            kernels.gather(X, index, buffer[: index.shape[0]])
        return {}

    def gather_take() -> dict[str, Any]:
        for s in starts:
            index = perm[s : s + B]
            np.take(X, index, axis=0, out=buffer[: index.shape[0]], mode="clip")
        return {}

    def adam_steps() -> dict[str, Any]:
        for _ in starts:
            adam.step(theta, grad, 1.0, layout.segments)  # the compiled step only reads grad
        return {}

    def elementwise() -> dict[str, Any]:
        # what _batch_error_and_gradient does between its products: bias and tanh, softmax and the
        # output delta, the tanh delta with the bias sums
        for _ in starts:
            np.add(A1, b1, out=Z)
            tanh.h_inplace(Z)
            np.copyto(A2, logits)
            kernels.output_delta(A2, b2, yb, None, x(1.0 / B), gb2)
            np.copyto(D1, A1)  # fresh errors each batch (the epoch has a product write them)
            kernels.delta(tanh.delta_kernel)(Z, D1, gb1, x(1.0))
        return {}

    contestants: list[Contestant | Skipped] = [cs.floor_products(N, D, M, K, B, dtype, X=X)]
    if kernels is None or kernels.gather is None:
        contestants.append(Skipped("compiled parts", "numba is not installed"))
    else:
        contestants += [
            Contestant("gathers (compiled, with the finiteness test)", gather_compiled, warmup=gather_compiled),
            Contestant("gathers (np.take)", gather_take, warmup=gather_take),
            Contestant("Adam steps (compiled, decay folded in)", adam_steps, warmup=adam_steps),
            Contestant("bias, tanh, softmax and deltas", elementwise, warmup=elementwise),
        ]
    timings, skipped = time_interleaved(contestants, ctx.repeats, what=f"parts {dtype_name}")
    floor = timings.get("floor (5 products)")
    rows = [[name, fmt_timing(t), fmt_ratio(t.median / floor.median) if floor else "-"] for name, t in timings.items()]
    rows += [[f"{s.name} (skipped)", s.reason, "-"] for s in skipped]
    notes = [
        (
            f"Each part alone, over the {len(starts)} batches of one epoch, interleaved with the floor; `× floor` is "
            "its median over the floor's. None of these is in the floor; all of them are in TwoLayerClassifier's epoch. "
            "The elementwise row also copies fresh hidden errors into place each batch (a pass the epoch does not "
            "make: about 1 ms)."
        ),
        (
            "The products use every core (BLAS threads); the parts run on one, between them: a second thread "
            "for them shares its core with OpenBLAS's worker, which busy-waits in user space for about 0.13 s after "
            "each product (a whole core of user time, no system calls, measured on OpenBLAS 0.3.31), so handing "
            "the gather to a helper thread during the Adam step measured slower, not faster. "
            "The gathers and the Adam steps are memory-bound (X is far larger than the caches; the step reads "
            "and writes four vectors of W = 203,530 entries)."
        ),
    ]
    epoch = ctx.results.get(f"epoch_{dtype_name}", {})
    if "TwoLayerClassifier" in epoch and "floor (5 products)" in epoch and floor is not None:
        epoch_ratio = float(np.median(epoch["TwoLayerClassifier"])) / float(np.median(epoch["floor (5 products)"]))
        used = {
            "gathers (compiled, with the finiteness test)",
            "Adam steps (compiled, decay folded in)",
            "bias, tanh, softmax and deltas",
        }
        accounted = sum(t.median for n, t in timings.items() if n in used) / floor.median
        notes.append(
            f"In the {dtype_name} epoch table above, TwoLayerClassifier took {epoch_ratio:.2f}× its floor; "
            f"the floor plus the three parts it runs comes to {1 + accounted:.2f}×, the rest being "
            "fit's validation, label encoding, initialisation and Python between the calls."
        )
    return [
        Table(
            f"Where a {dtype_name} epoch's time goes beyond the floor (TwoLayerClassifier's parts, each alone)",
            ["part", "time: median [min–max, n]", "× floor"],
            rows,
            notes,
        )
    ]


@section("epoch64", "One float64 epoch: the floor, TwoLayerClassifier and its peers")
def epoch64(ctx: Context) -> list[Table]:
    return _epoch(ctx, np.float64)


@section("parts64", "Where a float64 epoch's time goes beyond the floor")
def parts64(ctx: Context) -> list[Table]:
    return _parts(ctx, np.float64)


@section("fullbatch", "Full-batch error_and_gradient against its five products")
def fullbatch(ctx: Context) -> list[Table]:
    from twolayer import network
    from twolayer.training import full_batch, optim

    tables = []
    for dtype in (np.float32, np.float64):
        X, y = ctx.data(dtype)
        N, D = X.shape
        K = int(y.max()) + 1
        M = ctx.hidden
        T = np.zeros((N, K), dtype)
        T[np.arange(N), y] = 1  # 1-of-K targets
        params = network.init_params(D, M, K, random_state=0, dtype=dtype)
        floor = cs.floor_products(N, D, M, K, N, dtype, X=X)
        floor.warmup = floor.run  # touch every page of its N x M buffers before timing

        def run(params: network.Params = params, X: np.ndarray = X, T: np.ndarray = T) -> dict[str, Any]:
            E, grad = network.error_and_gradient(params, X, T)
            return {"loss": E / X.shape[0], "dtype": str(grad.W1.dtype)}

        ours = Contestant("network.error_and_gradient", run, warmup=run)
        # What L-BFGS and the second-order solvers evaluate: the same sums through the training
        # loop's workspace and compiled elementwise passes (full_batch._FullBatch, no weight decay).
        objective = full_batch._FullBatch(
            optim.TrainingData(X=X, k=y.astype(np.intp), w=None, lam=0.0), (D, M, K), dtype, "tanh"
        )
        theta = network.flatten(params)

        def run_objective(objective: Any = objective, theta: np.ndarray = theta) -> dict[str, Any]:
            f, grad = objective(theta)
            return {"loss": float(f), "dtype": str(grad.dtype)}

        fused = Contestant("L-BFGS's objective (optim)", run_objective, warmup=run_objective)
        timings, skipped = time_interleaved(
            [floor, ours, fused], ctx.repeats, what=f"full batch {np.dtype(dtype).name}"
        )
        ctx.results[f"fullbatch_{np.dtype(dtype).name}"] = {k: t.seconds for k, t in timings.items()}
        rows = _ratio_rows(timings, skipped, floor="floor (5 products)", ours="network.error_and_gradient")
        tables.append(
            Table(
                f"Full-batch `error_and_gradient`, {np.dtype(dtype).name}: all {N} rows, M = {M}",
                RATIO_COLUMNS,
                rows,
                [
                    (
                        "The floor here is the same five products at full-batch shapes "
                        "(X W1, z W2, z^T delta2, delta2 W2^T, X^T delta1), preallocated."
                    ),
                    (
                        "`network.error_and_gradient` is the readable reference, written against the array API (no `out=`, "
                        "so each chunk of rows allocates its temporaries); L-BFGS's objective computes the same sums in "
                        "preallocated buffers with the compiled softmax and tanh-delta passes. Both take "
                        f"{network.CHUNK_ROWS} rows at a time; `epoch loss` is E / N for both. In its row, `÷ TwoLayer` is its "
                        "time over the reference's."
                    ),
                ],
            )
        )
    return tables


@section("memory", "Peak memory of fit beyond the data")
def memory(ctx: Context) -> list[Table]:
    X, y = ctx.data(np.float32)
    rows = []
    with tempfile.TemporaryDirectory(prefix="twolayer-bench-") as tmp:
        np.save(Path(tmp) / "X.npy", X)
        np.save(Path(tmp) / "y.npy", y)
        for name in ("twolayer", "sklearn", "torch", "jax"):
            measured: dict[str, Any] = {}
            modes = ("rss", "tracemalloc") if name in ("twolayer", "sklearn") else ("rss",)
            for mode in modes:
                log(f"  memory: {name} ({mode}) in a subprocess")
                proc = subprocess.run(
                    [
                        sys.executable,
                        str(HERE / "memory_child.py"),
                        "--contestant",
                        name,
                        "--data",
                        tmp,
                        "--mode",
                        mode,
                        "--hidden",
                        str(ctx.hidden),
                        "--batch",
                        str(ctx.batch),
                        *(["--threads", str(ctx.threads)] if ctx.threads else []),
                    ],
                    capture_output=True,
                    text=True,
                    check=False,  # a failing child stops the run below, with its own traceback
                )
                if proc.returncode != 0:
                    # The child skips a contestant that is not installed (a JSON line, status 0);
                    # a non-zero status is an installed contestant that raised.
                    tail = "\n".join(proc.stderr.strip().splitlines()[-30:])
                    raise ContestantFailed(
                        name,
                        f"memory measurement ({mode}, in a subprocess)",
                        RuntimeError(f"the child exited with status {proc.returncode}; its stderr ends:\n{tail}"),
                    )
                measured[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
            rss = measured["rss"]
            label = rss.get("contestant", name)
            if "skipped" in rss:
                rows.append([label, "skipped", "-", rss["skipped"]])
                continue
            tm = measured.get("tracemalloc", {})
            tm_text = f"{tm['peak_above_bytes'] / MiB:.1f} MiB" if "peak_above_bytes" in tm else "-"
            rows.append(
                [
                    f"**{label}**" if name == "twolayer" else label,
                    f"{rss['peak_above_bytes'] / MiB:.1f} MiB",
                    tm_text,
                    "",
                ]
            )
            # The larger of the two measures: RSS misses heap pages the warm-up left behind and the
            # epoch reused; tracemalloc misses memory that is not NumPy's.
            ctx.results[f"memory_{name}"] = max(rss["peak_above_bytes"], tm.get("peak_above_bytes", 0))
    notes = [
        (
            f"Data: X is {X.nbytes / MiB:.1f} MiB ({X.shape[0]} x {X.shape[1]} float32). Each contestant runs in a "
            "process of its own that loads the data, warms up on 2,000 rows, then trains one epoch."
        ),
        (
            "`peak RSS above` is Linux's resident high-water mark during the epoch (reset through /proc/self/clear_refs "
            "just before it) minus the resident size just before it: every byte the epoch touched, NumPy, BLAS and "
            "framework memory alike."
        ),
        (
            "`tracemalloc peak` is the peak of NumPy arrays alive at once during the epoch (NumPy reports its "
            "allocations to tracemalloc; BLAS buffers are not seen), for the NumPy contestants. It can exceed the RSS "
            "figure: memory that the warm-up freed stays in the process's heap and the epoch reuses it without "
            "touching new pages. The targets table takes the larger of the two."
        ),
    ]
    return [
        Table(
            "Peak memory of one epoch of `fit` beyond the data (float32 workload)",
            ["contestant", "peak RSS above the data", "tracemalloc peak", "note"],
            rows,
            notes,
        )
    ]


@section("scaling", "Epoch time against the number of rows")
def scaling(ctx: Context) -> list[Table]:
    sizes = [2_000, 6_000] if ctx.quick else [10_000, 30_000, 100_000, 300_000]
    Xall, yall = ctx.data(np.float32, n_samples=max(sizes))
    D = Xall.shape[1]
    K = int(yall.max()) + 1
    M, B = ctx.hidden, ctx.batch
    rows = []
    per_pattern = {}
    for n in sizes:
        X, y = Xall[:n], yall[:n]  # the first n rows of the largest set: one generation
        repeats = min(ctx.repeats, 3) if n <= 100_000 else min(ctx.repeats, 2)  # the largest sizes are slow
        timings, skipped = time_interleaved(
            [cs.floor_products(n, D, M, K, B, np.float32, X=X), cs.twolayer_fit(X, y, M, B)], repeats, what=f"N={n}"
        )
        why = "; ".join(f"{s.name}: {s.reason}" for s in skipped)
        f = timings["floor (5 products)"]
        o = timings.get("TwoLayerClassifier")
        if o is None:
            rows.append([f"{n:,}", fmt_timing(f), fmt_seconds(f.median / n), f"skipped ({why})", "-", "-"])
            continue
        per_pattern[n] = o.median / n
        rows.append(
            [
                f"{n:,}",
                fmt_timing(f),
                fmt_seconds(f.median / n),
                fmt_timing(o),
                fmt_seconds(o.median / n),
                fmt_ratio(o.median / f.median),
            ]
        )
    ctx.results["scaling_per_pattern"] = per_pattern
    notes = [
        (
            f"Rows are the first N of one `make_classification(n_samples={max(sizes)}, ...)` set (float32, "
            f"M = {M}, batch {B}). Per-pattern cost should stay flat as N grows. At most 3 repeats per size "
            "(2 at 300,000 rows), interleaved floor / TwoLayerClassifier."
        )
    ]
    if per_pattern:
        lo, hi = min(per_pattern.values()), max(per_pattern.values())
        notes.append(
            f"TwoLayerClassifier's per-pattern cost varies by {hi / lo:.2f}× across these sizes "
            "(small N carries fit's fixed costs)."
        )
    return [
        Table(
            "Epoch time against N (TwoLayerClassifier, float32)",
            ["N", "floor epoch", "floor per pattern", "TwoLayerClassifier epoch", "per pattern", "× floor"],
            rows,
            notes,
        )
    ]


@section("digits", "Time to 97% held-out accuracy on the bundled digits")
def digits(ctx: Context) -> list[Table]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    X, y = load_digits(return_X_y=True)
    X = X / 16.0  # pixel intensities 0..16 to [0, 1]
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    goal, max_epochs = 0.97, 200
    seeds = list(range(2 if ctx.quick else max(ctx.repeats, 5)))
    classes = np.unique(y)

    def ours(seed: int) -> dict[str, Any]:
        from twolayer.classifier import TwoLayerClassifier

        reached: list[int] = []

        def stop(model: Any) -> bool:
            if model.score(Xte, yte) >= goal:  # held-out accuracy after this epoch
                reached.append(model.n_iter_)
                return True
            return False

        with cs.silenced_convergence():
            TwoLayerClassifier(max_iter=max_epochs, random_state=seed, callback=stop).fit(Xtr, ytr)
        return {"epochs": reached[0] if reached else None}

    def theirs(seed: int) -> dict[str, Any]:
        model = MLPClassifier(random_state=seed)  # its defaults: 100 hidden relu units, adam, batch 200
        for epoch in range(1, max_epochs + 1):
            model.partial_fit(Xtr, ytr, classes=classes)  # one epoch
            if model.score(Xte, yte) >= goal:
                return {"epochs": epoch}
        return {"epochs": None}

    def theirs_tanh(seed: int) -> dict[str, Any]:
        model = MLPClassifier(activation="tanh", random_state=seed)
        for epoch in range(1, max_epochs + 1):
            model.partial_fit(Xtr, ytr, classes=classes)
            if model.score(Xte, yte) >= goal:
                return {"epochs": epoch}
        return {"epochs": None}

    runners = {
        "TwoLayerClassifier()": ours,
        "MLPClassifier() (relu)": theirs,
        "MLPClassifier(activation='tanh')": theirs_tanh,
    }
    skipped_note = ""
    if not cs.installed("twolayer"):
        del runners["TwoLayerClassifier()"]
        skipped_note = "TwoLayerClassifier skipped: twolayer is not installed"
    times: dict[str, list[float]] = {k: [] for k in runners}
    epochs: dict[str, list[int | None]] = {k: [] for k in runners}
    for i, seed in enumerate(seeds):
        names = list(runners)
        names = names[i % len(names) :] + names[: i % len(names)]
        for name in names:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t0 = time.perf_counter()
                try:
                    facts = runners[name](seed)
                except Exception as exc:
                    raise ContestantFailed(name, f"run with seed {seed}", exc) from exc
                times[name].append(time.perf_counter() - t0)
            epochs[name].append(facts["epochs"])
            log(f"  digits seed {seed}: {name:<34} {times[name][-1]:.3f} s, epochs {facts['epochs']}")
    rows = []
    base = times.get("TwoLayerClassifier()")
    for name in runners:
        t = Timing(name, times[name])
        hit = [e for e in epochs[name] if e is not None]
        rows.append(
            [
                f"**{name}**" if name.startswith("TwoLayer") else name,
                fmt_timing(t),
                f"{np.median(hit):.0f}" if hit else "-",
                f"{len(hit)} of {len(seeds)}",
                fmt_ratio(t.median / Timing("", base).median) if base else "-",
            ]
        )
    ctx.results["digits"] = {k: {"seconds": times[k], "epochs": epochs[k]} for k in runners}
    notes = [
        (
            f"`load_digits` scaled to [0, 1], split 75/25 stratified (random_state=0): {len(ytr)} training, "
            f"{len(yte)} held-out images. Each contestant trains one epoch at a time, with its defaults "
            "(100 hidden units, Adam, batch 200, learning rate 1e-3), until held-out accuracy reaches "
            f"{goal:.0%} (at most {max_epochs} epochs); the time includes scoring the held-out set after each "
            "epoch. TwoLayerClassifier stops through its `callback`; MLPClassifier, which has none, through a "
            "`partial_fit` loop."
        ),
        (
            f"Seeds {seeds[0]}..{seeds[-1]} (random_state), interleaved; `epochs` is the median over the seeds "
            "that reached the goal. MLPClassifier's default hidden units are ReLU; the tanh row has "
            "TwoLayerClassifier's activation."
        ),
    ]
    if skipped_note:
        notes.append(skipped_note)
    return [
        Table(
            f"Time to {goal:.0%} held-out accuracy on the bundled digits",
            ["contestant", "time: median [min–max, n]", "epochs", "reached", "÷ TwoLayer"],
            rows,
            notes,
        )
    ]


# --------------------------------------------------------------------------
# The targets of issue 5, checked against this run's numbers
# --------------------------------------------------------------------------


def _paired(numerator: list[float], denominator: list[float]) -> str:
    """The spread of one ratio over the repeats, each from the two times of one repeat.

    The harness runs every contestant once per repeat, within a second or two of
    each other, so the two times of a repeat saw about the same machine; the
    spread of their ratio shows how far this machine's noise moves a verdict.
    """
    ratios = [a / b for a, b in zip(numerator, denominator)]
    if not ratios:
        return "-"
    return f"{min(ratios):.3f}–{max(ratios):.3f} (n={len(ratios)})"


def targets(ctx: Context) -> Table | None:
    """Each target of issue 5 that this run measured, with the measured value and its spread."""
    rows = []
    runs = {k: v for k, v in ctx.results.items() if k.startswith(("epoch_", "fullbatch_"))}
    floor, ours = "floor (5 products)", "TwoLayerClassifier"

    def add(what: str, value: float | None, goal: str, ok: bool | None, spread: str = "-") -> None:
        rows.append(
            [
                what,
                "-" if value is None else f"{value:.3f}",
                spread,
                goal,
                "not measured" if ok is None else ("met" if ok else "**not met**"),
            ]
        )

    def ratio(table: str, numerator: str, denominator: str) -> tuple[float, str] | None:
        times = runs.get(table, {})
        if numerator not in times or denominator not in times:
            return None
        a, b = times[numerator], times[denominator]
        return float(np.median(a)) / float(np.median(b)), _paired(a, b)

    if (r := ratio("epoch_float32", ours, floor)) is not None:
        add("float32 epoch: TwoLayerClassifier / floor", r[0], "≤ 1.15", r[0] <= 1.15, r[1])
    for peer in ("MLPClassifier", "PyTorch"):
        if (r := ratio("epoch_float32", peer, ours)) is not None:
            add(f"float32 epoch: {peer} / TwoLayerClassifier", r[0], "≥ 1.8", r[0] >= 1.8, r[1])
    if (r := ratio("epoch_float32", "JAX (jit)", ours)) is not None:
        add(
            "float32 epoch: JAX / TwoLayerClassifier",
            r[0],
            "> 1 (with the processor's own BLAS kernel)",
            r[0] > 1,
            r[1],
        )
    if (r := ratio("epoch_float64", ours, floor)) is not None:
        add("float64 epoch: TwoLayerClassifier / floor", r[0], "≤ 1.3", r[0] <= 1.3, r[1])
    if (r := ratio("fullbatch_float32", "network.error_and_gradient", floor)) is not None:
        add("full-batch error_and_gradient (float32) / floor", r[0], "≤ 1.1", r[0] <= 1.1, r[1])
    if (r := ratio("fullbatch_float32", "L-BFGS's objective (optim)", floor)) is not None:
        add(
            "full-batch, the same sums as L-BFGS evaluates them (float32) / floor",
            r[0],
            "≤ 1.1 (for comparison)",
            r[0] <= 1.1,
            r[1],
        )
    if "memory_twolayer" in ctx.results:
        mib = ctx.results["memory_twolayer"] / MiB
        add("peak memory of fit above the data (MiB; larger of RSS and tracemalloc)", mib, "≤ 64", mib <= 64)
    if not rows:
        return None
    return Table(
        "Issue 5 targets in this run",
        ["target", "measured", "paired repeats [min–max]", "goal", ""],
        rows,
        [
            (
                "`measured` is the ratio of the two medians in this run's tables above (and is what `goal` "
                "judges); `paired repeats` is the range of the same ratio taken within each repeat (every "
                "contestant runs once per repeat, close together in time): how far this machine's noise "
                "moves a verdict. "
                "With `--quick` the sizes are too small for these to mean anything."
            )
        ],
    )
