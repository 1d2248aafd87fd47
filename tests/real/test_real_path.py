"""The real-world code path, run offline: a 'hub' model given as a local folder
goes through the same from_pretrained call, and a corpus is streamed with
``datasets`` from a local text file and tokenized with the model's tokenizer."""

import subprocess
import sys

import pytest
import torch

from bigramlab import get_profile, load_corpus, load_model
from bigramlab.plumbing.profiles import Corpus, TinyWorld
from bigramlab.worlds.models import make_model
from bigramlab.worlds.tiny.build import build_tokenizer
from bigramlab.worlds.tokens import pack
from tests.helpers.worlds import SMALL
from tests.helpers import ROOT


@pytest.fixture
def local_hub(tmp_path, monkeypatch):
    """A folder laid out like a hub repo: config, weights and tokenizer."""
    monkeypatch.setenv("BIGRAMLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(build_tokenizer(SMALL))
    torch.manual_seed(0)
    model = make_model("gpt_neox", TinyWorld(n_layer=1, d_model=16, n_head=2, d_mlp=32),
                       len(tok), 128)
    repo = tmp_path / "fake-pythia"
    model.save_pretrained(repo)
    tok.save_pretrained(repo)
    texts = [f"Line {i}: the dog near the barn runs and Mira sees {i % 7} goats." for i in range(400)]
    data = tmp_path / "corpus.txt"
    data.write_text("\n".join(texts) + "\n")
    profile = get_profile("pythia-70m").replace(
        model_id=str(repo), checkpoints=("main",),
        corpus=Corpus("text", data_files=str(data), why="a local file standing in for the Pile"),
        n_train_seqs=30, n_eval_seqs=5)
    return profile, model, tok, texts


def test_real_model_path_loads_a_local_folder(local_hub):
    profile, model, tok, _ = local_hub
    loaded, ltok = load_model(profile, device="cpu")
    assert not profile.is_tiny
    x = torch.randint(0, len(tok), (2, 10))
    with torch.no_grad():
        torch.testing.assert_close(loaded(x).logits, model.eval()(x).logits)
    assert ltok("a goat")["input_ids"] == tok("a goat")["input_ids"]


def test_hub_skeleton_has_the_models_names_and_shapes_and_no_weights(local_hub):
    """Chapter 4's other models: the anatomy of a released mask from the config alone."""
    from bigramlab.methods.anatomy import maskable_matrices
    from bigramlab.worlds import hub
    profile, model, _, _ = local_hub
    skeleton = hub.hub_skeleton(profile)
    got = {n: tuple(p.shape) for n, p in skeleton.named_parameters()}
    assert got == {n: tuple(p.shape) for n, p in model.named_parameters()}
    assert {p.device.type for p in skeleton.parameters()} == {"meta"}
    assert [(m.name, m.layer) for m in maskable_matrices(skeleton)] == \
        [(m.name, m.layer) for m in maskable_matrices(model)]


def test_real_corpus_path_streams_with_datasets(local_hub):
    profile, _, tok, texts = local_hub
    ev, train = load_corpus(profile, "eval"), load_corpus(profile, "train")
    assert ev.shape == (5, 128) and train.shape == (30, 128)
    # naive reference: tokenize every line, end-of-text after each, cut into 128s
    stream = []
    for t in texts:
        stream += tok(t, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    want = torch.tensor(stream[: 35 * 128]).view(35, 128)
    assert torch.equal(ev, want[:5]) and torch.equal(train, want[5:])


def test_pack_raises_when_the_corpus_runs_out(local_hub):
    _, _, tok, texts = local_hub
    with pytest.raises(ValueError, match="ran out"):
        pack(texts[:3], tok, 128, 100)


def test_cli_info_and_build_errors(tmp_path):
    env = {"BIGRAMLAB_CACHE": str(tmp_path), "PATH": "", "HF_HUB_OFFLINE": "1"}
    run = lambda *a: subprocess.run([sys.executable, "-m", "bigramlab.cli", *a],  # noqa: E731
                                    capture_output=True, text=True, env=env)
    out = run("info", "--profile", "pythia-70m")
    assert out.returncode == 0
    for want in ("profile:  pythia-70m", "device:", f"cache:    {tmp_path}", "(empty)"):
        assert want in out.stdout
    bad = run("info", "--profile", "nope")
    assert bad.returncode == 2 and "valid profiles" in bad.stderr and "Traceback" not in bad.stderr
    real = run("build", "--profile", "gpt2")
    assert real.returncode == 2 and "tiny world" in real.stderr


def test_bigram_model_counts_a_streamed_real_corpus(local_hub):
    """Counting on the real path: streamed with datasets, tokenized with the
    model's own tokenizer, counted once and cached; checked against a naive count."""
    from collections import Counter

    from bigramlab.experiments import bigram_model
    profile, _, tok, _ = local_hub
    bigram = bigram_model(profile, device="cpu", progress=False)
    train = load_corpus(profile, "train")
    naive = Counter()
    for row in train.tolist():
        for a, b in zip([len(tok)] + row[:-1], row):
            naive[a, b] += 1
    for (a, b), c in list(naive.items())[:200]:
        total = sum(v for (x, _), v in naive.items() if x == a)
        assert abs(float(bigram.prob(torch.tensor(a), torch.tensor(b))) - c / total) < 1e-6
    again = bigram_model(profile, device="cpu", progress=False)  # from the cache
    assert again.nnz == bigram.nnz == len(naive)


@pytest.fixture
def hub_served(local_hub, tmp_path):
    """The local folder rewritten as the Hub serves Pythia (``tools.standin_hub``): fp16
    ``pytorch_model.bin``, ``torch_dtype: float16``, old buffers, 27 padding rows; the
    corpus as the Pile's ``train/00.jsonl.zst`` read with no ``data_files``."""
    from tools import standin_hub
    profile, _, tok, texts = local_hub
    torch.manual_seed(1)
    padded = make_model("gpt_neox", TinyWorld(n_layer=1, d_model=16, n_head=2, d_mlp=32),
                        len(tok) + standin_hub.PYTHIA_PADDING, 128)
    repo = tmp_path / "pythia-as-served"
    repo.mkdir()
    standin_hub.write_pythia(padded, tok, repo)
    standin_hub.write_pile(tmp_path / "pile", texts)
    corpus = Corpus(str(tmp_path / "pile"), why="the Pile's layout, locally")
    return profile.replace(model_id=str(repo), corpus=corpus), padded, tok


def test_a_hub_served_pythia_loads_in_float32_cut_to_the_tokenizer(hub_served):
    """Stored fp16 with padding rows: loaded in the profile's float32, values exact, the
    logits as wide as the tokenizer (the paper's cut), the padding rows' logits dropped."""
    profile, padded, tok = hub_served
    model, _ = load_model(profile, device="cpu")
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    x = torch.randint(0, len(tok), (2, 12))
    with torch.no_grad():
        got, want = model(x).logits, padded.half().float()(x).logits
    assert got.shape[-1] == len(tok)
    torch.testing.assert_close(got, want[..., :len(tok)], rtol=1e-4, atol=1e-5)


def test_a_half_model_is_refused_by_the_default_mask_step(hub_served):
    from bigramlab.methods.sparsify import SparsifyConfig, sparsify
    profile, _, tok = hub_served
    model, _ = load_model(profile, device="cpu")
    x = torch.randint(0, len(tok), (4, 16))
    ce = lambda logits, ids, full=None: logits.float().logsumexp(-1).mean()  # noqa: E731
    with pytest.raises(TypeError, match=r"torch.float16 .*memory='low'"):
        sparsify(model.half(), x, ce, SparsifyConfig(max_steps=1, batch_size=4), progress=False)


def test_the_pile_layout_streams_and_names_a_missing_decompressor(hub_served):
    profile, _, _ = hub_served
    assert load_corpus(profile, "eval").shape == (5, 128)
    code = ("import sys; sys.modules['zstandard'] = None\n"  # as if it were not installed
            "from bigramlab.worlds.hub import stream_texts\n"
            "from bigramlab.plumbing.profiles import get_profile, Corpus\n"
            f"p = get_profile('pythia-70m').replace(corpus=Corpus({profile.corpus.path!r}))\n"
            "next(iter(stream_texts(p)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1] == (
        "bigramlab.worlds.hub.MissingDecompressorError: the corpus is stored zstd-compressed "
        "and zstandard is not installed: pip install zstandard (then restart the kernel)")


def test_zstandard_is_a_dependency():
    import tomllib
    from pathlib import Path
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert any(d.startswith("zstandard") for d in deps["project"]["dependencies"])
