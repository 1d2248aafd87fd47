"""Chapter 0's report on the tiny world: how far its LM is from a bigram model, and
the tiny world beside a real profile.

Defined in Chapter 0.
"""

from __future__ import annotations

import torch

from ..methods.anatomy import count_maskable
from ..methods.metrics import LN2, lm_surprisal
from ..plumbing.profiles import Profile, entry_point
from ..worlds.loading import load_corpus, load_model
from ..worlds.models import make_meta_model
from .bigram import bigram_model

__all__ = ["evaluate_world", "compare_worlds"]


@entry_point
def evaluate_world(profile: Profile, checkpoint: str | None = None, progress: bool = True) -> dict:
    """Eval-split cross-entropy (nats/token) of the tiny LM and of a bigram model
    counted on the train split, over the same positions: those whose bigram pair
    was seen in training (an unseen pair has bigram probability 0, surprisal inf).
    Also reports how many positions were left out for that reason. Shows a
    progress bar over the eval batches (``progress=False``: none)."""
    if not profile.is_tiny:
        raise ValueError(f"profile {profile.name!r} is not a tiny-world profile: evaluate_world "
                         "reports on the LM built here")
    ev = load_corpus(profile, "eval")
    model, _ = load_model(profile, checkpoint, device="cpu")
    bigram = bigram_model.unchecked(profile, device="cpu")
    s_bigram, s_lm = bigram.surprisal(ev).cpu(), lm_surprisal(model, ev, progress=progress)
    seen = torch.isfinite(s_bigram)
    ce_lm = float(s_lm[seen].double().mean() * LN2)
    ce_bigram = float(s_bigram[seen].double().mean() * LN2)
    return {"checkpoint": checkpoint or profile.final_checkpoint,
            "LM CE (nats)": round(ce_lm, 3), "bigram CE (nats)": round(ce_bigram, 3),
            "LM gain (nats)": round(ce_bigram - ce_lm, 3),
            "LM CE, all positions": round(float(s_lm.double().mean() * LN2), 3),
            "unseen pairs": f"{int((~seen).sum())} of {seen.numel()}"}


@entry_point
def compare_worlds(tiny: Profile, real: Profile) -> list[dict]:
    """Rows comparing a tiny profile with a real one, for the setup chapter.
    Only the tiny side is measured (the real side is read from the profile and
    its recorded shape, the public model config): no network is needed."""
    model, tokenizer = load_model(tiny, device="cpu")
    cfg, s = model.config, real.shape
    meta = make_meta_model.unchecked(real)
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
        ("mask training", f"lr {tiny.mask_lr}, T x{tiny.temp_growth}/step, chapters <= "
         f"{tiny.chapter_max_steps} steps",
         f"lr {real.mask_lr}, T x{real.temp_growth}/step, chapters <= {real.chapter_max_steps} steps "
         f"({real.budget} budget)"),
        ("where it runs", "any CPU, offline, minutes", "a GPU with network (Colab)"),
    ]
    return [{"": k, tiny.name: a, real.name: b} for k, a, b in rows]
