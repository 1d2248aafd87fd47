"""Checks for the exercises of Chapter 5 (across pretraining).

The answers come from bigramlab itself (``Subnetwork.counts_by_kind``,
``overlap.overlap_stats``) and from ``scipy.stats.spearmanr``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from scipy import stats

from ..methods.overlap import overlap_stats
from ..methods.subnetwork import Subnetwork
from ._core import CheckResult, Wrong, call, random_subnetwork, run, small_model


def _float(got, what: str) -> float:
    try:
        return float(got)
    except Exception as e:
        raise Wrong(f"{what}: expected a number, got {type(got).__name__}") from e


# ---------------------------------------------------------------------------
# Exercise 5.1: the attention share of a subnetwork

_ATTENTION = ("query_key_value", "attention.dense", "attn.c_attn", "attn.c_proj")


def check_attention_share(fn: Callable) -> CheckResult:
    """Exercise 5.1: ``fn(model, mask)`` -> kept attention entries / all kept entries
    (0.0 for an empty mask)."""

    def body():
        for arch in ("gpt_neox", "gpt2"):
            model = small_model(arch)
            sub = random_subnetwork(model, seed=8)
            kinds = sub.counts_by_kind(model)
            attn = sum(kinds[k] for k in ("q", "k", "v", "o"))
            want = attn / sub.count()
            got = _float(call(fn, model, dict(sub)), "attention share")
            if abs(got - want) < 1e-6:
                continue
            if abs(got - 100 * want) < 1e-6:
                raise Wrong(f"{arch}: a share between 0 and 1, not a percentage")
            kept = {n: int(m.sum()) for n, m in sub.items()}
            # (names, not the architecture: only GPT-2's matrices lack "attention")
            if got == 0 and all("attention" not in n for n in sub):
                raise Wrong(f"{arch}: no GPT-2 matrix has 'attention' in its name: its "
                            "attention matrices are attn.c_attn and attn.c_proj")
            c_proj = sum(v for n, v in kept.items() if any(
                a in n for a in ("query_key_value", "attention.dense", "c_attn", "c_proj")))
            if abs(got - c_proj / sub.count()) < 1e-6:  # GPT-2 only: equal to want elsewhere
                raise Wrong(f"{arch}: 'c_proj' is in mlp.c_proj too: you counted the MLP's "
                            "output matrix as attention; match 'attn.c_proj'")
            if abs(got - (1 - want)) < 1e-6:
                raise Wrong(f"{arch}: you gave the MLP share; the exercise asks for attention")
            total = sum(m.numel() for m in sub.values())
            if abs(got - attn / total) < 1e-6:
                raise Wrong(f"{arch}: divide by the kept entries, not by all maskable entries")
            mlp = sub.count() - attn
            if mlp and abs(got - attn / mlp) < 1e-6:
                raise Wrong(f"{arch}: divide by all kept entries (attention + MLP), not by the "
                            "MLP's")
            if abs(got - sum(kinds[k] for k in ("q", "k", "v")) / sub.count()) < 1e-6:
                raise Wrong(f"{arch}: the attention output matrix (o) is attention too")
            sizes = {n: m.numel() for n, m in sub.items()}
            attn_names = [n for n in sub if any(a in n for a in _ATTENTION)]
            if abs(got - sum(sizes[n] for n in attn_names) / sum(sizes.values())) < 1e-6:
                raise Wrong(f"{arch}: count the mask's kept entries, not the matrices' sizes")
            raise Wrong(f"{arch}: expected {want:.4f}, got {got:.4f}")
        empty = Subnetwork.empty(small_model("gpt_neox"))
        got = call(fn, small_model("gpt_neox"), dict(empty))
        if got != got or _float(got, "attention share of an empty mask") != 0.0:
            raise Wrong(f"an empty mask keeps nothing: return 0.0, not {got!r}")
    return run("Exercise 5.1 (attention share)", body)


# ---------------------------------------------------------------------------
# Exercise 5.2: how much of the final subnetwork was there earlier


def check_persistence(fn: Callable) -> CheckResult:
    """Exercise 5.2: ``fn(earlier, final)`` -> (share of final's kept entries that
    ``earlier`` keeps too, the same share expected by chance)."""

    def body():
        model = small_model("gpt_neox")
        earlier = dict(random_subnetwork(model, seed=9))
        final = dict(random_subnetwork(model, seed=10))
        got = call(fn, earlier, final)
        try:
            pair = not isinstance(got, (dict, str)) and len(got) == 2
        except TypeError:  # a number, or a 0-d tensor
            pair = False
        if not pair:
            kind = (f"a dict with keys {sorted(map(str, got))}" if isinstance(got, dict)
                    else f"a {type(got).__name__}")
            raise Wrong(f"return a pair of numbers, (observed share, chance share), e.g. "
                        f"`return observed, chance`; you returned {kind}")
        try:
            observed, chance = (_float(x, "share") for x in got)
        except Wrong:
            raise
        except Exception as e:
            raise Wrong(f"expected a pair (observed share, chance share), got {got!r}") from e
        s = overlap_stats(earlier, final)
        want_obs, want_chance = s["share_of_b"], s["chance"] / s["kept_b"]
        if abs(observed - want_chance) < 1e-6 and abs(chance - want_obs) < 1e-6:
            raise Wrong("you returned (chance, observed): the pair is (observed share, "
                        "chance share), in that order")
        if abs(observed - 100 * want_obs) < 1e-4 and abs(chance - 100 * want_chance) < 1e-4:
            raise Wrong("shares between 0 and 1, not percentages")
        if abs(observed - want_obs) > 1e-6:
            if abs(observed - s["share_of_a"]) < 1e-6:
                raise Wrong("observed: divide by the final subnetwork's kept entries, "
                            "not the earlier one's")
            if abs(observed - s["share_of_all"]) < 1e-6:
                raise Wrong("observed: divide by the final subnetwork's kept entries, not "
                            "by all entries of the model")
            if abs(observed - s["both"] / (s["kept_a"] + s["kept_b"] - s["both"])) < 1e-6:
                raise Wrong("observed: that is the Jaccard index (both / either); the share "
                            "of the final subnetwork's kept entries is both / kept in final")
            raise Wrong(f"observed: expected {want_obs:.4f}, got {observed:.4f}")
        if abs(chance - want_chance) > 1e-6:
            n = sum(m.numel() for m in final.values())
            if abs(chance - s["kept_a"] / n) < 1e-6:
                raise Wrong("chance: the earlier mask's density differs per matrix; weight "
                            "each matrix's density by the final mask's kept entries in it")
            raise Wrong(f"chance: expected {want_chance:.4f}, got {chance:.4f}")
    return run("Exercise 5.2 (persistence across checkpoints)", body)


# ---------------------------------------------------------------------------
# Exercise 5.3: a monotone trend across checkpoints


def check_trend(fn: Callable) -> CheckResult:
    """Exercise 5.3: ``fn(steps, values)`` -> Spearman's rank correlation."""

    cases = [([0, 64, 256, 512, 1500], [0.1, 0.5, 0.4, 0.9, 1.0]),
             ([1, 2, 4, 8, 16, 32], [1.0, 2.0, 3.0, 4.0, 5.0, 100.0]),  # monotone, not linear
             ([0, 10, 100], [3.0, 2.0, 1.0])]

    def body():
        for steps, values in cases:
            want = stats.spearmanr(steps, values).statistic
            got = call(fn, list(steps), list(values))
            try:
                pair = (not isinstance(got, (str, dict)) and len(got) == 2
                        and abs(float(got[0]) - want) < 1e-6)
            except Exception:
                pair = False
            if pair:
                raise Wrong(f"on steps {steps}: spearmanr returns a result (statistic, "
                            "pvalue); return the number: spearmanr(...).statistic")
            try:
                matrix = torch.as_tensor(got, dtype=torch.float64)
                matrix = matrix.shape == (2, 2) and abs(float(matrix[0, 1]) - want) < 1e-6
            except Exception:
                matrix = False
            if matrix:
                raise Wrong(f"on steps {steps}: np.corrcoef returns the 2 x 2 correlation "
                            "matrix; the correlation is its entry [0, 1]")
            got = _float(got, "trend")
            if abs(got - want) < 1e-6:
                continue
            if abs(got - stats.pearsonr(steps, values).statistic) < 1e-6:
                raise Wrong(f"on steps {steps}: that is Pearson's r; rank both lists first "
                            "(Spearman's rho measures any monotone trend)")
            if abs(got - stats.spearmanr(steps, values).pvalue) < 1e-6:
                raise Wrong(f"on steps {steps}: that is the p-value; return the correlation "
                            "itself (spearmanr(...).statistic)")
            if abs(got - stats.kendalltau(steps, values).statistic) < 1e-6:
                raise Wrong(f"on steps {steps}: that is Kendall's tau; the exercise asks for "
                            "Spearman's rho (Pearson's r of the ranks)")
            if want < 0 and abs(got + want) < 1e-6:
                raise Wrong(f"on steps {steps}, values {values}: keep the sign: a falling "
                            "trend has a negative correlation")
            if abs(got - stats.pearsonr(stats.rankdata(steps), values).statistic) < 1e-6 or \
                    abs(got - stats.pearsonr(steps, stats.rankdata(values)).statistic) < 1e-6:
                raise Wrong(f"on steps {steps}: rank BOTH lists, then take Pearson's r of the "
                            "ranks")
            if abs(got - want ** 2) < 1e-6 and abs(want) < 1:
                raise Wrong(f"on steps {steps}: you squared it; return rho itself, not rho^2")
            raise Wrong(f"on steps {steps}, values {values}: expected {want:.4f}, got {got:.4f}")
    return run("Exercise 5.3 (trend across checkpoints)", body)
