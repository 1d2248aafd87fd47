"""Measure how far the stored notebook numbers move under other CPU kernels.

    python tools/measure_spread.py run avx2 ATEN_CPU_CAPABILITY=avx2     # ~20 min on 2 cores
    python tools/measure_spread.py run default ATEN_CPU_CAPABILITY=default MKL_CBWR=COMPATIBLE
    python tools/measure_spread.py compare /tmp/spread/native /tmp/spread/avx2 ... [--save]
    python tools/measure_spread.py seeds 0 1 2        # Chapter 3's default mask, three data orders

``run NAME [VAR=VALUE ...]`` executes chapters/ and solutions/ with those
environment variables and an empty cache of its own (``$SPREAD_DIR/NAME/cache``,
default ``/tmp/spread``), so the tiny LM and every mask are trained again under
those kernels; the executed copies go to ``$SPREAD_DIR/NAME/`` and nothing
tracked changes. ``compare DIR ...`` lines every checked cell's numbers up with
the stored ones (the same splitting as ``tools/nbval_numbers.py``) and prints,
per cell that moved, the largest absolute and relative change in each run and
the tolerance the cell's metadata sets; with ``--save`` it also records, per run,
how many cells were compared, moved and would fail, in ``benchmarks/results/spread.json``
(the book's appendix renders it). ``seeds S ...`` trains (or loads from the
cache) Chapter 3's default-lambda mask with those data-order seeds and prints
its kept count and r. The book's appendix, "Reproducibility", reports these outputs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nbval_numbers import Number, Tolerance, differences, parse_metadata, split  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SKIP = ("image/png", "image/svg+xml", "application/vnd.jupyter.widget-view+json")


def cell_texts(cell) -> list[str]:
    """The texts nbval compares for one code cell: each stream joined, each text MIME type."""
    streams: dict[str, str] = {}
    texts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            streams[out.name] = streams.get(out.name, "") + out.text
        elif out.output_type in ("execute_result", "display_data"):
            texts += [v for k, v in out.data.items() if k not in SKIP and isinstance(v, str)]
    return list(streams.values()) + texts


def checked_cells(nb):
    """(index among code cells, cell) for cells nbval compares."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    for i, c in enumerate(code):
        if "NBVAL_IGNORE_OUTPUT" not in c.source and "NBVAL_SKIP" not in c.source:
            yield i, c


def cell_spread(stored_cell, new_cell) -> dict:
    """Largest abs / rel change of the cell's numbers and whether the words changed."""
    out = {"abs": 0.0, "rel": 0.0, "ulps": 0.0, "moved": 0, "words": False, "worst": "",
           "pairs": []}
    a_texts, b_texts = cell_texts(stored_cell), cell_texts(new_cell)
    if len(a_texts) != len(b_texts):
        out["words"] = True
        return out
    for a, b in zip(a_texts, b_texts):
        (wa, na), (wb, nb_) = split(a), split(b)
        if wa != wb or len(na) != len(nb_):
            out["words"] = True
            continue
        for x, y in zip(na, nb_):
            d = abs(y.value - x.value)
            if Tolerance().allows(x, y):
                continue
            out["moved"] += 1
            out["pairs"].append((x.text, y.text))
            rel = d / abs(x.value) if x.value else float("inf")
            if d / x.unit > out["ulps"]:
                out["worst"] = f"{x.text} -> {y.text}"
            out["abs"], out["rel"] = max(out["abs"], d), max(out["rel"], rel)
            out["ulps"] = max(out["ulps"], d / x.unit)
    return out


def needed(pairs: list[tuple[str, str]]) -> str:
    """The (units, rel) choices that cover every moved number: for each number of
    units in the last printed digit, the relative tolerance the rest still needs."""
    moves = [(abs(Number(b).value - Number(a).value), Number(a)) for a, b in pairs]
    options = []
    for cut in sorted({0.0, *(d / a.unit for d, a in moves)}):
        rest = [d / abs(a.value) if a.value else float("inf") for d, a in moves
                if d > cut * a.unit * (1 + 1e-9)]
        options.append(f"units {cut:.0f}: rel {max(rest, default=0):.2%}")
    return "; ".join(options[:5] + (["..."] if len(options) > 5 else []))


RESULTS = ROOT / "benchmarks" / "results" / "spread.json"


def stored_commit() -> str:
    """The short hash of the commit whose stored outputs a comparison read ("+changes"
    when chapters/ or solutions/ differ from it)."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                          capture_output=True, check=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "chapters", "solutions"], cwd=ROOT,
                           text=True, capture_output=True, check=True).stdout.strip()
    return head + ("+changes" if dirty else "")


def compare(dirs: list[Path], detail: bool = False, save: bool = False) -> int:
    print("| notebook | cell | marker | " + " | ".join(
        f"{d.name}: max abs, max rel, worst" for d in dirs) + " |")
    print("|---|---|---|" + "---|" * len(dirs))
    failures = 0
    tally = {d.name: {"notebooks": 0, "cells": 0, "moved": 0, "fail": 0} for d in dirs}
    for stored_path in sorted([*ROOT.glob("chapters/*.ipynb"), *ROOT.glob("solutions/*.ipynb")]):
        stored = nbformat.read(stored_path, as_version=4)
        runs = []
        for d in dirs:
            runs.append(load_run(d / stored_path.parent.name / stored_path.name))
            tally[d.name]["notebooks"] += runs[-1] is not None
        for i, cell in checked_cells(stored):
            tol = parse_metadata(cell.metadata)
            row, moved, pairs = [], False, []
            for d, run in zip(dirs, runs):
                new = None if run is None else run.get(i)
                if new is None:
                    row.append("not run")
                    continue
                s = cell_spread(cell, new)
                pairs += s["pairs"]
                moved |= s["moved"] > 0 or s["words"]
                ok = not s["words"] and all_within(cell, new, tol)
                failures += not ok
                t = tally[d.name]
                t["cells"] += 1
                t["moved"] += s["moved"] > 0 or s["words"]
                t["fail"] += not ok
                row.append(("WORDS CHANGED" if s["words"] else
                            f"{s['abs']:.3g}, {s['rel']:.2%}, {s['worst']}") + ("" if ok else " **FAILS**"))
            if moved:
                marker = ("; ".join(f"#{i}: rel {t.rel} units {t.units} abs {t.abs}"
                                    for i, t in tol.per_number) or "default")
                print(f"| {stored_path.parent.name}/{stored_path.stem} | {i} | {marker} | "
                      + " | ".join(row) + " |")
                if detail:
                    print(f"|  | needs | {needed(pairs)} |")
    print(f"\n{failures} cell comparisons would fail with the current markers")
    if save:  # the book's appendix renders this file (tools/engineering_tables.py)
        data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        for d in dirs:
            env = d / "env.json"
            data[d.name] = tally[d.name] | {
                "env": json.loads(env.read_text()) if env.exists() else {},
                "stored_outputs_of": stored_commit()}
        RESULTS.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        print(f"wrote {RESULTS}")
    return 1 if failures else 0


def load_run(path: Path):
    """{code cell index: cell} of an executed copy (``.ipynb``), or of the outputs a
    test run recorded (``.json``, see NBVAL_NUMBERS_RECORD in tools/nbval_numbers.py)."""
    if path.exists():
        nb = nbformat.read(path, as_version=4)
        return dict(enumerate(c for c in nb.cells if c.cell_type == "code"))
    recorded = path.with_suffix(".json")
    if recorded.exists():
        cells = json.loads(recorded.read_text())
        return {int(i): nbformat.from_dict({"cell_type": "code", "source": "", "metadata": {},
                                            "outputs": outs}) for i, outs in cells.items()}
    return None


def all_within(stored_cell, new_cell, tol) -> bool:
    return all(not differences(a, b, tol) for a, b in
               zip(cell_texts(stored_cell), cell_texts(new_cell)))


def run(name: str, assignments: list[str]) -> int:
    base = Path(os.environ.get("SPREAD_DIR", "/tmp/spread")) / name
    env = dict(os.environ, BIGRAMLAB_CACHE=str(base / "cache"), TQDM_DISABLE="1",
               BIGRAMLAB_PROFILE="tiny")
    env.update(a.split("=", 1) for a in assignments)
    base.mkdir(parents=True, exist_ok=True)
    (base / "env.json").write_text(json.dumps(dict(a.split("=", 1) for a in assignments)))
    return subprocess.call([sys.executable, str(ROOT / "tools" / "run_notebooks.py"), "--out",
                            str(base), "chapters", "solutions"], cwd=ROOT, env=env)


def seeds(values: list[int]) -> int:
    """Chapter 3's default mask under other data-order seeds (same machine, same kernels)."""
    from bigramlab import get_profile
    from bigramlab.experiments import evaluate_subnetwork, train_subnetwork

    p = get_profile("tiny")
    max_steps = 600  # Chapter 3's budget in the tiny profile
    print("| seed | steps | kept | share | r (drop inf) | r (inf -> max) |")
    print("|---|---|---|---|---|---|")
    for seed in values:
        res = train_subnetwork(p, p.default_lambda, max_steps=max_steps, seed=seed, progress=False)
        ev = evaluate_subnetwork(p, res.mask)
        print(f"| {seed} | {res.steps} | {res.kept_count:,} | {res.kept_share:.2%} | "
              f"{ev['r_drop']:.3f} | {ev['r_max']:.3f} |", flush=True)
    return 0


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "seeds":
        return seeds([int(a) for a in argv[1:]])
    if len(argv) >= 2 and argv[0] == "run":
        return run(argv[1], argv[2:])
    if len(argv) >= 2 and argv[0] == "compare":
        flags = {"--detail", "--save"}
        return compare([Path(a) for a in argv[1:] if a not in flags], "--detail" in argv,
                       "--save" in argv)
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
