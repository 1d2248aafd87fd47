"""Benchmark the exact chance level of an overlap against the reference's shuffles.

    python benchmarks/bench_overlap.py            # full run (about a minute on CPU)
    python benchmarks/bench_overlap.py --quick    # smoke run

Side by side in one process, on the same pair of masks:

* exact:    bigramlab.methods.overlap.chance_overlap - the overlap under random placement
            within each matrix is a sum of independent hypergeometric variables;
            mean, sd and the whole distribution (hence any p-value) in one pass.
* shuffles: what the paper's reference code does - shuffle each matrix's mask
            (torch.randperm per matrix) and count the overlap, 10,000 times.
            Timed on a few shuffles and scaled to 10,000 (printed as such);
            its mean is checked against the exact one.

Masks: random, 3% / 5% dense per matrix (a bigram subnetwork's scale), in the
shapes of the tiny LM (4 x 64) and of Pythia-70m (6 x 512, MLP 2048).
"""

from __future__ import annotations

import argparse
import time

import torch

from bigramlab.methods.overlap import chance_overlap

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer timed shuffles")
    args = parser.parse_args()
    torch.manual_seed(0)
    bench("tiny LM shape (4 x 64, MLP 256)", shapes(4, 64, 256), 50 if args.quick else 500)
    bench("Pythia-70m shape (6 x 512, MLP 2048)", shapes(6, 512, 2048), 3 if args.quick else 100)


if __name__ == "__main__":
    main()
