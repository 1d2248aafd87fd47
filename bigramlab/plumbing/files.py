"""Writing files so that a kill never leaves half of one behind.

Used wherever a file is written that a later run reads back without a
manifest to check it: the bigram model's counts, the resumable state of mask
training and of the tiny LM's pretraining. (Whole cache entries are made
complete differently: built in a ``.partial`` folder and renamed, see
``cache.cached``.) Defined in Chapter 0, where the cache is introduced.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` to write a temporary file beside ``path``, then rename it
    to ``path`` (``os.replace``: atomic on one file system). Readers see either the
    old file or the complete new one. Creates the parent folder; returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the pid keeps two processes writing the same file from sharing a temporary
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
