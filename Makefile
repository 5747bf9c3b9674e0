# The two commands of the README, and the benchmarks.
PYTHON ?= python3

.PHONY: setup demo test bench

setup:
	./scripts/setup.sh

# The main job on its embedded default.
demo: setup
	$(PYTHON) -m kcp demo

# Every test: the Swift engine's, then the Python package's and the notebooks'.
test: setup
	swift test
	$(PYTHON) -m pytest -q

bench: setup
	$(PYTHON) benchmarks/layer_masks.py
	$(PYTHON) benchmarks/inference.py
	$(PYTHON) benchmarks/training.py
	$(PYTHON) benchmarks/compensation.py
	$(PYTHON) benchmarks/recipes.py
