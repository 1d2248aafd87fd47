"""Checks for the exercises of Chapter 9 (beyond bigrams).

The answers come from bigramlab itself: ``methods.trigrams.TrigramModel``
(probabilities with back-off, and its cross-entropy), ``Subnetwork.keep_head``
and ``methods.circuits.greedy_add_back``. The mistakes they name are computed
here, from plain Python counts, masks sliced by hand and sets.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..methods.anatomy import maskable_matrices
from ..methods.circuits import greedy_add_back
from ..methods.subnetwork import Subnetwork
from ..methods.trigrams import TrigramModel
from ._core import (Wrong, as_float, as_tensor, call, call_on_mask, rng, run,
                    small_model, wired)

LN2 = math.log(2.0)


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.allclose(a.double(), b.double(), rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------------------
# Exercise 9.1: trigram probabilities with back-off


def _corpus(seed: int, V: int, n: int, seq: int) -> torch.Tensor:
    """Zipf-ish draws over ids 0..V-2 (the last id never occurs: its context backs off)."""
    g = rng(seed)
    w = 1.0 / torch.arange(1, V, dtype=torch.float64) ** 1.2
    return torch.multinomial(w, n * seq, replacement=True, generator=g).view(n, seq)


def _naive_probs(seqs, V, a, b, k, *, pad=True, prune=True, renorm=True, bigram=True,
                 rows=True, strict=False) -> torch.Tensor:
    """P(. | a, b) from plain counts; the keywords turn one rule off (a mistake)."""
    lists = seqs.tolist() if rows else [sum(seqs.tolist(), [])]
    tri, pairs = Counter(), Counter()
    for s in lists:
        s3, s2 = ([V, V] + s if pad else s), ([V] + s if pad else s)
        tri.update(zip(s3, s3[1:], s3[2:]))
        pairs.update(zip(s2, s2[1:]))
    out = torch.zeros(V, dtype=torch.float64)
    seen = {c: n for (x, y, c), n in tri.items() if (x, y) == (a, b)}
    kept = {c: n for c, n in seen.items() if (n > k if strict else n >= k)} if prune else seen
    if kept:
        total = sum(kept.values()) if renorm else sum(seen.values())
        for c, n in kept.items():
            out[c] = n / total
        return out
    row = {c: n for (x, c), n in pairs.items() if x == b} if bigram else {}
    if not row:
        row = Counter(c for (_, c) in pairs.elements())
    if not row:
        return torch.full((V,), 1.0 / V, dtype=torch.float64)
    for c, n in row.items():
        out[c] = n / sum(row.values())
    return out


_TRIGRAM_MISTAKES = [
    (dict(prune=False), "you kept every trigram: prune those seen fewer than min_count times"),
    (dict(renorm=False), "after pruning, renormalise each context's row over the trigrams "
                         "that are left (your rows sum to less than 1)"),
    (dict(bigram=False), "a context with no kept trigram backs off to the bigram row of "
                         "prev1 first; the unigram distribution comes only when prev1 was "
                         "never seen as a context"),
    (dict(pad=False), "pad every sequence with the start placeholder V: (V, V, x0) and "
                      "(V, x0, x1) are trigrams too, and (V, x0) a bigram"),
    (dict(rows=False), "count within each sequence: a trigram never spans two rows"),
    (dict(strict=True), "keep the trigrams seen at least min_count times (count >= "
                        "min_count, not >)"),
]


def check_trigram_next_probs(fn: Callable) -> bool:
    """Exercise 9.1: ``fn(sequences, vocab_size, prev2, prev1, min_count)`` ->
    (V,) tensor P(. | prev2, prev1), back-off applied (``TrigramModel``)."""

    def body():
        for seed, V, n, seq, k in ((91, 6, 8, 9, 2), (92, 5, 3, 7, 2), (93, 7, 6, 12, 1)):
            seqs = _corpus(seed, V, n, seq)
            model = TrigramModel.from_corpus([seqs], V, min_count=k)
            contexts = [(a, b) for a in range(V + 1) for b in range(V + 1)]
            got = {}
            for a, b in contexts:
                p = as_tensor(call(fn, seqs.clone(), V, a, b, k), "trigram_next_probs")
                if p.shape != (V,):
                    raise Wrong(f"expected a tensor of shape ({V},) (one probability per "
                                f"token), got {tuple(p.shape)}")
                got[a, b] = p
            bad = [(a, b) for a, b in contexts
                   if not _close(got[a, b], model.next_token_probs(a, b).double())]
            if not bad:
                continue
            for flags, message in _TRIGRAM_MISTAKES:
                if all(_close(got[c], _naive_probs(seqs, V, *c, k, **flags)) for c in contexts):
                    raise Wrong(message)
            a, b = bad[0]
            sums = {c: float(got[c].sum()) for c in contexts}
            if any(abs(t - 1) > 1e-6 for t in sums.values()):
                c = next(c for c in contexts if abs(sums[c] - 1) > 1e-6)
                raise Wrong(f"V = {V}, context (prev2, prev1) = {c}: your row sums to "
                            f"{sums[c]:.4g}; return probabilities (counts divided by the "
                            "row's total), which sum to 1")
            want = model.next_token_probs(a, b).double()
            raise Wrong(f"V = {V}, min_count = {k}, context (prev2, prev1) = ({a}, {b}): "
                        f"expected {[round(x, 3) for x in want.tolist()]}, got "
                        f"{[round(x, 3) for x in got[a, b].tolist()]}")
    return run("Exercise 9.1 (trigram probabilities with back-off)", body)


# ---------------------------------------------------------------------------
# Exercise 9.2: the trigram cross-entropy


def _trigram_model(seqs: torch.Tensor, V: int, min_count: int) -> TrigramModel:
    return TrigramModel.from_corpus([seqs], V, min_count=min_count)


def _soft_ce(logits, targets, keep=slice(None)):
    logp = torch.log_softmax(logits.double(), -1)
    return float(-(targets.double() * logp).sum(-1)[:, keep].mean())


def check_trigram_cross_entropy(fn: Callable) -> bool:
    """Exercise 9.2: ``fn(logits, input_ids, trigram)`` -> mean cross-entropy in nats from
    the trigram rows to softmax(logits), every position (``TrigramModel.cross_entropy``)."""

    def body():
        V = 7
        model = wired("bigramlab.checks.ch09:_trigram_model", _corpus(94, V, 30, 10), V, 2)
        g = rng(95)
        for B, T in ((3, 6), (2, 9)):
            ids = _corpus(96 + T, V, B, T)
            logits = torch.randn(B, T, V, generator=g) * 2
            want = float(model.cross_entropy(logits, ids))
            got = as_float(call(fn, logits.clone(), ids.clone(), model), "trigram_cross_entropy")
            if abs(got - want) <= 1e-4 * max(1.0, abs(want)):
                continue
            start = torch.full_like(ids[:, :1], V)
            rows = model.next_token_probs(torch.cat([start, ids[:, :-1]], 1), ids)
            early = model.next_token_probs(torch.cat([start, start, ids[:, :-2]], 1)[:, :T],
                                           torch.cat([start, ids[:, :-1]], 1))
            mistakes = [
                (float(F.cross_entropy(logits[:, :-1].transpose(1, 2), ids[:, 1:])),
                 "you scored the token that came (hard labels): the target is the whole "
                 "trigram row P(. | prev2, prev1) at every position"),
                (want / LN2, "report nats (natural log), not bits"),
                (_soft_ce(logits, early), "off by one: logits[:, t] predict token t + 1, so "
                 "their context is (input_ids[:, t - 1], input_ids[:, t])"),
                (float(model.bigram.cross_entropy(logits, ids)),
                 "those are the bigram rows: use the trigram model's rows (it backs off to the "
                 "bigram row itself where it must)"),
                (_soft_ce(logits, rows, slice(1, None)), "position 0 counts too: its context "
                 "is (V, input_ids[:, 0]), V being the start placeholder"),
                (_soft_ce(logits, rows, slice(None, -1)), "the last position counts too "
                 "(its target row exists; only the token after it is unknown)"),
                (want * B * T, "average over positions, do not sum"),
                (float(-(rows.double() * torch.log_softmax(logits.double(), 1)).sum(-1).mean()),
                 "you normalised over the wrong axis: log_softmax over the vocabulary "
                 "(dim=-1), not over the positions"),
                (want + float((rows.double() * torch.log(torch.where(rows > 0, rows.double(),
                                                                     1.0))).sum(-1).mean()),
                 "that is the KL divergence (the trigram rows' entropy subtracted): the "
                 "exercise asks for the cross-entropy -sum p log q"),
            ]
            for value, message in mistakes:
                if abs(got - value) <= 1e-4 * max(1.0, abs(value)):
                    raise Wrong(message)
            raise Wrong(f"batch {B} x {T}: expected {want:.5f} nats, got {got:.5f}")
    return run("Exercise 9.2 (trigram cross-entropy)", body)


# ---------------------------------------------------------------------------
# Exercise 9.3: adding an attention head to a subnetwork


def _hand_head(model, mask, layer, head, qkv_rows, o_axis, keep=True):
    """A copy of ``mask`` with one head's entries set to ``keep``, sliced by hand."""
    m0 = maskable_matrices(model)[0]
    nh, hs = m0.n_heads, m0.head_size
    out = {n: m.clone() for n, m in mask.items()}
    for m in maskable_matrices(model):
        if m.layer != layer:
            continue
        if m.role == "qkv" and qkv_rows is not None:
            out[m.name][qkv_rows(nh, hs, head)] = keep
        elif m.role == "o" and o_axis is not None:
            sl = slice(head * hs, (head + 1) * hs)
            out[m.name][(slice(None), sl) if o_axis == 1 else (sl,)] = keep
    return out


def _per_head(nh, hs, h):
    return slice(3 * h * hs, 3 * (h + 1) * hs)


def _by_blocks(nh, hs, h):
    return torch.cat([torch.arange((j * nh + h) * hs, (j * nh + h + 1) * hs) for j in range(3)])


_HEAD_MISTAKES = [
    (dict(qkv_rows=_by_blocks, o_axis=1), "you sliced query_key_value as [q of all heads | k "
     "| v]; in GPT-NeoX its rows are grouped per head: [q0 k0 v0 | q1 k1 v1 | ...]"),
    (dict(qkv_rows=_per_head, o_axis=0), "attention.dense is stored (out, in): a head's part "
     "of it is its head_size input COLUMNS, not rows"),
    (dict(qkv_rows=_per_head, o_axis=None), "you added q, k and v only: the head's input "
     "columns of attention.dense (o) belong to it too"),
    (dict(qkv_rows=None, o_axis=1), "you added o only: the head's q, k and v rows of "
     "query_key_value belong to it too"),
    (dict(qkv_rows=lambda nh, hs, h: slice(3 * h * hs, (3 * h + 1) * hs), o_axis=1),
     "you added the head's q rows only: its k and v rows (the next 2 * head_size rows of "
     "query_key_value, grouped [q k v] per head) belong to it too"),
    (dict(qkv_rows=_per_head, o_axis=1, keep=False), "you dropped the head (set its entries "
     "to False): adding it keeps them (True)"),
]


def check_with_head(fn: Callable) -> bool:
    """Exercise 9.3: ``fn(model, mask, layer, head)`` -> a new mask dict with attention
    ``head`` of ``layer`` kept (GPT-NeoX), everything else unchanged."""

    def body():
        # 12 layers (tiny in width): picking layer 1 by "layers.1" without the trailing
        # dot also picks layers 10 and 11
        model = small_model("gpt_neox", n_layer=12)
        g = rng(93)
        sub = Subnetwork({m.name: torch.rand(m.shape, generator=g) < 0.05 + 0.1 * (i % 9)
                          for i, m in enumerate(maskable_matrices(model))}, "check")
        for layer, head in ((0, 1), (2, 0), (1, 1), (11, 0)):
            got = call_on_mask(lambda m, *a: fn(model, m, *a), sub, layer, head)
            want = sub.keep_head(model, layer, head)
            if all(torch.equal(got[n], want[n]) for n in want):
                continue
            prefix = f"layers.{layer}"
            also = [o for o in range(model.config.num_hidden_layers)
                    if o != layer and f"layers.{o}".startswith(prefix)]
            hand = _hand_head(model, dict(sub), layer, head, _per_head, 1)
            for other in also:
                hand = _hand_head(model, hand, other, head, _per_head, 1)
            if also and all(torch.equal(got[n], hand[n]) for n in hand):
                raise Wrong(f"layer {layer} of a {model.config.num_hidden_layers}-layer model: "
                            f"you changed layers {', '.join(map(str, also))} too, since "
                            f"\"{prefix}\" matches their names; match \"{prefix}.\" with "
                            "the trailing dot (or compare layer numbers)")
            for flags, message in _HEAD_MISTAKES:
                hand = _hand_head(model, dict(sub), layer, head, **flags)
                if all(torch.equal(got[n], hand[n]) for n in hand):
                    raise Wrong(message)
            name = next(n for n in want if not torch.equal(got[n], want[n]))
            raise Wrong(f"layer {layer}, head {head}: {name} differs ({int(got[name].sum())} "
                        f"kept entries, expected {int(want[name].sum())})")
    return run("Exercise 9.3 (adding a head)", body)


# ---------------------------------------------------------------------------
# Exercise 9.4: the greedy add-back loop


def _set_score(weights: dict):
    """A non-additive score on sets (lower is better): a part's worth depends on what
    is already there, so the greedy order is not the one-step order."""
    def score(entries):
        a = sum(weights.get(e, 0.0) for e in entries)
        return (a - 4.0) ** 2 + 0.01 * len(entries)
    return score


def _greedy_names(start, parts, score, max_steps):
    subs = {n: _as_sub(p) for n, p in parts.items()}
    path = greedy_add_back(_as_sub(start), subs, lambda s: score(_entries(s)), max_steps)
    return [s["added"] for s in path[1:]]


def _as_sub(entries) -> Subnetwork:
    m = torch.zeros(64, dtype=torch.bool)
    m[list(entries)] = True
    return Subnetwork({"w": m})


def _entries(sub: Subnetwork) -> set:
    return set(torch.nonzero(sub["w"]).reshape(-1).tolist())


def _static(start, parts, score, max_steps, reverse=False):
    ranked = sorted(parts, key=lambda n: score(start | parts[n]), reverse=reverse)
    ranked = [n for n in ranked if parts[n] - start]
    return ranked[:max_steps] if max_steps is not None else ranked


def _greedy_variant(start, parts, score, max_steps, last_tie=False, filter_once=False,
                    stop_worse=False):
    """Greedy add-back with one of three mistakes: ``last_tie`` (``<=``: the part listed last
    wins a tie), ``filter_once`` (parts that add nothing dropped against the start only),
    ``stop_worse`` (stops once the best part no longer lowers the score)."""
    current, out = set(start), []
    left = [n for n in parts if parts[n] - current]
    while left and (max_steps is None or len(out) < max_steps):
        if not filter_once:
            left = [n for n in left if parts[n] - current]
        best = None
        for n in left:
            s = score(current | parts[n])
            if best is None or s < best[0] or (last_tie and s == best[0]):
                best = (s, n)
        if best is None or (stop_worse and best[0] >= score(current)):
            break
        current |= parts[best[1]]
        left.remove(best[1])
        out.append(best[1])
    return out


def check_greedy_add_back(fn: Callable) -> bool:
    """Exercise 9.4: ``fn(start, parts, score, max_steps)`` -> the names of the parts
    added, in order (sets of entries in; lowest score first; parts that add nothing
    skipped; at most ``max_steps``, None = no limit)."""

    def body():
        g = torch.Generator().manual_seed(94)  # fixed: cases built to tell the mistakes apart
        for case in range(5):
            picks = [set(torch.randperm(64, generator=g)[:int(k)].tolist())
                     for k in torch.randint(2, 9, (7,), generator=g)]
            start, parts = picks[0], {f"part {i}": p for i, p in enumerate(picks[1:6], 1)}
            parts["inside"] = set(list(start)[:2])  # adds nothing to the start
            if case == 4:
                # two equal parts: a tie at every step (the first listed wins), and the
                # second adds nothing once the first is in (redundant midway)
                twin = set(torch.randperm(64, generator=g)[:5].tolist()) - start
                parts = {"twin 1": twin, **parts, "twin 2": set(twin)}
            weights = {e: float(w) for e, w in enumerate(torch.rand(64, generator=g))}
            score = wired("bigramlab.checks.ch09:_set_score", weights)
            max_steps = (None, 3, None, 0, None)[case]
            want = _greedy_names(start, parts, score, max_steps)
            got = call(fn, set(start), {n: set(p) for n, p in parts.items()}, score, max_steps)
            try:
                got = list(got)
            except TypeError as e:
                raise Wrong(f"expected a list of part names, got {type(got).__name__}") from e
            if got == want:
                continue
            if "inside" in got:
                raise Wrong("'inside' adds no entry (the start already has it): skip parts "
                            "that add nothing")
            if got == _greedy_names(start, parts, lambda s: -score(s), max_steps):
                raise Wrong("lower scores are better (a cross-entropy): take the minimum")
            if got == _static(start, parts, score, max_steps):
                raise Wrong("you ranked the parts once, each added to the start alone; score "
                            "every remaining part against what has been added so far, at "
                            "every step")
            if got == _greedy_variant(start, parts, score, max_steps, last_tie=True):
                raise Wrong("on a tie keep the part listed first (compare with <, not <=): "
                            f"expected {want}, got {got}")
            if got == _greedy_variant(start, parts, score, max_steps, filter_once=True):
                raise Wrong("a part can become redundant midway (what was added since covers "
                            "it): drop parts that add nothing at every step, not only against "
                            "the start")
            if got == _greedy_variant(start, parts, score, max_steps, stop_worse=True):
                raise Wrong("you stopped when the score stopped improving: keep adding the "
                            "best part until no part is left or max_steps parts were added "
                            "(the path shows where it gets worse)")
            if max_steps is not None and len(got) > max_steps:
                raise Wrong(f"stop after max_steps = {max_steps} additions")
            raise Wrong(f"expected the order {want}, got {got}")
    return run("Exercise 9.4 (greedy add-back)", body)
