"""Bigram model: next-token distributions counted from a corpus, and what follows from them.

Chang & Bergen 2025, section 3.1:

* Pairs (a, b) of consecutive tokens are counted inside each training
  sequence (``ngrams.count_ngrams`` with n = 2).  The first token of a
  sequence is counted after a *start placeholder* context whose id is
  ``vocab_size`` (as in the paper's code), so there are ``vocab_size + 1``
  contexts and ``vocab_size`` next tokens.
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

Storage.  The table is kept dense for small vocabularies and sparse for
large ones (2.5 billion cells at V = 50,277, of which a corpus fills a few
million); both give identical answers.  The unigram backoff is one extra row
and every context is mapped to the row that answers for it, so every query
below is "look up a row" (``rowstore.RowStore``, which BigramModel extends).

Everything is a torch tensor on the model's device; nothing pins a device by
name or goes through numpy, so the same code counts and answers on CPU or
GPU.  Probabilities, surprisals and entropies are returned as float32.
Measures that compare the bigram model with an LM (correlation,
cross-entropy) are in ``metrics``.  Defined in Chapter 1.
"""

from __future__ import annotations

import math
import os
from typing import Iterable

import torch

from ..plumbing.inputs import check_token_ids
from .generation import sample_tokens
from .ngrams import DENSE_COUNTS_MAX, DENSE_MAX_ENTRIES, FLUSH_PAIRS, NgramCounts, count_ngrams
from .rowstore import RowStore
from .sparse_ce import chunked_cross_entropy

__all__ = ["BigramModel", "BigramFileError", "DENSE_MAX_ENTRIES", "FORMAT_VERSION",
           "bigram_counts", "unigram_counts", "context_counts", "bigram_generate"]

_FORMAT = "bigramlab.BigramModel"
#: Version of the saved file format (part of the cache key of a profile's bigram model).
FORMAT_VERSION = "1"
_LN2 = math.log(2.0)


class BigramFileError(ValueError):
    """A saved BigramModel file is truncated, corrupt or not a BigramModel."""


class BigramModel(RowStore):
    """Bigram next-token distributions counted from a corpus.

    Build one with :meth:`from_corpus` or :meth:`load`.  Token ids are
    ``0 .. V-1``; the start placeholder context is ``V`` (``model.start_id``).
    """

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
        buffer before folding them into the counts (memory knob).  The
        counting itself is ``ngrams.count_ngrams``.
        """
        # one spare row: the backoff row (see RowStore), so the table is never copied
        return cls.from_counts(count_ngrams(
            batches, vocab_size, 2, device, progress, dense_max_entries=dense_max_entries,
            flush_pairs=flush_pairs, spare_rows=1, desc="counting bigrams"))

    @classmethod
    def from_counts(cls, counts: NgramCounts) -> "BigramModel":
        """The bigram model of counted pairs (``ngrams.count_ngrams`` with n = 2)."""
        if counts.n != 2:
            raise ValueError(f"a BigramModel needs pair counts (n = 2), got n = {counts.n}")
        V = counts.vocab_size
        if counts.table is None:
            return cls(V, keys=counts.keys, counts=counts.counts)
        if counts.buffer is not None and counts.buffer.numel() == (V + 2) * V:
            return cls(V, table=counts.buffer.view(V + 2, V))  # counted with the spare row
        # one more row, for the backoff distribution (see RowStore)
        table = torch.zeros(V + 2, V, dtype=torch.int64, device=counts.table.device)
        table[: V + 1] = counts.table.view(V + 1, V)
        return cls(V, table=table)

    # ------------------------------------------------------------ properties
    @property
    def start_id(self) -> int:
        """Context id of the start placeholder (= vocab_size)."""
        return self.vocab_size

    def __repr__(self) -> str:
        return (f"BigramModel(vocab_size={self.vocab_size}, "
                f"storage={self.storage!r}, pairs={self.total_pairs}, "
                f"distinct_pairs={self.nnz}, device={self.device})")

    # ----------------------------------------------------------- row access
    def context_rows(self, contexts) -> torch.Tensor:
        """Row index answering for each context id (0..V), backoff applied."""
        return self._row_of[self.checked_ids(contexts, self.vocab_size + 1)]

    # --------------------------------------------------------------- queries
    def prob(self, cur: torch.Tensor, nxt: torch.Tensor) -> torch.Tensor:
        """P(nxt | cur), elementwise (broadcasting) over pairs of ids.

        ``cur`` may be a token id or the start id V.  Returns float32
        probabilities (0 for an unseen pair in a seen context).
        """
        nxt = self.checked_ids(nxt, self.vocab_size)
        return self.prob_at(self.context_rows(cur), nxt)

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
        ids = check_token_ids(self.checked_ids(input_ids, self.vocab_size), None, ndim=(1, 2),
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
        rows = self.context_rows(cur.reshape(-1))
        return self.row_probs(rows).reshape(*cur.shape, self.vocab_size)

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
        an embedding's padding rows, are cut off before the softmax, as the
        paper's code cuts them); logits[:, i]
        predicts token i + 1 from tokens <= i, so its target is the bigram
        row P(. | input_ids[:, i]).  All batch * seq positions are averaged:

            CE_i = logsumexp(logits_i) - sum_b P(b | x_i) * logits_i[b]

        computed chunk by chunk (``sparse_ce.chunked_cross_entropy``): no
        (batch, seq, V) target is ever built.
        A chunk of positions (``chunk_elements`` logits; by default 16 MiB
        of float32 and at most 1/16 of the logits on CPU, 128 MiB elsewhere)
        gets its target rows as one dense float32 block, copied from the
        cached full rows (frequent contexts) or scattered from the non-zeros
        of the others; so temporary memory is a few chunk-sized blocks
        whatever the batch.  Differentiable in ``logits`` (any float
        dtype; computed in float64 for float64 logits, else float32): the backward writes softmax(logits) - P,
        divided by the number of positions, straight into one gradient
        buffer shaped like ``logits``.  Non-contiguous logits are copied once.
        """
        if logits.dim() < 1 or logits.shape[:-1] != input_ids.shape:
            raise ValueError(f"logits {tuple(logits.shape)} must be input_ids "
                             f"{tuple(input_ids.shape)} + (vocab,)")
        if logits.shape[-1] < self.vocab_size:
            raise ValueError(f"logits have {logits.shape[-1]} columns, fewer "
                             f"than vocab_size={self.vocab_size}")
        logits = logits[..., :self.vocab_size]  # padding columns never enter the softmax
        rows = self.context_rows(input_ids.reshape(-1))
        if rows.numel() == 0:
            raise ValueError("cross_entropy of an empty batch")
        return chunked_cross_entropy(logits.reshape(-1, logits.shape[-1]), rows,
                                     self.row_probs, self.vocab_size, self.scatter_sizes(rows),
                                     chunk_elements)

    # ----------------------------------------------------------- save / load
    def save(self, path: str | os.PathLike) -> None:
        """Write the counts to a safetensors file, atomically, with a checksum
        (``NgramCounts.save``: plain tensors and string metadata, no pickle)."""
        self.ngram_counts.save(path, _FORMAT, FORMAT_VERSION)

    @classmethod
    def load(cls, path: str | os.PathLike,
             device: torch.device | str | None = None) -> "BigramModel":
        """Read a file written by :meth:`save` onto ``device`` (default CPU).

        Raises :class:`BigramFileError` if the file is truncated, corrupt or
        not a BigramModel file.
        """
        return cls.from_counts(NgramCounts.load(path, _FORMAT, FORMAT_VERSION, BigramFileError,
                                                device))


# ---------------------------------------------------------------------------
# What the counts say (Chapter 1).

def bigram_counts(bigram: BigramModel) -> torch.Tensor:
    """A copy of the (V + 1, V) int64 count table C[a, b], on the model's device.

    Row ``a`` counts the tokens that followed context ``a``; row ``V`` (the
    start placeholder) counts the first token of every sequence.  There is no
    backoff row: an unseen context is an all-zero row.  Meant for small
    vocabularies (the exercises, the tiny world): a table of more than
    ``ngrams.DENSE_COUNTS_MAX`` cells is refused with a ValueError.
    """
    V = bigram.vocab_size
    if (V + 1) * V > DENSE_COUNTS_MAX:
        raise ValueError(
            f"a dense (V + 1, V) count table at V = {V:,} has {(V + 1) * V:,} cells; "
            "bigram_counts is for small vocabularies: use unigram_counts(), "
            "context_counts() or bigram.next_token_probs(ids) for a few rows")
    return bigram.ngram_counts.dense()


def unigram_counts(bigram: BigramModel) -> torch.Tensor:
    """How often each token 0..V-1 occurred in the counted corpus, shape (V,): the
    column sums of the count table (every token is the next token of exactly one
    pair). Normalized, this is the backoff distribution."""
    return bigram.ngram_counts.next_token_totals()


def context_counts(bigram: BigramModel) -> torch.Tensor:
    """How often each context 0..V occurred, shape (V + 1,): the row sums of the
    count table.  Entry V (the start placeholder) is the number of sequences;
    a 0 marks a context that was never seen (it backs off to the unigram row)."""
    return bigram.ngram_counts.context_totals()


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
    gives the same text whatever device the bigram model lives on. The loop is
    ``generation.sample_tokens``, the same one that samples a language model's text.
    """
    ids = bigram.checked_ids(torch.zeros(n, 0, dtype=torch.int64) if prompt is None else prompt,
                      bigram.vocab_size).cpu()
    one_d = ids.dim() == 1
    if one_d:
        ids = ids.unsqueeze(0)
    if ids.dim() != 2:
        raise ValueError(f"prompt must be (seq,) or (batch, seq), got {tuple(ids.shape)}")
    start = torch.full((ids.shape[0],), bigram.start_id)

    def step(new: torch.Tensor) -> torch.Tensor:  # P(. | the last token), or | start
        last = new[:, -1] if new.shape[1] else start
        return bigram.next_token_probs(last.to(bigram.device))

    result = sample_tokens(step, ids, max_new_tokens, temperature=temperature,
                           generator=generator)
    return result.squeeze(0) if one_d else result
