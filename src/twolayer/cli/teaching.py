"""``twolayer gradcheck`` and ``derive``: backpropagation checked numerically and symbolically."""

from __future__ import annotations

import argparse
import importlib.util

from twolayer.cli.common import (
    EXIT_CHECK_FAILED,
    EXIT_OK,
    Command,
    activations,
    at_least_two,
    busy,
    positive_float,
    positive_int,
    seed,
)
from twolayer.errors import DataError

__all__ = ["DERIVE", "GRADCHECK", "derive", "gradcheck"]


def _add_gradcheck_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--features", type=positive_int, default=4, metavar="D", help="input features (default: 4)")
    p.add_argument("--hidden", type=positive_int, default=5, metavar="M", help="hidden units (default: 5)")
    p.add_argument(
        "--classes",
        type=positive_int,
        default=3,
        metavar="K",
        help="classes, at least 2 (default: 3); with --multilabel, labels, at least 1",
    )
    p.add_argument("--samples", type=positive_int, default=10, metavar="N", help="patterns (default: 10)")
    p.add_argument("--seed", type=seed, default=0, help="seeds the random network and data (default: 0)")
    p.add_argument("--activation", choices=activations(), default="tanh", help="(default: tanh)")
    p.add_argument("--eps", type=positive_float, default=1e-6, help="central-difference step (default: 1e-6)")
    p.add_argument(
        "--rtol", type=positive_float, default=1e-7, help="largest relative error that passes (default: 1e-7)"
    )
    p.add_argument(
        "--multilabel",
        action="store_true",
        help="check K sigmoid outputs with the binary cross-entropy on random 0/1 label rows "
        "(the multilabel network) instead of the softmax",
    )
    p.add_argument(
        "--max-params",
        type=positive_int,
        metavar="P",
        help="check a random sample of P weights (at least 4) instead of all",
    )


def _add_derive_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--classes",
        type=at_least_two,
        nargs="+",
        default=[2, 3, 4],
        metavar="K",
        help="the numbers of classes for which each identity is proved (default: 2 3 4)",
    )
    p.add_argument("--seed", type=seed, default=0, help="seeds the counterexamples and spot checks (default: 0)")


def gradcheck(args: argparse.Namespace) -> int:
    from twolayer.teaching.gradcheck import check_random_network

    if args.classes < 2 and not args.multilabel:
        raise DataError(
            f"--classes {args.classes}: at least 2 (the output of a single softmax class is the constant 1, "
            "so its gradient is zero: nothing to check)"
        )
    if args.max_params is not None and args.max_params < 4:
        raise DataError(f"--max-params {args.max_params}: at least 4 (one weight of each block)")
    report = check_random_network(
        args.features,
        args.hidden,
        args.classes,
        args.samples,
        random_state=args.seed,
        activation=args.activation,
        eps=args.eps,
        rtol=args.rtol,
        max_params=args.max_params,
        output="sigmoid" if args.multilabel else "softmax",
    )
    print(report.table())
    return EXIT_OK if report.passed else EXIT_CHECK_FAILED


def derive(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("sympy") is None:
        raise DataError("twolayer derive needs SymPy: pip install 'twolayer[derive]'")
    from twolayer.teaching.derivation import verify_derivation

    with busy("checking the derivation with SymPy"):
        steps = verify_derivation(classes=tuple(args.classes), random_state=args.seed)
    print(
        f"The derivation of backpropagation (docs/derivation.md in the twolayer source tree), step by step, checked with SymPy "
        f"for K = {', '.join(map(str, args.classes))}:"
    )
    for number, step in enumerate(steps, start=1):
        if step.holds:
            verdict = "holds" if step.expected else "HOLDS, but should not"
        else:
            verdict = "fails, as it should (a known slip)" if not step.expected else "FAILS"
        mark = "ok  " if step.as_expected else "FAIL"
        print(f"{mark} {number:2d}. {step.name}: {verdict}")
        print(f"         claim: {step.claim}")
        print(f"         {step.detail}")
    wrong = [step for step in steps if not step.as_expected]
    if wrong:
        print(f"FAILED: {len(wrong)} of {len(steps)} steps did not get the expected verdict")
        return EXIT_CHECK_FAILED
    print(f"PASSED: all {len(steps)} steps got the expected verdict")
    return EXIT_OK


GRADCHECK = Command(
    "gradcheck",
    "compare backpropagation with central differences on a random network; exit 1 on failure",
    _add_gradcheck_arguments,
    gradcheck,
)
DERIVE = Command(
    "derive",
    "check each step of the backpropagation derivation symbolically; exit 1 on failure",
    _add_derive_arguments,
    derive,
)
