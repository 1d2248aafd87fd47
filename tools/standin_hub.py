"""The stand-in's files, written the way the Hugging Face Hub serves the real repos.

``tools/standin.py`` builds the offline stand-in of the real world from these.
Each writer copies what a real repo holds (not what ``save_pretrained`` would write
today), so that the real branch meets, in CI, what a student's Colab downloads:

- Pythia (``EleutherAI/pythia-*``): fp16 weights in ``pytorch_model.bin`` (the
  ``HalfStorage`` of the Hub's files; transformers 5 loads ``dtype="auto"``),
  config ``torch_dtype: float16``, the output embedding as ``embed_out.*``, the
  old per-layer ``attention.bias`` / ``masked_bias`` / ``rotary_emb.inv_freq``
  buffers, and an embedding padded to the tokenizer's length + 27 rows (50,304
  rows for 50,277 tokens);
- GPT-2 (``openai-community/gpt2``): ``model.safetensors`` in the old layout (no
  ``transformer.`` prefix, no ``lm_head``: tied; ``h.N.attn.bias`` buffers),
  Conv1D weights stored (in, out), and a tokenizer with no pad token;
- the Pile (``monology/pile-uncopyrighted``): ``train/00.jsonl.zst`` (plus
  ``val.jsonl.zst`` and ``test.jsonl.zst``) of ``{"text", "meta"}`` rows, read by
  ``load_dataset(folder)`` with no ``data_files``;
- FineWeb (``HuggingFaceFW/fineweb``, config ``sample-10BT``): parquet files under
  ``sample/10BT/`` named by the README's ``configs``;
- the authors' released masks: a dict of numpy bool arrays pickled with
  ``pickle.HIGHEST_PROTOCOL`` under numpy 1.x, so the pickle names
  ``numpy.core.*`` (not numpy 2's ``numpy._core.*``).
"""

from __future__ import annotations

import json
import pickle
import types
from pathlib import Path

import numpy as np
import torch

#: Pythia pads its 50,277-token vocabulary to 50,304 embedding rows.
PYTHIA_PADDING = 50304 - 50277


def write_pythia(model, tokenizer, folder: Path) -> None:
    """A GPT-NeoX ``model`` (its embedding already padded) as Pythia's Hub repos hold it."""
    cfg = model.config
    sd = {k: v.detach().to(torch.float16) for k, v in model.state_dict().items()}
    n, rot = cfg.max_position_embeddings, int(cfg.hidden_size // cfg.num_attention_heads
                                               * getattr(cfg, "rotary_pct", 0.25))
    for i in range(cfg.num_hidden_layers):  # buffers the 2023 checkpoints carry
        p = f"gpt_neox.layers.{i}.attention."
        sd[p + "bias"] = torch.tril(torch.ones(n, n, dtype=torch.bool)).view(1, 1, n, n)
        sd[p + "masked_bias"] = torch.tensor(-1e9)
        sd[p + "rotary_emb.inv_freq"] = 1.0 / 10000 ** (torch.arange(0, rot, 2).float() / rot)
    torch.save(sd, folder / "pytorch_model.bin")
    _write_config(cfg, folder, "GPTNeoXForCausalLM", "float16")
    tokenizer.save_pretrained(folder)


def write_gpt2(model, tokenizer, folder: Path) -> None:
    """A GPT-2 ``model`` as ``openai-community/gpt2`` holds it: safetensors without the
    ``transformer.`` prefix, no ``lm_head`` (tied), the ``attn.bias`` buffers."""
    from safetensors.torch import save_file

    cfg = model.config
    sd = {k.removeprefix("transformer."): v.detach().contiguous()
          for k, v in model.state_dict().items() if not k.startswith("lm_head")}
    n = cfg.n_positions
    for i in range(cfg.n_layer):
        sd[f"h.{i}.attn.bias"] = torch.tril(torch.ones(n, n)).view(1, 1, n, n)
    save_file(sd, str(folder / "model.safetensors"), metadata={"format": "pt"})
    _write_config(cfg, folder, "GPT2LMHeadModel", "float32")
    assert tokenizer.pad_token is None, "GPT-2's tokenizer has no pad token"
    tokenizer.save_pretrained(folder)


def _write_config(cfg, folder: Path, architecture: str, dtype: str) -> None:
    d = cfg.to_dict()
    d.pop("dtype", None)
    d.update(architectures=[architecture], torch_dtype=dtype)
    (folder / "config.json").write_text(json.dumps(d, indent=2, default=str) + "\n")


def write_pile(folder: Path, documents: list[str]) -> None:
    """The Pile's layout: ``train/00.jsonl.zst``, ``val.jsonl.zst``, ``test.jsonl.zst``."""
    import zstandard

    def write(path: Path, docs: list[str]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = "".join(json.dumps({"text": d, "meta": {"pile_set_name": "Pile-CC"}}) + "\n"
                       for d in docs)
        path.write_bytes(zstandard.ZstdCompressor().compress(rows.encode()))

    write(folder / "train" / "00.jsonl.zst", documents)
    write(folder / "val.jsonl.zst", documents[:8])
    write(folder / "test.jsonl.zst", documents[8:16])


FINEWEB_README = """---
configs:
- config_name: default
  data_files:
  - split: train
    path: data/*/*
- config_name: sample-10BT
  data_files:
  - split: train
    path: sample/10BT/*
---
# FineWeb (stand-in)
"""


def write_fineweb(folder: Path, documents: list[str]) -> None:
    """FineWeb's layout: README ``configs``, parquet under ``sample/10BT/`` (and ``data/``)."""
    import datasets

    ds = datasets.Dataset.from_dict({
        "text": documents, "id": [f"<urn:uuid:{i:08d}>" for i in range(len(documents))],
        "dump": ["CC-MAIN-2024-10"] * len(documents),
        "url": [f"https://example.org/{i}" for i in range(len(documents))]})
    (folder / "README.md").parent.mkdir(parents=True, exist_ok=True)
    (folder / "README.md").write_text(FINEWEB_README)
    for part in ("sample/10BT/000_00000.parquet", "data/CC-MAIN-2024-10/000_00000.parquet"):
        (folder / part).parent.mkdir(parents=True, exist_ok=True)
        ds.to_parquet(str(folder / part))


class _Numpy1Pickler(pickle._Pickler):  # the pure-Python pickler: its save_global is ours
    """Names numpy's ``numpy._core.*`` globals as numpy 1.x did (``numpy.core.*``)."""

    def save_global(self, obj, name=None):
        module = getattr(obj, "__module__", "") or ""
        if module.startswith("numpy._core") and self.proto >= 4:
            self.save(module.replace("numpy._core", "numpy.core", 1))
            self.save(name or obj.__qualname__)
            self.write(pickle.STACK_GLOBAL)
            self.memoize(obj)
            return
        super().save_global(obj, name)

    dispatch = dict(pickle._Pickler.dispatch)  # functions are saved through this table
    dispatch[types.FunctionType] = dispatch[types.BuiltinFunctionType] = save_global


def write_released(masks: dict[str, torch.Tensor], model_name: str, path: Path) -> None:
    """A released mask as the authors pickled it: numpy bool arrays and the model's
    name, ``pickle.HIGHEST_PROTOCOL``, numpy 1.x module paths."""
    data = {n: np.ascontiguousarray(m.cpu().numpy().astype(bool)) for n, m in masks.items()}
    data["orig_model_name"] = model_name
    with open(path, "wb") as f:
        _Numpy1Pickler(f, protocol=pickle.HIGHEST_PROTOCOL).dump(data)
