"""The offline "tiny world" corpus: English-like passages from a small
probabilistic grammar.

Why a grammar and not a downloaded corpus: the course must run offline, and
the tiny language model trained on this text has to beat a bigram model by a
clear margin. So the text carries structure that a bigram model cannot see
but a small transformer picks up within minutes of CPU training:

- every passage has one topic (farm, sea, kitchen, ...) whose nouns, verbs and
  adjectives it keeps using, so earlier words narrow down the next one;
- each passage casts a few nouns and 2-4 invented names that it keeps reusing,
  so copying from context pays off;
- determiners agree with nouns, verbs agree with their subject across a
  prepositional phrase, pronouns agree with the gender of the last name.

Word frequencies are Zipf-shaped (rank-frequency slope near -1), like real text.

Public API:
    generate_passages(n_words, seed=0) -> list[str]
    count_words(passages) -> int

The words and their sampling tables are in ``lexicon``. Defined in Chapter 0.

All randomness flows from one random.Random(seed); nothing uses hash() of
strings or iterates over sets, so the output is identical across processes.
"""

import random

from .lexicon import (DET_COUNT, DET_PL, DET_SG, LEXICON, NAMES, NAME_TABLE, PREPS, PRONOUNS, SHARED, TOPIC_NAMES, draw, plural, third_person)

# How topical a passage is; the gap between a bigram model and a model that
# reads the passage so far comes mostly from these two.
# _P_CAST: chance a noun comes from the passage's own small cast (burstiness);
# _P_TOPICAL: chance a verb/adjective comes from the topic, not the shared list.
# With 0.5/0.8 the tiny profile's GPT-NeoX (4 x 64, 1,500 steps of 16 x 128 tokens)
# ends 1.19 nats/token below the bigram model on the eval split (Chapter 0).
_P_CAST = 0.5
_P_TOPICAL = 0.8



# ---------------------------------------------------------------------------
# The generator. One _Passage holds the state that makes a passage coherent:
# its topic, its cast of names and nouns, and the last-mentioned name (which
# every he/she/him/her/his refers to).
# ---------------------------------------------------------------------------

class _Passage:
    """Writes the sentences of one passage; every draw comes from `rng`."""

    def __init__(self, rng):
        self.rng = rng
        self.topic = TOPIC_NAMES[rng.randrange(len(TOPIC_NAMES))]
        self.lex = LEXICON[self.topic]
        # 2-4 distinct names, drawn Zipf-weighted from the pool.
        n_names = rng.randint(2, 4)
        picked = []
        while len(picked) < n_names:
            i = draw(rng, NAME_TABLE)
            if i not in picked:
                picked.append(i)
        self.names = [NAMES[i] for i in picked]
        self.introduced = 0  # names are introduced in order
        self.last = None  # (name, gender) of the most recently written name
        # A small cast of nouns the passage keeps returning to (burstiness:
        # a passage about a farm is mostly about *its* goats and *its* barn).
        self.cast = {kind: [draw(rng, self.lex[kind]) for _ in range(k)]
                     for kind, k in (("agent", 2), ("thing", 3), ("place", 2))}

    # -- words -------------------------------------------------------------
    def noun(self, kind):
        if self.rng.random() < _P_CAST:
            cast = self.cast[kind]
            return cast[self.rng.randrange(len(cast))]
        return draw(self.rng, self.lex[kind])

    def adj(self):
        table = self.lex["adj"] if self.rng.random() < _P_TOPICAL else SHARED["adj"]
        return draw(self.rng, table)

    def verb(self, kind, singular):
        table = self.lex[kind] if self.rng.random() < _P_TOPICAL else SHARED[kind]
        v = draw(self.rng, table)
        return third_person(v) if singular else v

    def name(self, new=False, avoid=None):
        """A name from the passage's cast, or None if only `avoid` is left.
        Introduces the cast's names in order, early on; `new` forces it."""
        rng = self.rng
        known = [who for who in self.names[:self.introduced] if who is not avoid]
        if self.introduced < len(self.names) and (new or not known or rng.random() < 0.35):
            self.introduced += 1
            who = self.names[self.introduced - 1]
        elif known:
            who = known[rng.randrange(len(known))]
        else:
            return None
        self.last = who
        return who[0]

    def pronoun(self, case):
        """he/him/his or she/her/her for the last name; None if no name yet."""
        if self.last is None:
            return None
        return PRONOUNS[self.last[1]][case]

    # -- phrases -----------------------------------------------------------
    def np(self, kind, singular, det=None):
        """Determiner + 0-2 adjectives + noun, with determiner-noun agreement."""
        rng = self.rng
        if det is None:
            det = draw(rng, DET_SG if singular else DET_PL)
        words = [det]
        u = rng.random()
        if u < 0.45:
            words.append(self.adj())
            if u < 0.08:
                words.append(self.adj())
        noun = self.noun(kind)
        words.append(noun if singular else plural(noun))
        if words[0] == "a" and words[1][0] in "aeiou":
            words[0] = "an"
        return " ".join(words)

    def pp(self):
        return draw(self.rng, PREPS) + " " + self.np("place", self.rng.random() < 0.7,
                                                       det="the")

    def subject(self):
        """(text, singular, is_last_name). A name, a pronoun for the last name, or a noun
        phrase, optionally followed by a prepositional phrase whose noun has
        its own number: agreement must skip it to find the head noun."""
        rng = self.rng
        u = rng.random()
        if u < 0.3:
            return self.name(), True, True
        if u < 0.45 and self.last is not None:
            return self.pronoun(0), True, True
        singular = rng.random() < 0.55
        text = self.np("agent", singular)
        if rng.random() < 0.3:
            text += " " + self.pp()
        return text, singular, False

    def obj(self, subject_is_last):
        """Object of a transitive verb."""
        rng = self.rng
        u = rng.random()
        # Never "Mira helps Mira": the object name differs from a name subject.
        if u < 0.1 and (who := self.name(avoid=self.last if subject_is_last else None)):
            return who
        if u < 0.18 and self.last is not None and not subject_is_last:
            return self.pronoun(1)
        if u < 0.3 and self.last is not None and subject_is_last:
            # "Tavrin feeds her goats": the possessive follows the last name.
            return self.np("thing", rng.random() < 0.5, det=self.pronoun(2))
        kind = "agent" if u < 0.4 else "thing"
        return self.np(kind, rng.random() < 0.5)

    def clause(self):
        """Subject + predicate with subject-verb agreement."""
        rng = self.rng
        subj, singular, subject_is_last = self.subject()
        u = rng.random()
        if u < 0.55:
            pred = self.verb("tverb", singular) + " " + self.obj(subject_is_last)
            if rng.random() < 0.25:
                pred += " " + self.pp()
        elif u < 0.8:
            pred = self.verb("iverb", singular)
            if rng.random() < 0.5:
                pred += " " + self.pp()
        elif u < 0.92:
            pred = ("is " if singular else "are ") + self.adj()
        else:
            pred = ("is " if singular else "are ") + self.pp()
        return subj + " " + pred

    # -- sentences ---------------------------------------------------------
    def intro(self):
        """'Tavrin is a young farmer.' Introduces the next name."""
        name = self.name(new=True)
        return name + " is " + self.np("agent", True, det="a") + "."

    def sentence(self):
        rng = self.rng
        u = rng.random()
        if u < 0.36:
            return _cap(self.clause()) + "."
        if u < 0.46:
            return _cap(self.clause()) + " and " + self.clause() + "."
        if u < 0.56:
            return _cap(self.clause()) + " because " + self.clause() + "."
        if u < 0.64:
            return "When " + self.clause() + ", " + self.clause() + "."
        if u < 0.70:
            singular = rng.random() < 0.5
            where = draw(rng, PREPS) + " " + self.np("place", True, det="the")
            det = "a" if singular else draw(rng, DET_COUNT)
            return ("There is " if singular else "There are ") + \
                self.np("thing", singular, det=det) + " " + where + "."
        if u < 0.84:
            return self.dialogue()
        return self.question()

    def dialogue(self):
        rng = self.rng
        u = rng.random()
        if u < 0.35:
            line = '"I ' + self.verb("tverb", False) + " " + \
                self.np("thing", rng.random() < 0.5) + ',"'
            verb = "said"
        elif u < 0.6:
            line = '"Look at ' + self.np("agent", rng.random() < 0.5) + '!"'
            verb = "shouted"
        elif u < 0.8:
            singular = rng.random() < 0.5
            line = '"Where ' + ("is " if singular else "are ") + \
                self.np("thing", singular, det="the") + '?"'
            verb = "asked"
        else:
            # "Mira said, ..." order, with the speaker first.
            speaker = self.name()
            return speaker + ' said, "We ' + self.verb("tverb", False) + " " + \
                self.np("thing", False, det="the") + '."'
        return line + " " + verb + " " + self.name() + "."

    def question(self):
        rng = self.rng
        u = rng.random()
        if u < 0.5:
            singular = rng.random() < 0.55
            return ("Does " if singular else "Do ") + self.np("agent", singular, det="the") + \
                " " + self.verb("tverb", False) + " " + self.np("thing", rng.random() < 0.5) + "?"
        if u < 0.75:
            return "Why does " + self.name() + " " + self.verb("tverb", False) + " " + \
                self.np("thing", rng.random() < 0.5) + "?"
        singular = rng.random() < 0.5
        return ("Is " if singular else "Are ") + self.np("agent", singular, det="the") + \
            " " + self.adj() + "?"


def _cap(text):
    return text[0].upper() + text[1:]


def _passage(rng):
    """One passage of roughly 60-250 words: (topic, text)."""
    p = _Passage(rng)
    target = rng.randint(55, 230)
    sentences = [p.intro()]
    n = len(sentences[0].split())
    while n < target:
        # Every name of the cast gets an intro line, now and then early on and
        # at each sentence past the middle; other sentences may bring one in too.
        if p.introduced < len(p.names) and (rng.random() < 0.3 or 2 * n > target):
            s = p.intro()
        else:
            s = p.sentence()
        sentences.append(s)
        n += len(s.split())
    return p.topic, " ".join(sentences)


def _generate(n_words, seed=0):
    """(topic, passage) pairs until at least n_words words. Private: the tests
    use the topic labels to measure how much the topic tells about the next word."""
    rng = random.Random(seed)
    out, total = [], 0
    while total < n_words:
        topic, text = _passage(rng)
        out.append((topic, text))
        total += len(text.split())
    return out


def generate_passages(n_words: int, seed: int = 0) -> list[str]:
    """Passages (documents) of roughly 60-250 words each, in order, until at
    least `n_words` whitespace-separated words in total.

    Deterministic: the same (n_words, seed) gives identical text in any
    process. Different seeds give different text from the same distribution,
    so e.g. seed 0 can be the train split and seed 1 the eval split.
    """
    return [text for _, text in _generate(n_words, seed)]


def count_words(passages) -> int:
    """Number of whitespace-separated words in `passages` (the unit of n_words)."""
    return sum(len(p.split()) for p in passages)
