"""Chapter 3 exercise checks: they pass right answers (written here independently
of bigramlab), say "not implemented yet" for stubs, name the problem in
plausible wrong answers, and never raise."""

import math

import torch

from bigramlab import checks
from tests.helpers.checks import contract_tests


# ------------------------------------------------------------ right answers
def soft_mask(s, T):
    return 1 / (1 + torch.exp(-T * s))


def density_penalty(soft, lam):
    total = sum(float(m.double().sum()) for m in soft.values())
    n = sum(m.numel() for m in soft.values())
    return lam * total / n


def temperature(step, growth):
    T = 1.0
    for _ in range(step):
        T *= growth
    return T


def should_stop(soft):
    undecided = above = 0
    for m in soft.values():
        for x in m.reshape(-1).tolist():
            undecided += 0.1 < x < 0.9
            above += x > 0.9
    return undecided < 0.01 * above


def kept_per_layer(model, mask):
    out = {}
    for name, m in mask.items():
        layer = int(name.split(".")[2])
        out[layer] = out.get(layer, 0) + int(m.sum())
    return out


# ------------------------------------------------------------ wrong answers
def soft_mask_divided(s, T):
    return torch.sigmoid(s / T)


def soft_mask_no_temperature(s, T):
    return torch.sigmoid(s)


def soft_mask_hard(s, T):
    return (torch.as_tensor(s) > 0).float()


def soft_mask_sign_flipped(s, T):
    return 1 / (1 + torch.exp(T * s))


def soft_mask_softmax(s, T):
    return torch.softmax((T * s).flatten(), 0).view(s.shape)


def penalty_no_lambda(soft, lam):
    return density_penalty(soft, 1.0)


def penalty_hard_count(soft, lam):
    n = sum(m.numel() for m in soft.values())
    return lam * sum(int((m > 0.5).sum()) for m in soft.values()) / n


def penalty_squares(soft, lam):
    n = sum(m.numel() for m in soft.values())
    return lam * sum(float((m.double() ** 2).sum()) for m in soft.values()) / n


def penalty_first_matrix(soft, lam):
    for m in soft.values():
        return lam * float(m.double().sum()) / m.numel()


def temperature_product(step, growth):
    return growth * step


def temperature_step_power(step, growth):
    return step ** growth


def penalty_mean_of_means(soft, lam):
    return lam * sum(float(m.mean()) for m in soft.values()) / len(soft)


def penalty_sum(soft, lam):
    return lam * sum(float(m.sum()) for m in soft.values())


def temperature_off_by_one(step, growth):
    return growth ** (step + 1)


def temperature_linear(step, growth):
    return 1 + (growth - 1) * step


def stop_vs_all_entries(soft):
    n = sum(m.numel() for m in soft.values())
    undecided = sum(int(((m > 0.1) & (m < 0.9)).sum()) for m in soft.values())
    return undecided < 0.01 * n


def stop_when_empty(soft):
    above = sum(int((m > 0.9).sum()) for m in soft.values())
    return above == 0 or should_stop(soft)


def stop_at_or_below(soft):
    undecided = sum(int(((m > 0.1) & (m < 0.9)).sum()) for m in soft.values())
    above = sum(int((m > 0.9).sum()) for m in soft.values())
    return undecided <= 0.01 * above


def stop_per_matrix_all(soft):
    return all(should_stop({n: m}) for n, m in soft.items())


def stop_per_matrix_any(soft):
    return any(should_stop({n: m}) for n, m in soft.items())


def kept_shares(model, mask):
    out, tot = kept_per_layer(model, mask), {}
    for name, m in mask.items():
        tot[int(name.split(".")[2])] = tot.get(int(name.split(".")[2]), 0) + m.numel()
    return {k: v / tot[k] for k, v in out.items()}


def kept_all_entries(model, mask):
    return kept_per_layer(model, {n: torch.ones_like(m) for n, m in mask.items()})


def kept_mlp_only(model, mask):
    return kept_per_layer(model, {n: m for n, m in mask.items() if "mlp" in n})


def soft_mask_in_place(s, T):
    return s.mul_(T).sigmoid_()


def soft_mask_exp(s, T):
    """exp(Ts) / (1 + exp(Ts)): right on paper, inf / inf = NaN for a large T * s."""
    e = torch.exp(T * s)
    return e / (1 + e)


def soft_mask_tanh(s, T):
    return torch.tanh(T * s)


def soft_mask_tanh_half(s, T):
    """sigmoid(x) = (1 + tanh(x / 2)) / 2, with the / 2 inside forgotten."""
    return (1 + torch.tanh(T * s)) / 2


def penalty_in_place(soft, lam):
    for m in soft.values():
        m.mul_(lam)
    return sum(float(m.double().sum()) for m in soft.values()) / sum(
        m.numel() for m in soft.values())


def penalty_negative(soft, lam):
    return -density_penalty(soft, lam)


def penalty_per_matrix_count(soft, lam):
    return lam * sum(float(m.double().sum()) for m in soft.values()) / len(soft)


def temperature_one_short(step, growth):
    return growth ** (step - 1)


def temperature_exp_approx(step, growth):
    return math.exp((growth - 1) * step)


def temperature_int(step, growth):
    return int(growth ** step)


def temperature_rate(step, growth):
    return (1 + growth) ** step


def stop_inverted(soft):
    return not should_stop(soft)


def stop_one_percent_as_one(soft):
    undecided = sum(int(((m > 0.1) & (m < 0.9)).sum()) for m in soft.values())
    above = sum(int((m > 0.9).sum()) for m in soft.values())
    return undecided < above


def stop_no_lower_bound(soft):
    """Undecided taken as everything below 0.9 (the dropped entries too)."""
    undecided = sum(int((m < 0.9).sum()) for m in soft.values())
    above = sum(int((m > 0.9).sum()) for m in soft.values())
    return undecided < 0.01 * above


def kept_dropped(model, mask):
    return kept_per_layer(model, {n: ~m for n, m in mask.items()})


def kept_attention_only(model, mask):
    return kept_per_layer(model, {n: m if ("attn" in n or "attention" in n)
                                  else torch.zeros_like(m) for n, m in mask.items()})


def kept_list(model, mask):
    out = kept_per_layer(model, mask)
    return [out[k] for k in sorted(out)]


def kept_per_matrix(model, mask):
    return {name: int(m.sum()) for name, m in mask.items()}


def kept_one_based(model, mask):
    return {k + 1: v for k, v in kept_per_layer(model, mask).items()}


CHECKS = {
    "soft_mask": (checks.check_soft_mask, soft_mask),
    "penalty": (checks.check_density_penalty, density_penalty),
    "temperature": (checks.check_temperature, temperature),
    "stop": (checks.check_should_stop, should_stop),
    "kept": (checks.check_kept_per_layer, kept_per_layer),
}

WRONG = [
    ("soft_mask", soft_mask_divided, "divided by the temperature"),
    ("soft_mask", soft_mask_no_temperature, "left out the temperature"),
    ("soft_mask", soft_mask_hard, "hard 0/1 mask"),
    ("soft_mask", soft_mask_sign_flipped, "sign is flipped"),
    ("soft_mask", soft_mask_softmax, "not a softmax"),
    ("penalty", penalty_mean_of_means, "per-matrix means"),
    ("penalty", penalty_sum, "divide the sum by N"),
    ("penalty", penalty_no_lambda, "by lambda"),
    ("penalty", penalty_hard_count, "not the number of entries above 0.5"),
    ("penalty", penalty_squares, "not their squares"),
    ("penalty", penalty_first_matrix, "only the first matrix"),
    ("temperature", temperature_off_by_one, "off by one"),
    ("temperature", temperature_linear, "geometrically"),
    ("temperature", temperature_product, "T after 0 steps is 1"),
    ("temperature", temperature_step_power, "T after 0 steps is 1"),
    ("stop", stop_vs_all_entries, "ABOVE 0.9"),
    ("stop", stop_when_empty, "never stops"),
    ("stop", stop_at_or_below, "strictly fewer"),
    ("stop", stop_per_matrix_all, "combined the answers with all()"),
    ("stop", stop_per_matrix_any, "combined the answers with any()"),
    ("kept", kept_shares, "shares"),
    ("kept", kept_all_entries, "all entries"),
    ("kept", kept_mlp_only, "layer 0 keeps"),
    ("kept", kept_dropped, "dropped entries"),
    ("kept", kept_attention_only, "attention matrices only"),
    ("kept", kept_list, "got a list"),
    ("kept", kept_per_matrix, "the keys are layer numbers"),
    ("kept", kept_one_based, "numbered from 0"),
    ("soft_mask", soft_mask_in_place, "changed the tensor you were given"),
    ("soft_mask", soft_mask_exp, "NaN"),
    ("soft_mask", soft_mask_tanh, "negative entries"),
    ("soft_mask", soft_mask_tanh_half, "differs from sigmoid(T * s)"),
    ("penalty", penalty_in_place, "changed the mask you were given"),
    ("penalty", penalty_negative, "not minus"),
    ("penalty", penalty_per_matrix_count, "not by the number of matrices"),
    ("temperature", temperature_one_short, "off by one"),
    ("temperature", temperature_exp_approx, "approximation"),
    ("temperature", temperature_int, "you rounded T"),
    ("temperature", temperature_rate, "not a rate"),
    ("stop", stop_inverted, "the opposite"),
    ("stop", stop_one_percent_as_one, "1% is 0.01"),
    ("stop", stop_no_lower_bound, "between 0.1 and 0.9"),
]


test_right_stub_and_crash, test_wrong_answers_are_named = contract_tests(CHECKS, WRONG,
                                                                         not_a_number=True)


def test_vectorized_solutions_pass(capsys):
    """The notebook's solutions (vectorized torch) pass too."""
    def penalty(soft, lam):
        return lam * torch.cat([m.reshape(-1) for m in soft.values()]).mean()

    def stop(soft):
        flat = torch.cat([m.reshape(-1) for m in soft.values()])
        return bool(((flat > 0.1) & (flat < 0.9)).sum() < 0.01 * (flat > 0.9).sum())

    assert checks.check_soft_mask(lambda s, T: torch.sigmoid(T * s))
    assert checks.check_density_penalty(penalty)
    assert checks.check_temperature(lambda step, g: g ** step)
    assert checks.check_should_stop(stop)
    assert "✗" not in capsys.readouterr().out


def test_temperature_reference_matches_sparsify():
    """T after n steps is temp_growth ** n in sparsify's runs (the check's answer)."""
    from bigramlab.methods.sparsify import SparsifyConfig, planted_toy, sparsify

    model, x, _, target = planted_toy(d_in=6, d_out=4, n=64)
    cfg = SparsifyConfig(lam=1.0, lr=1e-2, temp_growth=1.05, max_steps=7, batch_size=16,
                         stop_share=0.0)
    res = sparsify(model, x, target, cfg, names=["weight"], progress=False)
    assert res.steps == 7 and math.isclose(res.temperature, temperature(7, 1.05))


def test_temperature_in_float32_passes(capsys):
    """The right formula computed in float32 is right: its rounding is within the stated
    tolerance (it used to fail with "gave 1.001, expected 1.001")."""
    def pow32(step, growth):
        return torch.tensor(growth, dtype=torch.float32) ** step

    def loop32(step, growth):
        T = torch.tensor(1.0)
        for _ in range(step):
            T = T * torch.tensor(growth, dtype=torch.float32)
        return T

    assert checks.check_temperature(pow32).correct is True
    assert checks.check_temperature(loop32).correct is True
    assert "✗" not in capsys.readouterr().out


def test_temperature_failure_states_the_tolerance(capsys):
    result = checks.check_temperature(lambda step, growth: growth ** step * (1 + 3e-3))
    assert result.correct is False
    assert "accepted within a relative 2.4e-07" in result.line, result.line
    assert "temperature(0, 1.001) gave 1.003, expected 1 " in result.line, result.line
