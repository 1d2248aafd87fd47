"""Exercise checks: pass right answers, say 'not implemented yet' for stubs,
say what is wrong for wrong answers, and never raise."""

import pytest

from bigramlab import checks
from bigramlab.plumbing.profiles import TinyWorld
from bigramlab.worlds.models import make_model
from tests.helpers.checks import assert_check_contract
from tests.helpers.tokenizers import WordTokenizer


def _steps(final):
    out, p = [0], 1
    while p < final:
        out.append(p)
        p *= 2
    return out + [final]


CASES = [
    (checks.check_log_spaced_steps, (), _steps, lambda f: _steps(f)[:-1], "log_spaced_steps"),
    (checks.check_count_parameters, (), lambda m: sum(p.numel() for p in m.parameters()),
     lambda m: sum(p.numel() for _, p in m.named_parameters(remove_duplicate=False)), "tied"),
    (checks.check_tokens_per_word, (WordTokenizer(),),
     lambda tok, texts: sum(len(t.split()) for t in texts) / sum(len(t.split()) for t in texts),
     lambda tok, texts: 2.0, "tokens per word"),
]


@pytest.mark.parametrize("check,extra,right,wrong,wrong_msg", CASES)
def test_check_outcomes(check, extra, right, wrong, wrong_msg, capsys):
    assert_check_contract(check, right, *extra, capsys=capsys)
    assert check(wrong, *extra).correct is False
    out = capsys.readouterr().out
    assert "✗" in out and wrong_msg in out


def test_gpt2_tie_is_counted_once():
    torch_model = make_model("gpt2", TinyWorld(n_layer=1, d_model=8, n_head=2, d_mlp=16), 20, 8)
    named = sum(p.numel() for _, p in torch_model.named_parameters(remove_duplicate=False))
    assert named > sum(p.numel() for p in torch_model.parameters())  # the trap is real


def test_check_result_is_truthy_iff_correct_and_shows_nothing(capsys):
    """The structured result behaves like the old booleans and hides in a notebook."""
    right = checks.check_log_spaced_steps(_steps)
    wrong = checks.check_log_spaced_steps(lambda f: [0])
    stub = checks.check_log_spaced_steps(lambda f: None)
    printed = capsys.readouterr().out.splitlines()
    assert printed == [right.line, wrong.line, stub.line]
    assert bool(right) and not wrong and not stub
    assert right == True and wrong == False and stub == False  # noqa: E712 (the old API)
    assert (right.status, wrong.status, stub.status) == ("correct", "wrong", "not implemented")
    assert wrong.as_dict() == {"name": "Exercise 0.1 (log-spaced checkpoints)",
                               "status": "wrong", "line": wrong.line, "correct": False}
    assert right._ipython_display_() is None  # IPython publishes no Out[n] for it
    assert {True: "yes"}[right] == "yes"  # hashed like the bool it equals
