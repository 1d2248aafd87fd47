"""Write per-number nbval bounds into cell metadata from a measured run under other CPU settings.

    python tools/widen_from_run.py RUN_DIR "reason naming the settings and what moved"

For every compared cell of chapters/ and solutions/ whose fresh output in RUN_DIR
(``tools/measure_spread.py run`` copies, or ``NBVAL_NUMBERS_RECORD`` JSON) differs from
the stored one beyond the default bound, each number that moved gets an entry in the
cell's ``nbval_numbers`` metadata: ``units`` = the move in units of its last printed
digit, and the reason with the two values. Words that changed are reported and never
widened. Rewrites the notebooks' metadata only (outputs and sources untouched); re-sync
the jupytext twins afterwards (``jupytext --sync``).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure_spread import ROOT, cell_texts, checked_cells, load_run  # noqa: E402
from nbval_numbers import METADATA, Tolerance, split  # noqa: E402


def main(argv: list[str]) -> int:
    run_dir, why = Path(argv[0]), argv[1]
    problems = 0
    for path in sorted([*ROOT.glob("chapters/*.ipynb"), *ROOT.glob("solutions/*.ipynb")]):
        run = load_run(run_dir / path.parent.name / path.name)
        if run is None:
            continue
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        changed = False
        for i, cell in checked_cells(nb):
            if i not in run:
                continue
            entries = {}
            for a, b in zip(cell_texts(cell), cell_texts(run[i])):
                (wa, na), (wb, nb_) = split(a), split(b)
                if wa != wb or len(na) != len(nb_):
                    print(f"{path.name} cell {i}: words changed; not widened")
                    problems += 1
                    continue
                for k, (x, y) in enumerate(zip(na, nb_)):
                    if Tolerance().allows(x, y):
                        continue
                    units = math.ceil(round(abs(y.value - x.value) / x.unit, 6))
                    entries[k] = max(entries.get(k, 0), units), x.text, y.text
            if entries:
                code[i].metadata[METADATA] = [
                    {"numbers": [k], "units": u, "why": f"{why}: {a} -> {b}"}
                    for k, (u, a, b) in sorted(entries.items())]
                changed = True
                print(f"{path.parent.name}/{path.name} cell {i}: numbers {sorted(entries)}")
        if changed:
            nbformat.write(nb, path)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
