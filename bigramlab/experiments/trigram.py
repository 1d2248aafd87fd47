"""A profile's trigram model: counted once on its train split, cached on disk.

The triples come from the same train split as the profile's bigram model
(``experiments.bigram``: the model's own tokenizer), counted and pruned by
``methods.trigrams.TrigramModel`` (trigrams seen fewer than ``min_count``
times dropped; 2 by default, as in the paper's code), which backs off to the
profile's own cached bigram model. The file is cached under ``trigram-<key>``,
the key covering the corpus, its sizes, the tiny world and ``min_count``.
Defined in Chapter 9.
"""

from __future__ import annotations

import torch

from ..methods.bigrams import BigramModel
from ..methods.ngrams import count_ngrams
from ..methods.trigrams import FORMAT_VERSION, MIN_COUNT, TrigramModel
from ..plumbing.cache import cached, key_of
from ..plumbing.devices import default_device
from ..plumbing.inputs import check_int, check_type
from ..plumbing.profiles import Profile, entry_point
from ..worlds.loading import load_corpus, load_tokenizer
from .bigram import bigram_model

__all__ = ["trigram_model"]


@entry_point
def trigram_model(profile: Profile, device: torch.device | str | None = None,
                  progress: bool = True, min_count: int = MIN_COUNT, *,
                  bigram: BigramModel | None = None) -> TrigramModel:
    """The trigram model of a profile's train split on ``device`` (default: the default
    device), trigrams seen fewer than ``min_count`` times pruned (1: none), counted once
    and cached on disk; later calls load the file. It backs off to ``bigram``, the
    profile's bigram model when already loaded on that device (default:
    ``bigram_model(profile, device)``)."""
    where = "trigram_model: "
    check_int("min_count", min_count, 1, where=where,
              why="trigrams seen fewer than min_count times are pruned; 1 keeps them all")
    check_type("bigram", bigram, (BigramModel, type(None)),
               "pass the profile's bigram_model(profile), or None", where=where)
    if bigram is None:
        bigram = bigram_model.unchecked(profile, device=device or default_device(),
                                        progress=progress)
    elif device is not None and not _same_device(torch.device(device), bigram.device):
        raise ValueError(f"{where}bigram lives on {bigram.device}, not on {device}: pass "
                         "device=None, or the bigram model on that device")
    key = key_of(FORMAT_VERSION, profile.key("model_id", "corpus", "seq_len", "n_train_seqs",
                                       "n_eval_seqs", "world"), min_count)

    def build(out):
        train = load_corpus(profile, "train")
        counts = count_ngrams(train.split(1024), len(load_tokenizer(profile)), 3, bigram.device,
                              progress, desc="counting trigrams")
        model = TrigramModel.from_counts(counts, min_count, bigram=bigram)
        model.save(out / "trigram.safetensors")
        return {"profile": profile.name, "min_count": min_count, "trigrams": model.tokens,
                "kept": model.nnz, "contexts": model.n_contexts}

    return TrigramModel.load(cached("trigram", key, build) / "trigram.safetensors", bigram)


def _same_device(a: torch.device, b: torch.device) -> bool:
    """'cuda' and 'cuda:0' are one device when the index is left open."""
    return a.type == b.type and (a.index is None or b.index is None or a.index == b.index)
