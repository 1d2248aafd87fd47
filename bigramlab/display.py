"""Tables and plots the chapters show (d2l-style helpers: what the book draws
is what the package contains).

Defined in Chapter 0 (tables, the loss curve), Chapter 1 (the bigram
model's plots), Chapter 2 (the logit-lens heatmap) and Chapter 3 (the lambda
sweep, the paper's Table 1) and Chapter 6 (the paper's Table 2). The explorers (static and live) are in ``bigramlab.explorers``.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import LogNorm

from .experiments.paper_tables import TABLE2, TABLE2_COLUMNS, table1


def format_table(rows: Sequence[dict], floatfmt: str = ".3f") -> str:
    """Rows of dicts as a fixed-width text table (plain text, so nbval can compare it)."""
    if not rows:
        return "(empty)"
    cols = list(rows[0])

    def fmt(v):
        return format(v, floatfmt) if isinstance(v, float) else str(v)
    cells = [[fmt(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    line = "  ".join(c.ljust(w) for c, w in zip(cols, widths))
    rule = "  ".join("-" * w for w in widths)
    body = ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join([line, rule, *body])


def smooth(values: Sequence[float], window: int) -> list[float]:
    """Trailing moving average over ``window`` values (shorter at the start)."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def plot_loss_curve(losses: Sequence[float], checkpoints: Sequence[str] = (), ax=None,
                    title: str = "tiny LM pretraining", window: int = 25):
    """Training loss (nats/token) against step on a log x-axis, checkpoints marked."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.2))
    steps = range(1, len(losses) + 1)
    ax.plot(steps, losses, color="0.8", lw=0.8, label="per step")
    ax.plot(steps, smooth(losses, window), color="C0", label=f"mean of {window} steps")
    for c in checkpoints:
        s = int(c.removeprefix("step"))
        if s > 0:
            ax.axvline(s, color="C3", lw=0.5, alpha=0.5)
    ax.set_xscale("log")
    ax.set_xlabel("training step (red lines: saved checkpoints)")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_title(title)
    ax.legend(frameon=False)
    return ax


# ---------------------------------------------------------------------------
# Chapter 1: bigram models.

def token_label(tokenizer, token_id: int, start_id: int | None = None) -> str:
    """A readable label for one token id: its decoded text in quotes (so that
    leading spaces show), ``<start>`` for the start placeholder context
    ``start_id``, and the special token's own name for special tokens."""
    token_id = int(token_id)
    if start_id is not None and token_id == start_id:
        return "<start>"
    if token_id in set(getattr(tokenizer, "all_special_ids", []) or []):
        return tokenizer.convert_ids_to_tokens(token_id)
    return repr(tokenizer.decode([token_id]))


def next_token_rows(bigram, tokenizer, token_id: int, k: int = 10) -> list[dict]:
    """The ``k`` most probable next tokens after ``token_id`` as table rows
    (``next``, ``P(next | token)``), most probable first; zero-probability
    fillers (a context with fewer than ``k`` continuations) are left out."""
    probs, ids = bigram.top_next(int(token_id), k)
    return [{"next": token_label(tokenizer, i, bigram.start_id), "P(next | token)": p}
            for p, i in zip(probs.tolist(), ids.tolist()) if p > 0]


def plot_next_tokens(bigram, tokenizer, token_id: int, k: int = 10, ax=None):
    """Horizontal bar chart of P(next | token_id) for the ``k`` most probable
    next tokens (most probable on top); the title gives the context and the
    entropy of its whole next-token distribution in bits. Returns the axes."""
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 0.28 * k + 0.9))
    rows = next_token_rows(bigram, tokenizer, token_id, k)
    labels = [r["next"] for r in rows][::-1]
    values = [r["P(next | token)"] for r in rows][::-1]
    ax.barh(range(len(values)), values, color="C0")
    ax.set_yticks(range(len(values)), labels, fontsize=8)
    ax.set_xlim(0, max([0.05, *values]) * 1.1)
    ax.set_xlabel("P(next | token)")
    entropy = float(bigram.entropy()[int(token_id)])
    ax.set_title(f"after {token_label(tokenizer, token_id, bigram.start_id)} "
                 f"(H = {entropy:.2f} bits)", fontsize=9)
    return ax


def argsort_desc(values):
    """Indices that sort a 1-D tensor in decreasing order, ties by ascending index."""
    return torch.sort(torch.as_tensor(values), descending=True, stable=True).indices


def plot_zipf(counts, slope: float, intercept: float, lo: int = 10, hi: int = 1000, ax=None,
              label: str = "tokens"):
    """Frequency against rank on log-log axes, with the fitted line
    ``exp(intercept) * rank**slope`` drawn over ranks ``lo..hi``."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.2))
    c = np.sort(np.asarray(counts, dtype=float).reshape(-1))[::-1]
    c = c[c > 0]
    ranks = np.arange(1, len(c) + 1)
    ax.loglog(ranks, c, ".", ms=3, label=label)
    r = np.arange(lo, min(hi, len(c)) + 1)
    ax.loglog(r, np.exp(intercept) * r ** slope, "-", color="C3", lw=1.5,
              label=f"fit, ranks {lo}-{min(hi, len(c))}: slope {slope:.2f}")
    ax.set_xlabel("rank")
    ax.set_ylabel("count")
    ax.legend(frameon=False)
    return ax


def plot_surprisal_scatter(lm_bits, bigram_bits, ax=None, max_points: int = 200_000,
                           label_lm: str = "LM surprisal (bits)"):
    """Per-token LM surprisal against bigram surprisal (both in bits), as a 2-D
    histogram (log colour scale). Infinite bigram surprisals (unseen pairs)
    are drawn in red at the right edge. Shows at most ``max_points`` positions
    (an even stride through them). Returns the axes."""
    if ax is None:
        _, ax = plt.subplots(figsize=(4.6, 4))
    m = np.asarray(lm_bits, dtype=float).reshape(-1)
    b = np.asarray(bigram_bits, dtype=float).reshape(-1)
    step = max(1, len(m) // max_points)
    m, b = m[::step], b[::step]
    inf = np.isinf(b)
    top = max(np.max(m), np.max(b[~inf])) if (~inf).any() else np.max(m)
    ax.hist2d(b[~inf], m[~inf], bins=80, range=[[0, top], [0, top]], norm=LogNorm(),
              cmap="Blues")
    if inf.any():
        ax.plot(np.full(inf.sum(), top), m[inf], "|", color="C3", ms=8,
                label=f"unseen pair (inf), {int(inf.sum())} positions")
        ax.legend(frameon=False, loc="upper left", fontsize=8)
    ax.plot([0, top], [0, top], "--", color="0.4", lw=0.8)
    ax.set_xlabel("bigram surprisal (bits)")
    ax.set_ylabel(label_lm)
    return ax


def plot_next_token_grid(bigram, tokenizer, token_ids, k: int = 8, ncols: int = 3):
    """Next-token bar charts (:func:`plot_next_tokens`) for several contexts side
    by side: a static overview beside ``bigramlab.explorers.bigram_explorer``. Returns the figure."""
    token_ids = list(token_ids)
    nrows = -(-len(token_ids) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, (0.26 * k + 1.1) * nrows),
                             squeeze=False)
    for ax, t in zip(axes.flat, token_ids):
        plot_next_tokens(bigram, tokenizer, t, k, ax=ax)
        ax.set_xlabel("")
    for ax in list(axes.flat)[len(token_ids):]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def surprisal_rows(tokenizer, ids, columns: dict, start: int = 0, stop: int | None = None
                   ) -> list[dict]:
    """Per-token table rows for one sequence: predicted token ``ids[t + 1]`` and,
    for each named column of (seq - 1,) surprisals (bits), its value at t.
    ``start``/``stop`` select positions t. Feed the rows to :func:`format_table`."""
    ids = [int(i) for i in ids]
    stop = len(ids) - 1 if stop is None else min(stop, len(ids) - 1)
    rows = []
    for t in range(start, stop):
        row = {"t": t + 1, "token": token_label(tokenizer, ids[t + 1])}
        for name, bits in columns.items():
            row[name] = float(bits[t])
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------
# Chapter 2: the residual stream.

def plot_lens_heatmap(probs: torch.Tensor, tokens: list[str], ax=None,
                      title: str = "logit lens: p(actual next token)"):
    """Heatmap of a (L + 1, positions) probability array: layer on y, position on x
    (labelled with the current -> next token pair)."""
    probs = torch.as_tensor(probs).cpu()
    if ax is None:
        _, ax = plt.subplots(figsize=(1.0 + 0.6 * probs.shape[1], 0.9 + 0.45 * probs.shape[0]))
    im = ax.imshow(probs, vmin=0, vmax=1, cmap="viridis", aspect="auto", origin="lower")
    for (layer, pos), p in zip(torch.cartesian_prod(torch.arange(probs.shape[0]),
                                                    torch.arange(probs.shape[1])).tolist(),
                               probs.flatten().tolist()):
        ax.text(pos, layer, f"{p:.2f}", ha="center", va="center", fontsize=7,
                color="white" if p < 0.6 else "black")
    ax.set_xticks(range(len(tokens)), tokens, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(probs.shape[0]))
    ax.set_ylabel("layer (0 = embedding)")
    ax.set_title(title)
    plt.colorbar(im, ax=ax, fraction=0.03)
    return ax


# ---------------------------------------------------------------------------
# Chapter 3: the lambda sweep.

# where a point's label goes: (matplotlib ha, va, offset in points; plotly textposition)
LABEL_PLACES = {"above": ("center", "bottom", (0, 6), "top center"),
                "below": ("center", "top", (0, -6), "bottom center"),
                "below left": ("right", "top", (-3, -6), "bottom left"),
                "right": ("left", "center", (7, 0), "middle right")}


def label_offsets(xs, ys):
    """Where each point's label goes (a key of ``LABEL_PLACES``): above and below
    alternately along x, so that labels of close points never collide; below
    and to the left where the line falls to the right (it would cross the
    label); the rightmost point's label to its right."""
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    where, last = [None] * len(xs), "below"
    for n, i in enumerate(order):
        last = "above" if last != "above" else "below"
        where[i] = last
        if last == "below" and n + 1 < len(order) and ys[order[n + 1]] < ys[i]:
            where[i] = "below left"
    if order:
        where[order[-1]] = "right"
    return where


def plot_lambda_sweep(lambdas, kept, r, ax=None, threshold: float = 0.95):
    """Chapter 3's sweep plot with matplotlib: r against kept entries (log axis,
    0 drawn at 1), each point labelled with its lambda where no other label or
    the line runs (``label_offsets``), the x range padded so that none is clipped."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.6))
    xs = [max(int(k), 1) for k in kept]
    ax.plot(xs, r, "o-")
    for x, y, lam, w in zip(xs, r, lambdas, label_offsets(xs, r)):
        ha, va, offset, _ = LABEL_PLACES[w]
        ax.annotate(f"λ={float(lam):g}", (x, y), fontsize=8, ha=ha, va=va,
                    textcoords="offset points", xytext=offset, annotation_clip=False)
    ax.axhline(threshold, color="gray", ls=":", lw=1)
    lo, hi = min([*r, threshold]), max([*r, threshold])
    pad = (hi - lo) * 0.12 + 0.01
    ax.set(xscale="log", xlim=(0.5, max(xs) * 6), ylim=(lo - pad, hi + pad),
           xlabel="kept maskable entries (λ=+inf drawn at 1)",
           ylabel="Pearson r with\nbigram surprisal",
           title="bigram-likeness against subnetwork size")
    return ax


#: ``format_table1``'s short names for ``table1()``'s sources, in the order of its legend.
TABLE1_SOURCES = {"Table 1 / section 3.2": "T1", "active = Table 3 share x total": "T3",
                  "released lambda only": "rel", "not in the course's notes": "-"}


def format_table1(rows: Sequence[dict] | None = None) -> str:
    """The paper's Table 1 (``bigramlab.experiments.paper_tables.table1()``, or
    ``rows``) as text: counts with thousands separators (a count derived from Table
    3's share as ~N.NNM), shares in percent, "-" where the course's notes do not give
    the paper's number; each row's source as a short name, explained under the table
    (so the table fits a book page)."""
    if rows is None:
        rows = table1()

    def show(v, fmt):
        return "-" if v is None else format(v, fmt)
    def active(r):  # a count derived from a 3-digit share shows 3 digits, not 7
        if r["active"] is None or r["source"] == "Table 1 / section 3.2":
            return show(r["active"], ",")
        return f"~{r['active'] / 1e6:.3g}M"
    table = format_table([{"model": r["model"], "lambda": show(r["lambda"], "g"),
                          "active": active(r), "mask params": f"{r['total']:,}",
                          "active %": show(None if r["share"] is None else 100 * r["share"],
                                           ".3g"),
                          "r": show(r["r"], ".3f"), "source": TABLE1_SOURCES[r["source"]]}
                         for r in rows])
    legend = [f"  {short:<3} = {long}" for long, short in TABLE1_SOURCES.items()]
    return "\n".join([table, "source:", *legend])


def format_table2(rows: Sequence[dict] | None = None) -> str:
    """The paper's Table 2 (``paper_tables.TABLE2``, or ``rows`` with its columns) as
    text: Pearson r with the bigram surprisals, each number with the digits the paper
    gives it."""
    rows = TABLE2 if rows is None else rows
    return format_table([{"model": r["model"], **{c: format(r[c], "g") for c in TABLE2_COLUMNS}}
                         for r in rows])
