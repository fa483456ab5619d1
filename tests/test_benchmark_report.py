"""The benchmark script's bookkeeping: how a run enters BENCHMARKS.md, and the paired ratios.

Nothing here times anything (tests never do); these are the pure functions
that decide what the report keeps and what its targets table says.
"""

from __future__ import annotations

import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

# benchmarks/ is a folder of scripts, not a package: its modules import by path
import run
import sections


def _block(machine: str, label: str) -> str:
    return f"<!-- machine: {machine} -->\n## {label}\n\n| a | b |\n|---|---|\n| {label} | 1 |\n"


def _labels(report: str) -> list[str]:
    return [line[3:] for line in report.splitlines() if line.startswith("## ")]


def test_a_run_replaces_its_machines_runs_and_keeps_the_others() -> None:
    old = run.merged_report(None, _block("Xeon, 2 cores", "x1"), "Xeon, 2 cores", append=False)
    old = run.merged_report(old, _block("Xeon, 2 cores", "x2"), "Xeon, 2 cores", append=True)
    old = run.merged_report(old, _block("EPYC, 2 cores", "e1"), "EPYC, 2 cores", append=True)
    assert _labels(old) == ["x1", "x2", "e1"]

    new = run.merged_report(old, _block("Xeon, 2 cores", "x3"), "Xeon, 2 cores", append=False)

    assert _labels(new) == ["e1", "x3"]  # both Xeon runs gone, the EPYC run kept whole
    assert _block("EPYC, 2 cores", "e1").strip() in new
    assert new.startswith(run.INTRO)


def test_append_keeps_every_run_and_adds_the_new_one_last() -> None:
    old = run.merged_report(None, _block("Xeon, 2 cores", "x1"), "Xeon, 2 cores", append=False)

    new = run.merged_report(old, _block("Xeon, 2 cores", "x2"), "Xeon, 2 cores", append=True)

    assert _labels(new) == ["x1", "x2"]


def test_runs_without_a_machine_line_are_kept() -> None:
    # Runs written before runs named their machine sit right below the start mark.
    old = run.INTRO + "\n## legacy\n\nold numbers\n"

    new = run.merged_report(old, _block("Xeon, 2 cores", "x1"), "Xeon, 2 cores", append=False)

    assert _labels(new) == ["legacy", "x1"]
    assert "old numbers" in new


def test_a_file_that_is_not_a_report_is_replaced_by_one() -> None:
    new = run.merged_report("some notes\n## not a run\n", _block("Xeon, 2 cores", "x1"), "Xeon, 2 cores", append=True)

    assert _labels(new) == ["x1"]
    assert new.startswith(run.INTRO)


def test_the_repositorys_report_keeps_its_runs_when_another_machine_runs() -> None:
    report = (BENCHMARKS.parent / "BENCHMARKS.md").read_text()
    before = _labels(report)

    new = run.merged_report(report, _block("a machine never seen", "new"), "a machine never seen", append=False)

    assert _labels(new) == [*before, "new"]


def test_paired_ratios_come_from_the_same_repeat() -> None:
    # The medians' ratio is 2 / 1; within repeats the ratios are 3/1, 2/2 and 1/0.5.
    assert sections._paired([3.0, 2.0, 1.0], [1.0, 2.0, 0.5]) == "1.000–3.000 (n=3)"
    # A peer timed in fewer repeats is paired over the repeats both ran.
    assert sections._paired([4.0, 6.0], [2.0, 2.0, 2.0, 2.0]) == "2.000–3.000 (n=2)"
    assert sections._paired([], [1.0]) == "-"


def test_a_contestant_that_is_installed_and_fails_stops_the_run() -> None:
    """A peer that raises is not dropped from the report as skipped: the run fails, naming it."""
    import pytest

    import harness

    def broken() -> None:
        raise RuntimeError("Attempt to donate the same buffer twice")

    fine = harness.Contestant("fine", lambda: None)
    failing = harness.Contestant("JAX (jit)", broken, warmup=broken)
    skipped = harness.Skipped("PyTorch", "torch is not installed")
    with pytest.raises(harness.ContestantFailed, match=r"JAX \(jit\).*warm-up.*donate the same buffer twice"):
        harness.time_interleaved([fine, failing, skipped], 1)
    timings, missing = harness.time_interleaved([fine, skipped], 1)
    assert list(timings) == ["fine"] and [s.name for s in missing] == ["PyTorch"]
