"""Turn the code's citations of the notes (````docs/derivation.md````) into links in the book.

Docstrings cite the notes by their path in the repository, which is what a reader of the source
needs. In the book those notes are pages, so a literal naming one becomes a link to its page.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx

NOTE = re.compile(r"^docs/([\w-]+)\.md$")


def link_notes(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    srcdir = Path(app.srcdir)
    for literal in list(doctree.findall(nodes.literal)):
        match = NOTE.match(literal.astext())
        if match is None or not (srcdir / f"{match.group(1)}.md").is_file():
            continue
        if isinstance(literal.parent, nodes.reference):
            continue
        uri = app.builder.get_relative_uri(docname, match.group(1))
        reference = nodes.reference("", "", internal=True, refuri=uri)
        literal.replace_self(reference)
        reference += literal


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("doctree-resolved", link_notes)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
