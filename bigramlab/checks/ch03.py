"""Checks for the exercises of Chapter 3 (continuous sparsification).

The answers come from bigramlab itself: ``sparsify.soft_masks``,
``sparsify.density_penalty``, the temperature schedule of ``sparsify``
(T = temp_growth ** steps), ``sparsify.should_stop`` and
``Subnetwork.counts_by_layer``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..methods.anatomy import maskable_matrices
from ..methods.sparsify import density_penalty, should_stop, soft_masks
from ._core import CheckResult, Wrong, call, random_subnetwork, rng, run, small_model


def _tensor(got, what: str) -> torch.Tensor:
    try:
        return torch.as_tensor(got).detach().cpu()
    except Exception as e:
        raise Wrong(f"{what}: expected a tensor, got {type(got).__name__}") from e


def _float(got, what: str) -> float:
    try:
        return float(got.detach()) if isinstance(got, torch.Tensor) else float(got)
    except Exception as e:
        raise Wrong(f"{what}: expected a number, got {type(got).__name__}") from e


def _logits(seed: int = 0) -> dict[str, torch.Tensor]:
    """Two mask-logit matrices of different sizes, with a W == 0 entry (-1e6)."""
    g = rng(seed)
    a = torch.randn(6, 4, generator=g) * 3
    a[0, 0] = -1e6
    return {"a": a, "b": torch.randn(2, 3, generator=g) * 3 + 1}


# ---------------------------------------------------------------------------
# Exercise 3.1: soft mask and density penalty


def check_soft_mask(fn: Callable) -> CheckResult:
    """Exercise 3.1a: ``fn(s, T)`` -> the soft mask sigmoid(T * s), same shape as s."""

    def body():
        for T in (1.0, 2.5, 40.0):
            s = _logits()["a"]
            want = soft_masks({"a": s}, T)["a"]
            got = _tensor(call(fn, s.clone(), T), f"soft_mask(s, T={T})")
            if got.shape != want.shape:
                raise Wrong(f"soft_mask: expected shape {tuple(want.shape)}, got {tuple(got.shape)}")
            if torch.isnan(got.double()).any():
                raise Wrong(f"at T = {T} your mask has NaN: exp(T * s) overflows for a large "
                            "T * s (inf / inf); use torch.sigmoid(T * s), which is stable")
            if (got.double() < 0).any():
                raise Wrong(f"at T = {T} your mask has negative entries: a soft mask lies "
                            "between 0 and 1 (tanh gives -1..1; the sigmoid is the squashing)")
            if torch.allclose(got.float(), torch.sigmoid(s / T), atol=1e-6) and T != 1.0:
                raise Wrong(f"at T = {T} you divided by the temperature: the mask is "
                            "sigmoid(T * s), and a growing T pushes it towards 0 or 1")
            if torch.allclose(got.float(), want, atol=1e-6):
                continue
            if torch.allclose(got.float(), torch.sigmoid(s), atol=1e-6):
                raise Wrong(f"at T = {T} you left out the temperature: sigmoid(T * s)")
            if torch.allclose(got.float(), (s > 0).float(), atol=1e-6):
                raise Wrong("that is a hard 0/1 mask; the soft mask is sigmoid(T * s), which "
                            "gradients can flow through")
            if torch.allclose(got.float(), torch.sigmoid(-T * s), atol=1e-6):
                raise Wrong("1 / (1 + exp(T * s)) is sigmoid(-T * s): the sign is flipped; "
                            "use 1 / (1 + exp(-T * s)), or torch.sigmoid(T * s)")
            if torch.allclose(got.float(), torch.softmax((T * s).flatten(), 0).view(s.shape),
                              atol=1e-6):
                raise Wrong("a sigmoid for every entry on its own, not a softmax over the "
                            "entries")
            raise Wrong(f"soft_mask(s, T={T}) differs from sigmoid(T * s)")
    return run("Exercise 3.1a (soft mask)", body)


def check_density_penalty(fn: Callable) -> CheckResult:
    """Exercise 3.1b: ``fn(soft, lam)`` -> lam * (sum of all soft-mask entries) / N."""

    def body():
        for lam, T in ((1.0, 1.0), (10.0, 3.0), (0.0, 1.0)):
            soft = soft_masks(_logits(), T)
            want = float(density_penalty(soft, lam))
            got = _float(call(fn, {n: m.clone() for n, m in soft.items()}, lam),
                         f"density_penalty(lam={lam})")
            per_matrix = lam * sum(float(m.mean()) for m in soft.values()) / len(soft)
            if lam and abs(got - per_matrix) < 1e-6 and abs(want - per_matrix) > 1e-6:
                raise Wrong("you averaged the per-matrix means: every entry counts once, "
                            "so divide the total sum by the total number of entries N")
            if lam and abs(got - lam * sum(float(m.sum()) for m in soft.values())) < 1e-4:
                raise Wrong("divide the sum by N, the number of mask entries, so lambda does "
                            "not depend on the model's size")
            if abs(got - want) <= 1e-5 * max(1.0, abs(want)):
                continue
            if want and abs(got + want) <= 1e-5 * max(1.0, abs(want)):
                raise Wrong("the penalty is added to the loss: +lambda * mean(soft), not "
                            "minus (a negative penalty rewards keeping weights)")
            n = sum(m.numel() for m in soft.values())
            if lam and abs(got - lam * sum(float(m.sum()) for m in soft.values()) / len(soft)) \
                    <= 1e-5 * max(1.0, abs(got)):
                raise Wrong("divide by N, the number of mask entries, not by the number of "
                            "matrices")
            total = sum(float(m.sum()) for m in soft.values())

            def near(x):
                return abs(got - x) <= 1e-5 * max(1.0, abs(x))
            if lam != 1.0 and near(total / n):
                raise Wrong(f"lam = {lam}: multiply the mean soft mask by lambda")
            if lam and near(lam * sum(int((m > 0.5).sum()) for m in soft.values()) / n):
                raise Wrong("sum the soft mask's values (they carry the gradient), not the "
                            "number of entries above 0.5")
            if lam and near(lam * sum(float((m * m).sum()) for m in soft.values()) / n):
                raise Wrong("an L1 penalty: the soft mask's entries themselves, not their "
                            "squares")
            first = next(iter(soft.values()))
            if lam and near(lam * float(first.mean())):
                raise Wrong("you counted only the first matrix (a return inside the loop?); "
                            "sum over every matrix")
            raise Wrong(f"density_penalty(lam={lam}) gave {got:.6f}, expected {want:.6f}")
    return run("Exercise 3.1b (density penalty)", body)


# ---------------------------------------------------------------------------
# Exercise 3.2: temperature schedule and early stop


def _temperature_tolerance(step: int) -> float:
    """Relative tolerance of T after ``step`` steps: 1e-9, or what float32 allows (growth
    rounded to 2**-24 and ``step`` multiplications each rounded: 4 (step + 1) 2**-24)."""
    return max(1e-9, 4 * (step + 1) * 2.0 ** -24)


def check_temperature(fn: Callable) -> CheckResult:
    """Exercise 3.2a: ``fn(step, growth)`` -> T after ``step`` optimizer steps, from T = 1.
    Computed in float64 or float32 (within float32's rounding, stated on failure)."""
    def body():
        for step, growth in ((0, 1.001), (1, 1.001), (10, 1.01), (500, 1.01), (15_000, 1.001)):
            want = growth ** step
            raw = call(fn, step, growth)
            got = _float(raw, f"temperature({step}, {growth})")
            tol = _temperature_tolerance(step)
            if abs(got - want) <= tol * want:
                continue
            if isinstance(raw, int) and not isinstance(raw, bool) and abs(got - want) < 1:
                raise Wrong(f"temperature({step}, {growth}) gave the integer {raw}: you rounded "
                            "T (int(), round() or //); return the float growth ** step")
            if abs(got - growth ** (step + 1)) <= _temperature_tolerance(step + 1) * want:
                raise Wrong("off by one: T starts at 1 (step 0) and is multiplied once per step")
            if abs(got - growth ** (step - 1)) <= tol * want:
                raise Wrong("off by one: T after `step` steps is growth ** step (T = 1 before "
                            "the first step)")
            if step and abs(got - math.exp((growth - 1) * step)) < 1e-9 * want:
                raise Wrong("that is the approximation exp((growth - 1) * step); T is "
                            "exactly growth ** step")
            if step == 1 and abs(got - (1 + growth)) < 1e-9:
                raise Wrong("growth is the factor T is multiplied by (e.g. 1.001), not a "
                            "rate: T = growth ** step, not (1 + growth) ** step")
            if step and abs(got - (1 + (growth - 1) * step)) < 1e-9 * want and want > 1.01:
                raise Wrong("T grows geometrically (multiplied by growth every step), "
                            "not linearly")
            if step == 0 and got == 0:
                raise Wrong("T after 0 steps is 1: it starts at 1 and is multiplied by growth "
                            "once per step, growth ** step (not growth * step or "
                            "step ** growth)")
            raise Wrong(f"temperature({step}, {growth}) gave {got:.12g}, expected {want:.12g} "
                        f"(growth ** step; accepted within a relative {tol:.1e}, float32's "
                        "rounding at this step)")
    return run("Exercise 3.2a (temperature schedule)", body)


def _stop_cases():
    """(soft masks, expected stop) pairs, including edge cases."""

    cases = []
    g = rng(1)
    decided = torch.cat([torch.full((1000,), 0.99), torch.full((9000,), 0.01)])
    for n_undecided in (0, 5, 9, 10, 11, 50, 200):
        m = torch.cat([decided, torch.full((n_undecided,), 0.5)])
        cases.append({"a": m[torch.randperm(m.numel(), generator=g)].view(-1, 1)})
    cases.append({"a": torch.full((50,), 0.01)})  # empty mask: never stops
    cases.append({"a": torch.full((50,), 0.95), "b": torch.full((3, 3), 0.5)})
    cases.append({"a": torch.tensor([0.9, 0.1, 0.95]), "b": torch.tensor([[0.5]])})
    # Counted per matrix, the rule disagrees with the pooled one: a matrix heading to
    # empty (nothing above 0.9) beside a decided one that stops, ...
    five = torch.cat([torch.full((1000,), 0.99), torch.full((5,), 0.5)])
    cases.append({"a": five, "b": torch.full((4, 5), 0.01)})
    # ... a decided matrix beside one still undecided, and undecided entries that only
    # add up to too many over all matrices together.
    cases.append({"a": torch.full((1000,), 0.99), "b": torch.cat([torch.full((10,), 0.95),
                                                                   torch.full((50,), 0.5)])})
    cases.append({"a": five, "b": torch.cat([torch.full((100,), 0.99), torch.full((7,), 0.5)])})
    # should_stop takes logits and T: at T = 1 the soft mask is sigmoid(s), so s = logit(m)
    return [(c, should_stop({n: torch.logit(m.double()).float() for n, m in c.items()}, 1.0))
            for c in cases]


def _counts(m: torch.Tensor) -> tuple[int, int]:
    return int(((m > 0.1) & (m < 0.9)).sum()), int((m > 0.9).sum())


def _per_matrix(soft: dict, how) -> set[bool]:
    """The rule applied to each matrix alone, combined with ``how`` (all or any); both
    answers when an entry on a threshold (0.9 in float32) makes the comparison's dtype
    matter (float32 in torch, float64 in a Python loop)."""
    return {how(u < 0.01 * a for u, a in map(_counts, (m.to(dtype) for m in soft.values())))
            for dtype in (torch.float32, torch.float64)}


def check_should_stop(fn: Callable) -> CheckResult:
    """Exercise 3.2b: ``fn(soft)`` -> True when fewer than 1% of the entries above 0.9
    are undecided (0.1 < soft < 0.9), counted over all matrices together: the paper's
    early stop."""
    def body():
        rows = []  # (got, want, undecided, above, all entries, the soft masks)
        for soft, want in _stop_cases():
            got = bool(call(fn, {n: m.clone() for n, m in soft.items()}))
            per = [_counts(m) for m in soft.values()]
            undecided, above = sum(u for u, _ in per), sum(a for _, a in per)
            rows.append((got, want, undecided, above, sum(m.numel() for m in soft.values()),
                         soft))
        if all(g == w for g, w, *_ in rows):
            return
        if all(g == (u < 0.01 * n) for g, _, u, a, n, _ in rows):
            raise Wrong("compare the undecided entries with 1% of the entries ABOVE 0.9 "
                        "(the kept part), not with 1% of all entries")
        if all(g == (not w) for g, w, *_ in rows):
            raise Wrong("you returned the opposite: True means stop (fewer than 1% of the "
                        "entries above 0.9 are undecided)")
        if all(g == (sum(int((m < 0.9).sum()) for m in soft.values()) < 0.01 * a)
               for g, _, u, a, n, soft in rows):
            raise Wrong("undecided entries are those between 0.1 and 0.9: the entries below "
                        "0.1 are decided (heading to 0), count only 0.1 < soft < 0.9")
        if all(g == (u < a) for g, _, u, a, n, _ in rows):
            raise Wrong("1% is 0.01: compare the undecided entries with 0.01 * (entries "
                        "above 0.9), not with the entries above 0.9 themselves")
        if all(g == (w or a == 0) for g, w, u, a, n, _ in rows):
            raise Wrong("a mask with no entry above 0.9 (heading to empty) never stops "
                        "early: 0 undecided is not fewer than 1% of 0")
        if all(g == (u <= 0.01 * a) for g, _, u, a, n, _ in rows):
            raise Wrong("the undecided entries must be strictly fewer than 1% of those "
                        "above 0.9: use <, not <=")
        for how in (all, any):
            if all(g in _per_matrix(soft, how) for g, *_, soft in rows):
                raise Wrong(f"you applied the rule to each matrix and combined the answers "
                            f"with {how.__name__}(): count the undecided entries and those "
                            "above 0.9 over all matrices together, then compare once")
        got, want, undecided, above, _, soft = next(r for r in rows if r[0] != r[1])
        raise Wrong(f"with {undecided} undecided and {above} entries above 0.9 "
                    f"({len(soft)} matrices) the run should {'stop' if want else 'go on'}; "
                    f"yours says {'stop' if got else 'go on'}")
    return run("Exercise 3.2b (early stop)", body)


# ---------------------------------------------------------------------------
# Exercise 3.3: kept parameters per layer


def check_kept_per_layer(fn: Callable) -> CheckResult:
    """Exercise 3.3: ``fn(model, mask)`` -> {layer index: kept entries in that layer}."""
    def body():
        for arch in ("gpt_neox", "gpt2"):
            model = small_model(arch)
            sub = random_subnetwork(model, seed=3)
            want = sub.counts_by_layer(model)
            got = call(fn, model, dict(sub))
            if isinstance(got, (list, tuple)) or (isinstance(got, torch.Tensor) and got.dim()):
                raise Wrong(f"expected a dict {{layer: count}}, got a {type(got).__name__}: "
                            "key each count by its layer number")
            try:
                got = dict(got)
            except Exception as e:
                raise Wrong(f"expected a dict {{layer: count}}, got {type(got).__name__}") from e
            def not_int(k):
                try:
                    int(k)
                except Exception:
                    return True
                return False
            bad = next((k for k in got if not_int(k)), None)
            if bad is not None:
                raise Wrong(f"{arch}: the keys are layer numbers, got the key {bad!r}: add up "
                            "the matrices of each layer under its number")
            got = {int(k): v for k, v in got.items()}
            if set(got) == {k + 1 for k in want}:
                raise Wrong(f"{arch}: layers are numbered from 0, as in the names: expected "
                            f"keys {sorted(want)}, got {sorted(got)}")
            if set(got) != set(want):
                raise Wrong(f"{arch}: expected layers {sorted(want)}, got keys {sorted(got)}")
            totals = {}
            for name, m in sub.items():
                layer = int(name.split(".")[2])
                totals[layer] = totals.get(layer, 0) + m.numel()
            vals = {k: float(v) for k, v in got.items()}
            if all(abs(vals[k] - want[k] / totals[k]) < 1e-6 for k in want):
                raise Wrong("you returned shares; the exercise asks for counts of kept entries")
            if all(abs(vals[k] - totals[k]) < 0.5 for k in want):
                raise Wrong("you counted all entries of each layer; count only the kept ones "
                            "(True in the mask)")
            if all(abs(vals[k] - (totals[k] - want[k])) < 0.5 for k in want):
                raise Wrong(f"{arch}: you counted the dropped entries (False); count the kept "
                            "ones (True)")
            attn = {}
            for m in maskable_matrices(model):
                if m.role in ("qkv", "o"):
                    attn[m.layer] = attn.get(m.layer, 0) + int(sub[m.name].sum())
            if all(abs(vals[k] - attn.get(k, 0)) < 0.5 for k in want):
                raise Wrong(f"{arch}: you counted the attention matrices only; a layer's two "
                            "MLP matrices are in it too")
            for k in sorted(want):
                if vals[k] != want[k]:
                    raise Wrong(f"{arch}: layer {k} keeps {want[k]} entries, you gave {got[k]}")
    return run("Exercise 3.3 (kept parameters per layer)", body)
