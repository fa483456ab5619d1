"""The compiled batch gather of the minibatch loop (needs numba: the ``fast`` extra).

A shuffled epoch copies each batch's rows of ``X`` into a reusable buffer
before its first product. ``X`` is usually far larger than the caches, so the
copy waits on memory, and the hardware prefetchers cannot guess the next row
of a random permutation. This loop asks for the rows a few places ahead
(``llvm.prefetch``, a hint that never faults) while it copies the current one,
and tests every copied value for finiteness on the way (the first epoch's
input check), which ``np.take`` would need a pass of its own for
(BENCHMARKS.md compares the two).

Imported by ``twolayer.training.kernels._compiled`` only, so that numba loads on the first
compiled call and not with the package.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

# Rows asked for ahead of the one being copied (see BENCHMARKS.md for the choice).
AHEAD = 4
LINE_BYTES = 64


@intrinsic
def _prefetch(typingctx: Any, row: Any, column: Any) -> Any:
    """Hint that the cache line holding ``row[column]`` will be read soon (``row`` 1-D)."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        array_type = signature.args[0]
        array = context.make_array(array_type)(context, builder, args[0])
        pointer = cgutils.get_item_pointer(context, builder, array_type, array, [args[1]])
        byte_pointer = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        hint = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32]), "llvm.prefetch.p0"
        )
        # read (0), keep in all levels (locality 3), data cache (1)
        builder.call(hint, [builder.bitcast(pointer, byte_pointer), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(row, column), codegen


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _ask_for_row(X: np.ndarray, row: int) -> None:
    source = X[row]
    for c in range(0, X.shape[1], LINE_BYTES // X.itemsize):
        _prefetch(source, c)  # type: ignore[call-arg]  # numba types the intrinsic; mypy sees its typer


@numba.njit(nogil=True, cache=True, error_model="numpy")
def gather(X: np.ndarray, idx: np.ndarray, out: np.ndarray) -> int:
    """``out[r] = X[idx[r]]`` (as ``np.take``); the first ``r`` whose row is not finite, or -1.

    ``x - x`` is 0 for a finite ``x`` and NaN otherwise; or-ing the booleans
    vectorises, where a floating-point sum would not (no reassociation).
    """
    B, D = out.shape
    for r in range(min(AHEAD, B)):
        _ask_for_row(X, idx[r])
    for r in range(B):
        if r + AHEAD < B:
            _ask_for_row(X, idx[r + AHEAD])
        source = X[idx[r]]
        target = out[r]
        bad = False
        for c in range(D):
            x = source[c]
            target[c] = x
            bad |= (x - x) != 0.0
        if bad:
            return r
    return -1
