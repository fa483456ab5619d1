"""``twolayer export``: a model file as an ONNX graph, to serve with onnxruntime or any ONNX runtime."""

from __future__ import annotations

import argparse
from typing import Any

from twolayer.cli.common import EXIT_OK, Command, note
from twolayer.errors import DataError

__all__ = ["EXPORT", "export"]


def _add_arguments(p: argparse.ArgumentParser) -> None:
    from twolayer.io.onnx import PREDICTIVES

    p.add_argument("model", metavar="MODEL", help="a model file written by 'twolayer train --out'")
    p.add_argument(
        "--onnx",
        metavar="OUT",
        required=True,
        help="write the ONNX graph here (conventionally .onnx): outputs 'label' and 'probabilities'; input 'X', "
        "or for a model trained from a table with text columns or missing cells one input per column",
    )
    p.add_argument(
        "--dtype",
        choices=("float32", "float64"),
        default="float32",
        help="the type the graph computes in, and of its float inputs and probabilities (default: float32)",
    )
    p.add_argument(
        "--predictive",
        choices=PREDICTIVES,
        default="map",
        help="for a Bayesian model (train --bayes): its MAP network's probabilities (map), or the probit "
        "approximation of its moderated predictive (probit); the Monte Carlo predictive does not export "
        "(default: map)",
    )
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")


def _describe(graph: Any) -> str:
    """The graph's inputs and outputs, as ``name (type, shape)``."""
    import onnx

    def one(value: Any) -> str:
        tensor = value.type.tensor_type
        kind = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type)
        name = "string" if kind.kind == "O" else kind.name
        dims = " x ".join(str(d.dim_value) if d.HasField("dim_value") else "N" for d in tensor.shape.dim)
        return f"{value.name} ({name}, {dims})"

    inputs = ", ".join(one(v) for v in graph.input)
    outputs = ", ".join(one(v) for v in graph.output)
    return f"input{'s' if len(graph.input) > 1 else ''} {inputs}; outputs {outputs}"


def export(args: argparse.Namespace) -> int:
    from twolayer.io.modelfile import atomic_write, read
    from twolayer.io.paths import check_outputs

    check_outputs({"MODEL": args.model}, {"--onnx": args.onnx})
    try:
        import onnx  # noqa: F401  (the graph is built with it)
    except ImportError:
        raise DataError("twolayer export needs the onnx package: pip install 'twolayer[onnx]'") from None
    from twolayer.io.onnx import to_onnx

    model_file = read(args.model)
    if args.predictive == "probit" and not model_file.bayesian:
        raise DataError(
            f"--predictive probit: {args.model} is not a Bayesian model (trained with --bayes); it exports "
            "with --predictive map"
        )
    try:
        graph = to_onnx(model_file, dtype=args.dtype, predictive=args.predictive)
    except ValueError as exc:
        raise DataError(f"{args.model}: cannot be exported to ONNX: {exc}") from None
    if model_file.bayesian:
        method = model_file.hyperparameters.get("method")
        if args.predictive == "map":
            note(
                f"note: {args.model} is a Bayesian network: the graph gives its MAP network's probabilities, not "
                "the moderated ones it predicts with (--predictive probit exports their probit approximation)",
                args.quiet,
            )
        elif method != "probit":
            note(
                f"note: {args.model} predicts with the Monte Carlo predictive (--predictive {method}); the graph "
                "computes the probit approximation, which differs from it a little",
                args.quiet,
            )
    atomic_write(args.onnx, graph.SerializeToString())
    print(f"wrote {args.onnx} (ONNX, {args.dtype}): {_describe(graph.graph)}")
    return EXIT_OK


EXPORT = Command(
    "export",
    "write a model file as an ONNX graph (label and probabilities) to serve with onnxruntime",
    _add_arguments,
    export,
)
