"""Bigram model: counts of (current token, next token) pairs and what follows from them.

This is section 1 of the method (Chang & Bergen 2025, "Bigram Subnetworks"):

* Pairs (a, b) of consecutive tokens are counted inside each training
  sequence.  The first token of a sequence is counted after a *start
  placeholder* context whose id is ``vocab_size`` (as in the paper's code),
  so there are ``vocab_size + 1`` contexts and ``vocab_size`` next tokens.
* P(b | a) = C[a, b] / sum_b' C[a, b'].  There is no smoothing: a pair never
  seen after a seen context has probability 0 and infinite surprisal.
* A context never seen backs off to the *unigram* distribution, defined here
  as the column sums of the count table: how often each token occurred as a
  next token, i.e. how often it occurred in the corpus at all (every token is
  the next token of exactly one pair, the first one of the start context).
  This equals the paper's unigram model, which counts every token once.
  Only when there is no data at all does a context get the uniform 1 / V.
  (Under this rule a token that never occurred has probability 0 after an
  unseen context too, exactly as in the paper's code.)

Storage.  The table has ``(V + 1) * V`` cells: 2.5 billion at V = 50,277, of
which a corpus fills only a few million, so large vocabularies are counted
(by sorting) and stored *sparsely* as sorted int64 keys ``a * V + b`` with
their counts, plus per non-zero its column and float32 probability (28 bytes
per distinct pair); the few rows holding at least V/8 non-zeros (frequent
contexts) are also kept as dense float32 rows.  Small vocabularies
(``(V + 1) * V <= dense_max_entries``, 2**24 cells by default, i.e.
V <= 4095) use a dense table of int64 counts and float32 probabilities
(12 bytes per cell, 192 MiB at most), which is faster to count into (one
bincount) and to read.  Both give identical answers.

Internally the unigram backoff distribution is stored as one extra row,
``V + 1``, after the start row, and every context is mapped to the row that
answers for it (itself if it was seen, else row ``V + 1``).  So the backoff
rule is applied in exactly one place, and every query below is "look up a
row".

Everything is a torch tensor on ``model.device``; nothing pins a device by name
or goes through numpy, so the same code counts and answers on CPU or GPU.
Probabilities, surprisals and entropies are returned as float32.
"""

from __future__ import annotations

import hashlib
import math
import os
from typing import Iterable

import torch

from .inputs import check_no_nan, check_token_ids

__all__ = ["BigramModel", "BigramFileError", "DENSE_MAX_ENTRIES"]

#: Largest table, in cells ((V + 1) * V), that is counted and kept dense.
DENSE_MAX_ENTRIES = 2**24
#: Pairs buffered while counting before they are folded into the counts.
FLUSH_PAIRS = 2**23
#: Logits (positions x vocabulary) that cross_entropy handles per chunk; its
#: temporaries are 2-3 float32 blocks of this size.  CPU: 16 MiB, and at most
#: 1/16 of the logits (smaller blocks cost nothing there).  Accelerators:
#: 128 MiB, because each chunk costs ~25 kernel launches (~0.3 ms on an
#: H200: 2**22-element chunks made a 32 x 128 x 50,277 batch 5x slower).
CHUNK_ELEMENTS = {"cpu": 2**22, "other": 2**25}

_FORMAT = "bigramlab.BigramModel"
_FORMAT_VERSION = "1"
_LN2 = math.log(2.0)


class BigramFileError(ValueError):
    """A saved BigramModel file is truncated, corrupt or not a BigramModel."""


class BigramModel:
    """Bigram next-token distributions counted from a corpus.

    Build one with :meth:`from_corpus` or :meth:`load`.  Token ids are
    ``0 .. V-1``; the start placeholder context is ``V`` (``model.start_id``).
    """

    #: Sparse storage: rows with at least this share of V non-zeros are also
    #: cached as dense float32 rows (a speed/memory trade-off, no effect on
    #: the answers).
    dense_row_share = 1 / 8

    # ------------------------------------------------------------------ build
    def __init__(self, vocab_size: int, *, table: torch.Tensor | None = None,
                 keys: torch.Tensor | None = None,
                 counts: torch.Tensor | None = None):
        """Wrap already counted pairs (use from_corpus or load instead).

        Dense: ``table`` is an int64 (V + 2, V) count table whose rows 0..V are
        the real contexts (row V + 1 is overwritten with the backoff row).
        Sparse: ``keys`` (sorted, unique int64 ``a * V + b``) and ``counts``.
        """
        self.vocab_size = int(vocab_size)
        if self.vocab_size < 1:
            raise ValueError("vocab_size must be at least 1")
        if (table is None) == (keys is None):
            raise ValueError("give either a dense table or sparse keys+counts")
        self._table = table
        self._keys, self._counts = keys, counts
        self._derive()

    @classmethod
    def from_corpus(cls, batches: Iterable[torch.Tensor], vocab_size: int,
                    device: torch.device | str | None = None,
                    progress: bool = False, *,
                    dense_max_entries: int = DENSE_MAX_ENTRIES,
                    flush_pairs: int = FLUSH_PAIRS) -> "BigramModel":
        """Count bigrams from an iterable of token-id batches.

        ``batches`` yields integer tensors of shape (batch, seq) (a 1-D tensor
        is one sequence); they are consumed one at a time, so the corpus never
        has to be in memory.  Each sequence contributes ``seq`` pairs: (start,
        x0), (x0, x1), ..., (x_{seq-2}, x_{seq-1}).  Sequences never continue
        across rows or batches.

        ``device``: where counting happens and the model lives (default: the
        first batch's device).  ``dense_max_entries``: use a dense table when
        (V + 1) * V is at most this.  ``flush_pairs``: how many pairs to
        buffer before folding them into the counts (memory knob).
        """
        V = int(vocab_size)
        dense = (V + 1) * V <= dense_max_entries
        # Keys a * V + b are < (V + 1) * V.  Below 2**32 (V <= 65,535) they
        # are buffered and sorted as int32, shifted by -2**31 (the shift keeps
        # their order): half the memory traffic of int64, ~1.5-2x faster.
        compact = not dense and (V + 1) * V <= 2**32
        table = keys = counts = None
        buffer: list[torch.Tensor] = []
        buffered = 0

        def flush():
            nonlocal keys, counts, buffer, buffered
            if not buffer:
                return
            new = torch.cat(buffer)
            buffer, buffered = [], 0
            if dense:
                # One bincount per flush instead of one per batch: bincount
                # allocates its whole (V + 1) * V output every call.
                table.view(-1)[: (V + 1) * V] += torch.bincount(
                    new, minlength=(V + 1) * V)
            else:
                # Sort once, then run-length encode: the sort is the whole
                # cost (no hash map on GPU or in torch), and it leaves the keys
                # in the sorted order that lookups need anyway.
                new_keys, new_counts = torch.unique_consecutive(
                    torch.sort(new).values, return_counts=True)
                if compact:
                    new_keys = new_keys.long() + 2**31
                if keys is None:
                    keys, counts = new_keys, new_counts
                else:
                    keys, counts = _merge_counts(keys, counts,
                                                 new_keys, new_counts)

        if progress:
            from .progress import progress_bar
            batches = progress_bar(batches, desc="counting bigrams", unit="batch")
        for batch in batches:
            batch = torch.as_tensor(batch)
            if batch.dim() == 1:
                batch = batch.unsqueeze(0)
            if batch.dim() != 2 or batch.dtype.is_floating_point or \
                    batch.dtype == torch.bool or batch.is_complex():
                raise ValueError("batches must be integer tensors of shape "
                                 f"(batch, seq), got {batch.dtype} "
                                 f"{tuple(batch.shape)}")
            if device is None:
                device = batch.device
            if table is None and dense:
                table = torch.zeros(V + 2, V, dtype=torch.int64, device=device)
            if batch.numel() == 0:
                continue
            batch = batch.to(device=device, dtype=torch.int64)
            lo, hi = torch.stack([batch.min(), batch.max()]).tolist()
            if lo < 0 or hi >= V:
                raise ValueError(f"token ids must be in [0, {V}), "
                                 f"got values in [{lo}, {hi}]")
            pairs = _pair_keys(batch, V)
            buffer.append((pairs - 2**31).int() if compact else pairs)
            buffered += batch.numel()
            if buffered >= flush_pairs:
                flush()
        flush()

        device = torch.device("cpu") if device is None else torch.device(device)
        if dense:
            if table is None:
                table = torch.zeros(V + 2, V, dtype=torch.int64, device=device)
            return cls(V, table=table)
        if keys is None:
            keys = torch.zeros(0, dtype=torch.int64, device=device)
            counts = torch.zeros(0, dtype=torch.int64, device=device)
        return cls(V, keys=keys, counts=counts)

    def _derive(self) -> None:
        """Add the backoff row and precompute what queries read."""
        V = self.vocab_size
        if self._table is not None:
            t = self._table
            unigram = t[: V + 1].sum(0)
            t[V + 1] = unigram if unigram.sum() > 0 else torch.ones_like(unigram)
            self._row_total = t.sum(1)
            self.nnz = int((t[: V + 1] > 0).sum())
            self.total_pairs = int(self._row_total[: V + 1].sum())
            # Every row is "cached dense" (see the sparse case below).
            self._dense_slot = torch.arange(V + 2, device=t.device)
            self._dense_probs = t.float() / \
                self._row_total.clamp(min=1).float().unsqueeze(1)
            self._light_len = None
        else:
            keys, counts = self._keys, self._counts
            self.nnz = keys.numel()
            self.total_pairs = int(counts.sum())
            unigram = torch.zeros(V, dtype=torch.int64, device=keys.device)
            unigram.index_add_(0, keys % V, counts)
            if self.total_pairs == 0:
                unigram += 1
            seen = unigram.nonzero().squeeze(1)
            # Backoff row V + 1 goes after every real key, so keys stay sorted.
            keys = torch.cat([keys, (V + 1) * V + seen])
            counts = torch.cat([counts, unigram[seen]])
            rows = keys // V
            self._row_total = torch.zeros(V + 2, dtype=torch.int64,
                                          device=keys.device)
            self._row_total.index_add_(0, rows, counts)
            # Row r's non-zeros are keys[row_ptr[r] : row_ptr[r + 1]].
            self._row_ptr = torch.searchsorted(
                keys, torch.arange(V + 3, device=keys.device) * V)
            self._keys_all, self._counts_all = keys, counts
            # The real pairs are a prefix: keep views, not a second copy.
            self._keys, self._counts = keys[: self.nnz], counts[: self.nnz]
            # Column and float32 probability of every non-zero, so that
            # cross_entropy only gathers (no divisions in the hot loop).
            self._cols = (keys - rows * V).to(torch.int32)
            self._probs = (counts.float()
                           / self._row_total[rows].float())
            # Full rows (many non-zeros; the frequent contexts) are also kept
            # as dense float32 rows: copying a dense row is cheaper than
            # scattering more than ~V/8 non-zeros, and these few rows carry
            # most of a batch's target mass (at V = 50,277 on 5M Zipf tokens,
            # 25 rows hold 92% of a 32 x 128 batch's non-zeros).  At most
            # nnz / (V * dense_row_share) rows qualify, so the cache costs at
            # most 4 / dense_row_share bytes per stored pair.
            # Uncached rows point at an all-zero last row of the cache, so
            # that building a block of rows needs no data-dependent branch.
            length = self._row_ptr[1:] - self._row_ptr[:-1]
            full = (length > 0) & (length >= self.dense_row_share * V)
            slots = full.nonzero().squeeze(1)
            n_full = slots.numel()
            self._dense_slot = torch.full((V + 2,), n_full, dtype=torch.int64,
                                          device=keys.device)
            self._dense_slot[slots] = torch.arange(n_full, device=keys.device)
            self._light_len = torch.where(full, 0, length)  # to scatter
            self._dense_probs = torch.zeros(n_full + 1, V, device=keys.device)
            self._scatter_rows(self._dense_probs, slots, length[slots])
        # Which row answers for each context 0..V (itself, or the backoff row).
        ctx = torch.arange(V + 1, device=self.device)
        self._row_of = torch.where(self._row_total[: V + 1] > 0, ctx, V + 1)

    # ------------------------------------------------------------ properties
    @property
    def start_id(self) -> int:
        """Context id of the start placeholder (= vocab_size)."""
        return self.vocab_size

    @property
    def device(self) -> torch.device:
        """Device the counts live on (and answers are computed on)."""
        return (self._table if self._table is not None else self._keys).device

    @property
    def storage(self) -> str:
        """'dense' or 'sparse'."""
        return "dense" if self._table is not None else "sparse"

    def __repr__(self) -> str:
        return (f"BigramModel(vocab_size={self.vocab_size}, "
                f"storage={self.storage!r}, pairs={self.total_pairs}, "
                f"distinct_pairs={self.nnz}, device={self.device})")

    def to(self, device: torch.device | str) -> "BigramModel":
        """Move every tensor to ``device``, in place; returns self."""
        for name, value in list(vars(self).items()):
            if isinstance(value, torch.Tensor):
                setattr(self, name, value.to(device))
        if self._table is None:  # keep the real pairs a view, not a copy
            self._keys = self._keys_all[: self.nnz]
            self._counts = self._counts_all[: self.nnz]
        return self

    # ----------------------------------------------------------- row access
    def _ids(self, ids, high: int) -> torch.Tensor:
        """``ids`` as an int64 tensor on the model's device, checked < high."""
        ids = torch.as_tensor(ids, device=self.device)
        if ids.dtype.is_floating_point or ids.dtype == torch.bool or \
                ids.is_complex():
            raise ValueError(f"token ids must be integers, got {ids.dtype}")
        ids = ids.long()
        if ids.numel():
            lo, hi = torch.stack([ids.min(), ids.max()]).tolist()  # one sync
            if lo < 0 or hi >= high:
                raise ValueError(f"ids must be in [0, {high}), got values in "
                                 f"[{lo}, {hi}]")
        return ids

    def _rows(self, contexts) -> torch.Tensor:
        """Row index answering for each context id (0..V), backoff applied."""
        return self._row_of[self._ids(contexts, self.vocab_size + 1)]

    def _row_probs(self, rows: torch.Tensor, n_scattered: int | None = None
                   ) -> torch.Tensor:
        """Dense float32 probability rows P(. | row), shape (len(rows), V).

        Cached rows are copied (an uncached row copies the all-zero row);
        sparse rows that are not cached are then scattered from their
        non-zeros.  ``n_scattered``, their total number of non-zeros, can be
        passed to save a device sync.
        """
        out = self._dense_probs[self._dense_slot[rows]]
        if self._table is None:
            self._scatter_rows(out, rows, self._light_len[rows], n_scattered)
        return out

    def _scatter_rows(self, out: torch.Tensor, rows: torch.Tensor,
                      length: torch.Tensor, total: int | None = None) -> None:
        """Write the sparse non-zeros of row rows[i] into out[i] when
        length[i] > 0 (length[i] is then that row's non-zero count).

        A ragged gather: row i's non-zeros are storage slice
        ``row_ptr[r_i] : row_ptr[r_i] + length[i]``; output non-zero j of row
        i comes from storage index ``j + row_ptr[r_i] - (first j of row i)``.
        """
        if total is None:
            total = int(length.sum())
        if total == 0:
            return
        seg = torch.repeat_interleave(
            torch.arange(rows.numel(), device=rows.device), length,
            output_size=total)
        shift = self._row_ptr[rows] - (torch.cumsum(length, 0) - length)
        index = torch.arange(total, device=rows.device) + shift[seg]
        out.view(-1)[seg * self.vocab_size + self._cols[index]] = \
            self._probs[index]

    # --------------------------------------------------------------- queries
    def prob(self, cur: torch.Tensor, nxt: torch.Tensor) -> torch.Tensor:
        """P(nxt | cur), elementwise (broadcasting) over pairs of ids.

        ``cur`` may be a token id or the start id V.  Returns float32
        probabilities (0 for an unseen pair in a seen context).
        """
        nxt = self._ids(nxt, self.vocab_size)
        rows = self._rows(cur)
        rows, nxt = torch.broadcast_tensors(rows, nxt)
        V = self.vocab_size
        if self._table is not None:
            count = self._table[rows, nxt]
        else:
            # Keys are sorted, so a pair lookup is one binary search.
            query = rows * V + nxt
            keys = self._keys_all
            at = torch.searchsorted(keys, query).clamp_(max=keys.numel() - 1)
            count = torch.where(keys[at] == query, self._counts_all[at], 0)
        return count.float() / self._row_total[rows].float()

    def surprisal(self, input_ids: torch.Tensor, start: bool = False
                  ) -> torch.Tensor:
        """Bigram surprisal, in bits, of each next token given the current one.

        For ``input_ids`` of shape (batch, seq) returns (batch, seq - 1):
        entry [i, t] is -log2 P(x[t + 1] | x[t]), i.e. tokens 1..seq-1 are
        predicted from tokens 0..seq-2, aligned with a language model's
        logits[:, :-1].  With ``start=True`` returns (batch, seq), the first
        column being -log2 P(x[0] | start).  Probability 0 gives ``inf``.
        A 1-D input gives a 1-D output.
        """
        ids = check_token_ids(self._ids(input_ids, self.vocab_size), None, ndim=(1, 2),
                              where="BigramModel.surprisal: ")
        one_d = ids.dim() == 1
        if one_d:
            ids = ids.unsqueeze(0)
        cur = ids[:, :-1]
        if start:
            cur = torch.cat([torch.full_like(ids[:, :1], self.vocab_size),
                             cur], dim=1)
        p = self.prob(cur, ids[:, ids.shape[1] - cur.shape[1]:])
        out = 0.0 - torch.log2(p)  # "0 -" so that p = 1 gives +0, not -0
        return out.squeeze(0) if one_d else out

    def next_token_probs(self, cur: torch.Tensor | int) -> torch.Tensor:
        """Dense next-token distributions P(. | cur), float32.

        ``cur``: (n,) context ids (the start id V allowed) -> (n, V); a single
        id -> (V,).  Meant for a handful of contexts: n * V floats are made.
        """
        cur = torch.as_tensor(cur, device=self.device)
        rows = self._rows(cur.reshape(-1))
        return self._row_probs(rows).reshape(*cur.shape, self.vocab_size)

    def top_next(self, token: torch.Tensor | int, k: int = 10):
        """The k most probable next tokens after ``token``: (probs, ids).

        Sorted by probability, ties by ascending id (deterministic).  A single
        id gives (k,) tensors; (n,) ids give (n, k).  If fewer than k tokens
        have non-zero probability the rest are zero-probability tokens.
        """
        if not 1 <= k <= self.vocab_size:
            raise ValueError(f"k must be in [1, {self.vocab_size}]")
        probs = self.next_token_probs(token)
        # A stable descending sort keeps ascending ids among equal
        # probabilities; topk's tie order is unspecified.
        probs, ids = torch.sort(probs, dim=-1, descending=True, stable=True)
        return probs[..., :k], ids[..., :k]

    def entropy(self) -> torch.Tensor:
        """Entropy in bits of P(. | context) for contexts 0..V, shape (V + 1,).

        Follows the same backoff as the probabilities (an unseen context has
        the unigram entropy; log2 V when there is no data at all).
        """
        if self._table is not None:
            p = self._dense_probs
            h = 0.0 - torch.xlogy(p, p).sum(1)  # xlogy: 0 log 0 = 0
        else:
            rows = self._keys_all // self.vocab_size
            h = torch.zeros(self.vocab_size + 2, device=self.device)
            h.index_add_(0, rows, -torch.xlogy(self._probs, self._probs))
        return h[self._row_of] / _LN2

    # --------------------------------------------------------- cross-entropy
    def cross_entropy(self, logits: torch.Tensor, input_ids: torch.Tensor, *,
                      chunk_elements: int | None = None) -> torch.Tensor:
        """Mean cross-entropy, in nats, from bigram targets to softmax(logits).

        ``logits``: (batch, seq, V') with V' >= V (columns beyond V, such as
        an embedding's padding rows, get target probability 0); logits[:, i]
        predicts token i + 1 from tokens <= i, so its target is the bigram
        row P(. | input_ids[:, i]).  All batch * seq positions are averaged:

            CE_i = logsumexp(logits_i) - sum_b P(b | x_i) * logits_i[b]

        computed chunk by chunk: no (batch, seq, V) target is ever built.
        A chunk of positions (``chunk_elements`` logits; by default 16 MiB
        of float32 and at most 1/16 of the logits on CPU, 128 MiB elsewhere)
        gets its target rows as one dense float32 block, copied from the
        cached full rows (frequent contexts) or scattered from the non-zeros
        of the others; so temporary memory is a few chunk-sized blocks
        whatever the batch.  Differentiable in ``logits`` (any float
        dtype; computed in float32): the backward writes softmax(logits) - P,
        divided by the number of positions, straight into one gradient
        buffer shaped like ``logits``.  Non-contiguous logits are copied once.
        """
        if logits.dim() < 1 or logits.shape[:-1] != input_ids.shape:
            raise ValueError(f"logits {tuple(logits.shape)} must be input_ids "
                             f"{tuple(input_ids.shape)} + (vocab,)")
        if logits.shape[-1] < self.vocab_size:
            raise ValueError(f"logits have {logits.shape[-1]} columns, fewer "
                             f"than vocab_size={self.vocab_size}")
        rows = self._rows(input_ids.reshape(-1))
        n, width = rows.numel(), logits.shape[-1]
        if n == 0:
            raise ValueError("cross_entropy of an empty batch")
        if chunk_elements is None:
            if logits.device.type == "cpu":
                chunk_elements = max(2**16, min(CHUNK_ELEMENTS["cpu"],
                                                logits.numel() // 16))
            else:
                chunk_elements = CHUNK_ELEMENTS["other"]
        step = max(1, chunk_elements // width)
        starts = list(range(0, n, step))
        # Non-zeros to scatter per chunk, fetched in one sync up front so
        # that the chunk loop itself never waits for the device.
        if self._table is None:
            ends = torch.tensor([min(n, s + step) - 1 for s in starts],
                                device=rows.device)
            scatter = torch.cumsum(self._light_len[rows], 0)[ends]
            scatter = torch.diff(scatter, prepend=scatter.new_zeros(1)).tolist()
        else:
            scatter = [0] * len(starts)
        chunks = [(s, min(n, s + step), k) for s, k in zip(starts, scatter)]
        return _BigramCrossEntropy.apply(
            logits.reshape(-1, width), rows, self, chunks)

    # ----------------------------------------------------------- save / load
    def save(self, path: str | os.PathLike) -> None:
        """Write the counts to a safetensors file (atomically).

        Only plain tensors and string metadata are stored (no pickle), plus a
        SHA-256 of the tensor bytes so that :meth:`load` detects corruption.
        """
        if self._table is not None:
            tensors = {"table": self._table[: self.vocab_size + 1]}
        else:
            tensors = {"keys": self._keys, "counts": self._counts}
        tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        meta = {"format": _FORMAT, "version": _FORMAT_VERSION,
                "vocab_size": str(self.vocab_size), "storage": self.storage,
                "sha256": _digest(tensors)}
        from safetensors.torch import save_file
        tmp = f"{os.fspath(path)}.tmp{os.getpid()}"
        save_file(tensors, tmp, metadata=meta)
        os.replace(tmp, path)  # never leave a half-written file at `path`

    @classmethod
    def load(cls, path: str | os.PathLike,
             device: torch.device | str | None = None) -> "BigramModel":
        """Read a file written by :meth:`save` onto ``device`` (default CPU).

        Raises :class:`BigramFileError` if the file is truncated, corrupt or
        not a BigramModel file.
        """
        from safetensors import safe_open
        path = os.fspath(path)
        if not os.path.exists(path):
            raise FileNotFoundError(path)

        def bad(reason):
            return BigramFileError(
                f"{path} is not a valid BigramModel file ({reason}). It is "
                "probably truncated or corrupt: delete it and rebuild it with "
                "BigramModel.from_corpus(...).save(path).")

        try:
            with safe_open(path, framework="pt", device="cpu") as f:
                meta = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as err:  # safetensors raises several error types
            raise bad(f"unreadable: {err}") from err
        if meta.get("format") != _FORMAT:
            raise bad("no BigramModel metadata")
        if meta.get("version") != _FORMAT_VERSION:
            raise bad(f"unsupported version {meta.get('version')!r}")
        if meta.get("sha256") != _digest(tensors):
            raise bad("checksum mismatch")
        V = int(meta["vocab_size"])
        dev = torch.device("cpu") if device is None else torch.device(device)
        if meta.get("storage") == "dense":
            table = tensors["table"]
            if table.shape != (V + 1, V) or table.dtype != torch.int64:
                raise bad("table has the wrong shape or dtype")
            full = torch.zeros(V + 2, V, dtype=torch.int64, device=dev)
            full[: V + 1] = table.to(dev)
            return cls(V, table=full)
        keys, counts = tensors["keys"].to(dev), tensors["counts"].to(dev)
        if keys.shape != counts.shape or keys.dim() != 1:
            raise bad("keys and counts do not match")
        return cls(V, keys=keys, counts=counts)


class _BigramCrossEntropy(torch.autograd.Function):
    """Mean over positions of CE(bigram row, softmax(logits)), chunked.

    Forward keeps only the logsumexp of each position (n floats); backward
    recomputes softmax chunk by chunk directly in the gradient buffer and
    subtracts the target:  d CE_i / d logits_i = softmax(logits_i) - P_i.
    """

    @staticmethod
    def forward(ctx, logits, rows, model, chunks):
        n, V = logits.shape[0], model.vocab_size
        lse = torch.empty(n, device=logits.device, dtype=torch.float32)
        loss = torch.zeros((), device=logits.device, dtype=torch.float32)
        for s, e, n_scattered in chunks:
            x = logits[s:e].float()  # a view if float32, else a copy
            lse[s:e] = torch.logsumexp(x, dim=1)
            target = model._row_probs(rows[s:e], n_scattered)
            # sum_b P(b | a_i) x_i[b]; in place on our own copy of the rows,
            # and not as a matmul, which may run in TF32 on GPUs.
            dot = target.mul_(x[:, :V]).sum(1)
            loss += (lse[s:e] - dot).sum()
        ctx.save_for_backward(logits, rows, lse)
        ctx.model, ctx.chunks = model, chunks
        return loss / n

    @staticmethod
    def backward(ctx, grad_loss):
        logits, rows, lse = ctx.saved_tensors
        model, n, V = ctx.model, logits.shape[0], ctx.model.vocab_size
        grad = torch.empty_like(logits)
        scale = grad_loss.float() / n
        for s, e, n_scattered in ctx.chunks:
            # Work in float32: in the gradient buffer itself when it is
            # float32, else in a chunk-sized scratch that is then cast.
            g = grad[s:e]
            if g.dtype != torch.float32:
                g = torch.empty(g.shape, device=g.device, dtype=torch.float32)
            torch.sub(logits[s:e], lse[s:e].unsqueeze(1), out=g)
            g.exp_()
            g[:, :V] -= model._row_probs(rows[s:e], n_scattered)
            g.mul_(scale)
            if g.dtype != grad.dtype:
                grad[s:e] = g
        return grad, None, None, None


def _pair_keys(batch: torch.Tensor, V: int) -> torch.Tensor:
    """Flat keys a * V + b of every (context, next) pair in a (B, S) batch."""
    ctx = torch.empty_like(batch)
    ctx[:, 0] = V  # the start placeholder precedes each sequence
    ctx[:, 1:] = batch[:, :-1]
    return (ctx * V + batch).reshape(-1)


def _merge_counts(keys_a, counts_a, keys_b, counts_b):
    """Union of two sorted, duplicate-free key sets; counts of shared keys add."""
    keys, order = torch.sort(torch.cat([keys_a, keys_b]), stable=True)
    counts = torch.cat([counts_a, counts_b])[order]
    keys, inverse = torch.unique_consecutive(keys, return_inverse=True)
    return keys, torch.zeros_like(keys).index_add_(0, inverse, counts)


def _digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over names, dtypes, shapes and bytes of CPU tensors."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        if t.numel():
            h.update(t.view(torch.uint8).reshape(-1).numpy())
    return h.hexdigest()


def bigram_model(profile=None, device: torch.device | str | None = None,
                 progress: bool = True) -> BigramModel:
    """The bigram model of a profile's train split (tokenized with the model's own
    tokenizer), counted once and cached on disk; later calls load the file."""
    from .cache import cached, key_of
    from .corpus import load_corpus
    from .devices import default_device
    from .models import load_tokenizer
    from .profiles import get_profile

    p = get_profile(profile)
    device = device or default_device()
    key = key_of(_FORMAT_VERSION, p.key("model_id", "corpus", "seq_len", "n_train_seqs",
                                        "n_eval_seqs", "world"))

    def build(out):
        train = load_corpus(p, "train")
        model = BigramModel.from_corpus(train.split(1024), len(load_tokenizer(p)), device=device,
                                        progress=progress)
        model.save(out / "bigram.safetensors")
        return {"profile": p.name, "pairs": model.total_pairs, "nonzeros": model.nnz}

    return BigramModel.load(cached("bigram", key, build) / "bigram.safetensors", device=device)


# ---------------------------------------------------------------------------
# Chapter 1 helpers: what the counts say, sampling text, comparing with an LM.

__all__ += ["bigram_model", "bigram_counts", "unigram_counts", "context_counts", "zipf_fit",
            "bigram_generate", "surprisal_correlation", "lm_bigram_cross_entropy",
            "batch_bigram_cross_entropy"]

#: Largest (V + 1) * V table that bigram_counts makes dense (512 MiB of int64).
DENSE_COUNTS_MAX = 2**26


def bigram_counts(bigram: BigramModel) -> torch.Tensor:
    """The (V + 1, V) int64 count table C[a, b] of a bigram model, on its device.

    Row ``a`` counts the tokens that followed context ``a``; row ``V`` (the
    start placeholder) counts the first token of every sequence.  There is no
    backoff row: an unseen context is an all-zero row.  Meant for small
    vocabularies (the exercises, the tiny world): a table of more than
    ``DENSE_COUNTS_MAX`` cells is refused with a ValueError, use
    :func:`unigram_counts`, :func:`context_counts` or
    ``bigram.next_token_probs`` for a few rows instead.
    """
    V = bigram.vocab_size
    if (V + 1) * V > DENSE_COUNTS_MAX:
        raise ValueError(
            f"a dense (V + 1, V) count table at V = {V:,} has {(V + 1) * V:,} cells; "
            "bigram_counts is for small vocabularies: use unigram_counts(), "
            "context_counts() or bigram.next_token_probs(ids) for a few rows")
    if bigram._table is not None:
        return bigram._table[: V + 1].clone()
    out = torch.zeros((V + 1) * V, dtype=torch.int64, device=bigram.device)
    out[bigram._keys] = bigram._counts
    return out.view(V + 1, V)


def unigram_counts(bigram: BigramModel) -> torch.Tensor:
    """How often each token 0..V-1 occurred in the counted corpus, shape (V,).

    These are the column sums of the count table: every token is the next
    token of exactly one pair (the first one of the start context), so each
    occurrence is counted once.  Normalized, this is the backoff distribution.
    """
    V = bigram.vocab_size
    if bigram._table is not None:
        return bigram._table[: V + 1].sum(0)
    out = torch.zeros(V, dtype=torch.int64, device=bigram.device)
    return out.index_add_(0, bigram._keys % V, bigram._counts)


def context_counts(bigram: BigramModel) -> torch.Tensor:
    """How often each context 0..V occurred, shape (V + 1,): the row sums of the
    count table.  Entry V (the start placeholder) is the number of sequences;
    a 0 marks a context that was never seen (it backs off to the unigram row)."""
    return bigram._row_total[: bigram.vocab_size + 1].clone()


def zipf_fit(counts: torch.Tensor, lo: int = 10, hi: int = 1000) -> tuple[float, float]:
    """Fit log(count) = slope * log(rank) + intercept over ranks ``lo..hi``.

    ``counts``: any 1-D tensor of non-negative frequencies (order irrelevant);
    they are sorted in decreasing order, zeros dropped, and ranked from 1.
    Ranks beyond the number of non-zero counts are ignored.  Zipf's law says
    the slope is about -1.  Returns ``(slope, intercept)`` of the least-squares
    line in natural logs (``scipy.stats.linregress``).
    """
    from scipy import stats

    c = torch.as_tensor(counts).detach().double().cpu().reshape(-1)
    c = torch.sort(c[c > 0], descending=True).values
    if not 1 <= lo < hi:
        raise ValueError(f"need 1 <= lo < hi, got lo={lo}, hi={hi}")
    if c.numel() < lo + 1:
        raise ValueError(f"only {c.numel()} non-zero counts: cannot fit ranks {lo}..{hi}")
    ranks = torch.arange(1, c.numel() + 1, dtype=torch.float64)
    sel = slice(lo - 1, min(hi, c.numel()))
    fit = stats.linregress(ranks[sel].log().numpy(), c[sel].log().numpy())
    return float(fit.slope), float(fit.intercept)


def bigram_generate(bigram: BigramModel, prompt: torch.Tensor | None = None,
                    max_new_tokens: int = 20, *, temperature: float = 1.0,
                    n: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
    """Sample text from a bigram model: each new token is drawn from P(. | last token).

    ``prompt``: token ids, (seq,) or (batch, seq); ``None`` or empty starts
    from the start placeholder context (the first token is drawn from
    P(. | start)) and makes ``n`` samples.  Returns the prompt followed by
    ``max_new_tokens`` sampled ids, (batch, seq + max_new_tokens) int64 on
    the CPU (1-D in, 1-D out).

    ``temperature``: the next-token distribution is raised to the power
    1 / temperature and renormalized (the paper's generation code does the
    same); ``0`` means greedy (the most probable token, ties to the lowest id).
    ``generator``: a seeded ``torch.Generator`` makes the sample reproducible;
    sampling happens on the generator's device (CPU by default), so a seed
    gives the same text whatever device the bigram model lives on.
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    sample_device = generator.device if generator is not None else torch.device("cpu")
    if prompt is None:
        prompt = torch.zeros(n, 0, dtype=torch.int64)
    ids = bigram._ids(prompt, bigram.vocab_size).cpu()
    one_d = ids.dim() == 1
    if one_d:
        ids = ids.unsqueeze(0)
    if ids.dim() != 2:
        raise ValueError(f"prompt must be (seq,) or (batch, seq), got {tuple(ids.shape)}")
    out = [ids]
    last = ids[:, -1] if ids.shape[1] else torch.full((ids.shape[0],), bigram.start_id)
    for _ in range(max_new_tokens):
        p = bigram.next_token_probs(last.to(bigram.device)).to(sample_device, torch.float64)
        if temperature == 0:
            # A stable sort puts the lowest id first among equal maxima.
            nxt = torch.sort(p, dim=1, descending=True, stable=True).indices[:, 0]
        else:
            if temperature != 1:
                p = p.pow(1.0 / temperature)
            nxt = torch.multinomial(p, 1, generator=generator).squeeze(1)
        last = nxt.cpu()
        out.append(last.unsqueeze(1))
    result = torch.cat(out, dim=1)
    return result.squeeze(0) if one_d else result


def surprisal_correlation(model_bits, bigram_bits, inf: str = "max") -> float:
    """Pearson r between a model's and the bigram model's per-token surprisals.

    This is the paper's measure of how "bigram-like" a model or subnetwork is.
    Bigram surprisals are infinite where the bigram probability is 0, so
    infinities are handled as in the paper's code (``train_circuits.py``):

    * ``inf="max"``: every infinite value is replaced by the largest finite
      value of the same array (for both arrays);
    * ``inf="drop"`` (the paper's "dropinf"): positions with an infinite
      bigram surprisal are dropped; infinite model surprisals (rare: float
      underflow) are still replaced by the model's largest finite value.

    Inputs: tensors or arrays of the same shape (flattened). Uses
    ``scipy.stats.pearsonr`` in float64.
    """
    import numpy as np
    from scipy import stats

    def flat(x):
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().double().numpy()
        return np.asarray(x, dtype=np.float64).reshape(-1)

    m, b = flat(model_bits), flat(bigram_bits)
    for name, x in (("model_bits", m), ("bigram_bits", b)):  # pearsonr would return nan
        check_no_nan(name, x, "NaN surprisals come from NaN logits or weights; fix those, or "
                     "drop the NaN positions from both inputs", where="surprisal_correlation: ")
    if m.shape != b.shape:
        raise ValueError(f"surprisals differ in size: {m.size} model vs {b.size} bigram")
    if inf not in ("max", "drop"):
        raise ValueError(f"inf must be 'max' or 'drop', got {inf!r}")

    def fill(x):
        bad = np.isinf(x)
        if bad.any():
            if bad.all():
                raise ValueError("every surprisal is infinite: nothing to correlate")
            x = x.copy()
            x[bad] = x[~bad].max()
        return x

    m = fill(m)
    if inf == "max":
        b = fill(b)
    else:
        keep = ~np.isinf(b)
        m, b = m[keep], b[keep]
    if m.size < 2:
        raise ValueError("need at least two finite positions to correlate")
    return float(stats.pearsonr(m, b)[0])


@torch.no_grad()
def lm_bigram_cross_entropy(model, bigram: BigramModel, input_ids: torch.Tensor,
                            batch_size: int = 32, progress: bool = True) -> float:
    """Mean cross-entropy, in nats, from the bigram distribution to the LM's output.

    For every position i of every sequence (all of them, as in the paper's
    ``compute_correlation_metrics``), CE_i = -sum_b P_bigram(b | x_i) log
    p_LM(b | x_0..x_i): how well the LM's whole next-token distribution
    matches the bigram row, not only at the token that came.  This is the
    loss that mask training minimizes (Chapter 3); for the full model it is
    the starting point.  The LM runs on its own device in batches; each
    batch's logits go to the bigram model's device (no copy when they share
    one).  Returns a float.  Shows a progress bar over the batches
    (``progress=False``: none).
    """
    from .surprisal import lm_logits

    total, n = 0.0, 0
    for x, logits in lm_logits(model, input_ids, batch_size, progress, "bigram cross-entropy"):
        total += batch_bigram_cross_entropy(bigram, logits, x) * x.numel()
        n += x.numel()
    if n == 0:
        raise ValueError("lm_bigram_cross_entropy of no sequences")
    return total / n


def batch_bigram_cross_entropy(bigram: BigramModel, logits: torch.Tensor,
                               input_ids: torch.Tensor) -> float:
    """Mean cross-entropy (nats) from the bigram rows of ``input_ids`` to one batch of
    LM ``logits``; the logits move to the bigram model's device (no copy when they agree)."""
    return float(bigram.cross_entropy(logits.to(bigram.device), input_ids.to(bigram.device)))
