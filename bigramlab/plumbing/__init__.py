"""Plumbing: what every layer above may use, and which imports nothing else from bigramlab.

- ``profiles``: named bundles of model, checkpoints, corpus and budgets (Chapter 0);
- ``cache``: the on-disk cache of expensive artifacts, keyed by what made them;
- ``devices``: the default device, and whether the Hugging Face Hub answers;
- ``progress``: progress bars that honour ``TQDM_DISABLE``;
- ``files``: the one atomic file write;
- ``environment``: the versions, device and budget a notebook runs with, and the check
  that the running bigramlab is the book's version.

What the chapters call is importable from here (``from bigramlab.plumbing import
profile_table``); the profiles themselves also from the package root.
"""

from .cache import cache_dir, list_entries, short_path
from .devices import default_device, describe_device
from .profiles import PROFILES, Profile, TinyWorld, UnknownProfileError, get_profile, profile_table

__all__ = ["cache_dir", "list_entries", "short_path", "default_device", "describe_device",
           "PROFILES", "Profile", "TinyWorld", "UnknownProfileError", "get_profile",
           "profile_table"]
