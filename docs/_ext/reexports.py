"""Resolve cross-references to twolayer's names wherever the code writes them.

The API pages document each object once, in the module that defines it
(``twolayer.classifier.classifier.TwoLayerClassifier``), while docstrings and the
guide cite it where users import it (``twolayer.classifier.TwoLayerClassifier``,
``twolayer.bayes.laplace``) or by its short name inside a module that imports
it. When Sphinx's Python domain finds no target, this handler imports the name
as written (relative to the current module, then absolute), asks the object
where it is defined, and retries there; a short name (``Table.ids``) that one
documented object's full name ends with is taken to be that object. References that still find nothing stay
warnings, which the build treats as errors (``nitpicky``).
"""

from __future__ import annotations

import importlib
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment


def _lookup(dotted: str) -> Any:
    """The object named by a dotted path, importing the longest module prefix."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def _defined_at(target: str, context: str | None, klass: str | None) -> str | None:
    candidates = [target]
    if context:
        if klass:
            candidates.insert(0, f"{context}.{klass}.{target}")
        candidates.insert(0, f"{context}.{target}")
    for name in candidates:
        if not name.startswith("twolayer"):
            continue
        head, _, tail = name.rpartition(".")
        owner = _lookup(head) if head else None
        obj = _lookup(name)
        if obj is None:
            continue
        module = getattr(obj, "__module__", None)
        qualname = getattr(obj, "__qualname__", None)
        if isinstance(obj, type(importlib)):  # a module: it is its own place
            return obj.__name__
        if module and qualname and module.startswith("twolayer"):
            return f"{module}.{qualname}"
        # data, or a method reached through a re-exported class: its owner's real place
        if owner is not None and tail:
            where = _defined_at(head, None, None) if head != name else None
            if where:
                return f"{where}.{tail}"
    return None


def _by_suffix(env: BuildEnvironment, target: str) -> str | None:
    """The one documented twolayer object whose full name ends with ``.target``, if exactly one does."""
    objects = env.get_domain("py").objects  # type: ignore[attr-defined]
    parts = target.split(".")
    for start in range(len(parts) - 1, -1, -1):  # the whole name first, then its last parts
        suffix = "." + ".".join(parts[start:]) if start else "." + target
        hits = [name for name in objects if name.startswith("twolayer") and name.endswith(suffix)]
        if len(hits) == 1:
            return hits[0]
        if hits:
            return None  # ambiguous: leave the warning
    return None


def resolve(app: Sphinx, env: BuildEnvironment, node: Any, contnode: nodes.Element) -> nodes.Element | None:
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].lstrip("~.")
    domain = env.get_domain("py")
    # where the object says it is defined; then, for data (which cannot say) and short names,
    # the one documented object whose name ends like the target
    for real in (_defined_at(target, node.get("py:module"), node.get("py:class")), _by_suffix(env, target)):
        if real is None or real == target:
            continue
        retry = node.deepcopy()
        retry["reftarget"] = real
        for role in (node["reftype"], "obj"):
            found = domain.resolve_xref(env, node["refdoc"], app.builder, role, real, retry, contnode)
            if found is not None:
                return found
    return None


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("missing-reference", resolve)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
