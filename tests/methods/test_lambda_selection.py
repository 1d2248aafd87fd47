"""bigramlab.methods.lambda_selection against naive references.

The paper's rule (Appendix A.3, issue 22's wording: "the sparsest lambda whose r
is within 0.04 of lambda = 0's") and the course's rule (Chapter 3: the smallest
lambda with r >= 0.95 and at most 5% of the maskable entries) are each written
here a second time as a plain loop, and compared on hypothesis-drawn sweeps
whose kept counts and r values collide often (ties, boundaries).
"""

import math
import random

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bigramlab.methods.lambda_selection import analysed_lambda, course_lambda, lambda_choices

# Chapter 3's stored sweep (chapters/ch03_sparsification.ipynb, the tiny profile,
# 600-step cap): lambda, kept, r (drop inf); 196,608 maskable entries.
CH03 = [(-math.inf, 196608, 0.770), (0.0, 96767, 0.987), (1.0, 11384, 0.980),
        (3.0, 5783, 0.971), (10.0, 2986, 0.957), (100.0, 1014, 0.888),
        (math.inf, 0, 0.380)]
CH03_ROWS = [{"lambda": lam, "kept": k, "r (drop inf)": r} for lam, k, r in CH03]
N_TINY = 196_608


def naive_paper(rows, tol=0.04):
    r0 = [r["r"] for r in rows if r["lambda"] == 0][0]
    best = None
    for row in rows:
        if math.isinf(row["lambda"]) or row["r"] < r0 - tol:
            continue
        if (best is None or row["kept"] < best["kept"]
                or (row["kept"] == best["kept"] and row["lambda"] > best["lambda"])):
            best = row
    return best["lambda"]


def naive_course(rows, n, min_r=0.95, max_share=0.05):
    ok = sorted(row["lambda"] for row in rows if not math.isinf(row["lambda"])
                and row["r"] >= min_r and row["kept"] <= max_share * n)
    return ok[0] if ok else None


def test_chapter3_sweep_paper_picks_10_course_picks_3():
    """Issue 22: 'On Chapter 3's sweep the paper's rule picks lambda 10, the course's
    picks 3' (lambda 0's r 0.987: threshold 0.947; lambda 10's 0.957 is within it,
    lambda 100's 0.888 is not)."""
    assert analysed_lambda(CH03_ROWS, r_key="r (drop inf)") == 10.0
    assert course_lambda(CH03_ROWS, N_TINY, r_key="r (drop inf)") == 3.0
    choice = lambda_choices(CH03_ROWS, N_TINY, r_key="r (drop inf)")
    assert choice == {"paper": 10.0, "course": 3.0, "r0": 0.987,
                      "threshold": pytest.approx(0.947)}


def test_boundary_is_inclusive_despite_binary_rounding():
    # 0.99 - 0.95 = 0.04000000000000003 in binary: "within 0.04" must still hold (two
    # decimals as a table quotes them; r >= r0 - 0.04 holds for every such pair)
    rows = [{"lambda": 0.0, "kept": 100, "r": 0.99}, {"lambda": 5.0, "kept": 10, "r": 0.95}]
    assert analysed_lambda(rows) == 5.0
    rows[1]["r"] = 0.9499
    assert analysed_lambda(rows) == 0.0


def test_tie_in_kept_goes_to_the_larger_lambda():
    rows = [{"lambda": 0.0, "kept": 100, "r": 0.99}, {"lambda": 5.0, "kept": 10, "r": 0.98},
            {"lambda": 50.0, "kept": 10, "r": 0.97}]
    assert analysed_lambda(rows) == 50.0


# sweeps from a small grid of kept counts and r values, so that ties and exact
# boundaries (r0 - r == 0.04, kept == 5% of n) are common
_row = st.tuples(st.integers(0, 20), st.integers(80, 100))


@st.composite
def sweeps(draw):
    lams = draw(st.lists(st.sampled_from([1.0, 2.0, 3.0, 5.0, 10.0, 50.0, 100.0, 500.0]),
                         unique=True, max_size=7))
    rows = [{"lambda": lam, "kept": k, "r": r / 100} for lam, (k, r) in
            zip([0.0] + lams, draw(st.lists(_row, min_size=len(lams) + 1,
                                            max_size=len(lams) + 1)))]
    if draw(st.booleans()):
        rows += [{"lambda": -math.inf, "kept": 20, "r": 0.5}, {"lambda": math.inf, "kept": 0,
                                                             "r": 0.1}]
    random.Random(draw(st.integers(0, 99))).shuffle(rows)
    return rows


@settings(max_examples=300, deadline=None)
@given(sweeps(), st.sampled_from([0.0, 0.01, 0.04, 0.1]))
@example([{"lambda": 0.0, "kept": 5, "r": 0.99}, {"lambda": 3.0, "kept": 1, "r": 0.95},
          {"lambda": math.inf, "kept": 0, "r": 0.99}], 0.04)
def test_paper_rule_equals_the_naive_loop(rows, tol):
    assert analysed_lambda(rows, tolerance=tol) == naive_paper(rows, tol)


@settings(max_examples=200, deadline=None)
@given(sweeps())
def test_paper_rule_properties(rows):
    lam = analysed_lambda(rows)
    chosen = next(r for r in rows if r["lambda"] == lam)
    r0 = next(r["r"] for r in rows if r["lambda"] == 0)
    assert math.isfinite(lam) and chosen["r"] >= r0 - 0.04
    # nothing within the tolerance is sparser
    assert all(r["kept"] >= chosen["kept"] for r in rows
               if math.isfinite(r["lambda"]) and r["r"] >= r0 - 0.04)
    # a looser tolerance never picks a denser subnetwork
    looser = analysed_lambda(rows, tolerance=0.1)
    assert next(r["kept"] for r in rows if r["lambda"] == looser) <= chosen["kept"]


@settings(max_examples=300, deadline=None)
@given(sweeps(), st.sampled_from([20, 200, 400, 1000]))
@example([{"lambda": 0.0, "kept": 10, "r": 0.99}, {"lambda": 3.0, "kept": 10, "r": 0.95}], 200)
def test_course_rule_equals_the_naive_loop(rows, n):
    rows = [{**r, "r": r["r"] + 0.0} for r in rows]
    assert course_lambda(rows, n) == naive_course(rows, n)


@pytest.mark.parametrize("rows, match", [
    ([], "empty"),
    ([{"lambda": 1.0, "kept": 3, "r": 0.9}], "no lambda 0"),
    ([{"lambda": math.inf, "kept": 0, "r": 0.3}], "no lambda 0.*only endpoints"),
    ([{"lambda": 0.0, "kept": 3, "r": 0.9}, {"lambda": 0.0, "kept": 4, "r": 0.9}], "twice"),
    ([{"lambda": 0.0, "kept": 3, "r": float("nan")}], "Pearson"),
    ([{"lambda": -1.0, "kept": 3, "r": 0.9}], "lambda"),
    ([{"lambda": 0.0, "kept": 2.5, "r": 0.9}], "whole number"),
])
def test_bad_sweeps_name_the_fix(rows, match):
    with pytest.raises(ValueError, match=match):
        analysed_lambda(rows)


def test_missing_column_and_wrong_types_name_the_fix():
    with pytest.raises(KeyError, match="r_key="):
        analysed_lambda(CH03_ROWS)  # Chapter 3 calls its r column "r (drop inf)"
    with pytest.raises(TypeError, match="list of dicts"):
        analysed_lambda("lambda,kept,r")
    with pytest.raises(ValueError, match="n_entries"):
        course_lambda(CH03_ROWS, 1000, r_key="r (drop inf)")
