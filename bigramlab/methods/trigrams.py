"""Trigram model: next-token distributions given the previous two tokens, with back-off.

Chang & Bergen 2025 study bigram subnetworks (section 3.1); their code's n-gram
model also runs at n = 3, and Chapter 9 trains trigram subnetworks with the
same recipe. This is that model for n = 3, on the bigram model's counting
engine (``ngrams``) and row store (``rowstore``), not a copy of them.

* **Counting.** Triples (a, b, c) of consecutive tokens inside each sequence,
  with the start placeholder id V before the start (``ngrams.count_ngrams``,
  n = 3): a sequence x0 x1 x2 ... gives (V, V, x0), (V, x0, x1), (x0, x1, x2),
  ... The bigram counts are the same counts summed over a
  (``ngrams.marginal_counts``), so one pass over the corpus gives both, and
  the bigram level is exactly Chapter 1's ``BigramModel``.
* **Pruning** (``min_count`` = k; default 2, as the paper's code prunes):
  trigrams seen fewer than k times are dropped and each context's row is
  renormalised over what is left, so an unseen (or pruned) continuation of a
  seen context has probability 0. k = 1 keeps every trigram. We prune once,
  after exact counting; the paper's code also prunes every ``prune_every``
  sequences while it counts (1M by default, more than the 500k sequences it
  trains on, so with its defaults it too prunes once, at the end). Only the
  trigram table is pruned: the bigram and unigram levels are the exact
  bigram model (the paper's code prunes every level at the same k).
* **Back-off**, for the distribution after the context (a, b); a whole row
  comes from one level, nothing is mixed, interpolated or discounted:

  1. (a, b) seen, i.e. at least one trigram (a, b, .) kept after pruning: the
     trigram row P(c | a, b) = C(a, b, c) / sum_c' C(a, b, c');
  2. else the bigram row of b, P(c | b) (a context all of whose trigrams
     were pruned counts as unseen, as in the paper's code, which deletes it);
  3. else (b never seen as a context) the unigram distribution;
  4. else (no data at all) the uniform 1 / V.

  Levels 2-4 are ``BigramModel``'s own rule.
* **The start.** Token t is predicted from (x[t-2], x[t-1]), with V for
  positions before the start: x0 from (V, V) (seen once per sequence), x1
  from (V, x0), which backs off to the bigram row of x0 when pruned.

Storage is always sparse: there are (V + 1)^2 contexts (2.5 billion at
V = 50,277). The kept trigram rows (one per seen context, in sorted context
order) and the V + 2 bigram rows (contexts 0..V and the backoff row, copied
from the bigram model: 28 bytes more per distinct pair) are one
``RowStore.of_rows``, and a context is found by a binary search in the sorted
seen contexts; so every query is "look up a row", and the cross-entropy is the
bigram model's chunked sparse one (``sparse_ce``). Everything is a torch
tensor on the model's device (CPU or GPU). Defined in Chapter 9.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import torch

from ..plumbing.inputs import check_int, check_token_ids
from .bigrams import BigramModel
from .ngrams import (DENSE_MAX_ENTRIES, FLUSH_PAIRS, NgramCounts, count_ngrams,
                     marginal_counts)
from .rowstore import RowStore
from .sparse_ce import chunked_cross_entropy

__all__ = ["TrigramModel", "TrigramFileError", "FORMAT_VERSION", "MIN_COUNT"]

_FORMAT = "bigramlab.TrigramModel"
#: Version of the saved file format (part of the cache key of a profile's trigram model).
FORMAT_VERSION = "1"
#: The paper's code prunes trigrams seen fewer than this many times.
MIN_COUNT = 2
_WHY_K = "trigrams seen fewer than min_count times are pruned; 1 keeps them all"


class TrigramFileError(ValueError):
    """A saved TrigramModel file is truncated, corrupt, foreign or of another corpus."""


class TrigramModel:
    """Trigram next-token distributions with back-off to a bigram model.

    Build one with :meth:`from_corpus`, :meth:`from_counts` or :meth:`load`.
    Token ids are ``0 .. V-1``; the start placeholder is ``V``
    (``model.start_id``). ``model.bigram`` is the bigram model it backs off to.
    """

    def __init__(self, bigram: BigramModel, keys: torch.Tensor, counts: torch.Tensor,
                 min_count: int, tokens: int):
        """Wrap kept trigram counts (sorted unique keys ``(a (V + 1) + b) V + c``, on the
        bigram model's device) and their backoff bigram model. ``tokens``: how many
        trigrams were counted before pruning. Use from_corpus, from_counts or load."""
        V = self.vocab_size = bigram.vocab_size
        self.bigram, self.min_count, self.tokens = bigram, int(min_count), int(tokens)
        self._keys, self._counts = keys, counts
        # Seen contexts a (V + 1) + b, sorted; trigram row r is context _contexts[r].
        self._contexts, inverse = torch.unique_consecutive(keys // V, return_inverse=True)
        R = self.n_contexts = self._contexts.numel()
        b_keys, b_counts = bigram.all_rows()  # rows 0..V + 1, the backoff row included
        # One store: the trigram rows 0..R-1, then the bigram rows R..R + V + 1.
        self._store = RowStore.of_rows(V, torch.cat([inverse * V + keys % V, b_keys + R * V]),
                                       torch.cat([counts, b_counts]), R + V + 2)

    @classmethod
    def from_corpus(cls, batches: Iterable[torch.Tensor], vocab_size: int,
                    device: torch.device | str | None = None, progress: bool = False, *,
                    min_count: int = MIN_COUNT, dense_max_entries: int = DENSE_MAX_ENTRIES,
                    flush_pairs: int = FLUSH_PAIRS) -> "TrigramModel":
        """Count trigrams (and, from them, bigrams) from an iterable of token-id batches.

        ``batches`` yields integer tensors (batch, seq) (1-D: one sequence), consumed
        one at a time; sequences never continue across rows or batches. ``min_count``:
        prune trigrams seen fewer times (1: keep all). ``device``, ``dense_max_entries``
        (storage of the counts and of the bigram model) and ``flush_pairs`` are
        ``BigramModel.from_corpus``'s; ``model.bigram`` equals what it counts."""
        check_int("min_count", min_count, 1, why=_WHY_K, where="TrigramModel.from_corpus: ")
        counts = count_ngrams(batches, vocab_size, 3, device, progress,
                              dense_max_entries=dense_max_entries, flush_pairs=flush_pairs,
                              desc="counting trigrams")
        return cls.from_counts(counts, min_count, dense_max_entries=dense_max_entries)

    @classmethod
    def from_counts(cls, counts: NgramCounts, min_count: int = MIN_COUNT,
                    bigram: BigramModel | None = None, *,
                    dense_max_entries: int = DENSE_MAX_ENTRIES) -> "TrigramModel":
        """The trigram model of counted, unpruned triples (``count_ngrams`` with n = 3).

        ``bigram``: the bigram model of the same corpus to back off to (None: made
        from these counts, dense when (V + 1) V <= ``dense_max_entries``); it must
        have counted as many pairs as there are trigrams. Pruning happens here."""
        where = "TrigramModel.from_counts: "
        if not isinstance(counts, NgramCounts) or counts.n != 3:
            got = f"n = {counts.n}" if isinstance(counts, NgramCounts) else type(counts).__name__
            raise ValueError(f"{where}needs trigram counts, got {got}: count them with "
                             "count_ngrams(batches, vocab_size, 3)")
        check_int("min_count", min_count, 1, why=_WHY_K, where=where)
        keys, c = counts.sparse()
        tokens = int(c.sum())
        if bigram is None:
            bigram = BigramModel.from_counts(marginal_counts(
                counts, dense_max_entries=dense_max_entries, spare_rows=1))
        elif bigram.vocab_size != counts.vocab_size or bigram.total_pairs != tokens:
            raise ValueError(f"{where}the bigram model (V = {bigram.vocab_size:,}, "
                             f"{bigram.total_pairs:,} pairs) is not of the corpus of these "
                             f"trigrams (V = {counts.vocab_size:,}, {tokens:,} trigrams): pass "
                             "the bigram model of the same corpus, or bigram=None")
        if min_count > 1:
            keep = c >= min_count
            keys, c = keys[keep], c[keep]
        return cls(bigram, keys.to(bigram.device), c.to(bigram.device), min_count, tokens)

    # ------------------------------------------------------------ properties
    @property
    def start_id(self) -> int:
        """Id of the start placeholder (= vocab_size)."""
        return self.vocab_size

    @property
    def device(self) -> torch.device:
        return self._store.device

    @property
    def nnz(self) -> int:
        """Distinct trigrams kept (after pruning)."""
        return self._keys.numel()

    @property
    def ngram_counts(self) -> NgramCounts:
        """The kept trigram counts (sparse; a view, not a copy: treat it as read-only)."""
        return NgramCounts(self.vocab_size, 3, keys=self._keys, counts=self._counts)

    @property
    def kept_tokens(self) -> int:
        """Trigram occurrences kept (after pruning); ``tokens`` were counted."""
        return int(self._counts.sum())

    def __repr__(self) -> str:
        return (f"TrigramModel(vocab_size={self.vocab_size}, min_count={self.min_count}, "
                f"trigrams={self.tokens}, distinct_kept={self.nnz}, "
                f"contexts={self.n_contexts}, device={self.device})")

    def to(self, device: torch.device | str) -> "TrigramModel":
        """Move every tensor (and the bigram model) to ``device``, in place; returns self."""
        self.bigram.to(device)
        self._store.to(device)
        self._keys, self._counts = self._keys.to(device), self._counts.to(device)
        self._contexts = self._contexts.to(device)
        return self

    # ----------------------------------------------------------- row access
    def _context_rows(self, prev2, prev1) -> tuple[torch.Tensor, torch.Tensor]:
        """(store row answering after each context (prev2, prev1), whether it is a
        trigram row), broadcast; ids checked to be in 0..V (V: the start placeholder)."""
        V, R = self.vocab_size, self.n_contexts
        a, b = (self._store.checked_ids(x, V + 1) for x in (prev2, prev1))
        a, b = torch.broadcast_tensors(a, b)
        ctx = a * (V + 1) + b
        if R:
            at = torch.searchsorted(self._contexts, ctx).clamp_(max=R - 1)
            found = self._contexts[at] == ctx
        else:
            at, found = torch.zeros_like(ctx), torch.zeros_like(ctx, dtype=torch.bool)
        return torch.where(found, at, R + self.bigram.context_rows(b)), found

    def _position_rows(self, ids: torch.Tensor) -> torch.Tensor:
        """(batch, seq) store rows of the distribution of the token after each position
        t of ``ids``: context (x[t-1], x[t]), with x[-1] the start placeholder."""
        prev2 = torch.cat([torch.full_like(ids[:, :1], self.vocab_size), ids[:, :-1]], 1)
        return self._context_rows(prev2, ids)[0]

    def _checked_ids(self, input_ids, ndim, where) -> torch.Tensor:
        if not isinstance(input_ids, torch.Tensor):
            input_ids = torch.as_tensor(input_ids)
        ids = check_token_ids(input_ids, self.vocab_size, ndim=ndim, where=where)
        return ids.to(self.device, torch.int64)

    # --------------------------------------------------------------- queries
    def level(self, prev2, prev1) -> torch.Tensor:
        """Which level answers after the context (prev2, prev1), elementwise: 3
        (trigram row), 2 (bigram row of prev1), 1 (unigram), 0 (uniform), int64."""
        rows, found = self._context_rows(prev2, prev1)
        bigram_row = rows - self.n_contexts
        lower = torch.where(bigram_row <= self.vocab_size, 2,
                            1 if self.bigram.total_pairs else 0)
        return torch.where(found, 3, lower)

    def prob(self, prev2, prev1, nxt) -> torch.Tensor:
        """P(nxt | prev2, prev1), elementwise (broadcasting), back-off applied; float32.
        Contexts may be the start id V; 0 for an unseen continuation of a seen context."""
        nxt = self._store.checked_ids(nxt, self.vocab_size)
        return self._store.prob_at(self._context_rows(prev2, prev1)[0], nxt)

    def next_token_probs(self, prev2, prev1) -> torch.Tensor:
        """Dense distributions P(. | prev2, prev1), float32: shape (*broadcast shape, V).
        Meant for a handful of contexts: n * V floats are made."""
        rows = self._context_rows(prev2, prev1)[0]
        return self._store.row_probs(rows.reshape(-1)).reshape(*rows.shape, self.vocab_size)

    def top_next(self, prev2, prev1, k: int = 10):
        """The k most probable tokens after (prev2, prev1): (probs, ids), sorted by
        probability, ties by ascending id."""
        check_int("k", k, 1, self.vocab_size, where="TrigramModel.top_next: ")
        probs, ids = torch.sort(self.next_token_probs(prev2, prev1), dim=-1, descending=True,
                                stable=True)
        return probs[..., :k], ids[..., :k]

    def surprisal(self, input_ids, start: bool = False) -> torch.Tensor:
        """Trigram surprisal, in bits, of each token given the two before it.

        ``input_ids`` (batch, seq) -> (batch, seq - 1): entry [i, t] is
        -log2 P(x[t + 1] | x[t - 1], x[t]) with x[-1] = V, aligned with a language
        model's logits[:, :-1]. ``start=True``: (batch, seq), the first column
        -log2 P(x[0] | V, V). Probability 0 gives ``inf``. 1-D in, 1-D out."""
        ids = self._checked_ids(input_ids, (1, 2), "TrigramModel.surprisal: ")
        one_d = ids.dim() == 1
        if one_d:
            ids = ids.unsqueeze(0)
        rows, nxt = self._position_rows(ids)[:, :-1], ids[:, 1:]
        if start:
            first = self._context_rows(self.vocab_size, self.vocab_size)[0]
            rows, nxt = torch.cat([first.expand(len(ids), 1), rows], 1), ids
        out = 0.0 - torch.log2(self._store.prob_at(rows, nxt))  # "0 -": p = 1 gives +0
        return out.squeeze(0) if one_d else out

    def cross_entropy(self, logits: torch.Tensor, input_ids, *,
                      chunk_elements: int | None = None) -> torch.Tensor:
        """Mean cross-entropy, in nats, from the trigram targets to softmax(logits).

        ``logits``: (batch, seq, V') with V' >= V (columns beyond V are cut off);
        logits[:, i] predicts token i + 1, so its target is the row after
        (input_ids[:, i - 1], input_ids[:, i]) (the start placeholder for i = 0),
        back-off applied. Every position is averaged, the last one included.
        Computed as ``BigramModel.cross_entropy`` (``sparse_ce``): no
        (batch, seq, V) target is built; differentiable in ``logits``."""
        where = "TrigramModel.cross_entropy: "
        ids = self._checked_ids(input_ids, (2,), where)
        if logits.dim() != 3 or logits.shape[:-1] != ids.shape:
            raise ValueError(f"{where}logits {tuple(logits.shape)} must be input_ids "
                             f"{tuple(ids.shape)} + (vocab,): pass the model's logits for "
                             "these input_ids")
        if logits.shape[-1] < self.vocab_size:
            raise ValueError(f"{where}logits have {logits.shape[-1]} columns, fewer than "
                             f"vocab_size = {self.vocab_size}: use the trigram model of "
                             "the LM's own tokenizer")
        logits = logits[..., :self.vocab_size]  # padding columns never enter the softmax
        rows = self._position_rows(ids).reshape(-1)
        if rows.numel() == 0:
            raise ValueError(f"{where}an empty batch has no cross-entropy: pass at least "
                             "one token")
        return chunked_cross_entropy(logits.reshape(-1, logits.shape[-1]), rows,
                                     self._store.row_probs, self.vocab_size,
                                     self._store.scatter_sizes(rows), chunk_elements)

    # ----------------------------------------------------------- save / load
    def save(self, path: str | os.PathLike) -> None:
        """Write the kept trigram counts to a safetensors file, atomically, with a
        checksum (``NgramCounts.save``); the bigram model is saved on its own."""
        self.ngram_counts.save(
            path, _FORMAT, FORMAT_VERSION,
            {"min_count": str(self.min_count), "tokens": str(self.tokens)})

    @classmethod
    def load(cls, path: str | os.PathLike, bigram: BigramModel) -> "TrigramModel":
        """Read a file written by :meth:`save` onto ``bigram``'s device, backing off to
        ``bigram`` (the bigram model of the same corpus). Raises
        :class:`TrigramFileError` for a truncated, corrupt or foreign file, or one
        counted on another corpus than ``bigram``."""
        c = NgramCounts.load(path, _FORMAT, FORMAT_VERSION, TrigramFileError, bigram.device)
        tokens = int(c.meta.get("tokens", -1))
        if c.n != 3 or c.table is not None or "min_count" not in c.meta:
            raise TrigramFileError(f"{path} is not a valid TrigramModel file: delete it and "
                                   "rebuild it with TrigramModel.from_corpus(...).save(path)")
        if c.vocab_size != bigram.vocab_size or tokens != bigram.total_pairs:
            raise TrigramFileError(
                f"{path} was counted on another corpus (V = {c.vocab_size:,}, {tokens:,} "
                f"trigrams) than this bigram model (V = {bigram.vocab_size:,}, "
                f"{bigram.total_pairs:,} pairs): load it with the bigram model of its corpus")
        return cls(bigram, c.keys, c.counts, int(c.meta["min_count"]), tokens)

