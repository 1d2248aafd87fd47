"""The T4 table of the book's appendix and setup page: what each real profile costs on a free T4.

Computed from the model configs by ``bigramlab.experiments.plan.mask_step_cost``
(not measured: no GPU was lent when it was written), under the session budget
(``BIGRAMLAB_BUDGET=session``, the default) and the paper's
(``BIGRAMLAB_BUDGET=paper``). ``tests/experiments/test_plan.py`` checks that the tables in
book/engineering.md and book/setup.md are what this prints
(``tools/engineering_tables.py`` renders them into the appendix).

    python tools/t4_table.py   # the T4 table, then the measured peaks (the appendix only)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bigramlab.experiments.plan import (CH08_MODEL, CHAPTER_MASKS, T4, chapter_masks,  # noqa: E402
                                       chapter_seconds, human, mask_step_cost)
from bigramlab.plumbing.profiles import PROFILES, with_budget  # noqa: E402

NAMES = ("pythia-70m", "pythia-160m", "pythia-410m", "pythia-1b", "gpt2")
#: The chapters that train masks (``plan.CHAPTER_MASKS`` and ``plan.chapter_masks`` say which).
CHAPTERS = sorted(CHAPTER_MASKS["paper"])


#: Peaks of one mask step measured on the CPU at the real shape (random weights, batch 32:
#: ``python benchmarks/bench_lowmem.py --record``): tensors' memory, no GPU allocator.
MEASURED = ROOT / "benchmarks" / "results" / "lowmem.json"


def _straight_1b() -> float:
    p = PROFILES["pythia-1b"].replace(weights_dtype="float32", mask_memory="default")
    return mask_step_cost(p)["min_gib"]


def measured_peak(p) -> float | None:
    """The recorded peak (GiB) of ``p``'s mask step in its own memory mode, if measured."""
    rows = json.loads(MEASURED.read_text()) if MEASURED.exists() else {}
    row = rows.get(f"{p.name}:{p.mask_memory}:{p.weights_dtype}:{p.batch_size}")
    return row and row["peak_gib"]


def table() -> str:
    chapters = [f"Ch. {c}" for c in CHAPTERS]
    head = ("| profile | budget | memory mode | GPU memory, at least | peak measured (CPU) | "
            "s per step on a T4 | one mask | " + " | ".join(chapters) + " | fits a T4 |")
    rows = [head, "|" + "---|" * (8 + len(chapters))]
    for name in NAMES:
        for budget in CHAPTER_MASKS:
            p = with_budget(PROFILES[name], budget)
            c = mask_step_cost(p)
            one = c["t4_s"] * p.chapter_max_steps
            cells = " | ".join(cell(p, ch) for ch in CHAPTERS)
            peak = measured_peak(p)
            fits = (peak if peak is not None else c["min_gib"]) < T4["usable_gib"]
            mode = p.mask_memory + ("" if p.weights_dtype == "float32" else f", {p.weights_dtype}")
            rows.append(f"| {name} | {budget} | {mode} | {c['min_gib']:.1f} GiB | "
                        f"{'not measured' if peak is None else f'{peak:.1f} GiB'} | "
                        f"{c['t4_s']:.2f} | {human(one)} ({p.chapter_max_steps:,} steps) | "
                        f"{cells} | {'yes' if fits else 'no'} |")
    p70 = PROFILES["pythia-70m"]
    extra = mask_step_cost(p70, "full")["min_gib"] - mask_step_cost(p70)["min_gib"]
    note = (f"(T4: {T4['usable_gib']} GiB usable, {T4['fp32_tflops']} TFLOPS fp32 peak, "
            f"{T4['utilisation']:.0%} of it assumed; masks that stop early take less. Both "
            "budgets train at the paper's batch of 32 x 128 tokens, so a step costs the same. "
            "\"one mask\", the memory and \"fits\" are a bigram mask's. A chapter's cell adds up "
            "the masks it trains with that profile (\"n x\": how many): Ch. 3 the bigram mask "
            "and its lambda sweep, Ch. 5 one per earlier checkpoint, one on appendix A.4's spliced model and its per-checkpoint lambda sweep, Ch. 8 three optimal masks "
            f"on {CH08_MODEL} whatever the profile, Ch. 9 a trigram mask and an optimal one "
            f"(reused from Ch. 8 on {CH08_MODEL}). An optimal mask (full-model target) runs "
            "the unmasked model forward each step for its target, about a third more per step, "
            f"and holds one more batch of logits ({extra:.2f} GiB at Pythia's vocabulary). "
            "Memory mode low (methods.lowmem): each block recomputed in the backward pass, "
            "bf16 AdamW moments, micro-batches of 8; float16: weights stored in fp16, computed "
            "in fp32. A GPU's allocator adds to the CPU-measured peak; \"fits\" uses the "
            "measured peak where there is one. Masked the straightforward way Pythia 1B needs "
            f"at least {_straight_1b():.1f} GiB.)")
    return "\n".join(rows) + "\n\n" + note


def cell(p, chapter: int) -> str:
    """One chapter's column: its masks' T4 time, with how many and where they train."""
    trained = chapter_masks(p, chapter)
    if not trained:
        return "no checkpoints" if chapter == 5 else "none"
    n = sum(k for _, _, k in trained)
    where = "" if all(q.name == p.name for q, _, _ in trained) else f" on {trained[0][0].name}"
    return f"{human(chapter_seconds(p, chapter))} ({n} x{where})"


def lowmem_table() -> str:
    """The measured peaks (``MEASURED``) beside the config's lower bound, one row each."""
    rows = ["| profile | memory mode | weights | batch | peak measured (CPU) | lower bound "
            "(config) | CPU seconds (one step, shared 2-core machine) |", "|---|---|---|---|---|---|---|"]
    order = {n: i for i, n in enumerate(NAMES)}
    recorded = json.loads(MEASURED.read_text()) if MEASURED.exists() else {}
    for key in sorted(recorded, key=lambda k: (order.get(k.split(":")[0], 99), k)):
        name, memory, weights, batch = key.split(":")
        p = PROFILES[name].replace(mask_memory=memory, weights_dtype=weights,
                                   batch_size=int(batch))
        row = recorded[key]
        rows.append(f"| {name} | {memory} | {weights} | {batch} | {row['peak_gib']:.2f} GiB | "
                    f"{mask_step_cost(p)['min_gib']:.2f} GiB | {row['cpu_seconds']} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
    print()
    print(lowmem_table())
