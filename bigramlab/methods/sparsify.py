"""Continuous sparsification (Chang & Bergen 2025, section 3.1): which weight entries a
frozen language model needs to match a target distribution.

Every maskable matrix W (``anatomy.maskable_matrices``) gets mask logits s of its shape
(0.0, a soft mask of 0.5; -1e6 where W is exactly 0). A training step runs the model
with W * sigmoid(T * s) and lowers, with AdamW on s alone,

    target cross-entropy (nats per position) + lambda * sum(sigmoid(T * s)) / N

(N: the number of mask entries). The temperature T starts at 1 and is multiplied by
``temp_growth`` after every step, hardening the soft mask. Training stops after
``max_steps``, or once the undecided entries (0.1 < sigmoid(T * s) < 0.9) are fewer
than 1% of those above 0.9; the binary mask is s > 0. A run whose loss spikes without
recovering is retried with another data order (up to 3 attempts).

This module is the training loop and its stopping rules; the targets are in
``targets``, the masked forward in ``masks``, the settings and the result in
``sparsify_config``. A run given a ``state_dir`` resumes after a kill and ends with the
bit-identical mask. Defined in Chapter 3.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from pathlib import Path
from typing import Callable

import torch

from .precision import compute_dtype
from ..plumbing.inputs import DamagedFileError, load_torch_file
from ..plumbing.files import atomic_write
from ..plumbing.progress import progress_bar
from .anatomy import maskable_matrices
from .batching import batch_indices
from .lowmem import LowMemorySteps
from .masks import (density_penalty, flatten, masked_logits, soft_masks, soft_masks_flat,
                    unflatten)
from .sparsify_config import SparsifyConfig, SparsifyResult, check_precision, data_seed
from .subnetwork import Subnetwork
from .targets import BigramTarget, FullModelTarget, TrigramTarget, planted_toy

__all__ = ["SparsifyConfig", "SparsifyResult", "BigramTarget", "TrigramTarget", "FullModelTarget",
           "sparsify", "init_mask_logits", "soft_masks", "masked_logits", "density_penalty",
           "flatten", "unflatten", "soft_masks_flat", "make_optimizer",
           "undecided_counts", "should_stop", "snap_", "is_stable", "planted_toy"]

STATE_FILE = "sparsify_state.pt"
RESULT_FILE = "sparsify_result.pt"


# ------------------------------------------------------------ the pieces
def _mask_names(model, names):
    if names is not None:
        return list(names)
    return [m.name for m in maskable_matrices(model)]


def init_mask_logits(model, names=None, config: SparsifyConfig = SparsifyConfig()):
    """name -> mask logits on the weight's device (float64 for float64 weights, else
    float32): ``config.mask_init``
    (0.0), and ``config.zero_logit`` (-1e6) where the weight is exactly 0.
    ``names``: parameters to mask (default: ``maskable_matrices(model)``)."""
    params = dict(model.named_parameters())
    out = {}
    for name in _mask_names(model, names):
        w = params[name]
        s = torch.full(w.shape, config.mask_init, dtype=compute_dtype(w.dtype), device=w.device)
        out[name] = s.masked_fill_(w.detach() == 0, config.zero_logit)
    return out


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
MEMORY_MODES = ("default", "low")


def sparsify(model, train_ids: torch.Tensor, target: Callable, config: SparsifyConfig, *,
             names=None, state_dir=None, progress: bool = True,
             memory: str = "default") -> SparsifyResult:
    """Train a binary mask over ``model``'s maskable weights for ``target``.

    model      a GPT-NeoX / GPT-2 LM (or any module, with ``names`` given);
               frozen during the run (requires_grad is set False and restored
               after), in eval mode, its tensors never written to.
    train_ids  (n, seq) rows drawn ``config.batch_size`` at a time in a seeded
               order (``batching.batch_indices``; reshuffled every epoch);
               moved to the model's device one batch at a time. For a plain
               module, any (n, ...) input tensor.
    target     ``target(logits, input_ids, full_logits_fn) -> scalar`` (see
               ``BigramTarget``, ``TrigramTarget``, ``FullModelTarget``; the contract is
               in ``targets``).
    names      parameters to mask (default ``maskable_matrices(model)``).
    state_dir  folder for the resumable state (written atomically every
               ``save_every`` steps) and, at the end, the result: a run
               started again with the same folder resumes and gives the
               bit-identical mask; a finished one is loaded, not retrained.
               The config must match the saved one. A damaged result file
               raises ``DamagedFileError``; a damaged state file is dropped
               with a warning (the run starts over).
    memory     ``"default"`` (:class:`FlatSteps`: fastest) or ``"low"``
               (``lowmem.LowMemorySteps``: bf16 moments, blocks recomputed in the
               backward pass, micro-batches of 8; pass a bf16 model to halve the
               weights too). For models too large to mask the default way.
    Returns a ``SparsifyResult``; ``.mask`` is a ``Subnetwork``.
    """
    if memory not in MEMORY_MODES:
        raise ValueError(f"unknown memory mode {memory!r}; use one of {MEMORY_MODES}")
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

    check_precision(dict(model.named_parameters()), names, memory)  # fp16: refused, not trained
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
            saved_memory = state.get("memory", "default")
            if saved_memory != memory:
                raise ValueError(f"{state_dir} holds a run with memory={saved_memory!r}, not "
                                 f"{memory!r}: use the same mode to resume, or delete the "
                                 "folder to start over")
            attempt_log = state["attempt_log"]
        while True:
            attempt = len(attempt_log)
            logits, run = _train_attempt(model, train_ids, target, config, names, attempt,
                                         attempt_log, state, state_dir, progress, memory)
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


class FlatSteps:
    """The default training step: all mask logits in one flat tensor, whose views are
    the soft masks (``masks.soft_masks_flat``), and fused AdamW over it: the fewest
    kernels per step. (``lowmem.LowMemorySteps`` is the same step in less memory.)"""

    def __init__(self, init_logits: dict, cfg: SparsifyConfig):
        self.cfg = cfg
        self.flat, self.shapes = flatten(init_logits)
        self.n_entries = self.flat.numel()
        self.opt = make_optimizer([self.flat], cfg)

    def step(self, model, x, target, temperature: float) -> tuple[float, float]:
        """One optimizer step on batch ``x``; returns (target CE, penalty), nats."""
        soft, soft_flat = soft_masks_flat(self.flat, self.shapes, temperature)

        def full_logits_fn(x=x):
            with torch.no_grad():
                return masked_logits(model, {}, x)  # nothing masked: the full model

        ce = target(masked_logits(model, soft, x), x, full_logits_fn)
        penalty = soft_flat.sum() * (self.cfg.lam / self.flat.numel())
        (ce + penalty).backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        return ce.item(), penalty.item()

    def logits(self) -> dict:
        return {"all": self.flat.detach()}

    def kept(self) -> int:
        return int((self.flat > 0).sum())

    def state(self) -> dict:
        return {"flat": self.flat.detach(), "opt": self.opt.state_dict()}

    def load(self, state: dict) -> None:
        with torch.no_grad():
            self.flat.copy_(state["flat"])
        self.opt.load_state_dict(state["opt"])

    def final(self) -> dict:
        return unflatten(self.flat, self.shapes)


def _steps(model, names, cfg, memory: str):
    init = init_mask_logits(model, names, cfg)
    if memory == "low":
        return LowMemorySteps(init, cfg)
    return FlatSteps(init, cfg)


def _train_attempt(model, train_ids, target, cfg, names, attempt, attempt_log, state,
                   state_dir, progress, memory="default"):
    """One attempt: returns (mask logits, run record)."""
    device = next(model.parameters()).device
    steps = _steps(model, names, cfg, memory)
    run = dict(ce=[], penalty=[], kept=[], temperature=cfg.init_temp, step=0,
               early_stopped=False)
    if state is not None and not state.get("fresh", False):  # resume a killed run
        steps.load(state)
        run = state["run"]
    seed = data_seed(cfg.seed, attempt)
    bar = progress_bar(range(run["step"], cfg.max_steps), enabled=progress,
                       initial=run["step"], total=cfg.max_steps,
                       desc=f"masking (lambda {cfg.lam:g}, attempt {attempt + 1})")
    for step in bar:
        x = train_ids[batch_indices(step, cfg.batch_size, len(train_ids), seed)].to(device)
        T = run["temperature"]
        ce, penalty = steps.step(model, x, target, T)
        if cfg.logit_grid:
            snap_(steps.logits(), cfg.logit_grid)
        run["ce"].append(ce)
        run["penalty"].append(penalty)
        # the paper checks the stop with the T of this step, then grows T; unlike the
        # paper's code, T also grows on the step that stops early (T = temp_growth **
        # steps always) and that step's CE is kept in the history: the mask is the same
        stop = should_stop(steps.logits(), T, cfg)
        run["temperature"] = T * cfg.temp_growth
        run["step"] = step + 1
        if step % cfg.log_every == 0 or stop or step + 1 == cfg.max_steps:
            kept = steps.kept()
            run["kept"].append((step + 1, kept))
            bar.set_postfix(loss=f"{run['ce'][-1] + run['penalty'][-1]:.3f}",
                            kept=f"{kept / steps.n_entries:.1%}", T=f"{run['temperature']:.3g}")
        if stop:
            run["early_stopped"] = True
            break
        if state_dir is not None and (step + 1) % cfg.save_every == 0:
            _save(state_dir / STATE_FILE, dict(
                config=dataclasses.asdict(cfg), attempt_log=attempt_log, run=run,
                memory=memory, **steps.state()))
    bar.close()
    return steps.final(), run


@torch.no_grad()
def snap_(mask_logits: dict, grid: float) -> None:
    """Round every mask logit, in place, to the nearest multiple of ``grid`` (a power of
    two, so the rounding is exact). Two CPUs whose kernels sum in another order give the
    same update up to ~1e-18; rounded to the grid, both give the same logits, and the
    next step starts from the same point instead of compounding the difference."""
    for s in mask_logits.values():
        s.div_(grid).round_().mul_(grid)


def make_optimizer(mask_logits: list, cfg: SparsifyConfig) -> torch.optim.AdamW:
    """AdamW over the mask logits. The fused implementation (one kernel for all
    tensors; same update up to float rounding) where the device has one: on
    CPU it is ~8x faster than the default per-tensor loop over 19M logits."""
    fused = mask_logits[0].device.type in ("cpu", "cuda")
    return torch.optim.AdamW(mask_logits, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps,
                             weight_decay=cfg.weight_decay, fused=fused or None)


def _save(path: Path, obj) -> None:
    """torch.save, atomically: a kill never leaves half a state file."""
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


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
    name = getattr(getattr(model, "config", None), "name_or_path", None) or None
    mask = Subnetwork.from_mask_logits(logits, name)
    return SparsifyResult(
        mask=mask, mask_logits=logits, ce=list(run["ce"]), penalty=list(run["penalty"]),
        kept=[tuple(k) for k in run["kept"]], temperature=run["temperature"],
        steps=run["step"], early_stopped=run["early_stopped"], stable=stable,
        attempts=max(len(attempt_log), 1), attempt_log=list(attempt_log),
        n_entries=n_entries, config=config)
