"""``train --device``: the network trained on a PyTorch device (a GPU), through scikit-learn's array API dispatch.

``--device cpu`` or ``cuda[:N]`` moves the training rows there as a PyTorch tensor and fits
:class:`twolayer.classifier.TwoLayerClassifier` (or, with ``--bayes``,
:class:`twolayer.bayes.BayesianTwoLayerClassifier`) under ``array_api_dispatch`` (see
:mod:`twolayer.classifier.on_device`); the fitted arrays come back to the host after the fit, so
that the held-out figures, the plot and the model file are those of any other run. The progress
line (the estimator's callback) brings the weights and the optimiser's state to the host once an
epoch (O(W) numbers), for its held-out accuracy and for ``--checkpoint``. ``--resume`` goes on from a
checkpoint on the device, whichever machine wrote it.

SciPy reads ``SCIPY_ARRAY_API`` once, when it is first imported, and scikit-learn's dispatch needs
it set: the command says so in one line when it is not (``SCIPY_ARRAY_API=1 twolayer train ...``).
PyTorch is imported only when ``--device`` is given.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from twolayer.errors import DataError

__all__ = ["refuse_device_options", "torch_device"]


def refuse_device_options(args: argparse.Namespace) -> None:
    """Refuse, in one line, what ``--device`` cannot do."""
    if getattr(args, "device", None) is None:
        return
    if args.dask is not None:
        raise DataError("--dask does not apply with --device (a cluster's workers compute on their own processors)")


def torch_device(text: str) -> Any:
    """The ``torch.device`` that ``--device text`` names, checked to exist; DataError otherwise."""
    if os.environ.get("SCIPY_ARRAY_API") != "1":
        raise DataError(
            "--device needs SCIPY_ARRAY_API=1 in the environment (SciPy reads it when first imported): "
            f"run SCIPY_ARRAY_API=1 twolayer train ... --device {text}"
        )
    try:
        import torch
    except ImportError:
        raise DataError(f"--device {text} trains with PyTorch, which is not installed (pip install torch)") from None
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise DataError(f"--device {text}: expected cpu or cuda[:N]") from None
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise DataError(f"--device {text}: expected cpu or cuda[:N] (other PyTorch devices are not supported yet)")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if (device.index or 0) >= count:
        have = f"{count} CUDA device{'s' if count != 1 else ''}" if count else "no CUDA device"
        raise DataError(f"--device {text}: no such device (this machine has {have})")
    return device
