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
and stored *sparsely* as sorted int64 keys ``a * V + b`` with their counts.
Small vocabularies (``(V + 1) * V <= dense_max_entries``, 2**24 cells =
128 MiB of int64 by default, i.e. V <= 4095) use a dense table, which is
faster to count into and to read.  Both give identical answers.

Internally the unigram backoff distribution is stored as one extra row,
``V + 1``, after the start row, and every context is mapped to the row that
answers for it (itself if it was seen, else row ``V + 1``).  So the backoff
rule is applied in exactly one place, and every query below is "look up a
row".

Everything is a torch tensor on ``model.device``; nothing calls ``.cuda()``
or goes through numpy, so the same code counts and answers on CPU or GPU.
Probabilities, surprisals and entropies are returned as float32.
"""

from __future__ import annotations

import hashlib
import math
import os
from typing import Iterable

import torch

__all__ = ["BigramModel", "BigramFileError", "DENSE_MAX_ENTRIES"]

#: Largest table, in cells ((V + 1) * V), that is counted and kept dense.
DENSE_MAX_ENTRIES = 2**24
#: Pairs buffered while counting before they are folded into the counts.
FLUSH_PAIRS = 2**23
#: Elements of logits (positions x vocabulary) handled per chunk by
#: cross_entropy; bounds its temporary memory (16 MiB of float32).
CHUNK_ELEMENTS = 2**22

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
            nonlocal table, keys, counts, buffer, buffered
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
            from tqdm.auto import tqdm
            batches = tqdm(batches, desc="counting bigrams", unit="batch")
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
            lo, hi = batch.min().item(), batch.max().item()
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
            length = self._row_ptr[1:] - self._row_ptr[:-1]
            full = (length >= self.dense_row_share * V).nonzero().squeeze(1)
            self._dense_slot = torch.full((V + 2,), -1, dtype=torch.int64,
                                          device=keys.device)
            self._dense_slot[full] = torch.arange(full.numel(),
                                                  device=keys.device)
            self._dense_probs = self._scatter_rows(
                full, torch.arange(full.numel(), device=keys.device),
                torch.zeros(full.numel(), V, device=keys.device))
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
        return self

    # ----------------------------------------------------------- row access
    def _rows(self, contexts: torch.Tensor) -> torch.Tensor:
        """Row index answering for each context id (0..V), backoff applied."""
        contexts = torch.as_tensor(contexts, device=self.device)
        if contexts.dtype.is_floating_point or contexts.dtype == torch.bool:
            raise ValueError("token ids must be integers")
        contexts = contexts.long()
        if contexts.numel() and (contexts.min() < 0
                                 or contexts.max() > self.vocab_size):
            raise ValueError(f"context ids must be in [0, {self.vocab_size}]")
        return self._row_of[contexts]

    def _check_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        tokens = torch.as_tensor(tokens, device=self.device)
        if tokens.dtype.is_floating_point or tokens.dtype == torch.bool:
            raise ValueError("token ids must be integers")
        tokens = tokens.long()
        if tokens.numel() and (tokens.min() < 0
                               or tokens.max() >= self.vocab_size):
            raise ValueError(f"token ids must be in [0, {self.vocab_size})")
        return tokens

    def _row_probs(self, rows: torch.Tensor) -> torch.Tensor:
        """Dense float32 probability rows P(. | row), shape (len(rows), V).

        Rows cached dense are copied; the others are scattered from their
        non-zeros (each has fewer than V * dense_row_share of them).
        """
        slot = self._dense_slot[rows]
        cached = slot >= 0
        if bool(cached.all()):
            return self._dense_probs[slot]
        out = torch.zeros(rows.numel(), self.vocab_size, device=self.device)
        hit = cached.nonzero().squeeze(1)
        out[hit] = self._dense_probs[slot[hit]]
        self._scatter_rows(rows, (~cached).nonzero().squeeze(1), out)
        return out

    def _scatter_rows(self, rows: torch.Tensor, which: torch.Tensor,
                      out: torch.Tensor) -> torch.Tensor:
        """Write P(. | rows[i]) into out[i] for i in ``which``, from the
        sparse non-zeros (out[i] must be zero beforehand)."""
        seg, cols, probs = self._gather_rows(rows[which])
        out.view(-1)[which[seg] * self.vocab_size + cols] = probs
        return out

    def _gather_rows(self, rows: torch.Tensor):
        """Non-zeros of several rows of the sparse table, concatenated.

        Returns (seg, cols, probs): non-zero j belongs to ``rows[seg[j]]``,
        sits in column ``cols[j]`` and has probability ``probs[j]``.  This is
        a ragged gather: row i contributes the storage slice
        ``row_ptr[r_i] : row_ptr[r_i + 1]``, and non-zero j of the output maps
        to storage index ``j + (row_ptr[r_i] - first output slot of row i)``.
        """
        start = self._row_ptr[rows]
        length = self._row_ptr[rows + 1] - start
        total = int(length.sum())
        seg = torch.repeat_interleave(
            torch.arange(rows.numel(), device=rows.device), length,
            output_size=total)
        shift = start - (torch.cumsum(length, 0) - length)
        index = torch.arange(total, device=rows.device) + shift[seg]
        return seg, self._cols[index], self._probs[index]

    # --------------------------------------------------------------- queries
    def prob(self, cur: torch.Tensor, nxt: torch.Tensor) -> torch.Tensor:
        """P(nxt | cur), elementwise (broadcasting) over pairs of ids.

        ``cur`` may be a token id or the start id V.  Returns float32
        probabilities (0 for an unseen pair in a seen context).
        """
        cur = torch.as_tensor(cur, device=self.device)
        nxt = self._check_tokens(nxt)
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
        ids = self._check_tokens(input_ids)
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
            p = self._table.float() / self._row_total.float().unsqueeze(1)
            h = 0.0 - torch.xlogy(p, p).sum(1)  # xlogy: 0 log 0 = 0
        else:
            rows = self._keys_all // self.vocab_size
            h = torch.zeros(self.vocab_size + 2, device=self.device)
            h.index_add_(0, rows, -torch.xlogy(self._probs, self._probs))
        return h[self._row_of] / _LN2

    # --------------------------------------------------------- cross-entropy
    def cross_entropy(self, logits: torch.Tensor, input_ids: torch.Tensor, *,
                      chunk_elements: int = CHUNK_ELEMENTS) -> torch.Tensor:
        """Mean cross-entropy, in nats, from bigram targets to softmax(logits).

        ``logits``: (batch, seq, V') with V' >= V (columns beyond V, such as
        an embedding's padding rows, get target probability 0); logits[:, i]
        predicts token i + 1 from tokens <= i, so its target is the bigram
        row P(. | input_ids[:, i]).  All batch * seq positions are averaged:

            CE_i = logsumexp(logits_i) - sum_b P(b | x_i) * logits_i[b]

        computed chunk by chunk: no (batch, seq, V) target is ever built.
        A chunk of positions (``chunk_elements`` logits, 16 MiB of float32 by
        default) gets its target rows as one dense float32 block, copied
        from the cached full rows (frequent contexts) or scattered from the
        non-zeros of the others; so temporary memory is a few chunk-sized
        blocks whatever the batch.  Differentiable in ``logits`` (any float
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
        rows = self._rows(self._check_tokens(input_ids).reshape(-1))
        if rows.numel() == 0:
            raise ValueError("cross_entropy of an empty batch")
        step = max(1, chunk_elements // logits.shape[-1])
        return _BigramCrossEntropy.apply(
            logits.reshape(-1, logits.shape[-1]), rows, self, step)

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
    def forward(ctx, logits, rows, model, step):
        n, V = logits.shape[0], model.vocab_size
        lse = torch.empty(n, device=logits.device, dtype=torch.float32)
        loss = torch.zeros((), device=logits.device, dtype=torch.float32)
        for s in range(0, n, step):
            x = logits[s:s + step].float()  # a view if float32, else a copy
            lse[s:s + step] = torch.logsumexp(x, dim=1)
            target = model._row_probs(rows[s:s + step])
            # sum_b P(b | a_i) x_i[b] as a batch of dot products (no temp).
            dot = torch.einsum("nv,nv->n", target, x[:, :V])
            loss += (lse[s:s + step] - dot).sum()
        ctx.save_for_backward(logits, rows, lse)
        ctx.model, ctx.step = model, step
        return loss / n

    @staticmethod
    def backward(ctx, grad_loss):
        logits, rows, lse = ctx.saved_tensors
        model, step = ctx.model, ctx.step
        n, V = logits.shape[0], model.vocab_size
        grad = torch.empty_like(logits)
        scale = grad_loss.float() / n
        for s in range(0, n, step):
            # Work in float32: in the gradient buffer itself when it is
            # float32, else in a chunk-sized scratch that is then cast.
            g = grad[s:s + step]
            if g.dtype != torch.float32:
                g = torch.empty(g.shape, device=g.device, dtype=torch.float32)
            torch.sub(logits[s:s + step], lse[s:s + step].unsqueeze(1), out=g)
            g.exp_()
            g[:, :V] -= model._row_probs(rows[s:s + step])
            g.mul_(scale)
            if g.dtype != grad.dtype:
                grad[s:s + step] = g
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
