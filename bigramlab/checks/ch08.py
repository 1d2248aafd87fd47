"""Checks for the exercises of Chapter 8 (necessity).

The answers come from bigramlab itself: ``methods.ablation.ablation_conditions``
(the five conditions), ``methods.generation.tempered`` (the tempered
next-token distribution), ``methods.overlap.overlap_stats`` (overlap, chance,
share contained) and ``methods.overlap.row_shuffle_null`` (the paper's
row-shuffle chance level), on small random models and masks.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..methods.anatomy import maskable_matrices
from ..methods.generation import tempered
from ..methods.overlap import overlap_stats, row_blocks, row_shuffle_null
from ._core import (Wrong, as_float as _float, as_tensor, call, random_subnetwork, rng, run,
                    small_model)

_KEYS = ("full", "subnetwork", "random", "minus_subnetwork", "minus_random")


def _masks(got, what: str) -> dict:
    try:
        return {k: torch.as_tensor(v).bool() for k, v in dict(got).items()}
    except Exception as e:
        raise Wrong(f"{what}: expected a dict name -> bool tensor, got {type(got).__name__}") from e


# ---------------------------------------------------------------------------
# Exercise 8.1: the five conditions


def check_five_conditions(fn: Callable) -> bool:
    """Exercise 8.1: ``fn(mask, seed)`` -> {condition: mask dict} for the five
    conditions of the ablation (keys: full, subnetwork, random, minus_subnetwork,
    minus_random)."""

    def body():
        model = small_model("gpt_neox")
        sub = random_subnetwork(model, seed=81)
        seed = int(torch.randint(1, 2**31 - 1, (1,), generator=rng(810)))
        given = {k: v.clone() for k, v in sub.items()}
        got = call(fn, given, seed)
        if not all(torch.equal(given[k], sub[k]) for k in sub):
            raise Wrong("you changed the mask you were given (a shuffle in place?); copy it "
                        "first, the other conditions still need it")
        if not isinstance(got, dict) or set(got) != set(_KEYS):
            raise Wrong(f"expected a dict with the keys {', '.join(_KEYS)}")
        cond = {c: _masks(got[c], c) for c in _KEYS}
        for c in _KEYS:
            if set(cond[c]) != set(sub):
                raise Wrong(f"{c}: return a mask for every matrix of the subnetwork, no more")
        for name, m in sub.items():
            k = int(m.sum())
            if not cond["full"][name].all():
                raise Wrong("full: the full model keeps every entry (all True)")
            if not torch.equal(cond["subnetwork"][name], m):
                raise Wrong("subnetwork: the subnetwork condition is the mask itself")
            if not torch.equal(cond["minus_subnetwork"][name], ~m):
                raise Wrong("minus_subnetwork: the full model minus the subnetwork keeps "
                            "exactly what the subnetwork drops (~mask)")
            r, mr = cond["random"][name], cond["minus_random"][name]
            if int(r.sum()) != k:
                raise Wrong(f"random: {name} keeps {int(r.sum())} entries, the subnetwork "
                            f"{k}: keep the subnetwork's count in every matrix (shuffle each "
                            "matrix's mask on its own)")
            if int((~mr).sum()) != k:
                raise Wrong(f"minus_random: {name} drops {int((~mr).sum())} entries; full minus "
                            f"random drops as many as the subnetwork keeps there ({k}), at "
                            "random places, and keeps the rest")
        if all(torch.equal(cond["random"][n], m) for n, m in sub.items()):
            raise Wrong("random: the random subnetwork is the subnetwork itself; put its "
                        "entries at random places")
        if all(torch.equal(~cond["minus_random"][n], m) for n, m in sub.items()):
            raise Wrong("minus_random: you removed the subnetwork itself; remove a random set "
                        "of the same size")
        rand = cond["random"]
        if not all(torch.equal(cond["minus_random"][n], ~rand[n]) for n in sub):
            raise Wrong("minus_random: remove the entries of the same random draw as the "
                        "random condition (~random), not a second draw")
        if not _same_masks(rand, _reference_draw(sub, seed)):
            _diagnose_draw(fn, sub, seed, rand)
    return run("Exercise 8.1 (the five conditions)", body)


def _reference_draw(mask: dict, seed: int, reseed: bool = False) -> dict:
    """The random condition as the exercise asks for it: one generator seeded with
    ``seed``, one permutation of every matrix's flattened entries, in the mask's order."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, m in mask.items():
        if reseed:
            g = torch.Generator().manual_seed(seed)
        flat = m.flatten()
        out[name] = flat[torch.randperm(flat.numel(), generator=g)].view(m.shape)
    return out


def _same_masks(a: dict, b: dict) -> bool:
    return all(torch.equal(a[n], b[n]) for n in b)


def _rows(m: torch.Tensor) -> list:
    return sorted(tuple(r) for r in m.int().tolist())


def _diagnose_draw(fn: Callable, sub: dict, seed: int, rand: dict):
    """Wrong naming how the random condition departs from the seeded draw."""
    def again(s):
        out = call(fn, {k: v.clone() for k, v in sub.items()}, s)
        try:
            return {n: torch.as_tensor(v).bool() for n, v in dict(out["random"]).items()}
        except Exception as e:
            raise Wrong("random: a second call returned no random mask dict") from e
    if not _same_masks(again(seed), rand):
        raise Wrong("random: two calls with the same seed gave different masks; draw from a "
                    "torch.Generator seeded with seed (randperm(..., generator=g))")
    for shift in (1, -1):
        if all(torch.equal(rand[n], m.flatten().roll(shift).view(m.shape))
               for n, m in sub.items()):
            raise Wrong("random: that is the mask shifted by one entry, not shuffled; permute "
                        "the flattened entries with torch.randperm")
    if all(_rows(rand[n]) == _rows(m) for n, m in sub.items()):
        raise Wrong("random: you moved whole rows (randperm over the first dimension), so "
                    "every row keeps its pattern; flatten the matrix first and permute all "
                    "its entries")
    if all(_rows(rand[n].T) == _rows(m.T) for n, m in sub.items()):
        raise Wrong("random: you moved whole columns, so every column keeps its pattern; "
                    "flatten the matrix first and permute all its entries")
    if _same_masks(rand, _reference_draw(sub, seed, reseed=True)):
        raise Wrong("random: seed the generator once, before the loop over matrices; seeded "
                    "afresh for every matrix, matrices of one shape get the same permutation")
    if _same_masks(again(seed + 1), rand):
        raise Wrong("random: the draw does not change with the seed; seed the generator "
                    "with the seed you were given")
    raise Wrong("random: not the seeded draw the exercise asks for: g = torch.Generator()"
                ".manual_seed(seed), then for every matrix in the mask's order "
                "flat[torch.randperm(flat.numel(), generator=g)].view(m.shape)")


# ---------------------------------------------------------------------------
# Exercise 8.2: the tempered distribution


def check_tempered(fn: Callable) -> bool:
    """Exercise 8.2: ``fn(probs, T)`` -> probs^(1/T) renormalised per row; T = 0
    puts all the mass on the most probable token (the lowest id among ties)."""

    def body():
        g = rng(82)
        logits = torch.randn(4, 9, generator=g, dtype=torch.float64) * 2
        probs = torch.softmax(logits, -1)
        for T in (0.3, 1.0, 2.0, 0.0):
            try:
                got = as_tensor(call(fn, probs.clone(), T), f"T = {T}")
            except Wrong as e:
                if T == 0:
                    raise Wrong(f"T = 0 ({e}); T = 0 means greedy: all the probability on "
                                "the most probable token") from e
                raise
            want = tempered(probs, T)
            if got.shape != want.shape:
                raise Wrong(f"T = {T}: expected shape {tuple(want.shape)}, got {tuple(got.shape)}")
            if torch.allclose(got, want, atol=1e-9):
                continue
            if T == 0:
                raise Wrong("T = 0 means greedy: a one-hot row at the most probable token")
            if torch.allclose(got, tempered(probs, 1 / T), atol=1e-9):
                raise Wrong(f"T = {T}: raise p to the power 1/T, not T (a low temperature "
                            "sharpens the distribution)")
            if torch.allclose(got, tempered(probs, T, normalize=False), atol=1e-9):
                raise Wrong(f"T = {T}: renormalise: every row must sum to 1")
            raw = tempered(probs, T, normalize=False)
            if torch.allclose(got, raw / raw.sum(0, keepdim=True), atol=1e-9):
                raise Wrong(f"T = {T}: you normalised over the wrong axis (the columns): "
                            "each ROW is a distribution over the vocabulary, sum(-1)")
            if torch.allclose(got, torch.softmax(probs / T, -1), atol=1e-9):
                raise Wrong(f"T = {T}: softmax(p / T) treats probabilities as logits; "
                            "softmax(logits / T) equals p^(1/T) renormalised")
            if T != 1 and torch.allclose(got, probs, atol=1e-9):
                raise Wrong(f"T = {T}: p / T renormalised is p again; raise p to the power "
                            "1/T before renormalising")
            raise Wrong(f"T = {T}: the distribution differs from p^(1/T) renormalised")
        tie = torch.tensor([[0.25, 0.375, 0.375]], dtype=torch.float64)
        got = as_tensor(call(fn, tie, 0.0), "T = 0 with a tie")
        if not torch.equal(got, torch.tensor([[0.0, 1.0, 0.0]], dtype=torch.float64)):
            raise Wrong("T = 0 with two equal maxima: give all the mass to the lower id")
    return run("Exercise 8.2 (the tempered distribution)", body)


# ---------------------------------------------------------------------------
# Exercise 8.3: overlap, x chance and % contained


def check_overlap_row(fn: Callable) -> bool:
    """Exercise 8.3: ``fn(a, b)`` -> {"overlap", "expected", "x_chance", "contained"}
    as the paper's Table 3 gives them (shares of all mask entries; expected under
    uniform placement within each matrix; contained = |a and b| / |a|)."""

    def body():
        model = small_model("gpt2")
        a, b = dict(random_subnetwork(model, 83)), dict(random_subnetwork(model, 84))
        got = call(fn, a, b)
        keys = ("overlap", "expected", "x_chance", "contained")
        if not isinstance(got, dict) or not set(keys) <= set(got):
            raise Wrong(f"expected a dict with the keys {', '.join(keys)}")
        got = {k: _float(got[k], k) for k in keys}
        st = overlap_stats(a, b)
        n = st["entries"]
        want = {"overlap": st["both"] / n, "expected": st["chance"] / n,
                "x_chance": st["ratio"], "contained": st["share_of_a"]}

        def close(x, y):
            return abs(x - y) <= 1e-9 * max(1.0, abs(y))
        if not close(got["overlap"], want["overlap"]):
            if close(got["overlap"], st["jaccard"]):
                raise Wrong("overlap: the paper divides by all mask entries, not by the "
                            "entries either mask keeps")
            union = sum(int((a[k] | b[k]).sum()) for k in a)
            if close(got["overlap"], union / n):
                raise Wrong("overlap: count the entries BOTH masks keep (a & b), not either "
                            "(a | b)")
            if close(got["overlap"], st["both"]):
                raise Wrong("overlap: give it as a share of all mask entries, as the paper does")
            raise Wrong(f"overlap: expected {want['overlap']:.5f}, got {got['overlap']:.5f}")
        if not close(got["expected"], want["expected"]):
            pooled = st["kept_a"] * st["kept_b"] / n / n
            if close(got["expected"], pooled):
                raise Wrong("expected: place the entries at random within each matrix (sum "
                            "k_a k_b / N over matrices), not over the whole model")
            if close(got["expected"], st["chance"]):
                raise Wrong("expected: give it as a share of all mask entries, like the overlap "
                            "(divide the expected count by the number of entries)")
            shares = [int(a[k].sum()) * int(b[k].sum()) / a[k].numel() ** 2 for k in a]
            if close(got["expected"], sum(shares) / len(shares)):
                raise Wrong("expected: weight each matrix by its size: sum k_a k_b / N over "
                            "matrices, then divide by all entries (not the mean of shares)")
            raise Wrong(f"expected: {want['expected']:.6f}, got {got['expected']:.6f}")
        if not close(got["x_chance"], want["x_chance"]):
            if close(got["x_chance"], 1 / want["x_chance"]):
                raise Wrong("x_chance: overlap / expected, not expected / overlap (above 1 "
                            "means more overlap than chance)")
            raise Wrong(f"x_chance: overlap / expected = {want['x_chance']:.3f}, "
                        f"got {got['x_chance']:.3f}")
        if not close(got["contained"], want["contained"]):
            if close(got["contained"], st["share_of_b"]):
                raise Wrong("contained: the share of the BIGRAM subnetwork (a) that b also "
                            "keeps: divide by |a|, not |b|")
            if close(got["contained"], st["both"] / n):
                raise Wrong("contained: divide by the entries a keeps (|a|), not by all mask "
                            "entries (that is the overlap)")
            raise Wrong(f"contained: expected {want['contained']:.4f}, got {got['contained']:.4f}")
    return run("Exercise 8.3 (overlap, x chance, % contained)", body)


# ---------------------------------------------------------------------------
# Exercise 8.4: the row-shuffle null's mean


def check_row_shuffle_mean(fn: Callable) -> bool:
    """Exercise 8.4: ``fn(blocks_a, blocks_b)`` -> the expected overlap (entries)
    when the rows of every block of both masks are shuffled; blocks are dicts
    name -> (rows, cols) bool tensors."""

    def body():
        model = small_model("gpt_neox")
        g = rng(85)
        # masks with favoured columns, so that row shuffles and uniform placement differ
        subs = []
        for _ in range(2):
            masks = {}
            for m in maskable_matrices(model):
                cols = torch.arange(m.shape[1]) % 4 == 0
                masks[m.name] = (torch.rand(m.shape, generator=g) < 0.1) | (
                    cols & (torch.rand(m.shape, generator=g) < 0.6))
            subs.append(masks)
        ba = {n: x.clone() for n, x in row_blocks(subs[0], model)}
        bb = {n: x.clone() for n, x in row_blocks(subs[1], model)}
        got = _float(call(fn, ba, bb), "expected overlap")
        want = row_shuffle_null(subs[0], subs[1], model).mean
        if abs(got - want) <= 1e-6 * max(1.0, want):
            return
        uniform = sum(int(ba[n].sum()) * int(bb[n].sum()) / ba[n].numel() for n in ba)
        by_cols = sum(float(ba[n].sum(1).double() @ bb[n].sum(1).double()) / ba[n].shape[1]
                      for n in ba)
        undivided = sum(float(ba[n].sum(0).double() @ bb[n].sum(0).double()) for n in ba)
        if abs(got - uniform) <= 1e-6 * uniform:
            raise Wrong("that is uniform placement; a row shuffle keeps every column's count: "
                        "sum over columns of colsum_a * colsum_b / rows")
        if abs(got - by_cols) <= 1e-6 * by_cols:
            raise Wrong("that shuffles columns (it keeps row counts); shuffling rows keeps "
                        "column counts: multiply column sums, divide by the number of rows")
        if abs(got - undivided) <= 1e-6 * undivided:
            raise Wrong("divide each block's sum of colsum_a * colsum_b by its number of rows "
                        "(a row of a meets a given row of b with probability 1/rows)")
        by_cols_count = sum(float(ba[n].sum(0).double() @ bb[n].sum(0).double())
                            / ba[n].shape[1] for n in ba)
        if abs(got - by_cols_count) <= 1e-6 * by_cols_count:
            raise Wrong("divide each block's sum by its number of ROWS, not columns (a row of "
                        "a meets a given row of b with probability 1/rows)")
        totals = sum(int(ba[n].sum()) * int(bb[n].sum()) / ba[n].shape[0] for n in ba)
        if abs(got - totals) <= 1e-6 * totals:
            raise Wrong("multiply column by column (colsum_a * colsum_b, summed over columns), "
                        "not the blocks' totals: a row shuffle keeps every column's count")
        entries = sum(x.numel() for x in ba.values())
        if abs(got - want / entries) <= 1e-6 * want / entries:
            raise Wrong("give the expected overlap in entries, not as a share of all entries")
        observed = sum(int((ba[n] & bb[n]).sum()) for n in ba)
        if abs(got - observed) < 1e-9 and abs(observed - want) > 1e-6 * want:
            raise Wrong("that is the observed overlap of the two masks; the null's mean is "
                        "what a row shuffle leads you to expect")
        if abs(got - want / len(ba)) <= 1e-6 * want / len(ba):
            raise Wrong("sum the blocks' expected overlaps, do not average them")
        raise Wrong(f"expected {want:.2f} entries, got {got:.2f}")
    return run("Exercise 8.4 (the row-shuffle null's mean)", body)
