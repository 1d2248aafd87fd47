"""The settings and the result of a mask-training run (continuous sparsification).

``SparsifyConfig``: every setting of ``sparsify.sparsify``, the paper's values as
defaults (Chang & Bergen 2025, section 3.1); each field is part of a trained mask's
cache key. ``SparsifyResult``: the mask, its logits and the run's curves (loss, kept
entries, temperature). Defined in Chapter 3.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch

from ..plumbing.inputs import check_int, check_real

__all__ = ["SparsifyConfig", "SparsifyResult", "data_seed", "check_precision"]

_LAM_WHY = "the density penalty's weight; -inf keeps every entry, inf none"


@dataclass(frozen=True)
class SparsifyConfig:
    """Every knob of mask training; defaults are the paper's values.

    lam           lambda, weight of the density penalty (paper sweeps 0..1000;
                  released masks use 10, or 100 for Pythia 1B / GPT-2 large).
                  -inf keeps everything, +inf drops everything (no training).
    lr            AdamW learning rate on the mask logits (paper 5e-5).
    temp_growth   T is multiplied by this after every optimizer step (paper 1.001).
    init_temp     T at step 0 (paper 1.0).
    mask_init     initial mask logit (paper 0.0, i.e. soft mask 0.5).
    zero_logit    initial logit where W == 0 exactly (paper -1e6: never kept).
    max_steps     optimizer steps at most (paper 15,000).
    batch_size    sequences per step (paper 32, of 128 tokens: seq_len is the
                  train tensor's second axis).
    weight_decay  AdamW's decoupled weight decay on the mask logits: it pulls s
                  towards 0 (undecided) by lr * weight_decay * s per step. 0.01,
                  PyTorch's default, which the paper's code keeps; 0.0: plain Adam.
    betas, eps    AdamW's other constants (PyTorch defaults, as in the paper).
    stop_low, stop_high, stop_share
                  early stop when #(stop_low < sigmoid(T*s) < stop_high) <
                  stop_share * #(sigmoid(T*s) > stop_high)  (paper 0.1, 0.9, 1%).
    max_attempts  attempts with a fresh data order when a run is unstable (paper 3).
    spike_window, spike_add, spike_mult, reattain_steps
                  the stability check (see ``is_stable``; paper 10, 0.25, 1.25, 100).
    seed          data-order seed; attempt k uses ``data_seed(seed, k)``.
    save_every    steps between state saves when a ``state_dir`` is given.
    log_every     steps between kept-count records (and progress-bar updates).
    logit_grid    0, or a power of two: after every optimizer step each mask logit is
                  rounded to the nearest multiple of it (not in the paper). The tiny
                  world uses 2**-24 with float64 compute: CPU kernel sets differ in
                  the last bits of a step's update (~1e-18 here), and unrounded those
                  bits compound over 600 steps until entries flip; rounded, both land on
                  the same grid point (Chapter 3; the book's appendix, "Reproducibility").
    """

    lam: float = 10.0
    lr: float = 5e-5
    temp_growth: float = 1.001
    init_temp: float = 1.0
    mask_init: float = 0.0
    zero_logit: float = -1e6
    max_steps: int = 15_000
    batch_size: int = 32
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    stop_low: float = 0.1
    stop_high: float = 0.9
    stop_share: float = 0.01
    max_attempts: int = 3
    spike_window: int = 10
    spike_add: float = 0.25
    spike_mult: float = 1.25
    reattain_steps: int = 100
    seed: int = 0
    save_every: int = 100
    log_every: int = 10
    logit_grid: float = 0.0

    def __post_init__(self):
        # Every knob checked here, where it enters: a NaN lambda or max_steps 0 would
        # otherwise train (and cache) an empty mask marked stable. Values are checked,
        # never converted: the config's fields are part of the mask cache key.
        inf, w = math.inf, "SparsifyConfig: "
        check_real("lam", self.lam, 0, inf, also=(-inf,), where=w, why=_LAM_WHY)
        check_real("lr", self.lr, 0, inf, lo_open=True, hi_open=True, where=w,
                   why="AdamW's learning rate on the mask logits; the paper uses 5e-5")
        check_real("temp_growth", self.temp_growth, 1, inf, hi_open=True, where=w,
                   why="T is multiplied by it every step: below 1 the mask softens "
                       "instead of hardening; the paper uses 1.001")
        check_real("init_temp", self.init_temp, 0, inf, lo_open=True, hi_open=True, where=w)
        for name in ("mask_init", "zero_logit"):
            check_real(name, getattr(self, name), -inf, inf, lo_open=True, hi_open=True,
                       where=w)
        check_real("weight_decay", self.weight_decay, 0, inf, hi_open=True, where=w)
        betas = self.betas if isinstance(self.betas, (tuple, list)) else ()
        if len(betas) != 2:
            raise ValueError(f"{w}betas = {self.betas!r} is not allowed: use two numbers in "
                             "[0, 1), e.g. (0.9, 0.999)")
        for i, b in enumerate(betas):
            check_real(f"betas[{i}]", b, 0, 1, hi_open=True, where=w)
        check_real("eps", self.eps, 0, inf, lo_open=True, hi_open=True, where=w)
        check_real("stop_low", self.stop_low, 0, 1, hi_open=True, where=w)
        check_real("stop_high", self.stop_high, self.stop_low, 1, lo_open=True, where=w,
                   why="it must lie above stop_low")
        check_real("stop_share", self.stop_share, 0, inf, hi_open=True, where=w,
                   why="0 never stops early")
        check_real("spike_add", self.spike_add, 0, inf, hi_open=True, where=w)
        check_real("spike_mult", self.spike_mult, 1, inf, hi_open=True, where=w)
        for name in ("max_steps", "batch_size", "max_attempts", "spike_window", "save_every",
                     "log_every"):
            check_int(name, getattr(self, name), 1, where=w)
        check_int("reattain_steps", self.reattain_steps, 0, where=w)
        check_int("seed", self.seed, 0, where=w)
        check_real("logit_grid", self.logit_grid, 0, inf, hi_open=True, where=w)
        if self.logit_grid and math.frexp(self.logit_grid)[0] != 0.5:
            # a power of two keeps the rounding exact: s / g and its product with g
            raise ValueError(f"{w}logit_grid = {self.logit_grid!r} is not allowed: use 0 "
                             "(no rounding) or a power of two, e.g. 2**-24")

    def replace(self, **changes) -> "SparsifyConfig":
        return dataclasses.replace(self, **changes)


def data_seed(seed: int, attempt: int) -> int:
    """Seed of the data order of attempt ``attempt`` (0-based) of a run seeded ``seed``."""
    return 1000 * seed + attempt


@dataclass
class SparsifyResult:
    """What a mask-training run gives.

    mask          the final binary mask s > 0: a ``Subnetwork``.
    mask_logits   name -> float32 mask logits s (CPU).
    ce, penalty   per optimizer step of the returned attempt: target CE (nats)
                  and lambda * sum(sigmoid(T*s)) / N, both measured in that
                  step's forward (before its update).
    kept          (steps done, entries with sigmoid(T*s) > 0.5, i.e. s > 0)
                  after steps 1, 1 + log_every, 1 + 2 log_every, ... and the last.
    temperature   T after the last step (= init_temp * temp_growth ** steps).
    steps         optimizer steps run in the returned attempt.
    early_stopped whether the undecided-entries criterion ended the run.
    stable        whether the CE curve passed ``is_stable``.
    attempts      attempts made (1 .. max_attempts); ``attempt_log`` has one
                  dict per attempt (seed, steps, early_stopped, stable).
    n_entries     N, the number of mask entries.
    source        "trained" (this run), or where the mask comes from when it was not
                  trained here (e.g. the authors' released mask: then the curves are
                  empty and ``steps`` is 0).
    """

    mask: object
    mask_logits: dict[str, torch.Tensor]
    ce: list[float]
    penalty: list[float]
    kept: list[tuple[int, int]]
    temperature: float
    steps: int
    early_stopped: bool
    stable: bool
    attempts: int
    attempt_log: list[dict]
    n_entries: int
    config: SparsifyConfig
    source: str = "trained"

    @property
    def kept_count(self) -> int:
        return sum(int((s > 0).sum()) for s in self.mask_logits.values())

    @property
    def kept_share(self) -> float:
        return self.kept_count / max(self.n_entries, 1)

    @property
    def loss(self) -> list[float]:
        """Total loss per step (CE + penalty), nats."""
        return [c + p for c, p in zip(self.ce, self.penalty)]


def check_precision(params: dict, names, memory: str) -> None:
    """Refuse to train the default way (``FlatSteps``: the step runs in the weights'
    dtype, with no loss scaling) on half-precision weights, whose mask gradients
    underflow: one line naming the fixes. ``params``: the model's named parameters."""
    half = sorted({str(params[n].dtype) for n in names
                   if params[n].dtype in (torch.float16, torch.bfloat16)})
    if memory == "default" and half:
        raise TypeError(f"sparsify(memory='default') would train the mask in {', '.join(half)} "
                        "without loss scaling (its gradients underflow): load the weights in "
                        "float32 (load_model(profile) does whenever the profile's weights_dtype "
                        "is float32, or model.float()), or pass memory='low', which computes in "
                        "float32 one block at a time")
