"""Write the derivation page's steps from SymPy's verdicts at build time.

:func:`twolayer.teaching.derivation.verify_derivation` decides every step of
backpropagation (a proof or an exact counterexample). This extension runs it
when the book is built and writes ``guide/_generated/derivation_steps.md``:
each step's claim, the verdict and how it was reached, and beside it the line of
:mod:`twolayer.network` (or :mod:`twolayer.activations`) that computes it. The
code lines are found in the source by their comments, so a page can never show
a line the code no longer has: a missing line fails the build.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError

# step name -> (module, a fragment of the one source line that computes it)
CODE_LINES: dict[str, tuple[str, str]] = {
    "output error": ("twolayer.network", "delta2 = xp.exp(log_y) - T"),
    "tanh derivative": ("twolayer.activations", "return 1 - z * z  # tanh' = 1 - tanh^2"),
    "second-layer derivative": ("twolayer.network", "grad_W2 = z.T @ delta2"),
    "hidden error": ("twolayer.network", "delta1 = _hidden_errors(xp, act, z, delta2 @ W2.T)"),
    "first-layer derivative": ("twolayer.network", "grad_W1 = X.T @ delta1"),
    "binary cross-entropy through the sigmoid": ("twolayer.network", "delta2 = xp.exp(log_y) - T"),
}


def _source_line(module_name: str, fragment: str) -> tuple[str, int, str]:
    module = __import__(module_name, fromlist=["_"])
    path = Path(inspect.getsourcefile(module) or "")
    lines = path.read_text(encoding="utf-8").splitlines()
    hits = [n for n, line in enumerate(lines, 1) if fragment in line]
    if len(hits) != 1:
        raise ExtensionError(f"derivation_page: {fragment!r} is on {len(hits)} lines of {path}, expected exactly 1")
    return module_name, hits[0], lines[hits[0] - 1].strip()


def write_steps(app: Sphinx) -> None:
    from twolayer.teaching.derivation import verify_derivation

    steps = verify_derivation()
    out = Path(app.srcdir) / "guide" / "_generated"
    out.mkdir(parents=True, exist_ok=True)
    text = [
        "<!-- written by docs/_ext/derivation_page.py at build time; do not edit -->",
        "",
    ]
    wrong = [s.name for s in steps if not s.as_expected]
    if wrong:
        raise ExtensionError(f"derivation_page: SymPy's verdict is not the expected one for {wrong}")
    for number, step in enumerate(steps, 1):
        if step.holds:
            verdict = "**proved**"
        else:
            verdict = "**refuted**, as it should be" if not step.expected else "**refuted**"
        text += [f"### {number}. {step.name}", "", "$$", step.latex, "$$", "", f"{verdict}: {step.detail}", ""]
        if step.name in CODE_LINES:
            module, lineno, line = _source_line(*CODE_LINES[step.name])
            text += [f"Computed by `{module}`, line {lineno}:", "", "```python", line, "```", ""]
    (out / "derivation_steps.md").write_text("\n".join(text), encoding="utf-8")


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("builder-inited", write_steps)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
