"""Peak memory of one mask-training step, default vs ``memory="low"``, at real shapes.

Each case runs in a fresh subprocess: a random-weight model built from a real
profile's config at its full width (``worlds.models.make_model``), a random
bigram-like target, and one optimizer step of ``sparsify`` (plus the one-time
setup); the subprocess reports its peak resident memory (``ru_maxrss``) minus
what it held before the model was built. On a CPU, where PyTorch returns large
blocks to the system when they are freed, this is close to the peak of live
tensors; a GPU's caching allocator adds fragmentation on top (not measured: no
GPU was lent). Run:

    python benchmarks/bench_lowmem.py [pythia-160m:default pythia-160m:low ...] [--batch 32]
    python benchmarks/bench_lowmem.py --tiny   # what the low-memory mode does to a mask

``--tiny`` trains the chapters' default bigram subnetwork of the tiny world
(lambda 3, at most 600 steps) the default way and the low-memory way (fp16
weights computed in fp32, bf16 moments, micro-batches of 8) and compares them:
steps, kept entries, agreement of the two masks, Pearson r with the bigram
surprisals.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Peaks measured by ``--record`` runs (the T4 tables of the book's appendix and setup page show them).
RESULTS = ROOT / "benchmarks" / "results" / "lowmem.json"

CHILD = r'''
import json, resource, sys, time
import torch
sys.path.insert(0, {root!r})
from bigramlab.plumbing.profiles import PROFILES, TinyWorld
from bigramlab.worlds.models import make_model
from bigramlab.methods.sparsify import sparsify, SparsifyConfig
from bigramlab.experiments.plan import mask_step_cost

def rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB -> bytes

name, memory, batch = {name!r}, {memory!r}, {batch}
p = PROFILES[name]
s = p.shape
torch.manual_seed(0)
before = rss()
world = TinyWorld(n_layer=s.n_layer, d_model=s.d_model, n_head=s.n_head, d_mlp=s.d_mlp)
model = make_model(p.arch, world, s.vocab_size, p.seq_len)
if memory == "low" and p.weights_dtype != "float32":  # stored as the profile stores it
    model = model.to(getattr(torch, p.weights_dtype))
model.eval()
ids = torch.randint(0, s.vocab_size, (batch, p.seq_len))

def target(logits, x, full_fn):  # a dense-free stand-in for the bigram CE: next-token CE
    return torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), x.roll(-1, 1).flatten())

built = rss()
t = time.perf_counter()
cfg = SparsifyConfig(lam=10.0, max_steps=1, batch_size=batch, max_attempts=1)
sparsify(model, ids, target, cfg, progress=False, memory=memory)
print(json.dumps(dict(profile=name, memory=memory, batch=batch, weights=p.weights_dtype
                      if memory == "low" else "float32",
                      weights_gib=(built - before) / 2**30, peak_gib=(rss() - before) / 2**30,
                      seconds=time.perf_counter() - t,
                      bound_gib=mask_step_cost(p.replace(batch_size=batch))["min_gib"])))
'''


def measure(name: str, memory: str, batch: int) -> dict:
    code = CHILD.format(root=str(ROOT), name=name, memory=memory, batch=batch)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode:
        return dict(profile=name, memory=memory, batch=batch, error=out.stderr[-500:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def tiny_effect() -> dict:
    """The chapters' default tiny mask, trained the default and the low-memory way."""
    sys.path.insert(0, str(ROOT))
    import torch
    from bigramlab import get_profile
    from bigramlab.experiments import evaluate_subnetwork, mask_config, train_subnetwork
    from bigramlab.experiments.subnetworks import model_and_bigram
    from bigramlab.methods.sparsify import BigramTarget, sparsify
    from bigramlab.worlds.loading import load_corpus

    p = get_profile("tiny")
    ref = train_subnetwork(p, 3.0, max_steps=p.chapter_max_steps, progress=False)
    model, bigram = model_and_bigram(p, p.final_checkpoint)
    half = type(model)(model.config)
    half.load_state_dict(model.state_dict())
    half = half.to(torch.float16).eval()
    low = sparsify(half, load_corpus(p, "train"), BigramTarget(bigram),
                   mask_config(p, 3.0, max_steps=p.chapter_max_steps), progress=False,
                   memory="low")
    both = ref.mask & low.mask
    out = {}
    for name, r in (("default", ref), ("low", low)):
        ev = evaluate_subnetwork(p, r.mask, progress=False)
        out[name] = dict(steps=r.steps, kept=r.kept_count, r_max=round(ev["r_max"], 4),
                         ce_bigram=round(ev["ce_bigram"], 4))
    out["shared"] = both.count()
    out["jaccard"] = round(both.count() / (ref.mask | low.mask).count(), 4)
    return out


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cases", nargs="*", default=["pythia-160m:default", "pythia-160m:low"])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--tiny", action="store_true", help="the effect on the tiny world's mask")
    ap.add_argument("--record", action="store_true",
                    help=f"add the results to {RESULTS.relative_to(ROOT)} (tools/t4_table.py reads it)")
    args = ap.parse_args(argv)
    if args.tiny:
        print(json.dumps(tiny_effect()), flush=True)
        return
    for case in args.cases:
        name, _, memory = case.partition(":")
        row = measure(name, memory or "default", args.batch)
        print(json.dumps(row), flush=True)
        if args.record and "error" not in row:
            rows = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
            rows[f"{name}:{row['memory']}:{row['weights']}:{row['batch']}"] = {
                "peak_gib": round(row["peak_gib"], 2), "cpu_seconds": round(row["seconds"])}
            RESULTS.write_text(json.dumps(rows, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
