"""The real world, offline: run a chapter's real-profile branch on a stand-in.

The tiny world never takes the chapters' ``else:`` branches (released masks,
Pythia revisions, a streamed corpus, ``get_profile("pythia-160m")``). This
tool builds, in a folder, what those branches download, and runs notebooks
against it through the same code the real world uses:

- a Hugging Face cache (``$HF_HOME/hub``) laid out as the Hub's own: for
  Pythia 70M and 160M, a random-weight GPT-NeoX built from the real config
  (its layer and head counts) at a reduced width, one snapshot per revision
  (``refs/step0`` ... ``refs/main``); for GPT-2 small, a random-weight GPT-2
  (Conv1D) the same way; the tiny world's BPE tokenizer (the real ones cannot
  be downloaded here; it has no pad token, as GPT-2's has none); and the
  authors' released masks (``tylerachang/bigram-subnetworks-*``,
  ``subnetwork_dict_lambda1e1.pickle`` ...) as stand-in masks;
- the corpora as folders of the real repos' layout (the Pile's
  ``train/00.jsonl.zst``, FineWeb's ``sample/10BT/*.parquet``), streamed with
  ``datasets.load_dataset(folder)``, passages of the tiny world's grammar;
- the real profiles with those corpora, a few revisions and a tiny budget.

Every file is written as the Hub serves it, not as ``save_pretrained`` would
write it today (``tools/standin_hub.py``: fp16 ``pytorch_model.bin`` and padded
embeddings for Pythia, the old safetensors layout for GPT-2, zstd and parquet
corpora, numpy-1.x pickles), so what breaks on real weights breaks here.

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

``tests/real/test_standin.py`` runs every chapter this way.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
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
from bigramlab.plumbing.profiles import PROFILES, TinyWorld  # noqa: E402
from bigramlab.worlds.hub import RELEASED_SUBNETWORKS, LAMBDA_TAG  # noqa: E402
from bigramlab.worlds.models import make_model  # noqa: E402
from bigramlab.worlds.tiny.build import read_passages  # noqa: E402
from tools import standin_hub  # noqa: E402

#: The real profiles the chapters use, and the revisions the stand-in has of Pythia's.
STANDIN_PROFILES = ("pythia-70m", "pythia-160m", "gpt2")
CHECKPOINTS = ("step0", "step512", "step1000", "step2000", "step10000", "step143000")  # Ch. 5's
#: A budget that runs every branch in seconds: the point is the code path, not the numbers.
BUDGET = dict(n_train_seqs=96, n_eval_seqs=16, max_steps=8, chapter_max_steps=8, batch_size=8)
HEAD_DIM = 4       # the reduced width: d_model = heads x 4, MLP = 4 x d_model
N_PASSAGES = 3000  # passages of the grammar in the stand-in corpus (about 170k tokens)
PASSAGES_PER_DOC = 5  # a corpus row (a Pile or FineWeb document) holds a few passages
#: The stand-in corpora: folders laid out as these repos are (``standin_hub``).
CORPUS_FOLDERS = {"gpt_neox": "pile-uncopyrighted", "gpt2": "fineweb"}


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
    """A random-weight model of ``name``'s architecture, layer and head counts at a reduced
    width; Pythia's embedding padded as the real one is (``standin_hub.PYTHIA_PADDING``)."""
    p, s = PROFILES[name], PROFILES[name].shape
    d = s.n_head * HEAD_DIM
    torch.manual_seed(seed)
    shape = TinyWorld(n_layer=s.n_layer, d_model=d, n_head=s.n_head, d_mlp=4 * d)
    pad = standin_hub.PYTHIA_PADDING if p.arch == "gpt_neox" else 0
    return make_model(p.arch, shape, vocab + pad, p.seq_len)


def _released(model, lam: float) -> dict:
    """A stand-in released mask: about 2% of every matrix (1/lam of it more at small lam)."""
    g = torch.Generator().manual_seed(int(lam))
    density = 0.02 + 0.02 / max(lam, 1.0)
    return {m.name: torch.rand(m.shape, generator=g) < density for m in maskable_matrices(model)}


def build(root: Path) -> dict[str, str]:
    """Build the stand-in under ``root`` (once: a finished build is reused); returns the
    environment the notebooks run in."""
    root = Path(root)
    hub, done = root / "hf" / "hub", root / "BUILT-hub-layout"  # a new layout: a new marker
    tiny = get_profile("tiny")
    if not done.exists():
        t = time.perf_counter()
        root.mkdir(parents=True, exist_ok=True)
        passages = read_passages(build_world(tiny, progress=False, stage="corpus"))
        docs = ["\n".join(passages[i:i + PASSAGES_PER_DOC])
                for i in range(0, N_PASSAGES, PASSAGES_PER_DOC)]
        standin_hub.write_pile(root / CORPUS_FOLDERS["gpt_neox"], docs)
        standin_hub.write_fineweb(root / CORPUS_FOLDERS["gpt2"], docs)
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(build_world(tiny, progress=False,
                                                            stage="tokenizer")))
        for i, name in enumerate(STANDIN_PROFILES):
            p = PROFILES[name]
            revisions = CHECKPOINTS + ("main",) if p.arch == "gpt_neox" else ("main",)
            write = standin_hub.write_pythia if p.arch == "gpt_neox" else standin_hub.write_gpt2
            for j, rev in enumerate(revisions):
                model = _standin_model(name, len(tok), seed=100 * i + min(j, len(CHECKPOINTS) - 1))
                write(model, tok, _snapshot(hub, p.model_id, rev))
            repo_name, lambdas = RELEASED_SUBNETWORKS[name]
            folder = _snapshot(hub, f"tylerachang/bigram-subnetworks-{repo_name}", "main")
            for lam in lambdas:
                standin_hub.write_released(
                    _released(model, lam), p.model_id,
                    folder / f"subnetwork_dict_lambda{LAMBDA_TAG[int(lam)]}.pickle")
        done.write_text(json.dumps({"seconds": round(time.perf_counter() - t, 1)}))
    return {"HF_HOME": str(root / "hf"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1", "BIGRAMLAB_PROFILE": STANDIN_PROFILES[0],
            "TQDM_DISABLE": "1", "BIGRAMLAB_STANDIN": str(root),
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def activate(root: str) -> None:
    """In the notebook's kernel: the real profiles, on the stand-in corpora under ``root``
    with the stand-in budget and revisions (the first cell of every executed copy calls this)."""
    from bigramlab.plumbing.profiles import Corpus  # noqa: E402

    for name in STANDIN_PROFILES:
        p = PROFILES[name]
        corpus = Corpus(str(Path(root) / CORPUS_FOLDERS[p.arch]), name=p.corpus.name,
                        why=f"a local stand-in for {p.corpus.path}, laid out as it is")
        changes = dict(checkpoints=CHECKPOINTS) if p.arch == "gpt_neox" else {}
        PROFILES[name] = p.replace(corpus=corpus, **changes, **BUDGET)


PREAMBLE = ("import os, tools.standin\n"
            "tools.standin.activate(os.environ['BIGRAMLAB_STANDIN'])\n"
            "from bigramlab import get_profile\n"
            "assert not get_profile().is_tiny, 'the stand-in must run the real branch'")


def probe(name: str) -> dict:
    """What the real branch makes of the stand-in of ``name`` (after ``activate``): the
    loaded weights' dtype, the logits' width beside the tokenizer's length, the largest
    gap between ``lm_surprisal`` and surprisals from logits cut to the tokenizer, the
    bigram CE beside the same from cut logits, the corpus, the released mask, one
    default-memory mask step, and the fused q/k/v layout read through ``part``.
    ``tests/real/test_standin.py`` asserts on it."""
    from bigramlab import get_profile, load_corpus, load_model
    from bigramlab.experiments import bigram_model
    from bigramlab.methods.metrics import LN2, lm_surprisal
    from bigramlab.methods.sparsify import sparsify
    from bigramlab.methods.sparsify_config import SparsifyConfig
    from bigramlab.methods.targets import BigramTarget
    from bigramlab.worlds.hub import load_released_subnetwork

    p = get_profile(name)
    model, tok = load_model(p, device="cpu")
    ev, train = load_corpus(p, "eval")[:4], load_corpus(p, "train")
    V = len(tok)
    with torch.no_grad():
        logits = model(input_ids=ev).logits
    cut = logits[..., :V].double().log_softmax(-1)
    want = -cut[:, :-1].gather(-1, ev[:, 1:, None])[..., 0] / LN2
    bigram = bigram_model(p, device="cpu", progress=False)
    released = load_released_subnetwork(p.model_id)
    released.check(model)
    params, stored = dict(model.named_parameters()), _stored_weights(p)
    names = {n: next((q for q in (n, "transformer." + n) if q in params), None) for n in stored}
    buffers = ("attn.bias", "attention.bias", "masked_bias", "inv_freq")  # the old checkpoints'
    unread = [n for n, q in names.items() if q is None and not n.endswith(buffers)]
    gap = max(float((params[q].detach().double()[:k] - stored[n].double()[:k]).abs().max())
              for n, q in names.items() if q is not None
              for k in [min(len(params[q]), len(stored[n]))])  # embeddings: padding rows cut
    step = sparsify(model, train, BigramTarget(bigram), SparsifyConfig(max_steps=1, batch_size=8),
                    progress=False)
    head_gap = _head_gap(model, ev[:2, :32])
    return {"profile": p.name, "dtype": str(next(model.parameters()).dtype),
            "logits_width": logits.shape[-1], "tokenizer": V, "pad_token": tok.pad_token,
            "surprisal_gap": float((lm_surprisal(model, ev).double() - want).abs().max()),
            "bigram_ce": float(bigram.cross_entropy(logits, ev)),
            "bigram_ce_cut": float(bigram.cross_entropy(logits[..., :V].contiguous(), ev)),
            "corpus": [list(ev.shape), list(train.shape)], "released_kept": released.count(),
            "step_ce_finite": bool(math.isfinite(step.ce[0])), "unread_weights": unread,
            "weights_gap": gap, "head_gap": head_gap}


def _head_gap(model, ids: torch.Tensor, layer: int = 0, head: int = 1) -> float:
    """max |logits with ``head``'s v weights and v bias zeroed through ``part`` - logits
    with the head's output zeroed by a hook| (Chapter 2's test of the fused q/k/v layout:
    0 when ``part`` finds the head's v, as the architecture table says it is stored)."""
    from bigramlab.methods.residual import zero_head_output, zeroed

    qkv = next(m for m in maskable_matrices(model) if m.layer == layer and m.role == "qkv")
    v = qkv.part("v", head)
    entries = {qkv.name: v, qkv.name.removesuffix("weight") + "bias": v.any(dim=qkv.in_axis)}
    with torch.no_grad():
        with zero_head_output(model, layer, head):
            want = model(input_ids=ids).logits
        with zeroed(model, entries):
            got = model(input_ids=ids).logits
    return float((got - want).abs().max())


def _stored_weights(p) -> dict:
    """The tensors of ``p``'s final snapshot, read from the file (not through transformers)."""
    import huggingface_hub
    from safetensors.torch import load_file

    for f, read in (("model.safetensors", load_file),
                    ("pytorch_model.bin", lambda f: torch.load(f, weights_only=True))):
        try:
            return read(huggingface_hub.hf_hub_download(p.model_id, f, local_files_only=True))
        except huggingface_hub.errors.LocalEntryNotFoundError:
            continue
    raise FileNotFoundError(f"no weights of {p.model_id} in the stand-in")


def run(path: Path, root: Path, env: dict[str, str], profile: str | None = None,
        preamble: str = "") -> Path:
    """Execute ``path`` against the stand-in in a fresh kernel (``profile``: a stand-in
    profile other than the default; ``preamble``: code run first, e.g. a reverted fix in
    a test); the executed copy goes to ``root/out``. Raises nbclient's CellExecutionError
    (naming the cell) on failure."""
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(preamble + PREAMBLE))
    saved = dict(os.environ)
    os.environ.update(env)  # the kernel inherits the environment it is started in
    if profile:
        os.environ["BIGRAMLAB_PROFILE"] = profile
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
    ap.add_argument("--profile", choices=STANDIN_PROFILES, help="the stand-in profile the "
                    f"chapters run with (default: {STANDIN_PROFILES[0]})")
    ap.add_argument("--root", type=Path, help="folder for the stand-in (default: "
                    "<bigramlab cache>/standin; built once, reused)")
    args = ap.parse_args(argv)
    args.root = args.root or cache_dir() / "standin"
    env = build(args.root)
    for path in args.notebooks:
        t = time.perf_counter()
        out = run(path, args.root, env, args.profile)
        print(f"{path}: ran on the stand-in in {time.perf_counter() - t:.0f} s -> {out}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
