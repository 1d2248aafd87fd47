"""Whether a tiny-world mask is the same under other CPU kernel sets, with and without the grid.

    python benchmarks/kernel_invariance.py                  # 150 steps; about 6 minutes on 2 cores
    python benchmarks/kernel_invariance.py --steps 600      # the chapters' schedule (~25 minutes)

Trains the tiny profile's bigram mask (lambda 3, float64, the released LM) twice per
setting, in subprocesses: once with the native kernels, once under
``ATEN_CPU_CAPABILITY=default MKL_CBWR=COMPATIBLE`` (torch's unvectorised kernels and
MKL's reproducible code path), each on one thread; once with the profile's mask-logit
grid (``SparsifyConfig.logit_grid``) and once without (``logit_grid=0``). Records the
kept counts, the steps run and the largest difference between the two runs' logits in
``benchmarks/results/kernels.json`` (the book's appendix, "Reproducibility", renders it).
Not a speed benchmark: a measurement of what the grid is for.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

OUT = Path(__file__).resolve().parent / "results" / "kernels.json"
KERNELS = {"native": {}, "default": {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"}}

TRAIN = """
import sys, torch
from safetensors.torch import save_file
from bigramlab import get_profile, load_corpus, load_model
from bigramlab.experiments import bigram_model, mask_config
from bigramlab.methods.sparsify import BigramTarget, sparsify
out, steps, grid = sys.argv[1], int(sys.argv[2]), sys.argv[3]
p = get_profile("tiny")
model, _ = load_model(p, device="cpu")
cfg = mask_config(p, max_steps=steps, **({} if grid == "profile" else {"logit_grid": 0.0}))
res = sparsify(model, load_corpus(p, "train"), BigramTarget(bigram_model(p, device="cpu",
               progress=False)), cfg, progress=False)
save_file({k: v.contiguous() for k, v in res.mask_logits.items()}, out)
print(res.steps)
"""


def train(folder: Path, name: str, steps: int, grid: str, env: dict) -> tuple[dict, int]:
    from safetensors.torch import load_file

    out = folder / f"{name}.safetensors"
    run = subprocess.run([sys.executable, "-c", TRAIN, str(out), str(steps), grid],
                         env=dict(os.environ, TQDM_DISABLE="1", OMP_NUM_THREADS="1", **env),
                         check=True, capture_output=True, text=True)
    return load_file(out), int(run.stdout.split()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=150)
    args = ap.parse_args(argv)
    results = json.loads(OUT.read_text()) if OUT.exists() else {}
    with tempfile.TemporaryDirectory() as tmp:
        for grid in ("profile", "none"):
            runs = {k: train(Path(tmp), f"{k}-{grid}", args.steps, grid, env)
                    for k, env in KERNELS.items()}
            (a, steps_a), (b, steps_b) = runs["native"], runs["default"]
            diff = max(float((a[k] - b[k]).abs().max()) for k in a)
            row = {"steps_cap": args.steps, "grid": grid,
                   "steps": {"native": steps_a, "default": steps_b},
                   "kept": {"native": sum(int((v > 0).sum()) for v in a.values()),
                            "default": sum(int((v > 0).sum()) for v in b.values())},
                   "max_logit_difference": diff, "identical": diff == 0.0}
            results[f"bigram lambda 3, {args.steps} steps, grid {grid}"] = row
            print(json.dumps(row), flush=True)
    OUT.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
