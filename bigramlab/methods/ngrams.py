"""Exact n-gram counting, streamed: the engine under the bigram model.

An n-gram is ``(c_1, ..., c_{n-1}, b)``: n - 1 context tokens and the next
token ``b``, counted inside each sequence. Positions before the start of a
sequence are filled with a *start placeholder* context id ``V`` (the
vocabulary size, as in the paper's code), so every token of a sequence is the
next token of exactly one n-gram. Each n-gram is one integer key

    key = ((c_1 * (V + 1) + c_2) * (V + 1) + ... + c_{n-1}) * V + b,

in ``[0, (V + 1) ** (n - 1) * V)``: for bigrams ``a * V + b``, the flat index
of cell (a, b) of a (V + 1, V) table.

Counting.  Keys are buffered batch by batch (the corpus never has to be in
memory) and folded into the counts every ``flush_pairs`` keys:

* **dense** when the key space has at most ``dense_max_entries`` cells
  (2**24 by default: V <= 4095 for bigrams): one ``bincount`` per flush into
  an int64 table;
* **sparse** otherwise: sort, run-length encode (``unique_consecutive``) and
  merge into sorted unique int64 keys with their counts. The sort is the
  whole cost (there is no hash map on a GPU or in torch), and it leaves the
  keys in the sorted order that lookups need anyway.

Both give identical counts. Everything is a torch tensor on one device (the
first batch's, unless told), so the same code counts on a CPU or a GPU.
:class:`NgramCounts` holds the result, reads it out (the dense table, the
totals per context and per next token) and writes it to a checksummed
safetensors file. Defined in Chapter 1 (bigrams); Chapter 9's trigram model
counts with it too.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..plumbing.files import atomic_write
from ..plumbing.progress import progress_bar

__all__ = ["NgramCounts", "count_ngrams", "ngram_keys", "merge_counts", "marginal_counts",
           "DENSE_MAX_ENTRIES", "FLUSH_PAIRS", "DENSE_COUNTS_MAX"]

#: Largest key space, in cells, that is counted and kept dense.
DENSE_MAX_ENTRIES = 2**24
#: Keys buffered while counting before they are folded into the counts.
FLUSH_PAIRS = 2**23
#: Largest table that ``NgramCounts.dense`` makes (512 MiB of int64).
DENSE_COUNTS_MAX = 2**26


@dataclass
class NgramCounts:
    """Exact counts of the n-grams of a corpus, dense or sparse.

    ``table``: int64 counts of every key, shape (n_keys,), when dense; else
    ``keys`` (sorted, unique int64) and their int64 ``counts``. ``buffer``: when
    counted with ``spare_rows``, the whole dense allocation (``table`` is its
    first n_keys cells; the rest is zero). ``meta``: the string metadata of the
    file :meth:`load` read them from (None otherwise)."""

    vocab_size: int
    n: int
    table: torch.Tensor | None = None
    keys: torch.Tensor | None = None
    counts: torch.Tensor | None = None
    buffer: torch.Tensor | None = None
    meta: dict[str, str] | None = None

    @property
    def n_keys(self) -> int:
        return n_keys(self.vocab_size, self.n)

    @property
    def storage(self) -> str:
        return "dense" if self.table is not None else "sparse"

    @property
    def device(self) -> torch.device:
        return (self.table if self.table is not None else self.keys).device

    def dense(self) -> torch.Tensor:
        """A copy of the counts as one (V + 1, ..., V + 1, V) int64 table on their device
        (n - 1 context axes). Refused (ValueError) beyond ``DENSE_COUNTS_MAX`` cells."""
        V, size = self.vocab_size, self.n_keys
        if size > DENSE_COUNTS_MAX:
            raise ValueError(
                f"a dense count table at V = {V:,} has {size:,} cells; that is for small "
                "vocabularies: read totals, or a few rows of the model, instead")
        if self.table is not None:
            out = self.table.clone()
        else:
            out = torch.zeros(size, dtype=torch.int64, device=self.device)
            out[self.keys] = self.counts
        return out.view(*(V + 1,) * (self.n - 1), V)

    def sparse(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(keys, counts) of the n-grams that occurred, whatever the storage: sorted,
        unique int64 keys and their int64 counts (views of sparse counts, not copies)."""
        if self.table is None:
            return self.keys, self.counts
        keys = self.table.nonzero().squeeze(1)
        return keys, self.table[keys]

    def next_token_totals(self) -> torch.Tensor:
        """(V,) int64: how often each token was the next token of an n-gram, i.e.
        how often it occurred in the corpus (every token is the next token of one)."""
        V = self.vocab_size
        if self.table is not None:
            return self.table.view(-1, V).sum(0)
        out = torch.zeros(V, dtype=torch.int64, device=self.device)
        return out.index_add_(0, self.keys % V, self.counts)

    def context_totals(self) -> torch.Tensor:
        """((V + 1)^(n-1),) int64: how often each context occurred (flat context index;
        for bigrams, entry V is the start placeholder: the number of sequences)."""
        V = self.vocab_size
        if self.table is not None:
            return self.table.view(-1, V).sum(1)
        out = torch.zeros(self.n_keys // V, dtype=torch.int64, device=self.device)
        return out.index_add_(0, self.keys // V, self.counts)

    # -- files ------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, fmt: str, version: str,
             extra: dict[str, str] | None = None) -> None:
        """Write to a safetensors file, atomically: plain tensors (a dense table of
        shape ``dense()``'s, or keys and counts) and string metadata, no pickle,
        with a SHA-256 of the tensor bytes so that :meth:`load` detects corruption.
        ``fmt`` and ``version`` name the file's owner (e.g. 'bigramlab.BigramModel');
        ``extra``: more string metadata of the owner's (read back as ``meta``)."""
        V = self.vocab_size
        if self.table is not None:
            tensors = {"table": self.table.view(*(V + 1,) * (self.n - 1), V)}
        else:
            tensors = {"keys": self.keys, "counts": self.counts}
        tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        meta = {**(extra or {}), "format": fmt, "version": version, "vocab_size": str(V),
                "storage": self.storage, "sha256": _digest(tensors)}
        if self.n != 2:  # bigram files, written before this field, have none
            meta["n"] = str(self.n)
        atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))

    @classmethod
    def load(cls, path: str | os.PathLike, fmt: str, version: str, error: type[Exception],
             device: torch.device | str | None = None) -> "NgramCounts":
        """Read a file written by :meth:`save` with the same ``fmt`` and ``version``
        onto ``device`` (default CPU). A truncated, corrupt or foreign file raises
        ``error`` with one line saying so and what to do."""
        path = os.fspath(path)
        if not os.path.exists(path):
            raise FileNotFoundError(path)
        owner = fmt.rpartition(".")[2]

        def bad(reason):
            return error(f"{path} is not a valid {owner} file ({reason}). It is probably "
                         f"truncated or corrupt: delete it and rebuild it with "
                         f"{owner}.from_corpus(...).save(path).")

        try:
            with safe_open(path, framework="pt", device="cpu") as f:
                meta = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as err:  # safetensors raises several error types
            raise bad(f"unreadable: {err}") from err
        if meta.get("format") != fmt:
            raise bad(f"no {owner} metadata")
        if meta.get("version") != version:
            raise bad(f"unsupported version {meta.get('version')!r}")
        if meta.get("sha256") != _digest(tensors):
            raise bad("checksum mismatch")
        V, n = int(meta["vocab_size"]), int(meta.get("n", 2))
        dev = torch.device("cpu") if device is None else torch.device(device)
        if meta.get("storage") == "dense":
            table = tensors["table"]
            if table.shape != (V + 1,) * (n - 1) + (V,) or table.dtype != torch.int64:
                raise bad("table has the wrong shape or dtype")
            return cls(V, n, table=table.to(dev).reshape(-1), meta=meta)
        keys, counts = tensors["keys"].to(dev), tensors["counts"].to(dev)
        if keys.shape != counts.shape or keys.dim() != 1:
            raise bad("keys and counts do not match")
        return cls(V, n, keys=keys, counts=counts, meta=meta)


def n_keys(vocab_size: int, n: int) -> int:
    """Size of the key space of n-grams over ``vocab_size`` tokens: (V + 1)^(n-1) V."""
    return (vocab_size + 1) ** (n - 1) * vocab_size


def ngram_keys(batch: torch.Tensor, n: int, vocab_size: int) -> torch.Tensor:
    """Flat keys of every n-gram of a (B, S) batch, one per token: (B * S,) int64,
    row by row. Contexts before a sequence's start are the placeholder ``V``."""
    V = vocab_size
    key = None
    for j in range(n - 1, 0, -1):  # the context token j back, oldest first
        ctx = torch.empty_like(batch)
        ctx[:, :j] = V
        ctx[:, j:] = batch[:, :-j]
        key = ctx if key is None else key.mul_(V + 1).add_(ctx)
    # in place on our own buffer: the counting loop's hot path
    return (batch.clone() if key is None else key.mul_(V).add_(batch)).reshape(-1)


def merge_counts(keys_a, counts_a, keys_b, counts_b):
    """Union of two sorted, duplicate-free key sets; counts of shared keys add."""
    keys, order = torch.sort(torch.cat([keys_a, keys_b]), stable=True)
    counts = torch.cat([counts_a, counts_b])[order]
    keys, inverse = torch.unique_consecutive(keys, return_inverse=True)
    return keys, torch.zeros_like(keys).index_add_(0, inverse, counts)


def marginal_counts(counts: NgramCounts, *, dense_max_entries: int = DENSE_MAX_ENTRIES,
                    spare_rows: int = 0) -> NgramCounts:
    """The (n - 1)-gram counts of the same corpus, from its n-gram counts: each n-gram
    ``(c_1, c_2, ..., b)`` counted as ``(c_2, ..., b)``, i.e. summed over its oldest
    context token (key modulo the (n - 1)-gram key space). Exact, because every
    token is the next token of one n-gram of each order, with the same start
    placeholders: identical to counting the corpus again with n - 1, storage
    included (dense when its key space is at most ``dense_max_entries``; ``spare_rows``
    as in :func:`count_ngrams`)."""
    if counts.n < 2:
        raise ValueError(f"marginal_counts needs n >= 2 (there is no 0-gram), got n = {counts.n}")
    V, n = counts.vocab_size, counts.n - 1
    size = n_keys(V, n)
    keys, cnt = counts.sparse()
    low = keys % size  # key = c_1 * size + (the (n - 1)-gram's key)
    if size <= dense_max_entries:
        buffer = torch.zeros(size + spare_rows * V, dtype=torch.int64, device=keys.device)
        buffer[:size].index_add_(0, low, cnt)
        return NgramCounts(V, n, table=buffer[:size], buffer=buffer if spare_rows else None)
    low, order = torch.sort(low, stable=True)
    low, inverse = torch.unique_consecutive(low, return_inverse=True)
    return NgramCounts(V, n, keys=low, counts=torch.zeros_like(low).index_add_(0, inverse,
                                                                           cnt[order]))


def _checked(batch) -> torch.Tensor:
    """A batch as a 2-D integer tensor with ids in [0, V); one clear error otherwise."""
    batch = torch.as_tensor(batch)
    if batch.dim() == 1:
        batch = batch.unsqueeze(0)
    if batch.dim() != 2 or batch.dtype.is_floating_point or \
            batch.dtype == torch.bool or batch.is_complex():
        raise ValueError("batches must be integer tensors of shape "
                         f"(batch, seq), got {batch.dtype} {tuple(batch.shape)}")
    return batch


def count_ngrams(batches: Iterable[torch.Tensor], vocab_size: int, n: int = 2,
                 device: torch.device | str | None = None, progress: bool = False, *,
                 dense_max_entries: int = DENSE_MAX_ENTRIES, flush_pairs: int = FLUSH_PAIRS,
                 spare_rows: int = 0, desc: str = "counting n-grams") -> NgramCounts:
    """Count the n-grams of an iterable of token-id batches, exactly.

    ``batches`` yields integer tensors of shape (batch, seq) (a 1-D tensor is
    one sequence), consumed one at a time. Each sequence contributes ``seq``
    n-grams; sequences never continue across rows or batches. ``device``:
    where counting happens and the counts live (default: the first batch's;
    the CPU when there is none). ``dense_max_entries``: count densely when
    the key space is at most this. ``flush_pairs``: keys buffered before they
    are folded into the counts (a memory knob). ``spare_rows``: dense only, rows
    of V zero cells allocated after the table (``NgramCounts.buffer``), so that a
    caller can keep rows of its own there without copying the table."""
    V = int(vocab_size)
    if V < 1 or n < 1:
        raise ValueError(f"need vocab_size >= 1 and n >= 1, got {vocab_size} and {n}")
    size = n_keys(V, n)
    dense = size <= dense_max_entries
    # Keys below 2**32 are buffered and sorted as int32, shifted by -2**31 (the shift
    # keeps their order): half the memory traffic of int64, ~1.5-2x faster.
    compact = not dense and size <= 2**32
    table = buffer = keys = counts = None
    pending: list[torch.Tensor] = []
    buffered = 0

    def flush():
        nonlocal keys, counts, pending, buffered
        if not pending:
            return
        new = torch.cat(pending)
        pending, buffered = [], 0
        if dense:
            # One bincount per flush instead of one per batch: bincount
            # allocates its whole output every call.
            table.add_(torch.bincount(new, minlength=size))
            return
        new_keys, new_counts = torch.unique_consecutive(torch.sort(new).values,
                                                        return_counts=True)
        if compact:
            new_keys = new_keys.long() + 2**31
        if keys is None:
            keys, counts = new_keys, new_counts
        else:
            keys, counts = merge_counts(keys, counts, new_keys, new_counts)

    for batch in progress_bar(batches, enabled=progress, desc=desc, unit="batch"):
        batch = _checked(batch)
        if device is None:
            device = batch.device
        if table is None and dense:
            buffer = torch.zeros(size + spare_rows * V, dtype=torch.int64, device=device)
            table = buffer[:size]
        if batch.numel() == 0:
            continue
        batch = batch.to(device=device, dtype=torch.int64)
        lo, hi = torch.stack([batch.min(), batch.max()]).tolist()  # one sync
        if lo < 0 or hi >= V:
            raise ValueError(f"token ids must be in [0, {V}), got values in [{lo}, {hi}]")
        new = ngram_keys(batch, n, V)
        pending.append((new - 2**31).int() if compact else new)
        buffered += batch.numel()
        if buffered >= flush_pairs:
            flush()
    flush()

    device = torch.device("cpu") if device is None else torch.device(device)
    if dense:
        if table is None:
            buffer = torch.zeros(size + spare_rows * V, dtype=torch.int64, device=device)
            table = buffer[:size]
        return NgramCounts(V, n, table=table, buffer=buffer if spare_rows else None)
    if keys is None:
        keys = torch.zeros(0, dtype=torch.int64, device=device)
        counts = torch.zeros(0, dtype=torch.int64, device=device)
    return NgramCounts(V, n, keys=keys, counts=counts)


def _digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over names, dtypes, shapes and bytes of CPU tensors."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        if t.numel():
            h.update(t.view(torch.uint8).reshape(-1).numpy())
    return h.hexdigest()
