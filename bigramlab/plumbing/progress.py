"""Progress bars that honour ``TQDM_DISABLE=1`` (set under test, so stored
notebook outputs and CI logs stay free of volatile bars).

Every long loop of the package shows one; no chapter teaches this module.
"""

from __future__ import annotations

import os

from tqdm.auto import tqdm


def progress_bar(iterable=None, enabled: bool = True, **kwargs):
    """``tqdm.auto.tqdm``, off when ``enabled`` is False or ``$TQDM_DISABLE`` is set."""
    off = not enabled or os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true", "yes")
    return tqdm(iterable, disable=off, **kwargs)
