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

All randomness flows from one random.Random(seed); nothing uses hash() of
strings or iterates over sets, so the output is identical across processes.
"""

import random
from bisect import bisect

# ---------------------------------------------------------------------------
# Lexicon. Within each list, earlier words are more frequent (Zipf weights by
# list position), so the order here is the frequency ranking. It is fixed, not
# shuffled by the seed, so corpora made with different seeds (train vs eval)
# come from the same distribution.
# Each topic: agents (animate nouns, can be subjects), things (object nouns),
# places (nouns after a preposition), tverbs (transitive), iverbs
# (intransitive), adjs. All nouns are countable, in the singular; verbs in the
# base form. No surface form is both a noun and a verb or adjective, so the
# agreement checks in the tests can tag words unambiguously.
# ---------------------------------------------------------------------------

_TOPICS = {
    "farm": dict(
        agents="farmer goat cow horse pig hen lamb rooster donkey ram",
        things="bucket fence tractor apple seed basket rope gate carrot egg pumpkin wagon shovel haystack saddle",
        places="barn field meadow pond stable orchard",
        tverbs="feed milk brush count carry plant harvest herd load shear",
        iverbs="graze sleep wander bleat trot",
        adjs="hungry muddy sleepy woolly dusty brown fat noisy lazy rusty"),
    "sea": dict(
        agents="sailor captain fisherman whale dolphin seal crab gull pirate diver",
        things="net anchor sail boat shell map compass barrel lantern oar hook flag telescope chest buoy",
        places="harbor beach island dock reef lighthouse",
        tverbs="steer row mend haul tie raise spot chart drop scrub",
        iverbs="swim dive float drift splash",
        adjs="salty wet stormy blue deep windy calm sandy brave wild"),
    "city": dict(
        agents="driver officer mayor tourist painter waiter clerk child neighbor banker",
        things="taxi bus bicycle ticket newspaper umbrella bench sign lamp phone wallet key coin bag camera",
        places="station square street tower bridge cafe",
        tverbs="drive visit follow photograph clean paint call fix lock check",
        iverbs="hurry shout walk stroll honk",
        adjs="busy crowded tall bright loud modern shiny yellow late quick"),
    "kitchen": dict(
        agents="chef baker grandmother cat mouse guest butler father aunt kitten",
        things="pot pan spoon knife plate bowl cup kettle cake pie loaf cookie jar onion apron",
        places="table stove cupboard sink pantry oven",
        tverbs="stir bake slice wash taste boil pour chop fry peel",
        iverbs="cook eat hum nibble munch",
        adjs="hot sweet fresh sticky warm spicy crispy tasty greasy sour"),
    "school": dict(
        agents="teacher student pupil boy girl principal tutor janitor classmate coach",
        things="pencil notebook ruler eraser backpack crayon globe bell poster chair sticker lunchbox desk chalkboard quiz",
        places="classroom hallway playground gym office cafeteria",
        tverbs="write spell draw erase copy teach learn solve sharpen study",
        iverbs="listen giggle whisper nap fidget",
        adjs="clever quiet curious shy neat messy smart polite bored careful"),
    "forest": dict(
        agents="hunter fox wolf bear badger owl rabbit squirrel woodcutter ranger",
        things="log branch acorn mushroom axe pinecone nest berry leaf stick trap feather stump twig root",
        places="path cave clearing hollow cabin thicket",
        tverbs="gather track collect sniff bury snap stack hunt split pick",
        iverbs="howl creep hide roam growl",
        adjs="dark green mossy shady silent gloomy leafy prickly damp furry"),
    "mountain": dict(
        agents="climber guide eagle hermit miner shepherd skier yak marmot goatherd",
        things="boot helmet pickaxe tent sled torch crystal pebble ladder canteen glove rope blanket kite flute",
        places="peak cliff ridge valley glacier summit",
        tverbs="climb pack lift grab pitch push pull drag tow hold",
        iverbs="shiver slip hike yodel pant",
        adjs="snowy steep icy rocky frozen misty narrow chilly bare rough"),
    "hospital": dict(
        agents="doctor nurse patient surgeon visitor baby dentist paramedic orderly midwife",
        things="bandage pill needle clipboard thermometer pillow mask stretcher syringe wheelchair splint vase tray crutch gown",
        places="ward corridor clinic lobby pharmacy bedside",
        tverbs="examine treat measure weigh wrap cure heal inject comfort prescribe",
        iverbs="cough sneeze groan yawn doze",
        adjs="sick pale healthy sterile sore gentle worried weak feverish anxious"),
    "garden": dict(
        agents="gardener bee butterfly snail worm bird ladybug frog beetle robin",
        things="rose tulip daisy hose rake trowel sunflower bulb vine thorn sprout lily seedling hedgehog wheelbarrow",
        places="flowerbed greenhouse lawn hedge shed fountain",
        tverbs="water prune trim weed sow mow spray smell tend arrange",
        iverbs="buzz bloom crawl flutter hop",
        adjs="sunny colorful pink purple wilted fragrant thorny tiny red lovely"),
    "market": dict(
        agents="merchant vendor customer butcher grocer shopper trader cashier juggler fishmonger",
        things="orange melon pear grape sack ribbon carpet scarf necklace crate spice lemon cabbage bracelet purse",
        places="stall booth counter alley warehouse arcade",
        tverbs="buy sell trade sort offer display choose pay weigh bargain",
        iverbs="haggle browse chatter argue queue",
        adjs="cheap expensive ripe juicy fancy round striped heavy rare golden"),
    "castle": dict(
        agents="king queen knight prince princess guard jester dragon wizard servant",
        things="sword shield crown banner goblet scroll ring cloak spear jewel cannon potion chalice lance arrow",
        places="hall courtyard dungeon moat throne drawbridge",
        tverbs="defend attack rule command summon seize protect capture banish honor",
        iverbs="kneel march feast tremble bow",
        adjs="royal noble ancient proud grand cruel loyal fierce majestic wicked"),
    "river": dict(
        agents="ferryman otter beaver heron angler toad eel kingfisher boatman miller",
        things="canoe raft pole reed rod jug wheel lure cork pail bridge stone dragonfly tadpole minnow",
        places="bank waterfall mill ford shore marsh",
        tverbs="catch cross launch cast reel scoop rinse fill soak dunk",
        iverbs="wade croak bob glide dart",
        adjs="murky swift shallow cool slippery wide foamy grassy winding clear"),
    "library": dict(
        agents="librarian reader scholar author poet professor editor translator archivist bookworm",
        things="book novel atlas dictionary magazine letter bookmark manuscript catalog candle journal envelope poem story ladder",
        places="aisle shelf archive attic basement alcove",
        tverbs="read borrow return stamp translate open close recommend review skim",
        iverbs="murmur ponder nod frown sigh",
        adjs="thin thick boring famous forgotten secret hidden overdue tattered faded"),
    "workshop": dict(
        agents="carpenter blacksmith tinker apprentice inventor mechanic plumber potter weaver welder",
        things="hammer nail saw wrench plank bolt chisel drill gear anvil hinge lever pulley toolbox vise",
        places="workbench forge garage loft cellar storeroom",
        tverbs="build repair sand bend weld carve glue tighten design assemble",
        iverbs="whistle sweat grumble toil squint",
        adjs="sharp wooden metal sturdy loose oily dented crooked smooth handy"),
    "theater": dict(
        agents="actor dancer singer clown magician musician director usher acrobat puppeteer",
        things="costume wig script puppet trumpet violin drum spotlight program prop fan hat bouquet cape mirror",
        places="stage balcony curtain pit foyer gallery",
        tverbs="perform rehearse juggle applaud tune announce adjust practice admire play",
        iverbs="dance sing cheer clap twirl",
        adjs="funny dramatic nervous silly graceful sparkly elegant rowdy velvet famous"),
    "desert": dict(
        agents="nomad camel lizard scorpion explorer vulture snake jackal tortoise hawk",
        things="flask blanket turban sandal bone skull cactus rug gem amulet canteen map compass lantern waterskin",
        places="dune oasis canyon ruin mesa temple",
        tverbs="ride unpack search lead sip shelter wear spy scan share",
        iverbs="bask hiss trudge stumble burrow",
        adjs="dry thirsty blazing empty vast scorching barren lonely parched endless"),
}

# Shared across topics: a little vocabulary every passage can use, as in real text.
_GENERIC = dict(
    tverbs="see like find want watch help love notice",
    iverbs="smile wait sit rest laugh",
    adjs="old young big small little happy new sad",
)

_IRREGULAR_PLURALS = {
    "fisherman": "fishermen", "ferryman": "ferrymen", "boatman": "boatmen",
    "child": "children", "mouse": "mice", "knife": "knives", "loaf": "loaves",
    "wolf": "wolves", "leaf": "leaves", "shelf": "shelves", "scarf": "scarves",
    "cactus": "cacti", "oasis": "oases",
}


def _suffix_s(word):
    """English -s/-es/-ies suffix, shared by noun plurals and 3rd-person verbs."""
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def _plural(noun):
    return _IRREGULAR_PLURALS.get(noun) or _suffix_s(noun)


def _third_person(verb):
    """'feed' -> 'feeds': the verb form for a singular subject."""
    return _suffix_s(verb)


# ---------------------------------------------------------------------------
# Names: invented, multi-syllable, so a byte-level BPE splits them into
# several pieces and the model must copy them from context. The pool is made
# once from a fixed seed (not the corpus seed), so the same names exist in
# every corpus. Gender shows in the ending (-a, -ine... vs -or, -ic...), which
# makes pronoun agreement learnable from the name itself.
# ---------------------------------------------------------------------------

_NAME_SEED = 20250101
_N_NAMES = 400
_ONSETS = ("b", "br", "c", "d", "dr", "f", "g", "gr", "h", "j", "k", "l", "m", "n",
           "p", "r", "s", "t", "th", "tr", "v", "z")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ei", "ou")
_CODAS = ("", "", "", "l", "n", "r", "s", "m")
# Endings start with a vowel so the last onset + ending stays pronounceable.
_ENDINGS = {"f": ("a", "ine", "elle", "ia", "ora", "issa", "ene"),
            "m": ("or", "ic", "an", "us", "ek", "in", "aldo", "on")}
_PRONOUNS = {"f": ("she", "her", "her"), "m": ("he", "him", "his")}  # subject, object, possessive


def _make_names():
    rng = random.Random(_NAME_SEED)
    names = {}  # name -> gender; a dict keeps insertion order, a set would not
    while len(names) < _N_NAMES:
        gender = rng.choice("fm")
        syllables = [rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)
                     for _ in range(rng.choice((1, 1, 2)))]
        ending = rng.choice(_ONSETS) + rng.choice(_ENDINGS[gender])
        name = ("".join(syllables) + ending).capitalize()
        if name not in names and 5 <= len(name) <= 12:
            names[name] = gender
    return list(names.items())


# ---------------------------------------------------------------------------
# Weighted sampling. A table is (items, cumulative weights normalised to end
# at exactly 1.0); drawing is one bisect, several times faster than
# random.choices(..., k=1) (measured: ~0.6 vs ~3 us per draw).
# ---------------------------------------------------------------------------

def _zipf_table(items, exponent=1.0):
    """Sampling table for `items` with weight 1/rank**exponent (rank 1 first)."""
    weights = [1.0 / rank ** exponent for rank in range(1, len(items) + 1)]
    norm, total, cum = sum(weights), 0.0, []
    for w in weights:
        total += w / norm
        cum.append(total)
    cum[-1] = 1.0  # so bisect(cum, u) < len(items) for any u in [0, 1)
    return (list(items), cum)


def _draw(rng, table):
    items, cum = table
    return items[bisect(cum, rng.random())]


# lexicon key -> sampling-table key
_KINDS = {"agents": "agent", "things": "thing", "places": "place",
          "tverbs": "tverb", "iverbs": "iverb", "adjs": "adj"}


def _build_lexicon():
    """Sampling tables per topic, and for the shared words; built once at import."""
    lexicon = {topic: {_KINDS[k]: _zipf_table(v.split()) for k, v in lists.items()}
               for topic, lists in _TOPICS.items()}
    shared = {_KINDS[k]: _zipf_table(v.split()) for k, v in _GENERIC.items()}
    return lexicon, shared


_LEXICON, _SHARED = _build_lexicon()
_TOPIC_NAMES = list(_TOPICS)
_NAMES = _make_names()
# Names: Zipf with a small exponent. Some names are common (like real names),
# but the pool is big enough that two passages rarely share one.
_NAME_TABLE = _zipf_table(range(_N_NAMES), exponent=0.6)

# Function words with their probabilities, fixed, so the top ranks of the
# frequency list look like English ("the", ".", "a", ...).
_DET_SG = _zipf_table(["the", "a", "this", "that", "every", "one"], exponent=1.6)
_DET_PL = _zipf_table(["the", "some", "these", "two", "those", "three", "many", "several"],
                      exponent=1.4)
_DET_COUNT = _zipf_table(["some", "two", "three", "many", "several"], exponent=0.5)
_PREPS = _zipf_table(["near", "by", "behind", "beside", "under", "at", "inside", "around"],
                     exponent=0.9)

# How topical a passage is; the gap between a bigram model and a model that
# reads the passage so far comes mostly from these two.
# _P_CAST: chance a noun comes from the passage's own small cast (burstiness);
# _P_TOPICAL: chance a verb/adjective comes from the topic, not the shared list.
# With 0.5/0.8 the course's tiny GPT-NeoX (4x64, 2000 steps of 16x128 tokens)
# ended 1.27 nats/token below an add-k token bigram on held-out text.
_P_CAST = 0.5
_P_TOPICAL = 0.8


def _tag_words():
    """Every surface form -> set of tags ('N_SG', 'N_PL', 'V_SG', 'V_PL', 'ADJ',
    'NAME_F', 'NAME_M'). Private; the tests use it to check agreement."""
    tags = {}

    def add(word, tag):
        tags.setdefault(word, set()).add(tag)

    for lists in list(_TOPICS.values()) + [_GENERIC]:
        for key, words in lists.items():
            for w in words.split():
                if key in ("agents", "things", "places"):
                    add(w, "N_SG")
                    add(_plural(w), "N_PL")
                elif key in ("tverbs", "iverbs"):
                    add(w, "V_PL")
                    add(_third_person(w), "V_SG")
                else:
                    add(w, "ADJ")
    for name, gender in _NAMES:
        add(name, "NAME_F" if gender == "f" else "NAME_M")
    return tags


# ---------------------------------------------------------------------------
# The generator. One _Passage holds the state that makes a passage coherent:
# its topic, its cast of names and nouns, and the last-mentioned name (which
# every he/she/him/her/his refers to).
# ---------------------------------------------------------------------------

class _Passage:
    """Writes the sentences of one passage; every draw comes from `rng`."""

    def __init__(self, rng):
        self.rng = rng
        self.topic = _TOPIC_NAMES[rng.randrange(len(_TOPIC_NAMES))]
        self.lex = _LEXICON[self.topic]
        # 2-4 distinct names, drawn Zipf-weighted from the pool.
        n_names = rng.randint(2, 4)
        picked = []
        while len(picked) < n_names:
            i = _draw(rng, _NAME_TABLE)
            if i not in picked:
                picked.append(i)
        self.names = [_NAMES[i] for i in picked]
        self.introduced = 0  # names are introduced in order
        self.last = None  # (name, gender) of the most recently written name
        # A small cast of nouns the passage keeps returning to (burstiness:
        # a passage about a farm is mostly about *its* goats and *its* barn).
        self.cast = {kind: [_draw(rng, self.lex[kind]) for _ in range(k)]
                     for kind, k in (("agent", 2), ("thing", 3), ("place", 2))}

    # -- words -------------------------------------------------------------
    def noun(self, kind):
        if self.rng.random() < _P_CAST:
            cast = self.cast[kind]
            return cast[self.rng.randrange(len(cast))]
        return _draw(self.rng, self.lex[kind])

    def adj(self):
        table = self.lex["adj"] if self.rng.random() < _P_TOPICAL else _SHARED["adj"]
        return _draw(self.rng, table)

    def verb(self, kind, singular):
        table = self.lex[kind] if self.rng.random() < _P_TOPICAL else _SHARED[kind]
        v = _draw(self.rng, table)
        return _third_person(v) if singular else v

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
        return _PRONOUNS[self.last[1]][case]

    # -- phrases -----------------------------------------------------------
    def np(self, kind, singular, det=None):
        """Determiner + 0-2 adjectives + noun, with determiner-noun agreement."""
        rng = self.rng
        if det is None:
            det = _draw(rng, _DET_SG if singular else _DET_PL)
        words = [det]
        u = rng.random()
        if u < 0.45:
            words.append(self.adj())
            if u < 0.08:
                words.append(self.adj())
        noun = self.noun(kind)
        words.append(noun if singular else _plural(noun))
        if words[0] == "a" and words[1][0] in "aeiou":
            words[0] = "an"
        return " ".join(words)

    def pp(self):
        return _draw(self.rng, _PREPS) + " " + self.np("place", self.rng.random() < 0.7,
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
            where = _draw(rng, _PREPS) + " " + self.np("place", True, det="the")
            det = "a" if singular else _draw(rng, _DET_COUNT)
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
