"""Chapter 8 exercise checks: they pass right answers (written here independently
of bigramlab), say "not implemented yet" for stubs, name the problem in
plausible wrong answers, and never raise."""

import torch

from bigramlab import checks
from tests.helpers.checks import contract_tests


# ------------------------------------------------------------ right answers
def five_conditions(mask, seed, random="per_matrix", minus_random="complement",
                    minus_sub="complement", in_place=False):
    g = torch.Generator().manual_seed(seed)
    if random == "per_matrix":
        rand = {}
        for name, m in mask.items():
            flat = m.flatten() if in_place else m.flatten().clone()
            if in_place:  # a shuffle written back into the caller's tensor
                m.view(-1)[:] = flat[torch.randperm(flat.numel(), generator=g)]
                rand[name] = m.clone()
            else:
                rand[name] = flat[torch.randperm(flat.numel(), generator=g)].view(m.shape)
    elif random == "whole_model":
        names = list(mask)
        flat = torch.cat([mask[n].flatten() for n in names])
        flat = flat[torch.randperm(flat.numel(), generator=g)]
        rand = dict(zip(names, [p.view(mask[n].shape) for n, p in
                                zip(names, flat.split([mask[n].numel() for n in names]))]))
    elif random == "bernoulli":
        rand = {n: torch.rand(m.shape, generator=g) < m.float().mean() for n, m in mask.items()}
    else:  # "same": the mask itself
        rand = {n: m.clone() for n, m in mask.items()}
    out = {"full": {n: torch.ones_like(m) for n, m in mask.items()},
           "subnetwork": {n: m.clone() for n, m in mask.items()}, "random": rand}
    out["minus_subnetwork"] = {n: (~m if minus_sub == "complement" else m.clone())
                               for n, m in mask.items()}
    if minus_random == "complement":
        out["minus_random"] = {n: ~r for n, r in rand.items()}
    elif minus_random == "keep":
        out["minus_random"] = {n: r.clone() for n, r in rand.items()}
    else:  # "subnetwork": the subnetwork removed again
        out["minus_random"] = {n: ~m for n, m in mask.items()}
    return out


def tempered(probs, T, power="inverse", normalize=True, greedy=True):
    p = torch.as_tensor(probs, dtype=torch.float64)
    if T == 0:
        if not greedy:
            return p ** (1 / T)  # ZeroDivisionError
        out = torch.zeros_like(p)
        out[torch.arange(len(p)), p.argmax(1)] = 1.0  # argmax: the first maximum
        return out
    w = p ** (1 / T if power == "inverse" else T)
    return w / w.sum(1, keepdim=True) if normalize else w


def overlap_row(a, b, overlap="all", expected="per_matrix", contained="a"):
    both = sum(int((a[k] & b[k]).sum()) for k in a)
    n = sum(m.numel() for m in a.values())
    ka, kb = sum(int(m.sum()) for m in a.values()), sum(int(m.sum()) for m in b.values())
    if expected == "per_matrix":
        exp = sum(int(a[k].sum()) * int(b[k].sum()) / a[k].numel() for k in a) / n
    else:
        exp = ka * kb / n / n
    ov = {"all": both / n, "either": both / (ka + kb - both), "count": both}[overlap]
    return {"overlap": ov, "expected": exp, "x_chance": (both / n) / exp,
            "contained": both / (ka if contained == "a" else kb)}


def row_shuffle_mean(blocks_a, blocks_b, axis=0, divide=True):
    total = 0.0
    for name, x in blocks_a.items():
        y = blocks_b[name]
        s = float(x.sum(axis).double() @ y.sum(axis).double())
        total += s / x.shape[axis] if divide else s
    return total


# ------------------------------------------------------------ wrong answers
def conditions_random_over_the_model(mask, seed):
    return five_conditions(mask, seed, random="whole_model")


def conditions_random_bernoulli(mask, seed):
    return five_conditions(mask, seed, random="bernoulli")


def conditions_random_is_the_mask(mask, seed):
    return five_conditions(mask, seed, random="same")


def conditions_minus_random_keeps_random(mask, seed):
    return five_conditions(mask, seed, minus_random="keep")


def conditions_minus_random_is_minus_subnetwork(mask, seed):
    return five_conditions(mask, seed, minus_random="subnetwork")


def conditions_minus_subnetwork_keeps_it(mask, seed):
    return five_conditions(mask, seed, minus_sub="keep")


def conditions_shuffled_in_place(mask, seed):
    return five_conditions(mask, seed, in_place=True)


def conditions_random_rolled(mask, seed):
    """"Random" = the mask shifted by one entry: the right counts, nothing random."""
    out = five_conditions(mask, seed)
    out["random"] = {n: m.flatten().roll(1).view(m.shape) for n, m in mask.items()}
    out["minus_random"] = {n: ~r for n, r in out["random"].items()}
    return out


def conditions_random_rows_only(mask, seed):
    """randperm over the first dimension: whole rows move, each row keeps its pattern."""
    g = torch.Generator().manual_seed(seed)
    out = five_conditions(mask, seed)
    out["random"] = {n: m[torch.randperm(m.shape[0], generator=g)] for n, m in mask.items()}
    out["minus_random"] = {n: ~r for n, r in out["random"].items()}
    return out


def conditions_random_unseeded(mask, seed):
    """randperm without the seeded generator: a new draw on every call."""
    out = five_conditions(mask, seed)
    out["random"] = {n: m.flatten()[torch.randperm(m.numel())].view(m.shape)
                     for n, m in mask.items()}
    out["minus_random"] = {n: ~r for n, r in out["random"].items()}
    return out


def conditions_minus_random_second_draw(mask, seed):
    """minus_random removes a second random draw, not the random condition's entries."""
    out = five_conditions(mask, seed)
    second = five_conditions(mask, seed + 1)["random"]
    out["minus_random"] = {n: ~r for n, r in second.items()}
    return out


def conditions_reseeded_per_matrix(mask, seed):
    """A generator seeded afresh for every matrix: every matrix of one shape gets the
    same permutation."""
    out = five_conditions(mask, seed)
    rand = {}
    for n, m in mask.items():
        g = torch.Generator().manual_seed(seed)
        rand[n] = m.flatten()[torch.randperm(m.numel(), generator=g)].view(m.shape)
    out["random"], out["minus_random"] = rand, {n: ~r for n, r in rand.items()}
    return out


def conditions_seed_ignored(mask, seed):
    """A fixed seed (0) instead of the seed given."""
    return five_conditions(mask, 0)


def tempered_power_t(probs, T):
    return tempered(probs, T, power="T")


def tempered_not_normalised(probs, T):
    return tempered(probs, T, normalize=False)


def tempered_softmax_of_probs(probs, T):
    if T == 0:
        return tempered(probs, 0)
    return torch.softmax(torch.as_tensor(probs) / T, -1)


def tempered_no_greedy(probs, T):
    return tempered(probs, T, greedy=False)


def tempered_wrong_axis(probs, T):
    """p^(1/T) normalised over the columns (sum(0))."""
    if T == 0:
        return tempered(probs, 0)
    w = torch.as_tensor(probs, dtype=torch.float64) ** (1 / T)
    return w / w.sum(0, keepdim=True)


def tempered_in_place(probs, T):
    """probs ** (1/T) renormalised, written into the caller's tensor (the notebook's loop
    over temperatures then compounds)."""
    if T == 0:
        return tempered(probs, 0)
    probs.pow_(1 / T)
    probs /= probs.sum(1, keepdim=True)
    return probs


def tempered_greedy_last_tie(probs, T):
    if T == 0:
        p = torch.as_tensor(probs, dtype=torch.float64)
        idx = p.shape[1] - 1 - p.flip(1).argmax(1)  # the last maximum
        return torch.zeros_like(p).scatter_(1, idx[:, None], 1.0)
    return tempered(probs, T)


def overlap_jaccard(a, b):
    return overlap_row(a, b, overlap="either")


def overlap_count(a, b):
    return overlap_row(a, b, overlap="count")


def overlap_pooled(a, b):
    return overlap_row(a, b, expected="pooled")


def overlap_contained_in_b(a, b):
    return overlap_row(a, b, contained="b")


def tempered_divided(probs, T):
    """p / T renormalised (as one would divide logits): p again."""
    if T == 0:
        return tempered(probs, 0)
    p = torch.as_tensor(probs, dtype=torch.float64) / T
    return p / p.sum(1, keepdim=True)


def overlap_union(a, b):
    out = overlap_row(a, b)
    n = sum(m.numel() for m in a.values())
    out["overlap"] = sum(int((a[k] | b[k]).sum()) for k in a) / n
    return out


def overlap_expected_count(a, b):
    out = overlap_row(a, b)
    out["expected"] = sum(int(a[k].sum()) * int(b[k].sum()) / a[k].numel() for k in a)
    return out


def overlap_expected_mean_share(a, b):
    out = overlap_row(a, b)
    shares = [int(a[k].sum()) * int(b[k].sum()) / a[k].numel() ** 2 for k in a]
    out["expected"] = sum(shares) / len(shares)
    return out


def overlap_ratio_inverted(a, b):
    out = overlap_row(a, b)
    out["x_chance"] = out["expected"] / out["overlap"]
    return out


def overlap_contained_of_all(a, b):
    out = overlap_row(a, b)
    out["contained"] = out["overlap"]
    return out


def row_mean_uniform(blocks_a, blocks_b):
    return sum(int(x.sum()) * int(blocks_b[n].sum()) / x.numel() for n, x in blocks_a.items())


def row_mean_columns_shuffled(blocks_a, blocks_b):
    return row_shuffle_mean(blocks_a, blocks_b, axis=1)


def row_mean_undivided(blocks_a, blocks_b):
    return row_shuffle_mean(blocks_a, blocks_b, divide=False)


def row_mean_over_columns(blocks_a, blocks_b):
    return sum(float(x.sum(0).double() @ blocks_b[n].sum(0).double()) / x.shape[1]
               for n, x in blocks_a.items())


def row_mean_totals(blocks_a, blocks_b):
    return sum(int(x.sum()) * int(blocks_b[n].sum()) / x.shape[0] for n, x in blocks_a.items())


def row_mean_share(blocks_a, blocks_b):
    return row_shuffle_mean(blocks_a, blocks_b) / sum(x.numel() for x in blocks_a.values())


def row_mean_observed(blocks_a, blocks_b):
    return sum(int((x & blocks_b[n]).sum()) for n, x in blocks_a.items())


def row_mean_averaged(blocks_a, blocks_b):
    return row_shuffle_mean(blocks_a, blocks_b) / len(blocks_a)


CHECKS = {
    "conditions": (checks.check_five_conditions, five_conditions),
    "tempered": (checks.check_tempered, tempered),
    "overlap": (checks.check_overlap_row, overlap_row),
    "row_mean": (checks.check_row_shuffle_mean, row_shuffle_mean),
}

WRONG = [
    ("conditions", conditions_random_over_the_model, "count in every matrix"),
    ("conditions", conditions_random_bernoulli, "count in every matrix"),
    ("conditions", conditions_random_is_the_mask, "the subnetwork itself"),
    ("conditions", conditions_minus_random_keeps_random, "drops as many as the subnetwork"),
    ("conditions", conditions_minus_random_is_minus_subnetwork, "removed the subnetwork itself"),
    ("conditions", conditions_minus_subnetwork_keeps_it, "exactly what the subnetwork drops"),
    ("conditions", conditions_shuffled_in_place, "changed the mask you were given"),
    ("conditions", conditions_random_rolled, "shifted"),
    ("conditions", conditions_random_rows_only, "whole rows"),
    ("conditions", conditions_random_unseeded, "seeded with seed"),
    ("conditions", conditions_minus_random_second_draw, "same random draw"),
    ("conditions", conditions_reseeded_per_matrix, "seed the generator once"),
    ("conditions", conditions_seed_ignored, "the seed you were given"),
    ("tempered", tempered_power_t, "power 1/T, not T"),
    ("tempered", tempered_not_normalised, "renormalise"),
    ("tempered", tempered_softmax_of_probs, "treats probabilities as logits"),
    ("tempered", tempered_no_greedy, "T = 0 means greedy"),
    ("tempered", tempered_greedy_last_tie, "lower id"),
    ("tempered", tempered_in_place, "changed the tensor you were given"),
    ("tempered", tempered_divided, "p again"),
    ("tempered", tempered_wrong_axis, "wrong axis"),
    ("overlap", overlap_jaccard, "not by the entries either mask keeps"),
    ("overlap", overlap_count, "share of all mask entries"),
    ("overlap", overlap_pooled, "within each matrix"),
    ("overlap", overlap_contained_in_b, "divide by |a|"),
    ("overlap", overlap_union, "not either"),
    ("overlap", overlap_expected_count, "divide the expected count"),
    ("overlap", overlap_expected_mean_share, "weight each matrix by its size"),
    ("overlap", overlap_ratio_inverted, "not expected / overlap"),
    ("overlap", overlap_contained_of_all, "not by all mask entries"),
    ("row_mean", row_mean_uniform, "uniform placement"),
    ("row_mean", row_mean_columns_shuffled, "shuffles columns"),
    ("row_mean", row_mean_undivided, "divide each block's sum"),
    ("row_mean", row_mean_over_columns, "not columns"),
    ("row_mean", row_mean_totals, "not the blocks' totals"),
    ("row_mean", row_mean_share, "in entries"),
    ("row_mean", row_mean_observed, "observed overlap"),
    ("row_mean", row_mean_averaged, "do not average"),
]


test_right_stub_and_crash, test_wrong_answers_are_named = contract_tests(CHECKS, WRONG,
                                                                         not_a_number=True)
