"""Test-wide settings: no progress bars (volatile stdout), the offline profile, and
nbval's number-aware comparison of stored outputs (``tools/nbval_numbers.py``).

The environment is set before any notebook kernel starts, so nbval's kernels inherit it.
"""

import os

os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("BIGRAMLAB_PROFILE", "tiny")

pytest_plugins = ["tools.nbval_numbers"]
