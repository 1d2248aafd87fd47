"""A profile's bigram model: counted once on its train split, cached on disk.

The counts come from the profile's train split tokenized with the model's own
tokenizer (``worlds.loading``), counted by ``methods.bigrams.BigramModel``;
the file is cached under ``bigram-<key>``, the key covering the corpus, its
sizes and the tiny world. Defined in Chapter 1.
"""

from __future__ import annotations

import torch

from ..methods.bigrams import FORMAT_VERSION, BigramModel
from ..plumbing.cache import cached, key_of
from ..plumbing.devices import default_device
from ..plumbing.profiles import Profile, entry_point
from ..worlds.loading import load_corpus, load_tokenizer

__all__ = ["bigram_model"]


@entry_point
def bigram_model(profile: Profile, device: torch.device | str | None = None,
                 progress: bool = True) -> BigramModel:
    """The bigram model of a profile's train split (tokenized with the model's own
    tokenizer) on ``device`` (default: the default device), counted once and
    cached on disk; later calls load the file."""
    device = device or default_device()
    key = key_of(FORMAT_VERSION, profile.key("model_id", "corpus", "seq_len", "n_train_seqs",
                                       "n_eval_seqs", "world"))

    def build(out):
        train = load_corpus(profile, "train")
        model = BigramModel.from_corpus(train.split(1024), len(load_tokenizer(profile)),
                                        device=device, progress=progress)
        model.save(out / "bigram.safetensors")
        return {"profile": profile.name, "pairs": model.total_pairs, "nonzeros": model.nnz}

    return BigramModel.load(cached("bigram", key, build) / "bigram.safetensors", device=device)
