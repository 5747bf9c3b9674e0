# The two commands of the README, the benchmarks, the wheel and the API reference.
PYTHON ?= python3
# The API reference as HTML in build/docs/, read afresh, every Sphinx warning an error.
DOCS = $(PYTHON) -m sphinx -E -W --keep-going -q -b html docs build/docs

.PHONY: setup demo test bench wheel docs

setup:
	./scripts/setup.sh

# The main job on its embedded default.
demo: setup
	$(PYTHON) -m kcp demo

# Every test: the Swift engine's, then the Python package's and the notebooks',
# then the API reference's build.
test: setup
	swift test
	$(PYTHON) -m pytest -q
	$(DOCS)

bench: setup
	$(PYTHON) benchmarks/layer_masks.py
	$(PYTHON) benchmarks/inference.py
	$(PYTHON) benchmarks/training.py
	$(PYTHON) benchmarks/compensation.py
	$(PYTHON) benchmarks/recipes.py

# A manylinux wheel, with OpenBLAS inside, into dist/.
wheel: setup
	PYTHON=$(PYTHON) ./scripts/wheel.sh dist

docs: setup
	$(DOCS)
