"""Beyond bigrams, per profile: agreement cases in its text, measures of many subnetworks,
and the greedy add-back from the bigram subnetwork to the full model.

* :func:`agreement_cases` finds determiner ... noun cases (``methods.agreement``)
  in a split of the profile's text, the words being the tiny grammar's
  determiners, adjectives and (singular, plural) noun pairs
  (``worlds.tiny.lexicon.number_words``), each kept when the profile's
  tokenizer makes it one token (with its leading space; determiners also
  capitalised). The words are English, so a real profile's tokenizer finds
  them in its corpus too, only more rarely.
* :func:`measure` runs one forward pass per subnetwork over the eval split and
  reports its own loss, how far its surprisals follow the full model's, the
  bigram model's and the trigram model's (Pearson r, Chang & Bergen 2025,
  section 3), and, given agreement cases, how often it prefers the noun that
  came over its twin.
* :func:`add_back` runs ``methods.circuits.greedy_add_back`` with the eval
  cross-entropy on the first ``n_search`` eval sequences as the score (cheap:
  it is called once per part tried), then measures every step of the chosen
  path on the whole eval split.

Nothing here trains: the masks come from ``train_subnetwork``. Every function
takes a ``Profile``. Defined in Chapter 9.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import torch

from ..methods.agreement import AgreementCases, agreement_accuracy, find_agreement, logit_margins
from ..methods.circuits import gap_closed, greedy_add_back
from ..methods.metrics import cross_entropy_nats, lm_logits, logits_surprisal, surprisal_correlation
from ..methods.subnetwork import Subnetwork
from ..plumbing.inputs import check_int, check_type
from ..plumbing.profiles import Profile, entry_point
from ..worlds.loading import load_corpus, load_tokenizer
from ..worlds.tiny.lexicon import number_words
from .subnetworks import model_and_bigram, ngram_surprisal

__all__ = ["agreement_words", "agreement_cases", "measure", "add_back"]


def _single_token(tokenizer, word: str) -> int | None:
    ids = tokenizer(word, add_special_tokens=False)["input_ids"]
    return ids[0] if len(ids) == 1 else None


@entry_point
def agreement_words(profile: Profile) -> dict:
    """The profile's token ids of the agreement words: ``determiners`` (id -> plural?),
    ``nouns`` (id -> (plural?, twin id); both forms single tokens), ``adjectives``
    (ids), and ``words`` (id -> the word, for printing)."""
    tok = load_tokenizer(profile)
    dets, pairs, adjs = number_words()
    out = {"determiners": {}, "nouns": {}, "adjectives": [], "words": {}}
    for word, plural in dets.items():
        for form in (word, word.capitalize()):
            if (i := _single_token(tok, " " + form)) is not None:
                out["determiners"][i], out["words"][i] = plural, form
    for sg, pl in pairs:
        a, b = _single_token(tok, " " + sg), _single_token(tok, " " + pl)
        if a is not None and b is not None and a != b:
            out["nouns"][a], out["nouns"][b] = (False, b), (True, a)
            out["words"][a], out["words"][b] = sg, pl
    for word in adjs:
        if (i := _single_token(tok, " " + word)) is not None and i not in out["nouns"]:
            out["adjectives"].append(i)
            out["words"][i] = word
    return out


@entry_point
def agreement_cases(profile: Profile, split: str = "eval", gap: int = 1) -> AgreementCases:
    """Determiner, ``gap`` tokens (1: one single-token adjective; 0: none), noun cases
    in ``split`` of the profile's text (see :func:`agreement_words`)."""
    w = agreement_words.unchecked(profile)
    return find_agreement(load_corpus(profile, split), w["determiners"], w["nouns"], gap=gap,
                          between=w["adjectives"] if gap else None,
                          vocab_size=len(load_tokenizer(profile)))


@functools.lru_cache(maxsize=4)
def _full_surprisal(profile_key: str, profile, checkpoint: str, n: int) -> torch.Tensor:
    """The full model's surprisals (bits) of the first ``n`` eval sequences."""
    model, _ = model_and_bigram(profile, checkpoint)
    ev = load_corpus(profile, "eval")[:n]
    return torch.cat([logits_surprisal(lg, x).cpu() for x, lg in lm_logits(model, ev)])


def _check_n(n_seqs, n_eval, what):
    if n_seqs is None:
        return n_eval
    check_int(what, n_seqs, 2, n_eval, where="experiments.circuits: ",
              why="how many eval sequences to measure on")
    return n_seqs


def _run(model, sub, ids, cases):
    """(surprisal bits (n, seq-1), agreement margins or None) of ``sub`` on ``ids``."""
    parts, margins = [], None
    if cases is not None:
        margins = torch.full((len(cases),), float("nan"), dtype=torch.float64)
    with sub.apply(model):
        first = 0
        for x, logits in lm_logits(model, ids):
            parts.append(logits_surprisal(logits, x).cpu())
            if cases is not None:
                at, m = logit_margins(logits, cases, first)
                margins[at] = m
            first += len(x)
    return torch.cat(parts), margins


@entry_point
def measure(profile: Profile, subnetworks: Mapping[str, Subnetwork | None],
            n_seqs: int | None = None, cases: AgreementCases | None = None,
            checkpoint: str | None = None) -> dict[str, dict]:
    """name -> measures of each subnetwork (None: the full model) on the first ``n_seqs``
    eval sequences (None: all), one forward pass each:

    ``kept`` and ``share`` (of the maskable entries); ``ce_lm`` (nats, its own loss);
    ``r_full`` (Pearson r of its surprisals with the full model's, inf clipped to
    the largest finite value); ``r_bigram`` and ``r_trigram`` (with the bigram and
    trigram surprisals, infinite n-gram surprisals dropped, as Chapters 3-5
    report); with ``cases`` (found in the eval split) ``agreement``, the dict of
    ``methods.agreement.agreement_accuracy`` over the cases in those sequences."""
    check_type("subnetworks", subnetworks, Mapping, "pass a dict name -> Subnetwork (None: "
               "the full model)", where="measure: ")
    checkpoint = checkpoint or profile.final_checkpoint
    model, bigram = model_and_bigram(profile, checkpoint)
    ev = load_corpus(profile, "eval")
    n = _check_n(n_seqs, len(ev), "n_seqs")
    if cases is not None:
        cases = cases.subset(cases.rows < n)
    s_full = _full_surprisal(profile.key(), profile, checkpoint, n)
    refs = {k: ngram_surprisal(profile, bigram.device, k)[:n] for k in ("bigram", "trigram")}
    out = {}
    for name, sub in subnetworks.items():
        sub = Subnetwork.full(model) if sub is None else sub
        check_type(f"subnetworks[{name!r}]", sub, Subnetwork, "wrap masks as Subnetwork(masks)",
                   where="measure: ")
        s, margins = _run(model, sub, ev[:n], cases)
        row = {"kept": sub.count(), "share": sub.share(model), "ce_lm": cross_entropy_nats(s),
               "r_full": surprisal_correlation(s, s_full, inf="max"),
               "r_bigram": surprisal_correlation(s, refs["bigram"], inf="drop"),
               "r_trigram": surprisal_correlation(s, refs["trigram"], inf="drop")}
        if cases is not None:
            row["agreement"] = agreement_accuracy(margins, cases.noun_plural)
        out[name] = row
    return out


@entry_point
def add_back(profile: Profile, start: Subnetwork, parts: Mapping[str, Subnetwork],
             n_search: int | None = None, max_steps: int | None = None,
             cases: AgreementCases | None = None, checkpoint: str | None = None,
             n_seqs: int | None = None) -> list[dict]:
    """The greedy path from ``start`` by adding ``parts`` (``methods.circuits``), measured.

    Each step adds the part that gives the lowest eval cross-entropy on the first
    ``n_search`` eval sequences (None: all of them). Every step of the path is then
    measured on the first ``n_seqs`` eval sequences (None: the whole eval split) by
    :func:`measure`. Returns one dict per step,
    the start first: ``step``, ``added``, ``new`` (entries it added), the measures,
    ``search_ce`` (the score it was chosen by), ``tried`` (name -> search cross-entropy
    of every part tried at that step; step 1's: each part added alone), ``gap_closed`` (of the eval
    cross-entropy gap from ``start`` to the full model) and ``subnetwork``."""
    check_type("start", start, Subnetwork, "pass the bigram subnetwork's .mask",
               where="add_back: ")
    checkpoint = checkpoint or profile.final_checkpoint
    model, _ = model_and_bigram(profile, checkpoint)
    ev = load_corpus(profile, "eval")
    n = _check_n(n_search, len(ev), "n_search")

    def score(sub):
        return cross_entropy_nats(_run(model, sub, ev[:n], None)[0])

    path = greedy_add_back(start, parts, score, max_steps)
    n_seqs = _check_n(n_seqs, len(ev), "n_seqs")
    measured = measure.unchecked(profile, {str(s["step"]): s["subnetwork"] for s in path},
                                 n_seqs, cases, checkpoint)
    ce_full = cross_entropy_nats(_full_surprisal(profile.key(), profile, checkpoint, n_seqs))
    ce0 = measured["0"]["ce_lm"]
    rows = []
    for s in path:
        m = measured[str(s["step"])]
        rows.append({"step": s["step"], "added": s["added"], "new": s["new"], **m,
                     "search_ce": s["score"], "tried": s["tried"], "gap_closed": gap_closed(m["ce_lm"], ce0, ce_full),
                     "subnetwork": s["subnetwork"]})
    return rows
