"""The number-aware nbval comparison (tools/nbval_numbers.py): it accepts
last-digit noise and rejects changed words, numbers outside their tolerance and
real changes of a result."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tools.nbval_numbers import Number, NumericText, Tolerance, differences, parse_marker, split

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ splitting
def test_split_finds_numbers_and_keeps_identifiers_as_words():
    words, numbers = split("step1500: kept 5,777 of 196,608 (2.9%), r = -0.061, p < 1e-15, ch03")
    assert [n.text for n in numbers] == ["5,777", "196,608", "2.9", "-0.061", "1e-15"]
    assert words[0] == "step1500: kept " and words[-1] == ", ch03"
    assert [n.value for n in numbers[:2]] == [5777.0, 196608.0]


def test_default_tolerance_follows_the_printing():
    assert Number("0.97").default == pytest.approx(0.01)
    assert Number("5,777").default == 0.0 and Number("5,777").unit == 1.0
    assert Number("1.23e-05").default == pytest.approx(1e-7)
    assert Number("2.9").shape == (1, False) and Number("1e-15").shape == (0, True)


@given(st.lists(st.one_of(st.text(alphabet="ab :|=%()\n", max_size=6),
                          st.floats(-1e6, 1e6, allow_nan=False).map(lambda x: f"{x:.3f}")),
                max_size=12))
def test_split_then_join_gives_the_text_back(pieces):
    text = " ".join(pieces)
    words, numbers = split(text)
    joined = words[0] + "".join(n.text + w for n, w in zip(numbers, words[1:]))
    assert len(words) == len(numbers) + 1
    assert joined == re.sub(r"[ \t]+", " ", text)  # numbers hold no spaces


# ------------------------------------------------------------------ comparison
def test_identical_texts_match():
    assert differences("kept 5,777 (r 0.972)\n", "kept 5,777 (r 0.972)\n") == []


def test_last_digit_noise_is_accepted_by_default():
    assert differences("|h_l| 10.94", "|h_l| 10.93") == []  # a rounding flip


def test_more_than_a_rounding_flip_fails_by_default():
    (msg,) = differences("gap 6.3647", "gap 6.3660")
    assert "6.3647 stored, 6.3660 now" in msg


def test_a_widened_tolerance_accepts_what_it_says():
    tol = Tolerance(abs=0.002, why="measured")
    assert differences("gap 6.3647", "gap 6.3660", tol) == []
    assert differences("gap 6.3647", "gap 6.3680", tol)


def test_a_changed_word_fails_whatever_the_tolerance():
    wide = Tolerance(rel=1.0, abs=1e9, why="wide")
    assert differences("r >= 0.95: True", "r >= 0.95: False", wide)
    assert differences("step1500", "step1501", wide)  # an identifier is a word, not a number


def test_integers_are_exact_by_default():
    assert differences("layer 0 holds the largest share", "layer 1 holds the largest share")
    assert differences("kept 5,777", "kept 5,778")


def test_units_widen_each_number_at_its_own_scale():
    tol = Tolerance(units=3, why="measured")
    assert differences("146 of 0.972", "149 of 0.969", tol) == []
    assert differences("146 of 0.972", "150 of 0.972", tol)
    assert differences("146 of 0.972", "146 of 0.976", tol)


def test_a_changed_integer_outside_its_tolerance_fails():
    tol = Tolerance(rel=0.002, why="kept counts move by 0.1%")
    assert differences("kept 5,777", "kept 5,783", tol) == []
    (msg,) = differences("kept 5,777", "kept 5,790", tol)
    assert "5,777 stored, 5,790 now" in msg and "tolerance" in msg


def test_printing_must_not_change():
    assert differences("r 0.97", "r 0.970")
    assert differences("p 1e-15", "p 0.0")
    assert differences("3 numbers: 1 2 3", "3 numbers: 1 2")


def test_table_realignment_is_not_a_difference():
    stored = "lambda  kept\n     3   999\n"
    new = "lambda  kept\n     3  1000\n"
    assert differences(stored, new, Tolerance(abs=1, why="x")) == []
    assert differences(stored, new)  # integers: exact by default
    assert differences("a\nb", "a b")  # but a line break is not a space


@given(x=st.floats(-1e4, 1e4, allow_nan=False), decimals=st.integers(1, 4),
       frac=st.floats(0, 0.99))
def test_within_the_default_tolerance_passes_and_beyond_fails(x, decimals, frac):
    unit = 10.0 ** -decimals
    stored = f"{x:.{decimals}f}"
    near = f"{float(stored) + frac * unit:.{decimals}f}"
    far = f"{float(stored) + 2.5 * unit:.{decimals}f}"
    assert differences(f"v {stored}", f"v {near}") == []
    assert differences(f"v {stored}", f"v {far}")


def test_numeric_text_equality_is_what_nbval_uses():
    stored = NumericText("r 0.972", Tolerance())
    assert not (stored != "r 0.971") and stored == "r 0.971"
    assert stored != "r 0.975" and stored != 0.972


# ------------------------------------------------------------------ markers
def test_marker_parsing():
    src = "x = 1\n# NBVAL_TOLERANCE rel=0.02 abs=0.005 units=2 (kept counts move by 0.6% across CPUs)\n"
    assert parse_marker(src) == Tolerance(rel=0.02, abs=0.005, units=2,
                                          why="kept counts move by 0.6% across CPUs")
    assert parse_marker("print(1)") is None


@pytest.mark.parametrize("line, says", [
    ("# NBVAL_TOLERANCE rel=0.02", "reason"),
    ("# NBVAL_TOLERANCE (why)", "rel=..., units=... and/or abs="),
    ("# NBVAL_TOLERANCE tol=1 (why)", "unknown field 'tol'; use rel=, units= or abs="),
    ("# NBVAL_TOLERANCE rel=-1 (why)", ">= 0"),
])
def test_malformed_markers_are_refused_with_the_fix(line, says):
    with pytest.raises(ValueError, match=says.replace("(", r"\(").replace(".", r"\.")):
        parse_marker(line)


# ------------------------------------------------------------------ end to end
FIXTURE = """\
import torch
from bigramlab.methods.sparsify import SparsifyConfig, planted_toy, sparsify

LAM = {lam}
toy, x, planted, target = planted_toy()
cfg = SparsifyConfig(lam=LAM, lr=0.05, temp_growth=1.01, max_steps=1500, batch_size=64)
res = sparsify(toy, x, target, cfg, names=["weight"], progress=False)
m, P = res.mask["weight"], planted["weight"]
print(f"kept {{int(m.sum())}} of {{m.numel()}}; recall {{int((m & P).sum()) / int(P.sum()):.3f}}")
with torch.no_grad():  # CE of the hard mask on every input (the last batch's CE is noise)
    ce = float(target(x @ (toy.weight * m).T, x))
print(f"CE of the masked toy {{ce:.4f}} nats")
"""


def _nbval(path: Path, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval",
         "--nbval-current-env", "-p", "tools.nbval_numbers", str(path)],
        cwd=path.parent, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
                 TQDM_DISABLE="1", **env))


@pytest.mark.notebooks
@pytest.mark.slow
def test_a_small_notebook_passes_under_other_kernels_and_fails_on_a_real_change(tmp_path):
    from nbclient import NotebookClient

    path = tmp_path / "fixture.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(FIXTURE.format(lam=0.03))])
    NotebookClient(nb, kernel_name="python3").execute()  # stored outputs, native kernels
    nbformat.write(nb, path)

    same = _nbval(path, ATEN_CPU_CAPABILITY="default", MKL_CBWR="COMPATIBLE")
    assert same.returncode == 0, same.stdout[-3000:]

    # A real change: lambda 0.03 -> 0.06 keeps 78 entries, not 80, and CE 1.2864, not 1.2860
    # (measured; the number of steps, 404 vs 409, moves with the kernels and is not printed).
    nb.cells[0].source = FIXTURE.format(lam=0.06)
    nbformat.write(nb, path)
    changed = _nbval(path)
    assert changed.returncode == 1, changed.stdout[-3000:]
    assert "80 stored, 78 now" in changed.stdout

    nb.cells[0].source = FIXTURE.format(lam=0.03)  # back, with a changed word in the output
    nb.cells[0].outputs[0].text = nb.cells[0].outputs[0].text.replace("recall", "precision")
    nbformat.write(nb, path)
    assert _nbval(path).returncode == 1
