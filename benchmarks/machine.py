"""What the numbers were measured on: CPU, cores, BLAS, versions, environment.

The BLAS report comes from threadpoolctl, read after NumPy (and PyTorch, where
installed) are imported so that their libraries are loaded. OpenBLAS picks its
kernel ("architecture", its core type) when it loads, from the processor unless
``OPENBLAS_CORETYPE`` names one; that is why both variables are recorded as they
were when this process started.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

ENV_VARS = (
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
)


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields in /proc/cpuinfo (empty where there is none)."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def cpu_model() -> str:
    """The processor's model name from /proc/cpuinfo (or platform's guess)."""
    return _cpuinfo().get("model name") or platform.processor() or "unknown"


def cpu_identity() -> str:
    """The model name with its family and model numbers: Intel's VMs name many generations alike."""
    fields = _cpuinfo()
    numbers = [f"{k} {fields[k]}" for k in ("cpu family", "model") if k in fields]
    return cpu_model() + (f" ({', '.join(numbers)})" if numbers else "")


def machine_key() -> str:
    """Which kind of machine a run was on, as BENCHMARKS.md tells its runs apart."""
    return f"{cpu_identity()}, {usable_cores()} cores"


def usable_cores() -> int:
    """The cores this process may run on (affinity), not the host's total."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: how busy the machine was."""
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def _package_of(filepath: str) -> str:
    """``numpy.libs``, ``torch/lib``...: the folder under site-packages a library came from."""
    parts = Path(filepath).parts
    if "site-packages" in parts:
        inside = parts[parts.index("site-packages") + 1 : -1]
        return "/".join(inside) or "site-packages"
    return str(Path(filepath).parent)


def blas_libraries() -> list[dict[str, Any]]:
    """threadpoolctl's view of every BLAS / OpenMP library loaded in this process."""
    from threadpoolctl import threadpool_info

    return [
        {
            "user_api": info.get("user_api"),
            "internal_api": info.get("internal_api"),
            "version": info.get("version"),
            "architecture": info.get("architecture", "-"),
            "threads": info.get("num_threads"),
            "threading_layer": info.get("threading_layer", "-"),
            "file": Path(info.get("filepath", "")).name,
            "package": _package_of(info.get("filepath", "")),
        }
        for info in threadpool_info()
    ]


def numpy_blas_kernel() -> str:
    """The kernel NumPy's BLAS runs, e.g. ``openblas 0.3.31, core type SkylakeX``."""
    blas = [lib for lib in blas_libraries() if lib["user_api"] == "blas"]
    # NumPy's wheel bundles its own OpenBLAS in numpy.libs (SciPy's is another copy).
    ours = [lib for lib in blas if lib["package"].startswith("numpy")] or blas
    if not ours:
        return "unknown"
    lib = ours[0]
    return f"{lib['internal_api']} {lib['version']}, core type {lib['architecture']}"


def _version(module: str) -> str:
    try:
        return str(importlib.import_module(module).__version__)
    except Exception:
        return "not installed"


def _git_commit(repo: Path) -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return head + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def torch_backend() -> str:
    """Which BLAS PyTorch's CPU matrix products use (not NumPy's OpenBLAS)."""
    try:
        import torch
    except ImportError:
        return "not installed"
    parts = []
    if torch.backends.mkl.is_available():
        parts.append("MKL")
    if torch.backends.mkldnn.is_available():
        parts.append("oneDNN")
    return (", ".join(parts) or "own kernels") + f"; {torch.get_num_threads()} threads"


def twolayer_fast_path() -> str:
    """Whether twolayer's trainer runs its compiled (numba) kernels or the NumPy code."""
    try:
        from twolayer.training import kernels as compiled
    except Exception as exc:
        return f"twolayer.training.kernels not importable ({type(exc).__name__})"
    kernels = getattr(compiled, "_kernels", None)
    if kernels is None:
        return "NumPy (this version has no compiled kernels)"
    try:
        active = kernels() is not None
    except Exception as exc:
        return f"NumPy (compiled kernels failed: {type(exc).__name__})"
    if active:
        return f"compiled kernels (numba {_version('numba')})"
    if not getattr(compiled, "FUSED", True):
        return "NumPy (kernels.FUSED is False)"
    return "NumPy (numba not installed)"


def describe(repo: Path, env_at_start: dict[str, str | None]) -> dict[str, Any]:
    """Everything the report's machine block says, as plain data."""
    import numpy as np  # noqa: F401  (loads NumPy's BLAS so threadpoolctl sees it)

    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    return {
        "date": _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "cpu": cpu_model(),
        "machine_key": machine_key(),
        "cores": usable_cores(),
        "host_cpus": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": _version("numpy"),
        "scipy": _version("scipy"),
        "scikit-learn": _version("sklearn"),
        "torch": _version("torch"),
        "torch_backend": torch_backend(),
        "jax": _version("jax"),
        "jaxlib": _version("jaxlib"),
        "optax": _version("optax"),
        "numba": _version("numba"),
        "twolayer_fast_path": twolayer_fast_path(),
        "twolayer_commit": _git_commit(repo),
        "blas": blas_libraries(),
        "numpy_blas_kernel": numpy_blas_kernel(),
        "env": {k: env_at_start.get(k) for k in ENV_VARS},
    }


def markdown(info: dict[str, Any]) -> str:
    """The machine block of a run in BENCHMARKS.md."""
    env = ", ".join(f"`{k}`={v!r}" if v is not None else f"`{k}` unset" for k, v in info["env"].items())
    lines = [
        f"- Date: {info['date']}; twolayer at {info['twolayer_commit']}",
        f"- CPU: {info['cpu']}; {info['cores']} usable cores (host reports {info['host_cpus']})",
        (
            f"- Python {info['python']}, NumPy {info['numpy']}, SciPy {info['scipy']}, "
            f"scikit-learn {info['scikit-learn']}, PyTorch {info['torch']} ({info['torch_backend']}), "
            f"JAX {info['jax']} (jaxlib {info['jaxlib']}, optax {info['optax']})"
        ),
        f"- twolayer's elementwise work between the products: **{info['twolayer_fast_path']}**",
        f"- Environment as the run started: {env}",
        f"- **NumPy's BLAS kernel: {info['numpy_blas_kernel']}**",
        (
            f"- Load average at start / end: {info.get('load_start', '?')} → {info.get('load_end', '?')} "
            "(a 2-core machine is busy with other work above about 0.5)"
        ),
        "",
        "| BLAS / OpenMP library (threadpoolctl) | loaded from | API | version | architecture (core type) | threads | threading |",
        "|---|---|---|---|---|---|---|",
    ]
    for lib in info["blas"]:
        lines.append(
            f"| {lib['file']} | {lib['package']} | {lib['internal_api']} | {lib['version']} | {lib['architecture']} "
            f"| {lib['threads']} | {lib['threading_layer']} |"
        )
    lines.append("")
    return "\n".join(lines)
