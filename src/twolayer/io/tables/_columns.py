"""Choosing the columns: which is the target, which the identifier, which the features.

The rules look at the column names only, never at the data, so they are the
same for every format and for a built-in dataset (:mod:`twolayer.io.datasets`
plans its columns with ``_plan_columns`` too). ``_Options`` holds
what the caller of :func:`~twolayer.io.tables.read_table` asked for, and
makes each reader's plan from it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass

from twolayer.errors import DataError
from twolayer.io.encoding import FeatureEncoding
from twolayer.io.tables._messages import _listed, _missing_columns_error, _suggest

#: The names a column gets chosen as the target by, in order of preference (any case).
TARGET_NAMES = ("target", "label", "class", "y")


@dataclass(frozen=True)
class _Plan:
    features: list[int]
    target: int | None
    target_choice: str | None
    id: int | None
    named: bool
    # Several target columns (multilabel: one 0/1 column per label); ``target`` is the first.
    targets: tuple[int, ...] = ()

    def role(self, j: int) -> str:
        if j == self.target or j in self.targets:
            return "target"
        if j == self.id:
            return "id"
        return "feature" if j in self.features else "unused"

    def feature_names(self, names: Sequence[str]) -> tuple[str, ...] | None:
        return tuple(names[j] for j in self.features) if self.named else None


def _column(source: str, names: Sequence[str], name: str) -> int:
    if name in names:
        return list(names).index(name)
    raise DataError(f"{source} has no column {name!r}{_suggest(name, names)}; its columns are {_listed(names)}")


def _matches(source: str, names: Sequence[str], pattern: str, what: str) -> list[int]:
    # A name is taken as written before it is taken as a glob: "x[0]" names the column x[0].
    if pattern in names:
        return [list(names).index(pattern)]
    found = [j for j, name in enumerate(names) if fnmatch.fnmatchcase(name, pattern)]
    if not found:
        raise DataError(
            f"{source}: no column is named or matches {pattern!r} ({what}){_suggest(pattern, names)}; "
            f"its columns are {_listed(names)}"
        )
    return found


def _default_target(names: Sequence[str], exclude: int | None) -> int | None:
    lowered = [name.lower() for name in names]
    for wanted in TARGET_NAMES:
        for j, name in enumerate(lowered):
            if name == wanted and j != exclude:
                return j
    return None


def _target_columns(source: str, names: Sequence[str], targets: Sequence[str], id_index: int | None) -> list[int]:
    """The indices of several target columns, each named once and none the identifier."""
    indices = []
    for name in targets:
        j = _column(source, names, name)
        if j in indices:
            raise DataError(f"{source}: column {name!r} is named twice among the targets (--target)")
        if j == id_index:
            raise DataError(f"{source}: column {name!r} cannot be both a target and the identifier")
        indices.append(j)
    return indices


def _plan_columns(
    source: str,
    names: Sequence[str],
    *,
    named: bool = True,
    target_in_columns: bool = True,
    target: str | None = None,
    features: Sequence[str] | None = None,
    drop: Sequence[str] | None = None,
    id_column: str | None = None,
    model_features: Sequence[str] | int | None = None,
    require_target: bool = True,
    default_target: str | None = None,
    targets: Sequence[str] | None = None,
) -> _Plan:
    """Decide which column is the target, which the identifier, which the features (see :func:`read_table`).

    ``target_in_columns=False`` is for sources whose labels are not among
    ``names`` (a ``.npz``'s ``y``, a built-in's target). ``targets`` names
    several target columns (multilabel), in place of ``target``.
    """
    id_index = _column(source, names, id_column) if id_column is not None else None

    if model_features is not None:
        return _plan_for_model(
            source,
            names,
            named=named,
            target_in_columns=target_in_columns,
            target=target,
            id_index=id_index,
            model_features=model_features,
            require_target=require_target,
            default_target=default_target,
            targets=targets,
        )

    target_index: int | None = None
    choice: str | None = None
    several: list[int] = []
    if target_in_columns:
        if targets is not None:
            several = _target_columns(source, names, targets, id_index)
            target_index, choice = several[0], "given"
        elif target is not None:
            target_index, choice = _column(source, names, target), "given"
        else:
            target_index = _default_target(names, id_index) if named else None
            choice = "named"
            if target_index is None:
                others = [j for j in range(len(names)) if j != id_index]
                target_index, choice = (others[-1], "last") if others else (None, None)
        if target_index is not None and target_index == id_index:
            raise DataError(f"{source}: column {names[target_index]!r} cannot be both the target and the identifier")
    if target_index is None and target_in_columns and require_target:
        raise DataError(f"{source}: no target column; name it with --target")

    reserved = {target_index, id_index, *several}
    if features is None:
        chosen = [j for j in range(len(names)) if j not in reserved]
    else:
        chosen = []
        for pattern in features:
            found = _matches(source, names, pattern, "features")
            if len(found) == 1 and names[found[0]] == pattern and found[0] in reserved:
                role = "target" if found[0] != id_index else "identifier"
                raise DataError(f"{source}: column {pattern!r} is the {role}; it cannot also be a feature")
            chosen += [j for j in found if j not in reserved and j not in chosen]
    if drop is not None:
        dropped: set[int] = set()
        for pattern in drop:
            dropped.update(_matches(source, names, pattern, "to drop"))
        chosen = [j for j in chosen if j not in dropped]
    if not chosen:
        raise DataError(f"{source}: no feature columns are left; its columns are {_listed(names)}")
    return _Plan(chosen, target_index, choice, id_index, named, tuple(several))


def _plan_for_model(
    source: str,
    names: Sequence[str],
    *,
    named: bool,
    target_in_columns: bool,
    target: str | None,
    id_index: int | None,
    model_features: Sequence[str] | int,
    require_target: bool,
    default_target: str | None,
    targets: Sequence[str] | None = None,
) -> _Plan:
    by_name = not isinstance(model_features, int) and named
    model_reads = tuple(model_features) if by_name and not isinstance(model_features, int) else ()
    expected = model_features if isinstance(model_features, int) else len(model_features)
    if id_index is not None and names[id_index] in model_reads:
        raise DataError(f"{source}: column {names[id_index]!r} is a feature of the model, not an identifier")
    others = [j for j in range(len(names)) if j != id_index]

    target_index: int | None = None
    choice: str | None = None
    several: list[int] = []
    if target_in_columns:
        if targets is not None:
            several = _target_columns(source, names, targets, id_index)
            target_index, choice = several[0], "given"
            clash = next((names[j] for j in several if names[j] in model_reads), None)
            if clash is not None:
                raise DataError(f"{source}: column {clash!r} is a feature of the model, not a target")
        elif target is not None:
            target_index, choice = _column(source, names, target), "given"
        elif default_target is not None and default_target in names and default_target not in model_reads:
            target_index, choice = list(names).index(default_target), "model"
            if target_index == id_index:
                target_index, choice = None, None
        elif not by_name:
            # Matched by position: one column more than the model needs is the target, the last one.
            if len(others) not in (expected, expected + 1):
                raise DataError(
                    f"{source} has {len(others)} columns; the model expects {expected} features "
                    "(and, optionally, the target last)"
                )
            if len(others) == expected + 1:
                target_index, choice = others[-1], "last"
        elif others and names[others[-1]] not in model_reads:
            target_index, choice = others[-1], "last"
    if target_index is not None and target_index == id_index:
        raise DataError(f"{source}: column {names[target_index]!r} cannot be both the target and the identifier")
    if target_index is not None and names[target_index] in model_reads:
        raise DataError(f"{source}: column {names[target_index]!r} is a feature of the model, not a target")
    if target_index is None and target_in_columns and require_target:
        raise DataError(f"{source}: no target column; name it with --target")

    if by_name:
        index = {name: j for j, name in enumerate(names)}
        missing = [f for f in model_reads if f not in index]
        if missing:
            raise _missing_columns_error(source, missing, names)
        return _Plan([index[f] for f in model_reads], target_index, choice, id_index, named, tuple(several))
    # Unnamed on one side: match by position, and the count must agree.
    columns = [j for j in others if j != target_index and j not in several]
    if len(columns) != expected:
        raise DataError(f"{source}: the model expects {expected} features, got {len(columns)}")
    return _Plan(columns, target_index, choice, id_index, named, tuple(several))


@dataclass(frozen=True)
class _Options:
    target: str | None
    features: Sequence[str] | None
    drop: Sequence[str] | None
    id_column: str | None
    require_target: bool
    model_features: Sequence[str] | int | None
    default_target: str | None
    missing: str
    encoding: FeatureEncoding | None
    keep_raw: bool
    targets: tuple[str, ...] | None = None

    def plan(self, source: str, names: Sequence[str], *, named: bool = True, target_in_columns: bool = True) -> _Plan:
        return _plan_columns(
            source,
            names,
            named=named,
            target_in_columns=target_in_columns,
            target=self.target,
            features=self.features,
            drop=self.drop,
            id_column=self.id_column,
            model_features=self.model_features,
            require_target=self.require_target,
            default_target=self.default_target,
            targets=self.targets,
        )
