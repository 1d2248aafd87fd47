"""Chapter 0 exercise checks: they pass right answers, say "not implemented yet" for
stubs, name the problem in plausible wrong answers, and never raise. (Chapter 0 is not
graded through the judge: 0.3 takes the session's tokenizer.)"""

import functools
import math

import numpy as np
import torch

from bigramlab import checks
from tests.helpers.checks import contract_tests
from tests.helpers.tokenizers import PieceTokenizer


TOK = PieceTokenizer()


# ------------------------------------------------------------ Exercise 0.1
def log_spaced_steps(final):
    out, p = [0], 1
    while p < final:
        out.append(p)
        p *= 2
    return out + [final]


def steps_without_final(final):
    return log_spaced_steps(final)[:-1]


def steps_without_zero(final):
    return log_spaced_steps(final)[1:]


def steps_final_twice(final):
    """while p <= final: a power-of-two final is listed twice."""
    out, p = [0], 1
    while p <= final:
        out.append(p)
        p *= 2
    return out + [final]


def steps_past_final(final):
    return [0] + [2 ** i for i in range(final.bit_length() + 1)] + [final]


def steps_decreasing(final):
    return log_spaced_steps(final)[::-1]


def steps_logspace(final):
    return list(np.logspace(0, math.log2(max(final, 2)), 8, base=2.0))


def steps_revision_names(final):
    return [f"step{s}" for s in log_spaced_steps(final)]


def steps_skip_one(final):
    """Powers from 2: step 1 forgotten."""
    out, p = [0], 2
    while p < final:
        out.append(p)
        p *= 2
    return out + [final]


# ------------------------------------------------------------ Exercise 0.2
def count_parameters(model):
    return sum(p.numel() for p in model.parameters())


def count_tied_twice(model):
    return sum(p.numel() for _, p in model.named_parameters(remove_duplicate=False))


def count_tensors(model):
    return len(list(model.parameters()))


def count_in_millions(model):
    return count_parameters(model) / 1e6


def count_rows(model):
    return sum(len(p) for p in model.parameters())


def count_weights_only(model):
    return sum(p.numel() for n, p in model.named_parameters() if n.endswith("weight"))


def count_non_embedding(model):
    skip = {id(model.get_input_embeddings().weight), id(model.get_output_embeddings().weight)}
    return sum(p.numel() for p in model.parameters() if id(p) not in skip)


def count_base_model_only(model):
    return sum(p.numel() for p in model.base_model.parameters())


def count_state_dict(model):
    return sum(t.numel() for t in model.state_dict().values())


# ------------------------------------------------------------ Exercise 0.3
def tokens_per_word(tokenizer, texts):
    n_tok = sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)
    return n_tok / sum(len(t.split()) for t in texts)


def tpw_with_special_tokens(tokenizer, texts):
    return sum(len(tokenizer(t)["input_ids"]) for t in texts) / sum(len(t.split()) for t in texts)


def tpw_inverted(tokenizer, texts):
    return 1 / tokens_per_word(tokenizer, texts)


def tpw_per_character(tokenizer, texts):
    n_tok = sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)
    return n_tok / sum(len(t) for t in texts)


def tpw_mean_of_ratios(tokenizer, texts):
    return sum(tokens_per_word(tokenizer, [t]) for t in texts) / len(texts)


def tpw_len_of_encoding(tokenizer, texts):
    return sum(len(tokenizer(t, add_special_tokens=False)) for t in texts) / sum(
        len(t.split()) for t in texts)


def tpw_integer_division(tokenizer, texts):
    n_tok = sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)
    return n_tok // sum(len(t.split()) for t in texts)


def tpw_first_text(tokenizer, texts):
    for t in texts:
        return len(tokenizer(t, add_special_tokens=False)["input_ids"]) / len(t.split())


def tpw_spaces_as_words(tokenizer, texts):
    """Words counted as spaces: one fewer per text."""
    n_tok = sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)
    return n_tok / sum(t.count(" ") for t in texts)


CHECKS = {
    "steps": (checks.check_log_spaced_steps, log_spaced_steps),
    "count": (checks.check_count_parameters, count_parameters),
    "tpw": (functools.partial(checks.check_tokens_per_word, tokenizer=TOK), tokens_per_word),
}

WRONG = [
    ("steps", steps_without_final, "end with the final step"),
    ("steps", steps_without_zero, "start with step 0"),
    ("steps", steps_final_twice, "list it once"),
    ("steps", steps_past_final, "no step after the final one"),
    ("steps", steps_decreasing, "increasing order"),
    ("steps", steps_logspace, "steps are integers"),
    ("steps", steps_revision_names, "not revision names"),
    ("steps", steps_skip_one, "expected"),
    ("count", count_tied_twice, "tied"),
    ("count", count_tensors, "parameter tensors"),
    ("count", count_in_millions, "not millions"),
    ("count", count_rows, "len(p)"),
    ("count", count_weights_only, "weights only"),
    ("count", count_non_embedding, "left out the embeddings"),
    ("count", count_base_model_only, "left out the unembedding"),
    ("count", count_state_dict, "tied"),
    ("tpw", tpw_with_special_tokens, "add_special_tokens=False"),
    ("tpw", tpw_inverted, "not words / tokens"),
    ("tpw", tpw_per_character, "not the characters"),
    ("tpw", tpw_mean_of_ratios, "mean of per-text ratios"),
    ("tpw", tpw_len_of_encoding, "number of fields"),
    ("tpw", tpw_integer_division, "integer division"),
    ("tpw", tpw_first_text, "only the first text"),
    ("tpw", tpw_spaces_as_words, "tokens per word on the check's texts"),
]


test_right_stub_and_crash, test_wrong_answers_are_named = contract_tests(CHECKS, WRONG,
                                                                         not_a_number=True)


def test_right_answers_in_other_types_pass(capsys):
    """A tuple of numpy ints, a tensor count and a tensor ratio are right too."""
    assert checks.check_log_spaced_steps(lambda f: tuple(np.array(log_spaced_steps(f))))
    assert checks.check_count_parameters(lambda m: torch.tensor(count_parameters(m)))
    assert checks.check_tokens_per_word(lambda tok, t: torch.tensor(tokens_per_word(tok, t)),
                                        TOK)
    assert "✗" not in capsys.readouterr().out
