"""bigramlab: the package behind the course on bigram subnetworks.

Chang & Bergen (2025), "Bigram Subnetworks: Mapping to Next Tokens in
Transformer Language Models". One module per idea:

- ``profiles``: named bundles of model, checkpoints, corpus and budgets;
- ``grammar``, ``tinyworld``, ``pretrain``: the offline tiny world;
- ``models``, ``corpus``: loading models and token sequences in both worlds;
- ``anatomy``: which weights can be masked, and how they split into heads;
- ``bigrams``: bigram models, exact and fast;
- ``checks``: automatic checks for the exercises.
"""

__version__ = "0.1.0"

from .anatomy import (KINDS, MaskableMatrix, UnsupportedArchitectureError, count_maskable,
                      maskable_matrices, parameter_groups)
from .cache import cache_dir
from .corpus import load_corpus
from .devices import default_device
from .hub import HubUnavailableError
from .models import load_model, load_tokenizer
from .profiles import PROFILES, Profile, UnknownProfileError, get_profile

__all__ = [
    "KINDS", "MaskableMatrix", "UnsupportedArchitectureError", "count_maskable",
    "maskable_matrices", "parameter_groups", "cache_dir", "load_corpus", "default_device",
    "HubUnavailableError", "load_model", "load_tokenizer", "PROFILES", "Profile",
    "UnknownProfileError", "get_profile", "__version__",
]
