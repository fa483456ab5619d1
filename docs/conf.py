"""Sphinx configuration of the twolayer book (``make docs``).

The site is built offline: MathJax is served from ``_static/mathjax`` (fetched by
``make docs`` from the npm registry, never from a CDN at reading time), the
gallery's scripts run at build time, and the derivation page is written from
:func:`twolayer.teaching.derivation.verify_derivation` by ``_ext/derivation_page.py``.
"""

from __future__ import annotations

import os
import sys
import types
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

# The gallery draws with matplotlib off screen, and a script must not wait for a window.
os.environ.setdefault("MPLBACKEND", "Agg")

# One BLAS thread for the whole build: the gallery's matrices are small, and on a shared two-core
# machine a second OpenBLAS thread made a 610 x 610 eigvalsh a hundred times slower.
from threadpoolctl import threadpool_limits  # noqa: E402

threadpool_limits(1, "blas")

import twolayer  # noqa: E402

# numpydoc reads the docstring of sympy.Expr (the type of the derivation's dataclass fields) and
# complains, as a Python warning, about a section SymPy names "Explanation": not ours to fix.
warnings.filterwarnings("ignore", message="Unknown section Explanation", category=UserWarning)

project = "twolayer"
author = "the twolayer developers"
copyright = "2026, the twolayer developers"
release = version = twolayer.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.intersphinx",
    "sphinx.ext.doctest",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
    "derivation_page",
    "reexports",
    "notes_links",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "examples/README.txt", "guide/_generated", "**.ipynb_checkpoints"]
templates_path = ["_templates"]

# MathJax 3 from the build itself (no network when the page is read).
mathjax_path = "mathjax/tex-chtml.js"
html_static_path = ["_static"]

myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
# Every cross-reference must resolve (a broken link fails the build); _ext/reexports.py finds
# twolayer's names where they are defined. The build has no network, so no intersphinx inventories:
# references to other projects' objects are left as plain text.
nitpicky = True
nitpick_ignore_regex = [
    ("py:.*", r"(numpy|np|scipy|sklearn|matplotlib|dask|pyarrow|torch|jax|safetensors|onnx|sympy)(\..*)?"),
    ("py:.*", r"(warnings|sys|os|pathlib|typing|collections|dataclasses|fnmatch|argparse|abc)\..*"),
    ("py:.*", r"csv|format|SimpleImputer|OneHotEncoder"),  # the standard library's and scikit-learn's
    ("py:class", r"twolayer\..*\._\w+"),  # a private base class, named in "Bases:" by show-inheritance
    ("py:class", r"(string|array-like|array|namespace|callable|optional|default|path-like|file-like).*"),
]

autosummary_generate = True
autodoc_typehints = "none"  # numpydoc's parameter sections already give the types
# Each name documented once, on the page of the module that defines it (packages re-export).
autodoc_default_options = {"members": True, "inherited-members": False, "ignore-module-all": True}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

intersphinx_mapping: dict[str, tuple[str, None]] = {}

sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "abort_on_example_error": True,
    "matplotlib_animations": False,
    "show_memory": False,
    "min_reported_time": 1e9,  # no timings on the pages: they differ from machine to machine
}

html_theme = "pydata_sphinx_theme"
html_title = "twolayer"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": [],
}
html_show_sourcelink = False


def _skip_member(app: object, what: str, name: str, obj: object, skip: bool, options: object) -> bool | None:
    """Leave out what is not ours to document: scikit-learn's generated ``set_*_request``
    methods (metadata routing) and module-level type aliases (``tuple[...]``)."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    if isinstance(obj, types.GenericAlias):
        return True
    return None


def setup(app: object) -> None:
    app.connect("autodoc-skip-member", _skip_member)  # type: ignore[attr-defined]
