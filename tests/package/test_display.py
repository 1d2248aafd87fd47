"""Chapter 1's display helpers (bigramlab.display: token labels, next-token rows and
plots, the surprisal table) and the bigram explorer's live view, on a toy tokenizer."""

import matplotlib
import pytest
import torch

from bigramlab.methods.bigrams import BigramModel, unigram_counts
from tests.helpers.tokenizers import LetterTokenizer

matplotlib.use("Agg")


def test_token_labels_and_rows():
    from bigramlab.display import next_token_rows, token_label

    tok = LetterTokenizer()
    V, seqs = 6, torch.tensor([[1, 2, 1, 3, 1, 2]])
    model = BigramModel.from_corpus([seqs], V)
    assert token_label(tok, 2) == "'b'"
    assert token_label(tok, 0) == "<eos>"
    assert token_label(tok, V, start_id=V) == "<start>"
    rows = next_token_rows(model, tok, 1, k=5)  # zero-probability fillers left out
    assert rows == [{"next": "'b'", "P(next | token)": pytest.approx(2 / 3)},
                    {"next": "'c'", "P(next | token)": pytest.approx(1 / 3)}]


def test_plots_and_explorer_run():
    import matplotlib.pyplot as plt

    from bigramlab.display import plot_next_tokens, plot_surprisal_scatter, plot_zipf
    from bigramlab.explorers import bigram_explorer

    tok = LetterTokenizer()
    V, seqs = 8, torch.tensor([[1, 2, 1, 3, 1, 2, 5], [2, 1, 2, 3, 3, 1, 1]])
    model = BigramModel.from_corpus([seqs], V)
    ax = plot_next_tokens(model, tok, 1, k=4)
    widths = sorted(p.get_width() for p in ax.patches)
    assert widths == pytest.approx(sorted(model.top_next(1, 4)[0][model.top_next(1, 4)[0] > 0]
                                          .tolist()))
    assert "'a'" in ax.get_title()
    plot_zipf(unigram_counts(model), -1.0, 2.0, lo=1, hi=5)
    bits = model.surprisal(seqs)
    plot_surprisal_scatter(torch.rand_like(bits) * 3, bits)
    w = bigram_explorer(model, tok, k=4, n_contexts=3).widget()  # the live view
    dropdown, slider = w.children[0].children
    text = w.children[1]
    assert dropdown.options[0] == ("<start>", V)
    assert len(dropdown.options) == 4
    assert w.context() == (dropdown.value, False)
    text.value = "bc"  # the last token of typed text is the context
    assert w.context() == (3, True)
    text.value = "g"  # id 7: never seen
    assert "backs off" in w.children[2].value
    text.value = ""
    dropdown.value = V
    assert w.context() == (V, False)
    slider.value = 5
    plt.close("all")


def test_grid_and_surprisal_rows():
    import matplotlib.pyplot as plt

    from bigramlab.display import format_table, plot_next_token_grid, surprisal_rows

    tok = LetterTokenizer()
    V, seqs = 8, torch.tensor([[1, 2, 1, 3, 1, 2, 5]])
    model = BigramModel.from_corpus([seqs], V)
    fig = plot_next_token_grid(model, tok, [V, 1, 2, 3], k=3, ncols=3)
    assert len(fig.axes) == 6 and not fig.axes[-1].axison
    plt.close(fig)
    bits = model.surprisal(seqs[0])
    rows = surprisal_rows(tok, seqs[0], {"bigram": bits, "half": bits / 2}, start=1, stop=3)
    assert rows == [{"t": 2, "token": "'a'", "bigram": pytest.approx(float(bits[1])),
                     "half": pytest.approx(float(bits[1]) / 2)},
                    {"t": 3, "token": "'c'", "bigram": pytest.approx(float(bits[2])),
                     "half": pytest.approx(float(bits[2]) / 2)}]
    assert len(surprisal_rows(tok, seqs[0], {"b": bits})) == 6
    assert "token" in format_table(rows)
