"""Benchmark one mask-training step against a plain training step of the same model.

    python benchmarks/bench_sparsify.py            # full run (a few minutes on CPU)
    python benchmarks/bench_sparsify.py --quick    # smoke run (about a minute)

Side by side in one process, on the same batch (on CPU, and on CUDA when available):

* plain:  forward + hard-label next-token CE + backward to ALL weights
          (a normal training step WITHOUT the optimizer step; the model's
          parameters require grad, grads are dropped after each step).
* mask:   bigramlab.methods.sparsify's step: forward with W * sigmoid(T * s) for
          every maskable matrix (functional_call), the same hard-label CE
          (as a custom target) + the density penalty, backward to the mask
          logits only, AdamW step on the mask logits (the model is frozen).
* mask, bigram target (tiny model only): the same with BigramTarget, the
          real Chapter 3 workload.

Breakdown rows explain the ratio: the masking graph alone (one sigmoid over
the flat mask logits, W * m per matrix, the penalty, and their backward over
all maskable entries, with a dummy upstream gradient), and the AdamW step
alone (one update over N mask logits: a plain step without optimizer has
nothing like it).

Models: the tiny world's LM (load_model('tiny')), and a Pythia-70m-shaped
random GPT-NeoX (6 x 512, MLP 2048, vocab 50,304) at a smaller batch on CPU.
Timings are medians of interleaved repeats (wall clock); the load average is
printed because other processes disturb them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch
import torch.nn.functional as F

from bigramlab.methods.anatomy import count_maskable
from bigramlab.methods.sparsify import (SparsifyConfig, flatten, init_mask_logits, make_optimizer,
                                        masked_logits, soft_masks_flat)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def hard_ce(logits, x):
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
                           x[:, 1:].reshape(-1))


def make_steps(model, x, bigram=None):
    """name -> zero-argument callable running one step (all on the model's device)."""
    device = next(model.parameters()).device
    cfg = SparsifyConfig(lam=10.0)
    flat, shapes = flatten(init_mask_logits(model, config=cfg))
    opt = make_optimizer([flat], cfg)
    params = list(model.parameters())
    weights = {n: p for n, p in model.named_parameters() if n in shapes}
    T = 1.5

    def plain():
        for p in params:
            p.requires_grad_(True)
        hard_ce(model(x).logits, x).backward()
        for p in params:
            p.grad = None

    def freeze():
        for p in params:
            p.requires_grad_(False)

    def mask(target=None):  # what sparsify's loop does per step, minus its bookkeeping
        freeze()
        soft, soft_flat = soft_masks_flat(flat, shapes, T)
        logits = masked_logits(model, soft, x)
        ce = target(logits, x) if target else hard_ce(logits, x)
        (ce + soft_flat.sum() * (cfg.lam / flat.numel())).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    dummy = {n: torch.randn_like(w) for n, w in weights.items()}

    def masking_only():
        freeze()
        soft, soft_flat = soft_masks_flat(flat, shapes, T)
        out = sum((weights[n] * soft[n] * dummy[n]).sum() for n in shapes)
        (out + soft_flat.sum() * (cfg.lam / flat.numel())).backward()
        flat.grad = None

    grad = torch.full_like(flat, 1e-3)  # AdamW-only: a fixed gradient, made once

    def adamw_step():
        flat.grad = grad
        opt.step()
        flat.grad = None

    steps = {"plain fwd+bwd (no optimizer)": plain, "mask step (hard CE + AdamW)": mask,
             "  masking graph only (fwd+bwd)": masking_only, "  AdamW step only": adamw_step}
    if bigram is not None:
        from bigramlab.methods.sparsify import BigramTarget
        bt = BigramTarget(bigram)
        steps["mask step (bigram target + AdamW)"] = lambda: mask(lambda l, i: bt(l, i))
        steps["plain fwd+bwd, bigram CE"] = lambda: (
            [p.requires_grad_(True) for p in params],
            bt(model(x).logits, x).backward(),
            [setattr(p, "grad", None) for p in params])
    return steps, device


def bench(steps, device, repeats, warmup=2):
    for f in steps.values():
        for _ in range(warmup):
            f()
    times = {k: [] for k in steps}
    for _ in range(repeats):  # interleaved, so drifting load hits every row alike
        for k, f in steps.items():
            sync(device)
            t = time.perf_counter()
            f()
            sync(device)
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def report(title, model, x, med):
    base = med["plain fwd+bwd (no optimizer)"]
    n_mask = count_maskable(model)
    n_all = sum(p.numel() for p in model.parameters())
    print(f"\n== {title}: batch {tuple(x.shape)}, {n_mask:,} maskable of {n_all:,} params")
    for k, v in med.items():
        print(f"  {k:<36} {v * 1e3:9.2f} ms   {v / base:5.2f}x plain")
    return {k: v for k, v in med.items()} | {"ratio": med["mask step (hard CE + AdamW)"] / base}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer repeats, smaller batches")
    ap.add_argument("--device", action="append", help="cpu / cuda (default: both when present)")
    ap.add_argument("--models", default="tiny,tinyshape,pythia70m",
                    help="comma-separated: tiny (the built tiny LM), tinyshape (a random model "
                         "of its shape), pythia70m (a random Pythia-70m shape)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    devices = args.device or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    repeats = 5 if args.quick else 15
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
          f"load average {os.getloadavg()[0]:.2f}")
    from bigramlab import load_model
    from bigramlab.plumbing.profiles import TinyWorld
    from bigramlab.worlds.models import make_model

    results = {}
    for dev in devices:
        device = torch.device(dev)
        if dev == "cuda":
            print(f"CUDA: {torch.cuda.get_device_name(device)}")
        models = args.models.split(",")
        # 1. the tiny world's LM at the tiny profile's batch (16 x 128)
        if "tiny" in models:
          try:
            from bigramlab import get_profile, load_corpus
            from bigramlab.experiments import bigram_model
            model, _ = load_model("tiny", device=device)
            x = load_corpus("tiny", "train")[:16].to(device)
            bigram = bigram_model(get_profile("tiny"), device=device, progress=False)
            steps, _ = make_steps(model, x, bigram)
            results[f"tiny/{dev}"] = report(f"tiny LM on {dev}", model, x,
                                            bench(steps, device, repeats))
          except Exception as e:  # the tiny world is not built here: say so, go on
            print(f"tiny LM skipped: {type(e).__name__}: {e}")
        # 2. random models: the tiny LM's shape (batch 16) and Pythia-70m's
        shapes = {"tinyshape": (TinyWorld(), 2048, 16, 16),
                  "pythia70m": (TinyWorld(n_layer=6, d_model=512, n_head=8, d_mlp=2048), 50304,
                                (2 if args.quick else 4), (8 if args.quick else 32))}
        for name in [m for m in models if m in shapes]:
            world, vocab, b_cpu, b_gpu = shapes[name]
            torch.manual_seed(0)
            model = make_model("gpt_neox", world, vocab, 128).to(device).eval()
            b = b_cpu if dev == "cpu" else b_gpu
            x = torch.randint(vocab, (b, 128), generator=torch.Generator().manual_seed(0))
            steps, _ = make_steps(model, x.to(device))
            results[f"{name}/{dev}"] = report(f"{name} (random weights) on {dev}", model, x,
                                              bench(steps, device, repeats))
    print("\nratio = mask step / plain forward+backward (issue target: <= 1.2x)")
    for k, r in results.items():
        print(f"  {k:<28} {r['ratio']:.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
