"""The numbers of the book's appendix "Engineering notes" (book/engineering.md), rendered
from the files that measure them. The page quotes no number of its own: each one sits in
a generated block between ``<!-- NAME ARGS -->`` and ``<!-- /NAME -->``:

    t4-table, lowmem-table   tools/t4_table.py (model configs, benchmarks/results/lowmem.json)
    spread                   benchmarks/results/spread.json (tools/measure_spread.py compare --save)
    ci-time                  benchmarks/results/ci_time.json (tools/ci_time.py)
    ci-cost                  the same, for the README: the run, the chapters, named cells
    release                  the released tiny world: its RELEASE.json and MANIFEST.json
    versions                 the lower bounds of pyproject.toml
    quote PATH ID            the printed output of cell ID of notebook PATH, as stored
                             (a printed table as a Markdown table)

``tests/book/test_engineering.py`` fails when a block differs from what this renders (and on a
number in the page's prose, outside the blocks).

    python tools/engineering_tables.py           # rewrite the blocks of book/engineering.md
                                                 # and README.md
    python tools/engineering_tables.py --check   # exit 1 naming each block that differs
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools import t4_table  # noqa: E402

PAGE = ROOT / "book" / "engineering.md"
#: The pages with generated blocks: the appendix, and the README's costs (``ci-cost``).
PAGES = (PAGE, ROOT / "README.md")
RELEASED = ROOT / "bigramlab" / "worlds" / "tiny" / "released" / "tiny"
#: A generated block: its name, its arguments, and its body (never another block's marker).
BLOCK = re.compile(r"<!-- ([\w-]+)((?: [^\s>]+)*) -->\n((?:(?!<!--).)*?)<!-- /\1 -->", re.S)


def release() -> str:
    info = json.loads((RELEASED / "RELEASE.json").read_text())
    files = json.loads((RELEASED / "MANIFEST.json").read_text())["files"]
    steps = sorted({Path(f).parts[2] for f in files if f.startswith("lm/checkpoints/")},
                   key=lambda s: int(s.removeprefix("step")))
    mib = sum(f["bytes"] for f in files.values()) / 2**20
    b = info["built_on"]
    return "\n".join([
        "| released tiny world | |", "|---|---|",
        f"| checkpoints | {len(steps)}: {', '.join(steps)} |",
        f"| files | {len(files)} ({mib:.1f} MiB), each with its size and SHA-256 in `MANIFEST.json` |",
        f"| built on | {b['device']}, torch {b['torch']}, {b['kernels']} kernels, "
        f"{b['threads']} threads, {b['machine']} |",
        f"| pretraining took | {info['train_seconds']} s |"] + [
        f"| also released: {d.name} | width {_width(d)}, its final checkpoint only, "
        f"{_mib(d):.1f} MiB, pretrained in {json.loads((d / 'RELEASE.json').read_text())['train_seconds']} s |"
        for d in sorted(RELEASED.parent.iterdir()) if d.is_dir() and d != RELEASED])


def _width(folder: Path) -> int:
    (config,) = folder.glob("lm/checkpoints/*/config.json")
    return json.loads(config.read_text())["hidden_size"]


def _mib(folder: Path) -> float:
    files = json.loads((folder / "MANIFEST.json").read_text())["files"]
    return sum(f["bytes"] for f in files.values()) / 2**20


def versions() -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    rows = ["| package | lower bound |", "|---|---|",
            f"| Python | {project['requires-python']} |"]
    for dep in project["dependencies"]:
        name, bound = re.match(r"([\w.-]+)\s*(.*)", dep).groups()
        rows.append(f"| {name} | {bound or 'any'} |")
    return "\n".join(rows)


def quote(path: str, cell_id: str) -> str:
    """What a code cell printed (its stream outputs), as stored in the notebook: a table
    printed by ``bigramlab.display.format_table`` becomes a Markdown table (it then fits
    the page's column), anything else a text block."""
    nb = json.loads((ROOT / path).read_text())
    cells = [c for c in nb["cells"] if c.get("id") == cell_id]
    if not cells:
        raise KeyError(f"{path} has no cell {cell_id}")
    text = "".join("".join(o["text"]) if isinstance(o["text"], list) else o["text"]
                   for o in cells[0].get("outputs", []) if o.get("output_type") == "stream")
    lines = [line.rstrip() for line in text.strip("\n").splitlines()]
    if len(lines) < 3 or not re.fullmatch(r"-+(  +-+)*", lines[1]):
        return "```text\n" + "\n".join(lines) + "\n```"
    starts = [m.start() for m in re.finditer(r"-+", lines[1])]
    # the table ends at the first line that does not keep its columns (a space before
    # each column's start): a sentence printed after it is quoted as text below it
    end = 2
    while end < len(lines) and all(len(lines[end]) <= s or lines[end][s - 1] == " "
                                   for s in starts[1:]):
        end += 1
    bounds = starts + [None]
    rows = [[line[a:b].strip() for a, b in zip(bounds, bounds[1:])] for line in lines[:end]]
    rows[1] = ["---"] * len(rows[0])
    table = "\n".join("| " + " | ".join(row) + " |" for row in rows)
    rest = "\n".join(lines[end:]).strip("\n")
    return table + ("\n\n```text\n" + rest + "\n```" if rest else "")


def spread() -> str:
    """Every stored output re-executed from an empty cache under other CPU settings
    (``tools/measure_spread.py compare ... --save``)."""
    data = json.loads((ROOT / "benchmarks" / "results" / "spread.json").read_text())
    rows = ["| run | settings | stored outputs of | notebooks | cells compared | moved | fail |",
            "|---|---|---|---|---|---|---|"]
    for name, r in sorted(data.items()):
        env = ", ".join(f"`{k}={v}`" for k, v in sorted(r["env"].items())) or "native kernels"
        rows.append(f"| {name} | {env} | {r.get('stored_outputs_of', 'not recorded')} | "
                    f"{r['notebooks']} | {r['cells']} | {r['moved']} | {r['fail']} |")
    return "\n".join(rows)


def kernels() -> str:
    """The tiny profile's bigram mask trained under two CPU kernel sets, with and without
    the mask-logit grid (``benchmarks/kernel_invariance.py``)."""
    data = json.loads((ROOT / "benchmarks" / "results" / "kernels.json").read_text())
    rows = ["| run | grid | steps (native / default) | kept (native / default) | "
            "largest logit difference | identical |", "|---|---|---|---|---|---|"]
    for name, r in sorted(data.items(), key=lambda kv: (kv[1]["steps_cap"], kv[1]["grid"])):
        grid = "2^-24" if r["grid"] == "profile" else "none"
        rows.append(f"| at most {r['steps_cap']} steps | {grid} | {r['steps']['native']} / "
                    f"{r['steps']['default']} | {r['kept']['native']:,} / "
                    f"{r['kept']['default']:,} | {r['max_logit_difference']:.1e} | "
                    f"{'yes' if r['identical'] else 'no'} |")
    return "\n".join(rows)


def _test_name(test_id: str) -> str:
    """A notebook cell as "chNN_x, cell N"; a test as its file and (cut) name: fits the page."""
    path, _, name = test_id.partition("::")
    if path.endswith(".ipynb"):
        return f"{Path(path).stem} ({Path(path).parent}), {name.replace('Cell', 'cell')}"
    name = name if len(name) <= 44 else name[:43] + "…"
    return f"`{Path(path).name}`: `{name}`"


def ci_time() -> str:
    """Where the last recorded CI run's time went (``tools/ci_time.py``)."""
    data = json.loads((ROOT / "benchmarks" / "results" / "ci_time.json").read_text())
    rows = ["| what | busy time | share of all busy time |", "|---|---|---|"]
    for name, s in data["groups"].items():
        rows.append(f"| {name} | {s / 60:.1f} min | {s / data['busy_s']:.0%} |")
    rows.append(f"| all ({len(data['workers'])} workers) | {data['busy_s'] / 60:.1f} min | "
                f"wall: {data['span_s'] / 60:.1f} min |")
    rows += ["", "| slowest test or notebook cell | busy time |", "|---|---|"]
    rows += [f"| {_test_name(t)} | {s / 60:.1f} min |" for t, s in data["tests"].items()]
    return "\n".join(rows)


#: The costs the README states: (what, notebook, a string only that code cell holds).
COSTS = (
    ("Chapter 3: the tiny family's masks (Figure 1 across sizes)",
     "chapters/ch03_sparsification.ipynb", 'sweep_folder("figure1")'),
    ("Chapter 5: the per-checkpoint sweep (Figure 2 left)",
     "chapters/ch05_pretraining.ipynb", 'sweep_folder("figure2")'),
)


def cell_id(notebook: str, needle: str) -> str:
    """The nbval id ("PATH::Cell N", N counting code cells) of the one code cell of
    ``notebook`` whose source holds ``needle``."""
    cells = [c for c in json.loads((ROOT / notebook).read_text())["cells"]
             if c["cell_type"] == "code"]
    hits = [i for i, c in enumerate(cells) if needle in "".join(c["source"])]
    if len(hits) != 1:
        raise ValueError(f"{notebook}: {len(hits)} code cells hold {needle!r}, want one")
    return f"{notebook}::Cell {hits[0]}"


def ci_cost() -> str:
    """What a CI run costs on two cores (README): the run, the chapters, and the cells
    named in :data:`COSTS`, from the last recorded run (``tools/ci_time.py``)."""
    data = json.loads((ROOT / "benchmarks" / "results" / "ci_time.json").read_text())
    rows = ["| in the last recorded CI run (two cores) | minutes |", "|---|---|",
            f"| the test suite, wall clock ({len(data['workers'])} workers) | "
            f"{data['span_s'] / 60:.1f} |",
            f"| the chapters' notebooks, busy time | {data['groups']['chapters'] / 60:.1f} |"]
    for what, notebook, needle in COSTS:
        rows.append(f"| {what}, cold | {data['cells'][cell_id(notebook, needle)] / 60:.1f} |")
    return "\n".join(rows)


RENDER = {"ci-cost": ci_cost, "ci-time": ci_time, "kernels": kernels, "spread": spread, "t4-table": t4_table.table, "lowmem-table": t4_table.lowmem_table,
          "release": release, "versions": versions, "quote": quote}


def render(text: str) -> str:
    """``text`` with every generated block rendered afresh."""
    def one(m: re.Match) -> str:
        name, args = m.group(1), m.group(2).split()
        return f"<!-- {name}{m.group(2)} -->\n{RENDER[name](*args)}\n<!-- /{name} -->"
    return BLOCK.sub(one, text)


def differences(text: str) -> list[str]:
    """The blocks of ``text`` that differ from their sources, one line each."""
    out = []
    opened = [n for n in re.findall(r"<!-- ([\w-]+)", text) if n in RENDER]
    if len(opened) != len(BLOCK.findall(text)):
        out.append(f"{len(opened)} blocks opened, {len(BLOCK.findall(text))} closed: a marker "
                   "is missing or a block holds another's")
    for m in BLOCK.finditer(text):
        name, args = m.group(1), m.group(2).split()
        if m.group(3) != RENDER[name](*args) + "\n":
            out.append(f"<!-- {name}{m.group(2)} --> differs from its source")
    return out


def main(argv: list[str]) -> int:
    status = 0
    for page in PAGES:
        text = page.read_text()
        if "--check" in argv:
            bad = differences(text)
            print("\n".join(bad) or f"{page.relative_to(ROOT)}: every block matches its source")
            status |= bool(bad)
        else:
            page.write_text(render(text))
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
