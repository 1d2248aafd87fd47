"""Token sequences for training and evaluation, made the same way in both worlds.

Text is tokenized with the model's own tokenizer, an end-of-text token is
appended to every document (as in Pythia's training data), and the stream is
cut into sequences of ``seq_len`` tokens. The first ``n_eval_seqs`` sequences
are the eval split and the sequences after them the train split, so the two
never share a document boundary's worth of text beyond one sequence. Both
splits are stored in one ``tokens.safetensors`` file per cache entry.
Defined in Chapter 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..plumbing.progress import progress_bar

SPLITS = ("train", "eval")
TOKENS_FILE = "tokens.safetensors"


def pack(texts: Iterable[str], tokenizer, seq_len: int, n_seqs: int | None,
         batch_docs: int = 256, desc: str = "tokenizing") -> torch.Tensor:
    """Tokenize ``texts`` (documents), join them with end-of-text tokens and cut
    the stream into an (n, seq_len) int64 tensor; stops after ``n_seqs``
    sequences (None: use all text, dropping the last incomplete sequence)."""
    eos = tokenizer.eos_token_id
    seqs: list[torch.Tensor] = []
    carry: list[int] = []
    n_have = 0
    bar = progress_bar(total=n_seqs, desc=desc, unit="seq")
    for docs in _batched(texts, batch_docs):
        ids = tokenizer(docs, add_special_tokens=False)["input_ids"]
        for doc in ids:
            carry.extend(doc)
            carry.append(eos)
        n_full = len(carry) // seq_len
        if n_full:
            seqs.append(torch.tensor(carry[: n_full * seq_len], dtype=torch.int64).view(-1, seq_len))
            carry = carry[n_full * seq_len:]
            n_have += n_full
            bar.update(n_full)
        if n_seqs is not None and n_have >= n_seqs:
            break
    bar.close()
    out = torch.cat(seqs) if seqs else torch.empty(0, seq_len, dtype=torch.int64)
    if n_seqs is not None:
        if len(out) < n_seqs:
            raise ValueError(f"the corpus ran out after {len(out)} sequences of {seq_len} "
                             f"tokens; {n_seqs} were asked for")
        out = out[:n_seqs]
    return out


def _batched(items: Iterable[str], n: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch


def split_sequences(ids: torch.Tensor, n_eval: int, n_train: int) -> dict[str, torch.Tensor]:
    """Eval first, then train (n_train 0: everything after the eval split)."""
    train = ids[n_eval:] if n_train == 0 else ids[n_eval:n_eval + n_train]
    return {"eval": ids[:n_eval].clone(), "train": train.clone()}


def save_splits(folder: Path, splits: dict[str, torch.Tensor]) -> None:
    """Write the splits into ``folder/tokens.safetensors``."""
    # int32 halves the disk size; token ids of every profile fit.
    save_file({k: v.to(torch.int32).contiguous() for k, v in splits.items()},
              str(folder / TOKENS_FILE))


def read_split(folder: Path, split: str) -> torch.Tensor:
    """The ``split`` ('train' or 'eval') of ``folder/tokens.safetensors`` as an
    (n_sequences, seq_len) int64 tensor on the CPU."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {SPLITS}")
    return load_file(str(folder / TOKENS_FILE))[split].to(torch.int64)
