"""The README's and the setup page's table: what each real profile costs on a free T4.

Computed from the model configs by ``bigramlab.experiments.plan.mask_step_cost``
(not measured: no GPU was lent when it was written), under the session budget
(``BIGRAMLAB_BUDGET=session``, the default) and the paper's
(``BIGRAMLAB_BUDGET=paper``). ``tests/test_plan.py`` checks that the tables in
README.md and book/setup.md are what this prints.

    python tools/t4_table.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bigramlab.experiments.plan import CHAPTER_MASKS, T4, human, mask_step_cost  # noqa: E402
from bigramlab.plumbing.profiles import PROFILES, with_budget  # noqa: E402

NAMES = ("pythia-70m", "pythia-160m", "pythia-410m", "pythia-1b", "gpt2")
#: Masks each chapter trains, per budget (``plan.CHAPTER_MASKS`` says which).
TRAINED = {b: {f"Ch. {c}": n for c, n in m.items()} for b, m in CHAPTER_MASKS.items()}


def _straight_1b() -> float:
    p = PROFILES["pythia-1b"].replace(weights_dtype="float32", mask_memory="default")
    return mask_step_cost(p)["min_gib"]


def table() -> str:
    chapters = list(TRAINED["paper"])
    head = ("| profile | budget | GPU memory, at least | s per step on a T4 | one mask | "
            + " | ".join(chapters) + " | fits a T4 |")
    rows = [head, "|" + "---|" * (6 + len(chapters))]
    for name in NAMES:
        for budget in TRAINED:
            p = with_budget(PROFILES[name], budget)
            c = mask_step_cost(p)
            one = c["t4_s"] * p.chapter_max_steps
            cells = " | ".join("no checkpoints" if ch == "Ch. 5" and len(p.checkpoints) == 1
                               else human(one * n) for ch, n in TRAINED[budget].items())
            low = " (low memory)" if p.mask_memory == "low" else ""
            rows.append(f"| {name} | {budget} | {c['min_gib']:.1f} GiB{low} | {c['t4_s']:.2f} | "
                        f"{human(one)} ({p.chapter_max_steps:,} steps) | {cells} | "
                        f"{'yes' if c['fits_t4'] else 'no'} |")
    note = (f"(T4: {T4['usable_gib']} GiB usable, {T4['fp32_tflops']} TFLOPS fp32 peak, "
            f"{T4['utilisation']:.0%} of it assumed; masks that stop early take less. Both "
            "budgets train at the paper's batch of 32 x 128 tokens, so a step costs the same. "
            "Low memory: fp16 weights, bf16 AdamW moments, each block recomputed in the "
            "backward pass, micro-batches of 8 (methods.lowmem); masked the straightforward "
            f"way Pythia 1B needs at least {_straight_1b():.1f} GiB.)")
    return "\n".join(rows) + "\n\n" + note


if __name__ == "__main__":
    print(table())
