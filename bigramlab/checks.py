"""Automatic checks for the exercises.

Each ``check_*`` function takes the student's function, runs it on cases
whose answers bigramlab computes itself, and prints one line:

    ✓ <exercise>: correct
    ✗ <exercise>: not implemented yet
    ✗ <exercise>: <what is wrong, on which input>

It returns True or False and never raises, so an unsolved exercise notebook
still runs from top to bottom. A stub that returns None counts as "not
implemented yet" (the generated exercises replace solutions by ``pass``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


class _Wrong(Exception):
    """What a check found wrong, in words for the student."""


class _NotImplemented(Exception):
    pass


def _call(fn: Callable, *args) -> Any:
    try:
        out = fn(*args)
    except NotImplementedError as e:  # a student may raise it themselves
        raise _NotImplemented from e
    except Exception as e:  # the student's code failed: say how, don't crash the notebook
        raise _Wrong(f"your function raised {type(e).__name__}: {e}") from e
    if out is None:
        raise _NotImplemented
    return out


def _run(name: str, body: Callable[[], None]) -> bool:
    try:
        body()
    except _NotImplemented:
        print(f"✗ {name}: not implemented yet")
        return False
    except _Wrong as e:
        print(f"✗ {name}: {e}")
        return False
    print(f"✓ {name}: correct")
    return True


def _expect_equal(got, want, what: str) -> None:
    if isinstance(want, torch.Tensor) or isinstance(got, torch.Tensor):
        got_t, want_t = torch.as_tensor(got), torch.as_tensor(want)
        if got_t.shape != want_t.shape:
            raise _Wrong(f"{what}: expected shape {tuple(want_t.shape)}, got {tuple(got_t.shape)}")
        if not torch.allclose(got_t.double(), want_t.double(), rtol=1e-4, atol=1e-6,
                              equal_nan=True):
            raise _Wrong(f"{what}: values differ from the expected ones")
        return
    if got != want:
        raise _Wrong(f"{what}: expected {want!r}, got {got!r}")


# --- Chapter 0 --------------------------------------------------------------

def check_log_spaced_steps(fn: Callable[[int], list[int]]) -> bool:
    """Exercise 0.1: ``fn(final)`` -> [0, 1, 2, 4, ..., final] like the tiny checkpoints."""
    from .profiles import tiny_checkpoints

    def body():
        for final in (1, 2, 3, 10, 64, 100, 2000):
            want = [int(c.removeprefix("step")) for c in tiny_checkpoints(final)]
            _expect_equal(list(_call(fn, final)), want, f"log_spaced_steps({final})")
    return _run("Exercise 0.1 (log-spaced checkpoints)", body)


def check_count_parameters(fn: Callable) -> bool:
    """Exercise 0.2: ``fn(model)`` -> number of distinct parameters (tied ones once)."""
    from .models import make_model
    from .profiles import TinyWorld

    def body():
        for arch in ("gpt_neox", "gpt2"):  # GPT-2 ties its unembedding to the embedding
            torch.manual_seed(0)
            model = make_model(arch, TinyWorld(n_layer=2, d_model=16, n_head=2, d_mlp=32), 40, 16)
            want = sum(p.numel() for p in model.parameters())  # parameters() dedupes ties
            got = _call(fn, model)
            if arch == "gpt2" and got == want + 40 * 16:
                raise _Wrong("GPT-2's unembedding is tied to its embedding: count it once")
            _expect_equal(int(got), want, f"count_parameters on a tiny {arch} model")
    return _run("Exercise 0.2 (count parameters)", body)


def check_tokens_per_word(fn: Callable, tokenizer) -> bool:
    """Exercise 0.3: ``fn(tokenizer, texts)`` -> tokens per whitespace-separated word."""
    texts = ["The old farmer feeds the goats.", "Tavrin watches them because she likes goats.",
             "Zoussulvissa borrows several books near the aisle."]

    def body():
        n_tok = sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)
        want = n_tok / sum(len(t.split()) for t in texts)
        got = float(_call(fn, tokenizer, texts))
        if abs(got - want) > 1e-9:
            raise _Wrong(f"expected {want:.4f} tokens per word on the check's texts, got {got:.4f}")
    return _run("Exercise 0.3 (tokens per word)", body)
