"""Pretraining a small causal LM from scratch, saving Pythia-style checkpoints.

Used by the tiny world (Defined in Chapter 0). Deterministic: the batch order
is a seeded permutation (``methods.batching.batch_indices``, shared with mask
training), the models have no dropout, and every piece of state that the
next step depends on (weights, AdamW moments, step, losses so far) is saved
with each checkpoint, which carries its own manifest. So a run resumes from
its last intact checkpoint (after a kill, or when a later checkpoint was
damaged) and ends bit-identical to an unbroken one.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import torch

from ...methods.batching import batch_indices
from ...plumbing.cache import verify, write_manifest
from ...plumbing.inputs import DamagedFileError, load_torch_file
from ...plumbing.progress import progress_bar, quiet_transformers

#: Per checkpoint, what resuming from it needs besides the weights (AdamW, step, losses).
TRAINER_STATE = "trainer_state.pt"


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
    Returns the per-step training loss in nats. Resumes from the last intact
    checkpoint in ``out`` (see :func:`resume`)."""
    save_at = {_step_of(c): c for c in checkpoints}
    device = next(model.parameters()).device
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.01)
    start, losses = resume(model, opt, out, checkpoints)
    if start is None:
        start = 0
        if 0 in save_at:
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
    (out / "train_log.json").write_text(json.dumps({"loss": losses}))
    return losses


def _intact(folder: Path) -> bool:
    return folder.is_dir() and (folder / TRAINER_STATE).exists() and verify(folder) is None


def resume(model, opt, out: Path, checkpoints: tuple[str, ...]) -> tuple[int | None, list]:
    """Load ``model`` and ``opt`` from the last checkpoint in ``out/checkpoints``
    that is intact, as is every earlier one (its files match its manifest).
    That checkpoint and all earlier ones are kept; later ones (and unfinished
    saves) are deleted, to be trained again. Returns (its step, the losses up to
    it), or (None, []) when not even the first checkpoint is intact."""
    root = out / "checkpoints"
    (out / "state.pt").unlink(missing_ok=True)  # the resume file of older builds
    for tmp in root.glob("*.tmp"):  # a save that a kill interrupted
        shutil.rmtree(tmp)
    names = sorted(checkpoints, key=_step_of)
    n_good = next((i for i, name in enumerate(names) if not _intact(root / name)), len(names))
    for name in names[n_good:]:
        shutil.rmtree(root / name, ignore_errors=True)
    if n_good == 0:
        return None, []
    folder = root / names[n_good - 1]
    device = next(model.parameters()).device
    try:
        state = load_torch_file(folder / TRAINER_STATE, map_location=device)
    except DamagedFileError:  # matches its manifest, yet unreadable: start over
        shutil.rmtree(root)
        return None, []
    # from_pretrained: the names on disk are the library's (e.g. embed_out), not the module's
    with quiet_transformers():
        saved = type(model).from_pretrained(folder)
    model.load_state_dict(saved.to(device).state_dict())
    opt.load_state_dict(state["opt"])
    return state["step"], state["losses"]


def _save(model, opt, out: Path, name: str, step: int, losses: list[float]) -> None:
    """Checkpoint ``name``: weights (``save_pretrained``), the trainer state and a
    manifest, written into a temporary folder renamed at the end (a kill never
    leaves half a checkpoint)."""
    folder = out / "checkpoints" / name
    tmp = folder.with_name(name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    with quiet_transformers():  # no "Writing model shards" bar per checkpoint
        model.save_pretrained(tmp)
    torch.save({"step": step, "losses": list(losses), "opt": opt.state_dict()},
               tmp / TRAINER_STATE)
    write_manifest(tmp, {"step": step})
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
