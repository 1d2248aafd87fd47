"""Checks for the exercises of Chapter 0 (setup)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..plumbing.profiles import TinyWorld, tiny_checkpoints
from ..worlds.models import make_model
from ._core import CheckResult, Wrong, call, expect_equal, run


def check_log_spaced_steps(fn: Callable[[int], list[int]]) -> CheckResult:
    """Exercise 0.1: ``fn(final)`` -> [0, 1, 2, 4, ..., final] like the tiny checkpoints."""

    def body():
        for final in (1, 2, 3, 10, 64, 100, 2000):
            want = [int(c.removeprefix("step")) for c in tiny_checkpoints(final)]
            expect_equal(list(call(fn, final)), want, f"log_spaced_steps({final})")
    return run("Exercise 0.1 (log-spaced checkpoints)", body)


def check_count_parameters(fn: Callable) -> CheckResult:
    """Exercise 0.2: ``fn(model)`` -> number of distinct parameters (tied ones once)."""

    def body():
        for arch in ("gpt_neox", "gpt2"):  # GPT-2 ties its unembedding to the embedding
            torch.manual_seed(0)
            model = make_model(arch, TinyWorld(n_layer=2, d_model=16, n_head=2, d_mlp=32), 40, 16)
            want = sum(p.numel() for p in model.parameters())  # parameters() dedupes ties
            got = call(fn, model)
            tied = model.get_output_embeddings().weight is model.get_input_embeddings().weight
            if tied and got == want + 40 * 16:
                raise Wrong("GPT-2's unembedding is tied to its embedding: count it once")
            expect_equal(int(got), want, f"count_parameters on a tiny {arch} model")
    return run("Exercise 0.2 (count parameters)", body)


def check_tokens_per_word(fn: Callable, tokenizer) -> CheckResult:
    """Exercise 0.3: ``fn(tokenizer, texts)`` -> tokens per whitespace-separated word."""
    texts = ["The old farmer feeds the goats.", "Tavrin watches them because she likes goats.",
             "Zoussulvissa borrows several books near the aisle."]

    def body():
        n_tok = sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)
        want = n_tok / sum(len(t.split()) for t in texts)
        got = float(call(fn, tokenizer, texts))
        if abs(got - want) > 1e-9:
            raise Wrong(f"expected {want:.4f} tokens per word on the check's texts, got {got:.4f}")
    return run("Exercise 0.3 (tokens per word)", body)
