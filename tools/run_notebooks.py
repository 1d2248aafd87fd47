"""Execute notebooks in place (outputs stored for the book, Colab and nbval), then
re-sync their jupytext twins.

    python tools/run_notebooks.py chapters solutions        # every notebook there
    python tools/run_notebooks.py chapters/ch00_setup.ipynb # one notebook

Runs with TQDM_DISABLE=1 (as the tests do) so that stored outputs hold no
progress bars, and in the profile named by $BIGRAMLAB_PROFILE (default tiny).
"""

from __future__ import annotations

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


def run(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:  # no timestamps: re-running must not change unchanged outputs
        cell.metadata.pop("execution", None)
    t = time.perf_counter()
    NotebookClient(nb, timeout=1800, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(nb, path)
    subprocess.run([sys.executable, "-m", "jupytext", "--sync", "--quiet", str(path)], check=True)
    print(f"executed {path} in {time.perf_counter() - t:.0f} s")


def main(argv: list[str]) -> int:
    os.environ["TQDM_DISABLE"] = "1"
    os.environ.setdefault("BIGRAMLAB_PROFILE", "tiny")
    for path in notebooks(argv or ["chapters", "solutions"]):
        run(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
