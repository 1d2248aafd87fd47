"""The paper's Table 1 as the package holds it, against the course's reference notes.

Quoted from the reference notes (METHOD.md, section 3, "Measuring a subnetwork"):

    (1) The plateau (section 3.2, Figure 1): bigram correlation plateaus at
    roughly 10M active parameters whatever the model size. (2) The subnetworks
    the paper analyses (Table 1): Pythia 1B at lambda 100 keeps 1,378,087 of
    805,306,368 mask parameters = 0.17%, r = 0.959. "Non-embedding parameters"
    there means the mask parameters: attention and MLP weight matrices only
    (805,306,368 = 16 x (4 x 2048^2 + 2 x 2048 x 8192)). 10M would be 1.24%.

and (section 2): "The released subnetworks use lambda 10 (Pythia up to 410m,
GPT-2 small and medium) and 100 (Pythia 1B, GPT-2 large)"; (section 4): "the
bigram subnetwork (the paper: lambda 10 for Pythia 160M and GPT-2 small, 100 for
Pythia 1B and GPT-2 large)"; Table 3's bigram column: "Pythia 160M | 0.0852",
"Pythia 1B | 0.00171", "GPT-2 small | 0.0107", "GPT-2 large | 0.00103". Issue
22: the analysed subnetworks are "0.73M-7.2M".

Table 2, quoted from the notes (section 4): "Its only lens numbers (Table 2): the
layer-0 output lens of the lambda-0 bigram subnetwork scored against bigram
surprisals: Pythia 160M 0.615, Pythia 1B 0.936, GPT-2 small* 0.921 (full models:
0.69, 0.632, 0.68; lambda-0 subnetworks: 0.964, 0.987, 0.987)". Section 4.2, from
the notes (section 5): "11.6% in value/output vs 6.3% in query/key for Pythia 1B";
(section 3): "82% in MLP layers overall".
"""

import pytest

from bigramlab.display import format_table1, format_table2
from bigramlab.experiments.paper_tables import (PLATEAU_ACTIVE, SECTION_3_2, SECTION_4_2, TABLE2,
                                                TABLE2_COLUMNS, table1)


@pytest.fixture(scope="module")
def rows():
    return {r["model"]: r for r in table1()}


def test_pythia_1b_is_section_3_2s_subnetwork(rows):
    r = rows["pythia-1b"]
    assert (r["lambda"], r["active"], r["total"], r["r"]) == (100.0, 1_378_087, 805_306_368,
                                                             0.959)
    assert r["total"] == 16 * (4 * 2048**2 + 2 * 2048 * 8192)  # counted, not typed in
    assert round(100 * r["share"], 2) == 0.17 == SECTION_3_2["percent"]
    assert r["source"] == "Table 1 / section 3.2"


def test_the_plateau_is_not_an_analysed_size(rows):
    assert PLATEAU_ACTIVE == 10_000_000
    assert round(100 * PLATEAU_ACTIVE / rows["pythia-1b"]["total"], 2) == 1.24
    sizes = [r["active"] for r in rows.values() if r["active"] is not None]
    # the analysed subnetworks: 0.73M (GPT-2 large) .. 7.2M (Pythia 160M), all below 10M
    assert round(min(sizes) / 1e6, 2) == 0.73 and round(max(sizes) / 1e6, 1) == 7.2
    assert max(sizes) < PLATEAU_ACTIVE


def test_lambdas_and_table3_shares(rows):
    assert {m: r["lambda"] for m, r in rows.items()} == {
        "pythia-14m": None, "pythia-70m": 10.0, "pythia-160m": 10.0, "pythia-410m": 10.0,
        "pythia-1b": 100.0, "gpt2": 10.0, "gpt2-medium": 10.0, "gpt2-large": 100.0}
    for model, share in (("pythia-160m", 0.0852), ("pythia-1b", 0.00171), ("gpt2", 0.0107),
                         ("gpt2-large", 0.00103)):
        assert rows[model]["share"] == pytest.approx(share, rel=5e-3), model
    # r is the paper's only where the notes give it: Pythia 1B
    assert [m for m, r in rows.items() if r["r"] is not None] == ["pythia-1b"]


def test_total_mask_parameters_follow_the_model_configs(rows):
    shapes = {"pythia-14m": (6, 128, 512), "pythia-70m": (6, 512, 2048),
              "pythia-160m": (12, 768, 3072), "pythia-410m": (24, 1024, 4096),
              "pythia-1b": (16, 2048, 8192), "gpt2": (12, 768, 3072),
              "gpt2-medium": (24, 1024, 4096), "gpt2-large": (36, 1280, 5120)}
    assert {m: r["total"] for m, r in rows.items()} == {
        m: n * (4 * d * d + 2 * d * f) for m, (n, d, f) in shapes.items()}


def test_display_marks_unknowns_and_sources():
    text = format_table1()
    line = next(l for l in text.splitlines() if l.startswith("pythia-1b "))
    assert "1,378,087" in line and "805,306,368" in line and "0.171" in line and "0.959" in line
    line = next(l for l in text.splitlines() if l.startswith("pythia-70m "))
    assert line.split()[-1] == "rel" and " - " in line
    assert "  rel = released lambda only" in text.splitlines()  # the legend names each source
    assert max(len(l.rstrip()) for l in text.splitlines()) <= 76  # fits a book page
    line = next(l for l in text.splitlines() if l.startswith("pythia-160m "))
    assert "~7.24M" in line and "7,236,433" not in line  # 3 digits, as Table 3 gives them


def test_table2_in_full():
    """Three models, three columns, each number where the notes put it."""
    quoted = {"Pythia 160M": (0.69, 0.964, 0.615), "Pythia 1B": (0.632, 0.987, 0.936),
              "GPT-2 small*": (0.68, 0.987, 0.921)}
    assert TABLE2_COLUMNS == ("full model", "lambda 0 subnetwork", "its layer-0 output lens")
    assert {r["model"]: tuple(r[c] for c in TABLE2_COLUMNS) for r in TABLE2} == quoted
    lines = format_table2().splitlines()
    assert lines[0].split("  ")[0].strip() == "model" and len(lines) == 2 + len(quoted)
    for model, numbers in quoted.items():  # the digits the paper gives, no more, no fewer
        line = next(l for l in lines if l.startswith(model + " "))
        assert line.split()[-3:] == [format(x, "g") for x in numbers], line


def test_section_4_2_shares_are_the_attention_part():
    assert SECTION_4_2 == {"model": "pythia-1b", "query_key_share": 0.063,
                           "value_output_share": 0.116}
    # 6.3% + 11.6% = 17.9%: what "82% in MLPs" leaves for attention, to rounding
    assert abs(SECTION_4_2["query_key_share"] + SECTION_4_2["value_output_share"]
               - (1 - 0.82)) < 0.005
