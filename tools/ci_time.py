"""Where a test run's time goes, from the trace that ``conftest.py`` writes.

    BIGRAMLAB_TEST_TRACE=/tmp/trace.jsonl make test      # or ../shared/tools/fresh-ci
    python tools/ci_time.py /tmp/trace.jsonl             # -> benchmarks/results/ci_time.json

Each trace line is one test phase (worker, test id, phase, start, stop). Written: the run's
span (first start to last stop, seconds), each worker's busy time, the busy time of each
group (the notebooks of chapters/, solutions/, exercises/; each tests/<group>/), the
slowest test files and notebook cells, and every notebook cell's time (for the README's
costs of single cells, found by what they run: ``tools/engineering_tables.py``). The book's appendix ("Performance") renders it
(``tools/engineering_tables.py``).
"""

from __future__ import annotations

import collections
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "ci_time.json"


def group(test_id: str) -> str:
    """``chapters``, ``solutions``, ``exercises`` or ``tests/<group>`` of a test id."""
    parts = test_id.split("::")[0].split("/")
    return "/".join(parts[:2]) if parts[0] == "tests" and len(parts) > 2 else parts[0]


def summarise(rows: list[dict], top: int = 8) -> dict:
    start, stop = min(r["start"] for r in rows), max(r["stop"] for r in rows)
    busy_worker, busy_group = collections.Counter(), collections.Counter()
    busy_file, busy_test = collections.Counter(), collections.Counter()
    for r in rows:
        d = r["stop"] - r["start"]
        busy_worker[r["worker"]] += d
        busy_group[group(r["test"])] += d
        busy_file[r["test"].split("::")[0]] += d
        busy_test[r["test"]] += d

    def rounded(counter, n=None):
        return {k: round(v) for k, v in counter.most_common(n)}

    cells = {t: s for t, s in busy_test.items() if t.split("::")[0].endswith(".ipynb")}
    return {"span_s": round(stop - start), "busy_s": round(sum(busy_worker.values())),
            "workers": rounded(busy_worker), "groups": rounded(busy_group),
            "files": rounded(busy_file, top), "tests": rounded(busy_test, top),
            "cells": {t: round(s, 1) for t, s in sorted(cells.items())}}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__)
        return 2
    rows = [json.loads(line) for line in Path(argv[0]).read_text().splitlines() if line.strip()]
    OUT.write_text(json.dumps(summarise(rows), indent=1) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
