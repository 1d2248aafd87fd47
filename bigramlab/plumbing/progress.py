"""Progress bars that honour ``TQDM_DISABLE=1`` (set under test, so stored
notebook outputs and CI logs stay free of volatile bars).

Every long loop of the package shows one; no chapter teaches this module.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

from tqdm.auto import tqdm


def progress_bar(iterable=None, enabled: bool = True, **kwargs):
    """``tqdm.auto.tqdm``, off when ``enabled`` is False or ``$TQDM_DISABLE`` is set."""
    off = not enabled or os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true", "yes")
    return tqdm(iterable, disable=off, **kwargs)


@contextmanager
def quiet_transformers():
    """Silence transformers' own progress bars ("Loading weights" in ``from_pretrained``,
    "Writing model shards" in ``save_pretrained``: per-tensor bars that a small model
    finishes in milliseconds, noise in notebooks and logs) and restore the setting after.
    The Hub's download bars, which ``transformers`` switches off with its own, stay as
    they were: a real model's download keeps its progress bar."""
    # lazy: plumbing stays light to import (transformers takes seconds)
    from huggingface_hub.utils import are_progress_bars_disabled  # lazy: see above
    from huggingface_hub.utils import enable_progress_bars  # lazy: see above
    from transformers.utils import logging as hf_logging  # lazy: see above

    was_enabled = hf_logging.is_progress_bar_enabled()
    hub_was_enabled = not are_progress_bars_disabled()
    hf_logging.disable_progress_bar()
    if hub_was_enabled:
        enable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()
