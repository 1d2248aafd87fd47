"""Every chapter's real branch on a GPU with the Hub, measured: one command.

    python tools/device_check.py                        # all chapters, pythia-70m, session budget
    python tools/device_check.py --out check.json ch03 ch08   # some chapters
    python tools/device_check.py --standin ch01         # offline, on tools/standin.py's stand-in

Runs each chapter notebook (``chapters/chNN_*.ipynb``) in a fresh kernel with
``BIGRAMLAB_PROFILE=pythia-70m`` and ``BIGRAMLAB_BUDGET=session`` (what a student on
a free Colab T4 gets; Chapters 6 and 8 switch to Pythia 160M themselves), and
records per chapter, in a JSON file (``--out``, default ``device_check.json``):

- ``wall_s``: the chapter's wall time, kernel start included;
- ``peak_gpu_gib``: ``torch.cuda.max_memory_allocated()`` in the chapter's kernel,
  reset when it starts (null on a machine without CUDA);
- ``headline``: the chapter's headline numbers, read from its kernel once it has run
  (``HEADLINES``: kept entries, r, the rotation turn, the ablation costs, ...);
- ``compare``: each headline number beside the paper's where the paper reports one for
  the model the chapter ran (``PAPER``, from reference/METHOD.md), and the paper's numbers
  that could not be compared, with why.

A chapter that fails is recorded with its error (the others still run); the command
exits 1 if any failed. The executed notebooks are kept beside the JSON file
(``<out>.notebooks/``). Without ``--standin`` it refuses to start on a machine
without CUDA. ``tests/real/test_device_check.py`` runs it on the stand-in, on one chapter.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SCHEMA = 1
PROFILE, BUDGET = "pythia-70m", "session"
MARK = "BIGRAMLAB-DEVICE-CHECK "  # the line the last cell prints, JSON after it

#: Headline numbers per chapter: name -> an expression evaluated in the chapter's kernel
#: after its last cell (a name the chapter defines). A missing one is listed, not fatal.
HEADLINES: dict[str, dict[str, str]] = {
    "ch01": {},
    "ch03": {"kept": "result.kept_count", "kept_share": "result.kept_share",
             "steps": "result.steps", "early_stopped": "result.early_stopped",
             "r_max": "sub_eval['r_max']", "r_drop": "sub_eval['r_drop']"},
    "ch04": {"kept": "total", "mlp_share": "mlp_kept / total",
             "released_overlap_p": "st['p_value']"},
    "ch05": {"kept": "{c: r.kept_count for c, r in results.items()}"},
    "ch06": {f"rotation.{net}.{t}": f"[float(x) for x in rot[{net!r}][{t!r}][:2]]"
             for net in ("full", "bigram", "random") for t in ("input", "output")},
    "ch08": {"bigram_kept": "bigram_sub.count()", "optimal_lambda": "chosen",
             "optimal_kept": "optimal_sub.count()",
             "cost.minus_bigram": "c_bigram", "cost.minus_random": "c_random",
             "cost.minus_optimal": "c_optimal", "cost.ratio": "ratio",
             **{f"overlap.{k}": f"table[0][{k!r}]"
                for k in ("a", "b", "overlap", "expected", "x_chance", "contained", "p")}},
    "ch09": {"trigram_kept": "trigram_sub.count()", "trigram_steps": "tri_result.steps",
             "optimal_kept": "optimal_sub.count()", "bigram_kept": "bigram_sub.count()"},
}

#: The paper's numbers (reference/METHOD.md) a headline can be set beside:
#: (chapter, headline, the profile the paper's number is for, the paper's value, where).
PAPER = [
    ("ch06", "rotation.bigram.input", "pythia-160m", [0.0, 47.0],
     "section 5: Pythia 160M bigram subnetwork, state 0 -> 1, rotation to input"),
    ("ch06", "rotation.bigram.output", "pythia-160m", [68.5, 34.5],
     "section 5: Pythia 160M bigram subnetwork, state 0 -> 1, rotation to output"),
    ("ch08", "overlap.a", "pythia-160m", 0.0852, "Table 3, Pythia 160M: bigram share"),
    ("ch08", "overlap.b", "pythia-160m", 0.133, "Table 3, Pythia 160M: optimal share "
     "(the paper's schedule; ours is session-trained)"),
    ("ch08", "overlap.overlap", "pythia-160m", 0.0523, "Table 3, Pythia 160M: overlap"),
    ("ch08", "overlap.expected", "pythia-160m", 0.0137, "Table 3, Pythia 160M: expected "
     "(row-shuffle null)"),
    ("ch08", "overlap.x_chance", "pythia-160m", 3.81, "Table 3, Pythia 160M: x chance"),
    ("ch08", "overlap.contained", "pythia-160m", 0.614, "Table 3, Pythia 160M: share of the "
     "bigram subnetwork contained in the optimal one"),
    ("ch08", "optimal_lambda", "pythia-160m", 10.0, "section 6.2: the optimal lambda selected "
     "for Pythia 160M"),
    ("ch03", "r_max", "pythia-1b", 0.959, "Table 1: Pythia 1B, lambda 100"),
]

FIRST = ("import torch as _dc_torch\n"
         "if _dc_torch.cuda.is_available():\n"
         "    _dc_torch.cuda.reset_peak_memory_stats()")

LAST = '''import json as _dc_json, math as _dc_math
def _dc_plain(x):
    if hasattr(x, "tolist"):
        x = x.tolist()
    if isinstance(x, float):
        return x if _dc_math.isfinite(x) else None
    if isinstance(x, dict):
        return {{str(k): _dc_plain(v) for k, v in x.items()}}
    if isinstance(x, (list, tuple)):
        return [_dc_plain(v) for v in x]
    return x if x is None or isinstance(x, (bool, int, str)) else repr(x)
_dc_h, _dc_missing = {{}}, []
for _dc_k, _dc_e in {exprs!r}.items():
    try:
        _dc_h[_dc_k] = _dc_plain(eval(_dc_e))
    except Exception as _dc_x:
        _dc_missing.append(f"{{_dc_k}}: {{type(_dc_x).__name__}}: {{_dc_x}}")
_dc_p = globals().get("profile")
_dc_cuda = _dc_torch.cuda.is_available()
print({mark!r} + _dc_json.dumps({{
    "peak_gpu_gib": _dc_torch.cuda.max_memory_allocated() / 2**30 if _dc_cuda else None,
    "gpu": _dc_torch.cuda.get_device_name() if _dc_cuda else None,
    "profile": getattr(_dc_p, "name", None), "budget": getattr(_dc_p, "budget", None),
    "headline": _dc_h, "missing": _dc_missing}}))'''


def chapters(names: list[str]) -> list[Path]:
    """The chapter notebooks named (``ch03`` or a path), all of them by default."""
    every = sorted((ROOT / "chapters").glob("ch*.ipynb"))
    if not names:
        return every
    out = []
    for n in names:
        hits = [Path(n)] if n.endswith(".ipynb") else [p for p in every if p.stem.startswith(n)]
        if not hits:
            raise SystemExit(f"device_check: no chapter {n!r} (chapters: "
                             f"{', '.join(p.stem[:4] for p in every)})")
        out += hits
    return out


def run_chapter(path: Path, env: dict[str, str], out_dir: Path, preamble: str = "") -> dict:
    """Execute one chapter in a fresh kernel under ``env``; its record (see the module)."""
    import nbformat
    from nbclient import NotebookClient

    key = path.stem[:4]
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(preamble + FIRST))
    nb.cells.append(nbformat.v4.new_code_cell(LAST.format(exprs=HEADLINES.get(key, {}),
                                                          mark=MARK)))
    saved = dict(os.environ)
    os.environ.update(env)  # the kernel inherits the environment it is started in
    record = {"chapter": path.stem, "ok": False, "error": None, "wall_s": None,
              "peak_gpu_gib": None, "gpu": None, "profile": None, "budget": None,
              "headline": {}, "missing": [], "compare": [], "not_compared": []}
    t = time.perf_counter()
    try:
        NotebookClient(nb, timeout=3600, kernel_name="python3", record_timing=False,
                       resources={"metadata": {"path": str(path.resolve().parent)}}).execute()
        record["ok"] = True
    except Exception as e:  # noqa: BLE001 - a failed chapter is recorded, the rest still run
        lines = str(e).strip().splitlines()
        record["error"] = f"{type(e).__name__}: {lines[-1] if lines else ''}"[:2000]
    finally:
        record["wall_s"] = round(time.perf_counter() - t, 1)
        os.environ.clear()
        os.environ.update(saved)
    out_dir.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out_dir / path.name)
    text = "".join(o.get("text", "") for o in nb.cells[-1].get("outputs", [])
                   if o.get("output_type") == "stream")
    found = [line for line in text.splitlines() if line.startswith(MARK)]
    if found:
        record.update(json.loads(found[-1][len(MARK):]))
    compare(record)
    return record


def compare(record: dict) -> None:
    """Fill ``compare`` (ours beside the paper's, for the model the paper reports) and
    ``not_compared`` (a paper number for this chapter that had no counterpart, and why)."""
    key = record["chapter"][:4]
    for chapter, name, model, value, where in PAPER:
        if chapter != key:
            continue
        ours = record["headline"].get(name)
        if record["profile"] != model or ours is None:
            why = (f"the chapter ran {record['profile']}, the paper's number is for {model}"
                   if record["profile"] != model else "no value from the run")
            record["not_compared"].append({"headline": name, "paper": value, "model": model,
                                           "source": where, "why": why})
            continue
        diff = ([o - p for o, p in zip(ours, value)] if isinstance(value, list)
                else ours - value)
        record["compare"].append({"headline": name, "ours": ours, "paper": value,
                                  "difference": diff, "model": model, "source": where})


def validate(report: dict) -> None:
    """Raise ValueError where ``report`` does not have the schema this tool writes."""
    def need(d, key, types, where):
        if key not in d or not isinstance(d[key], types):
            raise ValueError(f"{where}: {key!r} missing or not {types}")
    number = (int, float)
    for k, t in (("schema", int), ("created", str), ("profile", str), ("budget", str),
                 ("standin", bool), ("cuda", bool), ("torch", str), ("chapters", list)):
        need(report, k, t, "report")
    if report["schema"] != SCHEMA:
        raise ValueError(f"report: schema {report['schema']}, this tool writes {SCHEMA}")
    for c in report["chapters"]:
        where = f"chapter {c.get('chapter')!r}"
        need(c, "chapter", str, where)
        need(c, "ok", bool, where)
        need(c, "wall_s", number, where)
        need(c, "peak_gpu_gib", number + (type(None),), where)
        need(c, "error", (str, type(None)), where)
        need(c, "profile", (str, type(None)), where)
        for k in ("headline",):
            need(c, k, dict, where)
        for k in ("missing", "compare", "not_compared"):
            need(c, k, list, where)
        if c["ok"] == (c["error"] is not None):
            raise ValueError(f"{where}: ok and error disagree")
        if not report["cuda"] and c["peak_gpu_gib"] is not None:
            raise ValueError(f"{where}: a peak GPU memory without CUDA")
        for row in c["compare"]:
            for k in ("headline", "ours", "paper", "difference", "model", "source"):
                if k not in row:
                    raise ValueError(f"{where}: a comparison without {k!r}")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("chapters", nargs="*", help="ch00 ... ch09 or notebook paths (default: all)")
    ap.add_argument("--out", type=Path, default=Path("device_check.json"))
    ap.add_argument("--standin", action="store_true", help="offline, on tools/standin.py's "
                    "stand-in (CI); the GPU parts are skipped where there is no CUDA")
    args = ap.parse_args(argv)
    import torch

    from bigramlab import cache_dir
    from bigramlab.plumbing.devices import describe_device

    cuda = torch.cuda.is_available()
    env = {"BIGRAMLAB_PROFILE": PROFILE, "BIGRAMLAB_BUDGET": BUDGET, "TQDM_DISABLE": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    preamble = ""
    if args.standin:
        from tools import standin
        env = standin.build(cache_dir() / "standin") | {"BIGRAMLAB_BUDGET": BUDGET}
        preamble = standin.PREAMBLE + "\n"
    elif not cuda:
        print("device_check: no CUDA device here: run it on a GPU machine with the Hub "
              "(or --standin, offline, for the code path only)", file=sys.stderr)
        return 2
    report = {"schema": SCHEMA, "created": datetime.datetime.now(datetime.timezone.utc)
              .isoformat(timespec="seconds"), "profile": PROFILE, "budget": BUDGET,
              "standin": args.standin, "cuda": cuda, "device": describe_device(),
              "torch": torch.__version__, "chapters": []}
    notebooks = args.out.with_name(args.out.name + ".notebooks")
    for path in chapters(args.chapters):
        print(f"device_check: {path.stem} ...", flush=True)
        rec = run_chapter(path, env, notebooks, preamble)
        report["chapters"].append(rec)
        peak = "n/a" if rec["peak_gpu_gib"] is None else f"{rec['peak_gpu_gib']:.2f} GiB"
        print(f"device_check: {path.stem}: {'ok' if rec['ok'] else rec['error']} in "
              f"{rec['wall_s']:.0f} s, peak GPU memory {peak}, on {rec['profile']}", flush=True)
        for row in rec["compare"]:
            print(f"    {row['headline']}: ours {row['ours']}, paper {row['paper']} "
                  f"({row['source']})", flush=True)
        validate(report)
        args.out.write_text(json.dumps(report, indent=1, allow_nan=False))  # after each chapter
    print(f"device_check: wrote {args.out}")
    return 0 if all(c["ok"] for c in report["chapters"]) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
