"""Predicting for a large CSV: ``twolayer predict`` against pandas, rows per second and peak memory (issue 15).

Usage::

    python benchmarks/predict_throughput.py                        # about 1 GB: 11.25 M rows
    python benchmarks/predict_throughput.py --rows 200000          # a quick check
    python benchmarks/predict_throughput.py --keep /tmp/predict    # reuse (or keep) the CSV and the model
    python benchmarks/predict_throughput.py --repeats 3            # three rounds; the table gives medians

The CSV holds an identifier column of quoted text (``"r00000001"``...), eight float
feature columns written with six decimals, and an integer label of three
classes that depends on the features; pyarrow writes it, untimed. A model is
trained once, untimed, on a separate 100,000-row file of the same kind::

    twolayer train train.csv --id id --epochs 2 --out model.safetensors --quiet

and every contestant then writes, for every row of the large file, the
identifier, the predicted class and the three probabilities.

Each contestant runs in a fresh process of its own, twice: on the large file,
and on its first 1,000 rows, whose run is the fixed cost of the process
(interpreter, imports, reading the model). For each the parent records

* the wall-clock time from starting the process to its exit, and the CPU time
  it used (user and system, all its threads: on a machine shared with other
  work this moves less than the wall-clock time);
* the process's peak resident memory, imports included: ``ru_maxrss`` of the
  child as ``os.wait4`` returns it when the child exits.

The contestants:

``twolayer predict → CSV`` / ``→ Parquet``
    ``twolayer predict model.safetensors big.csv --id id --proba --out p.csv``
    (or ``p.parquet``): the command as a user runs it, reading the file a batch
    at a time.
``pandas, whole file``
    What a practitioner would write: ``pandas.read_csv(engine="pyarrow")`` of
    the whole file, the model from :func:`twolayer.io.modelfile.load` (a
    scikit-learn ``Pipeline``), ``predict_proba`` of the feature columns, and
    ``DataFrame.to_csv`` of the identifier, the prediction and the
    probabilities (pandas' default float format: the full float64 repr).
``pandas, chunks``
    The same, memory-flat: ``read_csv(chunksize=...)`` (C engine), each chunk
    predicted and appended with ``to_csv(mode="a")``.

The pandas processes also time their own steps (imports, read, predict,
write). A last run, ``twolayer predict → CSV, in steps``, runs the same command
in-process (``twolayer.cli.main.main``) with timers around its three stages:
reading and encoding the batches (``twolayer.io.datasets.load_batches``), the
network (the model's ``predict_proba``), and formatting and writing
(``PredictionWriter.write`` and its closing). The rest is the process's start,
the model file and the loop's own work.

Finally the outputs are read back and compared: the same identifiers in the
same order, the same predicted classes, and probabilities within the CSV's
six significant digits.

This is a script, not a test: tests never time anything.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FEATURES = [f"x{j + 1}" for j in range(8)]
CLASSES = 3
TRAIN_ROWS = 100_000
SMALL_ROWS = 1_000
CHUNK_ROWS = 100_000
STAGES = ("read and encode", "network", "format and write")
CONTESTANTS = ("twolayer-csv", "twolayer-parquet", "pandas", "pandas-chunks", "twolayer-steps")
TITLES = {
    "twolayer-csv": "`twolayer predict` → CSV",
    "twolayer-parquet": "`twolayer predict` → Parquet",
    "pandas": "pandas, whole file (pyarrow engine)",
    "pandas-chunks": f"pandas, chunks of {CHUNK_ROWS:,} (C engine)",
    "twolayer-steps": "`twolayer predict` → CSV, in steps",
}
OUTPUTS = {
    "twolayer-csv": "p.csv",
    "twolayer-parquet": "p.parquet",
    "pandas": "p-pandas.csv",
    "pandas-chunks": "p-pandas-chunks.csv",
    "twolayer-steps": "p-steps.csv",
}


def write_csv(path: Path, rows: int, seed: int) -> None:
    """Write ``rows`` rows of id, eight features and a label, in slices to bound memory."""
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.compute as pc  # type: ignore[import-untyped]
    import pyarrow.csv as pa_csv  # type: ignore[import-untyped]

    rng = np.random.default_rng(seed)
    # One fixed rule for every file, so that a model trained on one file predicts the other.
    weights = np.random.default_rng(12345).normal(size=(len(FEATURES), CLASSES))
    schema = pa.schema([("id", pa.string())] + [(n, pa.float64()) for n in FEATURES] + [("label", pa.int64())])
    with pa_csv.CSVWriter(str(path), schema) as writer:
        for start in range(0, rows, 100_000):
            n = min(100_000, rows - start)
            X = rng.normal(size=(n, len(FEATURES)))
            label = np.argmax(X @ weights + rng.normal(scale=0.5, size=(n, CLASSES)), axis=1)
            numbers = pc.cast(pa.array(np.arange(start + 1, start + n + 1)), pa.string())
            ids = pc.binary_join_element_wise("r", pc.utf8_lpad(numbers, 8, padding="0"), "")
            columns: dict[str, Any] = {"id": ids}
            columns.update({name: np.round(X[:, j], 6) for j, name in enumerate(FEATURES)})
            columns["label"] = label.astype(np.int64)
            writer.write_table(pa.table(columns, schema=schema))


def head(source: Path, target: Path, rows: int) -> None:
    """Copy the header and the first ``rows`` rows of a CSV."""
    with source.open("rb") as inp, target.open("wb") as out:
        for _ in range(rows + 1):
            out.write(inp.readline())


def count_rows(path: Path) -> int:
    """The data rows of a CSV with a header and no quoted line breaks."""
    lines = 0
    with path.open("rb") as inp:
        while block := inp.read(1 << 24):
            lines += block.count(b"\n")
    return lines - 1


def _pandas(path: str, model_path: str, out: str, chunks: bool) -> dict[str, object]:
    """The pandas way, timed step by step in this process."""
    start = time.perf_counter()
    import pandas as pd

    from twolayer.io.modelfile import load

    steps = {"imports": time.perf_counter() - start}
    model = load(model_path)
    classes = model.classes_
    names = ["prediction"] + [f"proba_{c}" for c in classes]

    def predicted(frame: Any) -> Any:
        proba = model.predict_proba(frame[FEATURES].to_numpy())
        result = pd.DataFrame(proba, columns=names[1:])
        result.insert(0, "prediction", classes[np.argmax(proba, axis=1)])
        result.insert(0, "id", frame["id"].to_numpy())
        return result

    rows = 0
    if not chunks:
        t = time.perf_counter()
        frame = pd.read_csv(path, engine="pyarrow")
        steps["read"] = time.perf_counter() - t
        t = time.perf_counter()
        result = predicted(frame)
        steps["predict"] = time.perf_counter() - t
        t = time.perf_counter()
        result.to_csv(out, index=False)
        steps["write"] = time.perf_counter() - t
        rows = len(result)
    else:
        steps.update(read=0.0, predict=0.0, write=0.0)
        reader = pd.read_csv(path, chunksize=CHUNK_ROWS)
        while True:
            t = time.perf_counter()
            frame = next(reader, None)
            steps["read"] += time.perf_counter() - t
            if frame is None:
                break
            t = time.perf_counter()
            result = predicted(frame)
            steps["predict"] += time.perf_counter() - t
            t = time.perf_counter()
            result.to_csv(out, index=False, mode="a" if rows else "w", header=not rows)
            steps["write"] += time.perf_counter() - t
            rows += len(result)
    return {"rows": rows, "steps": steps}


def _timed(function: Callable[..., Any], steps: dict[str, float], step: str) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            steps[step] += time.perf_counter() - t

    return timed


def _steps(path: str, model_path: str, out: str) -> dict[str, object]:
    """``twolayer predict`` run in this process, with timers around its stages."""
    start = time.perf_counter()
    import twolayer.io.datasets
    import twolayer.io.modelfile
    from twolayer.cli.main import main as twolayer_main
    from twolayer.io.predictions import PredictionWriter

    steps = {"imports": time.perf_counter() - start, **dict.fromkeys(STAGES, 0.0)}
    load_batches = twolayer.io.datasets.load_batches
    read_model = twolayer.io.modelfile.read

    def timed_batches(*args: Any, **kwargs: Any) -> Iterator[Any]:
        batches = load_batches(*args, **kwargs)
        while True:
            t = time.perf_counter()
            batch = next(batches, None)
            steps["read and encode"] += time.perf_counter() - t
            if batch is None:
                return
            yield batch

    def timed_model(*args: Any, **kwargs: Any) -> Any:
        model_file = read_model(*args, **kwargs)
        # The pipeline's method is looked up on the instance first, so this times only this model.
        model_file.model.predict_proba = _timed(model_file.model.predict_proba, steps, "network")
        return model_file

    twolayer.io.datasets.load_batches = timed_batches
    twolayer.io.modelfile.read = timed_model
    PredictionWriter.write = _timed(PredictionWriter.write, steps, "format and write")  # type: ignore[method-assign]
    PredictionWriter.__exit__ = _timed(PredictionWriter.__exit__, steps, "format and write")  # type: ignore[method-assign]
    t = time.perf_counter()
    status = twolayer_main(["predict", model_path, path, "--id", "id", "--proba", "--out", out])
    # What main() spends beyond the three stages: its own imports, the model file, the loop's work.
    steps["rest of main()"] = time.perf_counter() - t - sum(steps[k] for k in STAGES)
    if status != 0:
        raise RuntimeError(f"twolayer predict exited with {status}")
    return {"steps": steps}


def child(contestant: str, path: str, model: str, out: str) -> dict[str, object]:
    """Run one in-process contestant and return what it timed."""
    if contestant == "twolayer-steps":
        return _steps(path, model, out)
    return _pandas(path, model, out, chunks=contestant == "pandas-chunks")


def command(contestant: str, path: Path, model: Path, out: Path) -> list[str]:
    """The process a contestant runs in."""
    if contestant in ("twolayer-csv", "twolayer-parquet"):
        twolayer = Path(sys.executable).parent / "twolayer"
        return [str(twolayer), "predict", str(model), str(path), "--id", "id", "--proba", "--out", str(out)]
    return [
        sys.executable,
        __file__,
        "--child",
        contestant,
        "--path",
        str(path),
        "--model",
        str(model),
        "--out",
        str(out),
    ]


def measure(argv: list[str]) -> dict[str, Any]:
    """Run ``argv`` to its exit: wall and CPU seconds, peak resident MiB (``ru_maxrss``), and its output."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        start = time.perf_counter()
        process = subprocess.Popen(argv, stdout=stdout, stderr=stderr, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        stderr.seek(0)
        return {
            "seconds": seconds,
            "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "peak_mib": usage.ru_maxrss / 1024,  # KiB on Linux
            "status": process.returncode,
            "stdout": stdout.read(),
            "stderr": stderr.read(),
        }


def compare(paths: dict[str, Path], rows: int) -> tuple[bool, list[str]]:
    """Whether every output holds the same ids, predictions and (to six digits) probabilities, and notes on each."""
    import pyarrow.compute as pc
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    def read(path: Path) -> Any:
        if path.suffix == ".parquet":
            return pq.read_table(path)
        return pa_csv.read_csv(path, convert_options=pa_csv.ConvertOptions(column_types={"id": "string"}))

    first_name, first_path = next(iter(paths.items()))
    reference = read(first_path)
    notes = []
    same = reference.num_rows == rows
    if not same:
        notes.append(f"{TITLES[first_name]} wrote {reference.num_rows} rows, not {rows}")
    for name, path in list(paths.items())[1:]:
        other = read(path)
        if other.column_names != reference.column_names or other.num_rows != reference.num_rows:
            notes.append(f"{TITLES[name]}: columns {other.column_names} x {other.num_rows} rows differ")
            same = False
            continue
        if not pc.all(pc.equal(other["id"], reference["id"])).as_py():
            notes.append(f"{TITLES[name]}: the ids differ")
            same = False
        labels = [np.asarray(t["prediction"]).astype(str) for t in (reference, other)]
        disagree = int(np.count_nonzero(labels[0] != labels[1]))
        worst = max(
            float(np.max(np.abs(np.asarray(other[c], dtype=np.float64) - np.asarray(reference[c], dtype=np.float64))))
            for c in reference.column_names
            if c.startswith("proba_")
        )
        # Six significant digits in a CSV: a probability is off by at most 5e-7 of its size.
        if disagree or worst > 1e-6:
            notes.append(f"{TITLES[name]}: {disagree} predictions differ; probabilities by up to {worst:.2g}")
            same = False
        else:
            notes.append(f"{TITLES[name]}: same ids and predictions, probabilities within {worst:.1g}")
    return same, notes


def _load_average() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def run_contestant(contestant: str, folder: Path, model: Path) -> dict[str, Any] | str:
    """One run of a contestant on the large file and on its head: the numbers, or why it failed."""
    out = folder / OUTPUTS[contestant]
    fixed = measure(command(contestant, folder / "small.csv", model, folder / f"small-{OUTPUTS[contestant]}"))
    got = measure(command(contestant, folder / "big.csv", model, out))
    for run in (fixed, got):
        if run["status"] != 0:
            return f"failed: {(run['stderr'].strip().splitlines() or ['(no message)'])[-1]}"
    steps: dict[str, float] = {}
    if contestant not in ("twolayer-csv", "twolayer-parquet"):
        steps = json.loads(got["stdout"].strip().splitlines()[-1])["steps"]
    return {
        "seconds": got["seconds"],
        "cpu_seconds": got["cpu_seconds"],
        "peak_mib": got["peak_mib"],
        "start_seconds": fixed["seconds"],
        "start_mib": fixed["peak_mib"],
        "out_mib": out.stat().st_size / 2**20,
        "steps": steps,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=11_250_000, help="rows of the large CSV (default: about 1 GB)")
    parser.add_argument(
        "--contestants", default=",".join(CONTESTANTS), help=f"comma-separated, of {', '.join(CONTESTANTS)}"
    )
    parser.add_argument(
        "--repeats", type=int, default=1, help="rounds of every contestant in turn; the table gives medians"
    )
    parser.add_argument(
        "--keep", type=Path, help="a folder for the CSV, the model and the outputs, reused when they are there"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        print(json.dumps(child(args.child, args.path, args.model, args.out)))
        return 0

    contestants = args.contestants.split(",")
    unknown = sorted(set(contestants) - set(CONTESTANTS))
    if unknown:
        parser.error(f"unknown contestants {unknown}; choose among {', '.join(CONTESTANTS)}")
    from machine import machine_key  # benchmarks/, this script's folder

    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep if args.keep is not None else Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        big, model = folder / "big.csv", folder / "model.safetensors"
        if not big.exists():
            start = time.perf_counter()
            write_csv(big, args.rows, seed=0)
            print(f"wrote {big} in {time.perf_counter() - start:.1f} s")
        rows = count_rows(big)
        head(big, folder / "small.csv", min(SMALL_ROWS, rows))
        if not model.exists():
            train = folder / "train.csv"
            write_csv(train, TRAIN_ROWS, seed=1)
            twolayer = str(Path(sys.executable).parent / "twolayer")
            trained = measure(
                [twolayer, "train", str(train), "--id", "id", "--epochs", "2", "--out", str(model), "--quiet"]
            )
            if trained["status"] != 0:
                print(f"training failed: {trained['stderr'].strip()}")
                return 1
            print(f"trained {model} on {TRAIN_ROWS} rows in {trained['seconds']:.1f} s")
        print(f"{machine_key()}; {time.strftime('%Y-%m-%d %H:%M %Z')}")
        size = big.stat().st_size
        print(f"{big}: {rows} rows, {size / 2**20:.0f} MiB ({size / 1e9:.2f} GB)")
        print(f"load average at start: {_load_average()}")
        results: dict[str, list[dict[str, Any]]] = {c: [] for c in contestants}
        for round_ in range(args.repeats):
            for contestant in contestants:
                got = run_contestant(contestant, folder, model)
                if isinstance(got, str):
                    print(f"{TITLES[contestant]}: {got}")
                    results.pop(contestant, None)
                    continue
                if contestant in results:
                    results[contestant].append(got)
                    print(
                        f"round {round_ + 1}: {TITLES[contestant]}: {got['seconds']:.1f} s "
                        f"({got['cpu_seconds']:.1f} s of CPU), "
                        f"{got['peak_mib']:.0f} MiB (load {_load_average()})",
                        flush=True,
                    )
        print(f"load average at end: {_load_average()}")
        print(
            f"{'contestant':<42} {'seconds':>8} {'range':>11} {'CPU s':>7} {'rows/s':>10} {'peak MiB':>9} "
            f"{'start s':>8} {'start MiB':>9} {'out MiB':>8}  steps (s)"
        )
        for contestant, runs in results.items():
            seconds = [r["seconds"] for r in runs]
            median = float(np.median(seconds))
            steps = ", ".join(f"{k} {np.median([r['steps'][k] for r in runs]):.1f}" for k in runs[0]["steps"])
            print(
                f"{TITLES[contestant]:<42} {median:>8.1f} {f'{min(seconds):.1f}-{max(seconds):.1f}':>11} "
                f"{np.median([r['cpu_seconds'] for r in runs]):>7.1f} "
                f"{rows / median:>10,.0f} {max(r['peak_mib'] for r in runs):>9.0f} "
                f"{np.median([r['start_seconds'] for r in runs]):>8.2f} {max(r['start_mib'] for r in runs):>9.0f} "
                f"{runs[0]['out_mib']:>8.0f}  {steps}"
            )
        outputs = {c: folder / OUTPUTS[c] for c in results}
        same, notes = compare(outputs, rows) if outputs else (True, [])
        print(f"outputs compared with {TITLES[next(iter(outputs))]}'s" if outputs else "no outputs to compare")
        for note in notes:
            print(note)
        if not same:
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
