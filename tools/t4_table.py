"""The README's and the setup page's table: what each real profile costs on a free T4.

Computed from the model configs by ``bigramlab.experiments.plan.mask_step_cost``
(not measured: no GPU was lent when it was written). ``tests/test_plan.py``
checks that the table in README.md is what this prints.

    python tools/t4_table.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bigramlab import get_profile  # noqa: E402
from bigramlab.experiments.plan import T4, human, mask_step_cost  # noqa: E402

PROFILES = ("pythia-70m", "pythia-160m", "pythia-410m", "pythia-1b", "gpt2")
#: Masks each chapter trains at the paper's budget (15,000 steps each, at most): Chapter 3's
#: sweep of five lambdas; Chapter 5 four more checkpoints (the final one is Chapter 3's).
#: Chapters 4, 6 and 7 use the authors' released masks (a download, no training).
TRAINED = {"Ch. 3": 5, "Ch. 5": 4}


def table() -> str:
    head = ("| profile | TFLOP per step | GPU memory, at least | s per step on a T4 | one mask "
            "(15,000 steps) | " + " | ".join(f"{c} ({n} masks)" for c, n in TRAINED.items())
            + " | fits a T4 |")
    rows = [head, "|" + "---|" * (6 + len(TRAINED))]
    for name in PROFILES:
        p = get_profile(name)
        c = mask_step_cost(p)
        one = c["t4_s"] * p.max_steps
        chapters = " | ".join("no checkpoints" if c_ == "Ch. 5" and len(p.checkpoints) == 1
                              else human(one * n) for c_, n in TRAINED.items())
        rows.append(f"| {name} | {c['tflop']:.1f} | {c['min_gib']:.1f} GiB | {c['t4_s']:.2f} | "
                    f"{human(one)} | {chapters} | {'yes' if c['fits_t4'] else 'no'} |")
    note = (f"(T4: {T4['usable_gib']} GiB usable, {T4['fp32_tflops']} TFLOPS fp32 peak, "
            f"{T4['utilisation']:.0%} of it assumed; masks that stop early take less.)")
    return "\n".join(rows) + "\n\n" + note


if __name__ == "__main__":
    print(table())
