"""``--dask``: the options of ``train`` and ``predict`` on a Dask cluster, their refusals, and the cluster.

``--dask local[:N]`` starts a ``distributed.LocalCluster`` of N worker processes (by default one per
processor), one thread each and no dashboard, for the length of the command, and closes it at the
end; ``--dask-memory`` is each worker's memory limit. ``--dask ADDRESS`` connects to a scheduler
that is running already (``tcp://host:8786``), and fails within ``--dask-timeout`` seconds, in one
line naming the address, when nothing answers there. The runs themselves are
:mod:`twolayer.cli.dask_runs`; what they read and write, :mod:`twolayer.io.dask_tables`.

Dask is imported inside the functions that use it, never when this module is.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from twolayer.cli.common import positive_float
from twolayer.errors import DataError, format_bytes

__all__ = [
    "DEFAULT_TIMEOUT",
    "Cluster",
    "add_dask_arguments",
    "connected",
    "dask_target",
    "memory_limit",
    "refuse_predict_options",
    "refuse_train_options",
]

#: Seconds to wait for a scheduler at an address before giving up.
DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True)
class Target:
    """Where ``--dask`` runs the work: a local cluster of ``workers`` processes, or a scheduler's ``address``."""

    workers: int | None  # None: one per processor (local), or not local
    address: str | None

    @property
    def local(self) -> bool:
        return self.address is None

    def __str__(self) -> str:
        if self.address is not None:
            return self.address
        return "local" if self.workers is None else f"local:{self.workers}"


def dask_target(text: str) -> Target:
    """A ``--dask`` value: ``local``, ``local:N`` or a scheduler's address."""
    if text == "local":
        return Target(None, None)
    if text.startswith("local:"):
        count = text.removeprefix("local:")
        if not count.isdigit() or int(count) < 1:
            raise argparse.ArgumentTypeError(
                f"expected local, local:N with N a positive integer, or an address; got {text!r}"
            )
        return Target(int(count), None)
    if not text.strip() or any(c.isspace() for c in text):
        raise argparse.ArgumentTypeError(f"expected local, local:N or a scheduler's address, got {text!r}")
    return Target(None, text)


def memory_limit(text: str) -> int:
    """A ``--dask-memory`` value in bytes: ``512MiB``, ``2GB``, ``1e9``."""
    from dask.utils import parse_bytes

    try:
        value = int(parse_bytes(text))
    except (ValueError, TypeError):
        raise argparse.ArgumentTypeError(f"expected an amount of memory such as 512MiB or 2GB, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive amount of memory, got {text!r}")
    return value


def add_dask_arguments(p: argparse.ArgumentParser, *, command: str) -> None:
    """``--dask``, ``--dask-memory`` and ``--dask-timeout``, in a group of their own."""
    what = (
        "train on a Dask cluster: DATA may be a file, a folder or a glob of Parquet or CSV files, read in "
        "partitions on the workers (numeric features; every row trains)"
        if command == "train"
        else "predict on a Dask cluster: DATA may be a file, a folder or a glob of Parquet or CSV files; an --out "
        "that is a folder (an existing one, or a name ending in /; or a .parquet name, for several partitions) "
        "gets one Parquet file per partition, written by the workers; a file or standard output gets the "
        "partitions in order"
    )
    group = p.add_argument_group("a Dask cluster (--dask)")
    group.add_argument(
        "--dask",
        type=dask_target,
        metavar="WHERE",
        help=f"{what}. WHERE is 'local' (a local cluster of one worker process per processor), 'local:N' (N "
        "workers), or the address of a running scheduler (tcp://host:8786), whose workers must see DATA (and --out) "
        "at the same paths",
    )
    group.add_argument(
        "--dask-memory",
        type=memory_limit,
        metavar="LIMIT",
        help="each local worker's memory limit, such as 1GiB; a worker needs some 400 MiB for itself (default: the machine's memory shared "
        "among the workers); data that do not fit in half the workers' memory together are read from the files "
        "again at every pass",
    )
    group.add_argument(
        "--dask-timeout",
        type=positive_float,
        metavar="SECONDS",
        help=f"how long to wait for the scheduler at --dask ADDRESS (default: {DEFAULT_TIMEOUT:g})",
    )


def _refuse(given: bool, option: str, reason: str) -> None:
    if given:
        raise DataError(f"{option} does not apply with --dask ({reason})")


def _refuse_common(args: argparse.Namespace) -> None:
    if args.dask is None:
        for option, value in (("--dask-memory", args.dask_memory), ("--dask-timeout", args.dask_timeout)):
            if value is not None:
                raise DataError(f"{option} applies with --dask")
        return
    if not args.dask.local and args.dask_memory is not None:
        raise DataError(
            f"--dask-memory sets the memory of the workers of --dask local; those of the scheduler at {args.dask} "
            "have their own"
        )
    if args.dask.local and args.dask_timeout is not None:
        raise DataError("--dask-timeout applies with --dask ADDRESS (a scheduler that runs already)")


def refuse_train_options(args: argparse.Namespace) -> None:
    """Refuse, in one line each, the ``train`` options that ``--dask`` cannot honour (and the --dask
    options without --dask)."""
    _refuse_common(args)
    if args.dask is None:
        return
    _refuse(args.multilabel, "--multilabel", "its labels are read in memory")
    _refuse(args.resume is not None, "--resume", "a run on the cluster is not checkpointed")
    _refuse(args.checkpoint is not None, "--checkpoint", "a run on the cluster is not checkpointed")
    _refuse(args.checkpoint_every is not None, "--checkpoint-every", "a run on the cluster is not checkpointed")
    _refuse(args.overwrite, "--overwrite", "it concerns --checkpoint, which does not apply")
    _refuse(
        args.test_size is not None,
        "--test-size",
        "every row of DATA trains; give --validation FILE for a held-out set",
    )
    _refuse(args.plot is not None, "--plot", "its pictures need the rows in memory")
    _refuse(args.describe, "--describe", "run it without --dask, on one of the files")
    if args.missing not in (None, "error"):
        raise DataError(
            f"--missing {args.missing} does not apply with --dask (its fill values and dropped rows are decided on "
            "every row at once): fill or drop the missing cells first, or train without --dask"
        )
    if args.data is None:
        raise DataError("--dask reads files: give DATA, a file, a folder or a glob of Parquet or CSV files")


def refuse_predict_options(args: argparse.Namespace) -> None:
    """Refuse, in one line each, the ``predict`` options that ``--dask`` cannot honour (and the --dask
    options without --dask)."""
    _refuse_common(args)
    if args.dask is None:
        return
    _refuse(args.keep_columns, "--keep-columns", "the partitions carry the network's inputs only")


@dataclass(frozen=True)
class Cluster:
    """The cluster a command runs on: its client, and one line that says what it is."""

    client: Any
    description: str


@contextmanager
def connected(target: Target, *, memory: int | None = None, timeout: float | None = None) -> Iterator[Cluster]:
    """A client of the cluster ``--dask`` names, current for the block, closed after it.

    ``local`` starts a ``distributed.LocalCluster`` of worker processes (one thread each, no
    dashboard, the workers' logs silenced: what fails is said here, in one line) and closes it at the end; an address is
    connected to, and given ``timeout`` seconds to answer.

    Raises
    ------
    DataError
        No scheduler answers at the address (naming it), or the local cluster cannot start; a worker
        died in the block (killed for its memory, say).
    """
    from distributed import Client, LocalCluster

    cluster = None
    if target.local:
        workers = target.workers or os.cpu_count() or 1
        try:
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                # No dashboard, but the scheduler's HTTP server still starts: on a free port, rather than on
                # 8787 with a warning when another cluster has that one.
                scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                memory_limit=memory if memory is not None else "auto",
                silence_logs=logging.CRITICAL,
            )
            client = Client(cluster)
        except (OSError, RuntimeError, ValueError) as exc:
            if cluster is not None:
                cluster.close()
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataError(f"--dask {target}: the local cluster did not start ({detail})") from None
        limit = f", {format_bytes(memory)} each" if memory is not None else ""
        description = f"local: {workers} worker process{'es' if workers != 1 else ''}, 1 thread each{limit}"
    else:
        assert target.address is not None
        wait = timeout if timeout is not None else DEFAULT_TIMEOUT
        try:
            client = Client(target.address, timeout=wait)
        except (OSError, TimeoutError, ValueError) as exc:
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataError(
                f"--dask {target.address}: no Dask scheduler answered within {wait:g} s ({detail})"
            ) from None
        n = len(client.scheduler_info().get("workers", {}))
        description = f"{target.address}: {n} worker{'s' if n != 1 else ''}"
    try:
        yield Cluster(client, description)
    except BaseException as exc:
        # The cluster's own failures (a worker killed for its memory, its tasks then lost; a scheduler gone)
        # are distributed's exceptions, some of them not even Exceptions (a cancelled future): one line each.
        if type(exc).__module__.split(".")[0] != "distributed":
            raise
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        advice = (
            "give the workers more memory (--dask-memory; a worker needs some 400 MiB besides the data) or use "
            "smaller files"
            if target.local
            else "see the workers' logs"
        )
        raise DataError(
            f"--dask {target}: the cluster failed ({type(exc).__name__}: {detail}); a worker may have died: {advice}"
        ) from None
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
