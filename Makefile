# Two commands do everything (see README):
#   make book   execute the chapters in the offline `tiny` profile and build the HTML book
#   make test   the whole test suite: unit/property tests, sync checks, nbval, book build
#   make quick  unit and property tests only (no notebooks, no full tiny world): a few minutes
PYTHON ?= python
export BIGRAMLAB_PROFILE ?= tiny

.PHONY: install book notebooks exercises test quick bench clean

install:
	@$(PYTHON) -c "import torch" 2>/dev/null || $(PYTHON) -m pip install torch==2.13.0
	$(PYTHON) -m pip install -q -r requirements.txt

notebooks: install
	$(PYTHON) tools/run_notebooks.py chapters solutions

exercises: install
	$(PYTHON) tools/make_exercises.py

book: notebooks exercises
	jupyter-book build . -W --keep-going

test: install
	TQDM_DISABLE=1 $(PYTHON) -m pytest

quick: install
	TQDM_DISABLE=1 $(PYTHON) -m pytest tests -m "not slow and not notebooks"

bench: install
	$(PYTHON) benchmarks/bench_bigrams.py
	$(PYTHON) benchmarks/bench_sparsify.py
	$(PYTHON) benchmarks/bench_overlap.py
	$(PYTHON) benchmarks/bench_geometry.py

clean:
	rm -rf _build
