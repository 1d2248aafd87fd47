"""The offline tiny world: corpus, tokenizer and LM, built locally and cached.

Four stages, each a cache entry keyed by everything that determines it, so
``tiny`` and ``tiny-gpt2`` share the corpus and tokenizer and a change to one
stage rebuilds only what depends on it:

1. corpus: English-like passages from ``bigramlab.grammar`` (seeded);
2. tokenizer: a byte-level BPE trained with ``tokenizers``, saved as a
   ``transformers`` fast tokenizer (``save_pretrained``);
3. tokens: the passages packed into (n, seq_len) train and eval sequences by
   the same ``corpus.pack`` the real world uses;
4. lm: a tiny GPT-NeoX (or GPT-2) pretrained from scratch, checkpoints at
   log-spaced steps named like Pythia's revisions, each saved with
   ``save_pretrained`` and loaded back by ``models.load_model``.

No stage touches the network.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from . import grammar
from .cache import cached, key_of
from .devices import default_device, numerics
from .profiles import Profile, get_profile

# Bump when a stage's code changes what it produces, so old cache entries are not reused.
VERSION = 1


def _corpus_key(p: Profile) -> str:
    return key_of(VERSION, "corpus", p.world.seed, p.world.n_words)


def _tokenizer_key(p: Profile) -> str:
    return key_of(_corpus_key(p), "tokenizer", p.world.vocab_size)


def _tokens_key(p: Profile) -> str:
    return key_of(_tokenizer_key(p), "tokens", p.seq_len, p.n_eval_seqs, p.n_train_seqs)


def _lm_key(p: Profile) -> str:
    # The numeric environment is part of the key: other kernels (CUDA vs CPU, AVX2 vs
    # AVX-512, another thread count) round differently, so the same seed gives the
    # same weights only under the same ones.
    return key_of(_tokens_key(p), "lm", p.arch, p.world.__dict__, p.checkpoints,
                  numerics(default_device()))


def _tiny(profile) -> Profile:
    profile = get_profile(profile)
    if not profile.is_tiny:
        raise ValueError(f"profile {profile.name!r} is not a tiny-world profile")
    return profile


def read_passages(folder: Path) -> list[str]:
    with open(folder / "passages.jsonl") as f:
        return [json.loads(line) for line in f]


def build_corpus(profile=None) -> Path:
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


def build_tokenizer(profile=None) -> Path:
    """Folder of a byte-level BPE tokenizer trained on the corpus (``from_pretrained``-able)."""
    p = _tiny(profile)

    def build(out: Path) -> dict:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
        from transformers import PreTrainedTokenizerFast

        t = time.perf_counter()
        passages = read_passages(build_corpus(p))
        # The same recipe as GPT-2's and Pythia's tokenizers: bytes, then merges;
        # <|endoftext|> is id 0, as in Pythia.
        tok = Tokenizer(models.BPE())
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

    return cached("tinytokenizer", _tokenizer_key(p), build)


def build_tokens(profile=None) -> Path:
    """Folder holding ``tokens.safetensors`` with the 'train' and 'eval' splits."""
    p = _tiny(profile)

    def build(out: Path) -> dict:
        from transformers import AutoTokenizer

        from .corpus import _save_splits, pack, split_sequences

        t = time.perf_counter()
        tokenizer = AutoTokenizer.from_pretrained(build_tokenizer(p))
        passages = read_passages(build_corpus(p))
        ids = pack(passages, tokenizer, p.seq_len, None, desc="tokenizing the tiny corpus")
        splits = split_sequences(ids, p.n_eval_seqs, p.n_train_seqs)
        _save_splits(out, splits)
        return {k: list(v.shape) for k, v in splits.items()} | {
            "seconds": round(time.perf_counter() - t, 1)}

    return cached("tinytokens", _tokens_key(p), build)


def build_lm(profile=None, progress: bool = True) -> Path:
    """Folder with ``checkpoints/<stepN>/`` (``save_pretrained``, plus the trainer
    state that resuming from it needs), ``train_log.json`` (per-step loss, nats)
    and ``report.json`` (timings). A damaged entry keeps its intact checkpoints
    and pretraining resumes after the last of them (bit-identical result)."""
    p = _tiny(profile)

    def build(out: Path) -> dict:
        from .corpus import load_corpus
        from .models import load_tokenizer, make_model
        from .pretrain import pretrain

        t = time.perf_counter()
        train = load_corpus(p, "train")
        vocab = len(load_tokenizer(p))
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


def build_world(profile=None, progress: bool = True) -> dict:
    """Build (or find in the cache) every stage; returns each stage's folder."""
    p = _tiny(profile)
    return {"corpus": build_corpus(p), "tokenizer": build_tokenizer(p),
            "tokens": build_tokens(p), "lm": build_lm(p, progress=progress)}


def training_log(profile=None) -> list[float]:
    """The tiny LM's per-step training loss (nats/token)."""
    return json.loads((build_lm(profile) / "train_log.json").read_text())["loss"]


def evaluate_world(profile=None, checkpoint: str | None = None, progress: bool = True) -> dict:
    """Eval-split cross-entropy (nats/token) of the tiny LM and of a bigram model
    counted on the train split, over the same positions: those whose bigram pair
    was seen in training (an unseen pair has bigram probability 0, surprisal inf).
    Also reports how many positions were left out for that reason. Shows a
    progress bar over the eval batches (``progress=False``: none)."""
    from .bigrams import bigram_model
    from .corpus import load_corpus
    from .models import load_model
    from .surprisal import LN2, lm_surprisal

    p = _tiny(profile)
    ev = load_corpus(p, "eval")
    model, _ = load_model(p, checkpoint, device="cpu")
    bigram = bigram_model(p, device="cpu")
    s_bigram, s_lm = bigram.surprisal(ev).cpu(), lm_surprisal(model, ev, progress=progress)
    seen = torch.isfinite(s_bigram)
    ce_lm = float(s_lm[seen].double().mean() * LN2)
    ce_bigram = float(s_bigram[seen].double().mean() * LN2)
    return {"checkpoint": checkpoint or p.final_checkpoint,
            "LM CE (nats)": round(ce_lm, 3), "bigram CE (nats)": round(ce_bigram, 3),
            "LM gain (nats)": round(ce_bigram - ce_lm, 3),
            "LM CE, all positions": round(float(s_lm.double().mean() * LN2), 3),
            "unseen pairs": f"{int((~seen).sum())} of {seen.numel()}"}


def compare_worlds(tiny: Profile, real: Profile) -> list[dict]:
    """Rows comparing a tiny profile with a real one, for the setup chapter.
    Only the tiny side is measured (the real side is read from the profile and
    METHOD.md's table): no network is needed."""
    from .anatomy import count_maskable
    from .models import load_model, make_meta_model

    model, tokenizer = load_model(tiny, device="cpu")
    cfg, s = model.config, real.shape
    meta = make_meta_model(real)
    arch = f"{s.n_layer} x {s.d_model}, {s.n_head} heads, MLP {s.d_mlp}"
    params = (f"{sum(x.numel() for x in meta.parameters()):,} "
              f"({count_maskable(meta):,} maskable)")
    vocab = f"{s.vocab_size:,} embedding rows"
    rows = [
        ("model", f"GPT-NeoX built locally ({tiny.name})", real.model_id),
        ("layers x width", f"{cfg.num_hidden_layers} x {cfg.hidden_size}, {cfg.num_attention_heads} "
         f"heads, MLP {cfg.intermediate_size}", arch),
        ("parameters", f"{sum(x.numel() for x in model.parameters()):,} "
         f"({count_maskable(model):,} maskable)", params),
        ("vocabulary", f"{len(tokenizer):,} (byte-level BPE, trained here)", vocab),
        ("corpus", f"{tiny.corpus.path}: {tiny.corpus.why}", f"{real.corpus.path}: {real.corpus.why}"),
        ("checkpoints", f"{len(tiny.checkpoints)}: {tiny.checkpoints[0]} .. {tiny.final_checkpoint}",
         f"{len(real.checkpoints)}: {real.checkpoints[0]} .. {real.final_checkpoint}"),
        ("mask training", f"lr {tiny.mask_lr}, T x{tiny.temp_growth}/step, <= {tiny.max_steps} steps",
         f"lr {real.mask_lr}, T x{real.temp_growth}/step, <= {real.max_steps} steps"),
        ("where it runs", "any CPU, offline, minutes", "a GPU with network (Colab)"),
    ]
    return [{"": k, tiny.name: a, real.name: b} for k, a, b in rows]
