"""bigramlab.methods.circuits against naive references: parts sliced by hand from each
architecture's layout, unions and greedy choices over Python sets of flat indices."""

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bigramlab.methods.anatomy import maskable_matrices
from bigramlab.methods.circuits import (ATTENTION, cumulative, extra_part, gap_closed,
                                        greedy_add_back, head_part, kinds_part, mlp_part,
                                        model_parts)
from bigramlab.methods.subnetwork import Subnetwork
from bigramlab.plumbing.profiles import TinyWorld
from bigramlab.worlds.models import make_model

WORLD = TinyWorld(n_layer=2, d_model=16, n_head=4, d_mlp=32)
D, NH, HS, L, M = WORLD.d_model, WORLD.n_head, WORLD.d_model // WORLD.n_head, 2, WORLD.d_mlp
ARCHS = ["gpt_neox", "gpt2"]
SETTINGS = settings(max_examples=25, deadline=None)


def _model(arch):
    torch.manual_seed(0)
    return make_model(arch, WORLD, vocab_size=30, seq_len=8).eval()


MODELS = {arch: _model(arch) for arch in ARCHS}


def naive_head(arch, layer, head):
    """name -> bool mask of one head, sliced by hand from the layout."""
    model = MODELS[arch]
    out = {n: torch.zeros(p.shape, dtype=torch.bool) for n, p in model.named_parameters()
           if n in {m.name for m in maskable_matrices(model)}}
    if arch == "gpt_neox":
        pre = f"gpt_neox.layers.{layer}.attention."
        out[pre + "query_key_value.weight"][3 * head * HS:3 * (head + 1) * HS, :] = True
        out[pre + "dense.weight"][:, head * HS:(head + 1) * HS] = True
    else:
        pre = f"transformer.h.{layer}.attn."
        for j in range(3):  # GPT-2's c_attn columns: [Q all heads | K | V], Conv1D (in, out)
            out[pre + "c_attn.weight"][:, j * D + head * HS:j * D + (head + 1) * HS] = True
        out[pre + "c_proj.weight"][head * HS:(head + 1) * HS, :] = True
    return out


def naive_mlp(arch, layer):
    model = MODELS[arch]
    out = {m.name: torch.zeros(m.shape, dtype=torch.bool) for m in maskable_matrices(model)}
    for m in maskable_matrices(model):
        if m.layer == layer and m.role in ("mlp_in", "mlp_out"):
            out[m.name][:] = True
    return out


@pytest.mark.parametrize("arch", ARCHS)
def test_head_and_mlp_parts_match_the_layout_sliced_by_hand(arch):
    model = MODELS[arch]
    for layer, head in itertools.product(range(L), range(NH)):
        part = head_part(model, layer, head)
        assert dict(part).keys() == naive_head(arch, layer, head).keys()
        assert all(torch.equal(part[n], m) for n, m in naive_head(arch, layer, head).items())
        assert part.count() == 4 * HS * D
    for layer in range(L):
        part = mlp_part(model, layer)
        assert all(torch.equal(part[n], m) for n, m in naive_mlp(arch, layer).items())
        assert part.count() == 2 * D * M


@pytest.mark.parametrize("arch", ARCHS)
def test_model_parts_are_disjoint_and_make_the_full_model(arch):
    model = MODELS[arch]
    parts = model_parts(model)
    assert list(parts) == [f"L{l} {p}" for l in range(L)
                           for p in [*(f"H{h}" for h in range(NH)), "MLP"]]
    union = Subnetwork.empty(model)
    for a, b in itertools.combinations(parts.values(), 2):
        assert a.overlap(b) == 0
    for part in parts.values():
        union = union | part
    assert union == Subnetwork.full(model)
    assert sum(p.count() for p in parts.values()) == Subnetwork.full(model).count()
    coarse = model_parts(model, heads=False)
    assert list(coarse) == [f"L{l} {p}" for l in range(L) for p in ("attention", "MLP")]
    for layer in range(L):
        heads = Subnetwork.empty(model)
        for h in range(NH):
            heads = heads | parts[f"L{layer} H{h}"]
        assert coarse[f"L{layer} attention"] == heads
        assert coarse[f"L{layer} MLP"] == parts[f"L{layer} MLP"]


@pytest.mark.parametrize("arch", ARCHS)
def test_kinds_part_is_the_union_of_its_parts(arch):
    model = MODELS[arch]
    heads = Subnetwork.empty(model)
    for layer, head in itertools.product(range(L), range(NH)):
        heads = heads | head_part(model, layer, head)
    assert kinds_part(model) == heads and kinds_part(model, ATTENTION) == heads
    mlps = mlp_part(model, 0) | mlp_part(model, 1)
    assert kinds_part(model, ("mlp_in", "mlp_out")) == mlps
    assert kinds_part(model, "qkvo") == heads  # a string of one-letter kinds works too
    v = kinds_part(model, ("v",))
    assert v.count() == L * D * D  # every head's v rows (GPT-NeoX) / columns (GPT-2)
    assert (v & kinds_part(model, ("q", "k", "o"))).count() == 0
    assert kinds_part(model, ()) == Subnetwork.empty(model)
    with pytest.raises(ValueError, match="unknown kind 'z'"):
        kinds_part(model, ("z",))


def random_sub(seed, p=0.3, model=MODELS["gpt_neox"]):
    g = torch.Generator().manual_seed(seed)
    return Subnetwork({m.name: torch.rand(m.shape, generator=g) < p
                       for m in maskable_matrices(model)}, "test")


def flat_set(sub):
    """The kept entries as a set of (name, flat index): the naive representation."""
    return {(n, int(i)) for n, m in sub.items() for i in torch.nonzero(m.reshape(-1))}


@SETTINGS
@given(st.integers(0, 10**6), st.integers(0, 10**6))
def test_extra_part_is_set_difference(s1, s2):
    a, b = random_sub(s1), random_sub(s2, 0.5)
    assert flat_set(extra_part(a, b)) == flat_set(a) - flat_set(b)


@SETTINGS
@given(st.integers(0, 10**6), st.lists(st.integers(0, 10**6), min_size=0, max_size=4),
       st.randoms(use_true_random=False))
def test_cumulative_is_a_running_union(s0, seeds, rnd):
    start = random_sub(s0, 0.1)
    parts = {f"p{i}": random_sub(s, 0.1) for i, s in enumerate(seeds)}
    order = list(parts)
    rnd.shuffle(order)
    path = cumulative(start, parts, order)
    assert [n for n, _ in path] == [None, *order]
    want = flat_set(start)
    assert flat_set(path[0][1]) == want
    for name, sub in path[1:]:
        want |= flat_set(parts[name])
        assert flat_set(sub) == want
    with pytest.raises(KeyError, match="no part named 'nope'"):
        cumulative(start, parts, ["nope"])


def naive_greedy(start, parts, score, max_steps=None):
    """The greedy loop over Python sets: try every remaining part that adds something,
    keep the lowest score (first listed on ties)."""
    current, names, out = set(start), list(parts), [(None, score(set(start)))]
    while names and (max_steps is None or len(out) <= max_steps):
        names = [n for n in names if parts[n] - current]
        if not names:
            break
        scored = [(score(current | parts[n]), i, n) for i, n in enumerate(names)]
        s, _, best = min(scored)
        current |= parts[best]
        names.remove(best)
        out.append((best, s))
    return out


def _score_on_sets(weights):
    """A non-additive score of a set of entries: what one part is worth depends on
    what is already there, so the greedy order differs from the parts' one-step order."""
    def score(entries):
        a = sum(weights.get(e, 0.0) for e in entries)
        return (a - 3.0) ** 2 + 0.01 * len(entries)
    return score


@SETTINGS
@given(st.integers(0, 10**6), st.lists(st.integers(0, 10**6), min_size=1, max_size=5),
       st.integers(0, 10**6), st.one_of(st.none(), st.integers(0, 6)))
def test_greedy_add_back_matches_the_naive_loop(s0, seeds, ws, max_steps):
    model = MODELS["gpt_neox"]
    start = random_sub(s0, 0.002)
    parts = {f"p{i}": random_sub(s, 0.004) for i, s in enumerate(seeds)}
    if len(seeds) > 1:  # a part already inside the start adds nothing and is skipped
        parts["inside"] = start & random_sub(seeds[0], 0.5)
    g = torch.Generator().manual_seed(ws)
    universe = sorted(set().union(*map(flat_set, [start, *parts.values()])))
    weights = {e: float(w) for e, w in zip(universe, torch.rand(len(universe), generator=g))}
    score_sets = _score_on_sets(weights)
    calls = []

    def score(sub):
        calls.append(1)
        return score_sets(flat_set(sub))

    got = greedy_add_back(start, parts, score, max_steps)
    want = naive_greedy(flat_set(start), {n: flat_set(p) for n, p in parts.items()},
                        score_sets, max_steps)
    assert [(s["added"], pytest.approx(s["score"])) for s in got] == \
        [(n, pytest.approx(v)) for n, v in want]
    current = flat_set(start)
    assert got[0]["tried"] == {}
    for s in got[1:]:
        assert s["added"] in s["tried"] and s["score"] == min(s["tried"].values())
        assert all(flat_set(parts[n]) - current for n in s["tried"])  # only parts adding something
        for n, v in s["tried"].items():
            assert v == pytest.approx(score_sets(current | flat_set(parts[n])))
        new = flat_set(parts[s["added"]]) - current
        current |= new
        assert s["new"] == len(new) and s["kept"] == len(current)
        assert flat_set(s["subnetwork"]) == current
    assert got[0]["step"] == 0 and [s["step"] for s in got] == list(range(len(got)))
    assert "inside" not in [s["added"] for s in got]
    n = len([p for p in parts.values() if flat_set(p) - flat_set(start)])
    assert len(calls) <= 1 + n * (n + 1) // 2
    del model


def test_greedy_ties_go_to_the_part_listed_first_and_max_steps_stops():
    model = MODELS["gpt_neox"]
    start = Subnetwork.empty(model)
    parts = {"b": head_part(model, 0, 1), "a": head_part(model, 0, 0), "c": mlp_part(model, 1)}
    got = greedy_add_back(start, parts, lambda s: 0.0)
    assert [s["added"] for s in got] == [None, "b", "a", "c"]
    assert got[-1]["subnetwork"] == start | parts["a"] | parts["b"] | parts["c"]
    assert [s["added"] for s in greedy_add_back(start, parts, lambda s: 0.0, 1)] == [None, "b"]
    assert len(greedy_add_back(start, parts, lambda s: 0.0, 0)) == 1
    # lower is better: the MLP has the most entries, so -count picks it first
    assert greedy_add_back(start, parts, lambda s: -s.count())[1]["added"] == "c"
    with pytest.raises(ValueError, match="max_steps"):
        greedy_add_back(start, parts, lambda s: 0.0, -1)


def test_gap_closed():
    assert gap_closed(5.0, 5.0, 3.0) == 0.0
    assert gap_closed(3.0, 5.0, 3.0) == 1.0
    assert gap_closed(4.5, 5.0, 3.0) == pytest.approx(0.25)
    assert gap_closed(6.0, 5.0, 3.0) == pytest.approx(-0.5)
    assert gap_closed(1.0, 2.0, 2.0) != gap_closed(1.0, 2.0, 2.0)  # NaN
