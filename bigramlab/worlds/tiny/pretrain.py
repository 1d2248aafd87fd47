"""Pretraining a small causal LM from scratch, saving Pythia-style checkpoints.

Used by the tiny world (Defined in Chapter 0). Deterministic: the batch order
is a seeded permutation (``methods.batching.batch_indices``, shared with mask
training), the models have no dropout, and every piece of state that the
next step depends on (weights, AdamW moments, step) is saved with each
checkpoint, so a killed run resumes and ends bit-identical to an unbroken one.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from ...methods.batching import batch_indices
from ...plumbing.files import atomic_write
from ...plumbing.progress import progress_bar


def lr_at(step: int, total: int, peak: float, warmup: int) -> float:
    """Linear warm-up to ``peak``, then cosine decay to a tenth of it."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def _step_of(name: str) -> int:
    return int(name.removeprefix("step"))


def pretrain(model, train_ids: torch.Tensor, out: Path, *, steps: int, batch_size: int,
             lr: float, warmup: int, seed: int, checkpoints: tuple[str, ...],
             progress: bool = True) -> list[float]:
    """Train ``model`` (on its device) on rows of ``train_ids`` for ``steps`` AdamW steps, saving
    ``out/checkpoints/<name>`` (``save_pretrained``) at every named step.
    Returns the per-step training loss in nats. Resumes from ``out/state.pt``."""
    save_at = {_step_of(c): c for c in checkpoints}
    device = next(model.parameters()).device
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.01)
    losses: list[float] = []
    start = 0
    state_file = out / "state.pt"
    if state_file.exists():  # resume a killed build
        state = torch.load(state_file, weights_only=True, map_location=device)
        start, losses = state["step"], state["losses"]
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
    elif 0 in save_at:
        _save(model, opt, out, save_at[0], 0, losses)
    model.train()
    bar = progress_bar(range(start, steps), enabled=progress, desc="pretraining the tiny LM",
               initial=start, total=steps)
    for step in bar:
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, lr, warmup)
        x = train_ids[batch_indices(step, batch_size, len(train_ids), seed)].to(device)
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if step % 20 == 0:
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
        if step + 1 in save_at:
            _save(model, opt, out, save_at[step + 1], step + 1, losses)
    model.eval()
    state_file.unlink(missing_ok=True)  # training state is only needed to resume
    (out / "train_log.json").write_text(json.dumps({"loss": losses}))
    return losses


def _save(model, opt, out: Path, name: str, step: int, losses: list[float]) -> None:
    model.save_pretrained(out / "checkpoints" / name)
    state = {"step": step, "losses": losses, "model": model.state_dict(),
             "opt": opt.state_dict()}
    # atomic: a kill never leaves half a state file
    atomic_write(out / "state.pt", lambda tmp: torch.save(state, tmp))
