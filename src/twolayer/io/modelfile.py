"""Model files and checkpoints: safetensors and JSON, written atomically, read without trust.

The names of :mod:`twolayer.io.models` (model files: :func:`save`,
:func:`load`, :func:`read`, :func:`model_bytes`), :mod:`twolayer.io.checkpoints`
(:class:`Checkpoint`, :func:`save_checkpoint`, :func:`load_checkpoint`),
:mod:`twolayer.io.container` (the formats, their version and the limits of
what reading believes), :data:`~twolayer.io.bayesian.MAX_MC_SAMPLES` and
:mod:`twolayer.io.atomic` (atomic writes), in one place. The file formats are
described in :mod:`twolayer.io.models`, :mod:`twolayer.io.bayesian` and
:mod:`twolayer.io.checkpoints`; what reading trusts, in :mod:`twolayer.io.container`.
"""

from __future__ import annotations

from twolayer.errors import DataError  # what reading a file raises; importable from here as before
from twolayer.io.atomic import atomic_write, atomic_write_all
from twolayer.io.bayesian import MAX_MC_SAMPLES
from twolayer.io.checkpoints import Checkpoint, load_checkpoint, save_checkpoint
from twolayer.io.container import (
    CHECKPOINT_FORMAT,
    FORMAT_VERSION,
    MAX_FILE_BYTES,
    MAX_HEADER_BYTES,
    MAX_JSON_DEPTH,
    MODEL_FORMAT,
)
from twolayer.io.models import (
    ModelFile,
    is_bayesian,
    load,
    model_bytes,
    read,
    save,
    scaled_model,
    standard_scaler,
)

__all__ = [
    "CHECKPOINT_FORMAT",
    "FORMAT_VERSION",
    "MAX_FILE_BYTES",
    "MAX_HEADER_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_MC_SAMPLES",
    "MODEL_FORMAT",
    "Checkpoint",
    "DataError",
    "ModelFile",
    "atomic_write",
    "atomic_write_all",
    "is_bayesian",
    "load",
    "load_checkpoint",
    "model_bytes",
    "read",
    "save",
    "save_checkpoint",
    "scaled_model",
    "standard_scaler",
]
