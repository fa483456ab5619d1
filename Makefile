# The two commands of the README. Each builds its own virtual environment in
# the checkout (.venv) on first use, so a fresh clone needs nothing else.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# PyTorch is an optional test oracle (array-API and Hessian comparisons). Where the
# machine keeps a CPU wheel on disk we install it; elsewhere those tests skip, as
# a multi-gigabyte CUDA download is not worth an oracle.
TORCH_WHEEL := $(firstword $(wildcard /opt/wheels/torch-*+cpu-cp3*.whl))

.PHONY: demo test lint docs bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[plot,derive,fast,test,lint]"
	-$(if $(TORCH_WHEEL),$(BIN)/python -m pip install --quiet "$(TORCH_WHEEL)")
	touch $(STAMP)

demo: $(STAMP)
	mkdir -p demo-output
	$(BIN)/twolayer train digits --out demo-output/digits.safetensors --plot demo-output/digits.png

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q

# The project's checks: formatting, lint, types, and the import contract (the layers of
# pyproject.toml's [tool.importlinter]); tests/test_layers.py adds the private-name rule.
lint: $(STAMP)
	$(BIN)/ruff format --check src tests benchmarks docs
	$(BIN)/ruff check src tests benchmarks docs
	$(BIN)/mypy
	$(BIN)/lint-imports

# The book: Sphinx with warnings as errors. Its MathJax is served from the build (fetched once
# from the npm registry, pinned), so the site renders with no network when it is read.
DOCS_STAMP := $(VENV)/.docs-installed
MATHJAX_VERSION := 3.2.2
MATHJAX := docs/_static/mathjax/tex-chtml.js

$(DOCS_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	touch $(DOCS_STAMP)

$(MATHJAX):
	rm -rf build/mathjax && mkdir -p build/mathjax docs/_static/mathjax
	cd build/mathjax && npm pack --silent mathjax@$(MATHJAX_VERSION) >/dev/null && tar xzf mathjax-$(MATHJAX_VERSION).tgz
	cp -r build/mathjax/package/es5/. docs/_static/mathjax/

docs: $(DOCS_STAMP) $(MATHJAX)
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html
	@echo "the book is in docs/_build/html/index.html"

# The benchmarks need the peers in an environment of their own: scikit-learn always, PyTorch
# (the machine's CPU wheel where it keeps one; an unpinned torch would pull a CUDA build of
# several GB) and JAX (the bench extra); a peer that is missing is skipped with a note.
# The first run replaces this kind of machine's earlier runs in BENCHMARKS.md (other machines'
# runs stay); the second is appended to it.
bench:
	$(PYTHON) -m venv .venv-bench
	.venv-bench/bin/python -m pip install --quiet -e ".[bench]"
	-$(if $(TORCH_WHEEL),.venv-bench/bin/python -m pip install --quiet "$(TORCH_WHEEL)")
	.venv-bench/bin/python benchmarks/run.py --label "as the machine is set up"
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv-bench/bin/python benchmarks/run.py --append \
	    --label "OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset"

clean:
	rm -rf $(VENV) .venv-bench build dist docs/_build docs/_static/mathjax docs/auto_examples docs/generated docs/guide/_generated src/*.egg-info .pytest_cache .hypothesis demo-output .ruff_cache .mypy_cache .import_linter_cache
