"""The real world: models, tokenizers, corpora and released masks from the Hugging Face Hub.

- reachability: a clear error (``HubUnavailableError``) when the Hub cannot be
  reached and the files are not in the local cache, instead of a hang inside
  a download;
- loading: ``from_pretrained`` from the local cache first, else the Hub
  (``revision="stepN"`` for Pythia's checkpoints), in the profile's
  ``weights_dtype`` whatever the checkpoint's stored dtype (transformers 5
  loads ``dtype="auto"``, and Pythia is stored in fp16), the embedding's
  padding rows dropped (Pythia: 50,304 rows for 50,277 tokens) so that every
  softmax runs over the tokenizer's vocabulary, as the paper's code cuts its
  logits to it;
- corpus: a profile's dataset streamed with ``datasets`` and packed into
  train and eval sequences (``tokens.pack``), cached;
- released masks: the authors' bigram subnetworks (Chang & Bergen 2025,
  github.com/tylerachang/bigram-subnetworks).

Reached through the one dispatch in ``worlds.loading``. Defined in Chapter 0
(loading); the released masks are compared in Chapter 4.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import huggingface_hub
import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from ..methods.subnetwork import Subnetwork
from ..plumbing.cache import cached
from ..plumbing.devices import HUB_HOST, hub_reachable
from ..plumbing.profiles import Profile
from .tokens import pack, save_splits, split_sequences


class HubUnavailableError(RuntimeError):
    """The Hub cannot be reached and the files are not in the local cache."""


def require_hub(what: str) -> None:
    """Raise ``HubUnavailableError`` naming ``what`` and the offline fix."""
    if not hub_reachable():
        raise HubUnavailableError(
            f"cannot download {what}: the Hugging Face Hub ({HUB_HOST}) is not reachable "
            "from this machine and the files are not in the local cache. Connect to the "
            "network, or use the offline world: get_profile('tiny') or BIGRAMLAB_PROFILE=tiny.")


def from_hub(loader, model_id: str, **kwargs):
    """``loader.from_pretrained`` from the local HF cache, else from the Hub,
    failing fast with a clear message when the Hub cannot be reached."""
    try:
        return loader.from_pretrained(model_id, local_files_only=True, **kwargs)
    except OSError:
        pass
    require_hub(f"{model_id} ({kwargs.get('revision') or 'main'})")
    return loader.from_pretrained(model_id, **kwargs)


def hub_tokenizer(profile: Profile):
    """A real profile's tokenizer (a ``transformers`` fast tokenizer)."""
    return from_hub(AutoTokenizer, profile.model_id)


#: ``from_pretrained``'s name for the dtype argument (``torch_dtype`` before 4.56).
_DTYPE_ARG = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"


def hub_model(profile: Profile, checkpoint: str):
    """A real profile's model at ``checkpoint`` (on the CPU), its weights in the
    profile's ``weights_dtype`` whatever dtype the checkpoint is stored in, and its
    embedding and unembedding cut to the tokenizer's vocabulary: Pythia pads its
    50,277 tokens to 50,304 rows, and the paper's code cuts the logits to the
    tokenizer's vocabulary before any softmax; dropping the rows no token id reaches
    gives exactly those logits, to every caller at once."""
    dtype = getattr(torch, profile.weights_dtype)
    kwargs = {"revision": checkpoint} if checkpoint != "main" else {}
    model = from_hub(AutoModelForCausalLM, profile.model_id, **{_DTYPE_ARG: dtype}, **kwargs)
    vocab = len(hub_tokenizer(profile))
    if model.get_output_embeddings().weight.shape[0] > vocab:  # padding rows: drop them
        model.resize_token_embeddings(vocab)
    return model


def hub_skeleton(profile: Profile):
    """A real profile's model built from its Hub config on the meta device: every
    parameter's name and shape, no weights read or downloaded (what the anatomy of a
    released mask needs: Chapter 4's other models). Unlike ``models.make_meta_model``
    (the profile's recorded Shape) it reads the repo's own config, so the shapes are the
    ones the released masks were made for, wherever the repo is served from."""
    config = from_hub(AutoConfig, profile.model_id)
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)


# -- corpus -------------------------------------------------------------------------

def stream_texts(profile: Profile) -> Iterator[str]:
    """Documents of a real profile's corpus, streamed with ``datasets``
    (checks the Hub first, so a missing network fails here, not mid-stream)."""
    import datasets  # here, not at the top: a second to import, and only this needs it

    c = profile.corpus
    if c.data_files is None and not Path(c.path).is_dir():  # a hub dataset, not a folder
        require_hub(f"the corpus {c.path}")
    with decompressor_hint():  # datasets 5 opens the first file here already
        ds = datasets.load_dataset(c.path, c.name, split=c.split, data_files=c.data_files,
                                   streaming=True)
    return _texts(ds, c.text_field)


def _texts(ds, field: str) -> Iterator[str]:
    with decompressor_hint():
        yield from (row[field] for row in ds if row[field] and row[field].strip())


#: The package ``datasets`` (through ``fsspec``) needs to read each compression.
DECOMPRESSORS = {"zstd": "zstandard", "lz4": "lz4", "snappy": "python-snappy"}


class MissingDecompressorError(ImportError):
    """A corpus is stored compressed in a format whose package is not installed."""


@contextmanager
def decompressor_hint():
    """fsspec's "Compression type zstd not supported" as one line naming the package
    to install (the Pile is stored as ``.jsonl.zst``)."""
    try:
        yield
    except ValueError as e:
        kind = str(e).removeprefix("Compression type ").removesuffix(" not supported")
        package = DECOMPRESSORS.get(kind)
        if package is None:
            raise
        raise MissingDecompressorError(
            f"the corpus is stored {kind}-compressed and {package} is not installed: "
            f"pip install {package} (then restart the kernel)") from None


def build_corpus(profile: Profile) -> Path:
    """The cache folder of a real profile's tokenized train and eval splits
    (``tokens.safetensors``), streamed, tokenized and packed once."""
    def build(out: Path) -> dict:
        n = profile.n_eval_seqs + profile.n_train_seqs
        ids = pack(stream_texts(profile), hub_tokenizer(profile), profile.seq_len, n or None,
                   desc=f"tokenizing {profile.corpus.path}")
        save_splits(out, split_sequences(ids, profile.n_eval_seqs, profile.n_train_seqs))
        return {"profile": profile.name, "corpus": profile.corpus.path, "sequences": len(ids)}

    return cached("corpus", profile.key("model_id", "corpus", "seq_len", "n_train_seqs",
                                        "n_eval_seqs"), build)


# -- the authors' released masks -------------------------------------------------------

# (github.com/tylerachang/bigram-subnetworks, circuit_loading_utils.py): short model
# name -> (name in the Hugging Face repo, released lambdas, default lambda first).
RELEASED_SUBNETWORKS = {
    "pythia-70m": ("pythia-70m", (10, 1)),
    "pythia-160m": ("pythia-160m", (10, 1)),
    "pythia-410m": ("pythia-410m", (10, 1)),
    "pythia-1b": ("pythia-1b", (100, 10, 1)),
    "gpt2": ("gpt2-small", (10, 1)),
    "gpt2-medium": ("gpt2-medium", (10, 1)),
    "gpt2-large": ("gpt2-large", (100, 10, 1)),
}
LAMBDA_TAG = {1: "1", 10: "1e1", 100: "1e2"}


def load_released_subnetwork(model_name: str, lam: float | None = None) -> Subnetwork:
    """The authors' released bigram subnetwork of ``model_name`` at sparsity ``lam``.

    ``model_name``: a short name (``pythia-70m``, ``gpt2``) or a hub id
    (``EleutherAI/pythia-70m``, ``openai-community/gpt2``). ``lam``: the
    lambda of the mask training, 1, 10 or 100 where released (default: the
    paper's choice, 10, or 100 for Pythia 1B and GPT-2 large). Read from the
    local Hugging Face cache when there, else downloaded (one byte per
    maskable weight, e.g. 0.8 GB for Pythia 1B, as a numpy bool pickle).
    """
    owner, _, short = model_name.rpartition("/")
    short = "gpt2" if short == "gpt2-small" else short
    if short not in RELEASED_SUBNETWORKS or owner not in ("", "EleutherAI", "openai-community"):
        raise ValueError(f"no released bigram subnetwork for {model_name!r}; released for: "
                         f"{', '.join(RELEASED_SUBNETWORKS)}")
    repo_name, lambdas = RELEASED_SUBNETWORKS[short]
    lam = lambdas[0] if lam is None else lam
    if lam not in lambdas:
        raise ValueError(f"no released bigram subnetwork of {short} at lambda {lam!r}; "
                         f"released lambdas: {', '.join(map(str, lambdas))}")
    repo_id = f"tylerachang/bigram-subnetworks-{repo_name}"
    filename = f"subnetwork_dict_lambda{LAMBDA_TAG[int(lam)]}.pickle"
    try:
        path = huggingface_hub.hf_hub_download(repo_id, filename, local_files_only=True)
    except (OSError, ValueError):  # LocalEntryNotFoundError: not in the cache
        require_hub(f"the bigram subnetwork {repo_id}/{filename}")
        path = huggingface_hub.hf_hub_download(repo_id, filename)
    return Subnetwork.load(path)
