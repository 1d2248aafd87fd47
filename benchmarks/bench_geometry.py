"""Benchmark the residual-stream geometry (Chapters 6-7) against its floor and the paper's route.

    python benchmarks/bench_geometry.py            # Pythia-160m width, 768 x 13 states (~20 min)
    python benchmarks/bench_geometry.py --quick    # smoke run (width 64, a few seconds)

Given the states (synthetic, generated per batch of positions, seeded; the
same positions for every route), the whole analysis: ridge maps (alpha 1,
with intercept) from every state to the three targets (input embedding, h_L,
h_{L-1}), the median eigen-angle of each of those maps, and the covariance
similarity of the layers (top component removed). Three timings in one
process, on the CPU:

* floor: the products the analysis cannot avoid, each state with itself and
         with the three targets, once per batch, in float64: exactly the calls
         ours makes (ResidualStats.add_products: each Gram matrix on and above
         its diagonal, products that are Gram matrices or transposes of one
         another skipped), timed alone on batches prepared outside the clock;
         beside it the same products computed in full (four per state);
* ours:  bigramlab.methods: ResidualStats.update per batch (float64 copy,
         shift, sums, the floor's products), then maps(), rotations(),
         covariance() and covariance_similarity();
* paper: the paper's route: the activations held as float64 numpy arrays,
         sklearn Ridge(alpha=1, fit_intercept=True) per layer and target,
         numpy.linalg.eig of each coefficient matrix, numpy.cov per layer,
         the top component removed with numpy.linalg.eigh.

The results of ours and the paper's are compared (coefficients, intercepts,
rotations, similarities; largest relative difference). Peak memory is
measured in child processes at two numbers of positions, 4x apart: the peak
resident set size (Linux: ``VmHWM``, reset through ``/proc/self/clear_refs``
after imports and a warm-up run, so that loading BLAS code does not count)
above the resident size at the reset. Ours streams the batches (generated one
at a time); the paper's route holds them.
Timings are CPU seconds of this process (``time.process_time``), with wall
seconds beside them for ours and the paper's route: on a machine shared with
other jobs the wall clock also counts the time other processes hold the cores,
which changed by 2x between phases of one run here. Threads: 1 by default
(``--threads``; with more, CPU seconds add up over threads): on this shared
2-core machine two threads under contention made LAPACK's eigensolvers 10x
slower and jittery.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import torch

from bigramlab.methods.covariance import covariance_similarity
from bigramlab.methods.rotation import TARGETS, ResidualStats, rotations


def batches(n_positions: int, batch: int, n_states: int, d: int, seed: int = 0):
    """Yield (states (S, b, d), inputs (b, d)) float32: a deterministic stand-in for a
    model's residual stream (a token embedding with outlier dimensions, then layers that
    add a nonlinear write and noise), generated batch by batch."""
    g = torch.Generator().manual_seed(seed)
    vocab = 4096
    table = torch.randn(vocab, d, generator=g) * (0.2 + torch.rand(d, generator=g))
    table[:, :4] += 20.0  # a few large constant components, as residual streams have
    writes = [torch.randn(d, d, generator=g) / d ** 0.5 for _ in range(n_states - 1)]
    for start in range(0, n_positions, batch):
        b = min(batch, n_positions - start)
        gb = torch.Generator().manual_seed(seed * 1_000_003 + start)
        e = table[torch.randint(0, vocab, (b,), generator=gb)]
        h = [e]
        for w in writes:
            h.append(h[-1] + torch.tanh(h[-1] @ w) + 0.3 * torch.randn(b, d, generator=gb))
        states = torch.stack(h)
        del h  # a suspended generator keeps its locals: hold one copy of the batch, not two
        yield states, e


# ------------------------------------------------------------------ the three routes


def ours(data, n_states, d):
    stats = ResidualStats(n_states, d)
    for states, inputs in data:
        stats.update(states, inputs)
    maps = stats.maps(alpha=1.0)
    rot = rotations(maps)
    sim = covariance_similarity(stats.covariance(), k=1)
    return {"coef": {t: maps[t].coef.numpy() for t in TARGETS},
            "intercept": {t: maps[t].intercept.numpy() for t in TARGETS},
            "rotation": {t: rot[t].numpy() for t in TARGETS}, "similarity": sim.numpy()}


def _prepared(data, stats):
    """The batches as ResidualStats.update hands them to its products: float64, shifted."""
    for states, inputs in data:
        x = (states.transpose(0, 1).double() - stats.shift_x).contiguous()
        yield x, inputs.double() - stats.shift_e


def floor_seconds(data, n_states, d) -> float:
    """Time of the products alone: ResidualStats.add_products on batches prepared
    outside the clock (each state's Gram matrix on and above the diagonal, each state
    with the targets, the duplicates skipped)."""
    stats = ResidualStats(n_states, d)
    stats.update(*data[0])  # fixes the shift
    spent = 0.0
    for x, e in _prepared(data, stats):
        t0 = time.process_time()
        stats.add_products(x, e)
        spent += time.process_time() - t0
    return spent


def full_products_seconds(data, n_states, d) -> float:
    """The issue's literal floor: each state with itself and with the three targets as
    full float64 products, once per batch (no symmetry used, duplicates computed)."""
    stats = ResidualStats(n_states, d)
    stats.update(*data[0])
    xx = torch.zeros(n_states, d, d, dtype=torch.float64)
    xt = torch.zeros(n_states * d, 3 * d, dtype=torch.float64)
    spent = 0.0
    for x, e in _prepared(data, stats):
        t = torch.stack([e, x[:, -1], x[:, -2]], 1)
        t0 = time.process_time()
        for s in range(n_states):
            xx[s].addmm_(x[:, s].T, x[:, s])
        xt.addmm_(x.reshape(-1, n_states * d).T, t.reshape(-1, 3 * d))
        spent += time.process_time() - t0
    return spent


def paper(data, n_states, d):
    from sklearn.linear_model import Ridge

    parts = list(data)
    held = [np.concatenate([s[layer].numpy() for s, _ in parts]).astype(np.float64)
            for layer in range(n_states)]
    inputs = np.concatenate([e.numpy() for _, e in parts]).astype(np.float64)
    del parts
    out = {"coef": {}, "intercept": {}, "rotation": {}}
    for name, y in zip(TARGETS, (inputs, held[-1], held[-2])):
        fits = [Ridge(alpha=1.0, fit_intercept=True).fit(x, y) for x in held]
        out["coef"][name] = np.stack([f.coef_ for f in fits])
        out["intercept"][name] = np.stack([f.intercept_ for f in fits])
        out["rotation"][name] = np.array([np.median(np.abs(np.angle(np.linalg.eig(f.coef_)[0],
                                                                    deg=True))) for f in fits])
    covs = []
    for x in held:
        c = np.cov(x, rowvar=False)
        vals, vecs = np.linalg.eigh(c)
        covs.append(c - vals[-1] * np.outer(vecs[:, -1], vecs[:, -1]))
    flat = np.stack([c.ravel() / np.linalg.norm(c) for c in covs])
    out["similarity"] = flat @ flat.T
    return out


def largest_differences(a, b) -> dict[str, float]:
    """Largest relative difference per kind of result (Frobenius norms per map)."""
    def rel(x, y):
        return float(np.linalg.norm(x - y) / max(np.linalg.norm(y), 1e-300))
    return {
        "coef": max(rel(a["coef"][t][s], b["coef"][t][s]) for t in TARGETS
                    for s in range(len(b["coef"][t]))),
        "intercept": max(rel(a["intercept"][t][s], b["intercept"][t][s]) for t in TARGETS
                         for s in range(len(b["intercept"][t]))),
        "rotation": max(float(np.max(np.abs(a["rotation"][t] - b["rotation"][t]) / 180))
                        for t in TARGETS),
        "similarity": float(np.max(np.abs(a["similarity"] - b["similarity"]))),
    }


# ------------------------------------------------------------------ memory (child processes)


def peak_child(route: str, args, n_positions: int) -> float:
    """Peak RSS (MiB) a child process adds while it runs ``route`` on ``n_positions``."""
    cmd = [sys.executable, __file__, "--child", route, "--positions", str(n_positions),
           "--width", str(args.width), "--states", str(args.states), "--batch", str(args.batch),
           "--threads", str(args.threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True,
                         env=os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)})
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_mib"]


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def child(route: str, args) -> None:
    run = ours if route == "ours" else paper
    # warm-up on one small batch: loads the BLAS/LAPACK code, which counts as resident memory
    run(batches(64, 64, args.states, args.width, seed=1), args.states, args.width)
    data = batches(args.positions, args.batch, args.states, args.width)  # a lazy generator
    try:  # Linux: reset the peak RSS to the current RSS, so earlier peaks do not count
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        base, reset = _status_kib("VmRSS"), True
    except OSError:  # elsewhere: the peak so far is the baseline
        base, reset = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, False
    run(data, args.states, args.width)
    peak = _status_kib("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_mib": (peak - base) / 1024}))  # both in KiB on Linux


# ------------------------------------------------------------------ main


def limit_threads(n: int) -> None:
    torch.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits  # comes with scikit-learn
        threadpool_limits(n)
    except ImportError:
        pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: width 64, 2,048 positions")
    ap.add_argument("--positions", type=int, default=65_536)
    ap.add_argument("--width", type=int, default=768)
    ap.add_argument("--states", type=int, default=13)
    ap.add_argument("--batch", type=int, default=2048, help="positions per batch")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--child", choices=["ours", "paper"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.quick:
        args.positions, args.width, args.states, args.batch = 2048, 64, 5, 256
    limit_threads(args.threads)
    if args.child:
        return child(args.child, args)
    S, d, n = args.states, args.width, args.positions
    print(f"width {d}, {S} states, {n:,} positions in batches of {args.batch:,}; "
          f"{torch.get_num_threads()} thread(s); load average {os.getloadavg()[0]:.1f}")
    start = time.perf_counter()
    data = list(batches(n, args.batch, S, d))
    full = full_products_seconds(data, S, d)
    floor = floor_seconds(data, S, d)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    mine = ours(data, S, d)
    cpu1, wall1 = time.process_time(), time.perf_counter()
    ref = paper(data, S, d)
    cpu2, wall2 = time.process_time(), time.perf_counter()
    t_ours, t_paper = cpu1 - cpu0, cpu2 - cpu1
    print("  CPU seconds (wall seconds in brackets):")
    print(f"  floor (the products ours computes): {floor:8.2f} s")
    print(f"  all four full products per state:   {full:8.2f} s   (the issue's literal floor)")
    print(f"  ours (the whole analysis):          {t_ours:8.2f} s   ({wall1 - wall0:.1f} s) = "
          f"{t_ours / floor:.2f}x the floor, {t_ours / full:.2f}x the four full products")
    print(f"  paper's route:                      {t_paper:8.2f} s   ({wall2 - wall1:.1f} s) = "
          f"{t_paper / t_ours:.2f}x ours ({(wall2 - wall1) / (wall1 - wall0):.2f}x in wall time)")
    diff = largest_differences(mine, ref)
    worst = max(diff.values())
    print("  largest relative difference, ours vs paper: "
          + ", ".join(f"{k} {v:.1e}" for k, v in diff.items())
          + f" -> {'equal within 1e-6' if worst < 1e-6 else 'NOT equal within 1e-6'}")
    print(f"  load average now {os.getloadavg()[0]:.1f}; wall time so far "
          f"{time.perf_counter() - start:.0f} s")
    small = max(args.batch, n // 8)
    for route in ("ours", "paper"):
        peaks = [peak_child(route, args, m) for m in (small, 4 * small)]
        print(f"  peak memory, {route:>5}: {peaks[0]:7.1f} MiB at {small:,} positions, "
              f"{peaks[1]:7.1f} MiB at {4 * small:,} ({peaks[1] / max(peaks[0], 0.1):.2f}x)")


if __name__ == "__main__":
    main()
