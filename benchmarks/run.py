"""Benchmark twolayer against the floor and its peers (issue 5), in one process.

Usage::

    python benchmarks/run.py                       # everything, writes BENCHMARKS.md
    python benchmarks/run.py --quick --output /tmp/b.md   # smoke run: small sizes, 1 repeat
    python benchmarks/run.py --only epoch32,memory --no-write
    python benchmarks/run.py --list                # the sections

A run replaces the earlier runs of the same kind of machine in BENCHMARKS.md
and keeps those of other machines (each run starts with a ``<!-- machine: ... -->``
line naming its CPU and core count); ``--append`` keeps every earlier run. Two
runs in one report, the second with OpenBLAS left to pick the processor's own
kernel::

    python benchmarks/run.py --label "as the machine is set up"
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \\
        python benchmarks/run.py --append --label "OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE unset"

A peer that is not installed is skipped with a note in its table; a contestant that is
installed but raises stops the run with exit status 1, a message naming it and its error,
and no report written.

This is a script, not a test: tests never time anything.
"""

from __future__ import annotations

import os

# Read before NumPy loads OpenBLAS, which reads them once, at load time.
ENV_AT_START = {
    k: os.environ.get(k)
    for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
}

import argparse
import importlib
import json
import re
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import machine
import sections
from harness import SECTIONS, ContestantFailed, Table, log

# The modules whose @section functions make up the report, in the order they run: add a module
# here to add sections (their order of registration is the order of the report).
SECTION_MODULES = ("sections", "curvature_sections")  # issue 5; issues 6 and 7
for _module in SECTION_MODULES:
    importlib.import_module(_module)

START_MARK = "<!-- runs: each run of benchmarks/run.py appends below this line -->"
# The first line of every run below START_MARK: which kind of machine it ran on.
MACHINE_LINE = re.compile(r"^<!-- machine: (.*) -->$", re.MULTILINE)

INTRO = f"""# Benchmarks

How fast `twolayer` trains its two-layer network on a CPU, measured in one process against **the
floor** (the five matrix products of every batch, which no NumPy trainer can beat) and against its
peers: scikit-learn's `MLPClassifier`, PyTorch on the CPU and JAX with a jit-compiled step (issue 5).

Reproduce (the `bench` extra plus PyTorch's CPU build and JAX, in their own environment):

```
python3 -m venv .venv-bench
.venv-bench/bin/pip install -e ".[bench]" torch==2.13.0 jax optax
.venv-bench/bin/python benchmarks/run.py --label "as the machine is set up"
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv-bench/bin/python benchmarks/run.py --append \\
    --label "OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset"
```

`--quick` runs everything at small sizes once (a smoke test, not a measurement); `--only SECTION[,SECTION]`
runs some sections; `--list` lists them; `--threads 1` gives every contestant one thread, which is
far less disturbed by other work on a busy machine (a multi-threaded BLAS or OpenMP program waits
on whichever of its threads the scheduler has set aside) but is not how users run; `--json PATH`
keeps the raw times. On a quiet 2-core machine the whole run takes a few minutes.

**The workload**: `make_classification(n_samples=60000, n_features=784, n_informative=60,
n_classes=10, random_state=0)` as float32 (and widened to float64), M = 256 tanh hidden units,
softmax outputs, cross-entropy, Adam (learning rate 1e-3), batches of 200, one epoch.

**How it is timed**: every contestant is warmed up (imports, JIT compilation, BLAS threads), then
each repeat runs every contestant once, in an order rotated from repeat to repeat, so that a busy
moment of a shared machine falls on all of them; tables give the median with the spread
`[min–max, n repeats]`, and ratios of medians. All contestants use every usable core (NumPy's BLAS
threads, `torch.set_num_threads`, XLA's thread pool). Memory is measured in a subprocess per
contestant (see that table's notes). Each run below records the machine, its BLAS kernel and the
load average; on a 2-core machine shared with other work, the spread columns show how much to
trust a ratio. A new run replaces the earlier runs of its kind of machine (CPU model and core
count, named in a comment above its heading) and keeps the other machines' runs; `--append` keeps
them all. The other scripts of `benchmarks/` (`dask_scaling.py`, `gpu.py`, ...) write sections that
are pasted below the runs, each under a marker of its own, which a new run keeps.

{START_MARK}
"""


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark twolayer against the floor and its peers (issue 5).")
    parser.add_argument(
        "--quick", action="store_true", help="small sizes (6,000 rows) and one repeat: a smoke run, not a measurement"
    )
    parser.add_argument("--only", default="", help="comma-separated sections to run (default: all; see --list)")
    parser.add_argument("--list", action="store_true", help="list the sections and exit")
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed repeats per contestant (default 5; 1 with --quick)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="limit every contestant to this many threads (NumPy's BLAS, PyTorch; JAX only to 1); "
        "default: every usable core, as users run",
    )
    parser.add_argument(
        "--label", default="", help="a name for this run in BENCHMARKS.md, e.g. 'as the machine is set up'"
    )
    parser.add_argument(
        "--note", default="", help="a remark printed with this run (e.g. 'preliminary: other work was running')"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=REPO / "BENCHMARKS.md",
        help="the Markdown report to write (default: BENCHMARKS.md at the repository root)",
    )
    parser.add_argument(
        "--append",
        action="store_true",
        help="keep every run already in --output and add this one below them (without it, the "
        "earlier runs of this kind of machine are replaced and other machines' runs kept)",
    )
    parser.add_argument("--no-write", action="store_true", help="print the report only")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw timings as JSON here")
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    if args.repeats is not None and args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    args.sections = names or list(SECTIONS)
    return args


def _run_block(args: argparse.Namespace, info: dict, tables: list[Table], seconds: float) -> str:
    label = args.label or "run"
    lines = [f"<!-- machine: {info['machine_key']} -->", f"## {label}", ""]
    if args.quick:
        lines += ["**Smoke run (`--quick`): small sizes, one repeat; not a measurement.**", ""]
    if args.note:
        lines += [f"**Note:** {args.note}", ""]
    lines += [machine.markdown(info)]
    threads = f"{args.threads} thread(s) per contestant (--threads)" if args.threads else "all usable cores"
    lines += [
        (f"Sections: {', '.join(args.sections)}; {args.repeats} repeats; {threads}; whole run {seconds / 60:.1f} min."),
        "",
    ]
    lines += [t.markdown() for t in tables]
    return "\n".join(lines).rstrip() + "\n"


def _runs(text: str) -> list[tuple[str | None, str]]:
    """The runs after START_MARK, each with the machine its first line names (None: unmarked)."""
    body = text.split(START_MARK, 1)[1] if START_MARK in text else ""
    runs = []
    for piece in re.split(r"(?m)^(?=<!-- machine: )", body):  # cut before every machine line
        if piece.strip():
            marked = MACHINE_LINE.match(piece)
            runs.append((marked.group(1) if marked else None, piece.strip()))
    return runs


def merged_report(old: str | None, block: str, machine_key: str, append: bool) -> str:
    """The report with ``block`` added: after every earlier run (``append``), or in place of the
    earlier runs of ``machine_key`` (runs of other machines, and unmarked ones, are kept)."""
    kept = [run for key, run in _runs(old or "") if append or key != machine_key]
    return INTRO + "\n" + "".join(run + "\n\n" for run in kept) + block


def _write(path: Path, block: str, machine_key: str, append: bool) -> None:
    # Atomic (the package's own writer): a run that fails while writing leaves the old report whole.
    from twolayer.io.modelfile import atomic_write

    old = path.read_text() if path.exists() else None
    atomic_write(path, merged_report(old, block, machine_key, append).encode())


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    if args.list:
        for s in SECTIONS.values():
            print(f"{s.name:<10} {s.title}")
        return 0
    if args.repeats is None:
        args.repeats = 1 if args.quick else 5
    limits = None
    if args.threads is not None:
        from threadpoolctl import threadpool_limits

        import contestants

        contestants.load_libraries()  # threadpoolctl limits only the libraries already loaded
        contestants.THREADS = args.threads
        limits = threadpool_limits(limits=args.threads)  # NumPy's and SciPy's BLAS, OpenMP  # noqa: F841
    ctx = sections.Context(
        quick=args.quick, repeats=args.repeats, n_samples=6_000 if args.quick else 60_000, threads=args.threads
    )
    load_start = machine.load_average()
    t0 = time.perf_counter()
    tables: list[Table] = []
    for name in args.sections:
        s = SECTIONS[name]
        log(f"[{name}] {s.title}")
        t1 = time.perf_counter()
        try:
            tables += s.func(ctx)
        except ContestantFailed as exc:
            # An installed contestant that cannot run is a broken benchmark, not a missing peer:
            # stop, say which and why, and leave the report as it was.
            if exc.error.__traceback__ is not None:  # a memory child's error carries its stderr instead
                traceback.print_exception(type(exc.error), exc.error, exc.error.__traceback__)
            log(f"error: [{name}] {exc}")
            log("error: the run stops here and writes no report")
            return 1
        log(f"[{name}] done in {time.perf_counter() - t1:.1f} s")
    target_table = sections.targets(ctx)
    if target_table is not None:
        tables.append(target_table)
    seconds = time.perf_counter() - t0
    # Described after the run, so that every library the contestants loaded is in the BLAS table.
    info = machine.describe(REPO, ENV_AT_START)
    info["load_start"], info["load_end"] = load_start, machine.load_average()
    block = _run_block(args, info, tables, seconds)
    print(block)
    if not args.no_write:
        _write(args.output, block, info["machine_key"], args.append)
        log(f"wrote {args.output}")
    if args.json is not None:
        args.json.write_text(
            json.dumps({"label": args.label, "machine": info, "results": ctx.results}, indent=1, default=str)
        )
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
