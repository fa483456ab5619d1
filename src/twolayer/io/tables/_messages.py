"""How a refusal is worded: cells and names shown on one line, a close match suggested, the
operating system's errors turned into one-line DataErrors.

Shared by the column rules, the opening of a source and every format's
reader, so it sits below all of them and imports none of them.
"""

from __future__ import annotations

import contextlib
import difflib
import shlex
from collections.abc import Iterator, Sequence

from twolayer.errors import DataError


def _suggest(name: str, choices: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or nothing."""
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _show(value: str, limit: int = 40) -> str:
    """A cell as a message shows it: quoted, on one line whatever it holds, cut at ``limit``."""
    return repr(value if len(value) <= limit else value[:limit] + "...")


def _listed(names: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(repr(name) for name in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _flag(name: str) -> str:
    """A column name as it would be typed after an option, on one line whatever it holds."""
    quoted = shlex.quote(name)
    return quoted if quoted.isprintable() else repr(name)


def _missing_columns_error(source: str, missing: Sequence[str], available: Sequence[str]) -> DataError:
    """The error for a model's columns that the data lack, naming (up to five of) them."""
    listed = ", ".join(repr(m) for m in missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    hint = _suggest(missing[0], available) if len(missing) == 1 else ""
    noun = "column" if len(missing) == 1 else "columns"
    return DataError(f"{source}: missing {noun} {listed}, which the model needs{hint}")


@contextlib.contextmanager
def _reading(source: str, what: str) -> Iterator[None]:
    """Turn the operating system's refusals to read ``source`` into one-line DataErrors."""
    try:
        yield
    except FileNotFoundError:
        raise DataError(f"no such file: {source}") from None
    except IsADirectoryError:
        raise DataError(f"{source} is a directory, not {what}") from None
    except OSError as exc:
        raise DataError(f"cannot read {source}: {exc.strerror or exc}") from None


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
