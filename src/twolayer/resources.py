"""How much memory is available, and the check of an estimate against it before a large allocation.

An operation that can grow without bound with a hyperparameter (the hidden
units, the batch, the Monte Carlo samples, a matrix of every pair of weights)
estimates what it will allocate and calls :func:`check_memory` first. Past
what is available it raises :class:`~twolayer.errors.InsufficientMemory` at
once, instead of a ``MemoryError`` traceback from deep inside NumPy, or
minutes of swapping; past half of it, a
:class:`~twolayer.errors.HighMemoryWarning` says what is coming.

"Available" is what the operating system can hand out without swapping:
``MemAvailable`` of ``/proc/meminfo`` on Linux, lowered to the room left
under a control group's limit (a container's, a job scheduler's), else the
free physical pages that ``os.sysconf`` reports. Where none of these can be
read, nothing is checked.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from twolayer.errors import HighMemoryWarning, InsufficientMemory, MemoryEstimate

__all__ = ["available_memory", "check_memory", "covered"]

_MEMINFO = Path("/proc/meminfo")
# cgroup v2 (the unified hierarchy), then v1's memory controller: (limit, usage, statistics, the
# statistic of the page cache the kernel reclaims first, which usage counts but a new allocation can take).
_CGROUP_FILES = (
    (
        Path("/sys/fs/cgroup/memory.max"),
        Path("/sys/fs/cgroup/memory.current"),
        Path("/sys/fs/cgroup/memory.stat"),
        "inactive_file",
    ),
    (
        Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
        Path("/sys/fs/cgroup/memory/memory.usage_in_bytes"),
        Path("/sys/fs/cgroup/memory/memory.stat"),
        "total_inactive_file",
    ),
)
# Inside covered(): a caller has checked an estimate that includes what the inner checks would.
_COVERED: ContextVar[bool] = ContextVar("twolayer_memory_covered", default=False)
# A v1 "no limit" is the largest page-aligned int64; anything this large is no limit.
_NO_LIMIT = 1 << 60


def _meminfo_available() -> int | None:
    """``MemAvailable`` of ``/proc/meminfo`` in bytes (Linux 3.14 and later), or None."""
    try:
        text = _MEMINFO.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        return None
    for line in text.splitlines():
        if line.startswith("MemAvailable:"):
            fields = line.split()
            try:
                return int(fields[1]) * (1024 if fields[2:3] == ["kB"] else 1)
            except (IndexError, ValueError):
                return None
    return None


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None  # "max" (v2's no limit) is None too


def _statistic(path: Path, name: str) -> int:
    """One ``name value`` line of a cgroup's ``memory.stat``; 0 when it cannot be read."""
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        return 0
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == name and value.strip().isdigit():
            return int(value)
    return 0


def _cgroup_available() -> int | None:
    """The room left under this process's control group's memory limit, or None when there is no limit.

    The limit less the usage, where the usage leaves out the inactive page
    cache (what container runtimes count as the working set): the kernel
    reclaims that before it refuses an allocation.
    """
    for limit_path, usage_path, stat_path, cache in _CGROUP_FILES:
        limit = _read_int(limit_path)
        if limit is None or limit >= _NO_LIMIT:
            continue
        usage = _read_int(usage_path) or 0
        usage = max(0, usage - _statistic(stat_path, cache))
        return max(0, limit - usage)
    return None


def _sysconf_available() -> int | None:
    """Free physical memory from ``os.sysconf``, where the system reports it, or None."""
    try:
        pages, size = os.sysconf("SC_AVPHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    return pages * size if pages > 0 and size > 0 else None


def available_memory() -> int | None:
    """The bytes this process can allocate without swapping, as well as the system can tell.

    Returns
    -------
    int or None
        On Linux ``MemAvailable`` (free memory plus the caches the kernel can
        drop), or the room under the control group's ``memory.max`` when that
        is less; elsewhere the free physical pages of ``os.sysconf``; None
        when none of these is known.
    """
    found = [n for n in (_meminfo_available(), _cgroup_available()) if n is not None]
    if found:
        return min(found)
    return _sysconf_available()


def check_memory(
    nbytes: float,
    what: str,
    parameter: str | Sequence[str],
    *,
    parts: str = "",
    switch: Mapping[str, str] | None = None,
    stacklevel: int = 3,
    available: int | None = None,
) -> None:
    """Refuse an operation that would need more memory than is available; warn past half of it.

    Parameters
    ----------
    nbytes : float
        The estimate of what the operation allocates at its peak.
    what : str
        What the memory is for ("training").
    parameter : str or sequence of str
        The parameters whose smaller values need less ("n_hidden").
    parts : str, default ""
        What the estimate is made of ("weights, Adam state, ...").
    switch : mapping of str to str, optional
        Parameters with a value that needs less, e.g. ``{"structure": "diagonal"}``.
    stacklevel : int, default 3
        Passed to :func:`warnings.warn` for the warning.
    available : int, optional
        The bytes free where the allocation will live (a GPU's free memory,
        say); by default :func:`available_memory`, this machine's.

    Nothing is checked inside :func:`covered`, nor where the available
    memory is unknown.

    Raises
    ------
    InsufficientMemory
        When ``nbytes`` exceeds :func:`available_memory`, with a sentence
        giving both and the parameters to change.

    Warns
    -----
    HighMemoryWarning
        When ``nbytes`` exceeds half of it.
    """
    if _COVERED.get():
        return
    if available is None:
        available = available_memory()
    if available is None or nbytes <= available / 2:
        return
    lower = (parameter,) if isinstance(parameter, str) else tuple(parameter)
    estimate = MemoryEstimate(int(nbytes), int(available), what, parts, lower, tuple((switch or {}).items()))
    if nbytes > available:
        raise InsufficientMemory(estimate)
    warnings.warn(HighMemoryWarning(estimate), stacklevel=stacklevel)


@contextmanager
def covered() -> Iterator[None]:
    """Skip :func:`check_memory` inside: the caller has checked an estimate that includes it.

    An estimator checks the whole of a fit once, with its own parameters'
    names, and then calls functions that would check their parts again (and
    warn twice).
    """
    token = _COVERED.set(True)
    try:
        yield
    finally:
        _COVERED.reset(token)
