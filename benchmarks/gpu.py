"""On a GPU (issue 18): a float32 epoch, and the Gauss–Newton matrix and Laplace posterior, beside PyTorch.

Usage::

    python benchmarks/gpu.py                          # on cuda:0; a note and exit status 0 where there is none
    python benchmarks/gpu.py --device cuda:1          # another GPU
    python benchmarks/gpu.py --device cpu --quick     # the same code on PyTorch's CPU, tiny: a smoke test only

It prints a markdown section for ``BENCHMARKS.md``, headed with the device.
Every timing waits for the device (``torch.cuda.synchronize``) before the
clock stops; each contestant runs once to warm up (kernels compiled, memory
pools grown) and then ``--repeats`` times, interleaved; medians are reported
with their range.

``epoch``
    The reference workload of ``benchmarks/run.py`` (60000 × 784 from
    ``make_classification``, M = 256 tanh, K = 10, batches of 200, Adam),
    float32, the data on the device before the clock starts:

    - **floor**: the five matrix products of every batch (``torch.matmul``
      with ``out=``, contiguous slices, no gather), nothing else;
    - **TwoLayerClassifier**: ``fit(X, y)`` with ``max_iter=1`` under
      ``sklearn.config_context(array_api_dispatch=True)`` on the device's
      tensors (:mod:`twolayer.training.on_device`: gathers, products, the Adam
      step on the device, one transfer of the epoch's order and of its loss);
    - **PyTorch eager**: ``Linear``-``Tanh``-``Linear``, ``CrossEntropyLoss``,
      ``torch.optim.Adam``, ``index_select`` gathers of shuffled batches.

``laplace``
    A 784-64-10 network (W = 50,890) on ``--patterns`` patterns (100,000 in
    the real run), float64: the exact Gauss–Newton matrix of the error plus
    the prior (:func:`twolayer.curvature.gauss_newton` on the device's
    tensors), and its Cholesky factor and log-determinant (the Laplace
    posterior's precision and the evidence's Occam term), against
    laplace-torch's full Gauss–Newton Laplace of the same network
    (``Laplace(..., hessian_structure="full").fit`` and its
    ``log_marginal_likelihood``), where laplace-torch is installed.

This is a script, not a test: tests never time anything.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# scikit-learn's array API dispatch needs SciPy's array API support, read when SciPy is first imported.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from contestants import workload

D, M_EPOCH, K, BATCH = 784, 256, 10, 200
M_LAPLACE = 64


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(runs: dict[str, Callable[[], Any]], repeats: int, device: Any) -> dict[str, list[float]]:
    """Each run once to warm up, then ``repeats`` rounds, interleaved; seconds per run."""
    for run in runs.values():
        run()
        _sync(device)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            _sync(device)
            start = time.perf_counter()
            run()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return times


def _fmt(seconds: list[float]) -> str:
    med = statistics.median(seconds)
    unit, scale = ("ms", 1e3) if med < 1 else ("s", 1.0)
    return f"{med * scale:.3g} {unit} [{min(seconds) * scale:.3g}–{max(seconds) * scale:.3g}, n={len(seconds)}]"


def epoch_section(device: Any, n: int, repeats: int) -> list[str]:
    import sklearn
    import torch

    from twolayer import TwoLayerClassifier

    X_host, y_host = workload(n)
    X = torch.asarray(X_host, device=device)
    y = torch.asarray(y_host, device=device)
    gen = torch.Generator(device="cpu").manual_seed(0)
    W1 = torch.randn(D, M_EPOCH, generator=gen).to(device) * 0.05
    W2 = torch.randn(M_EPOCH, K, generator=gen).to(device) * 0.05
    z = torch.rand(BATCH, M_EPOCH, generator=gen).to(device)
    d2 = torch.rand(BATCH, K, generator=gen).to(device)
    d1 = torch.rand(BATCH, M_EPOCH, generator=gen).to(device)
    a1, a2 = torch.empty(BATCH, M_EPOCH, device=device), torch.empty(BATCH, K, device=device)
    g, gW1, gW2 = torch.empty(BATCH, M_EPOCH, device=device), torch.empty_like(W1), torch.empty_like(W2)

    def floor() -> None:
        for start in range(0, n - BATCH + 1, BATCH):
            Xb = X[start : start + BATCH]
            torch.matmul(Xb, W1, out=a1)
            torch.matmul(z, W2, out=a2)
            torch.matmul(z.T, d2, out=gW2)
            torch.matmul(d2, W2.T, out=g)
            torch.matmul(Xb.T, d1, out=gW1)

    def ours() -> None:
        import warnings

        from sklearn.exceptions import ConvergenceWarning

        model = TwoLayerClassifier(n_hidden=M_EPOCH, batch_size=BATCH, max_iter=1, random_state=0)
        with sklearn.config_context(array_api_dispatch=True), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X, y)

    def pytorch() -> None:
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(D, M_EPOCH), torch.nn.Tanh(), torch.nn.Linear(M_EPOCH, K)).to(device)
        optimiser = torch.optim.Adam(net.parameters(), lr=1e-3)
        loss_fn = torch.nn.CrossEntropyLoss()
        order = torch.randperm(n, device=device)
        for start in range(0, n, BATCH):
            idx = order[start : start + BATCH]
            optimiser.zero_grad(set_to_none=True)
            loss = loss_fn(net(X.index_select(0, idx)), y.index_select(0, idx))
            loss.backward()
            optimiser.step()

    times = _timed({"floor (5 products)": floor, "TwoLayerClassifier": ours, "PyTorch eager": pytorch}, repeats, device)
    floor_med = statistics.median(times["floor (5 products)"])
    lines = [
        f"### One epoch, float32, on {device}: {n} x {D}, M = {M_EPOCH} tanh, K = {K}, batch {BATCH}, Adam",
        "",
        "| contestant | time | × the floor |",
        "|---|---:|---:|",
    ]
    for name, seconds in times.items():
        lines.append(f"| {name} | {_fmt(seconds)} | {statistics.median(seconds) / floor_med:.2f}× |")
    ratio = statistics.median(times["PyTorch eager"]) / statistics.median(times["TwoLayerClassifier"])
    lines += ["", f"PyTorch eager ÷ TwoLayerClassifier: {ratio:.2f}× (above 1: we are faster).", ""]
    return lines


def laplace_section(device: Any, n: int, repeats: int, hidden: int) -> list[str]:
    import torch

    from twolayer import curvature, network

    X_host, y_host = workload(n)
    # float64: a W x W Cholesky factor in float32 fails on the near-null directions of the softmax's
    # curvature (adding a constant to every output changes nothing) once W is in the thousands.
    X = torch.asarray(X_host.astype(np.float64), device=device)
    y = torch.asarray(y_host, device=device)
    T = torch.nn.functional.one_hot(y, K).to(torch.float64)
    host = network.init_params(n_features=D, n_hidden=hidden, n_classes=K, random_state=0)
    params = network.Params(*(torch.asarray(np.asarray(p, dtype=np.float64), device=device) for p in host))
    W = network.n_params(D, hidden, K)
    alpha = 1.0
    result: dict[str, Any] = {}

    def ours() -> None:
        A = curvature.gauss_newton(params, X, T, alpha=alpha)  # the posterior's precision, eq. 5.137 with 5.84
        L = torch.linalg.cholesky(A)
        result["logdet"] = float(2.0 * torch.sum(torch.log(torch.diagonal(L))))

    runs: dict[str, Callable[[], Any]] = {"twolayer: Gauss–Newton, Cholesky, log det": ours}
    note = ""
    try:
        from laplace import Laplace
    except ImportError:
        note = "laplace-torch is not installed here (pip install laplace-torch): its row is skipped."
    else:
        net = torch.nn.Sequential(torch.nn.Linear(D, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, K))
        net = net.to(device=device, dtype=torch.float64)
        with torch.no_grad():  # the same weights (torch's Linear holds W transposed)
            net[0].weight.copy_(params.W1.T)
            net[0].bias.copy_(params.b1)
            net[2].weight.copy_(params.W2.T)
            net[2].bias.copy_(params.b2)
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=1000)

        def theirs() -> None:
            la = Laplace(
                net, "classification", subset_of_weights="all", hessian_structure="full", prior_precision=alpha
            )
            la.fit(loader)
            result["theirs"] = float(la.log_det_posterior_precision)

        runs["laplace-torch: full GGN Laplace, log det"] = theirs
    times = _timed(runs, repeats, device)
    lines = [
        f"### The exact Gauss–Newton Laplace posterior on {device}: {D}-{hidden}-{K} (W = {W:,}), {n:,} patterns, float64",
        "",
        "| what | time |",
        "|---|---:|",
    ]
    lines += [f"| {name} | {_fmt(seconds)} |" for name, seconds in times.items()]
    lines.append("")
    if "theirs" in result:
        lines.append(
            f"log det of the posterior precision: twolayer {result['logdet']:.6g}, laplace-torch {result['theirs']:.6g}."
        )
    if note:
        lines.append(note)
    lines.append("")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda:0", help="a PyTorch device (default cuda:0)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test of the code, not a measurement")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--patterns", type=int, default=100_000, help="patterns of the Laplace part")
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        print("## gpu\n\nSkipped: PyTorch is not installed, so no device can be reached from here.")
        return 0
    device = torch.device(args.device)
    if device.type == "cuda" and not (torch.cuda.is_available() and (device.index or 0) < torch.cuda.device_count()):
        print(
            f"## gpu\n\nSkipped: there is no CUDA device {args.device} on this machine "
            f"(torch.cuda.is_available() is {torch.cuda.is_available()}, {torch.cuda.device_count()} devices)."
        )
        return 0
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "PyTorch's CPU device"
    n_epoch, n_laplace, hidden = (2000, 500, 8) if args.quick else (60000, args.patterns, M_LAPLACE)
    repeats = 1 if args.quick else args.repeats
    out = [
        f"## gpu: {name} ({device}), PyTorch {torch.__version__}"
        + (" — a --quick smoke run, not a measurement" if args.quick else ""),
        "",
    ]
    out += epoch_section(device, n_epoch, repeats)
    out += laplace_section(device, n_laplace, repeats, hidden)
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
