"""Test-wide settings: no progress bars (volatile stdout), the offline profile, and
nbval's number-aware comparison of stored outputs (``tools/nbval_numbers.py``).

The environment is set before any notebook kernel starts, so nbval's kernels inherit it.
"""

import os

os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("BIGRAMLAB_PROFILE", "tiny")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs two pytest-xdist workers on two cores: one thread each, for the
    # worker and the notebook kernels it starts (oversubscribed threads make tiny models
    # many times slower). The tiny world computes in float64, where the thread count
    # does not change a printed digit (README, "Reproducibility").
    os.environ.setdefault("OMP_NUM_THREADS", "1")

pytest_plugins = ["tools.nbval_numbers"]


def pytest_runtest_logreport(report):
    """With $BIGRAMLAB_TEST_TRACE set to a file, append one JSON line per test phase
    (worker, test, phase, start and stop in seconds since the epoch): where a CI run's
    time goes (the book's appendix, "Performance")."""
    path = os.environ.get("BIGRAMLAB_TEST_TRACE")
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if path and (worker or getattr(report, "node", None) is None):  # not xdist's copy
        import json

        line = json.dumps({"worker": worker or "main",
                           "test": report.nodeid, "phase": report.when,
                           "start": report.start, "stop": report.stop})
        with open(path, "a") as f:
            f.write(line + "\n")
