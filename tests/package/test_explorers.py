"""The explorers of Chapters 1, 3, 4 and 5 (bigramlab.explorers): every slider step
holds what a naive computation gives, the figure is valid plotly JSON that loads
no plotly.js from anywhere, and the live ipywidgets view redraws on a change.
(The page in a real browser: tests/book/test_explorers_browser.py.)"""

import json
from collections import Counter

import matplotlib
import plotly.io as pio
import ipywidgets as widgets
import pytest
import torch

from bigramlab import explorers
from bigramlab.explorers import (bigram_explorer, checkpoint_explorer, head_map_explorer,
                                 lambda_sweep_explorer)
from bigramlab.methods.bigrams import BigramModel
from tests.helpers.tokenizers import LetterTokenizer

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def bigram():
    g = torch.Generator().manual_seed(0)
    V = 12
    seqs = torch.multinomial(torch.linspace(1, 3, V - 1), 400, replacement=True,
                             generator=g).reshape(8, 50) + 1
    return BigramModel.from_corpus([seqs], V), seqs


def step_data(ex, i):
    data, layout, traces = json.loads(json.dumps(ex.steps[i].args))  # tuples -> lists
    return data, layout, traces


def valid_json(ex):
    text = ex.figure.to_json()
    fig = pio.from_json(text)  # plotly's own validation of every attribute
    assert len(fig.layout.sliders[0].steps) == len(ex.labels)
    return json.loads(text)


def test_bigram_explorer_steps_are_naive_top_k_of_the_most_frequent_contexts(bigram):
    model, seqs = bigram
    k, n = 4, 5
    ex = bigram_explorer(model, LetterTokenizer(), k=k, n_contexts=n)
    # naive: the n most frequent contexts (ties by id) after the start context
    ctx = Counter(seqs[:, :-1].flatten().tolist())
    want = sorted(ctx, key=lambda t: (-ctx[t], t))[:n]
    assert ex.contexts == [model.start_id, *want]
    assert len(ex.steps) == len(ex.contexts) == n + 1
    for i, c in enumerate(ex.contexts):
        if c == model.start_id:
            pairs = Counter(seqs[:, 0].tolist())
        else:
            pairs = Counter(int(b) for a, b in zip(seqs[:, :-1].flatten().tolist(),
                                                   seqs[:, 1:].flatten().tolist()) if a == c)
        total = sum(pairs.values())
        naive = sorted(pairs, key=lambda t: (-pairs[t], t))[:k]
        data, layout, traces = step_data(ex, i)
        assert traces == [0]
        assert data["x"][0] == pytest.approx([pairs[t] / total for t in naive], rel=1e-4)
        assert layout["yaxis.ticktext"] == [f"'{chr(96 + t)}'" for t in naive]
        assert f"{total:,} occurrences" in layout["title.text"]
    valid_json(ex)
    assert ex.describe().splitlines()[0] == f"bigram explorer: a slider of {n + 1} steps"


def test_static_html_loads_no_plotly_and_has_a_stable_id(bigram):
    model, _ = bigram
    a, b = bigram_explorer(model, LetterTokenizer(), k=3, n_contexts=3), bigram_explorer(model, LetterTokenizer(), k=3,
                                                                            n_contexts=3)
    page = a.to_html()
    assert a.div_id == b.div_id and a.div_id in page  # no random uuid: the output is stable
    assert "Plotly.newPlot" in page
    assert "<script src" not in page and "cdn" not in page.lower()  # plotly.js comes from the page
    assert len(page) < 60_000
    bundle = a._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"}  # no kernel: no widget view
    assert bigram_explorer(model, LetterTokenizer(), k=3, n_contexts=2).div_id != a.div_id


def test_in_a_kernel_the_bundle_offers_the_widget_view_too(bigram, monkeypatch):
    model, _ = bigram
    ex = bigram_explorer(model, LetterTokenizer(), k=3, n_contexts=3)
    monkeypatch.setattr(explorers, "_in_kernel", lambda: True)
    bundle = ex._repr_mimebundle_()
    view = bundle[explorers.WIDGET_VIEW]
    assert view == {"version_major": 2, "version_minor": 0, "model_id": ex.widget().model_id}
    assert "text/html" in bundle  # the book renders this one (see _config.yml)


def test_bigram_live_view_redraws(bigram):
    model, _ = bigram
    box = bigram_explorer(model, LetterTokenizer(), k=3, n_contexts=3).widget()
    first, drawn = box.shown, bytes(box.children[-1].value)
    box.control.value = box.control.options[0][1]  # the start context
    assert box.shown == model.start_id != first
    assert drawn.startswith(b"\x89PNG") and bytes(box.children[-1].value) != drawn
    assert box.title.value.startswith(f"context id {model.start_id}")


SWEEP = dict(lambdas=[float("-inf"), 0.0, 1.0, 3.0, 10.0, 100.0, float("inf")],
             kept=[196608, 96742, 11377, 5780, 2987, 1013, 0],
             r=[0.770, 0.987, 0.980, 0.971, 0.957, 0.888, 0.380],
             ce=[5.945, 3.290, 3.329, 3.379, 3.453, 3.819, 12.496])


def test_lambda_sweep_one_step_per_lambda_marking_its_point():
    ex = lambda_sweep_explorer(**SWEEP)
    assert len(ex.steps) == len(SWEEP["lambdas"])
    curve = ex.figure.data[0]
    assert list(curve.x) == [max(k, 1) for k in SWEEP["kept"]]  # 0 kept drawn at 1
    assert list(curve.y) == SWEEP["r"]
    for i, (k, r) in enumerate(zip(SWEEP["kept"], SWEEP["r"])):
        data, layout, traces = step_data(ex, i)
        assert traces == [1] and data == {"x": [[max(k, 1)]], "y": [[r]]}
        assert f"{k:,} kept entries" in layout["title.text"] and f"r = {r:.3f}" in layout["title.text"]
    # labels alternate above and below along x, so neighbours never collide; none is clipped
    pos = [p for _, p in sorted(zip(curve.x, curve.textposition))]
    assert all(a != b for a, b in zip(pos, pos[1:]))
    assert curve.cliponaxis is False
    valid_json(ex)
    with pytest.raises(ValueError, match="one value per lambda"):
        lambda_sweep_explorer([0.0, 1.0], [5], [0.9, 0.8])


def test_lambda_sweep_plot_keeps_labels_apart_and_inside():
    import matplotlib.pyplot as plt

    from bigramlab.display import plot_lambda_sweep

    ax = plot_lambda_sweep(SWEEP["lambdas"], SWEEP["kept"], SWEEP["r"])
    fig = ax.figure
    fig.tight_layout()
    fig.canvas.draw()
    boxes = [t.get_window_extent() for t in ax.texts]
    assert len(boxes) == 7
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    frame = ax.get_window_extent()
    assert all(frame.x0 <= b.x0 and b.x1 <= frame.x1 for b in boxes)  # none clipped
    plt.close(fig)


def test_head_map_one_step_per_layer_with_naive_shares():
    g = torch.Generator().manual_seed(1)
    counts = torch.randint(0, 50, (3, 4, 4), generator=g)
    ex = head_map_explorer(counts, entries_per_kind=64)
    assert len(ex.steps) == 3
    zmax = ex.figure.data[0].zmax
    for layer in range(3):
        data, layout, _ = step_data(ex, layer)
        z, text = data["z"][0], data["text"][0]
        for kind in range(4):
            for head in range(4):
                assert z[kind][head] == pytest.approx(int(counts[layer, head, kind]) / 64, rel=1e-4)
                assert text[kind][head] == str(int(counts[layer, head, kind]))
        busiest = max(range(4), key=lambda h: (int(counts[layer, h].sum()), -h))
        assert f"head {busiest}" in layout["title.text"]
    assert zmax == pytest.approx(int(counts.max()) / 64, rel=1e-4)  # one scale for all layers
    valid_json(ex)
    with pytest.raises(ValueError, match="layers, heads, 4"):
        head_map_explorer(counts[..., :3], 64)


def test_checkpoint_series_one_step_per_checkpoint():
    g = torch.Generator().manual_seed(2)
    counts = torch.randint(0, 900, (5, 4, 6), generator=g)
    names = ["step0", "step64", "step256", "step512", "step1500"]
    kinds = ["q", "k", "v", "o", "mlp_in", "mlp_out"]
    ex = checkpoint_explorer(names, counts, kinds, r=[0.5, 0.6, 0.9, 0.95, 0.97])
    assert len(ex.steps) == 5 and ex.labels == names
    for i in range(5):
        data, layout, _ = step_data(ex, i)
        total = int(counts[i].sum())
        assert sum(data["z"][0], []) == pytest.approx((counts[i] / total).flatten().tolist(),
                                                     rel=1e-4)
        assert layout["title.text"].startswith(f"{names[i]}: {total:,} kept entries")
    assert ex.lines[3].startswith("  step512: kept")
    valid_json(ex)
    with pytest.raises(ValueError, match="checkpoint_explorer"):
        checkpoint_explorer(names[:4], counts, kinds)


@pytest.mark.parametrize("make", [
    lambda: lambda_sweep_explorer(**SWEEP),
    lambda: head_map_explorer(torch.arange(32).reshape(2, 4, 4), 64),
    lambda: checkpoint_explorer(["a", "b"], torch.arange(24).reshape(2, 2, 6),
                                ["q", "k", "v", "o", "mlp_in", "mlp_out"]),
], ids=["lambda sweep", "head map", "checkpoints"])
def test_live_view_builds_and_a_change_redraws(make):
    ex = make()
    box = ex.widget()
    assert box is ex.widget()  # built once
    assert box.shown == 0 and ex.titles[0] in box.title.value.replace("&#x27;", "'")
    image = [w for w in box.children if isinstance(w, widgets.Image)]
    assert len(image) == 1 and bytes(image[0].value).startswith(b"\x89PNG")  # no Output widget
    first = bytes(image[0].value)
    box.control.value = 1
    assert box.shown == 1 and box.title.value == f"<b>{ex.titles[1]}</b>".replace("'", "&#x27;")
    assert bytes(image[0].value) != first  # the drawing changed with the step
