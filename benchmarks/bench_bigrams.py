"""Benchmark bigramlab.methods.bigrams against the reference algorithms.

    python benchmarks/bench_bigrams.py            # full run (several minutes)
    python benchmarks/bench_bigrams.py --quick    # smoke run (well under a minute)
    python benchmarks/bench_bigrams.py --counting-only   # part 1 only

Measures, side by side in one process (on CPU, and on CUDA when available):

1. Counting N Zipf-distributed tokens (ids drawn with P(id) ~ 1 / (id + 1),
   sequences of 128, streamed in batches of 512 sequences) at V = 50,277 and
   V = 2,048 with BigramModel.from_corpus, versus
   - the paper's counting loop (ngram_utils.compute_ngram_counts: per token,
     np.roll a context window and update nested Counters), and a plain
     per-token Python loop over nested Counters; both are timed on a slice
     and scaled linearly to N (the output says so);
   - collections.Counter(zip(a, a[1:])) over the whole token stream (it
     ignores sequence boundaries and the start context; a lower bound).
   Baselines get Python lists of ints prepared outside the timer.
   Trigrams (Chapter 9): TrigramModel.from_corpus with pruning at 2 (it
   counts trigrams, derives the bigrams from them, prunes, builds its rows),
   versus the paper's loop making the same two tables (n = 3, pruned at 2 by
   its prune_ngrams, and n = 2), timed on the slice and scaled the same way;
   the kept trigram and the bigram counts are checked equal to the loop's.
2. Bigram cross-entropy, forward + backward, on a 32 x 128 batch of float32
   logits, with the model counted in part 1, versus hard-label
   F.cross_entropy on the same logits, and versus the reference's way
   (a Python loop over positions filling a dense float64 (batch, seq, V)
   target from precomputed dense bigram rows, then soft-target
   F.cross_entropy).  Extra peak memory = peak minus memory before the call
   minus the gradient of the logits (which every method must produce):
   on CUDA from torch.cuda.max_memory_allocated; on CPU from the process's
   peak resident set (VmHWM, reset through /proc/self/clear_refs) in a fresh
   subprocess per method.

Timings are medians of interleaved repeats (wall clock); other processes on
the machine can disturb them, so the load average is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))
from bigramlab.methods.bigrams import BigramModel  # noqa: E402
from bigramlab.methods.trigrams import TrigramModel  # noqa: E402

SEQ = 128
BATCH_SEQS = 512


# ------------------------------------------------------------------ data
def zipf_tokens(n_tokens: int, V: int, seed: int) -> torch.Tensor:
    """(n_tokens // SEQ, SEQ) int64 ids with P(id) proportional to 1/(id+1)."""
    gen = torch.Generator().manual_seed(seed)
    weights = 1.0 / torch.arange(1, V + 1, dtype=torch.float64)
    n_seq = max(1, n_tokens // SEQ)
    return torch.multinomial(weights, n_seq * SEQ, replacement=True,
                             generator=gen).view(n_seq, SEQ)


# ------------------------------------------------------- counting baselines
def paper_counting_loop(sequences: list[list[int]], V: int, ngram_n: int = 2):
    """ngram_utils.compute_ngram_counts for n = ngram_n, minus file reading."""
    ngrams = defaultdict(lambda: Counter())
    for sequence in sequences:
        curr = np.ones(ngram_n, dtype=int) * V
        for token_id in sequence:
            curr = np.roll(curr, -1)
            curr[-1] = token_id
            ngrams[tuple(curr[:-1])][curr[-1]] += 1
    return ngrams


def paper_prune(ngrams, min_count=2):
    """ngram_utils' prune_ngrams: drop counts below min_count, then emptied contexts."""
    for context in list(ngrams):
        counts = ngrams[context]
        for target in [t for t, c in counts.items() if c < min_count]:
            counts.pop(target)
        if not counts:
            ngrams.pop(context)
    return ngrams


def plain_counting_loop(sequences: list[list[int]], V: int):
    counts = defaultdict(Counter)
    for sequence in sequences:
        prev = V
        for tok in sequence:
            counts[prev][tok] += 1
            prev = tok
    return counts


def counter_zip(tokens: list[int]):
    return Counter(zip(tokens, tokens[1:]))


def model_pair_counts(model: BigramModel) -> dict:
    V = model.vocab_size
    if model.storage == "dense":
        table = model._table[: V + 1].cpu()
        nz = table.nonzero()
        return {(a, b): c for (a, b), c in zip(nz.tolist(),
                                               table[nz[:, 0], nz[:, 1]].tolist())}
    keys, counts = model._keys.cpu(), model._counts.cpu()
    return {(k // V, k % V): c for k, c in zip(keys.tolist(), counts.tolist())}


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device=torch.device("cpu")):
    sync(device)
    t = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - t, out


def bench_counting(V, corpus, args, devices, rows):
    n = corpus.numel()
    batches = list(corpus.split(BATCH_SEQS))
    results = {}
    for dev in devices:
        def ours():
            return BigramModel.from_corpus(batches, V, device=dev)
        timed(ours, dev)  # warm-up (allocator, kernels)
        times = [timed(ours, dev)[0] for _ in range(args.reps)]
        results[f"ours-{dev.type}"] = statistics.median(times)
    model = BigramModel.from_corpus(batches, V)  # CPU model for part 2

    # Baselines on Python ints, prepared outside the timers.
    n_slice_seq = max(1, args.ref_tokens // SEQ)
    slice_seqs = corpus[:n_slice_seq].tolist()
    slice_tokens = n_slice_seq * SEQ
    t_paper, ref_counts = timed(lambda: paper_counting_loop(slice_seqs, V))
    t_plain, plain_counts = timed(lambda: plain_counting_loop(slice_seqs, V))
    flat = corpus.reshape(-1).tolist()
    t_zip = statistics.median(timed(lambda: counter_zip(flat))[0]
                              for _ in range(max(1, args.reps // 2)))

    # Correctness on the slice: our counts == the paper loop's counts.
    small = BigramModel.from_corpus([corpus[:n_slice_seq]], V)
    want = {(int(a[0]), int(b)): c for a, row in ref_counts.items()
            for b, c in row.items()}
    assert model_pair_counts(small) == want, "counts differ from the paper loop"
    assert sum(sum(r.values()) for r in plain_counts.values()) == slice_tokens

    scale = n / slice_tokens
    ours_cpu = results["ours-cpu"] if "ours-cpu" in results else None
    label = f"timed on {slice_tokens:,} tokens, x{scale:.1f}"
    for dev in devices:
        t = results[f"ours-{dev.type}"]
        rows.append([f"{V:,}", f"bigramlab from_corpus ({dev.type})",
                     f"{t:.3f}", f"{n / t / 1e6:.1f}", "1.0", "", ""])
    ref = ours_cpu if ours_cpu is not None else results[f"ours-{devices[0].type}"]
    tiny = V <= 4096
    rows.append([f"{V:,}", f"paper loop (np.roll + nested Counters), {label}",
                 f"{t_paper * scale:.1f}", f"{n / (t_paper * scale) / 1e6:.3f}",
                 f"{t_paper * scale / ref:.0f}x",
                 ">= 50x" if tiny else ">= 100x",
                 _ok(t_paper * scale / ref >= (50 if tiny else 100))])
    rows.append([f"{V:,}", f"plain nested-Counter loop, {label}",
                 f"{t_plain * scale:.2f}", f"{n / (t_plain * scale) / 1e6:.2f}",
                 f"{t_plain * scale / ref:.1f}x", "(stricter, no target)", ""])
    rows.append([f"{V:,}", "Counter(zip(a, a[1:])) over all tokens",
                 f"{t_zip:.2f}", f"{n / t_zip / 1e6:.2f}",
                 f"{t_zip / ref:.1f}x", "" if tiny else ">= 5x",
                 "" if tiny else _ok(t_zip / ref >= 5)])
    return model


def bench_trigram_counting(V, corpus, args, devices, rows):
    n = corpus.numel()
    batches = list(corpus.split(BATCH_SEQS))
    results = {}
    for dev in devices:
        def ours():
            return TrigramModel.from_corpus(batches, V, device=dev, min_count=2)
        timed(ours, dev)  # warm-up
        results[dev.type] = statistics.median(timed(ours, dev)[0] for _ in range(args.reps))
    n_slice_seq = max(1, args.ref_tokens // SEQ)
    slice_seqs = corpus[:n_slice_seq].tolist()
    slice_tokens = n_slice_seq * SEQ

    def paper():
        return (paper_prune(paper_counting_loop(slice_seqs, V, 3), 2),
                paper_counting_loop(slice_seqs, V, 2))
    t_paper, (tri, bi) = timed(paper)
    # Correctness on the slice: kept trigrams and bigrams == the paper loop's.
    small = TrigramModel.from_corpus([corpus[:n_slice_seq]], V, min_count=2)
    keys, counts = small.ngram_counts.sparse()
    got = {(k // V // (V + 1), k // V % (V + 1), k % V): c
           for k, c in zip(keys.tolist(), counts.tolist())}
    want = {(int(ctx[0]), int(ctx[1]), int(b)): c for ctx, row in tri.items()
            for b, c in row.items()}
    assert got == want, "kept trigram counts differ from the paper loop"
    assert model_pair_counts(small.bigram) == {(int(a[0]), int(b)): c for a, row in bi.items()
                                               for b, c in row.items()}, "bigram counts differ"
    scale = n / slice_tokens
    for dev in devices:
        t = results[dev.type]
        rows.append([f"{V:,}", f"bigramlab TrigramModel.from_corpus, k = 2 ({dev.type})",
                     f"{t:.3f}", f"{n / t / 1e6:.1f}", "1.0", "", ""])
    ref = results.get("cpu", results[devices[0].type])
    rows.append([f"{V:,}", "paper loop, n = 3 (pruned at 2) and n = 2 tables, timed on "
                 f"{slice_tokens:,} tokens, x{scale:.1f}", f"{t_paper * scale:.1f}",
                 f"{n / (t_paper * scale) / 1e6:.3f}", f"{t_paper * scale / ref:.0f}x",
                 "(no target)", ""])


def _ok(flag):
    return "met" if flag else "NOT met"


# ------------------------------------------------------ cross-entropy methods
def make_ce_inputs(V, batch, seq, device, seed=123):
    ids = zipf_tokens(batch * seq, V, seed).view(batch, seq).to(device)
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, seq, V, generator=gen).to(device)
    hard = torch.roll(ids, -1, dims=1)  # any valid labels; cost is the same
    return ids, logits, hard


def reference_row_cache(model, ids):
    """Dense float64 rows per context (the reference keeps such arrays)."""
    ctx = ids.reshape(-1).unique()
    rows = model.next_token_probs(ctx.to(model.device)).double().cpu().numpy()
    return {int(c): r for c, r in zip(ctx.tolist(), rows)}


def run_ours(model, logits, ids, hard, cache):
    model.cross_entropy(logits, ids).backward()


def run_hard(model, logits, ids, hard, cache):
    V = logits.shape[-1]
    F.cross_entropy(logits.reshape(-1, V), hard.reshape(-1)).backward()


def run_dense_reference(model, logits, ids, hard, cache):
    B, S, V = logits.shape
    target = np.empty((B, S, V))  # float64, as in ngram_predict
    ids_list = ids.tolist()
    for i in range(B):
        for t in range(S):
            target[i, t, :] = cache[ids_list[i][t]]
    target = torch.Tensor(target).to(logits.device)  # float32, as in training
    F.cross_entropy(logits.reshape(-1, V), target.reshape(-1, V)).backward()


METHODS = {"ours": run_ours, "hard": run_hard, "dense-ref": run_dense_reference}


def fresh_leaf(logits):
    return logits.detach().requires_grad_()


def bench_ce_time(model, V, device, args):
    model = model.to(device) if device.type != "cpu" else model
    ids, logits, hard = make_ce_inputs(V, args.batch, SEQ, device)
    cache = reference_row_cache(model, ids)
    # Correctness: ours vs the dense reference, value and gradient.
    a, b = fresh_leaf(logits), fresh_leaf(logits)
    la = model.cross_entropy(a, ids)
    la.backward()
    target = torch.tensor(np.stack([cache[c] for c in ids.reshape(-1).tolist()]),
                          dtype=torch.float32, device=device)
    lb = F.cross_entropy(b.reshape(-1, V), target)
    lb.backward()
    check = (abs(la.item() - lb.item()) / abs(lb.item()),
             (a.grad - b.grad).abs().max().item())
    del a, b, target
    times = {m: [] for m in METHODS}
    for name, fn in METHODS.items():  # warm-up
        fn(model, fresh_leaf(logits), ids, hard, cache)
    for _ in range(args.reps):
        for name, fn in METHODS.items():  # interleaved: fair under noise
            x = fresh_leaf(logits)
            t, _ = timed(lambda: fn(model, x, ids, hard, cache), device)
            times[name].append(t)
            del x
    rows_ = model.context_rows(ids.reshape(-1))
    if model.storage == "sparse":
        nnz = int((model._row_ptr[rows_ + 1] - model._row_ptr[rows_]).sum())
    else:
        nnz = int((model._dense_probs[model._dense_slot[rows_]] > 0).sum())
    return ({m: statistics.median(t) for m, t in times.items()}, check, nnz,
            int(rows_.unique().numel()))


def bench_ce_memory_cuda(model, V, device, args):
    ids, logits, hard = make_ce_inputs(V, args.batch, SEQ, device)
    cache = reference_row_cache(model, ids)
    grad_bytes = logits.numel() * logits.element_size()
    out = {}
    for name, fn in METHODS.items():
        x = fresh_leaf(logits)
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn(model, x, ids, hard, cache)
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device)
        out[name] = peak - before - grad_bytes
        del x
    return out


def _rss_kib(field="VmRSS"):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(field)


def memory_child(args):
    """Run one method once in this fresh process; print its extra peak RSS."""
    V = args.V
    model = BigramModel.load(args.model_path)
    ids, logits, hard = make_ce_inputs(V, args.batch, SEQ, torch.device("cpu"))
    cache = reference_row_cache(model, ids) if args.method == "dense-ref" \
        else None
    fn = METHODS[args.method]
    # Warm-up on a tiny batch: thread pools, lazy initialisations.
    fn(model, fresh_leaf(logits[:1, :4].contiguous()), ids[:1, :4],
       hard[:1, :4], cache)
    x = fresh_leaf(logits)
    grad_bytes = logits.numel() * logits.element_size()
    how = "VmHWM after /proc/self/clear_refs"
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak resident set size
        before = _rss_kib() * 1024
        fn(model, x, ids, hard, cache)
        peak = _rss_kib("VmHWM") * 1024
    except OSError:
        # No clear_refs: sample the resident set from a thread instead.
        import psutil
        how = "psutil RSS sampled every 0.5 ms"
        proc, samples, done = psutil.Process(), [], threading.Event()

        def sample():
            while not done.is_set():
                samples.append(proc.memory_info().rss)
                time.sleep(0.0005)
        before = proc.memory_info().rss
        th = threading.Thread(target=sample)
        th.start()
        fn(model, x, ids, hard, cache)
        done.set()
        th.join()
        peak = max(samples + [proc.memory_info().rss])
    print(json.dumps({"extra": peak - before - grad_bytes, "how": how}))


def bench_ce_memory_cpu(model_path, V, args):
    out, how = {}, ""
    for name in METHODS:
        cmd = [sys.executable, os.path.abspath(__file__), "--_memory-child",
               "--method", name, "--model-path", model_path, "--V", str(V),
               "--batch", str(args.batch), "--threads",
               str(torch.get_num_threads())]
        res = subprocess.run(cmd, capture_output=True, text=True, check=True)
        data = json.loads(res.stdout.strip().splitlines()[-1])
        out[name], how = data["extra"], data["how"]
    return out, how


# ------------------------------------------------------------------- main
def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small smoke run")
    p.add_argument("--device", default="auto",
                   help="cpu, cuda or auto (cpu, plus cuda if available)")
    p.add_argument("--tokens", type=int, default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--ref-tokens", type=int, default=None,
                   help="tokens the paper's loops are timed on (then scaled)")
    p.add_argument("--counting-only", action="store_true",
                   help="part 1 only (bigram and trigram counting)")
    p.add_argument("--_memory-child", dest="memory_child", action="store_true",
                   help=argparse.SUPPRESS)
    p.add_argument("--method", help=argparse.SUPPRESS)
    p.add_argument("--model-path", help=argparse.SUPPRESS)
    p.add_argument("--V", type=int, help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_child:
        return memory_child(args)

    args.tokens = args.tokens or (200_000 if args.quick else 5_000_000)
    args.ref_tokens = args.ref_tokens or (20_000 if args.quick else 500_000)
    args.reps = 1 if args.quick else 3
    args.batch = args.batch or (4 if args.quick else 32)
    devices = []
    if args.device in ("auto", "cpu"):
        devices.append(torch.device("cpu"))
    if args.device in ("auto", "cuda") and torch.cuda.is_available():
        devices.append(torch.device("cuda"))

    print("## Environment\n")
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f
                       if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print(f"- python {platform.python_version()}, torch {torch.__version__}, "
          f"numpy {np.__version__}")
    print(f"- CPU: {cpu}, {os.cpu_count()} logical cores, torch threads "
          f"{torch.get_num_threads()}, load average {os.getloadavg()[0]:.2f} "
          "(other processes on the machine disturb the timings)")
    for dev in devices:
        if dev.type == "cuda":
            print(f"- CUDA: {torch.cuda.get_device_name(dev)}")
    print(f"- devices benchmarked: {', '.join(d.type for d in devices)}"
          + ("  (--quick smoke run)" if args.quick else ""))
    print()

    count_rows, ce_rows, notes = [], [], []
    tmp = tempfile.mkdtemp(prefix="bench_bigrams_")
    for V in (50_277, 2_048):
        corpus = zipf_tokens(args.tokens, V, seed=V)
        model = bench_counting(V, corpus, args, devices, count_rows)
        bench_trigram_counting(V, corpus, args, devices, count_rows)
        if args.counting_only:
            continue
        path = os.path.join(tmp, f"bigrams_{V}.safetensors")
        model.save(path)
        for dev in devices:
            t, check, nnz, uniq = bench_ce_time(model, V, dev, args)
            if dev.type == "cuda":
                mem, how = bench_ce_memory_cuda(model.to(dev), V, dev,
                                                args), "torch.cuda peak"
                model.to("cpu")
            else:
                mem, how = bench_ce_memory_cpu(path, V, args)
            notes.append(f"V={V:,} on {dev.type}: batch rows hold {nnz:,} "
                         f"non-zeros ({uniq} distinct contexts); ours vs dense "
                         f"reference: loss rel. diff {check[0]:.1e}, max "
                         f"|grad diff| {check[1]:.1e}; memory: {how}")
            mib = {m: v / 2**20 for m, v in mem.items()}
            ce_rows.append([f"{V:,}", dev.type, "bigramlab cross_entropy",
                            f"{t['ours']:.3f}", "1.0", "", f"{mib['ours']:.0f}",
                            "1.0", ""])
            r = t["ours"] / t["hard"]
            ce_rows.append([f"{V:,}", dev.type, "hard-label F.cross_entropy",
                            f"{t['hard']:.3f}",
                            f"ours takes {r:.2f}x", f"<= 2x: {_ok(r <= 2)}",
                            f"{mib['hard']:.0f}", "", ""])
            r = t["dense-ref"] / t["ours"]
            m = mib["ours"] / mib["dense-ref"] if mib["dense-ref"] > 0 else 0
            ce_rows.append([f"{V:,}", dev.type,
                            "dense target loop + soft F.cross_entropy",
                            f"{t['dense-ref']:.3f}", f"ours {r:.1f}x faster",
                            f">= 3x: {_ok(r >= 3)}", f"{mib['dense-ref']:.0f}",
                            f"ours uses {m:.3f}x",
                            f"<= 0.1x: {_ok(m <= 0.1)}"])

    print(f"## Counting {corpus.numel():,} Zipf tokens (sequences of {SEQ}, "
          f"batches of {BATCH_SEQS} sequences)\n")
    print(f"| V | method | seconds | M tokens/s | slower than ours "
          f"({devices[0].type}) | target | |")
    print("|---|---|---|---|---|---|---|")
    for r in count_rows:
        print("| " + " | ".join(r) + " |")
    if args.counting_only:
        return
    print(f"\n## Bigram cross-entropy forward + backward, batch {args.batch} x "
          f"{SEQ}, float32 logits\n")
    print("| V | device | method | seconds | time ratio | target "
          "| extra peak MiB | memory ratio | target |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in ce_rows:
        print("| " + " | ".join(r) + " |")
    print()
    for n in notes:
        print(f"- {n}")
    if args.quick:
        print("- --quick smoke run: sizes are too small for the targets to "
              "mean anything; they are stated for the full run.")
    print("- extra peak MiB = peak during one forward+backward minus memory "
          "before it minus the logits' gradient (logits and model excluded); "
          "the dense reference's precomputed float64 rows are part of its "
          "'model', built before the measurement.")


if __name__ == "__main__":
    main()
