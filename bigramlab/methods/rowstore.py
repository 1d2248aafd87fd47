"""Row storage of next-token distributions: the data structure under the bigram model.

A ``RowStore`` holds counts of (context, next token) pairs over ``V`` tokens
and ``V + 1`` contexts (ids ``0 .. V - 1`` and the start placeholder ``V``)
and reads them as probability rows ``P(. | row)``. Rows ``0 .. V`` are the
contexts; one extra row, ``V + 1``, is the backoff (unigram) distribution,
the column sums of the counts (uniform when there are none). A context never
seen is answered by the backoff row (``_row_of``), so the backoff rule lives
in one place.

* **dense** (small vocabularies): a (V + 2, V) int64 table and its float32
  probabilities, 12 bytes a cell (192 MiB at V = 4095);
* **sparse**: the counting engine's sorted keys ``a * V + b`` with counts,
  plus per non-zero its column and float32 probability (28 bytes per distinct
  pair) and CSR row pointers; the few rows with at least ``dense_row_share``
  x V non-zeros (the frequent contexts) are also cached as dense float32 rows,
  because copying one is cheaper than scattering that many non-zeros.

Both give identical answers. ``BigramModel`` (``bigrams``) is a RowStore plus
the bigram reading of it: queries, cross-entropy, files. ``RowStore.of_rows``
is the sparse store alone, for rows that are not one per context: the trigram
model (``trigrams``, Chapter 9) keeps its trigram rows and the bigram rows it
backs off to in one. Defined in Chapter 1.
"""

from __future__ import annotations

import torch

from .ngrams import NgramCounts

__all__ = ["RowStore"]


class RowStore:
    """Counted (context, next token) pairs read as probability rows (see the module)."""

    #: Sparse storage: rows with at least this share of V non-zeros are also
    #: cached as dense float32 rows (a speed/memory trade-off, no effect on
    #: the answers).
    dense_row_share = 1 / 8

    def __init__(self, vocab_size: int, *, table: torch.Tensor | None = None,
                 keys: torch.Tensor | None = None,
                 counts: torch.Tensor | None = None):
        """Wrap already counted pairs (a BigramModel: use from_corpus or load instead).

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

    @property
    def ngram_counts(self) -> NgramCounts:
        """The counted pairs (a view, not a copy: treat it as read-only)."""
        if self._table is not None:
            return NgramCounts(self.vocab_size, 2,
                               table=self._table[: self.vocab_size + 1].view(-1))
        return NgramCounts(self.vocab_size, 2, keys=self._keys, counts=self._counts)

    def _derive(self) -> None:
        """Add the backoff row and precompute what queries read.

        Dense: a (V + 2, V) int64 table and float32 probabilities (12 bytes a
        cell, 192 MiB at most), faster to read.  Sparse: per non-zero its key,
        count, column and float32 probability (28 bytes per distinct pair), CSR
        row pointers, and the rows with at least ``dense_row_share * V``
        non-zeros also as dense float32 rows."""
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
            self._index_sparse(keys, counts, V + 2)
            # The real pairs are a prefix: keep views, not a second copy.
            self._keys, self._counts = keys[: self.nnz], counts[: self.nnz]
        # Which row answers for each context 0..V (itself, or the backoff row).
        ctx = torch.arange(V + 1, device=self.device)
        self._row_of = torch.where(self._row_total[: V + 1] > 0, ctx, V + 1)

    @classmethod
    def of_rows(cls, vocab_size: int, keys: torch.Tensor, counts: torch.Tensor,
                n_rows: int) -> "RowStore":
        """A sparse store of ``n_rows`` given rows and nothing else: ``keys`` (sorted,
        unique int64 ``row * V + b``, rows below ``n_rows``) and their ``counts``. No
        backoff row is added and no context is mapped to a row: the caller says which
        row answers (the trigram model keeps its trigram and bigram rows in one)."""
        self = cls.__new__(cls)
        self.vocab_size = int(vocab_size)
        self._table = None
        self.nnz, self.total_pairs = keys.numel(), int(counts.sum())
        self._index_sparse(keys, counts, n_rows)
        self._keys, self._counts = keys, counts
        self._row_of = None
        return self

    def _index_sparse(self, keys: torch.Tensor, counts: torch.Tensor, n_rows: int) -> None:
        """Precompute what queries read, for sorted unique ``keys`` of ``n_rows`` rows."""
        V = self.vocab_size
        rows = keys // V
        self._row_total = torch.zeros(n_rows, dtype=torch.int64,
                                      device=keys.device)
        self._row_total.index_add_(0, rows, counts)
        # Row r's non-zeros are keys[row_ptr[r] : row_ptr[r + 1]].
        self._row_ptr = torch.searchsorted(
            keys, torch.arange(n_rows + 1, device=keys.device) * V)
        self._keys_all, self._counts_all = keys, counts
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
        self._dense_slot = torch.full((n_rows,), n_full, dtype=torch.int64,
                                      device=keys.device)
        self._dense_slot[slots] = torch.arange(n_full, device=keys.device)
        self._light_len = torch.where(full, 0, length)  # to scatter
        self._dense_probs = torch.zeros(n_full + 1, V, device=keys.device)
        self._scatter_rows(self._dense_probs, slots, length[slots])

    @property
    def device(self) -> torch.device:
        """Device the counts live on (and answers are computed on)."""
        return (self._table if self._table is not None else self._keys).device

    @property
    def storage(self) -> str:
        """'dense' or 'sparse'."""
        return "dense" if self._table is not None else "sparse"

    def to(self, device: torch.device | str):
        """Move every tensor to ``device``, in place; returns self."""
        for name, value in list(vars(self).items()):
            if isinstance(value, torch.Tensor):
                setattr(self, name, value.to(device))
        if self._table is None:  # keep the real pairs a view, not a copy
            self._keys = self._keys_all[: self.nnz]
            self._counts = self._counts_all[: self.nnz]
        return self

    def checked_ids(self, ids, high: int) -> torch.Tensor:
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

    def all_rows(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(keys ``row * V + b``, counts) of every stored row, the backoff row included,
        sparse: sorted unique int64 keys (the trigram model copies its bigram rows)."""
        if self._table is None:
            return self._keys_all, self._counts_all
        flat = self._table.reshape(-1)
        keys = flat.nonzero().squeeze(1)
        return keys, flat[keys]

    def prob_at(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """P(col | row), elementwise over broadcast (rows, cols), float32."""
        rows, cols = torch.broadcast_tensors(rows, cols)
        if self._table is not None:
            count = self._table[rows, cols]
        else:
            # Keys are sorted, so a pair lookup is one binary search.
            query = rows * self.vocab_size + cols
            keys = self._keys_all
            at = torch.searchsorted(keys, query).clamp_(max=keys.numel() - 1)
            count = torch.where(keys[at] == query, self._counts_all[at], 0)
        return count.float() / self._row_total[rows].float()

    def row_probs(self, rows: torch.Tensor, n_scattered: int | None = None
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

    def scatter_sizes(self, rows: torch.Tensor) -> torch.Tensor | None:
        """Per row of ``rows``, how many non-zeros ``row_probs`` scatters for it (rows cached
        dense count 0): what ``sparse_ce.chunked_cross_entropy`` sums per chunk up front.
        None for a dense store, which scatters nothing."""
        return None if self._table is not None else self._light_len[rows]

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
