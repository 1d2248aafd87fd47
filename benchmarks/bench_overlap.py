"""Benchmark the chance levels of an overlap against the reference's shuffles.

    python benchmarks/bench_overlap.py            # full run (a few minutes on CPU)
    python benchmarks/bench_overlap.py --quick    # smoke run
    python benchmarks/bench_overlap.py --part 2        # the row-shuffle null only
    python benchmarks/bench_overlap.py --device cuda   # the row-shuffle null on a GPU

Part 1, uniform placement. Side by side in one process, on the same pair of masks:

* exact:    bigramlab.methods.overlap.chance_overlap - the overlap under random placement
            within each matrix is a sum of independent hypergeometric variables;
            mean, sd and the whole distribution (hence any p-value) in one pass.
* shuffles: what the paper's reference code does - shuffle each matrix's mask
            (torch.randperm per matrix) and count the overlap, 10,000 times.
            Timed on a few shuffles and scaled to 10,000 (printed as such);
            its mean is checked against the exact one.

Masks: random, 3% / 5% dense per matrix (a bigram subnetwork's scale), in the
shapes of the tiny LM (4 x 64) and of Pythia-70m (6 x 512, MLP 2048).

Part 2, the paper's row-shuffle null (Chapter 8), on masks whose kept entries
cluster in shared input columns (as trained masks do), for the same shapes:

* ours:  bigramlab.methods.overlap.row_shuffle_null (exact mean and variance)
         + row_shuffle_samples (10,000 shuffles, vectorised) + the p-value;
* paper: its loop (compute_circuit_overlaps.py), written out here: numpy
         blocks, 10,000 times np.random.shuffle of the rows of every block of
         both masks in place, then the overlap; mean, variance and p from the
         samples. Run in full for the tiny shape; for Pythia-70m timed on a few
         samples and scaled to 10,000 (printed as such).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from bigramlab.methods.anatomy import maskable_matrices
from bigramlab.methods.overlap import (chance_overlap, row_blocks, row_shuffle_null,
                                       row_shuffle_samples)
from bigramlab.methods.subnetwork import Subnetwork
from bigramlab.plumbing.profiles import TinyWorld
from bigramlab.worlds.models import make_model

N_SHUFFLES = 10_000


def shapes(n_layer: int, d: int, d_mlp: int) -> dict[str, tuple[int, int]]:
    out = {}
    for layer in range(n_layer):
        out |= {f"{layer}.qkv": (3 * d, d), f"{layer}.o": (d, d),
                f"{layer}.mlp_in": (d_mlp, d), f"{layer}.mlp_out": (d, d_mlp)}
    return out


def masks(shape_of: dict, density: float, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {n: torch.rand(s, generator=g) < density for n, s in shape_of.items()}


def shuffle_overlaps(a, b, n: int, seed: int = 0) -> torch.Tensor:
    """The reference's estimate: overlap after shuffling b within each matrix, n times."""
    g = torch.Generator().manual_seed(seed)
    out = torch.zeros(n, dtype=torch.long)
    for i in range(n):
        for name in a:
            flat_b = b[name].flatten()
            out[i] += int((a[name].flatten() & flat_b[torch.randperm(flat_b.numel(),
                                                                      generator=g)]).sum())
    return out


def bench(label: str, shape_of: dict, timed_shuffles: int) -> None:
    a, b = masks(shape_of, 0.03, 1), masks(shape_of, 0.05, 2)
    entries = sum(m.numel() for m in a.values())
    t0 = time.perf_counter()
    exact = chance_overlap(a, b)
    t_exact = time.perf_counter() - t0
    t0 = time.perf_counter()
    sims = shuffle_overlaps(a, b, timed_shuffles)
    t_one = (time.perf_counter() - t0) / timed_shuffles
    t_ref = t_one * N_SHUFFLES
    z = (float(sims.double().mean()) - exact.mean) / (exact.sd / timed_shuffles ** 0.5)
    print(f"{label}: {entries:,} entries in {len(a)} matrices")
    print(f"  exact: {t_exact * 1e3:8.1f} ms (mean {exact.mean:,.1f}, sd {exact.sd:.1f}, "
          f"support {len(exact.support):,} values)")
    print(f"  {N_SHUFFLES:,} shuffles: {t_ref:8.1f} s (scaled from {timed_shuffles} shuffles, "
          f"{t_one * 1e3:.1f} ms each; their mean is {z:+.1f} sd of the mean from the exact one)")
    print(f"  exact is {t_ref / t_exact:,.0f}x faster")


# -- part 2: the row-shuffle null ----------------------------------------------------------

def clustered_masks(model, density: float, seed: int) -> Subnetwork:
    """Random masks whose kept entries favour a shared tenth of the input columns."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for m in maskable_matrices(model):
        rows, cols = m.shape[m.out_axis], m.shape[m.in_axis]
        hot = (torch.arange(cols) % 10 == 0).float() * 4 + 1  # 5x the rate in hot columns
        p = (density * cols / hot.sum()) * hot
        x = torch.rand(rows, cols, generator=g) < p
        out[m.name] = x.T.contiguous() if m.out_axis == 1 else x
    return Subnetwork(out, "bench")


def paper_loop(a, b, model, n: int, seed: int = 0) -> np.ndarray:
    """The paper's loop: every block of both masks, rows shuffled in place, n times."""
    rng_state = np.random.get_state()
    np.random.seed(seed)
    da = [np.ascontiguousarray(x.numpy()) for _, x in row_blocks(a, model)]
    db = [np.ascontiguousarray(x.numpy()) for _, x in row_blocks(b, model)]
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        for xa, xb in zip(da, db):
            np.random.shuffle(xa)
            np.random.shuffle(xb)
        out[i] = sum(int(np.sum(xa & xb)) for xa, xb in zip(da, db))
    np.random.set_state(rng_state)
    return out


def bench_rows(label: str, cfg: TinyWorld, timed: int | None, device: str) -> None:
    torch.manual_seed(0)
    model = make_model("gpt_neox", cfg, 64, 16)
    a, b = clustered_masks(model, 0.03, 1), clustered_masks(model, 0.05, 2)
    actual = (a & b).count()
    t0 = time.perf_counter()
    null = row_shuffle_null(a, b, model)
    t_exact = time.perf_counter() - t0
    ours = row_shuffle_samples(a, b, model, N_SHUFFLES, seed=0, device=device)
    p_ours = float((ours >= actual).double().mean())
    if device == "cuda":
        torch.cuda.synchronize()
    t_ours = time.perf_counter() - t0
    n_ref = timed or N_SHUFFLES
    t0 = time.perf_counter()
    ref = paper_loop(a, b, model, n_ref)
    t_ref = (time.perf_counter() - t0) * N_SHUFFLES / n_ref
    uniform = chance_overlap(a, b).mean
    print(f"{label}: {a.count():,} and {b.count():,} kept of {null.entries:,}; overlap {actual:,}")
    print(f"  ours ({device}): {t_ours:8.2f} s  exact mean {null.mean:,.1f}, sd {null.sd:.1f} "
          f"({t_exact * 1e3:.0f} ms); "
          f"{N_SHUFFLES:,} vectorised shuffles: mean {float(ours.double().mean()):,.1f}, "
          f"sd {float(ours.double().std()):.1f}, p {p_ours:.4f}")
    scaled = "" if n_ref == N_SHUFFLES else f" (scaled from {n_ref} samples)"
    print(f"  paper's loop: {t_ref:8.2f} s{scaled}  mean {ref.mean():,.1f}, sd {ref.std():.1f}, "
          f"p {(ref >= actual).mean():.4f}; mean off the exact one by "
          f"{(ref.mean() - null.mean) / (null.sd / len(ref) ** 0.5):+.1f} standard errors")
    print(f"  (uniform placement's mean: {uniform:,.1f})")
    print(f"  ours is {t_ref / t_ours:,.1f}x faster")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer timed shuffles")
    parser.add_argument("--device", default="cpu", help="where the row shuffles run")
    parser.add_argument("--part", choices=["1", "2", "all"], default="all",
                        help="1: uniform placement; 2: the row-shuffle null")
    args = parser.parse_args()
    torch.manual_seed(0)
    if args.part in ("1", "all"):
        print("part 1: uniform placement, exact against shuffles")
        bench("tiny LM shape (4 x 64, MLP 256)", shapes(4, 64, 256), 50 if args.quick else 500)
        bench("Pythia-70m shape (6 x 512, MLP 2048)", shapes(6, 512, 2048),
              3 if args.quick else 100)
    if args.part == "1":
        return
    print("part 2: the paper's row-shuffle null, ours against the paper's loop")
    bench_rows("tiny LM shape (4 x 64, MLP 256)", TinyWorld(n_layer=4, d_model=64, n_head=4,
                                                            d_mlp=256),
               500 if args.quick else None, args.device)
    bench_rows("Pythia-70m shape (6 x 512, MLP 2048)",
               TinyWorld(n_layer=6, d_model=512, n_head=8, d_mlp=2048),
               5 if args.quick else 100, args.device)


if __name__ == "__main__":
    main()
