"""Nothing long starts silently: a measured estimate before a mask is trained.

Before a real profile's mask training (an hour or more on a free GPU at the
paper's budget), :func:`announce_training` times a few optimizer steps of the
very run that is about to start, on the device it will use, and, when the
whole run would take longer than a minute, prints what is about to happen,
how long it will take, where its state is saved, and the cheaper alternative.
The tiny world's runs (about a minute each, the chapters' budget) are not
announced. :func:`mask_step_cost` says, from a real profile's config alone,
what one step costs (FLOPs, a lower bound on GPU memory, seconds on a free
T4) for the tables of the book's appendix and setup page. Defined in Chapter 3.
"""

from __future__ import annotations

import time

import torch

from ..methods.anatomy import count_maskable
from ..methods.sparsify import sparsify
from ..methods.sparsify_config import SparsifyConfig
from ..plumbing.devices import default_device, describe_device
from ..plumbing.profiles import PROFILES, Profile, entry_point, get_profile, with_budget
from ..worlds.models import make_meta_model

__all__ = ["announce_training", "estimate_seconds", "mask_step_cost", "require_fits",
           "chapter_plan", "chapter_masks", "chapter_seconds", "CHAPTER_MASKS", "TARGETS",
           "PROBE_STEPS", "NOTICE_SECONDS", "T4"]

PROBE_STEPS = 3        # timed steps, after one untimed step (one-time setup, CUDA warm-up)
NOTICE_SECONDS = 60.0  # runs estimated above this are announced


def estimate_seconds(model, train_ids: torch.Tensor, target, config: SparsifyConfig,
                     probe_steps: int = PROBE_STEPS, names=None) -> tuple[float, float]:
    """(seconds per optimizer step, seconds for the whole run of ``config.max_steps``),
    measured: a run of 1 step and one of ``1 + probe_steps`` steps, the difference
    divided by ``probe_steps`` (so setup and warm-up are left out). Nothing is saved.
    ``names``: the matrices to mask, as for ``sparsify`` (default: every maskable one)."""
    probe = config.replace(max_attempts=1, log_every=1)
    seconds = []
    for steps in (1, 1 + probe_steps):
        sync(model)
        t = time.perf_counter()
        sparsify(model, train_ids, target, probe.replace(max_steps=steps), names=names,
                 progress=False)
        sync(model)
        seconds.append(time.perf_counter() - t)
    per_step = max(seconds[1] - seconds[0], 0.0) / probe_steps
    return per_step, per_step * config.max_steps


def sync(model) -> None:
    """Wait for the model's device, so a timer measures finished work."""
    device = next(model.parameters()).device
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def human(seconds: float) -> str:
    """'45 s', '12 min', '2.5 h'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def announce_training(model, train_ids: torch.Tensor, target, config: SparsifyConfig, *,
                      what: str, cheaper: str, folder=None, names=None) -> float:
    """Print a plan line for a mask training that will take over ``NOTICE_SECONDS``;
    returns the estimate (seconds). ``what`` names the run, ``cheaper`` the alternative,
    ``folder`` where its state is saved (a resumed run continues from there)."""
    per_step, total = estimate_seconds(model, train_ids, target, config, names=names)
    if total > NOTICE_SECONDS:
        device = describe_device(next(model.parameters()).device)
        saved = (f" Its state is saved every {config.save_every} steps in {folder}: a run "
                 "started again (after a disconnect) resumes there." if folder else "")
        print(f"bigramlab: about to train {what}: up to {config.max_steps:,} steps of "
              f"{config.batch_size} x {train_ids.shape[1]} tokens, about {human(total)} on "
              f"{device} (measured: {per_step:.3g} s per step).{saved} Cheaper: {cheaper}",
              flush=True)
    return total


# -- what a free Colab T4 can do, from the model configs (not measured) ----------------

#: A free Colab T4: usable GPU memory, fp32 peak, and the share of it assumed reached.
T4 = {"name": "Tesla T4", "usable_gib": 14.7, "fp32_tflops": 8.1, "utilisation": 0.5}


_BYTES = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2}
#: Bytes per mask entry held through a step: logit and gradient in fp32, AdamW's two
#: moments in fp32 (default) or bf16 (``memory="low"``, methods.lowmem).
_ENTRY_BYTES = {"default": 16, "low": 12}
LOW_MEMORY_MICRO_BATCH = 8  # methods.lowmem.LowMemorySteps' default


#: The targets a mask is trained to (``train_subnetwork(..., target=)``).
TARGETS = ("bigram", "trigram", "full")


@entry_point
def mask_step_cost(profile: Profile, target: str = "bigram") -> dict:
    """What one mask-training step of ``profile``'s model costs, from its config.

    ``tflop``: forward and backward (3 x 2 FLOPs per weight per token) through the
    maskable matrices and the unembedding, plus the attention scores, for one
    batch of ``batch_size x seq_len`` tokens (the low-memory mode recomputes each
    block's forward once more: x 4/3 on the blocks). ``target="full"`` (the optimal
    subnetwork, ``methods.targets.FullModelTarget``) runs one more forward of the
    unmasked model each step for its soft target: one more pass through the blocks
    and the unembedding (about +1/3). ``min_gib``: a lower bound on
    GPU memory: the weights (in ``weights_dtype``), the bytes per mask entry held
    through a step (logit, gradient, two AdamW moments: 16, or 12 with bf16 moments
    in the low-memory mode) and the logits of a batch (of a micro-batch in the
    low-memory mode) twice, three times for the full target (its softmax is held
    beside them); the masked copies of the matrices and the activations
    come on top (``benchmarks/bench_lowmem.py`` measures the whole peak).
    ``t4_s``: seconds per step on a T4 at ``T4["utilisation"]`` of its fp32 peak (an
    assumption until measured)."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}: valid targets: {', '.join(TARGETS)}")
    full = target == "full"
    s, meta = profile.shape, make_meta_model.unchecked(profile)
    tokens = profile.batch_size * profile.seq_len
    blocks = 2 * count_maskable(meta) + 2 * 2 * s.n_layer * profile.seq_len * s.d_model  # QK^T, AV
    passes = (4 if profile.mask_memory == "low" else 3) + full  # + the unmasked forward
    per_token = passes * blocks + (3 + full) * 2 * s.d_model * s.vocab_size
    tflop = tokens * per_token / 1e12
    weights = sum(x.numel() for x in meta.parameters())
    logit_rows = (min(profile.batch_size, LOW_MEMORY_MICRO_BATCH) if profile.mask_memory == "low"
                  else profile.batch_size) * profile.seq_len
    min_bytes = (_BYTES[profile.weights_dtype] * weights + _ENTRY_BYTES[profile.mask_memory]
                 * count_maskable(meta) + (2 + full) * 4 * logit_rows * s.vocab_size)
    t4_s = tflop / (T4["fp32_tflops"] * T4["utilisation"])
    return {"tflop": tflop, "min_gib": min_bytes / 2**30, "t4_s": t4_s,
            "fits_t4": min_bytes / 2**30 < T4["usable_gib"]}


class TooLargeForDevice(RuntimeError):
    """Raised before a mask training that cannot fit the GPU it would run on."""


def gpu_total_gib(device: torch.device) -> float | None:
    """Total memory of a CUDA ``device`` in GiB (None on any other device)."""
    if device.type != "cuda":
        return None
    return torch.cuda.get_device_properties(device).total_memory / 2**30


@entry_point
def require_fits(profile: Profile, device: torch.device) -> None:
    """Refuse, before anything is trained, a real profile's mask training whose lower
    bound on GPU memory (``mask_step_cost``) exceeds the GPU's total memory; the
    message names the profiles that fit. CPUs and tiny profiles always pass."""
    total = gpu_total_gib(device)
    if profile.is_tiny or total is None:
        return
    need = mask_step_cost.unchecked(profile)["min_gib"]
    if need > total:
        fit = [q.name for q in PROFILES.values() if q.shape and q.arch == profile.arch
               and mask_step_cost.unchecked(q)["min_gib"] <= total]
        raise TooLargeForDevice(
            f"masking {profile.name} needs at least {need:.1f} GiB of GPU memory "
            f"({profile.weights_dtype} weights and AdamW on the mask logits, computed from its "
            f"config), and this GPU has {total:.1f} GiB: use a profile that fits ({', '.join(fit) or 'none'}) with "
            "BIGRAMLAB_PROFILE, a larger GPU, or the authors' released masks "
            "(bigramlab.worlds.hub.load_released_subnetwork), which load without training.")


#: Masks each chapter trains on a real profile, per budget: (target, how many), each up to
#: the budget's ``chapter_max_steps``, on the chapter's own model (``chapter_masks``
#: resolves it). A mask two chapters share (same model, target, lambda and steps: one
#: cache key) is counted where it is trained first. Chapter 3: its main mask and the sweep
#: of five lambdas (under the session budget the sweep takes the authors' released masks
#: at lambda 1 and 10); Chapter 4 reuses Chapter 3's mask beside the released one;
#: Chapter 5 four more checkpoints, appendix A.4's spliced model, and its
#: per-checkpoint sweep (lambdas 1 and 100 at the two later checkpoints, and at the
#: final one lambda 1, which the session budget's Chapter 3 took from the authors);
#: Chapter 8 three optimal subnetworks (full-model target, lambdas 10, 50, 100) on
#: Pythia 160M whatever the profile; Chapter 9 the trigram subnetwork and the optimal one
#: at the paper's lambda for the model (on Pythia 160M that is Chapter 8's lambda-10 mask,
#: reused). Chapters 0-2, 6 and 7 train none.
CHAPTER_MASKS = {
    "session": {3: (("bigram", 4),), 5: (("bigram", 10),), 8: (("full", 3),),
                9: (("trigram", 1), ("full", 1))},
    "paper": {3: (("bigram", 5),), 5: (("bigram", 9),), 8: (("full", 3),),
              9: (("trigram", 1), ("full", 1))},
}
#: Chapter 8 studies one of the paper's cases on every real profile.
CH08_MODEL = "pythia-160m"


@entry_point
def chapter_masks(profile: Profile, chapter: int) -> list[tuple[Profile, str, int]]:
    """The masks Chapter ``chapter`` trains when run with the real ``profile``:
    ``(profile trained on, target, how many)``, empty when it trains none. Chapter 8
    trains on Pythia 160M (under ``profile``'s budget); Chapter 9 reuses Chapter 8's
    optimal mask only on Pythia 160M; Chapter 5 trains none on a model without
    checkpoints (GPT-2)."""
    model = with_budget(PROFILES[CH08_MODEL], profile.budget) if chapter == 8 else profile
    out = []
    for target, n in CHAPTER_MASKS[profile.budget].get(chapter, ()):
        if chapter == 5 and len(profile.checkpoints) == 1:
            continue
        if chapter == 9 and target == "full" and profile.name == CH08_MODEL:
            continue  # Chapter 8's lambda-10 optimal mask, from the cache
        out.append((model, target, n))
    return out


@entry_point
def chapter_seconds(profile: Profile, chapter: int) -> float:
    """Seconds on a free T4 (``mask_step_cost``) for the masks Chapter ``chapter``
    trains with ``profile``, each run to its ``chapter_max_steps``."""
    return sum(mask_step_cost.unchecked(q, target)["t4_s"] * q.chapter_max_steps * n
               for q, target, n in chapter_masks.unchecked(profile, chapter))


LABEL = {"bigram": "bigram", "trigram": "trigram", "full": "optimal (full-model target)"}


@entry_point
def chapter_plan(profile: Profile, chapter: int, device: torch.device | None = None) -> Profile:
    """Say what Chapter ``chapter`` costs on a free T4 for a real ``profile`` (computed
    from its config) and return the profile to run it with: ``profile`` itself, or,
    when the chapter trains masks and ``device`` is a GPU too small for them, the tiny
    profile, with a note saying so. Tiny profiles: returned as they are, silently."""
    if profile.is_tiny:
        return profile
    device = device or default_device()
    trained = chapter_masks.unchecked(profile, chapter)
    masks = sum(n for _, _, n in trained)
    if masks == 0:
        weights = (sum(x.numel() for x in make_meta_model.unchecked(profile).parameters())
                   * _BYTES[profile.weights_dtype] / 2**30)
        print(f"Chapter {chapter} trains no masks; {profile.name}'s {profile.weights_dtype} "
              f"weights take {weights:.1f} GiB of GPU memory.")
        return profile
    kinds = ", ".join(f"{n} {LABEL[t]}" for _, t, n in trained)
    need = max(mask_step_cost.unchecked(q, t)["min_gib"] for q, t, _ in trained)
    names = sorted({q.name for q, _, _ in trained})
    on = "" if names == [profile.name] else f", trained on {', '.join(names)}"
    print(f"Chapter {chapter} on {profile.name} ({profile.budget} budget): {masks} "
          f"mask{'s' * (masks > 1)} of up to {trained[0][0].chapter_max_steps:,} steps "
          f"({kinds}{on}), about {human(chapter_seconds.unchecked(profile, chapter))} on a free "
          f"T4 and at least {need:.1f} GiB of GPU memory (computed from the model's config; each "
          "training prints a measured estimate first).")
    total = gpu_total_gib(device)
    if total is not None and need > total:
        print(f"NOTE: this GPU has {total:.1f} GiB, too little to mask {profile.name}: this "
              "chapter runs in the tiny profile instead. For a real model that fits, set "
              "BIGRAMLAB_PROFILE=pythia-410m (or smaller) and restart.")
        return get_profile("tiny")
    return profile
