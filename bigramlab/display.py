"""Tables and plots the chapters show (d2l-style helpers: what the book draws
is what the package contains)."""

from __future__ import annotations

from collections.abc import Sequence


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
    import matplotlib.pyplot as plt

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
