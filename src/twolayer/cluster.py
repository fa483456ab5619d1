"""Sums over blocks of rows, computed where the rows are: the network's quantities on a Dask cluster.

The error, its gradient, the Hessian, its products, the Gauss–Newton matrix
and its diagonal are all sums over patterns (PRML eq. 5.24), so each is a
map over blocks of rows followed by a sum: the per-block work is the very
function that computes the quantity in memory, and only the sum (a number, a
vector of W weights or a W × W matrix) ever reaches the caller. This module
is that map and sum and nothing of the network: :class:`RowBlocks` holds
arrays cut into the same blocks of rows (persisted once on the workers, or
read again from their source when they do not fit), and
:meth:`RowBlocks.map_sum` sends a function and its shared arguments (once
per call, as a task of their own, not embedded in every task) to every
block and adds the results on the workers, in a fixed tree, so that the same
data give the same bits however the tasks were scheduled.

Dask is optional: this module imports it only when it is given a Dask
collection, and nothing else in the package imports Dask at all. With a
``dask.distributed`` client (``Client(...)``, current when created), the
work runs on its cluster; without one, on Dask's local scheduler in this
process.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from twolayer.errors import DataError, NonFiniteInput, format_bytes
from twolayer.resources import available_memory

__all__ = [
    "FAN_IN",
    "RowBlocks",
    "as_row_blocks",
    "current_client",
    "describe",
    "first_bad_row",
    "frame_to_array",
    "is_dask",
    "persist_if_fits",
]

#: Partial sums added per task of the reduction tree: a W × W partial costs its size once per
#: level, and log_8 of a thousand blocks is four levels.
FAN_IN = 8

#: The share of the memory there is (the workers' limits, or this machine's) that persisted
#: blocks may take; beyond it they are read from their source again at every pass.
PERSIST_SHARE = 0.5


def is_dask(x: Any) -> bool:
    """Whether ``x`` is a Dask collection (array, dataframe or series), without importing Dask."""
    return hasattr(type(x), "__dask_graph__") and type(x).__module__.split(".")[0] in {"dask", "dask_expr"}


def current_client() -> Any | None:
    """The current ``dask.distributed`` client, or None (then Dask's local scheduler runs the work).

    None too where Dask's configuration names another scheduler, as
    ``dask.config.set(scheduler="sync")`` does for everything Dask computes.
    """
    if "distributed" not in sys.modules:  # no client can exist without the module imported
        return None
    import dask
    from distributed import default_client

    scheduler = dask.config.get("scheduler", None)
    if scheduler is not None and scheduler not in ("dask.distributed", "distributed"):
        return None  # a local scheduler chosen on purpose (dask.config.set(scheduler="threads"), say)

    try:
        return default_client()
    except ValueError:
        return None


def _add(a: Any, b: Any) -> Any:
    """``a + b`` for numbers, arrays and tuples of them (element by element)."""
    if isinstance(a, tuple):
        return type(a)(*(_add(x, y) for x, y in zip(a, b))) if hasattr(a, "_fields") else tuple(map(_add, a, b))
    return a + b


def _sum(*parts: Any) -> Any:
    """The parts added left to right: the order, and so the rounding, is fixed by the tree."""
    total = parts[0]
    for part in parts[1:]:
        total = _add(total, part)
    return total


def first_bad_row(X: np.ndarray) -> tuple[int, int, bool] | None:
    """``(row, column, is_nan)`` of the first non-finite entry of a block, or None when all are finite."""
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.sum(X)):
            return None
    bad = ~np.isfinite(X)
    if bad.ndim == 1:
        bad = bad[:, None]
        X = X[:, None]
    rows = np.flatnonzero(bad.any(axis=1))
    if rows.size == 0:  # the sum overflowed; every entry is finite
        return None
    row = int(rows[0])
    column = int(np.flatnonzero(bad[row])[0])
    return row, column, bool(np.isnan(X[row, column]))


@dataclass
class RowBlocks:
    """Arrays of the same rows, cut into the same blocks, each block kept on the cluster.

    Attributes
    ----------
    blocks : list of tuples
        Per block, one reference per array: a ``distributed`` future or a Dask
        delayed object (persisted), or a delayed computation from the source.
    lengths : tuple of int
        The rows of each block.
    shapes : tuple of tuples
        The shape of each whole array.
    dtypes : tuple of numpy dtypes
    persisted : bool
        Whether the blocks are held in memory (on the workers, or here
        without a client), or computed from their source at every pass.
    client : distributed.Client or None
    """

    blocks: list[tuple[Any, ...]]
    lengths: tuple[int, ...]
    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[np.dtype[Any], ...]
    persisted: bool
    client: Any

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of the first array (the patterns ``X``)."""
        return self.shapes[0]

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.dtypes[0]

    @property
    def n_blocks(self) -> int:
        return len(self.blocks)

    @property
    def offsets(self) -> np.ndarray:
        """The first row of each block in the whole, and the number of rows at the end."""
        return np.concatenate([[0], np.cumsum(self.lengths)]).astype(np.int64)

    def share(self, value: Any) -> Any:
        """``value`` sent once to every worker (or wrapped once for the local scheduler), for :meth:`map_sum`."""
        box = _Box(value)  # one object: a scattered tuple would become a tuple of futures
        if self.client is not None:
            # A task of its own rather than a scatter: the scheduler sends it to the workers that need it and,
            # when a worker holding it is lost, computes it again (scattered data would be gone with it, and a
            # broadcast to a worker that has just died can wait on its connection indefinitely).
            return self.client.submit(_identity, box, pure=False)
        import dask

        return dask.delayed(box, pure=False)

    def map_sum(self, fn: Callable[..., Any], *shared: Any, blocks: Sequence[int] | None = None) -> Any:
        """:math:`\\sum_b` ``fn(*arrays of block b, *shared)``, computed on the cluster.

        ``shared`` values are sent once (see :meth:`share`; a value that is
        already shared is passed on). ``fn`` must return a number, an array
        or a tuple of them, the same shapes for every block; the partial
        results are added on the workers in a tree of :data:`FAN_IN` and only
        the total comes back.
        """
        import dask

        refs = [s if _is_shared(s) else self.share(s) for s in shared]
        task = dask.delayed(_apply, pure=False)
        chosen = range(self.n_blocks) if blocks is None else blocks
        level = [task(fn, *self.blocks[b], *refs) for b in chosen]
        add = dask.delayed(_sum, pure=False)
        while len(level) > 1:
            level = [add(*level[i : i + FAN_IN]) for i in range(0, len(level), FAN_IN)]
        if not level:
            raise ValueError("there are no blocks to sum over")
        if self.client is not None:
            return self.client.compute(level[0]).result()
        return dask.compute(level[0])[0]

    def map_each(self, fn: Callable[..., Any], *shared: Any) -> list[Any]:
        """``[fn(*arrays of block b, *shared) for b]``: small per-block results (counts, checks) brought back."""
        import dask

        refs = [s if _is_shared(s) else self.share(s) for s in shared]
        task = dask.delayed(_apply, pure=False)
        level = [task(fn, *block, *refs) for block in self.blocks]
        if self.client is not None:
            return list(self.client.gather(self.client.compute(level)))
        return list(dask.compute(*level))

    def fetch(self, b: int) -> tuple[np.ndarray, ...]:
        """The arrays of block ``b``, brought here."""
        import dask

        if self.client is not None:
            return tuple(self.client.gather(self.client.compute(list(self.blocks[b]))))
        return tuple(dask.compute(*self.blocks[b]))

    def iter_blocks(self, order: Sequence[int] | np.ndarray) -> Iterator[tuple[int, tuple[np.ndarray, ...]]]:
        """The blocks in ``order``, each brought here while the one before it is in use (two at a time)."""
        if self.client is None:
            for b in order:
                yield int(b), self.fetch(int(b))
            return
        pending = None
        for position, b in enumerate(order):
            current = pending if pending is not None else self.client.compute(list(self.blocks[int(b)]))
            pending = (
                self.client.compute(list(self.blocks[int(order[position + 1])])) if position + 1 < len(order) else None
            )
            yield int(b), tuple(self.client.gather(current))

    def check_finite(self, which: int = 0, name: str = "X") -> None:
        """Raise :class:`NonFiniteInput` naming the block, the row (in the block and in the whole) and the column.

        One pass over the blocks, on the workers; the first bad block in row order is named.
        """
        found = self.map_each(_first_bad_in, which)
        offsets = self.offsets
        for b, bad in enumerate(found):
            if bad is not None:
                row, column, is_nan = bad
                kind = "NaN" if is_nan else "infinity"
                raise NonFiniteInput(
                    f"Input {name} contains {kind} in block {b} at its row {row} (row {int(offsets[b]) + row} "
                    f"of the whole), column {column}: every feature must be finite"
                )


class _Box:
    """A value sent whole: Dask looks into tuples and lists, not into this."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _identity(value: Any) -> Any:
    return value


def _apply(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn`` of a block's arrays and the shared values, unboxed."""
    return fn(*(a.value if isinstance(a, _Box) else a for a in args))


def _first_bad_in(*arrays_and_which: Any) -> tuple[int, int, bool] | None:
    *arrays, which = arrays_and_which
    return first_bad_row(np.asarray(arrays[which]))


def _is_shared(value: Any) -> bool:
    """Whether ``value`` is already a reference :meth:`RowBlocks.share` made (a future or a delayed value)."""
    return type(value).__name__ in {"Future", "Delayed"} and type(value).__module__.split(".")[0] in {
        "distributed",
        "dask",
    }


def frame_to_array(x: Any) -> Any:
    """A Dask dataframe's or series's values as a Dask array with known blocks of rows (others as they are).

    The collection is optimised first: dask-expr counts the rows of the
    optimised expression, whose partitions may be fewer (a few small columns
    of Parquet files are read several files to a partition) than those of the
    one it converts, and ``to_dask_array(lengths=True)`` then refuses its own
    lengths ("3 != 8").
    """
    if not hasattr(x, "to_dask_array"):
        return x
    if hasattr(x, "optimize"):
        x = x.optimize()
    if getattr(x, "ndim", 2) == 1 and str(x.dtype) == "string":
        x = x.astype(object)  # labels as text: what Dask would convert them to, with a warning
    return x.to_dask_array(lengths=True)


def _as_array(x: Any, name: str) -> Any:
    """A Dask array of ``x``: arrays as they are, a dataframe or series with its partitions' lengths."""
    import dask.array as da

    if isinstance(x, da.Array):
        return x
    if hasattr(x, "to_dask_array"):
        return frame_to_array(x)
    raise TypeError(f"{name} must be a Dask array, dataframe or series, got {type(x).__name__}")


def as_row_blocks(
    *arrays: Any, names: Sequence[str] | None = None, persist: bool | None = None, client: Any = None
) -> RowBlocks:
    """Cut Dask arrays (or NumPy arrays beside them) into the row blocks of the first, one column block each.

    Parameters
    ----------
    *arrays : Dask arrays, dataframes or series, NumPy arrays or None
        Of the same number of rows. The others are rechunked to the first's
        blocks of rows (aligned, not refused); a NumPy array is cut to them.
        None stays None in every block.
    names : sequence of str, optional
        The arrays' names for messages; ``X``, ``y``, ... by default.
    persist : bool, optional
        Hold the blocks in memory (on the workers) from now on. By default,
        when they take at most half the memory there is (the workers'
        limits together, or this machine's available memory); otherwise every
        pass computes them from their source again (the data never need fit).
    client : distributed.Client, optional
        The cluster; by default the current client, or none (Dask's local scheduler).

    Returns
    -------
    RowBlocks

    Raises
    ------
    DataError
        When the arrays have different numbers of rows, or a block has no row.
    """
    import dask
    import dask.array as da

    labels = list(names) if names is not None else ["X", "y", *(f"array {i}" for i in range(2, len(arrays)))]
    if client is None:
        client = current_client()
    first = _as_array(arrays[0], labels[0])
    if any(math.isnan(c) for c in first.chunks[0]):
        first = first.compute_chunk_sizes()
    if first.ndim == 2:
        first = first.rechunk({1: -1})  # one block of columns: a block is whole patterns
    row_chunks = first.chunks[0]
    N = int(sum(row_chunks))
    if any(c == 0 for c in row_chunks):
        first = first.rechunk({0: tuple(c for c in row_chunks if c > 0)})
        row_chunks = first.chunks[0]
    aligned: list[Any] = [first]
    for x, name in zip(arrays[1:], labels[1:]):
        if x is None:
            aligned.append(None)
            continue
        if not is_dask(x):
            x = da.from_array(np.asarray(x), chunks=(row_chunks, *np.shape(x)[1:]))
        x = _as_array(x, name)
        if any(math.isnan(c) for c in x.chunks[0]):
            x = x.compute_chunk_sizes()
        if x.shape[0] != N:
            raise DataError(
                f"{labels[0]} has {N} rows but {name} has {x.shape[0]}: they must describe the same patterns"
            )
        aligned.append(x.rechunk((row_chunks, *((-1,) * (x.ndim - 1)))))
    present = [a for a in aligned if a is not None]
    nbytes = sum(float(a.nbytes) for a in present)
    if persist is None:
        persist = nbytes <= PERSIST_SHARE * _memory_there_is(client)
    if persist:
        if client is not None:
            present = list(client.persist(present))
        else:
            present = list(dask.persist(*present))
    iterator = iter(present)
    aligned = [None if a is None else next(iterator) for a in aligned]
    per_array: list[list[Any] | None] = [None if a is None else list(a.to_delayed().ravel()) for a in aligned]
    if client is not None and persist:
        # the persisted chunks as futures, so that a task names its block's key alone
        from distributed import futures_of

        for i, a in enumerate(aligned):
            chunks = per_array[i]
            if a is not None and chunks is not None:
                futures = {f.key: f for f in futures_of(a)}
                per_array[i] = [futures.get(d.key, d) for d in chunks]
    blocks = [tuple(None if p is None else p[b] for p in per_array) for b in range(len(row_chunks))]
    return RowBlocks(
        blocks=blocks,
        lengths=tuple(int(c) for c in row_chunks),
        shapes=tuple(() if a is None else tuple(int(s) for s in a.shape) for a in aligned),
        dtypes=tuple(np.dtype(np.float64) if a is None else np.dtype(a.dtype) for a in aligned),
        persisted=bool(persist),
        client=client,
    )


def persist_if_fits(*arrays: Any, client: Any = None) -> list[Any]:
    """Dask arrays held in memory (on the workers) when together they take at most half of it, else as they are.

    Arrays persisted once here make every later :func:`as_row_blocks` of them
    cheap: their blocks are already where they will be used. None stays None.
    """
    import dask

    if client is None:
        client = current_client()
    present = [a for a in arrays if a is not None]
    if sum(float(a.nbytes) for a in present) > PERSIST_SHARE * _memory_there_is(client):
        return list(arrays)
    held = iter(client.persist(present) if client is not None else dask.persist(*present))
    return [None if a is None else next(held) for a in arrays]


def _memory_there_is(client: Any) -> float:
    """The memory persisted blocks may live in: the workers' limits together, or this machine's available memory."""
    if client is not None:
        limits = [w.get("memory_limit") or 0 for w in client.scheduler_info().get("workers", {}).values()]
        if limits and all(limits):
            return float(sum(limits))
    free = available_memory()
    return float(free) if free is not None else math.inf


def describe(blocks: RowBlocks) -> str:
    """One line on where the blocks are: their count, rows and bytes, persisted or read at every pass."""
    nbytes = sum(int(np.prod(s)) * d.itemsize for s, d in zip(blocks.shapes, blocks.dtypes) if s)
    where = "held on the cluster" if blocks.persisted else "read from their source at every pass"
    return f"{blocks.n_blocks} blocks of {blocks.shape[0]} rows in all ({format_bytes(nbytes)}), {where}"
