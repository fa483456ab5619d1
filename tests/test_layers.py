"""The house's rules that the import contract cannot state, checked on the source text.

``make lint`` runs import-linter on the layer contract in ``pyproject.toml``.
These tests add two rules it does not check: every module of the package sits in
one of the contract's layers (so a new module cannot slip past it), and no module
uses the private names (``_name``) of another top-level module or sub-package, by
import or by attribute.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli", reason="reading pyproject.toml on Python 3.10 needs tomli")

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "twolayer"
SOURCES = sorted(PACKAGE.rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unit_of(module: str) -> str:
    """The unit whose private names a module may use: its top-level module or sub-package (``twolayer.io``)."""
    return ".".join(module.split(".")[:2])


def is_module(dotted: str) -> bool:
    path = PACKAGE.parent.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def layers() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (contract,) = (c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers")
    return [name.strip() for layer in contract["layers"] for name in layer.replace(":", "|").split("|")]


def test_every_module_sits_in_a_layer_of_the_contract() -> None:
    in_layers = set(layers())
    outside = []
    for path in SOURCES:
        parts = module_name(path).split(".")
        if len(parts) > 1 and parts[1] not in in_layers and parts[1] not in {"__main__"}:
            outside.append(module_name(path))
    assert not outside, f"modules in no layer of pyproject.toml's import contract: {outside}"


def private_uses(path: Path) -> list[str]:
    """``_name``s the module at ``path`` takes from a twolayer module of another package."""
    return private_uses_in(path.read_text(encoding="utf-8"), unit_of(module_name(path)))


def private_uses_in(source: str, here: str) -> list[str]:
    """``_name``s that ``source``, a module of unit ``here``, takes from other twolayer units."""
    tree = ast.parse(source)
    found: list[str] = []
    modules: dict[str, str] = {}  # local alias -> twolayer module it names

    def foreign(module: str) -> bool:
        return module.startswith("twolayer") and not (module == here or module.startswith(here + "."))

    def private(name: str) -> bool:
        return name.startswith("_") and not name.startswith("__")

    def private_path(module: str) -> bool:
        return any(private(part) for part in module.split(".")[1:])

    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            found.append(f"line {node.lineno}: a relative import (the package imports by absolute names)")
        elif isinstance(node, ast.ImportFrom) and node.module and foreign(node.module) and private_path(node.module):
            found.append(f"line {node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                target = f"{node.module}.{alias.name}"
                if foreign(node.module) and private(alias.name):
                    found.append(f"line {node.lineno}: from {node.module} import {alias.name}")
                elif node.module.startswith("twolayer") and is_module(target):
                    modules[alias.asname or alias.name] = target
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if foreign(alias.name) and private_path(alias.name):
                    found.append(f"line {node.lineno}: import {alias.name}")
                elif alias.name.startswith("twolayer") and alias.asname:
                    modules[alias.asname] = alias.name
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
            and private(node.attr)
            and foreign(modules[node.value.id])
        ):
            found.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_uses_another_units_private_names(path: Path) -> None:
    assert not private_uses(path), f"{path.relative_to(ROOT)} uses private names: {private_uses(path)}"


def test_the_rule_catches_private_uses_across_packages_only() -> None:
    # The checker itself must be able to fail.
    source = "from twolayer.network import _working\nimport twolayer.network as nw\nnw._log_softmax\nnw.__name__\n"
    assert private_uses_in(source, "twolayer.report") == [
        "line 1: from twolayer.network import _working",
        "line 3: nw._log_softmax",
    ]
    inside = "from twolayer.training import _gather\nfrom twolayer.training._gather import gather\n"
    assert private_uses_in(inside, "twolayer.training") == []
    assert private_uses_in(inside, "twolayer.classifier") == [
        "line 1: from twolayer.training import _gather",
        "line 2: from twolayer.training._gather import ...",
    ]
    assert private_uses_in("import twolayer.training._gather\nfrom . import x\n", "twolayer.io") == [
        "line 1: import twolayer.training._gather",
        "line 2: a relative import (the package imports by absolute names)",
    ]
