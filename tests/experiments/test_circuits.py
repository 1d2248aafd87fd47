"""Chapter 9's per-profile experiments (bigramlab.experiments.circuits) against direct
runs: agreement cases found by decoding the text word by word, measures against
evaluate_subnetwork / evaluate_trigram and a log-softmax by hand, the add-back path
against a greedy loop written out with lm_surprisal."""

import math

import pytest
import torch

from bigramlab import get_profile, load_corpus, load_model, load_tokenizer
from bigramlab.experiments import evaluate_subnetwork, evaluate_trigram
from bigramlab.experiments.circuits import add_back, agreement_cases, agreement_words, measure
from bigramlab.methods.circuits import head_part, mlp_part
from bigramlab.methods.metrics import cross_entropy_nats, lm_surprisal
from bigramlab.methods.subnetwork import Subnetwork
from bigramlab.worlds.tiny.lexicon import number_words

slow = pytest.mark.slow  # needs the full tiny world (its 3-minute LM)


@pytest.fixture(scope="module")
def tiny():
    p = get_profile("tiny")
    return p, load_model(p)[0]


@slow
def test_agreement_words_are_single_tokens_of_the_lexicon(tiny):
    p, _ = tiny
    tok, w = load_tokenizer(p), agreement_words(p)
    dets, pairs, adjs = number_words()
    for i, plural in w["determiners"].items():
        word = tok.decode([i])
        assert word.startswith(" ") and dets[word[1:].lower()] == plural
    sg_of = dict(pairs)
    for i, (plural, twin) in w["nouns"].items():
        assert w["nouns"][twin] == (not plural, i)
        sg, pl = (tok.decode([twin]), tok.decode([i])) if plural else \
            (tok.decode([i]), tok.decode([twin]))
        assert sg_of[sg[1:]] == pl[1:]
    assert all(tok.decode([i])[1:] in adjs for i in w["adjectives"])
    assert len(w["nouns"]) > 100 and len(w["adjectives"]) > 50 and len(w["determiners"]) > 10


@slow
def test_agreement_cases_match_a_word_by_word_scan(tiny):
    p, _ = tiny
    tok, w = load_tokenizer(p), agreement_words(p)
    ev = load_corpus(p, "eval")[:64]
    dets, pairs, adjs = number_words()
    pl = {b for _, b in pairs}
    for gap in (0, 1):
        want = []
        for r, row in enumerate(ev.tolist()):
            text = [tok.decode([t]) for t in row]
            for t in range(gap + 1, len(row)):
                d, x = text[t - gap - 1], text[t]
                if not (d.startswith(" ") and d[1:].lower() in dets and x.startswith(" ")
                        and row[t] in w["nouns"]):
                    continue
                if gap and not (text[t - 1].startswith(" ") and text[t - 1][1:] in adjs
                                and row[t - 1] in w["adjectives"]):
                    continue
                if row[t - gap - 1] not in w["determiners"]:
                    continue
                want.append((r, t, dets[d[1:].lower()], x[1:] in pl))
        cases = agreement_cases(p, "eval", gap)
        keep = cases.rows < 64
        got = list(zip(cases.rows[keep].tolist(), cases.cols[keep].tolist(),
                       cases.det_plural[keep].tolist(), cases.noun_plural[keep].tolist()))
        assert got == want and len(got) > 10


@slow
def test_measure_matches_the_chapter_3_evaluations(tiny):
    p, model = tiny
    sub = Subnetwork.full(model).drop_layer(model, 2).keep_head(model, 2, 1)
    got = measure(p, {"edited": sub, "full": None})
    ev_b, ev_t = evaluate_subnetwork(p, sub, progress=False), evaluate_trigram(p, sub, progress=False)
    e = got["edited"]
    assert e["kept"] == sub.count() and e["share"] == pytest.approx(sub.share(model))
    assert e["ce_lm"] == pytest.approx(ev_b["ce_lm"], rel=1e-5)
    assert e["r_bigram"] == pytest.approx(ev_b["r_drop"], abs=1e-6)
    assert e["r_trigram"] == pytest.approx(ev_t["r_drop"], abs=1e-6)
    assert got["full"]["r_full"] == pytest.approx(1.0) and e["r_full"] < 1


@slow
def test_measure_agreement_against_a_log_softmax_by_hand(tiny):
    p, model = tiny
    cases = agreement_cases(p, "eval", 1)
    sub = Subnetwork.full(model).drop_layer(model, 1)
    got = measure(p, {"s": sub}, n_seqs=40, cases=cases)["s"]["agreement"]
    ev = load_corpus(p, "eval")[:40]
    with sub.apply(model), torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ev).logits.double(), -1)
    right = {False: [], True: []}
    for r, c, a, b, pl in zip(cases.rows.tolist(), cases.cols.tolist(), cases.right.tolist(),
                              cases.wrong.tolist(), cases.noun_plural.tolist()):
        if r < 40:
            m = float(logp[r, c - 1, a] - logp[r, c - 1, b])
            right[pl].append(1.0 if m > 0 else 0.5 if m == 0 else 0.0)
    assert got["n"] == len(right[False]) + len(right[True]) > 0
    for pl, key in ((False, "singular"), (True, "plural")):
        want = sum(right[pl]) / len(right[pl]) if right[pl] else math.nan
        assert got[key] == pytest.approx(want) or (math.isnan(want) and math.isnan(got[key]))


@slow
def test_add_back_is_the_greedy_loop_written_out(tiny):
    p, model = tiny
    start = Subnetwork.empty(model).keep_mlp_dims(model, 0, range(64))
    parts = {"L0 H0": head_part(model, 0, 0), "L1 MLP": mlp_part(model, 1),
             "L0 H3": head_part(model, 0, 3)}
    ev = load_corpus(p, "eval")

    def ce(sub, n):
        with sub.apply(model):
            return cross_entropy_nats(lm_surprisal(model, ev[:n]))

    rows = add_back(p, start, parts, n_search=8)
    current, left, order = start, list(parts), []
    while left:
        best = min(left, key=lambda n: ce(current | parts[n], 8))
        current, order = current | parts[best], order + [best]
        left.remove(best)
    assert [r["added"] for r in rows] == [None, *order]
    assert rows[-1]["subnetwork"] == current
    full_ce = ce(Subnetwork.full(model), len(ev))
    for r in rows:
        assert r["ce_lm"] == pytest.approx(ce(r["subnetwork"], len(ev)), rel=1e-5)
        assert r["gap_closed"] == pytest.approx((rows[0]["ce_lm"] - r["ce_lm"])
                                                / (rows[0]["ce_lm"] - full_ce))
    assert rows[0]["gap_closed"] == 0 and rows[1]["tried"].keys() == parts.keys()
    with pytest.raises(ValueError, match="n_search"):
        add_back(p, start, parts, n_search=10**6)
