"""The paper's row-shuffle null (bigramlab.methods.overlap) against naive references.

The references are written here from the paper's code (``compute_circuit_overlaps.py``
and ``convert_mask_names``): blocks cut by hand per architecture name, rows
shuffled in place with ``np.random.shuffle``, one sample at a time. The closed
forms are checked against every permutation of small blocks, and against many
shuffles of larger ones.
"""

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bigramlab.methods import overlap as ov
from bigramlab.methods.anatomy import maskable_matrices
from bigramlab.methods.overlap import (overlap_stats, overlap_table, row_blocks,
                                       row_shuffle_null, row_shuffle_samples)
from bigramlab.methods.subnetwork import Subnetwork
from bigramlab.plumbing.profiles import TinyWorld
from bigramlab.worlds.models import make_model


def small_model(arch, d=8, heads=2, mlp=12, layers=2):
    torch.manual_seed(0)
    return make_model(arch, TinyWorld(n_layer=layers, d_model=d, n_head=heads, d_mlp=mlp),
                      20, 8).eval()


def random_masks(model, seed, density=0.3):
    g = torch.Generator().manual_seed(seed)
    return Subnetwork({m.name: torch.rand(m.shape, generator=g) < density
                       for m in maskable_matrices(model)}, "test")


def paper_blocks(masks, arch):
    """convert_mask_names, written out per architecture as the paper's code does."""
    out = {}
    layer = 0
    while True:
        if arch == "gpt2":
            key = f"transformer.h.{layer}.attn.c_attn.weight"
            if key not in masks:
                break
            qkv = masks[key].numpy()
            d = qkv.shape[1] // 3
            blocks = [qkv[:, :d].T, qkv[:, d:2 * d].T, qkv[:, 2 * d:].T,
                      masks[f"transformer.h.{layer}.attn.c_proj.weight"].numpy().T,
                      masks[f"transformer.h.{layer}.mlp.c_fc.weight"].numpy().T,
                      masks[f"transformer.h.{layer}.mlp.c_proj.weight"].numpy().T]
        else:
            key = f"gpt_neox.layers.{layer}.attention.query_key_value.weight"
            if key not in masks:
                break
            qkv = masks[key].numpy()
            d = qkv.shape[0] // 3
            blocks = [qkv[:d], qkv[d:2 * d], qkv[2 * d:],
                      masks[f"gpt_neox.layers.{layer}.attention.dense.weight"].numpy(),
                      masks[f"gpt_neox.layers.{layer}.mlp.dense_h_to_4h.weight"].numpy(),
                      masks[f"gpt_neox.layers.{layer}.mlp.dense_4h_to_h.weight"].numpy()]
        for name, blk in zip(["q", "k", "v", "o", "mlp0", "mlp1"], blocks):
            out[f"{name}_{layer}"] = np.ascontiguousarray(blk)
        layer += 1
    return out


def paper_samples(a, b, arch, n, seed=0):
    """The paper's loop: shuffle the rows of every block of both masks in place,
    then count the overlap, n times."""
    np.random.seed(seed)
    da, db = paper_blocks(a, arch), paper_blocks(b, arch)
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        for k in da:
            np.random.shuffle(da[k])
            np.random.shuffle(db[k])
        out[i] = sum(int(np.sum(da[k] & db[k])) for k in da)
    return out


def enumerate_block(a, b):
    """Every overlap of one block over all row permutations of b (a fixed)."""
    return [int((a & b[list(p)]).sum()) for p in itertools.permutations(range(a.shape[0]))]


# ------------------------------------------------------------------ blocks
@pytest.mark.parametrize("arch", ["gpt_neox", "gpt2"])
def test_blocks_are_the_papers(arch):
    model = small_model(arch)
    a = random_masks(model, 0)
    ours = row_blocks(a, model)
    theirs = paper_blocks(a, arch)
    assert len(ours) == len(theirs) == 6 * 2
    for (name, x), (key, y) in zip(ours, theirs.items()):
        assert np.array_equal(x.numpy(), y), (name, key)
    assert sum(x.numel() for _, x in ours) == sum(m.numel() for m in a.values())


# ------------------------------------------------------------- closed forms
@st.composite
def block_pairs(draw):
    n = draw(st.integers(1, 5))
    c = draw(st.integers(1, 4))
    cells = st.lists(st.booleans(), min_size=n * c, max_size=n * c)
    return (torch.tensor(draw(cells)).view(n, c), torch.tensor(draw(cells)).view(n, c))


@settings(max_examples=80, deadline=None)
@given(st.lists(block_pairs(), min_size=1, max_size=3))
def test_mean_and_variance_equal_enumeration(pairs):
    """Every permutation of every block enumerated; blocks are independent, so the
    total's mean and variance are sums of the blocks'."""
    mean = var = 0.0
    for a, b in pairs:
        xs = enumerate_block(a, b)
        m = sum(xs) / len(xs)
        mean += m
        var += sum((x - m) ** 2 for x in xs) / len(xs)
        gm, gv = ov._block_moments(a, b)
        assert gm == pytest.approx(m, abs=1e-12)
        assert gv == pytest.approx(sum((x - m) ** 2 for x in xs) / len(xs), abs=1e-9)
    assert sum(ov._block_moments(a, b)[0] for a, b in pairs) == pytest.approx(mean, abs=1e-9)
    assert sum(ov._block_moments(a, b)[1] for a, b in pairs) == pytest.approx(var, abs=1e-9)


def test_shuffling_both_masks_is_shuffling_one():
    """The paper shuffles the rows of both masks; the distribution is that of one."""
    g = torch.Generator().manual_seed(3)
    a, b = torch.rand(4, 3, generator=g) < 0.5, torch.rand(4, 3, generator=g) < 0.6
    both = [int((a[list(p)] & b[list(q)]).sum()) for p in itertools.permutations(range(4))
            for q in itertools.permutations(range(4))]
    one = enumerate_block(a, b)
    assert sorted(both) == sorted(one * 24)


def test_mean_is_the_column_formula():
    """E X = sum over blocks and columns of colsum_A colsum_B / rows."""
    model = small_model("gpt_neox")
    a, b = random_masks(model, 1, 0.2), random_masks(model, 2, 0.4)
    want = sum(float(x.sum(0).double() @ y.sum(0).double()) / x.shape[0]
               for (_, x), (_, y) in zip(row_blocks(a, model), row_blocks(b, model)))
    null = row_shuffle_null(a, b, model)
    assert null.mean == pytest.approx(want, rel=1e-12)
    assert null.entries == sum(m.numel() for m in a.values())


@pytest.mark.parametrize("arch", ["gpt_neox", "gpt2"])
def test_closed_forms_and_samples_match_the_papers_loop(arch):
    """On larger blocks: the exact mean and sd against 3,000 samples of the paper's
    in-place loop and of ours; our samples have the same distribution as the loop's."""
    model = small_model(arch, d=16, heads=2, mlp=32)
    g = torch.Generator().manual_seed(4)
    a = Subnetwork({m.name: (torch.rand(m.shape, generator=g) < 0.15)
                    | (torch.arange(m.shape[1]) % 5 == 0)  # shared columns: above uniform
                    for m in maskable_matrices(model)}, "t")
    b = Subnetwork({m.name: (torch.rand(m.shape, generator=g) < 0.25)
                    | (torch.arange(m.shape[1]) % 5 == 0) for m in maskable_matrices(model)}, "t")
    null = row_shuffle_null(a, b, model)
    n = 3000
    theirs = paper_samples(a, b, arch, n).astype(float)
    ours = row_shuffle_samples(a, b, model, n, seed=1).double().numpy()
    for sims in (theirs, ours):
        assert sims.mean() == pytest.approx(null.mean, abs=4 * null.sd / math.sqrt(n))
        assert sims.std() == pytest.approx(null.sd, rel=0.08)
    # two-sample Kolmogorov-Smirnov distance, far below the 1% critical value (0.042)
    grid = np.union1d(theirs, ours)
    ks = np.abs(np.searchsorted(np.sort(theirs), grid, side="right") / n
                - np.searchsorted(np.sort(ours), grid, side="right") / n).max()
    assert ks < 0.042


def test_samples_are_seeded_and_count_overlaps():
    model = small_model("gpt_neox")
    a, b = random_masks(model, 5), random_masks(model, 6)
    x = row_shuffle_samples(a, b, model, 500, seed=2)
    assert x.dtype == torch.int64 and x.shape == (500,)
    assert torch.equal(x, row_shuffle_samples(a, b, model, 500, seed=2))
    assert not torch.equal(x, row_shuffle_samples(a, b, model, 500, seed=3))
    assert int(x.min()) >= 0 and int(x.max()) <= min(a.count(), b.count())
    # two full masks: every shuffle overlaps everywhere
    one = Subnetwork({n: torch.ones_like(m) for n, m in a.items()}, "t")
    assert torch.equal(row_shuffle_samples(one, one, model, 10), torch.full((10,), one.count()))


# ----------------------------------------------------------- the table row
def test_table_row_is_computed_as_the_paper_does():
    model = small_model("gpt2")
    a, b = random_masks(model, 7, 0.1), random_masks(model, 8, 0.3)
    b = b | a & random_masks(model, 9, 0.5)  # b holds about half of a: far above chance
    rows = overlap_table(a, b, model, n_samples=2000, seed=0)
    assert [r["null"] for r in rows] == ["row shuffle (paper)", "uniform"]
    flat_a = np.concatenate([m.numpy().ravel() for m in a.values()])
    flat_b = np.concatenate([b[k].numpy().ravel() for k in a])
    total = flat_a.size
    overlap = np.sum(flat_a & flat_b) / total  # the paper's compute_overlap
    samples = paper_samples(a, b, "gpt2", 2000) / total
    for r in rows:
        assert r["overlap"] == pytest.approx(overlap)
        assert r["a"] == pytest.approx(flat_a.mean()) and r["b"] == pytest.approx(flat_b.mean())
        # the paper: overlap * total / circuit0_total
        assert r["contained"] == pytest.approx(overlap * total / flat_a.sum())
        assert r["x_chance"] == pytest.approx(r["overlap"] / r["expected"])
    shuffle, uniform = rows
    assert shuffle["expected"] == pytest.approx(samples.mean(), rel=0.02)
    assert shuffle["p"] == 0.0 == float(np.mean(samples >= overlap))
    st_ = overlap_stats(a, b)
    assert uniform["expected"] == pytest.approx(st_["chance"] / total)
    assert uniform["p"] == st_["p_value"]


def test_p_value_is_the_share_of_samples_at_or_above():
    model = small_model("gpt_neox")
    a, b = random_masks(model, 10, 0.3), random_masks(model, 11, 0.3)
    row = overlap_table(a, b, model, n_samples=4000, seed=5)[0]
    samples = row_shuffle_samples(a, b, model, 4000, seed=5)
    both = (a & b).count()
    assert row["p"] == float((samples >= both).double().mean())
    assert 0.0 < row["p"] < 1.0  # independent random masks: an ordinary overlap


def test_bad_input_is_named():
    model = small_model("gpt_neox")
    a = random_masks(model, 0)
    name = next(iter(a))
    with pytest.raises(ValueError, match="no entry for"):
        row_blocks({k: v for k, v in a.items() if k != name}, model)
    with pytest.raises(ValueError, match="has shape"):
        row_blocks({**dict(a), name: torch.ones(2, 2, dtype=torch.bool)}, model)
    with pytest.raises(ValueError, match="n_samples = 0 is not allowed"):
        row_shuffle_samples(a, a, model, 0)
