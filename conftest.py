"""Test-wide settings: no progress bars (volatile stdout), the offline profile.

These are set before any notebook kernel starts, so nbval's kernels inherit them.
"""

import os

os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("BIGRAMLAB_PROFILE", "tiny")
