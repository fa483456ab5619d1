"""The Python examples of the book's guide and model-file pages run as written, so the pages stay true.

Every ```python block of ``docs/guide/*.md`` and ``docs/modelfiles.md`` is executed on its own, in a
fresh namespace, as a reader would paste it; each must print what it computes. (The code shown by
``literalinclude`` is the package's own source and is tested by the rest of the suite.)
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = [*sorted((DOCS / "guide").glob("*.md")), DOCS / "modelfiles.md"]
BLOCK = re.compile(r"^```python\n(.*?)^```", flags=re.S | re.M)
BLOCKS = [
    pytest.param(page, number, code, id=f"{page.relative_to(DOCS)}:{number}")
    for page in PAGES
    for number, code in enumerate(BLOCK.findall(page.read_text(encoding="utf-8")), start=1)
]


def test_every_page_is_there():
    assert len(PAGES) == 7 and all(page.is_file() for page in PAGES)


def test_the_pages_have_python_examples():
    assert len(BLOCKS) >= 15


@pytest.mark.parametrize(("page", "number", "code"), BLOCKS)
def test_book_example_runs(page, number, code, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # whatever an example writes stays out of the source tree
    exec(compile(code, f"{page.relative_to(DOCS)} python block {number}", "exec"), {"__name__": "__book__"})
    assert capsys.readouterr().out.strip()  # every example prints what it computed
