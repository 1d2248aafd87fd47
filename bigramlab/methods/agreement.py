"""Number agreement across a word: a dependency that a bigram model cannot see.

In English a determiner and its noun agree in number: *these old goats*,
*this old goat*. With the determiner right before the noun, the previous token
alone says which form comes (a bigram dependency); with an adjective between
them, the token before the noun is the adjective, which both numbers share,
so the number has to come from the token two back: a trigram dependency.
A model is tested on *minimal pairs*: at each noun the text holds, does it
give the form that came a higher probability than the same noun in the other
number (its *twin*)? This is how targeted syntactic evaluations score
agreement; Chang & Bergen 2025 (section 7) ask what the bigram subnetwork
lacks, and this is one concrete thing.

* :func:`find_agreement` finds the cases in a batch of token ids: a
  determiner of known number, then ``gap`` tokens (0 or 1; with 1, one token
  of an allowed set, e.g. single-token adjectives), then a noun with a
  single-token twin. Token ids come in as lookup tables (id -> number, id ->
  twin), so the word lists stay with the caller (the tiny world's lexicon, or
  any tokenizer's words).
* The margin of a case is log p(the noun that came) - log p(its twin):
  :func:`logit_margins` from an LM's logits (the two tokens share one softmax,
  so it is a logit difference), :func:`ngram_margins` from a bigram or trigram
  model. :func:`agreement_accuracy` scores margins: a positive margin counts
  1, a tie 1/2 (an n-gram model that has seen neither form), a negative 0;
  singular and plural cases are scored apart and averaged (``balanced``), so
  a model that always prefers the more frequent number scores 0.5.

Defined in Chapter 9.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

import torch

from .bigrams import BigramModel
from .trigrams import TrigramModel

__all__ = ["AgreementCases", "find_agreement", "logit_margins", "ngram_margins",
           "agreement_accuracy"]


@dataclass(frozen=True)
class AgreementCases:
    """Determiner ... noun cases in a (n, seq) batch of token ids, one entry per case.

    ``rows``/``cols``: where the noun is (``ids[rows, cols]``; an LM predicts it
    from its logits at ``cols - 1``); ``right``: the noun that came; ``wrong``:
    its twin (the other number); ``det_plural``/``noun_plural``: the numbers of
    the determiner and of the noun that came; ``gap``: tokens between them."""

    rows: torch.Tensor
    cols: torch.Tensor
    right: torch.Tensor
    wrong: torch.Tensor
    det_plural: torch.Tensor
    noun_plural: torch.Tensor
    gap: int

    def __len__(self) -> int:
        return int(self.rows.numel())

    @property
    def agrees(self) -> torch.Tensor:
        """Bool per case: the noun has its determiner's number."""
        return self.det_plural == self.noun_plural

    def subset(self, keep: torch.Tensor) -> "AgreementCases":
        """The cases where ``keep`` (bool, one per case) is True."""
        return AgreementCases(self.rows[keep], self.cols[keep], self.right[keep],
                              self.wrong[keep], self.det_plural[keep], self.noun_plural[keep],
                              self.gap)


def _table(vocab: int, mapping: Mapping[int, object], fill, dtype) -> torch.Tensor:
    t = torch.full((vocab,), fill, dtype=dtype)
    if mapping:
        keys = torch.tensor(list(mapping), dtype=torch.long)
        if int(keys.min()) < 0 or int(keys.max()) >= vocab:
            raise ValueError(f"token ids must lie in 0..{vocab - 1}: a word list holds an id "
                             "of another tokenizer")
        t[keys] = torch.tensor([int(v) for v in mapping.values()], dtype=dtype)
    return t


def find_agreement(ids: torch.Tensor, determiners: Mapping[int, bool],
                   nouns: Mapping[int, tuple[bool, int]], gap: int = 1,
                   between: Collection[int] | None = None,
                   vocab_size: int | None = None) -> AgreementCases:
    """Every determiner, ``gap`` tokens, noun sequence in ``ids`` (n, seq), in row-major order.

    ``determiners``: token id -> True for plural (e.g. *these*), False for
    singular (*this*); ambiguous ones (*the*) are left out. ``nouns``: token id
    -> (plural?, twin id), e.g. *goat* -> (False, id of *goats*). ``gap``: 0
    (the noun right after the determiner) or 1 (one token between); with
    ``between`` (a set of ids, e.g. adjectives) only those may stand there
    (None: any token that is neither a determiner nor a noun). ``vocab_size``
    (default: one more than the largest id seen) sizes the lookup tables."""
    if gap not in (0, 1):
        raise ValueError(f"find_agreement: gap must be 0 or 1 (tokens between determiner and "
                         f"noun), got {gap!r}")
    ids = torch.as_tensor(ids).long().cpu()
    if ids.dim() != 2:
        raise ValueError(f"find_agreement: ids must be (n, seq), got shape {tuple(ids.shape)}")
    words = [*determiners, *nouns, *(n[1] for n in nouns.values()), *(between or ())]
    V = vocab_size or max([int(ids.max()) if ids.numel() else 0, *words]) + 1
    det = _table(V, determiners, -1, torch.int8)                      # -1: not a determiner
    noun = _table(V, {k: v[0] for k, v in nouns.items()}, -1, torch.int8)
    twin = _table(V, {k: v[1] for k, v in nouns.items()}, -1, torch.long)
    if gap == 0:
        d, x = ids[:, :-1], ids[:, 1:]
        ok = (det[d] >= 0) & (noun[x] >= 0)
    else:
        d, m, x = ids[:, :-2], ids[:, 1:-1], ids[:, 2:]
        if between is None:
            mid = (det[m] < 0) & (noun[m] < 0)
        else:
            mid = _table(V, dict.fromkeys(between, True), False, torch.bool)[m]
        ok = (det[d] >= 0) & mid & (noun[x] >= 0)
    rows, c = torch.nonzero(ok, as_tuple=True)
    cols = c + gap + 1
    right = ids[rows, cols]
    return AgreementCases(rows, cols, right, twin[right], det[ids[rows, c]] == 1,
                          noun[right] == 1, gap)


def logit_margins(logits: torch.Tensor, cases: AgreementCases, first_row: int = 0
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """(which cases, their margins) for one batch of LM ``logits`` (b, seq, V) of rows
    ``first_row .. first_row + b - 1`` of the ids the cases were found in.

    The margin is logit(noun that came) - logit(twin) at the position before the
    noun: log p(right) - log p(wrong) under the LM's softmax. Returns the
    indices of the cases in this batch (int64) and their margins (float64, CPU)."""
    rows = cases.rows
    inside = torch.nonzero((rows >= first_row) & (rows < first_row + len(logits))).reshape(-1)
    dev = logits.device
    r = (rows[inside] - first_row).to(dev)
    c = (cases.cols[inside] - 1).to(dev)
    at = logits[r, c].double()
    margin = (at.gather(1, cases.right[inside].to(dev)[:, None])
              - at.gather(1, cases.wrong[inside].to(dev)[:, None]))
    return inside, margin.reshape(-1).cpu()


def ngram_margins(model: BigramModel | TrigramModel, ids: torch.Tensor,
                  cases: AgreementCases) -> torch.Tensor:
    """log p(right) - log p(wrong) (float64, CPU) under a bigram model (context: the token
    before the noun) or a trigram model (the two tokens before it, the start placeholder
    before a sequence's start). Both 0 gives a margin of 0 (a tie); one 0 gives +-inf."""
    if not isinstance(model, (BigramModel, TrigramModel)):
        raise TypeError(f"ngram_margins: expected a BigramModel or TrigramModel, got "
                        f"{type(model).__name__}; for a language model use logit_margins")
    ids = torch.as_tensor(ids).long()
    prev1 = ids[cases.rows, cases.cols - 1].to(model.device)
    right, wrong = cases.right.to(model.device), cases.wrong.to(model.device)
    if isinstance(model, TrigramModel):
        c2 = cases.cols - 2
        prev2 = torch.where(c2 >= 0, ids[cases.rows, c2.clamp(min=0)],
                            model.start_id).to(model.device)
        pr, pw = model.prob(prev2, prev1, right), model.prob(prev2, prev1, wrong)
    else:
        pr, pw = model.prob(prev1, right), model.prob(prev1, wrong)
    pr, pw = pr.double().cpu(), pw.double().cpu()
    margin = torch.log(pr) - torch.log(pw)
    return torch.where((pr == 0) & (pw == 0), torch.zeros_like(margin), margin)


def agreement_accuracy(margins: torch.Tensor, plural: torch.Tensor) -> dict:
    """How often the form that came beats its twin: margin > 0 counts 1, = 0 counts 1/2.

    ``plural``: the number of each case (bool). Returns ``n``, ``n_singular``,
    ``n_plural``, ``singular`` and ``plural`` (accuracy within each number),
    ``overall`` (over all cases) and ``balanced`` (the mean of the two numbers'
    accuracies; NaN where a number has no case)."""
    margins = torch.as_tensor(margins).double().reshape(-1)
    plural = torch.as_tensor(plural).bool().reshape(-1)
    if margins.shape != plural.shape:
        raise ValueError(f"agreement_accuracy: {margins.numel()} margins but "
                         f"{plural.numel()} numbers; pass one of each per case")
    if torch.isnan(margins).any():
        raise ValueError("agreement_accuracy: a margin is NaN (NaN logits?)")
    score = (margins > 0).double() + 0.5 * (margins == 0).double()

    def mean(x):
        return float(x.mean()) if x.numel() else float("nan")

    sg, pl = mean(score[~plural]), mean(score[plural])
    return {"n": int(score.numel()), "n_singular": int((~plural).sum()),
            "n_plural": int(plural.sum()), "singular": sg, "plural": pl,
            "overall": mean(score), "balanced": (sg + pl) / 2}
