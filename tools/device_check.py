"""End-to-end check of the CUDA path on a lent GPU (not part of the test suite).

    python tools/device_check.py

Builds the tiny world on the default device (CUDA when present) into a fresh
cache, loads the final checkpoint there, computes surprisals, counts bigrams
and takes one bigram cross-entropy gradient on the GPU, and prints timings.
"""

import os
import tempfile
import time

os.environ.setdefault("BIGRAMLAB_CACHE", tempfile.mkdtemp())
os.environ.setdefault("TQDM_DISABLE", "1")

import torch  # noqa: E402

from bigramlab import (build_world, default_device, get_profile, load_corpus,  # noqa: E402
                       load_model)
from bigramlab.experiments import bigram_model, evaluate_world  # noqa: E402
from bigramlab.methods.metrics import LN2, lm_surprisal  # noqa: E402
from bigramlab.plumbing.devices import describe_device  # noqa: E402


def main():
    print("device:", describe_device(), "| torch", torch.__version__)
    assert default_device().type == "cuda", "no CUDA device: run this on a GPU machine"
    p = get_profile("tiny")
    t = time.perf_counter()
    build_world(p)
    print(f"tiny world built on {default_device()} in {time.perf_counter() - t:.1f} s")
    model, tok = load_model(p)
    assert next(model.parameters()).device.type == "cuda"
    ev = load_corpus(p, "eval")
    s = lm_surprisal(model, ev)
    print(f"LM eval CE on cuda: {float(s.mean() * LN2):.3f} nats")
    bigram = bigram_model(p)
    assert bigram.device.type == "cuda"
    x = ev[:16].to("cuda")
    logits = model(input_ids=x).logits.detach().requires_grad_()
    loss = bigram.cross_entropy(logits, x)
    loss.backward()
    print(f"bigram CE of LM logits on cuda: {loss.item():.3f} nats; grad finite: "
          f"{bool(torch.isfinite(logits.grad).all())}")
    print("evaluate_world (CPU by design, CUDA-trained weights):", evaluate_world(p))


if __name__ == "__main__":
    main()
