"""The contract every exercise check keeps, asserted in one place: a right answer
passes with ✓, the generated stub (returns None) and a raised NotImplementedError
say "not implemented yet", and a crash in the student's code is reported by
name, never raised."""


def assert_check_contract(check, right, *extra, capsys):
    assert check(right, *extra) is True
    assert "✓" in capsys.readouterr().out

    assert check(lambda *a: None, *extra) is False  # the generated stub returns None
    assert "not implemented yet" in capsys.readouterr().out

    def raises(*a):
        raise NotImplementedError
    assert check(raises, *extra) is False
    assert "not implemented yet" in capsys.readouterr().out

    def crashes(*a):
        return 1 / 0
    assert check(crashes, *extra) is False
    assert "ZeroDivisionError" in capsys.readouterr().out


def assert_wrong_is_named(check, wrong, message, *extra, capsys):
    """A plausible wrong answer fails, and the check's line names the mistake."""
    assert check(wrong, *extra) is False
    out = capsys.readouterr().out
    assert "✗" in out and message in out, out


def contract_tests(checks: dict, wrong: list):
    """The two parametrized tests every chapter's check module runs, built once here:

        test_right_stub_and_crash, test_wrong_answers_are_named = contract_tests(CHECKS, WRONG)

    ``checks``: {name: (check, right answer)}; ``wrong``: [(name, wrong answer,
    words the check's line must contain)]."""
    import pytest

    @pytest.mark.parametrize("name", list(checks))
    def test_right_stub_and_crash(name, capsys):
        check, right = checks[name]
        assert_check_contract(check, right, capsys=capsys)

    @pytest.mark.parametrize("name,wrong,message", wrong, ids=[w[1].__name__ for w in wrong])
    def test_wrong_answers_are_named(name, wrong, message, capsys):
        check, _ = checks[name]
        assert_wrong_is_named(check, wrong, message, capsys=capsys)

    return test_right_stub_and_crash, test_wrong_answers_are_named
