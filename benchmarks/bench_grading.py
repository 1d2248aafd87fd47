"""Grade a class of 30 exercise notebooks (Chapter 6 by default) in one command and time it.

    python benchmarks/bench_grading.py --jobs 2          # 30 Chapter 6 notebooks, 2 kernels
    python benchmarks/bench_grading.py --chapter ch01    # Chapter 1's class
    python benchmarks/bench_grading.py --students 4      # a smoke run
    python benchmarks/bench_grading.py --save            # add the row to results/grading.json

The class is made from the course's notebooks (``tests/helpers/grading.py``):
a third solve everything, others leave exercises blank, make the plausible
mistakes of Chapter 1, delete the display cells, reorder cells, or break their
setup cell (Chapter 6: 6.3 loops forever in some). The notebooks go to a temporary folder and
``bigramlab grade FOLDER --out OUT`` runs once, as an instructor would run it;
the wall time of that command (start to exit, Python start-up included) is the
result, with the score of every submission checked against what it should be.
Needs the tiny world (built once, cached).
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers import grading as fx  # noqa: E402  (the repository's own helpers)

RESULTS = ROOT / "benchmarks" / "results" / "grading.json"
LOOP = "def recall_at_k(logits, labels, k):\n    while True:\n        pass\n"


def kinds_ch06():
    """(name, notebook, expected total) for each kind of Chapter 6 student, in turn."""
    broken = fx.student("ch06", right="all", trim=True)
    broken.cells[fx.code_index(broken, "from bigramlab import checks")].source = \
        "import torhc  # a typo"
    return [
        ("all_right", fx.student("ch06", right="all"), 7),
        ("first_two", fx.student("ch06", right={"ch06-6.1", "ch06-6.2"}), 5),
        ("blank", fx.exercise_nb("ch06"), 0),
        ("trimmed", fx.student("ch06", right="all", trim=True), 7),
        ("loops_when_graded", fx.student("ch06", right={"ch06-6.1", "ch06-6.2"},
                                         wrong={"ch06-6.3": LOOP}, trim=True), 5),
        ("all_right_again", fx.student("ch06", right="all"), 7),
        ("broken_setup", broken, 0),
        ("last_one", fx.student("ch06", right={"ch06-6.3"}, trim=True), 2),
        ("first_one", fx.student("ch06", right={"ch06-6.1"}), 2),
        ("middle", fx.student("ch06", right={"ch06-6.2"}, trim=True), 3),
    ]


def kinds_ch01():
    """(name, notebook, expected total) for each kind of student, in turn."""
    broken = fx.student(right="all", trim=True)
    broken.cells[fx.code_index(broken, "from bigramlab import checks")].source = \
        "import torhc  # a typo"
    reordered = fx.student(right="all", trim=True)
    start = fx.code_index(reordered, "from bigramlab import checks") + 1
    reordered.cells = reordered.cells[:start] + reordered.cells[start:][::-1]
    return [
        ("all_right", fx.student(right="all"), 7),
        ("first_two", fx.student(right={"ch01-1.1", "ch01-1.2"}), 4),
        ("wrong_backoff", fx.student(right={"ch01-1.1", "ch01-1.3", "ch01-1.4"},
                                     wrong={"ch01-1.2": fx.WRONG_CH01["ch01-1.2"]}), 5),
        ("blank", fx.exercise_nb(), 0),
        ("trimmed", fx.student(right="all", trim=True), 7),
        ("all_right_again", fx.student(right="all"), 7),
        ("zero_table", fx.student(right={"ch01-1.3"},
                                  wrong={"ch01-1.1": fx.WRONG_CH01["ch01-1.1"]}), 1),
        ("reordered", reordered, 7),
        ("broken_setup", broken, 0),
        ("last_two", fx.student(right={"ch01-1.3", "ch01-1.4"}, trim=True), 3),
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--students", type=int, default=30)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--chapter", default="ch06", choices=["ch01", "ch06"])
    ap.add_argument("--check-timeout", type=float, default=None,
                    help="passed to bigramlab grade (the looping students wait this long)")
    ap.add_argument("--save", action="store_true", help=f"add the result to {RESULTS.name}")
    args = ap.parse_args(argv)
    env = dict(os.environ, TQDM_DISABLE="1", BIGRAMLAB_PROFILE="tiny",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        folder, out = Path(tmp) / "submissions", Path(tmp) / "out"
        expected = {}
        made = kinds_ch06() if args.chapter == "ch06" else kinds_ch01()
        for i in range(args.students):
            name, nb, total = made[i % len(made)]
            label = f"student{i + 1:02d}_{name}"
            fx.write(nb, folder / label / f"{args.chapter}_exercises.ipynb")
            expected[label] = total
        cmd = [sys.executable, "-m", "bigramlab.cli", "grade", str(folder), "--out", str(out),
               "--jobs", str(args.jobs)]
        if args.check_timeout is not None:
            cmd += ["--check-timeout", str(args.check_timeout)]
        print(f"$ bigramlab grade <{args.students} notebooks> --out <out> --jobs {args.jobs}",
              flush=True)
        start = time.perf_counter()
        run = subprocess.run(cmd, env=env, text=True, capture_output=True)
        wall = time.perf_counter() - start
        lines = run.stderr.splitlines()
        print("\n".join(lines[:1] + [line for line in lines[1:] if "(ok)" not in line
                                      and "(cell errors)" not in line]))
        with open(out / "grades.csv", newline="", encoding="utf8") as f:
            rows = [r for r in csv.DictReader(f) if r["file"] != "points-per-question"]
        wrong = []
        for r in rows:
            label = Path(r["file"]).parent.name
            if float(r["total"]) != expected[label]:
                why = (out / f"{label}__{args.chapter}_exercises" / "feedback.md").read_text(encoding="utf8")
                wrong.append(f"{label}: {r['total']} (expected {expected[label]}), status "
                             f"{r['status']}:\n{why}")
        print(f"exit status {run.returncode}; {len(rows)} submissions graded in {wall:.0f} s "
              f"wall ({wall / max(1, len(rows)):.1f} s per notebook), {os.cpu_count()} CPUs, "
              f"jobs {args.jobs}")
        print("scores as expected" if not wrong else "UNEXPECTED SCORES:\n" + "\n".join(wrong))
        if args.save:
            saved = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
            saved[f"{args.chapter}:{args.students}:jobs{args.jobs}"] = {
                "wall_seconds": round(wall, 1),
                "per_notebook_seconds": round(wall / max(1, args.students), 1),
                "cpus": os.cpu_count(), "machine": platform.machine(),
                "check_timeout": args.check_timeout, "scores_as_expected": not wrong}
            RESULTS.write_text(json.dumps(saved, indent=1, sort_keys=True) + "\n")
        return 0 if run.returncode == 0 and not wrong and len(rows) == args.students else 1


if __name__ == "__main__":
    sys.exit(main())
