"""Training on a Dask cluster: strong scaling, scheduler overhead and out-of-core Parquet (issue 17).

Usage::

    python benchmarks/dask_scaling.py                  # the real run: about 15-25 minutes on 2 cores
    python benchmarks/dask_scaling.py --quick          # tiny sizes, once: a smoke test, not a measurement
    python benchmarks/dask_scaling.py --parts scaling,overhead       # some parts only
    python benchmarks/dask_scaling.py --keep /tmp/ooc  # keep (or reuse) the Parquet dataset

Every part runs in a fresh Python process of its own (so that its peak memory is
its own), starts its own ``distributed.LocalCluster`` of worker *processes*
(``threads_per_worker=1``, no dashboard; Dask's nannies start each worker with
one BLAS thread) and prints a markdown table. The data are ``D = 100`` float64
features drawn from a standard normal distribution and a label of ``K = 10``
classes given by a fixed random linear teacher plus Gumbel noise, generated in
chunks of ``--chunk`` rows, chunk ``i`` from the seed ``(0, i)``: the same rows
wherever they are made (on the workers, here, or into Parquet). The network is
``n_hidden=32`` tanh, softmax outputs, ``alpha=1e-4``.

``scaling``
    ``--rows`` rows made on the workers and persisted there. For 1 and 2
    workers and each block size of ``--blocks``: one full-batch error and
    gradient (:class:`twolayer.training.blocked.BlockedFullBatch`: the weights
    sent once as a task of their own, one task per block, the parts added on the workers in a tree of
    fan-in :data:`twolayer.cluster.FAN_IN`) and one
    ``TwoLayerClassifier(solver="lbfgs", max_iter=10, tol=0).fit`` on the Dask
    arrays (checks, encoding and the evaluations), against the same in this
    process on the same rows as NumPy arrays: the fused evaluator
    :class:`twolayer.training.full_batch._FullBatch` and ``fit`` on NumPy,
    with one BLAS thread (a worker's share) and with every core. The per-block
    cost is the per-block function itself, timed here with one BLAS thread.
``overhead``
    The scheduler's cost per task: :meth:`twolayer.cluster.RowBlocks.map_sum`
    of a function that returns W zeros (the size of a gradient) over B blocks
    of 16 rows, B from 1 to 512, on 1 and 2 workers; a least-squares line
    ``c + s * B`` gives the fixed cost of a call (sending the weights, the graph, the result) and
    the cost per block (its task and its share of the adding tasks).
``outofcore``
    A Parquet dataset (one file per chunk, written one chunk at a time) of
    ``--ooc-rows`` rows, read with ``dask.dataframe.read_parquet`` by 2
    workers of ``--worker-memory`` each (the real run: 4× their combined
    limit, so ``fit`` does not persist the blocks and every pass reads the
    files again). Timed: ``to_dask_array(lengths=True)`` alone (a pass over
    the files); the preparation ``fit`` does (checks, classes, weights); two
    evaluations of the error and gradient from the files; ``fit`` with Adam,
    two epochs (the blocks streamed to this process); ``fit`` with L-BFGS,
    three iterations. Memory: every worker process and this one sampled with
    psutil every 50 ms, and each process's own high-water mark
    (``ru_maxrss``) at the end. Then, on the dataset's first ``--ref-rows``
    rows in memory: the same fits and evaluation on NumPy arrays, for rows/s.

Timings are medians over ``--repeats`` with ``[min–max, n]``; ratios are of
medians. This is a script, not a test: tests never time anything.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
D, M, K = 100, 32, 10
ALPHA = 1e-4
PARTS = ("scaling", "overhead", "outofcore")


# ----------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------


def make_chunk(index: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Chunk ``index`` of the data: ``rows`` patterns and their labels, the same wherever it is made."""
    teacher = np.random.default_rng(12345).standard_normal((D, K)) * (2.0 / math.sqrt(D))
    rng = np.random.default_rng([0, index])
    X = rng.standard_normal((rows, D))
    label = np.argmax(X @ teacher + rng.gumbel(size=(rows, K)), axis=1).astype(np.int64)
    return X, label


def chunk_rows(n: int, chunk: int) -> list[int]:
    return [min(chunk, n - start) for start in range(0, n, chunk)]


def in_memory(n: int, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` rows, here."""
    parts = [make_chunk(i, r) for i, r in enumerate(chunk_rows(n, chunk))]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def on_workers(n: int, chunk: int) -> tuple[Any, Any]:
    """The first ``n`` rows as Dask arrays, made on the workers (not persisted)."""
    import dask
    import dask.array as da

    made = [dask.delayed(make_chunk, nout=2, pure=True)(i, r) for i, r in enumerate(chunk_rows(n, chunk))]
    rows = chunk_rows(n, chunk)
    X = da.concatenate([da.from_delayed(m[0], (r, D), np.float64) for m, r in zip(made, rows)])
    y = da.concatenate([da.from_delayed(m[1], (r,), np.int64) for m, r in zip(made, rows)])
    return X, y


def write_parquet(folder: Path, n: int, chunk: int) -> float:
    """One Parquet file per chunk (one row group), written one chunk at a time; returns the seconds."""
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    names = [f"x{j + 1}" for j in range(D)]
    for i, r in enumerate(chunk_rows(n, chunk)):
        X, label = make_chunk(i, r)
        columns = {name: X[:, j] for j, name in enumerate(names)}
        columns["label"] = label
        pq.write_table(pa.table(columns), folder / f"part-{i:05d}.parquet", row_group_size=r)
        del X, label, columns
    (folder / "_rows").write_text(f"{n} {chunk}\n")
    return time.perf_counter() - start


# ----------------------------------------------------------------------------------------------
# timing
# ----------------------------------------------------------------------------------------------


def timed(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def fmt_s(seconds: float) -> str:
    if seconds >= 10:
        return f"{seconds:.1f} s"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} µs"


def fmt_times(times: list[float]) -> str:
    return f"{fmt_s(float(np.median(times)))} [{fmt_s(min(times))}–{fmt_s(max(times))}, n={len(times)}]"


def med(times: list[float]) -> float:
    return float(np.median(times))


def load_average() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


@contextmanager
def local_cluster(n_workers: int, memory: str, quick_limits: bool = False) -> Iterator[Any]:
    """A LocalCluster of worker processes, one thread each, no dashboard; its client current."""
    import dask
    import distributed

    settings: dict[str, Any] = {"distributed.worker.daemon": True}
    if quick_limits:  # a limit below a worker's own size: it only decides persisting, nothing is paused or killed
        settings.update({f"distributed.worker.memory.{k}": False for k in ("target", "spill", "pause", "terminate")})
    with dask.config.set(settings):
        cluster = distributed.LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            memory_limit=memory,
        )
        client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def worker_blas_threads(client: Any) -> list[int]:
    def threads() -> int:
        import numpy  # noqa: F401
        from threadpoolctl import threadpool_info

        return max((i.get("num_threads") or 0) for i in threadpool_info() if i.get("user_api") == "blas")

    return sorted(client.run(threads).values())


def lbfgs_model(max_iter: int, **kw: Any) -> Any:
    from twolayer import TwoLayerClassifier

    return TwoLayerClassifier(n_hidden=M, solver="lbfgs", max_iter=max_iter, tol=0.0, alpha=ALPHA, random_state=0, **kw)


def quiet_fit(model: Any, X: Any, y: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter: the point of a fixed count
        return model.fit(X, y)


# ----------------------------------------------------------------------------------------------
# part 1: strong scaling
# ----------------------------------------------------------------------------------------------


def part_scaling(args: argparse.Namespace) -> dict[str, Any]:
    from threadpoolctl import threadpool_limits

    from twolayer import cluster as tc
    from twolayer import network
    from twolayer.classifier import on_cluster
    from twolayer.training.blocked import BlockedFullBatch, _block_error_and_gradient
    from twolayer.training.full_batch import _FullBatch
    from twolayer.training.optim import TrainingData

    N = args.rows
    X, y = in_memory(N, args.chunk)
    lam = ALPHA / N
    theta = network.flatten(network.init_params(D, M, K, random_state=0))
    dims = (D, M, K)
    out: dict[str, Any] = {"N": N, "load_start": load_average(), "fused": {}, "block_cost": {}, "runs": []}

    fused = _FullBatch(
        TrainingData(X=X, k=y.astype(np.intp), w=None, lam=lam, output="softmax"), dims, np.float64, "tanh"
    )
    f_ref = fused(theta)[0]
    for threads in (1, None):
        label = "1" if threads == 1 else "all"
        with threadpool_limits(limits=threads, user_api="blas"):
            grad = timed(lambda: fused(theta), args.repeats)
            fits = []
            for _ in range(args.fit_repeats):
                model = lbfgs_model(args.max_iter)
                start = time.perf_counter()
                quiet_fit(model, X, y)
                fits.append(time.perf_counter() - start)
            out["fused"][label] = {
                "grad": grad,
                "fit": fits,
                "n_iter": model.n_iter_,
                "n_eval": model.t_ / N,
                "loss": float(model.loss_),
            }
        print(f"fused, {label} BLAS threads: gradient {fmt_times(grad)}, fit {fmt_times(fits)}", flush=True)

    # The per-block function itself, as a worker runs it (one BLAS thread), for the model on paper.
    how = ("tanh", "softmax", N)
    k = y.astype(np.intp)
    with threadpool_limits(limits=1, user_api="blas"):
        for bs in sorted(set(args.blocks) | {16, 1024}):
            if bs > N:
                continue
            Xb, kb = np.ascontiguousarray(X[:bs]), k[:bs]
            n_rep = args.repeats if bs >= 16384 else max(args.repeats, 50)
            out["block_cost"][str(bs)] = timed(
                lambda Xb=Xb, kb=kb: _block_error_and_gradient(Xb, kb, None, theta, dims, how), n_rep
            )
    print("per-block cost:", {b: fmt_s(med(t)) for b, t in out["block_cost"].items()}, flush=True)

    def one_block_size(client: Any, Xd: Any, yd: Any, bs: int, n_workers: int) -> dict[str, Any]:
        """The gradient and the fit on blocks of ``bs`` rows (persisted; released at return)."""
        import distributed

        Xs, ys = client.persist([Xd.rechunk((bs, D)), yd.rechunk((bs,))])
        distributed.wait([Xs, ys])
        blocks = tc.as_row_blocks(Xs, ys, None)
        full = BlockedFullBatch(
            TrainingData(X=blocks, k=np.empty(0, np.intp), w=None, lam=lam, output="softmax"),
            dims,
            np.float64,
            "tanh",
        )
        f = full(theta)[0]
        grad = timed(lambda: full(theta), args.repeats)
        start = time.perf_counter()
        on_cluster.prepare(lbfgs_model(1), Xs, ys, None)
        prepare = time.perf_counter() - start
        fits, model = [], None
        for _ in range(args.fit_repeats):
            model = lbfgs_model(args.max_iter)
            start = time.perf_counter()
            quiet_fit(model, Xs, ys)
            fits.append(time.perf_counter() - start)
        assert model is not None
        loss = out["fused"]["1"]["loss"]
        return {
            "workers": n_workers,
            "block": bs,
            "n_blocks": blocks.n_blocks,
            "persisted": blocks.persisted,
            "grad": grad,
            "prepare": prepare,
            "fit": fits,
            "n_iter": model.n_iter_,
            "n_eval": model.t_ / N,
            "f_rel": abs(f - f_ref) / abs(f_ref),
            "loss_rel": abs(float(model.loss_) - loss) / abs(loss),
        }

    for n_workers in args.workers:
        with local_cluster(n_workers, args.scaling_memory) as client:
            out.setdefault("worker_blas_threads", {})[str(n_workers)] = worker_blas_threads(client)
            Xd, yd = on_workers(N, args.chunk)
            Xd, yd = client.persist([Xd, yd])
            import distributed

            distributed.wait([Xd, yd])
            quiet_fit(lbfgs_model(1), Xd, yd)  # the workers import the estimator's modules once, untimed
            for bs in args.blocks:
                if bs > N:
                    continue
                run = one_block_size(client, Xd, yd, bs, n_workers)
                out["runs"].append(run)
                print(
                    f"{n_workers} workers, blocks of {bs}: gradient {fmt_times(run['grad'])}, fit "
                    f"{fmt_times(run['fit'])} ({run['n_iter']} it, {run['n_eval']:.0f} ev), f rel {run['f_rel']:.1e}, "
                    f"loss rel {run['loss_rel']:.1e} (load {load_average()})",
                    flush=True,
                )
    out["load_end"] = load_average()
    return out


# ----------------------------------------------------------------------------------------------
# part 2: the scheduler's cost per task
# ----------------------------------------------------------------------------------------------


def _zeros(X: np.ndarray, k: np.ndarray, w: Any, theta: np.ndarray) -> np.ndarray:
    """A block's 'gradient' at no cost: W zeros."""
    return np.zeros_like(theta)


def part_overhead(args: argparse.Namespace) -> dict[str, Any]:
    import dask.array as da
    import distributed

    from twolayer import cluster as tc
    from twolayer import network

    W = network.n_params(D, M, K)
    theta = np.zeros(W)
    out: dict[str, Any] = {"W": W, "load_start": load_average(), "runs": {}}
    for n_workers in args.workers:
        with local_cluster(n_workers, "1GiB") as client:
            per: dict[str, list[float]] = {}
            for B in args.task_counts:
                X = da.zeros((16 * B, D), chunks=(16, D))
                y = da.zeros(16 * B, chunks=16, dtype=np.intp)
                X, y = client.persist([X, y])
                distributed.wait([X, y])
                blocks = tc.as_row_blocks(X, y, None, persist=True)
                per[str(B)] = timed(lambda blocks=blocks: blocks.map_sum(_zeros, theta), args.overhead_repeats, 2)
                print(f"{n_workers} workers, {B} blocks: map_sum {fmt_times(per[str(B)])}", flush=True)
                blocks = X = y = None  # released before the next B
            Bs = np.array([int(b) for b in per], dtype=float)
            T = np.array([med(per[str(int(b))]) for b in Bs])
            s, c = np.polyfit(Bs, T, 1)
            out["runs"][str(n_workers)] = {"times": per, "c": float(c), "s": float(s)}
            print(f"{n_workers} workers: c = {fmt_s(c)}, s = {fmt_s(s)} per block", flush=True)
    out["load_end"] = load_average()
    return out


# ----------------------------------------------------------------------------------------------
# part 3: out of core
# ----------------------------------------------------------------------------------------------


class MemorySampler:
    """Resident memory of this process and of its child processes (the workers), every ``interval`` s."""

    def __init__(self, interval: float = 0.05) -> None:
        import psutil

        self.me = psutil.Process()
        self.interval = interval
        self.peak: dict[int, int] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        import psutil

        while not self.stop.is_set():
            for p in [self.me, *self.me.children(recursive=True)]:
                try:
                    rss = p.memory_info().rss
                except psutil.Error:
                    continue
                self.peak[p.pid] = max(self.peak.get(p.pid, 0), rss)
            self.stop.wait(self.interval)

    def reset(self) -> None:
        self.peak = {}

    def __enter__(self) -> MemorySampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join()


def _maxrss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def part_outofcore(args: argparse.Namespace) -> dict[str, Any]:
    import dask.dataframe as dd
    from threadpoolctl import threadpool_limits

    from twolayer import TwoLayerClassifier, network
    from twolayer.classifier import on_cluster
    from twolayer.training.blocked import BlockedFullBatch
    from twolayer.training.full_batch import _FullBatch
    from twolayer.training.optim import TrainingData

    folder = Path(args.data_dir)
    N = args.ooc_rows
    names = [f"x{j + 1}" for j in range(D)]
    out: dict[str, Any] = {
        "N": N,
        "files": len(list(folder.glob("part-*.parquet"))),
        "file_bytes": sum(p.stat().st_size for p in folder.glob("part-*.parquet")),
        "nbytes": N * (D + 1) * 8,
        "load_start": load_average(),
        "steps": {},
    }
    dims = (D, M, K)
    theta = network.flatten(network.init_params(D, M, K, random_state=0))
    # This process's own start-up (imports, compiled kernels) before the peaks: a tiny fit of each kind.
    warm_X = np.random.default_rng(0).standard_normal((2000, D))
    for solver in ("adam", "lbfgs"):
        quiet_fit(TwoLayerClassifier(n_hidden=M, solver=solver, max_iter=1), warm_X, np.arange(2000) % K)
    out["driver_rss_start"] = _maxrss()
    with MemorySampler() as sampler, local_cluster(2, args.worker_memory, quick_limits=args.quick) as client:
        worker_pids = set(client.run(os.getpid).values())
        out["worker_rss_idle"] = {str(pid): sampler.me.__class__(pid).memory_info().rss for pid in worker_pids}
        out["driver_rss_cluster"] = sampler.me.memory_info().rss
        out["memory_limit"] = [w["memory_limit"] for w in client.scheduler_info()["workers"].values()]

        def step(name: str, fn: Callable[[], Any]) -> Any:
            before = dict(sampler.peak)
            sampler.reset()
            start = time.perf_counter()
            result = fn()
            seconds = time.perf_counter() - start
            time.sleep(3 * sampler.interval)
            peaks = dict(sampler.peak)
            out["steps"][name] = {
                "seconds": seconds,
                "driver_peak": peaks.get(sampler.me.pid, 0),
                "worker_peak": max((v for p, v in peaks.items() if p != sampler.me.pid), default=0),
                "load": load_average(),
            }
            for p, v in before.items():
                sampler.peak[p] = max(v, sampler.peak.get(p, 0))
            print(
                f"{name}: {fmt_s(seconds)}, driver peak {peaks.get(sampler.me.pid, 0) / 2**20:.0f} MiB, "
                f"worker peak {out['steps'][name]['worker_peak'] / 2**20:.0f} MiB (load {load_average()})",
                flush=True,
            )
            return result

        df = dd.read_parquet(str(folder / "part-*.parquet"))
        out["partitions"] = df.npartitions
        out["checks"] = {}

        def attempt(name: str, fn: Callable[[], Any]) -> None:
            """The obvious way, which may fail: its error recorded, not raised."""
            start = time.perf_counter()
            try:
                fn()
                result = "works"
            except Exception as exc:
                result = f"{type(exc).__name__}: {exc}"
            out["checks"][name] = {"result": result, "seconds": time.perf_counter() - start}
            print(f"{name}: {result} ({fmt_s(time.perf_counter() - start)})", flush=True)

        # dask-expr reads the one label column several files to a partition and then refuses its own row
        # counts in to_dask_array(lengths=True); fit optimises the collection first (cluster.frame_to_array).
        attempt(
            "on_cluster._as_dask_array(df['label']), as fit calls it",
            lambda: on_cluster._as_dask_array(df["label"], "y"),
        )
        attempt("df['label'].to_dask_array(lengths=True)", lambda: df["label"].to_dask_array(lengths=True))
        # Timed below: the whole table as one array (no column projection), features and labels sliced from
        # it, so that every pass reads each file once for both.
        whole = step("df.to_dask_array(lengths=True) (1)", lambda: df.to_dask_array(lengths=True))
        whole = step("df.to_dask_array(lengths=True) (2)", lambda: df.to_dask_array(lengths=True))
        X, y = whole[:, :D], whole[:, D]
        prepared = step(
            "prepare (fit's checks, classes, weights)",
            lambda: on_cluster.prepare(TwoLayerClassifier(n_hidden=M, alpha=ALPHA), X, y, None),
        )
        blocks = prepared.data.X
        out["persisted"] = blocks.persisted
        out["n_blocks"] = blocks.n_blocks
        full = BlockedFullBatch(prepared.data, dims, np.float64, "tanh")
        evals = []
        for i in range(args.ooc_evals):
            step(f"error and gradient from Parquet ({i + 1})", lambda: full(theta))
            evals.append(out["steps"][f"error and gradient from Parquet ({i + 1})"]["seconds"])
        out["evals"] = evals

        def stream() -> None:
            for _ in blocks.iter_blocks(np.arange(blocks.n_blocks)):
                pass

        # What the minibatch solvers wait for: every block read and brought here, one after another, no training.
        step("blocks brought here in turn (iter_blocks, no training)", stream)

        stamps: list[float] = []
        model = TwoLayerClassifier(
            n_hidden=M,
            solver="adam",
            max_iter=args.epochs,
            batch_size=200,
            alpha=ALPHA,
            random_state=0,
            tol=0.0,
            callback=lambda m: stamps.append(time.perf_counter()) and False,
        )
        t0 = time.perf_counter()
        step(f"fit, Adam, {args.epochs} epochs", lambda: quiet_fit(model, X, y))
        out["adam_epochs"] = [b - a for a, b in zip([t0, *stamps[:-1]], stamps)]
        out["adam_loss"] = list(map(float, model.loss_curve_))

        stamps.clear()
        model = lbfgs_model(args.ooc_iter, callback=lambda m: stamps.append(time.perf_counter()) and False)
        t0 = time.perf_counter()
        step(f"fit, L-BFGS, {args.ooc_iter} iterations", lambda: quiet_fit(model, X, y))
        out["lbfgs_iterations"] = [b - a for a, b in zip([t0, *stamps[:-1]], stamps)]
        out["lbfgs_n_eval"] = model.t_ / N
        out["lbfgs_n_iter"] = model.n_iter_

        def peaks_there() -> dict[str, int]:
            import resource as r

            return {"maxrss": r.getrusage(r.RUSAGE_SELF).ru_maxrss * 1024}

        out["worker_maxrss"] = [v["maxrss"] for v in client.run(peaks_there).values()]
        out["workers_restarted"] = len(set(client.run(os.getpid).values()) - worker_pids)
        out["driver_maxrss"] = _maxrss()
    out["load_end"] = load_average()

    # The same network on the dataset's first rows, in memory here.
    import pyarrow.parquet as pq

    files = sorted(folder.glob("part-*.parquet"))
    tables, rows = [], 0
    for f in files:
        if rows >= args.ref_rows:
            break
        t = pq.read_table(f)
        tables.append(t)
        rows += t.num_rows
    Xr = np.concatenate([np.column_stack([t[n].to_numpy() for n in names]) for t in tables])[: args.ref_rows]
    yr = np.concatenate([t["label"].to_numpy() for t in tables])[: args.ref_rows]
    del tables
    n = Xr.shape[0]
    fused = _FullBatch(
        TrainingData(X=Xr, k=yr.astype(np.intp), w=None, lam=ALPHA / n, output="softmax"), dims, np.float64, "tanh"
    )
    ref: dict[str, Any] = {"rows": n}
    for threads in (1, None):
        label = "1" if threads == 1 else "all"
        with threadpool_limits(limits=threads, user_api="blas"):
            ref[f"grad_{label}"] = timed(lambda: fused(theta), args.repeats)
            adam = []
            for _ in range(args.fit_repeats):
                stamps.clear()
                model = TwoLayerClassifier(
                    n_hidden=M,
                    solver="adam",
                    max_iter=2,
                    batch_size=200,
                    alpha=ALPHA,
                    random_state=0,
                    tol=0.0,
                    callback=lambda m: stamps.append(time.perf_counter()) and False,
                )
                quiet_fit(model, Xr, yr)
                adam.append(stamps[1] - stamps[0])  # the second epoch: no checks, no start-up
            ref[f"adam_epoch_{label}"] = adam
        print(
            f"in memory, {n} rows, {label} BLAS threads: gradient {fmt_times(ref[f'grad_{label}'])}, "
            f"Adam epoch {fmt_times(adam)}",
            flush=True,
        )
    out["reference"] = ref
    return out


# ----------------------------------------------------------------------------------------------
# the report
# ----------------------------------------------------------------------------------------------


def tasks_of(B: int) -> tuple[int, int]:
    """The tasks of one map_sum over B blocks (the blocks' and the adding tree's) and the tree's depth."""
    from twolayer.cluster import FAN_IN

    tasks, level, depth = B, B, 0
    while level > 1:
        level = math.ceil(level / FAN_IN)
        tasks += level
        depth += 1
    return tasks, depth


def block_model(block_cost: dict[str, list[float]]) -> tuple[float, float]:
    """A line ``a + r * rows`` through the per-block times: the fixed cost of a task's work and the cost per row."""
    rows = np.array([int(b) for b in block_cost], dtype=float)
    t = np.array([med(v) for v in block_cost.values()])
    r, a = np.polyfit(rows, t, 1, w=1.0 / t)  # relative errors: the small blocks count as much
    return max(float(a), 0.0), float(r)


def predict(N: float, P: int, bs: int, a: float, r: float, c: float, s: float) -> tuple[float, int, int]:
    """T = c + s * B + ceil(B / P) * (a + r * rows per block), with B = ceil(N / bs) blocks."""
    B = math.ceil(N / bs)
    return c + s * B + math.ceil(B / P) * (a + r * min(bs, N)), B, tasks_of(B)[0]


def report(results: dict[str, Any], args: argparse.Namespace) -> str:
    lines: list[str] = []
    sc, ov, ooc = results.get("scaling"), results.get("overhead"), results.get("outofcore")
    if sc:
        N = sc["N"]
        f1 = med(sc["fused"]["1"]["grad"])
        fit1 = med(sc["fused"]["1"]["fit"])
        lines += [
            f"### One error and gradient, and L-BFGS fit (max_iter={args.max_iter}): {N:,} × {D} float64, "
            f"M = {M} tanh, K = {K}",
            "",
            "| where | block rows | blocks | one gradient: median [min–max, n] | ÷ fused, 1 thread "
            f"| L-BFGS fit, max_iter={args.max_iter} | ÷ fused fit, 1 thread | of which fit's preparation "
            "| iterations / evaluations |",
            "|---|---:|---:|---|---:|---|---:|---:|---|",
        ]
        for label, title in (("1", "fused `_FullBatch` here, 1 BLAS thread"), ("all", "fused here, all cores")):
            fu = sc["fused"][label]
            lines.append(
                f"| {title} | - | - | {fmt_times(fu['grad'])} | {med(fu['grad']) / f1:.2f}× | {fmt_times(fu['fit'])} "
                f"| {med(fu['fit']) / fit1:.2f}× | - | {fu['n_iter']} / {fu['n_eval']:.0f} |"
            )
        best: dict[int, dict[str, Any]] = {}
        for run in sc["runs"]:
            w = run["workers"]
            if w not in best or med(run["grad"]) < med(best[w]["grad"]):
                best[w] = run
            lines.append(
                f"| {w} worker{'s' if w > 1 else ''} | {run['block']:,} | {run['n_blocks']} | {fmt_times(run['grad'])}"
                f" | {med(run['grad']) / f1:.2f}× | {fmt_times(run['fit'])} | {med(run['fit']) / fit1:.2f}× "
                f"| {fmt_s(run['prepare'])} | {run['n_iter']} / {run['n_eval']:.0f} |"
            )
        lines.append("")
        for w, run in sorted(best.items()):
            lines.append(
                f"- Best on {w} worker(s): blocks of {run['block']:,} rows, one gradient "
                f"{med(run['grad']) / f1:.2f}× the fused one-thread time; its fit {med(run['fit']) / fit1:.2f}×. "
                f"f equal to the fused one to {run['f_rel']:.0e} (relative); final loss to {run['loss_rel']:.0e}."
            )
        if 1 in best and 2 in best:
            lines.append(
                f"- Strong scaling, 1 → 2 workers (best blocks each): gradient "
                f"{med(best[1]['grad']) / med(best[2]['grad']):.2f}×, fit {med(best[1]['fit']) / med(best[2]['fit']):.2f}×."
            )
        lines.append(
            f"- Workers' BLAS threads: {sc.get('worker_blas_threads')}; load average {sc['load_start']} → {sc['load_end']}."
        )
        lines.append("")
        lines += ["Per-block cost (`_block_error_and_gradient` on one block here, 1 BLAS thread):", ""]
        lines += ["| block rows | time: median [min–max, n] | µs per row |", "|---:|---|---:|"]
        for b, t in sorted(sc["block_cost"].items(), key=lambda kv: int(kv[0])):
            lines.append(f"| {int(b):,} | {fmt_times(t)} | {med(t) / int(b) * 1e6:.3f} |")
        lines.append("")
    if ov:
        lines += [
            f"### Scheduler cost per task: `map_sum` of W = {ov['W']} zeros over B blocks of 16 rows",
            "",
            "| workers | "
            + " | ".join(f"B = {b}" for b in ov["runs"][next(iter(ov["runs"]))]["times"])
            + " | fixed cost c | per block s |",
            "|---:|" + "---|" * (len(ov["runs"][next(iter(ov["runs"]))]["times"]) + 2),
        ]
        for w, run in ov["runs"].items():
            lines.append(
                f"| {w} | "
                + " | ".join(fmt_times(t) for t in run["times"].values())
                + f" | {fmt_s(run['c'])} | {fmt_s(run['s'])} |"
            )
        lines += ["", f"- Load average {ov['load_start']} → {ov['load_end']}.", ""]
    if sc and ov:
        a, r = block_model(sc["block_cost"])
        runs = ov["runs"]
        cs = runs[max(runs, key=int)]
        c, s = cs["c"], cs["s"]
        lines += [
            "### On paper: T(P) = c + s·B + ⌈B/P⌉·(a + r·rows per block)",
            "",
            f"c = {fmt_s(c)}, s = {fmt_s(s)} (the {max(runs, key=int)}-worker line above); a = {fmt_s(a)}, "
            f"r = {r * 1e9:.1f} ns per row (a line through the per-block costs). Speed-up is over the fused "
            "one-thread gradient measured here.",
            "",
            "| rows | workers P | block rows | blocks B | tasks | predicted | measured | speed-up |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        measured = {(run["workers"], run["block"]): med(run["grad"]) for run in sc["runs"]}
        fused_row = med(sc["fused"]["1"]["grad"]) / sc["N"]
        for N in (sc["N"], 10**9):
            for P in (1, 2, 8, 16, 32, 64):
                choices = [b for b in (65536, 262144, 1048576) if b <= N]  # at most 800 MiB a block
                if N == sc["N"] and P <= 2:
                    choices = [b for b in args.blocks if b <= N]
                if not choices:  # a --quick run's few rows: no block size of the plan fits them
                    continue
                T, bs = min((predict(N, P, b, a, r, c, s)[0], b) for b in choices)
                _, B, tasks = predict(N, P, bs, a, r, c, s)
                got = measured.get((P, bs))
                lines.append(
                    f"| {N:,} | {P} | {bs:,} | {B:,} | {tasks:,} | {fmt_s(T)} | {fmt_s(got) if got else '-'} "
                    f"| {fused_row * N / T:.1f}× |"
                )
        lines.append("")
    if ooc:
        st = ooc["steps"]
        mib = 2**20
        lim = ooc["memory_limit"]
        lines += [
            f"### Out of core: {ooc['N']:,} × {D} float64 + label from Parquet ({ooc['files']} files, "
            f"{ooc['file_bytes'] / 2**30:.2f} GiB on disk, {ooc['nbytes'] / 2**30:.2f} GiB in memory), "
            f"2 workers × {lim[0] / mib:.0f} MiB",
            "",
            f"{ooc['nbytes'] / sum(lim):.1f}× the workers' combined limit; fit persisted the blocks: "
            f"{ooc['persisted']} ({ooc['n_blocks']} blocks). Idle worker RSS "
            f"{', '.join(f'{v / mib:.0f}' for v in ooc['worker_rss_idle'].values())} MiB; this process "
            f"{ooc['driver_rss_cluster'] / mib:.0f} MiB with the cluster up.",
            "",
            "| step | seconds | rows/s | peak RSS, this process (MiB) | peak RSS, a worker (MiB) |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, v in st.items():
            lines.append(
                f"| {name} | {v['seconds']:.1f} | {ooc['N'] / v['seconds']:,.0f} | {v['driver_peak'] / mib:.0f} "
                f"| {v['worker_peak'] / mib:.0f} |"
            )
        ref = ooc["reference"]
        ep = ooc["adam_epochs"]
        lines += [
            "",
            f"- Adam epochs (callback to callback; the first includes fit's preparation): "
            f"{', '.join(f'{e:.1f} s' for e in ep)}; the last {ooc['N'] / ep[-1]:,.0f} rows/s.",
            f"- L-BFGS: {ooc['lbfgs_n_iter']} iterations, {ooc['lbfgs_n_eval']:.0f} evaluations; iterations "
            f"{', '.join(f'{e:.1f} s' for e in ooc['lbfgs_iterations'])}.",
            f"- Evaluations from Parquet: {', '.join(f'{e:.1f} s' for e in ooc['evals'])} "
            f"({ooc['N'] / min(ooc['evals']):,.0f} rows/s at best).",
            f"- High-water marks (ru_maxrss): workers {', '.join(f'{v / mib:.0f}' for v in ooc['worker_maxrss'])} MiB; "
            f"this process {ooc['driver_maxrss'] / mib:.0f} MiB (before the cluster, after a tiny fit of "
            f"each kind: {ooc['driver_rss_start'] / mib:.0f} MiB). Workers restarted (a new process id at the end): "
            f"{ooc['workers_restarted']}.",
            f"- In memory here, the first {ref['rows']:,} rows: gradient (1 thread) {fmt_times(ref['grad_1'])} = "
            f"{ref['rows'] / med(ref['grad_1']):,.0f} rows/s; all cores {ref['rows'] / med(ref['grad_all']):,.0f} rows/s. "
            f"Adam epoch (1 thread) {fmt_times(ref['adam_epoch_1'])} = {ref['rows'] / med(ref['adam_epoch_1']):,.0f} "
            f"rows/s; all cores {ref['rows'] / med(ref['adam_epoch_all']):,.0f} rows/s.",
            f"- Load average {ooc['load_start']} → {ooc['load_end']}.",
        ]
        for name, check in ooc.get("checks", {}).items():
            lines.append(f"- `{name}`: {check['result']} (after {check['seconds']:.1f} s).")
        lines.append("")
    return "\n".join(lines)


def machine_line() -> str:
    import dask
    import distributed
    import psutil

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import pyarrow  # type: ignore[import-untyped]

    from machine import machine_key, numpy_blas_kernel

    return (
        f"{machine_key()}, {psutil.virtual_memory().total / 2**30:.1f} GiB; NumPy {np.__version__} "
        f"({numpy_blas_kernel()}), dask {dask.__version__}, distributed {distributed.__version__}, "
        f"pyarrow {pyarrow.__version__}; {time.strftime('%Y-%m-%d %H:%M %Z')}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, once: a smoke test")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    parser.add_argument("--rows", type=int, default=1 << 20, help="rows of the scaling part (default 2^20)")
    parser.add_argument("--chunk", type=int, default=65536, help="rows per generated chunk, scaling part")
    parser.add_argument("--file-rows", type=int, default=32768, help="rows per Parquet file (one block)")
    parser.add_argument("--blocks", default="32768,65536,262144,524288", help="block sizes of the scaling part")
    parser.add_argument("--workers", default="1,2", help="worker counts of the scaling and overhead parts")
    parser.add_argument("--repeats", type=int, default=7, help="repeats of each gradient timing")
    parser.add_argument("--fit-repeats", type=int, default=2, help="repeats of each fit")
    parser.add_argument("--max-iter", type=int, default=10, help="L-BFGS iterations of the scaling fits")
    parser.add_argument("--scaling-memory", default="4GiB", help="memory limit of each worker, scaling part")
    parser.add_argument("--task-counts", default="1,8,64,256,512", help="block counts of the overhead part")
    parser.add_argument("--overhead-repeats", type=int, default=7)
    parser.add_argument("--ooc-rows", type=int, default=1 << 23, help="rows of the Parquet dataset (default 2^23)")
    parser.add_argument("--worker-memory", default="1GiB", help="memory limit of each worker, out-of-core part")
    parser.add_argument("--ooc-evals", type=int, default=1, help="evaluations of the gradient from Parquet")
    parser.add_argument("--epochs", type=int, default=2, help="Adam epochs out of core")
    parser.add_argument("--ooc-iter", type=int, default=3, help="L-BFGS iterations out of core")
    parser.add_argument("--ref-rows", type=int, default=1 << 20, help="rows of the in-memory reference")
    parser.add_argument("--keep", type=Path, help="a folder for the Parquet dataset, kept (and reused) there")
    parser.add_argument("--json", type=Path, help="write the raw numbers here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.rows, args.chunk, args.file_rows, args.blocks = 1 << 15, 8192, 8192, "4096,16384"
        args.repeats, args.fit_repeats, args.max_iter, args.overhead_repeats = 2, 1, 3, 2
        args.task_counts = "1,8,32"
        args.ooc_rows, args.ref_rows, args.epochs, args.ooc_iter, args.ooc_evals = 1 << 16, 1 << 15, 2, 2, 1
        args.worker_memory = "16MiB"  # under a worker's own size: the limits are off, only persisting is decided
        args.scaling_memory = "1GiB"
    args.blocks = [int(b) for b in str(args.blocks).split(",")] if isinstance(args.blocks, str) else args.blocks
    args.workers = [int(w) for w in str(args.workers).split(",")] if isinstance(args.workers, str) else args.workers
    args.task_counts = (
        [int(b) for b in str(args.task_counts).split(",")] if isinstance(args.task_counts, str) else args.task_counts
    )

    if args.child:
        fn = {"scaling": part_scaling, "overhead": part_overhead, "outofcore": part_outofcore}[args.child]
        result = fn(args)
        Path(args.result).write_text(json.dumps(result))
        return 0

    parts = args.parts.split(",")
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown parts {unknown}; choose among {', '.join(PARTS)}")
    print(machine_line())
    print(f"load average at start: {load_average()}", flush=True)
    started = time.perf_counter()
    results: dict[str, Any] = {}
    scratch = Path(tempfile.mkdtemp(prefix="dask_scaling-"))
    try:
        data = args.keep if args.keep is not None else scratch / "parquet"
        for part in parts:
            if part == "outofcore":
                marker = data / "_rows"
                if not (marker.exists() and marker.read_text().split() == [str(args.ooc_rows), str(args.file_rows)]):
                    shutil.rmtree(data, ignore_errors=True)
                    seconds = write_parquet(data, args.ooc_rows, args.file_rows)
                    print(f"wrote {args.ooc_rows:,} rows to {data} in {seconds:.1f} s", flush=True)
            result_file = scratch / f"{part}.json"
            argv = [
                sys.executable,
                __file__,
                *sys.argv[1:],
                "--child",
                part,
                "--data-dir",
                str(data),
                "--result",
                str(result_file),
            ]
            env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
            start = time.perf_counter()
            status = subprocess.run(argv, env=env).returncode
            print(f"part {part}: {time.perf_counter() - start:.0f} s, exit status {status}", flush=True)
            if status != 0:
                return 1
            results[part] = json.loads(result_file.read_text())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print(f"\nwhole run {(time.perf_counter() - started) / 60:.1f} min; load average at end: {load_average()}\n")
    print(report(results, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
