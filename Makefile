# Two commands do everything (README, "Quick start"):
#   make book       build the HTML book from the outputs stored in the notebooks (seconds)
#   make test       the whole test suite: unit/property tests, sync checks, nbval, book build
#   make quick      unit and property tests only (no notebooks, no full tiny world): a few minutes
#   make test-X     one folder of tests/ (methods, experiments, worlds, plumbing, package, checks,
#                   grading, book, real); M="not slow" leaves out its slow tests
#   make notebooks  re-execute chapters and solutions in the `tiny` profile (about 25 minutes
#                   from an empty cache on 2 cores) into _build/executed; tracked files are
#                   rewritten only with UPDATE=1 (make notebooks UPDATE=1)
PYTHON ?= python
export BIGRAMLAB_PROFILE ?= tiny

.PHONY: install book notebooks exercises test quick bench clean

install:
	@$(PYTHON) -c "import torch" 2>/dev/null || $(PYTHON) -m pip install torch==2.13.0
	$(PYTHON) -m pip install -q -r requirements.txt

notebooks: install
ifeq ($(UPDATE),1)
	$(PYTHON) tools/run_notebooks.py chapters solutions
else
	$(PYTHON) tools/run_notebooks.py --out _build/executed chapters solutions
endif

exercises: install
	$(PYTHON) tools/make_exercises.py

book: install
	$(PYTHON) tools/make_exercises.py --check
	jupyter-book build . -W --keep-going

# Two pytest-xdist workers (one thread each, conftest.py), a notebook's cells on one worker
# (--dist loadfile), masks shared through the file-locked cache.
XDIST ?= -n 2 --dist loadfile

test: install
	TQDM_DISABLE=1 $(PYTHON) -m pytest $(XDIST)

quick: install
	TQDM_DISABLE=1 $(PYTHON) -m pytest $(XDIST) tests -m "not slow and not notebooks"

# One group: make test-methods, make test-book M="not slow", ... (tests/<group>/)
test-%: install
	@test -d tests/$* || { echo "no folder tests/$*; the groups:" $$(ls tests | grep -v -e '\.' -e helpers -e __); exit 2; }
	TQDM_DISABLE=1 $(PYTHON) -m pytest $(XDIST) tests/$* $(if $(M),-m "$(M)")

bench: install
	$(PYTHON) benchmarks/bench_bigrams.py
	$(PYTHON) benchmarks/bench_sparsify.py
	$(PYTHON) benchmarks/bench_overlap.py
	$(PYTHON) benchmarks/bench_geometry.py
	$(PYTHON) benchmarks/bench_precision.py

clean:
	rm -rf _build
