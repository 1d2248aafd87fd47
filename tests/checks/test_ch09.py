"""Chapter 9 exercise checks: they pass right answers (written here independently of
bigramlab, from plain counts, dense rows and sets), say "not implemented yet" for stubs,
name the problem in answers students plausibly write, and never raise."""

import math
from collections import Counter

import torch
import torch.nn.functional as F

from bigramlab import checks
from tests.helpers.checks import contract_tests


# ------------------------------------------------------------ Exercise 9.1
def _probs(seqs, V, a, b, k, *, pad=True, prune=True, renorm=True, bigram=True, rows=True,
           mix=False):
    lists = seqs.tolist() if rows else [sum(seqs.tolist(), [])]
    tri, pairs = Counter(), Counter()
    for s in lists:
        p3, p2 = ([V, V] + s, [V] + s) if pad else (s, s)
        for i in range(len(p3) - 2):
            tri[p3[i], p3[i + 1], p3[i + 2]] += 1
        for i in range(len(p2) - 1):
            pairs[p2[i], p2[i + 1]] += 1
    seen = {c: n for (x, y, c), n in tri.items() if x == a and y == b}
    kept = {c: n for c, n in seen.items() if n >= k or not prune}
    out = torch.zeros(V, dtype=torch.float64)
    bi = {c: n for (x, c), n in pairs.items() if x == b}
    uni = Counter()
    for (_, c), n in pairs.items():
        uni[c] += n
    if mix:  # interpolation: half trigram, half bigram
        if kept and bi:
            for c, n in kept.items():
                out[c] += 0.5 * n / sum(kept.values())
            for c, n in bi.items():
                out[c] += 0.5 * n / sum(bi.values())
            return out
    if kept:
        total = sum(kept.values()) if renorm else sum(seen.values())
        for c, n in kept.items():
            out[c] = n / total
        return out
    row = bi if (bigram and bi) else uni
    if not row:
        return torch.full((V,), 1 / V, dtype=torch.float64)
    for c, n in row.items():
        out[c] = n / sum(row.values())
    return out


def trigram_next_probs(seqs, V, a, b, k):
    return _probs(seqs, V, a, b, k)


def probs_unpruned(seqs, V, a, b, k):
    return _probs(seqs, V, a, b, k, prune=False)


def probs_not_renormalised(seqs, V, a, b, k):
    return _probs(seqs, V, a, b, k, renorm=False)


def probs_unigram_backoff(seqs, V, a, b, k):
    return _probs(seqs, V, a, b, k, bigram=False)


def probs_no_start(seqs, V, a, b, k):
    return _probs(seqs, V, a, b, k, pad=False)


def probs_one_stream(seqs, V, a, b, k):
    return _probs(seqs, V, a, b, k, rows=False)


def probs_interpolated(seqs, V, a, b, k):
    return _probs(seqs, V, a, b, k, mix=True)


def probs_strict_min_count(seqs, V, a, b, k):
    """count > min_count where the rule is count >= min_count."""
    return _probs(seqs, V, a, b, k + 1)


def probs_counts(seqs, V, a, b, k):
    """The kept trigrams' counts returned as they are (the division forgotten)."""
    tri = Counter()
    for s in seqs.tolist():
        p3 = [V, V] + s
        for i in range(len(p3) - 2):
            tri[p3[i], p3[i + 1], p3[i + 2]] += 1
    kept = {c: n for (x, y, c), n in tri.items() if (x, y) == (a, b) and n >= k}
    if not kept:
        return _probs(seqs, V, a, b, k)
    out = torch.zeros(V, dtype=torch.float64)
    for c, n in kept.items():
        out[c] = float(n)
    return out


def probs_wrong_shape(seqs, V, a, b, k):
    return _probs(seqs, V, a, b, k)[None]


# ------------------------------------------------------------ Exercise 9.2
def _rows(ids, trigram):
    V = trigram.vocab_size
    prev2 = torch.cat([torch.full_like(ids[:, :1], V), ids[:, :-1]], 1)
    out = torch.zeros(*ids.shape, V, dtype=torch.float64)
    for i in range(ids.shape[0]):
        for t in range(ids.shape[1]):
            out[i, t] = trigram.next_token_probs(int(prev2[i, t]), int(ids[i, t])).double()
    return out


def trigram_cross_entropy(logits, ids, trigram):
    logp = torch.log_softmax(logits.double(), -1)
    return float(-(_rows(ids, trigram) * logp).sum(-1).mean())


def ce_hard_labels(logits, ids, trigram):
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))


def ce_bits(logits, ids, trigram):
    return trigram_cross_entropy(logits, ids, trigram) / math.log(2)


def ce_off_by_one(logits, ids, trigram):
    V = trigram.vocab_size
    pad = torch.full_like(ids[:, :1], V)
    shifted = torch.cat([pad, ids[:, :-1]], 1)  # (x[t-2], x[t-1]): the context of token t
    return trigram_cross_entropy(logits, shifted, trigram)


def ce_bigram_rows(logits, ids, trigram):
    logp = torch.log_softmax(logits.double(), -1)
    return float(-(trigram.bigram.next_token_probs(ids).double() * logp).sum(-1).mean())


def ce_no_first(logits, ids, trigram):
    logp = torch.log_softmax(logits.double(), -1)
    return float(-(_rows(ids, trigram) * logp).sum(-1)[:, 1:].mean())


def ce_no_last(logits, ids, trigram):
    logp = torch.log_softmax(logits.double(), -1)
    return float(-(_rows(ids, trigram) * logp).sum(-1)[:, :-1].mean())


def ce_summed(logits, ids, trigram):
    logp = torch.log_softmax(logits.double(), -1)
    return float(-(_rows(ids, trigram) * logp).sum())


def ce_wrong_axis(logits, ids, trigram):
    """log_softmax over the positions (dim=1) instead of the vocabulary."""
    logp = torch.log_softmax(logits.double(), 1)
    return float(-(_rows(ids, trigram) * logp).sum(-1).mean())


def ce_kl(logits, ids, trigram):
    """F.kl_div: the target rows' entropy subtracted."""
    logp = torch.log_softmax(logits.double(), -1)
    rows = _rows(ids, trigram)
    return float(F.kl_div(logp, rows, reduction="none").sum(-1).mean())


# ------------------------------------------------------------ Exercise 9.3
def _names(layer):
    pre = f"gpt_neox.layers.{layer}.attention."
    return pre + "query_key_value.weight", pre + "dense.weight"


def _head_size(model):
    return model.config.hidden_size // model.config.num_attention_heads


def with_head(model, mask, layer, head):
    hs, out = _head_size(model), dict(mask)
    qkv, o = _names(layer)
    out[qkv] = mask[qkv].clone()
    out[qkv][3 * head * hs:3 * (head + 1) * hs] = True
    out[o] = mask[o].clone()
    out[o][:, head * hs:(head + 1) * hs] = True
    return out


def head_by_blocks(model, mask, layer, head):
    hs, nh, out = _head_size(model), model.config.num_attention_heads, dict(mask)
    qkv, o = _names(layer)
    out[qkv] = mask[qkv].clone()
    for j in range(3):
        out[qkv][(j * nh + head) * hs:(j * nh + head + 1) * hs] = True
    out[o] = mask[o].clone()
    out[o][:, head * hs:(head + 1) * hs] = True
    return out


def head_o_rows(model, mask, layer, head):
    hs, out = _head_size(model), with_head(model, mask, layer, head)
    _, o = _names(layer)
    out[o] = mask[o].clone()
    out[o][head * hs:(head + 1) * hs] = True
    return out


def head_qkv_only(model, mask, layer, head):
    out = with_head(model, mask, layer, head)
    _, o = _names(layer)
    out[o] = mask[o]
    return out


def head_o_only(model, mask, layer, head):
    out = with_head(model, mask, layer, head)
    qkv, _ = _names(layer)
    out[qkv] = mask[qkv]
    return out


def head_dropped(model, mask, layer, head):
    hs, out = _head_size(model), dict(mask)
    qkv, o = _names(layer)
    out[qkv] = mask[qkv].clone()
    out[qkv][3 * head * hs:3 * (head + 1) * hs] = False
    out[o] = mask[o].clone()
    out[o][:, head * hs:(head + 1) * hs] = False
    return out


def head_q_only(model, mask, layer, head):
    """head_size rows at 3 * head * head_size: the q rows only, k and v left out."""
    hs, out = _head_size(model), with_head(model, mask, layer, head)
    qkv, _ = _names(layer)
    out[qkv] = mask[qkv].clone()
    out[qkv][3 * head * hs:(3 * head + 1) * hs] = True
    return out


def head_in_place(model, mask, layer, head):
    hs = _head_size(model)
    qkv, o = _names(layer)
    mask[qkv][3 * head * hs:3 * (head + 1) * hs] = True
    mask[o][:, head * hs:(head + 1) * hs] = True
    return mask


def head_layer_without_dot(model, mask, layer, head):
    """Matrices picked by f"layers.{layer}" in name: no trailing dot, so layer 1 also
    picks layers 10 and 11 of a 12-layer model."""
    hs, out = _head_size(model), dict(mask)
    for name, m in mask.items():
        if f"layers.{layer}" not in name:
            continue
        if "query_key_value.weight" in name:
            out[name] = m.clone()
            out[name][3 * head * hs:3 * (head + 1) * hs] = True
        elif "attention.dense.weight" in name:
            out[name] = m.clone()
            out[name][:, head * hs:(head + 1) * hs] = True
    return out


# ------------------------------------------------------------ Exercise 9.4
def greedy(start, parts, score, max_steps):
    current, left, out = set(start), list(parts), []
    while left and (max_steps is None or len(out) < max_steps):
        left = [n for n in left if parts[n] - current]
        if not left:
            break
        best = min(left, key=lambda n: score(current | parts[n]))  # first listed on ties
        current |= parts[best]
        left.remove(best)
        out.append(best)
    return out


def greedy_max(start, parts, score, max_steps):
    return greedy(start, parts, lambda s: -score(s), max_steps)


def greedy_static(start, parts, score, max_steps):
    ranked = [n for n in sorted(parts, key=lambda n: score(start | parts[n])) if parts[n] - start]
    return ranked if max_steps is None else ranked[:max_steps]


def greedy_keeps_empty_parts(start, parts, score, max_steps):
    current, left, out = set(start), list(parts), []
    while left and (max_steps is None or len(out) < max_steps):
        best = min(left, key=lambda n: score(current | parts[n]))
        current |= parts[best]
        left.remove(best)
        out.append(best)
    return out


def greedy_last_tie(start, parts, score, max_steps):
    """`<=` in the search for the best part: on a tie the part listed last wins."""
    current, left, out = set(start), list(parts), []
    while left and (max_steps is None or len(out) < max_steps):
        left = [n for n in left if parts[n] - current]
        best = None
        for n in left:
            s = score(current | parts[n])
            if best is None or s <= best[0]:
                best = (s, n)
        if best is None:
            break
        current |= parts[best[1]]
        left.remove(best[1])
        out.append(best[1])
    return out


def greedy_filters_once(start, parts, score, max_steps):
    """Redundant parts dropped once, against the start: a part that what was added since
    covers is still added later."""
    current, out = set(start), []
    left = [n for n in parts if parts[n] - current]
    while left and (max_steps is None or len(out) < max_steps):
        best = min(left, key=lambda n: score(current | parts[n]))
        current |= parts[best]
        left.remove(best)
        out.append(best)
    return out


def greedy_grows_start(start, parts, score, max_steps):
    """current = start, then current |= part: the caller's start set grows in place."""
    current, left, out = start, list(parts), []
    while left and (max_steps is None or len(out) < max_steps):
        left = [n for n in left if parts[n] - current]
        if not left:
            break
        best = min(left, key=lambda n: score(current | parts[n]))
        current |= parts[best]
        left.remove(best)
        out.append(best)
    return out


def greedy_stops_when_worse(start, parts, score, max_steps):
    """Stops as soon as the best part no longer lowers the score."""
    current, left, out = set(start), list(parts), []
    while left and (max_steps is None or len(out) < max_steps):
        left = [n for n in left if parts[n] - current]
        if not left:
            break
        best = min(left, key=lambda n: score(current | parts[n]))
        if score(current | parts[best]) >= score(current):
            break
        current |= parts[best]
        left.remove(best)
        out.append(best)
    return out


def greedy_no_limit(start, parts, score, max_steps):
    return greedy(start, parts, score, None)


CHECKS = {
    "probs": (checks.check_trigram_next_probs, trigram_next_probs),
    "ce": (checks.check_trigram_cross_entropy, trigram_cross_entropy),
    "head": (checks.check_with_head, with_head),
    "greedy": (checks.check_greedy_add_back, greedy),
}

WRONG = [
    ("probs", probs_unpruned, "prune"),
    ("probs", probs_not_renormalised, "renormalise"),
    ("probs", probs_unigram_backoff, "bigram row of prev1 first"),
    ("probs", probs_no_start, "start placeholder"),
    ("probs", probs_one_stream, "within each sequence"),
    ("probs", probs_interpolated, "context (prev2, prev1)"),
    ("probs", probs_wrong_shape, "shape"),
    ("probs", probs_strict_min_count, "not >"),
    ("probs", probs_counts, "sum to 1"),
    ("ce", ce_hard_labels, "hard labels"),
    ("ce", ce_bits, "nats"),
    ("ce", ce_off_by_one, "off by one"),
    ("ce", ce_bigram_rows, "bigram rows"),
    ("ce", ce_no_first, "position 0"),
    ("ce", ce_no_last, "last position"),
    ("ce", ce_summed, "average"),
    ("ce", ce_wrong_axis, "wrong axis"),
    ("ce", ce_kl, "KL divergence"),
    ("head", head_by_blocks, "grouped per head"),
    ("head", head_o_rows, "COLUMNS"),
    ("head", head_qkv_only, "q, k and v only"),
    ("head", head_o_only, "o only"),
    ("head", head_dropped, "dropped"),
    ("head", head_in_place, "changed the mask you were given"),
    ("head", head_q_only, "q rows only"),
    ("head", head_layer_without_dot, "trailing dot"),
    ("greedy", greedy_max, "take the minimum"),
    ("greedy", greedy_static, "ranked the parts once"),
    ("greedy", greedy_keeps_empty_parts, "skip parts that add nothing"),
    ("greedy", greedy_no_limit, "max_steps"),
    ("greedy", greedy_last_tie, "tie"),
    ("greedy", greedy_filters_once, "redundant midway"),
    ("greedy", greedy_grows_start, "changed the set you were given"),
    ("greedy", greedy_stops_when_worse, "stopped when the score stopped improving"),
]

test_right_stub_and_crash, test_wrong_answers_are_named = contract_tests(CHECKS, WRONG,
                                                                         not_a_number=True)


def test_bigramlab_answers_pass(capsys):
    """The chapter's own tools pass the checks too (Subnetwork.keep_head, greedy_add_back)."""
    from bigramlab.methods.circuits import greedy_add_back
    from bigramlab.methods.subnetwork import Subnetwork

    def head(model, mask, layer, h):
        return dict(Subnetwork(mask).keep_head(model, layer, h))

    def loop(start, parts, score, max_steps):
        def sub(entries):
            m = torch.zeros(64, dtype=torch.bool)
            m[list(entries)] = True
            return Subnetwork({"w": m})

        def back(s):
            return set(torch.nonzero(s["w"]).reshape(-1).tolist())

        path = greedy_add_back(sub(start), {n: sub(p) for n, p in parts.items()},
                               lambda s: score(back(s)), max_steps)
        return [s["added"] for s in path[1:]]

    assert checks.check_with_head(head)
    assert checks.check_greedy_add_back(loop)
    assert "✗" not in capsys.readouterr().out
