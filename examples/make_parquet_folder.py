"""Write a folder of Parquet files for the README's Dask example: rows made one file at a time.

Usage::

    python examples/make_parquet_folder.py big/                          # 6 M rows x 24 features, 24 files
    python examples/make_parquet_folder.py big/ --files 4 --rows 10000   # a small one

Each row has ``--features`` standard-normal features ``x0 ...`` and a label ``colour`` of three
classes ("red", "green", "blue") drawn from a fixed random two-layer teacher network, so that a
network can learn it and cannot be perfect. File ``k`` is made from the seed ``(0, k)``: the same
folder on every machine. Only one file's rows are ever in memory, so the folder can be made much
larger than this machine's memory.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

COLOURS = np.array(["red", "green", "blue"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="where to write part-00000.parquet, ... (made if missing)")
    parser.add_argument("--files", type=int, default=24)
    parser.add_argument("--rows", type=int, default=250_000, help="rows per file")
    parser.add_argument("--features", type=int, default=24)
    args = parser.parse_args()
    teacher = np.random.default_rng(12345)
    W1 = teacher.normal(size=(args.features, 8)) / np.sqrt(args.features)
    W2 = teacher.normal(size=(8, 3)) * 3.0
    args.folder.mkdir(parents=True, exist_ok=True)
    for k in range(args.files):
        rng = np.random.default_rng((0, k))
        X = rng.standard_normal((args.rows, args.features))
        logits = np.tanh(X @ W1) @ W2 + rng.gumbel(size=(args.rows, 3))
        columns = {f"x{j}": X[:, j] for j in range(args.features)}
        columns["colour"] = COLOURS[np.argmax(logits, axis=1)]
        pq.write_table(pa.table(columns), args.folder / f"part-{k:05d}.parquet")
    print(f"wrote {args.files * args.rows:,} rows in {args.files} files to {args.folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
