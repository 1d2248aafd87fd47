"""bigramlab.methods.power_law against numpy/scipy directly and known power laws.

Reference: np.polyfit of log r on log N (degree 1) for the exponent and the
prefactor, the squared correlation of the logs for R^2. Synthetic sweeps drawn
from exact power laws must give their parameters back. The comparison at a
common count is checked on the paper's own section 4.1 numbers (500K
parameters: r 0.949 at step 4K, 0.919 at step 143K).
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bigramlab.methods.power_law import PowerLaw, compare_at, fit_per_checkpoint, fit_power_law


def naive_fit(n, r):
    slope, intercept = np.polyfit(np.log(n), np.log(r), 1)
    r2 = np.corrcoef(np.log(n), np.log(r))[0, 1] ** 2
    return math.exp(intercept), slope, r2


def test_equals_polyfit_on_noisy_points():
    rng = np.random.default_rng(0)
    n = np.array([1014, 2986, 5783, 11384, 96767])
    r = 0.6 * n ** 0.04 * np.exp(rng.normal(0, 0.01, n.size))
    fit, (a, b, r2) = fit_power_law(n, r), naive_fit(n, r)
    assert (fit.a, fit.b, fit.r2) == pytest.approx((a, b, r2), rel=1e-10)
    assert (fit.n_min, fit.n_max, fit.n_points) == (1014, 96767, 5)
    assert fit(n) == pytest.approx(a * n ** b, rel=1e-10)
    assert 0.9 < fit.r2 < 1


@settings(max_examples=100, deadline=None)
@given(st.floats(0.05, 1.0), st.floats(-0.5, 0.5),
       st.lists(st.integers(1, 10**9), min_size=2, max_size=8, unique=True))
def test_exact_power_laws_come_back(a, b, counts):
    r = [a * c ** b for c in counts]
    fit = fit_power_law(counts, r)
    assert fit.a == pytest.approx(a, rel=1e-8) and fit.b == pytest.approx(b, abs=1e-9)
    # scaling every r by c scales a by c and keeps the exponent
    scaled = fit_power_law(counts, [2 * x for x in r])
    assert scaled.a == pytest.approx(2 * fit.a, rel=1e-8)
    assert scaled.b == pytest.approx(fit.b, abs=1e-9)


def test_per_checkpoint_fits_skip_endpoints_and_keep_order():
    rows = []
    for ckpt, a in (("step4000", 0.7), ("step512", 0.6), ("step143000", 0.65)):
        rows += [{"checkpoint": ckpt, "lambda": lam, "kept": k, "r": a * k ** 0.02}
                 for lam, k in ((0.0, 90_000), (10.0, 3_000), (100.0, 1_000))]
        rows += [{"checkpoint": ckpt, "lambda": math.inf, "kept": 0, "r": 0.3},
                 {"checkpoint": ckpt, "lambda": -math.inf, "kept": 196_608, "r": 0.77}]
    fits = fit_per_checkpoint(rows)
    assert list(fits) == ["step4000", "step512", "step143000"]
    assert [round(f.a, 9) for f in fits.values()] == [0.7, 0.6, 0.65]
    assert all(f.n_points == 3 and f.b == pytest.approx(0.02) for f in fits.values())


def test_the_papers_comparison_at_500k():
    """Section 4.1: 500K parameters give r 0.949 at step 4K and 0.919 at 143K.
    Fits through those points (slope 0.01) must give them back at 500K."""
    def law(r_at_500k):
        return PowerLaw(a=r_at_500k / 5e5 ** 0.01, b=0.01, r2=1.0, n_min=10**5,
                        n_max=10**7, n_points=8)
    fits = {"step512": law(0.90), "step4000": law(0.949), "step16000": law(0.93),
            "step143000": law(0.919)}
    out = compare_at(fits, 5e5)
    assert [round(r["r_at_n"], 6) for r in out["rows"]] == [0.90, 0.949, 0.93, 0.919]
    assert out["peak"]["checkpoint"] == "step4000"  # the best earlier one, not the first
    assert out["final"]["checkpoint"] == "step143000"
    assert out["later_buys_less"] is True  # 0.919 < 0.949, although 0.919 > step512's 0.90
    fits["step143000"] = law(0.96)
    assert compare_at(fits, 5e5)["later_buys_less"] is False
    assert compare_at({"step4000": law(0.949)}, 5e5)["later_buys_less"] is None


def test_default_count_is_the_geometric_middle_of_the_common_range():
    def law(lo, hi):
        return PowerLaw(a=0.5, b=0.05, r2=1.0, n_min=lo, n_max=hi, n_points=3)
    out = compare_at({"a": law(1_000, 1_000_000), "b": law(4_000, 90_000)})
    assert out["n"] == pytest.approx(math.sqrt(4_000 * 90_000))
    assert all(r["in_range"] for r in out["rows"])
    assert compare_at({"a": law(1_000, 2_000)}, 5_000)["rows"][0]["in_range"] is False
    with pytest.raises(ValueError, match="no common range.*n="):
        compare_at({"a": law(1_000, 2_000), "b": law(3_000, 9_000)})


@pytest.mark.parametrize("n, r, match", [
    ([0, 10], [0.3, 0.9], "empty endpoint"),
    ([10, 100], [0.0, 0.9], "no logarithm"),
    ([10, 10], [0.8, 0.9], "two different"),
    ([10], [0.8], "two different"),
    ([10, 100], [0.8], "one length"),
    ([10, float("nan")], [0.8, 0.9], "finite"),
])
def test_bad_points_name_the_fix(n, r, match):
    with pytest.raises(ValueError, match=match):
        fit_power_law(n, r)


def test_bad_tables_name_the_fix():
    with pytest.raises(ValueError, match="empty"):
        fit_per_checkpoint([])
    with pytest.raises(KeyError, match="checkpoint_key="):
        fit_per_checkpoint([{"lambda": 0.0, "kept": 10, "r": 0.9}])
    with pytest.raises(ValueError, match="checkpoint step0: .*two different"):
        fit_per_checkpoint([{"checkpoint": "step0", "lambda": 0.0, "kept": 10, "r": 0.9}])
    with pytest.raises(ValueError, match="only endpoints|every row is an endpoint"):
        fit_per_checkpoint([{"checkpoint": "s", "lambda": math.inf, "kept": 0, "r": 0.3}])
    with pytest.raises(ValueError, match="no fits"):
        compare_at({})
