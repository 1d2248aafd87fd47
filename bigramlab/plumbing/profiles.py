"""Profiles: one named bundle of every choice an experiment depends on.

A profile names the model and its checkpoints, the corpus, the sizes of the
train and eval sets, the lambdas and step budgets of mask training. The real
profiles load Pythia / GPT-2 from the Hugging Face Hub; the ``tiny`` profiles
build a small world offline (``bigramlab.worlds.tiny``) so that the same code
path runs in CI and on a laptop without network.

Selection (``get_profile(None)``): ``$BIGRAMLAB_PROFILE``, else ``pythia-70m``
when a GPU and the network are both there, else ``tiny``. A real profile comes
with a *budget* (``$BIGRAMLAB_BUDGET``): ``session`` (the default: every
chapter fits a free Colab T4 session, see ``SESSION``) or ``paper`` (the
paper's full budget). The tiny profiles have one budget of their own. A name is resolved
once, by ``get_profile`` (``bigramlab.load_model`` and its siblings, the command line);
the functions a reader calls with a Profile are marked ``@entry_point``, which checks it
(``require_profile``) once, and everything below them takes that checked Profile.

Defined in Chapter 0.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import os
from dataclasses import dataclass

from .inputs import describe
from . import devices
from .cache import key_of

# Pythia's public revisions that the paper trains subnetworks at (Chang & Bergen 2025,
# section 4.1).
PYTHIA_CHECKPOINTS = (
    "step0", "step128", "step256", "step512", "step1000", "step2000", "step3000",
    "step4000", "step6000", "step10000", "step16000", "step25000", "step40000",
    "step63000", "step100000", "step143000",
)


class UnknownProfileError(ValueError):
    """Raised for a profile name that does not exist; lists the valid names."""


@dataclass(frozen=True)
class Corpus:
    """Where text comes from.

    ``path == "grammar"`` is the offline tiny world's generated English.
    Anything else is a Hugging Face dataset streamed with ``datasets``:
    ``load_dataset(path, name, split=split, data_files=data_files, streaming=True)``
    and its ``text_field`` column is tokenized with the model's own tokenizer.
    """

    path: str
    name: str | None = None
    split: str = "train"
    text_field: str = "text"
    data_files: str | None = None
    why: str = ""


@dataclass(frozen=True)
class TinyWorld:
    """How the offline world is made: corpus size, tokenizer, LM and its training."""

    seed: int = 0                # one seed for the corpus, the LM's init and its data order
    n_words: int = 4_000_000     # words of generated text (the grammar's unit)
    vocab_size: int = 2048       # BPE tokens, <|endoftext|> included
    n_layer: int = 4             # Transformer blocks of the LM
    d_model: int = 64            # width of the residual stream
    n_head: int = 4              # attention heads per block
    d_mlp: int = 256             # hidden width of each MLP
    train_steps: int = 1500      # AdamW steps of pretraining
    batch_size: int = 16         # sequences per pretraining step
    lr: float = 3e-3             # peak learning rate (linear warm-up, cosine decay to 1/10)
    warmup_steps: int = 100      # steps of linear warm-up


@dataclass(frozen=True)
class Shape:
    """A model's size, from its public Hugging Face config."""

    n_layer: int
    d_model: int
    n_head: int
    d_mlp: int
    vocab_size: int  # embedding rows (Pythia pads its 50,277-token vocabulary)


@dataclass(frozen=True)
class Profile:
    """Everything an experiment depends on. Frozen: use ``.replace(**changes)``."""

    name: str
    arch: str                     # "gpt_neox" or "gpt2" (a key of methods.architectures)
    model_id: str | None          # hub id; None for the tiny world (built locally)
    checkpoints: tuple[str, ...]  # revision names, oldest first; the last is final
    corpus: Corpus                # where the text comes from
    seq_len: int = 128            # tokens per sequence (the paper: 128)
    n_train_seqs: int = 500_000   # paper: 500k sequences of 128 tokens for mask training
    n_eval_seqs: int = 10_000     # paper: 10k held-out sequences
    lambdas: tuple[float, ...] = (0.0, 1.0, 10.0, 100.0, 500.0)  # the lambda sweep
    default_lambda: float = 10.0  # the released masks' lambda (100 for the largest models)
    mask_lr: float = 5e-5         # AdamW learning rate on the mask logits (paper)
    temp_growth: float = 1.001    # temperature factor per mask-training step (paper)
    max_steps: int = 15_000       # mask-training steps at most (paper)
    chapter_max_steps: int = 15_000  # the cap the chapters train their masks with (tiny: 600)
    batch_size: int = 32          # sequences per mask-training step (paper)
    world: TinyWorld | None = None  # only for the tiny profiles
    shape: Shape | None = None      # only for the real profiles (tiny: see world)
    notes: str = ""
    budget: str = "paper"           # "paper" or "session" (real profiles), "tiny" (tiny ones)
    # Models too large to mask the straightforward way on a free T4 (the book's appendix, "On a free
    # Colab T4"): weights stored in fp16 and mask training with memory="low"
    # (methods.lowmem: fp32 compute one block at a time, bf16 AdamW moments).
    # how load_model stores the weights; the tiny profiles compute in float64, which
    # makes their numbers the same under every CPU kernel set (the book's appendix,
    # "Reproducibility")
    weights_dtype: str = "float32"
    mask_memory: str = "default"    # sparsify's memory mode: "default" or "low"

    @property
    def is_tiny(self) -> bool:
        return self.world is not None

    @property
    def final_checkpoint(self) -> str:
        return self.checkpoints[-1]

    def replace(self, **changes) -> "Profile":
        """A copy with some fields changed (e.g. a smaller budget for a test)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def key(self, *fields: str) -> str:
        """A short hash of the named fields (all when none): the cache key."""
        d = self.to_dict()
        return key_of({f: d[f] for f in fields} if fields else d)


def tiny_checkpoints(train_steps: int) -> tuple[str, ...]:
    """Pythia-style log-spaced revision names for a run of ``train_steps`` steps:
    step0, step1, step2, step4, ... (powers of two below the end), then the final step."""
    steps = [0] + [2**i for i in range(train_steps.bit_length()) if 2**i < train_steps]
    return tuple(f"step{s}" for s in steps + [train_steps])


# Why these corpora: the paper counts bigrams on OSCAR (English web text, about
# 1.28B tokens, every token counted as a context), far more text than it trains
# masks on (500k sequences of 128 tokens). We count on the same sequences we train
# on: n_train_seqs (paper budget: the paper's 500k, 64M tokens; session budget:
# 50k, 6.4M tokens), so rare pairs are rarer or missing here, more eval positions
# get probability 0 (left out as "dropinf", or clipped), and the bigram targets of
# rare contexts are noisier than the paper's. For Pythia we stream the Pile
# (uncopyrighted subset), the data Pythia was trained on, so the bigram targets
# match the model's own training distribution. For GPT-2 we stream FineWeb's
# 10B-token sample, English web text close to both OSCAR and GPT-2's WebText.
# Both are parquet/jsonl repos that stream without loading scripts.
PILE = Corpus("monology/pile-uncopyrighted", why="the Pile is what Pythia was trained on")
FINEWEB = Corpus("HuggingFaceFW/fineweb", name="sample-10BT",
                 why="English web text, close to OSCAR (the paper) and WebText (GPT-2)")
# ``why`` is part of every cache key that covers the corpus (the bigram model, every
# mask), so its text stays as written although the module is now worlds.tiny.grammar.
GRAMMAR = Corpus("grammar", why="generated offline by bigramlab.grammar")


#: The low-memory settings of the largest profiles (Pythia 1B, GPT-2 large): fp16
#: weights too. Pythia 410m masks in the low-memory mode with its fp32 weights (the
#: straightforward step peaks at 14.0 GiB, measured: benchmarks/bench_lowmem.py).
_LOW_MEMORY = dict(weights_dtype="float16", mask_memory="low")


def _pythia(size: str, shape: Shape, default_lambda: float = 10.0, notes: str = "",
            low_memory: bool = False, **changes) -> Profile:
    return Profile(name=f"pythia-{size}", arch="gpt_neox", model_id=f"EleutherAI/pythia-{size}",
                   checkpoints=PYTHIA_CHECKPOINTS, corpus=PILE, default_lambda=default_lambda,
                   shape=shape, notes=notes, **(_LOW_MEMORY if low_memory else {}) | changes)


def _gpt2(size: str, shape: Shape, default_lambda: float = 10.0,
          low_memory: bool = False) -> Profile:
    hub = "openai-community/gpt2" + (f"-{size}" if size != "small" else "")
    name = "gpt2" + (f"-{size}" if size != "small" else "")
    return Profile(name=name, arch="gpt2", model_id=hub, checkpoints=("main",),
                   corpus=FINEWEB, default_lambda=default_lambda, shape=shape,
                   **(_LOW_MEMORY if low_memory else {}))


def _tiny(name: str, arch: str, world: TinyWorld = TinyWorld(), family: bool = False,
          ) -> Profile:
    # family: a smaller size of the tiny LM, released at its final checkpoint only, for
    # the paper's Figure 1 across model sizes (Chapter 3)
    checkpoints = tiny_checkpoints(world.train_steps)
    return Profile(
        name=name, arch=arch, model_id=None,
        checkpoints=checkpoints[-1:] if family else checkpoints,
        corpus=GRAMMAR, n_train_seqs=0, n_eval_seqs=256,  # n_train_seqs 0: all that is left
        # lambda 3: the smallest tested value (1, 2, 3, 10) with a safety margin that
        # keeps r >= 0.95 at <= 5% of the maskable weights (Chapter 3 shows the runs).
        lambdas=(0.0, 1.0, 3.0, 10.0, 100.0), default_lambda=3.0,
        # The chapters cap mask training at 600 steps to stay within their CPU budget:
        # every run they make stops early before that (Chapter 3 shows the runs).
        # T x1.02 per step: the default mask stops after about 300 steps (x1.01: about
        # 585, with r 0.972 against 0.974 and 5,782 entries kept against 6,760), which
        # halves the chapters' mask training in CI.
        mask_lr=1e-2, temp_growth=1.02, max_steps=1500, chapter_max_steps=600,
        batch_size=16, world=world, budget="tiny", weights_dtype="float64",
        notes="offline world: generated corpus, BPE tokenizer and LM trained on this machine",
    )


PROFILES: dict[str, Profile] = {p.name: p for p in [
    _tiny("tiny", "gpt_neox"),
    _tiny("tiny-gpt2", "gpt2"),
    # the tiny family (Figure 1 across sizes): the same corpus, tokenizer and recipe at
    # widths 32 and 48; maskable entries 49,152 and 110,592 against tiny's 196,608
    _tiny("tiny-d32", "gpt_neox", TinyWorld(d_model=32, d_mlp=128), family=True),
    _tiny("tiny-d48", "gpt_neox", TinyWorld(d_model=48, d_mlp=192), family=True),
    _pythia("14m", Shape(6, 128, 4, 512, 50304), notes="known to train unstable masks (paper)"),
    _pythia("70m", Shape(6, 512, 8, 2048, 50304)),
    _pythia("160m", Shape(12, 768, 12, 3072, 50304)),
    _pythia("410m", Shape(24, 1024, 16, 4096, 50304), mask_memory="low"),
    _pythia("1b", Shape(16, 2048, 8, 8192, 50304), default_lambda=100.0, low_memory=True),
    _gpt2("small", Shape(12, 768, 12, 3072, 50257)),
    _gpt2("medium", Shape(24, 1024, 16, 4096, 50257)),
    _gpt2("large", Shape(36, 1280, 20, 5120, 50257), default_lambda=100.0, low_memory=True),
]}


#: The tiny world's model sizes, smallest first (Figure 1 across sizes, Chapter 3).
TINY_FAMILY = ("tiny-d32", "tiny-d48", "tiny")

#: The budgets a real profile can run under ($BIGRAMLAB_BUDGET; default "session").
BUDGETS = ("session", "paper")
#: The session budget: what changes from the paper's so that every chapter fits a free
#: Colab T4 session (the book's appendix, "On a free Colab T4"). Sizes are caps (a smaller value set
#: on a profile stays); the schedule is the tiny world's learning rate with T x1.01 (the
#: tiny world grows T x1.02, for CI), which hardens masks within 600 steps (Chapter 3),
#: 25 times fewer than the paper's 15,000 at the paper's batch of 32.
SESSION = {
    "n_train_seqs": 50_000,     # paper: 500,000 sequences (64M tokens) to count and train on
    "n_eval_seqs": 2_000,       # paper: 10,000
    "max_steps": 1_500,         # paper: 15,000
    "chapter_max_steps": 600,   # paper: 15,000
    "mask_lr": 1e-2,            # paper: 5e-5 (AdamW on the mask logits)
    "temp_growth": 1.01,        # paper: 1.001 per step (T reaches 390 after 600 steps;
                                # the tiny world's x1.02 hardens faster, for CI's budget)
}
_CAPS = ("n_train_seqs", "n_eval_seqs", "max_steps", "chapter_max_steps")


def with_budget(profile: Profile, budget: str) -> Profile:
    """``profile`` under ``budget`` ("session" or "paper"); tiny profiles are returned
    unchanged (their budget is their own, sized for CI)."""
    if budget not in BUDGETS:
        raise ValueError(f"unknown budget {budget!r}; valid budgets: {', '.join(BUDGETS)}. "
                         "Set BIGRAMLAB_BUDGET=session (fits a free Colab T4) or "
                         "BIGRAMLAB_BUDGET=paper (the paper's full budget), or unset it.")
    if profile.is_tiny or profile.budget == budget:
        return profile
    if profile.budget == "session":  # its paper values are gone: start from the table
        raise ValueError(f"{profile.name} is already under the session budget; take the paper's "
                         f"from PROFILES[{profile.name!r}] or get_profile() with "
                         "BIGRAMLAB_BUDGET=paper")
    if budget == "paper":
        return profile.replace(budget="paper")
    changes = {k: (min(v, getattr(profile, k)) if k in _CAPS and getattr(profile, k) else v)
               for k, v in SESSION.items()}
    return profile.replace(budget="session", **changes)


def budget_name() -> str:
    """The budget real profiles get: ``$BIGRAMLAB_BUDGET``, else "session"."""
    return os.environ.get("BIGRAMLAB_BUDGET") or "session"


def get_profile(name: str | Profile | None = None) -> Profile:
    """The profile called ``name``; with no name, ``$BIGRAMLAB_PROFILE``, else
    ``pythia-70m`` when a GPU and the network are both there, else ``tiny``.
    A real profile comes under the budget ``$BIGRAMLAB_BUDGET`` names ("session",
    the default, or "paper"); a ``Profile`` passed in is returned as it is."""
    if isinstance(name, Profile):
        return name
    if name is not None and not isinstance(name, str):  # e.g. a model passed for its profile
        raise TypeError(f"expected a profile (a name such as 'tiny', or a Profile), got "
                        f"{describe(name)}: pass the profile instead; functions that take "
                        "one load its model and data themselves")
    if name is None:
        name = os.environ.get("BIGRAMLAB_PROFILE") or _auto_profile_name()
    if name not in PROFILES:
        raise UnknownProfileError(
            f"unknown profile {name!r}; valid profiles: {', '.join(PROFILES)}. "
            "Pass one of them, or set BIGRAMLAB_PROFILE.")
    return with_budget(PROFILES[name], budget_name())


def _auto_profile_name() -> str:
    if devices.default_device().type == "cuda" and devices.hub_reachable():
        return "pythia-70m"
    return "tiny"


def require_profile(profile) -> Profile:
    """``profile`` itself when it is a ``Profile``; else a TypeError naming the fix.

    ``@entry_point`` calls this; a name (or None, "look at the environment") is turned
    into a Profile once, by ``get_profile``, and never resolved again below."""
    if isinstance(profile, str) or profile is None:
        raise TypeError(f"expected a Profile, got {profile!r}: resolve a name once with "
                        f"bigramlab.get_profile({profile!r}) and pass the Profile it returns")
    if not isinstance(profile, Profile):  # e.g. a model passed for its profile
        raise TypeError(f"expected a Profile, got {describe(profile)}: pass the profile "
                        "(bigramlab.get_profile(name)) instead; functions that take one load "
                        "its model and data themselves")
    return profile


def entry_point(fn):
    """Mark ``fn`` as a function readers call with a Profile: each of its parameters
    annotated ``Profile`` is checked by ``require_profile`` when it is called (a name,
    None or a model gets a TypeError naming the fix). Code inside bigramlab that already
    holds a checked Profile calls ``fn.unchecked``, the same function without the check."""
    sig = inspect.signature(fn)
    names = [n for n, prm in sig.parameters.items() if prm.annotation in ("Profile", Profile)]

    @functools.wraps(fn)
    def checked(*args, **kwargs):
        bound = sig.bind(*args, **kwargs)
        for name in names:
            if name in bound.arguments:
                bound.arguments[name] = require_profile(bound.arguments[name])
        return fn(*bound.args, **bound.kwargs)

    checked.unchecked = fn
    return checked


def profile_table() -> list[dict]:
    """One row per profile (for the setup chapter's table)."""
    return [dict(profile=p.name, model=p.model_id or "built locally", arch=p.arch,
                 checkpoints=len(p.checkpoints), corpus=p.corpus.path,
                 default_lambda=p.default_lambda) for p in PROFILES.values()]
