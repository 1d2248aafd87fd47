"""Token sequences for training and evaluation, in both worlds.

Text is tokenized with the model's own tokenizer, an end-of-text token is
appended to every document (as in Pythia's training data), and the stream is
cut into sequences of ``seq_len`` tokens. The first ``n_eval_seqs`` sequences
are the eval split and the sequences after them the train split, so the two
never share a document boundary's worth of text beyond one sequence.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .cache import cached
from .profiles import Profile, get_profile
from .progress import progress_bar

SPLITS = ("train", "eval")


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


def stream_texts(profile: Profile) -> Iterator[str]:
    """Documents of a real profile's corpus, streamed with ``datasets``
    (checks the Hub first, so a missing network fails here, not mid-stream)."""
    import datasets

    c = profile.corpus
    if c.data_files is None:
        from .hub import require_hub
        require_hub(f"the corpus {c.path}")
    ds = datasets.load_dataset(c.path, c.name, split=c.split, data_files=c.data_files,
                               streaming=True)
    return (row[c.text_field] for row in ds if row[c.text_field] and row[c.text_field].strip())


def _save_splits(folder: Path, splits: dict[str, torch.Tensor]) -> None:
    # int32 halves the disk size; token ids of every profile fit.
    save_file({k: v.to(torch.int32).contiguous() for k, v in splits.items()},
              str(folder / "tokens.safetensors"))


def load_corpus(profile: Profile | str | None = None, split: str = "train") -> torch.Tensor:
    """The ``split`` ('train' or 'eval') token ids of a profile's corpus as an
    (n_sequences, seq_len) int64 tensor on the CPU, built once and cached."""
    profile = get_profile(profile)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {SPLITS}")
    if profile.is_tiny:
        from .tinyworld import build_tokens
        folder = build_tokens(profile)
    else:
        folder = cached("corpus", profile.key("model_id", "corpus", "seq_len", "n_train_seqs",
                                              "n_eval_seqs"),
                        lambda out: _build_real(profile, out))
    return load_file(str(folder / "tokens.safetensors"))[split].to(torch.int64)


def _build_real(profile: Profile, out: Path) -> dict:
    from .models import load_tokenizer

    texts = stream_texts(profile)
    tokenizer = load_tokenizer(profile)
    n = profile.n_eval_seqs + profile.n_train_seqs
    ids = pack(texts, tokenizer, profile.seq_len, n or None,
               desc=f"tokenizing {profile.corpus.path}")
    _save_splits(out, split_sequences(ids, profile.n_eval_seqs, profile.n_train_seqs))
    return {"profile": profile.name, "corpus": profile.corpus.path, "sequences": len(ids)}
