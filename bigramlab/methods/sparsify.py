"""Continuous sparsification: learn which weight entries a frozen LM needs for a target.

This is section 2 of the method (Chang & Bergen 2025, after Savarese et al.
2020 and NeuroSurgeon's continuous-sparsification layers):

* The language model is frozen. Every maskable weight matrix W (see
  ``anatomy.maskable_matrices``) gets a float32 mask-logit tensor s of the
  same shape, on W's device: 0.0 (soft mask 0.5), and -1e6 where W is exactly 0.
* The training forward uses W * sigmoid(T * s). The masked weights are built
  inside the forward graph and handed to ``torch.func.functional_call``: the
  model's own tensors are never written to and never copied per step.
  During training all logits live in one flat tensor (``flatten``) whose
  per-matrix views are the masks: a handful of kernels per step, not a dozen
  per matrix.
* Loss = target cross-entropy (nats, mean over positions)
         + lambda * sum(sigmoid(T * s)) / N,  N = number of mask entries.
* AdamW on the mask logits only (weight decay 0.01: PyTorch's default, which
  the paper's code used); T starts at 1 and is multiplied by
  ``temp_growth`` after every optimizer step, hardening the soft mask.
* Stop after ``max_steps``, or early once the undecided entries
  (0.1 < sigmoid(T * s) < 0.9) are fewer than 1% of the entries above 0.9.
* The final binary mask is s > 0. A run whose loss spikes without recovering
  is retried with another data order (up to 3 attempts).

Two details differ from the paper's code, neither touching the mask: T also
grows on the step that stops early (so T = temp_growth ** steps always), and
that step's CE is kept in the history. The stop itself is checked, as there,
with the T that step used.

Targets are pluggable, see :class:`BigramTarget` (the bigram subnetwork),
:class:`FullModelTarget` (the "optimal" subnetwork: the full model's own
distribution) and the contract in :func:`sparsify`.

Everything runs on the model's device; CPU runs are deterministic (same seed,
same data -> same mask), and a run that saves its state into ``state_dir``
resumes after a kill and ends with the bit-identical mask.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch.func import functional_call

from .inputs import DamagedFileError, check_int, check_real, load_torch_file
from .progress import progress_bar

__all__ = ["SparsifyConfig", "SparsifyResult", "BigramTarget", "FullModelTarget", "sparsify",
           "init_mask_logits", "soft_masks", "masked_logits", "density_penalty", "flatten",
           "unflatten", "soft_masks_flat", "make_optimizer",
           "undecided_counts", "should_stop", "is_stable", "planted_toy"]

STATE_FILE = "sparsify_state.pt"
RESULT_FILE = "sparsify_result.pt"
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
    weight_decay  AdamW's decoupled weight decay on the mask logits. The
                  paper's code builds ``torch.optim.AdamW(params, lr=lr)``,
                  i.e. PyTorch's defaults: weight_decay 0.01, betas
                  (0.9, 0.999), eps 1e-8; so 0.01 is the default here. Its
                  pull of s towards 0 (undecided) is lr * 0.01 * s per step:
                  negligible at lr 5e-5, about 1e-4 * s per step at the tiny
                  profile's lr 1e-2. Set 0.0 for a pure Adam update.
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

    @classmethod
    def from_profile(cls, profile, lam: float | None = None, **changes) -> "SparsifyConfig":
        """The profile's mask-training choices (lr, temp_growth, max_steps,
        batch_size; lambda = ``lam`` or the profile's default_lambda), plus ``changes``."""
        from .profiles import get_profile

        p = get_profile(profile)
        settings = [f.name for f in dataclasses.fields(cls) if f.name != "lam"]
        unknown = [k for k in changes if k not in settings + ["lam"]]
        if unknown:
            raise TypeError(f"unknown mask-training setting {unknown[0]!r}: use one of "
                            f"{', '.join(settings)} (and lam for lambda)")
        if lam is not None:  # float() of a string or a NaN would slip through silently
            check_real("lam", lam, 0, math.inf, also=(-math.inf,), where="SparsifyConfig: ",
                       why=_LAM_WHY)
        return cls(**dict(lam=p.default_lambda if lam is None else float(lam), lr=p.mask_lr,
                          temp_growth=p.temp_growth, max_steps=p.max_steps,
                          batch_size=p.batch_size) | changes)

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


# ------------------------------------------------------------------ targets
# Contract: target(logits, input_ids, full_logits_fn) -> scalar loss tensor.
#   logits          the masked model's output, (batch, seq, vocab), differentiable.
#   input_ids       the batch, (batch, seq), on the model's device.
#   full_logits_fn  a zero-argument callable returning the UNMASKED model's
#                   logits for the same batch under no_grad (computed only
#                   when called, so targets that do not need it pay nothing).
# The loss is what the mask is trained to minimize, in nats, averaged over
# positions; the density penalty is added by sparsify.

class BigramTarget:
    """CE from the bigram distribution of the current token to the masked model,
    via the sparse ``BigramModel.cross_entropy`` (no dense target is built).
    Every position is scored, the last one included (as the paper does)."""

    def __init__(self, bigram):
        self.bigram = bigram

    def __call__(self, logits, input_ids, full_logits_fn=None):
        dev = self.bigram.device
        return self.bigram.cross_entropy(logits.to(dev), input_ids.to(dev))


class FullModelTarget:
    """Soft-target CE against the full (unmasked) model's own next-token
    distribution: the "optimal" / distillation subnetwork. CE(p, q) =
    -sum_b p(b) log q(b), p = softmax(full logits) under no_grad, mean over
    positions, nats. At the full mask it equals the model's own entropy.
    Memory: two dense (batch, seq, vocab) float32 blocks."""

    def __call__(self, logits, input_ids, full_logits_fn):
        with torch.no_grad():
            p = torch.softmax(full_logits_fn().float(), dim=-1)
        return -(p * torch.log_softmax(logits.float(), dim=-1)).sum(-1).mean()


# ------------------------------------------------------------ the pieces
def _mask_names(model, names):
    if names is not None:
        return list(names)
    from .anatomy import maskable_matrices
    return [m.name for m in maskable_matrices(model)]


def init_mask_logits(model, names=None, config: SparsifyConfig = SparsifyConfig()):
    """name -> float32 mask logits on the weight's device: ``config.mask_init``
    (0.0), and ``config.zero_logit`` (-1e6) where the weight is exactly 0.
    ``names``: parameters to mask (default: ``maskable_matrices(model)``)."""
    params = dict(model.named_parameters())
    out = {}
    for name in _mask_names(model, names):
        w = params[name]
        s = torch.full(w.shape, config.mask_init, dtype=torch.float32, device=w.device)
        out[name] = s.masked_fill_(w.detach() == 0, config.zero_logit)
    return out


def soft_masks(mask_logits, temperature: float):
    """name -> sigmoid(T * s), the soft mask (float32, differentiable in s)."""
    # in place on the fresh product: one temporary per matrix, not two (on CPU
    # every large temporary costs page faults; multiplying by a Python float
    # saves nothing for backward, so the in-place sigmoid is safe)
    return {n: (s * temperature).sigmoid_() for n, s in mask_logits.items()}


def flatten(mask_logits):
    """All mask logits as ONE flat float32 leaf tensor (requires grad) plus
    name -> shape. Training works on this: one sigmoid, one penalty sum, one
    gradient concat and one AdamW tensor for all matrices, instead of ~12
    small kernels per matrix (that launch overhead was 37% of a tiny model's
    step on a GPU)."""
    shapes = {n: s.shape for n, s in mask_logits.items()}
    flat = torch.cat([s.detach().reshape(-1).float() for s in mask_logits.values()])
    return flat.requires_grad_(True), shapes


def unflatten(flat, shapes):
    """name -> mask logits (detached CPU copies) from a flat tensor."""
    parts = flat.detach().cpu().split([math.prod(s) for s in shapes.values()])
    return {n: p.reshape(shape).clone() for (n, shape), p in zip(shapes.items(), parts)}


def soft_masks_flat(flat, shapes, temperature: float):
    """(name -> soft-mask view, flat soft mask) = sigmoid(T * flat), split by matrix.
    The views share one graph node, so their gradients are gathered by a
    single concatenation in the backward."""
    soft_flat = (flat * temperature).sigmoid_()
    parts = soft_flat.split([math.prod(s) for s in shapes.values()])
    return {n: p.view(shape) for (n, shape), p in zip(shapes.items(), parts)}, soft_flat


def density_penalty(soft, lam: float) -> torch.Tensor:
    """lambda * sum(soft mask) / N: the density penalty (0 when lambda is 0)."""
    n = sum(m.numel() for m in soft.values())
    return sum(m.sum() for m in soft.values()) * (lam / n)


def _call(model, params, input_ids):
    out = functional_call(model, params, (input_ids,))
    return out.logits if hasattr(out, "logits") else out


def masked_logits(model, soft, input_ids):
    """The model's output with every masked weight W replaced by W * soft[name].

    The products live only in this forward graph (``functional_call`` swaps
    them in for the call), so the model's tensors are never edited or copied;
    gradients reach ``soft`` (hence the mask logits) and nothing else when
    the model is frozen."""
    params = dict(model.named_parameters())
    # cast back: a bf16/fp16 model keeps its dtype (the mask itself is float32)
    masked = {n: params[n] * m.to(params[n].dtype) for n, m in soft.items()}
    return _call(model, masked, input_ids)


@torch.no_grad()
def undecided_counts(mask_logits, temperature: float, config: SparsifyConfig = SparsifyConfig()):
    """(undecided, above, below): entries with stop_low < sigmoid(T*s) < stop_high,
    above stop_high and below stop_low."""
    above = below = total = 0
    for s in mask_logits.values():
        m = torch.sigmoid(temperature * s)
        above += int((m > config.stop_high).sum())
        below += int((m < config.stop_low).sum())
        total += m.numel()
    return total - above - below, above, below


def should_stop(mask_logits, temperature: float, config: SparsifyConfig = SparsifyConfig()):
    """The paper's early stop: undecided < stop_share * above. Relative to the
    kept part, so a small subnetwork tolerates fewer undecided entries. (A mask
    heading to empty, above = 0, never stops early: as in the paper's code.)"""
    undecided, above, _ = undecided_counts(mask_logits, temperature, config)
    return undecided < config.stop_share * above


def is_stable(losses, config: SparsifyConfig = SparsifyConfig()) -> bool:
    """The paper's stability check (``check_loss_stability``) on a CE curve.

    A spike is a loss above the mean of the previous ``spike_window`` losses
    (including earlier spikes) by more than ``spike_add`` or by more than a
    factor ``spike_mult``. The run is unstable when a spike is not followed by
    a loss <= that mean at some step before the last ``reattain_steps`` steps
    (a spike inside the last ``reattain_steps`` steps is unstable outright)."""
    losses = [float(x) for x in losses]
    n, k = len(losses), config.reattain_steps
    prev = losses[:1]
    for i in range(1, n):
        mean = sum(prev) / len(prev)
        loss = losses[i]
        if loss > mean + config.spike_add or loss > mean * config.spike_mult:
            if i >= n - k or min(losses[i:n - k]) > mean:
                return False
        prev.append(loss)
        if len(prev) > config.spike_window:
            prev.pop(0)
    return True


# ------------------------------------------------------------ training
def sparsify(model, train_ids: torch.Tensor, target: Callable, config: SparsifyConfig, *,
             names=None, state_dir=None, progress: bool = True) -> SparsifyResult:
    """Train a binary mask over ``model``'s maskable weights for ``target``.

    model      a GPT-NeoX / GPT-2 LM (or any module, with ``names`` given);
               frozen during the run (requires_grad is set False and restored
               after), in eval mode, its tensors never written to.
    train_ids  (n, seq) rows drawn ``config.batch_size`` at a time in a seeded
               order (``pretrain.batch_indices``; reshuffled every epoch);
               moved to the model's device one batch at a time. For a plain
               module, any (n, ...) input tensor.
    target     ``target(logits, input_ids, full_logits_fn) -> scalar`` (see
               ``BigramTarget``, ``FullModelTarget``; contract above them).
    names      parameters to mask (default ``maskable_matrices(model)``).
    state_dir  folder for the resumable state (written atomically every
               ``save_every`` steps) and, at the end, the result: a run
               started again with the same folder resumes and gives the
               bit-identical mask; a finished one is loaded, not retrained.
               The config must match the saved one. A damaged result file
               raises ``DamagedFileError``; a damaged state file is dropped
               with a warning (the run starts over).
    Returns a ``SparsifyResult``; ``.mask`` is a ``Subnetwork``.
    """
    names = _mask_names(model, names)
    device = next(model.parameters()).device
    state_dir = Path(state_dir) if state_dir is not None else None
    n_entries = sum(dict(model.named_parameters())[n].numel() for n in names)

    if math.isinf(config.lam):  # the sweep's endpoints: nothing to train
        # symbolic logits: +1e6 keeps every entry (W == 0 ones too, as the paper's
        # code does), -1e6 drops every entry
        keep = config.lam < 0
        logits = {n: torch.full(s.shape, 1e6 if keep else -1e6)
                  for n, s in init_mask_logits(model, names, config).items()}
        run = dict(ce=[], penalty=[], kept=[(0, n_entries if keep else 0)],
                   temperature=config.init_temp, step=0, early_stopped=False)
        return _result(model, logits, run, True, [], n_entries, config)

    if state_dir is not None and (state_dir / RESULT_FILE).exists():
        saved = load_torch_file(state_dir / RESULT_FILE)  # DamagedFileError when unreadable
        _check_config(saved["config"], config, state_dir)
        return _result(model, saved["mask_logits"], saved["run"], saved["stable"],
                       saved["attempt_log"], n_entries, config)

    if len(train_ids) < config.batch_size:
        raise ValueError(f"{len(train_ids)} training rows, fewer than one batch of "
                         f"{config.batch_size}")
    frozen = {p: p.requires_grad for p in model.parameters()}
    was_training = model.training
    for p in model.parameters():
        p.requires_grad_(False)
    model.eval()  # no dropout: the run must be deterministic
    try:
        attempt_log, state = [], None
        if state_dir is not None and (state_dir / STATE_FILE).exists():
            state = _load_state(state_dir / STATE_FILE, device)
        if state is not None:
            _check_config(state["config"], config, state_dir)
            attempt_log = state["attempt_log"]
        while True:
            attempt = len(attempt_log)
            logits, run = _train_attempt(model, train_ids, target, config, names, attempt,
                                         attempt_log, state, state_dir, progress)
            state = None
            stable = is_stable(run["ce"], config)
            attempt_log = attempt_log + [dict(seed=data_seed(config.seed, attempt),
                                              steps=run["step"], stable=stable,
                                              early_stopped=run["early_stopped"])]
            if stable or len(attempt_log) >= config.max_attempts:
                break
            if state_dir is not None:  # the next attempt starts from scratch
                _save(state_dir / STATE_FILE, dict(config=dataclasses.asdict(config),
                                                   attempt_log=attempt_log, fresh=True))
        if not stable:
            warnings.warn(f"mask training stayed unstable after {len(attempt_log)} attempts; "
                          "returning the last one (the paper does the same)")
        if state_dir is not None:
            _save(state_dir / RESULT_FILE, dict(config=dataclasses.asdict(config),
                                                mask_logits=logits, run=run, stable=stable,
                                                attempt_log=attempt_log))
            (state_dir / STATE_FILE).unlink(missing_ok=True)
        return _result(model, logits, run, stable, attempt_log, n_entries, config)
    finally:
        for p, flag in frozen.items():
            p.requires_grad_(flag)
        model.train(was_training)


def _train_attempt(model, train_ids, target, cfg, names, attempt, attempt_log, state,
                   state_dir, progress):
    """One attempt: returns (mask logits, run record)."""
    from .pretrain import batch_indices

    device = next(model.parameters()).device
    flat, shapes = flatten(init_mask_logits(model, names, cfg))
    opt = make_optimizer([flat], cfg)
    run = dict(ce=[], penalty=[], kept=[], temperature=cfg.init_temp, step=0,
               early_stopped=False)
    if state is not None and not state.get("fresh", False):  # resume a killed run
        with torch.no_grad():
            flat.copy_(state["flat"])
        opt.load_state_dict(state["opt"])
        run = state["run"]
    seed = data_seed(cfg.seed, attempt)
    bar = progress_bar(range(run["step"], cfg.max_steps), enabled=progress,
                       initial=run["step"], total=cfg.max_steps,
                       desc=f"masking (lambda {cfg.lam:g}, attempt {attempt + 1})")
    for step in bar:
        x = train_ids[batch_indices(step, cfg.batch_size, len(train_ids), seed)].to(device)
        T = run["temperature"]
        soft, soft_flat = soft_masks_flat(flat, shapes, T)

        def full_logits_fn(x=x):
            with torch.no_grad():
                return _call(model, {}, x)

        ce = target(masked_logits(model, soft, x), x, full_logits_fn)
        penalty = soft_flat.sum() * (cfg.lam / flat.numel())
        (ce + penalty).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        run["ce"].append(ce.item())
        run["penalty"].append(penalty.item())
        # the paper checks the stop with the T of this step, then grows T
        stop = should_stop({"all": flat.detach()}, T, cfg)
        run["temperature"] = T * cfg.temp_growth
        run["step"] = step + 1
        if step % cfg.log_every == 0 or stop or step + 1 == cfg.max_steps:
            kept = int((flat > 0).sum())
            run["kept"].append((step + 1, kept))
            bar.set_postfix(loss=f"{run['ce'][-1] + run['penalty'][-1]:.3f}",
                            kept=f"{kept / flat.numel():.1%}", T=f"{run['temperature']:.3g}")
        if stop:
            run["early_stopped"] = True
            break
        if state_dir is not None and (step + 1) % cfg.save_every == 0:
            _save(state_dir / STATE_FILE, dict(
                config=dataclasses.asdict(cfg), attempt_log=attempt_log, run=run,
                flat=flat.detach(), opt=opt.state_dict()))
    bar.close()
    return unflatten(flat, shapes), run


def make_optimizer(mask_logits: list, cfg: SparsifyConfig) -> torch.optim.AdamW:
    """AdamW over the mask logits. The fused implementation (one kernel for all
    tensors; same update up to float rounding) where the device has one: on
    CPU it is ~8x faster than the default per-tensor loop over 19M logits."""
    fused = mask_logits[0].device.type in ("cpu", "cuda")
    return torch.optim.AdamW(mask_logits, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps,
                             weight_decay=cfg.weight_decay, fused=fused or None)


def _save(path: Path, obj) -> None:
    """torch.save to a temporary file, then rename: a kill never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def _load_state(path: Path, device):
    """The resumable state saved at ``path``; None (with a warning) when it is damaged:
    the run then starts over, which gives the same mask (training is deterministic)."""
    try:
        return load_torch_file(path, map_location=device)
    except DamagedFileError as e:
        warnings.warn(f"{e.path} is damaged; ignoring it and starting this run over")
        path.unlink()
        return None


def _check_config(saved: dict, config: SparsifyConfig, state_dir) -> None:
    now = dataclasses.asdict(config)
    saved = {k: tuple(v) if isinstance(v, list) else v for k, v in saved.items()}
    diff = [k for k in now if saved.get(k) != now[k]]
    if diff:
        raise ValueError(f"{state_dir} holds a run with another config ({', '.join(diff)} "
                         "differ): use a fresh folder, or delete it to start over")


def _result(model, logits, run, stable, attempt_log, n_entries, config) -> SparsifyResult:
    try:
        from .subnetwork import Subnetwork
        name = getattr(getattr(model, "config", None), "name_or_path", None) or None
        mask = Subnetwork.from_mask_logits(logits, name)
    except ImportError:  # pragma: no cover - before subnetwork.py existed
        mask = {n: s > 0 for n, s in logits.items()}
    return SparsifyResult(
        mask=mask, mask_logits=logits, ce=list(run["ce"]), penalty=list(run["penalty"]),
        kept=[tuple(k) for k in run["kept"]], temperature=run["temperature"],
        steps=run["step"], early_stopped=run["early_stopped"], stable=stable,
        attempts=max(len(attempt_log), 1), attempt_log=list(attempt_log),
        n_entries=n_entries, config=config)


# ------------------------------------------------------------ a planted toy
def planted_toy(d_in: int = 24, d_out: int = 12, density: float = 0.3, n: int = 2048,
                seed: int = 0):
    """A toy with a known answer (Chapter 3): a bias-free linear layer W
    (d_out x d_in) and a teacher that uses only the planted entries M of W.

    Returns ``(model, inputs, planted, target)``: ``inputs`` is (n, d_in)
    Gaussian; ``target`` is the soft-target CE against softmax(x (W*M)^T), so
    the best mask is M (any other mask changes the output distribution)."""
    g = torch.Generator().manual_seed(seed)
    model = torch.nn.Linear(d_in, d_out, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.randn(d_out, d_in, generator=g))
    planted = torch.rand(d_out, d_in, generator=g) < density
    teacher = model.weight.detach() * planted
    inputs = torch.randn(n, d_in, generator=g)

    def target(logits, x, full_logits_fn=None):
        p = torch.softmax(x @ teacher.to(x.device).T, dim=-1)
        return -(p * torch.log_softmax(logits, dim=-1)).sum(-1).mean()

    return model, inputs, {"weight": planted}, target
