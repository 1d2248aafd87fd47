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
        for final in (3, 10, 64, 100, 2000, 1, 2):  # 1 and 2 last: they hide many mistakes
            want = [int(c.removeprefix("step")) for c in tiny_checkpoints(final)]
            got = call(fn, final)
            try:
                got = list(got)
            except TypeError as e:
                raise Wrong(f"log_spaced_steps({final}): expected a list of steps, got "
                            f"{type(got).__name__}") from e
            if got == want:
                continue
            what = f"log_spaced_steps({final})"
            if any(isinstance(x, str) for x in got):
                raise Wrong(f"{what}: return the steps as integers ({want[:3]}...), not "
                            f"revision names like {got[0]!r}")
            if any(not float(x).is_integer() for x in got):
                raise Wrong(f"{what}: steps are integers: 0, then the powers of two 1, 2, "
                            "4, ... below final (np.logspace spreads floats evenly, which is "
                            "not the checkpoints' rule)")
            got = [int(x) for x in got]
            if got == want:
                continue
            if got == want[::-1] or got == sorted(got, reverse=True) != sorted(got):
                raise Wrong(f"{what}: return the steps in increasing order")
            if got == want[1:]:
                raise Wrong(f"{what}: start with step 0 (the checkpoint before training)")
            if got == want[:-1]:
                raise Wrong(f"{what}: end with the final step, {final}")
            if got.count(final) > 1:
                raise Wrong(f"{what}: {final} is a power of two: list it once (the powers "
                            "strictly below final, then final)")
            if any(x > final for x in got):
                raise Wrong(f"{what}: no step after the final one: the powers of two "
                            f"strictly below {final}, then {final}")
            expect_equal(got, want, what)
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
            if got == want:
                continue
            try:
                value = float(got)
            except Exception as e:
                raise Wrong(f"count_parameters on a tiny {arch} model: expected a number, got "
                            f"{type(got).__name__}") from e
            where = f"on a tiny {arch} model"
            params = list(model.parameters())
            named = dict(model.named_parameters())
            embed = model.get_input_embeddings().weight.numel()
            unembed = 0 if tied else model.get_output_embeddings().weight.numel()
            if value == len(params):
                raise Wrong(f"{where} you counted the parameter tensors ({len(params)}); count "
                            "their entries: sum of p.numel()")
            if abs(value - want / 1e6) < 1e-9:
                raise Wrong(f"{where}: return the count itself ({want:,}), not millions")
            if value == sum(p.shape[0] for p in params):
                raise Wrong(f"{where} you added up len(p) (the first dimension); count every "
                            "entry: p.numel()")
            if value == sum(p.numel() for n, p in named.items() if n.endswith("weight")):
                raise Wrong(f"{where} you counted the weights only; biases and layer-norm "
                            "parameters are parameters too")
            if value == want - embed - unembed:
                raise Wrong(f"{where} you left out the embeddings (the 'non-embedding' count "
                            "some papers report); count every parameter")
            if unembed and value == want - unembed:
                raise Wrong(f"{where} you left out the unembedding (its own matrix in "
                            "GPT-NeoX, not tied): count every parameter of the model")
            expect_equal(int(value), want, f"count_parameters on a tiny {arch} model")
    return run("Exercise 0.2 (count parameters)", body)


def check_tokens_per_word(fn: Callable, tokenizer) -> CheckResult:
    """Exercise 0.3: ``fn(tokenizer, texts)`` -> tokens per whitespace-separated word."""
    texts = ["The old farmer feeds the goats.", "Tavrin watches them because she likes goats.",
             "Zoussulvissa borrows several books near the aisle."]

    def body():
        toks = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
        words = [len(t.split()) for t in texts]
        n_tok, n_words = sum(toks), sum(words)
        want = n_tok / n_words
        got = call(fn, tokenizer, texts)
        try:
            got = float(got)
        except Exception as e:
            raise Wrong(f"tokens_per_word: expected a number, got {type(got).__name__}") from e
        if abs(got - want) <= 1e-6 * want:   # a float32 answer is right too
            return
        special = sum(len(tokenizer(t)["input_ids"]) for t in texts)
        keys = sum(len(tokenizer(t, add_special_tokens=False)) for t in texts)
        mistakes = [
            (special / n_words, "pass add_special_tokens=False: the special tokens the "
             "tokenizer adds (such as a start token) are not pieces of words"),
            (n_words / n_tok, "tokens per word is tokens / words, not words / tokens"),
            (n_tok / sum(len(t) for t in texts), "divide by the words (text.split()), not the "
             "characters (len(text))"),
            (sum(t / w for t, w in zip(toks, words)) / len(texts), "divide the total tokens "
             "by the total words; the mean of per-text ratios weighs a short text like a long "
             "one"),
            (keys / n_words, "len(tokenizer(text)) is the number of fields of the encoding "
             "(input_ids, attention_mask, ...): count len(tokenizer(text, ...)['input_ids'])"),
            (n_tok // n_words, "that is integer division (//): use /"),
            (toks[0] / words[0], "you counted only the first text (a return inside the "
             "loop?): add up over every text"),
        ]
        for value, message in mistakes:
            if value != want and abs(got - value) <= 1e-6 * abs(value):
                raise Wrong(message)
        raise Wrong(f"expected {want:.6g} tokens per word on the check's texts, got {got:.6g}")
    return run("Exercise 0.3 (tokens per word)", body)
