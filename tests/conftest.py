"""Shared test settings: the ``slow`` marker. The shared oracles live in ``oracles.py`` beside this file."""

from __future__ import annotations

import os

# scikit-learn's array API dispatch (tests/test_on_device.py, the estimator checks) needs SciPy's own
# array API support, which SciPy reads once, when first imported: before any test module imports it.
os.environ.setdefault("SCIPY_ARRAY_API", "1")
# `make test` runs two workers on two cores: one thread each. PyTorch's CPU device (the stand-in for a
# GPU) otherwise starts a thread per core in each worker, and its threads wait on one another's busy
# core, 10-20 times slower; OpenBLAS reads the same variable.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "slow: research-grade or process-level tests (large problems, subprocesses); "
        "`make test` runs them, `pytest -m 'not slow'` leaves them out while editing",
    )
