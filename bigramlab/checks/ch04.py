"""Checks for the exercises of Chapter 4 (where the subnetwork lives).

Each check builds small models with random weights and random masks and
compares the student's function with bigramlab's own answer:
``Subnetwork.counts_by_head``, ``overlap.overlap_stats`` and
``Subnetwork.drop_mlp_dims``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..methods.anatomy import maskable_matrices
from ..methods.overlap import overlap_stats
from ..methods.subnetwork import Subnetwork
from ._core import (CheckResult, Wrong, call, call_on_mask, random_subnetwork, run,
                    small_model)


def _int_tensor(got, what: str) -> torch.Tensor:
    try:
        return torch.as_tensor(got).detach().cpu().long()
    except Exception as e:
        raise Wrong(f"{what}: expected a tensor of counts, got {type(got).__name__}") from e


# ---------------------------------------------------------------------------
# Exercise 4.1: kept entries per attention head (GPT-NeoX)


def _qkv_split_by_blocks(model, mask) -> torch.Tensor:
    """The classic mistake: slice GPT-NeoX's fused rows as [Q all heads | K | V]."""
    def rows(nh, hs, h):
        return torch.cat([torch.arange((j * nh + h) * hs, (j * nh + h + 1) * hs)
                          for j in range(3)])
    return _hand_counts(model, mask, rows, 1)


def _hand_counts(model, mask, qkv_rows, o_axis) -> torch.Tensor:
    """Kept entries per head with a hand-written slicing: ``qkv_rows(nh, hs, h)`` the rows
    of query_key_value, ``o_axis`` the axis of attention.dense that holds a head."""
    mats = maskable_matrices(model)
    nh, hs = mats[0].n_heads, mats[0].head_size
    out = torch.zeros(max(m.layer for m in mats) + 1, nh, dtype=torch.long)
    for m in mats:
        for h in range(nh):
            if m.role == "qkv":
                out[m.layer, h] += int(mask[m.name][qkv_rows(nh, hs, h)].sum())
            elif m.role == "o":
                sl = slice(h * hs, (h + 1) * hs)
                out[m.layer, h] += int(mask[m.name][(slice(None), sl) if o_axis == 1
                                                    else (sl,)].sum())
    return out


def check_kept_per_head(fn: Callable) -> CheckResult:
    """Exercise 4.1: ``fn(model, mask)`` -> (layers, heads) tensor of kept q, k, v
    and o entries per attention head of a GPT-NeoX model."""
    def body():
        model = small_model("gpt_neox")
        sub = random_subnetwork(model, seed=4)
        want = sub.counts_by_head(model)
        got = _int_tensor(call(fn, model, dict(sub)), "kept per head")
        if got.shape == want.T.shape and got.shape != want.shape and torch.equal(got, want.T):
            raise Wrong(f"return (layers, heads) = {tuple(want.shape)}, not (heads, layers)")
        if got.shape != want.shape:
            raise Wrong(f"expected shape (layers, heads) = {tuple(want.shape)}, "
                        f"got {tuple(got.shape)}")
        if torch.equal(got, want):
            return
        if torch.equal(got, _qkv_split_by_blocks(model, sub)):
            raise Wrong("you sliced query_key_value as [q of all heads | k | v]; in GPT-NeoX "
                        "its rows are grouped per head: [q0 k0 v0 | q1 k1 v1 | ...]")
        if torch.equal(got, sub.counts_by_head(model, kinds=("q", "k", "v"))):
            raise Wrong("you counted q, k and v only: a head also owns head_size input "
                        "columns of attention.dense (o)")
        if torch.equal(got, sub.counts_by_head(model, kinds=("o",))):
            raise Wrong("you counted o only: count the head's q, k and v rows of "
                        "query_key_value too")
        per_head = lambda nh, hs, h: slice(3 * h * hs, 3 * (h + 1) * hs)  # noqa: E731
        if torch.equal(got, _hand_counts(model, sub, per_head, 0)):
            raise Wrong("attention.dense is stored (out, in): a head owns head_size input "
                        "COLUMNS of it, not rows")
        if torch.equal(got, _hand_counts(model, sub, lambda nh, hs, h: slice(h * hs,
                                                                           (h + 1) * hs), 1)):
            raise Wrong("each head owns 3 * head_size rows of query_key_value (its q, k and "
                        "v), not head_size")
        if torch.equal(got, Subnetwork({k: ~v for k, v in sub.items()}).counts_by_head(model)):
            raise Wrong("you counted the dropped entries; count the kept ones (True)")
        layer, head = map(int, torch.nonzero(got != want)[0])
        raise Wrong(f"layer {layer}, head {head}: {int(want[layer, head])} kept entries, "
                    f"you gave {int(got[layer, head])}")
    return run("Exercise 4.1 (kept entries per head)", body)


# ---------------------------------------------------------------------------
# Exercise 4.2: overlap of two subnetworks and its chance level


def check_overlap_summary(fn: Callable) -> CheckResult:
    """Exercise 4.2: ``fn(a, b)`` -> {"both", "jaccard", "chance"} for two masks."""

    def body():
        model = small_model("gpt_neox")
        a, b = dict(random_subnetwork(model, seed=5)), dict(random_subnetwork(model, seed=6))
        got = call(fn, a, b)
        if not isinstance(got, dict) or not {"both", "jaccard", "chance"} <= set(got):
            raise Wrong("expected a dict with the keys 'both', 'jaccard' and 'chance'")
        want = overlap_stats(a, b)
        n = sum(m.numel() for m in a.values())
        if int(got["both"]) != want["both"]:
            either = sum(int((a[k] | b[k]).sum()) for k in a)
            if abs(float(got["both"]) - want["both"] / n) < 1e-9:
                raise Wrong("both: give the number of entries kept by both masks, not a share")
            if int(got["both"]) == either:
                raise Wrong("both: count the entries kept by BOTH masks (a & b), not by either "
                            "(a | b)")
            raise Wrong(f"both: {want['both']} entries are kept by both masks, "
                        f"you gave {got['both']}")
        if abs(float(got["jaccard"]) - want["jaccard"]) > 1e-6:
            if abs(float(got["jaccard"]) - want["share_of_all"]) < 1e-6:
                raise Wrong("jaccard: divide by the entries kept by either mask, "
                            "not by all entries")
            ka = sum(int(m.sum()) for m in a.values())
            kb = sum(int(m.sum()) for m in b.values())
            if abs(float(got["jaccard"]) - want["both"] / ka) < 1e-9:
                raise Wrong("jaccard: divide by the entries kept by either mask (|a | b|), not "
                            "by |a|")
            if abs(float(got["jaccard"]) - want["both"] / (ka + kb)) < 1e-9:
                raise Wrong("jaccard: |a| + |b| counts the shared entries twice; divide by "
                            "|a| + |b| - both, the entries kept by either mask")
            raise Wrong(f"jaccard: expected {want['jaccard']:.4f}, got {float(got['jaccard']):.4f}")
        pooled = sum(int(m.sum()) for m in a.values()) * sum(int(m.sum()) for m in b.values()) / n
        if abs(float(got["chance"]) - want["chance"]) > 1e-6 * max(1.0, want["chance"]):
            if abs(float(got["chance"]) - pooled) < 1e-6 * pooled:
                raise Wrong("chance: you placed entries at random over the whole model; the "
                            "paper keeps each mask's count per matrix (sum over matrices)")
            if abs(float(got["chance"]) - want["chance"] / n) < 1e-9:
                raise Wrong("chance: give the expected NUMBER of entries kept by both, not a "
                            "share of all entries")
            products = sum(int(a[k].sum()) * int(b[k].sum()) for k in a)
            if abs(float(got["chance"]) - products) < 1e-6 * products:
                raise Wrong("chance: divide each matrix's k_a * k_b by its number of entries")
            raise Wrong(f"chance: expected {want['chance']:.2f}, got {float(got['chance']):.2f}")
    return run("Exercise 4.2 (overlap and chance)", body)


# ---------------------------------------------------------------------------
# Exercise 4.3: a subnetwork without one layer's MLP


def check_without_mlp(fn: Callable) -> CheckResult:
    """Exercise 4.3: ``fn(model, mask, layer)`` -> a new mask dict with both MLP
    matrices of ``layer`` dropped and everything else unchanged. The models have 12
    layers, so that a name test like ``f"{layer}.mlp" in name`` (which also matches
    layer 11 for layer 1) is caught."""

    def body():
        for arch in ("gpt_neox", "gpt2"):
            model = small_model(arch, n_layer=12)
            sub = random_subnetwork(model, seed=7)
            mats = maskable_matrices(model)
            mats_by_name = {m.name: m for m in mats}
            n_layers = 1 + max(m.layer for m in mats)
            for layer in (1, 0, 11, 2):
                got = call_on_mask(lambda m, *a: fn(model, m, *a), sub, layer)
                mlp_in = next(m for m in mats if m.role == "mlp_in")
                hidden = mlp_in.shape[mlp_in.out_axis]
                want = sub.drop_mlp_dims(model, layer, range(hidden))
                if all(torch.equal(got[n], want[n]) for n in sub):
                    continue

                def same(other):
                    return all(torch.equal(got[n], other[n]) for n in sub)
                flat = next((n for n in sub if got[n].shape != sub[n].shape), None)
                if flat is not None:
                    raise Wrong(f"{arch}, layer {layer}: {flat} has shape "
                                f"{tuple(got[flat].shape)}; each entry of the mask is a bool "
                                f"tensor of its matrix's shape {tuple(sub[flat].shape)}: "
                                "torch.zeros_like(mask[name]), not a single False")
                if same(sub.drop_layer(model, layer)):
                    raise Wrong(f"{arch}, layer {layer}: you dropped the whole layer (its "
                                "attention too); drop only its two MLP matrices")
                if same(sub.keep_mlp_dims(model, layer, range(hidden))):
                    raise Wrong(f"{arch}, layer {layer}: you KEPT the MLP's entries (True); "
                                "dropping them sets them to False")
                if same({n: torch.zeros_like(v) if mats_by_name[n].role.startswith("mlp")
                         else v for n, v in sub.items()}):
                    raise Wrong(f"{arch}, layer {layer}: you dropped the MLP of every layer; "
                                f"select layer {layer}'s two MLP matrices only")
                for off in (layer + 1, layer - 1):
                    if 0 <= off < n_layers and same(sub.drop_mlp_dims(model, off, range(hidden))):
                        raise Wrong(f"{arch}, layer {layer}: you dropped the MLP of layer "
                                    f"{off} instead: layers are numbered from 0, as in the "
                                    "names")
                others = sorted({m.layer for m in mats if m.layer != layer
                                 and m.role.startswith("mlp") and not torch.equal(
                                     got[m.name], want[m.name]) and not got[m.name].any()})
                if others:
                    raise Wrong(f"{arch}, layer {layer}: you also dropped the MLP of layer "
                                f"{others[0]}: a test like f'{{layer}}.mlp' in name matches "
                                f"'{others[0]}.mlp' too; match the layer number exactly "
                                "(MaskableMatrix.layer, or f'.{layer}.mlp.' with both dots)")
                for name in sub:
                    if not torch.equal(got[name], want[name]):
                        what = "should be all False" if not want[name].any() else "should not change"
                        raise Wrong(f"{arch}, layer {layer}: {name} {what}")
    return run("Exercise 4.3 (subnetwork without one MLP)", body)
