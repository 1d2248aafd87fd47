"""The real world, offline: run a chapter's real-profile branch on a stand-in.

The tiny world never takes the chapters' ``else:`` branches (released masks,
Pythia revisions, a streamed corpus, ``get_profile("pythia-160m")``). This
tool builds, in a folder, what those branches download, and runs notebooks
against it through the same code the real world uses:

- a Hugging Face cache (``$HF_HOME/hub``) laid out as the Hub's own: for
  Pythia 70M and 160M, a random-weight GPT-NeoX built from the real config
  (its layer and head counts) at a reduced width, one snapshot per revision
  (``refs/step0`` ... ``refs/main``), with the tiny world's BPE tokenizer
  (the real one cannot be downloaded here); and the authors' released masks
  (``tylerachang/bigram-subnetworks-*``, ``subnetwork_dict_lambda1e1.pickle``
  ...) as stand-in masks in the authors' format (numpy bool pickles);
- a local text corpus (passages of the tiny world's grammar), streamed with
  ``datasets`` as the Pile would be;
- the real profiles with that corpus, a few revisions and a tiny budget.

The notebooks run in a fresh kernel with ``HF_HUB_OFFLINE=1`` and
``$HF_HOME`` pointing at the stand-in cache, so ``from_pretrained``,
``hf_hub_download`` and ``load_dataset`` find everything locally; a first cell
(added to the executed copy only) swaps in the stand-in profiles. Nothing is
compared with stored outputs: the branch must run end to end.

    python tools/standin.py chapters/ch04_where.ipynb ...   # build the stand-in, run them

The stand-in lives in the bigramlab cache (``<cache>/standin``), beside the
tiny world whose corpus and tokenizer it borrows, so its corpus and masks are
cached under stable keys (the corpus path is part of them) and a second run
trains nothing.

``tests/test_standin.py`` runs every chapter this way.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import nbformat
import torch
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: the repository's package and tools
    sys.path.insert(0, str(ROOT))

from bigramlab import build_world, cache_dir, get_profile  # noqa: E402
from bigramlab.methods.anatomy import maskable_matrices  # noqa: E402
from bigramlab.methods.subnetwork import Subnetwork  # noqa: E402
from bigramlab.plumbing.profiles import PROFILES, TinyWorld  # noqa: E402
from bigramlab.worlds.hub import RELEASED_SUBNETWORKS, _LAMBDA_TAG  # noqa: E402
from bigramlab.worlds.models import make_model  # noqa: E402
from bigramlab.worlds.tiny.build import read_passages  # noqa: E402

#: The real profiles the chapters use, and the revisions the stand-in has of each.
STANDIN_PROFILES = ("pythia-70m", "pythia-160m")
CHECKPOINTS = ("step0", "step512", "step1000", "step2000", "step10000", "step143000")  # Ch. 5's
#: A budget that runs every branch in seconds: the point is the code path, not the numbers.
BUDGET = dict(n_train_seqs=96, n_eval_seqs=16, max_steps=8, chapter_max_steps=8, batch_size=8)
HEAD_DIM = 4       # the reduced width: d_model = heads x 4, MLP = 4 x d_model
N_PASSAGES = 3000  # passages of the grammar in the stand-in corpus (about 170k tokens)


def _snapshot(hub: Path, repo_id: str, revision: str, kind: str = "models") -> Path:
    """The snapshot folder of ``repo_id`` at ``revision`` in a Hub-layout cache, with
    ``refs/<revision>`` pointing at it (a made-up, stable commit hash)."""
    repo = hub / f"{kind}--{repo_id.replace('/', '--')}"
    commit = hashlib.sha1(f"{repo_id}@{revision}".encode()).hexdigest()
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / revision).write_text(commit)
    folder = repo / "snapshots" / commit
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _standin_model(name: str, vocab: int, seed: int):
    s = PROFILES[name].shape
    d = s.n_head * HEAD_DIM
    torch.manual_seed(seed)
    shape = TinyWorld(n_layer=s.n_layer, d_model=d, n_head=s.n_head, d_mlp=4 * d)
    return make_model(PROFILES[name].arch, shape, vocab, PROFILES[name].seq_len)


def _released(model, lam: float, name: str) -> Subnetwork:
    """A stand-in released mask: about 2% of every matrix (1/lam of it more at small lam)."""
    g = torch.Generator().manual_seed(int(lam))
    density = 0.02 + 0.02 / max(lam, 1.0)
    return Subnetwork({m.name: torch.rand(m.shape, generator=g) < density
                       for m in maskable_matrices(model)}, name)


def build(root: Path) -> dict[str, str]:
    """Build the stand-in under ``root`` (once: a finished build is reused); returns the
    environment the notebooks run in."""
    root = Path(root)
    hub, done = root / "hf" / "hub", root / "BUILT"
    tiny = get_profile("tiny")
    if not done.exists():
        t = time.perf_counter()
        root.mkdir(parents=True, exist_ok=True)
        passages = read_passages(build_world(tiny, progress=False, stage="corpus"))
        (root / "corpus.txt").write_text("\n".join(passages[:N_PASSAGES]) + "\n")
        from transformers import AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # save_pretrained's shard bars
        tok = AutoTokenizer.from_pretrained(str(build_world(tiny, progress=False,
                                                            stage="tokenizer")))
        for i, name in enumerate(STANDIN_PROFILES):
            model_id = PROFILES[name].model_id
            for j, rev in enumerate(CHECKPOINTS + ("main",)):
                model = _standin_model(name, len(tok), seed=100 * i + min(j, len(CHECKPOINTS) - 1))
                folder = _snapshot(hub, model_id, rev)
                model.save_pretrained(folder)
                tok.save_pretrained(folder)
            repo_name, lambdas = RELEASED_SUBNETWORKS[name]
            folder = _snapshot(hub, f"tylerachang/bigram-subnetworks-{repo_name}", "main")
            for lam in lambdas:
                _released(model, lam, model_id).save(
                    folder / f"subnetwork_dict_lambda{_LAMBDA_TAG[int(lam)]}.pickle")
        done.write_text(json.dumps({"seconds": round(time.perf_counter() - t, 1)}))
    return {"HF_HOME": str(root / "hf"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1", "BIGRAMLAB_PROFILE": STANDIN_PROFILES[0],
            "TQDM_DISABLE": "1",
            "BIGRAMLAB_STANDIN_CORPUS": str(root / "corpus.txt"),
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def activate(corpus: str) -> None:
    """In the notebook's kernel: the real profiles, on the local corpus with the stand-in
    budget and revisions (the first cell of every executed copy calls this)."""
    from bigramlab.plumbing.profiles import Corpus  # noqa: E402

    text = Corpus("text", data_files=corpus, why="a local stand-in for the real corpus")
    for name in STANDIN_PROFILES:
        PROFILES[name] = PROFILES[name].replace(corpus=text, checkpoints=CHECKPOINTS, **BUDGET)


PREAMBLE = ("import os, tools.standin\n"
            "tools.standin.activate(os.environ['BIGRAMLAB_STANDIN_CORPUS'])\n"
            "from bigramlab import get_profile\n"
            "assert not get_profile().is_tiny, 'the stand-in must run the real branch'")


def run(path: Path, root: Path, env: dict[str, str]) -> Path:
    """Execute ``path`` against the stand-in in a fresh kernel; the executed copy goes to
    ``root/out``. Raises nbclient's CellExecutionError (naming the cell) on failure."""
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(PREAMBLE))
    saved = dict(os.environ)
    os.environ.update(env)  # the kernel inherits the environment it is started in
    try:
        NotebookClient(nb, timeout=900, kernel_name="python3", record_timing=False,
                       resources={"metadata": {"path": str(path.resolve().parent)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    out = root / "out" / path.parent.name / path.name
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out)
    return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="+", type=Path)
    ap.add_argument("--root", type=Path, help="folder for the stand-in (default: "
                    "<bigramlab cache>/standin; built once, reused)")
    args = ap.parse_args(argv)
    args.root = args.root or cache_dir() / "standin"
    env = build(args.root)
    for path in args.notebooks:
        t = time.perf_counter()
        out = run(path, args.root, env)
        print(f"{path}: ran on the stand-in in {time.perf_counter() - t:.0f} s -> {out}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
