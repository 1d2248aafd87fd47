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
