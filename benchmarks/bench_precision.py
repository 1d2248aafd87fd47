"""What float64 costs: one mask-training step of the tiny LM in float64 against float32.

    python benchmarks/bench_precision.py            # about two minutes on 2 cores
    python benchmarks/bench_precision.py --quick    # smoke run

The tiny world computes in float64 so that every CPU prints the same numbers
(README, "Reproducibility"); this measures the price. Side by side in one
process, on the same batches: ``sparsify``'s step (the bigram target, the
tiny profile's schedule, batch 16 x 128) on the released tiny LM cast to
float32 (the baseline: what the course did before) and left in float64, at
1 thread and at the machine's thread count. Medians of interleaved repeats;
the load average is recorded because other processes disturb them. Writes
``benchmarks/results/precision.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from bigramlab import get_profile, load_corpus, load_model
from bigramlab.experiments import bigram_model, mask_config
from bigramlab.methods.sparsify import BigramTarget, FlatSteps, init_mask_logits

OUT = Path(__file__).resolve().parent / "results" / "precision.json"


def step_seconds(model, target, batches, cfg, repeats: int) -> float:
    steps = FlatSteps(init_mask_logits(model, config=cfg), cfg)
    steps.step(model, batches[0], target, 1.0)  # warm-up
    times = []
    for i in range(repeats):
        t = time.perf_counter()
        steps.step(model, batches[i % len(batches)], target, 1.0)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    repeats = 3 if args.quick else 15
    p = get_profile("tiny")
    model64, _ = load_model(p, device="cpu")
    model32 = load_model(p, device="cpu")[0].float()
    train = load_corpus(p, "train")
    batches = [train[i * p.batch_size:(i + 1) * p.batch_size] for i in range(4)]
    cfg = mask_config(p)
    target = BigramTarget(bigram_model(p, device="cpu", progress=False))
    rows = []
    for threads in sorted({1, torch.get_num_threads()}):
        torch.set_num_threads(threads)
        t32 = step_seconds(model32, target, batches, cfg, repeats)
        t64 = step_seconds(model64, target, batches, cfg, repeats)
        rows.append({"threads": threads, "float32_s": round(t32, 4), "float64_s": round(t64, 4),
                     "ratio": round(t64 / t32, 2)})
        print(f"{threads} thread(s): float32 {t32 * 1e3:.0f} ms, float64 {t64 * 1e3:.0f} ms "
              f"per step: x{t64 / t32:.2f}", flush=True)
    if not args.quick:
        OUT.write_text(json.dumps({"benchmark": "bench_precision", "batch": [p.batch_size, p.seq_len],
                                   "load_average": os.getloadavg()[0], "rows": rows,
                                   "torch": torch.__version__}, indent=1) + "\n")
        print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
