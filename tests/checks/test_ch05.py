"""Chapter 5 exercise checks: they pass right answers (written here independently
of bigramlab), say "not implemented yet" for stubs, name the problem in
plausible wrong answers, and never raise."""


from bigramlab import checks
from tests.helpers.checks import contract_tests

ATTENTION = ("query_key_value", "attention.dense", "attn.c_attn", "attn.c_proj")


# ------------------------------------------------------------ right answers
def attention_share(model, mask):
    kept = sum(int(m.sum()) for m in mask.values())
    attn = sum(int(m.sum()) for n, m in mask.items() if any(a in n for a in ATTENTION))
    return attn / kept if kept else 0.0


def persistence(earlier, final):
    both = sum(int((earlier[k] & final[k]).sum()) for k in final)
    kept = sum(int(m.sum()) for m in final.values())
    chance = sum(int(final[k].sum()) * float(earlier[k].float().mean()) for k in final)
    return both / kept, chance / kept


def ranks(xs):
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    r = [0.0] * len(xs)
    for rank, i in enumerate(order):
        r[i] = float(rank)
    return r  # the check's cases have no ties


def pearson(xs, ys):
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    cov = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    return cov / (sum((x - mx) ** 2 for x in xs) * sum((y - my) ** 2 for y in ys)) ** 0.5


def trend(steps, values):
    return pearson(ranks(steps), ranks(values))


# ------------------------------------------------------------ wrong answers
def mlp_share(model, mask):
    return 1 - attention_share(model, mask)


def attention_share_of_all(model, mask):
    n = sum(m.numel() for m in mask.values())
    return attention_share(model, mask) * sum(int(m.sum()) for m in mask.values()) / n


def attention_share_nan_when_empty(model, mask):
    kept = sum(int(m.sum()) for m in mask.values())
    attn = sum(int(m.sum()) for n, m in mask.items() if any(a in n for a in ATTENTION))
    return attn / kept if kept else float("nan")


def persistence_of_earlier(earlier, final):
    return persistence(final, earlier)[0], persistence(earlier, final)[1]


def persistence_pooled_chance(earlier, final):
    n = sum(m.numel() for m in earlier.values())
    return persistence(earlier, final)[0], sum(int(m.sum()) for m in earlier.values()) / n


def persistence_as_dict(earlier, final):
    observed, chance = persistence(earlier, final)
    return {"observed": observed, "chance": chance}


def persistence_one_number(earlier, final):
    return persistence(earlier, final)[0]


def attention_over_mlp(model, mask):
    kept = sum(int(m.sum()) for m in mask.values())
    attn = sum(int(m.sum()) for n, m in mask.items() if any(a in n for a in ATTENTION))
    return attn / (kept - attn)


def attention_share_without_o(model, mask):
    kept = sum(int(m.sum()) for m in mask.values())
    qkv = sum(int(m.sum()) for n, m in mask.items() if "query_key_value" in n or "c_attn" in n)
    return qkv / kept


def attention_share_of_sizes(model, mask):
    attn = sum(m.numel() for n, m in mask.items() if any(a in n for a in ATTENTION))
    return attn / sum(m.numel() for m in mask.values())


def attention_share_percent(model, mask):
    return 100 * attention_share(model, mask)


def attention_share_by_word(model, mask):
    """'attention' in the name: right for GPT-NeoX, nothing on GPT-2 (attn.*)."""
    kept = sum(int(m.sum()) for m in mask.values())
    attn = sum(int(m.sum()) for n, m in mask.items() if "attention" in n)
    return attn / kept if kept else 0.0


def attention_share_c_proj(model, mask):
    """'c_proj' matches mlp.c_proj too."""
    kept = sum(int(m.sum()) for m in mask.values())
    keys = ("query_key_value", "attention.dense", "c_attn", "c_proj")
    attn = sum(int(m.sum()) for n, m in mask.items() if any(a in n for a in keys))
    return attn / kept if kept else 0.0


def persistence_swapped(earlier, final):
    observed, chance = persistence(earlier, final)
    return chance, observed


def persistence_percent(earlier, final):
    observed, chance = persistence(earlier, final)
    return 100 * observed, 100 * chance


def persistence_jaccard(earlier, final):
    both = sum(int((earlier[k] & final[k]).sum()) for k in final)
    either = sum(int((earlier[k] | final[k]).sum()) for k in final)
    return both / either, persistence(earlier, final)[1]


def persistence_share_of_all(earlier, final):
    both = sum(int((earlier[k] & final[k]).sum()) for k in final)
    return both / sum(m.numel() for m in final.values()), persistence(earlier, final)[1]


def trend_squared(steps, values):
    return trend(steps, values) ** 2


def trend_result_object(steps, values):
    from scipy import stats
    return stats.spearmanr(steps, values)


def trend_corrcoef_matrix(steps, values):
    import numpy as np
    return np.corrcoef(ranks(steps), ranks(values))


def trend_steps_unranked(steps, values):
    return pearson(steps, ranks(values))


def trend_p_value(steps, values):
    from scipy import stats
    return stats.spearmanr(steps, values).pvalue


def trend_kendall(steps, values):
    from scipy import stats
    return stats.kendalltau(steps, values).statistic


def trend_abs(steps, values):
    return abs(trend(steps, values))


def trend_values_unranked(steps, values):
    return pearson(ranks(steps), values)


CHECKS = {
    "attention": (checks.check_attention_share, attention_share),
    "persistence": (checks.check_persistence, persistence),
    "trend": (checks.check_trend, trend),
}

WRONG = [
    ("attention", mlp_share, "MLP share"),
    ("attention", attention_share_of_all, "not by all maskable entries"),
    ("attention", attention_share_nan_when_empty, "return 0.0"),
    ("attention", attention_over_mlp, "not by the MLP's"),
    ("attention", attention_share_without_o, "(o) is attention too"),
    ("attention", attention_share_of_sizes, "not the matrices' sizes"),
    ("attention", attention_share_percent, "not a percentage"),
    ("attention", attention_share_by_word, "no GPT-2 matrix has 'attention'"),
    ("attention", attention_share_c_proj, "mlp.c_proj too"),
    ("persistence", persistence_swapped, "in that order"),
    ("persistence", persistence_percent, "not percentages"),
    ("persistence", persistence_jaccard, "Jaccard"),
    ("persistence", persistence_share_of_all, "not by all entries"),
    ("trend", trend_squared, "squared"),
    ("trend", trend_result_object, ".statistic"),
    ("trend", trend_corrcoef_matrix, "entry [0, 1]"),
    ("trend", trend_steps_unranked, "rank BOTH lists"),
    ("persistence", persistence_of_earlier, "final subnetwork's kept entries"),
    ("persistence", persistence_pooled_chance, "density differs per matrix"),
    ("persistence", persistence_as_dict, "you returned a dict with keys ['chance', 'observed']"),
    ("persistence", persistence_one_number, "return a pair of numbers"),
    ("trend", pearson, "Pearson"),
    ("trend", trend_p_value, "p-value"),
    ("trend", trend_kendall, "Kendall"),
    ("trend", trend_abs, "keep the sign"),
    ("trend", trend_values_unranked, "rank BOTH lists"),
]


test_right_stub_and_crash, test_wrong_answers_are_named = contract_tests(CHECKS, WRONG,
                                                                         not_a_number=True)


def test_persistence_as_a_tensor_pair_passes(capsys):
    import torch
    assert checks.check_persistence(lambda e, f: torch.tensor(persistence(e, f))).correct
    assert "✓" in capsys.readouterr().out
