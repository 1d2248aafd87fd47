"""bigramlab: the package behind the course on bigram subnetworks.

Chang & Bergen (2025), "Bigram Subnetworks: Mapping to Next Tokens in
Transformer Language Models". The package is in layers; each imports only the
layers above it in this list (``tests/test_layers.py`` checks it):

- ``plumbing``: what everything uses. ``profiles`` (named bundles of model,
  checkpoints, corpus and budgets), ``cache``, ``devices``, ``progress``,
  ``files`` (the one atomic write), ``environment`` (the version report after the
  install cell, and the check that the book's bigramlab version runs).
- ``methods``: the paper's algorithms, tensors and Hugging Face models in,
  tensors out; no Profile, no cache, no network. ``ngrams`` (counting),
  ``rowstore`` / ``bigrams`` / ``sparse_ce`` (the bigram model), ``trigrams``
  (the trigram model with back-off, on the same engine), ``metrics``
  (surprisal, cross-entropy, correlation), ``architectures`` (where each
  architecture keeps its parts), ``anatomy`` (maskable weights, head layout),
  ``residual`` (the residual stream), ``batching``, ``masks`` (the one way
  weights are masked), ``targets`` / ``sparsify_config`` / ``sparsify``
  (continuous sparsification), ``subnetwork`` (masks as values), ``overlap``
  (and its two chance levels), ``rotation`` / ``lenses`` / ``covariance`` (the
  residual stream's geometry), ``ablation`` (the five conditions),
  ``generation`` (one sampler for bigram and LM text), ``agreement`` (number
  agreement across a word, as minimal pairs) and ``circuits`` (parts of a
  model as subnetworks, the greedy add-back loop).
- ``worlds``: where a profile's model, tokenizer and corpus come from, behind
  one dispatch (``loading``): ``hub`` (the Hugging Face Hub) and ``tiny``
  (the offline world: ``lexicon``, ``grammar``, ``pretrain``, ``build``), with
  ``tokens`` and ``models`` shared by both.
- ``experiments``: per-profile, cached orchestration the chapters run:
  ``bigram`` / ``trigram`` (a profile's bigram / trigram model),
  ``subnetworks`` (train, evaluate, reference), ``necessity`` (ablation,
  optimal sweep), ``plan`` (the measured estimate announced before a long
  training; a T4's cost from a config), ``circuits``
  (agreement cases, measures of many subnetworks, the add-back path),
  ``world_report`` (Chapter 0's tables).
- on top: ``display`` (tables and plots), ``explorers`` (sliders that work
  on a static page and in a live kernel, Chapters 1, 3-5), ``checks`` (exercise checks, one
  module per chapter), ``grade`` (grading students' notebooks with those
  checks), ``cli`` (``bigramlab info`` / ``build`` / ``grade``).

The entry points below accept a profile's name (or None: ``$BIGRAMLAB_PROFILE``,
else automatic) and resolve it once; everything beneath them takes a Profile.
"""

from .methods.anatomy import (KINDS, MaskableMatrix, UnsupportedArchitectureError,
                              count_maskable, maskable_matrices, parameter_groups)
from .plumbing.cache import cache_dir
from .plumbing.devices import default_device
from .plumbing.environment import __version__
from .plumbing.environment import report as environment_report
from .plumbing.profiles import PROFILES, Profile, UnknownProfileError, get_profile
from .worlds import loading as _loading
from .worlds.hub import HubUnavailableError
from .worlds.tiny.build import build_world as _build_world

__all__ = [
    "KINDS", "MaskableMatrix", "UnsupportedArchitectureError", "count_maskable",
    "maskable_matrices", "parameter_groups", "cache_dir", "load_corpus", "default_device",
    "HubUnavailableError", "load_model", "load_tokenizer", "build_world", "PROFILES", "Profile",
    "UnknownProfileError", "get_profile", "environment_report", "__version__",
]


def load_model(profile: Profile | str | None = None, checkpoint: str | None = None,
               device=None):
    """``(model, tokenizer)`` of a profile at ``checkpoint`` (default: the final
    one), in eval mode on ``device`` (default: CUDA when present, else CPU)."""
    return _loading.load_model(get_profile(profile), checkpoint, device)


def load_tokenizer(profile: Profile | str | None = None):
    """The profile's tokenizer (a ``transformers`` fast tokenizer)."""
    return _loading.load_tokenizer(get_profile(profile))


def load_corpus(profile: Profile | str | None = None, split: str = "train"):
    """The ``split`` ('train' or 'eval') token ids of a profile's corpus as an
    (n_sequences, seq_len) int64 tensor on the CPU, built once and cached."""
    return _loading.load_corpus(get_profile(profile), split)


def build_world(profile: Profile | str | None = None, progress: bool = True, *,
                stage: str | None = None):
    """Build (or find in the cache) a tiny profile's world; each stage's folder by name
    (or, with ``stage``, that stage's folder only)."""
    return _build_world(get_profile(profile), progress, stage=stage)
