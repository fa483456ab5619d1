"""Peak memory of one epoch of one contestant, measured in a process of its own.

Run by ``run.py`` (section ``memory``), never by hand::

    python benchmarks/memory_child.py --contestant twolayer --data DIR --mode rss

The parent saves the workload to ``DIR/X.npy`` and ``DIR/y.npy``. This process
loads them (so the data are resident before anything is measured), builds the
contestant (PyTorch wraps the arrays without copying; JAX copies them to its
device buffer here, which counts as data, not as training), warms it up on
2,000 rows (imports, BLAS thread buffers, JIT compilation: one-off costs of the
process, not of ``fit``), and then measures one full epoch in one of two ways:

``rss``
    Linux's resident-set high-water mark: the peak is reset by writing ``5`` to
    ``/proc/self/clear_refs`` just before the epoch, and ``VmHWM - VmRSS``
    (before) is everything the epoch touched beyond what the process already
    held: NumPy arrays, BLAS work buffers, PyTorch's allocator, malloc arenas.
    This is the honest number for every contestant.
``tracemalloc``
    Python's allocation tracer, which sees NumPy's array allocations (NumPy
    reports them to it) but not BLAS or PyTorch memory: the peak of NumPy
    arrays alive at once during the epoch, for the NumPy contestants.

It prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import sys
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from contestants import FACTORIES
from harness import Skipped


def _status_kib(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"{field} not in /proc/self/status")
    return int(match.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contestant", choices=sorted(FACTORIES), required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--mode", choices=("rss", "tracemalloc"), required=True)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads is not None:
        from threadpoolctl import threadpool_limits

        import contestants

        contestants.load_libraries()
        contestants.THREADS = args.threads
        threadpool_limits(limits=args.threads)

    X = np.load(args.data / "X.npy")
    y = np.load(args.data / "y.npy")
    contestant = FACTORIES[args.contestant](X, y, args.hidden, args.batch)
    result: dict[str, object] = {"contestant": contestant.name, "mode": args.mode, "data_bytes": X.nbytes}
    if isinstance(contestant, Skipped):
        result["skipped"] = contestant.reason
        print(json.dumps(result))
        return 0
    if contestant.warmup is not None:
        contestant.warmup()
    gc.collect()
    if args.mode == "rss":
        try:
            Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to VmRSS
        except OSError as exc:
            result["skipped"] = f"cannot reset the RSS high-water mark: {exc}"
            print(json.dumps(result))
            return 0
        before = _status_kib("VmRSS")
        contestant.run()
        peak = _status_kib("VmHWM")
        result["rss_before_bytes"] = before * 1024
        result["peak_above_bytes"] = (peak - before) * 1024
    else:
        tracemalloc.start()
        contestant.run()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        result["peak_above_bytes"] = peak
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
