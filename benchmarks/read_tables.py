"""Reading a large CSV: twolayer.read_table against pandas and the reader it replaced (issue 15).

Usage::

    python benchmarks/read_tables.py                      # 1 M rows x 50 columns
    python benchmarks/read_tables.py --rows 100000        # a quick check
    python benchmarks/read_tables.py --keep /tmp/big.csv  # reuse (or keep) the generated file

The file holds ``--columns - 1`` float columns written with up to 17 significant
digits and a last column of integer labels, written by pyarrow. Each reader runs
in a fresh Python process of its own, after its imports, so that neither the
imports nor another reader's memory count; the process reports

* the wall-clock time of the read, features and labels as NumPy arrays included;
* the peak resident memory the read added: Linux's high-water mark (``VmHWM``)
  is reset through ``/proc/self/clear_refs`` just before the read, and the
  peak is ``VmHWM`` after minus ``VmRSS`` before.

The readers:

``read_table``
    :func:`twolayer.read_table`, as every command reads a file.
``pandas (pyarrow engine)``
    ``pandas.read_csv(engine="pyarrow")`` and ``.to_numpy()`` of the features
    and labels: the same parser, through pandas.
``pandas (C engine)``
    ``pandas.read_csv`` with its default parser.
``hand-written (6541f2b)``
    The reader this module replaced, ``twolayer.io.datasets.read_csv`` at commit
    6541f2b (Python's csv module and float() per cell). Nothing of it is copied
    here: its source is taken from the repository's history with ``git show``
    and run as it was; without git (or that commit) the row says so.

This is a script, not a test: tests never time anything.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OLD_READER = ("6541f2b", "src/twolayer/io/datasets.py")
READERS = ("read_table", "pandas-pyarrow", "pandas-c", "hand-written")
TITLES = {
    "read_table": "read_table",
    "pandas-pyarrow": "pandas (pyarrow engine)",
    "pandas-c": "pandas (C engine)",
    "hand-written": f"hand-written ({OLD_READER[0]})",
}


def write_csv(path: Path, rows: int, columns: int, seed: int = 0) -> None:
    """Write ``rows`` x ``columns``: float features and an integer label last, in slices to bound memory."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    rng = np.random.default_rng(seed)
    names = [f"x{j + 1}" for j in range(columns - 1)] + ["label"]
    with pa_csv.CSVWriter(str(path), pa.schema([(n, pa.float64()) for n in names[:-1]] + [("label", pa.int64())])) as w:
        for start in range(0, rows, 100_000):
            n = min(100_000, rows - start)
            block = {name: rng.normal(size=n) for name in names[:-1]}
            block["label"] = rng.integers(0, 10, size=n)
            w.write_table(pa.table(block))


def _status_kib(field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"{field} not in /proc/self/status")
    return int(match.group(1))


def _old_reader() -> types.ModuleType:
    rev, path = OLD_READER
    text = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:{path}"], check=True, capture_output=True, text=True
    ).stdout
    module = types.ModuleType("twolayer_old_datasets")
    module.__file__ = f"{rev}:{path}"
    sys.modules[module.__name__] = module  # dataclasses look their module up while the class is made
    exec(compile(text, module.__file__, "exec"), module.__dict__)
    return module


def child(reader: str, path: str) -> dict[str, object]:
    """Run one reader in this process and return its time and memory."""
    if reader == "read_table":
        import twolayer

        def read() -> tuple[np.ndarray, np.ndarray]:
            table = twolayer.read_table(path)
            assert table.y is not None
            return table.X, table.y

    elif reader in ("pandas-pyarrow", "pandas-c"):
        import pandas as pd

        engine = "pyarrow" if reader == "pandas-pyarrow" else "c"

        def read() -> tuple[np.ndarray, np.ndarray]:
            frame = pd.read_csv(path, engine=engine)
            return frame.iloc[:, :-1].to_numpy(dtype=np.float64), frame.iloc[:, -1].to_numpy()

    else:
        try:
            old = _old_reader()
        except (OSError, subprocess.CalledProcessError) as exc:
            return {"skipped": f"the old reader is not in this checkout's history ({exc})"}

        def read() -> tuple[np.ndarray, np.ndarray]:
            data = old.read_csv(path)
            return data.X, data.y

    before = _status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")
    start = time.perf_counter()
    X, y = read()
    seconds = time.perf_counter() - start
    peak = _status_kib("VmHWM") - before
    return {
        "seconds": seconds,
        "peak_mib": peak / 1024,
        "shape": [*X.shape, len(y)],
        "checksum": float(X[:, 0].sum()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--columns", type=int, default=50)
    parser.add_argument("--readers", default=",".join(READERS), help=f"comma-separated, of {', '.join(READERS)}")
    parser.add_argument(
        "--keep", type=Path, help="the CSV to write (or reuse when it exists) instead of a temporary one"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        print(json.dumps(child(args.child, args.path)))
        return 0

    with tempfile.TemporaryDirectory() as folder:
        path = args.keep if args.keep is not None else Path(folder) / "big.csv"
        if not path.exists():
            start = time.perf_counter()
            write_csv(path, args.rows, args.columns)
            print(f"wrote {path}: {args.rows} rows x {args.columns} columns in {time.perf_counter() - start:.1f} s")
        size = path.stat().st_size / 2**20
        print(f"{path}: {size:.0f} MiB; the features as float64: {args.rows * (args.columns - 1) * 8 / 2**20:.0f} MiB")
        print(f"{'reader':<28} {'seconds':>9} {'peak MiB':>9}")
        checksums = set()
        for reader in args.readers.split(","):
            result = subprocess.run(
                [sys.executable, __file__, "--child", reader, "--path", str(path)],
                check=False,
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
            )
            if result.returncode != 0:
                print(f"{TITLES[reader]:<28} failed: {result.stderr.strip().splitlines()[-1]}")
                continue
            got = json.loads(result.stdout.strip().splitlines()[-1])
            if "skipped" in got:
                print(f"{TITLES[reader]:<28} skipped: {got['skipped']}")
                continue
            checksums.add(round(float(got["checksum"]), 6))
            print(f"{TITLES[reader]:<28} {got['seconds']:>9.2f} {got['peak_mib']:>9.0f}")
        if len(checksums) > 1:
            print(f"the readers disagree on the first column: {sorted(checksums)}")
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
