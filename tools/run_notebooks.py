"""Execute notebooks and store their outputs (for the book, Colab and nbval).

    python tools/run_notebooks.py chapters solutions            # update the stored outputs
    python tools/run_notebooks.py chapters/ch00_setup.ipynb     # one notebook
    python tools/run_notebooks.py --out /tmp/run chapters       # executed copies elsewhere

By default each notebook is executed in place and its jupytext twin re-synced:
that rewrites tracked files on purpose. With ``--out DIR`` the executed copies
go to ``DIR/<folder>/<name>.ipynb`` and nothing tracked changes (this is how
``tools/measure_spread.py`` re-runs the chapters under other CPU kernels).

Runs with TQDM_DISABLE=1 (as the tests do) so that outputs hold no progress
bars, and in the profile named by $BIGRAMLAB_PROFILE (default tiny).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def notebooks(args: list[str]) -> list[Path]:
    out: list[Path] = []
    for a in args:
        p = Path(a)
        out += sorted(p.glob("*.ipynb")) if p.is_dir() else [p]
    return out


def merge_streams(nb) -> None:
    """Join each cell's consecutive outputs on the same stream into one: the kernel flushes
    stdout on a timer, so one print() can arrive in two pieces on a busy machine, which
    the book would show as two blocks and a diff as a change."""
    for cell in nb.cells:
        merged = []
        for out in cell.get("outputs", []):
            if (merged and out.output_type == "stream" and merged[-1].output_type == "stream"
                    and merged[-1].name == out.name):
                merged[-1].text += out.text
            else:
                merged.append(out)
        if "outputs" in cell:
            cell.outputs = merged


def run(path: Path, out_dir: Path | None = None) -> Path:
    """Execute ``path``; write it back (and re-sync its twin), or to ``out_dir``."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:  # no timestamps: re-running must not change unchanged outputs
        cell.metadata.pop("execution", None)
    # widget state is output too: nbclient writes it only when the run makes widgets, so
    # the state of an earlier run's widgets would stay (and be embedded in the book)
    nb.metadata.pop("widgets", None)
    t = time.perf_counter()
    print(f"executing {path} ...", flush=True)
    n_code, started = sum(c.cell_type == "code" for c in nb.cells), {}

    def progress(cell, cell_index, **_):  # a chapter can train masks for many minutes
        if cell.cell_type == "code":
            done = sum(c.cell_type == "code" for c in nb.cells[:cell_index + 1])
            print(f"  {path.name}: cell {done}/{n_code} done after "
                  f"{time.perf_counter() - started['t']:.0f} s", flush=True)

    started["t"] = time.perf_counter()
    # $RUN_NOTEBOOKS_TIMEOUT: seconds per cell (default 1800), for runs on a loaded machine
    NotebookClient(nb, timeout=int(os.environ.get("RUN_NOTEBOOKS_TIMEOUT", "1800")),
                   kernel_name="python3", record_timing=False, on_cell_executed=progress,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    merge_streams(nb)
    if out_dir is None:
        target = path
        nbformat.write(nb, target)
        subprocess.run([sys.executable, "-m", "jupytext", "--sync", "--quiet", str(path)],
                       check=True)
    else:
        target = out_dir / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, target)
    print(f"executed {path} in {time.perf_counter() - t:.0f} s -> {target}", flush=True)
    return target


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", default=["chapters", "solutions"])
    ap.add_argument("--out", type=Path, help="write executed copies here instead of in place")
    args = ap.parse_args(argv)
    os.environ["TQDM_DISABLE"] = "1"
    os.environ.setdefault("BIGRAMLAB_PROFILE", "tiny")
    for path in notebooks(args.paths):
        run(path, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
