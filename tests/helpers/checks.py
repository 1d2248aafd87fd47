"""The contract every exercise check keeps, asserted in one place: a right answer
passes with ✓, the generated stub (returns None) and a raised NotImplementedError
say "not implemented yet", and a crash in the student's code is reported by
name, never raised. Each check returns a structured result (``CheckResult``)
whose status and line agree with what it printed."""


def _outcome(check, fn, extra, capsys, status):
    result = check(fn, *extra)
    out = capsys.readouterr().out
    assert result.status == status, (result, out)
    assert result.correct is (status == "correct") and bool(result) is result.correct
    assert result.line in out and result.line.startswith("✓" if result.correct else "✗")
    return out


def assert_check_contract(check, right, *extra, capsys):
    assert check(right, *extra).correct is True
    assert "✓" in capsys.readouterr().out
    _outcome(check, right, extra, capsys, "correct")

    # the generated stub returns None
    assert "not implemented yet" in _outcome(check, lambda *a: None, extra, capsys,
                                             "not implemented")

    def raises(*a):
        raise NotImplementedError
    assert "not implemented yet" in _outcome(check, raises, extra, capsys, "not implemented")

    def crashes(*a):
        return 1 / 0
    assert "ZeroDivisionError" in _outcome(check, crashes, extra, capsys, "wrong")


def assert_wrong_is_named(check, wrong, message, *extra, capsys):
    """A plausible wrong answer fails, and the check's line names the mistake."""
    result = check(wrong, *extra)
    out = capsys.readouterr().out
    assert result.correct is False and result.status == "wrong", out
    assert "✗" in out and message in out, out
    assert message in result.line


def contract_tests(checks: dict, wrong: list, not_a_number: bool = False):
    """The two parametrized tests every chapter's check module runs, built once here:

        test_right_stub_and_crash, test_wrong_answers_are_named = contract_tests(CHECKS, WRONG)

    ``checks``: {name: (check, right answer)}; ``wrong``: [(name, wrong answer,
    words the check's line must contain)]; ``not_a_number``: an answer of the wrong type
    (a string) is also said to be wrong, not raised."""
    import pytest

    @pytest.mark.parametrize("name", list(checks))
    def test_right_stub_and_crash(name, capsys):
        check, right = checks[name]
        assert_check_contract(check, right, capsys=capsys)
        if not_a_number:
            assert check(lambda *a: "seven").correct is False  # said, not raised
            assert "✗" in capsys.readouterr().out

    @pytest.mark.parametrize("name,wrong,message", wrong, ids=[w[1].__name__ for w in wrong])
    def test_wrong_answers_are_named(name, wrong, message, capsys):
        check, _ = checks[name]
        assert_wrong_is_named(check, wrong, message, capsys=capsys)

    return test_right_stub_and_crash, test_wrong_answers_are_named
