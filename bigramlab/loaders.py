"""A profile's model, tokenizer, corpus and tiny world, by the profile's name.

The doors where a name comes in: each function takes a profile's name, a ``Profile``,
or None (``$BIGRAMLAB_PROFILE``, else automatic), resolves it once with ``get_profile``
and hands the Profile to ``worlds.loading`` / ``worlds.tiny.build``. They are
importable from the package root: ``from bigramlab import load_model``.
Defined in Chapter 0.
"""

from __future__ import annotations

from .plumbing.profiles import Profile, get_profile
from .worlds import loading
from .worlds.loading import with_embeddings
from .worlds.tiny.build import build_world as _build_world

__all__ = ["load_model", "load_tokenizer", "load_corpus", "build_world", "with_embeddings"]


def load_model(profile: Profile | str | None = None, checkpoint: str | None = None,
               device=None):
    """``(model, tokenizer)`` of a profile at ``checkpoint`` (default: the final
    one; or a spliced model named by :func:`with_embeddings`), in eval mode on
    ``device`` (default: CUDA when present, else CPU)."""
    return loading.load_model(get_profile(profile), checkpoint, device)


def load_tokenizer(profile: Profile | str | None = None):
    """The profile's tokenizer (a ``transformers`` fast tokenizer)."""
    return loading.load_tokenizer(get_profile(profile))


def load_corpus(profile: Profile | str | None = None, split: str = "train"):
    """The ``split`` ('train' or 'eval') token ids of a profile's corpus as an
    (n_sequences, seq_len) int64 tensor on the CPU, built once and cached."""
    return loading.load_corpus(get_profile(profile), split)


def build_world(profile: Profile | str | None = None, progress: bool = True, *,
                stage: str | None = None):
    """Build (or find in the cache) a tiny profile's world; each stage's folder by name
    (or, with ``stage``, that stage's folder only)."""
    return _build_world(get_profile(profile), progress, stage=stage)
