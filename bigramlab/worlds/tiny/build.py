"""The offline tiny world: corpus, tokenizer and LM, built locally and cached.

Four stages, each a cache entry keyed by everything that determines it, so
``tiny`` and ``tiny-gpt2`` share the corpus and tokenizer and a change to one
stage rebuilds only what depends on it:

1. corpus: English-like passages from ``grammar`` (seeded);
2. tokenizer: a byte-level BPE trained with ``tokenizers``, saved as a
   ``transformers`` fast tokenizer (``save_pretrained``);
3. tokens: the passages packed into (n, seq_len) train and eval sequences by
   the same ``tokens.pack`` the real world uses;
4. lm: a tiny GPT-NeoX (or GPT-2) pretrained from scratch, checkpoints at
   log-spaced steps named like Pythia's revisions, each saved with
   ``save_pretrained`` and loaded back by ``worlds.loading.load_model``.

Building is one explicit call, :func:`build_world`, which the loaders ask
for the stage they need by name (built once; later calls find it in the
cache). Each stage reads the stages before it from their folders. No stage
touches the network. The tokenizer and the LM are also released with the
course (``release``): where a release matches the profile, the loaders take
it instead of stages 2 and 4, so every machine computes on the same weights;
``build_world(..., released=False)`` (``bigramlab build``) makes them here.
Defined in Chapter 0.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, pre_tokenizers, trainers
from tokenizers import models as bpe_models
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from ...plumbing.cache import cached, key_of
from ...plumbing.devices import default_device, numerics
from ...plumbing.profiles import Profile
from ..models import make_model
from ..tokens import pack, read_split, save_splits, split_sequences
from . import grammar, release
from .pretrain import pretrain

# Bump when a stage's code changes what it produces, so old cache entries are not reused.
VERSION = 1


def _corpus_key(p: Profile) -> str:
    return key_of(VERSION, "corpus", p.world.seed, p.world.n_words)


def tokenizer_key(p: Profile) -> str:
    return key_of(_corpus_key(p), "tokenizer", p.world.vocab_size)


def _tokens_key(p: Profile) -> str:
    return key_of(tokenizer_key(p), "tokens", p.seq_len, p.n_eval_seqs, p.n_train_seqs)


def _lm_key(p: Profile) -> str:
    # The numeric environment is part of the key: other kernels (CUDA vs CPU, AVX2 vs
    # AVX-512, another thread count) round differently, so the same seed gives the
    # same weights only under the same ones.
    return key_of(_tokens_key(p), "lm", p.arch, p.world.__dict__, p.checkpoints,
                  numerics(default_device()))


def _tiny(profile: Profile) -> Profile:
    if not profile.is_tiny:
        raise ValueError(f"profile {profile.name!r} is not a tiny-world profile")
    return profile


def read_passages(folder: Path) -> list[str]:
    """The generated passages in a corpus folder (``build_world(p)["corpus"]``)."""
    with open(folder / "passages.jsonl") as f:
        return [json.loads(line) for line in f]


def build_corpus(profile: Profile) -> Path:
    """Folder holding ``passages.jsonl``: one generated passage per line."""
    p = _tiny(profile)

    def build(out: Path) -> dict:
        t = time.perf_counter()
        passages = grammar.generate_passages(p.world.n_words, seed=p.world.seed)
        with open(out / "passages.jsonl", "w") as f:
            f.writelines(json.dumps(s) + "\n" for s in passages)
        return {"passages": len(passages), "words": grammar.count_words(passages),
                "seconds": round(time.perf_counter() - t, 1)}

    return cached("tinycorpus", _corpus_key(p), build)


def build_tokenizer(profile: Profile) -> Path:
    """Folder of a byte-level BPE tokenizer trained on the corpus (``from_pretrained``-able)."""
    p = _tiny(profile)

    def build(out: Path) -> dict:
        t = time.perf_counter()
        passages = read_passages(build_corpus(p))
        # The same recipe as GPT-2's and Pythia's tokenizers: bytes, then merges;
        # <|endoftext|> is id 0, as in Pythia.
        tok = Tokenizer(bpe_models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=p.world.vocab_size,
                                      special_tokens=["<|endoftext|>"],
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                      show_progress=False)
        tok.train_from_iterator(passages, trainer)
        fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>",
                                       eos_token="<|endoftext|>", unk_token="<|endoftext|>")
        fast.save_pretrained(out)
        return {"vocab_size": len(fast), "seconds": round(time.perf_counter() - t, 1)}

    return cached("tinytokenizer", tokenizer_key(p), build)


def tokenizer_folder(profile: Profile) -> Path:
    """The profile's tokenizer folder: the released one when it matches (the profile's
    own release, else one with the same tokenizer settings: the tiny family's), else built."""
    p = _tiny(profile)
    key = tokenizer_key(p)
    return (release.released(p, key, "tokenizer") or release.released_tokenizer(key)
            or build_tokenizer(p))


def lm_folder(profile: Profile, progress: bool = True) -> Path:
    """The profile's LM folder (``checkpoints/<stepN>/``, ``train_log.json``): the
    released one when it matches, else pretrained here (:func:`build_lm`)."""
    p = _tiny(profile)
    return release.released(p, tokenizer_key(p), "lm") or build_lm(p, progress)


def build_tokens(profile: Profile) -> Path:
    """Folder holding ``tokens.safetensors`` with the 'train' and 'eval' splits,
    tokenized with :func:`tokenizer_folder`'s tokenizer."""
    p = _tiny(profile)

    def build(out: Path) -> dict:
        t = time.perf_counter()
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_folder(p))
        passages = read_passages(build_corpus(p))
        ids = pack(passages, tokenizer, p.seq_len, None, desc="tokenizing the tiny corpus")
        splits = split_sequences(ids, p.n_eval_seqs, p.n_train_seqs)
        save_splits(out, splits)
        return {k: list(v.shape) for k, v in splits.items()} | {
            "seconds": round(time.perf_counter() - t, 1)}

    return cached("tinytokens", _tokens_key(p), build)


def build_lm(profile: Profile, progress: bool = True) -> Path:
    """Folder with ``checkpoints/<stepN>/`` (``save_pretrained``, plus the trainer
    state that resuming from it needs), ``train_log.json`` (per-step loss, nats)
    and ``report.json`` (timings). A damaged entry keeps its intact checkpoints
    and pretraining resumes after the last of them (bit-identical result)."""
    p = _tiny(profile)

    def build(out: Path) -> dict:
        t = time.perf_counter()
        train = read_split(build_tokens(p), "train")
        vocab = len(AutoTokenizer.from_pretrained(tokenizer_folder(p)))
        torch.manual_seed(p.world.seed)
        model = make_model(p.arch, p.world, vocab, p.seq_len).to(default_device())
        pretrain(model, train, out, steps=p.world.train_steps, batch_size=p.world.batch_size,
                 lr=p.world.lr, warmup=p.world.warmup_steps, seed=p.world.seed,
                 checkpoints=p.checkpoints, progress=progress)
        seconds = time.perf_counter() - t
        report = {"profile": p.name, "device": default_device().type,
                  "parameters": sum(x.numel() for x in model.parameters()),
                  "train_seconds": round(seconds, 1),
                  "tokens_per_second": round(p.world.train_steps * p.world.batch_size
                                             * p.seq_len / seconds)}
        (out / "report.json").write_text(json.dumps(report, indent=1))
        return report

    # resumable: a damaged entry resumes pretraining from its last intact checkpoint
    return cached("tinylm", _lm_key(p), build, resumable=True)


def build_world(profile: Profile, progress: bool = True, *,
                stage: str | None = None, released: bool = True) -> dict[str, Path] | Path:
    """Build (or find in the cache) every stage of a tiny profile's world; returns
    each stage's folder by name: ``corpus``, ``tokenizer``, ``tokens``, ``lm``.

    With ``stage`` (one of those names), only that stage's folder, built with the
    stages it is made from when they are missing: what the loaders ask for (a
    folder found in the cache is verified, the stages before it are not read).
    ``released``: take the released tokenizer and LM where they match the profile
    (the default, what the chapters read); False builds both here."""
    p = _tiny(profile)
    if released:
        stages = {"corpus": build_corpus, "tokenizer": tokenizer_folder,
                  "tokens": build_tokens, "lm": lambda q: lm_folder(q, progress)}
    else:
        stages = {"corpus": build_corpus, "tokenizer": build_tokenizer,
                  "tokens": build_tokens, "lm": lambda q: build_lm(q, progress=progress)}
    if stage is not None:
        if stage not in stages:
            raise ValueError(f"unknown stage {stage!r}; the tiny world's stages: "
                             f"{', '.join(stages)}")
        return stages[stage](p)
    return {name: build(p) for name, build in stages.items()}


def training_log(profile: Profile) -> list[float]:
    """The tiny LM's per-step training loss (nats/token), of the LM the loaders read."""
    return json.loads((lm_folder(profile) / "train_log.json").read_text())["loss"]
