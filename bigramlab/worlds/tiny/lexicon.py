"""The tiny world's lexicon: sixteen topics' words, invented names, function words,
and the Zipf-weighted sampling tables the grammar (``grammar``) draws from.

Within each word list, earlier words are more frequent (Zipf weights by list
position), so the order here is the frequency ranking. It is fixed, not
shuffled by the seed, so corpora made with different seeds (train vs eval)
come from the same distribution. Built once at import, deterministically (no
hash() of strings, no iteration over sets). Defined in Chapter 0.
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

TOPICS = {
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
GENERIC = dict(
    tverbs="see like find want watch help love notice",
    iverbs="smile wait sit rest laugh",
    adjs="old young big small little happy new sad",
)

IRREGULAR_PLURALS = {
    "fisherman": "fishermen", "ferryman": "ferrymen", "boatman": "boatmen",
    "child": "children", "mouse": "mice", "knife": "knives", "loaf": "loaves",
    "wolf": "wolves", "leaf": "leaves", "shelf": "shelves", "scarf": "scarves",
    "cactus": "cacti", "oasis": "oases",
}


def suffix_s(word):
    """English -s/-es/-ies suffix, shared by noun plurals and 3rd-person verbs."""
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def plural(noun):
    return IRREGULAR_PLURALS.get(noun) or suffix_s(noun)


def third_person(verb):
    """'feed' -> 'feeds': the verb form for a singular subject."""
    return suffix_s(verb)


# ---------------------------------------------------------------------------
# Names: invented, multi-syllable, so a byte-level BPE splits them into
# several pieces and the model must copy them from context. The pool is made
# once from a fixed seed (not the corpus seed), so the same names exist in
# every corpus. Gender shows in the ending (-a, -ine... vs -or, -ic...), which
# makes pronoun agreement learnable from the name itself.
# ---------------------------------------------------------------------------

NAME_SEED = 20250101
N_NAMES = 400
ONSETS = ("b", "br", "c", "d", "dr", "f", "g", "gr", "h", "j", "k", "l", "m", "n",
           "p", "r", "s", "t", "th", "tr", "v", "z")
VOWELS = ("a", "e", "i", "o", "u", "ai", "ei", "ou")
CODAS = ("", "", "", "l", "n", "r", "s", "m")
# Endings start with a vowel so the last onset + ending stays pronounceable.
ENDINGS = {"f": ("a", "ine", "elle", "ia", "ora", "issa", "ene"),
            "m": ("or", "ic", "an", "us", "ek", "in", "aldo", "on")}
PRONOUNS = {"f": ("she", "her", "her"), "m": ("he", "him", "his")}  # subject, object, possessive


def make_names():
    rng = random.Random(NAME_SEED)
    names = {}  # name -> gender; a dict keeps insertion order, a set would not
    while len(names) < N_NAMES:
        gender = rng.choice("fm")
        syllables = [rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS)
                     for _ in range(rng.choice((1, 1, 2)))]
        ending = rng.choice(ONSETS) + rng.choice(ENDINGS[gender])
        name = ("".join(syllables) + ending).capitalize()
        if name not in names and 5 <= len(name) <= 12:
            names[name] = gender
    return list(names.items())


# ---------------------------------------------------------------------------
# Weighted sampling. A table is (items, cumulative weights normalised to end
# at exactly 1.0); drawing is one bisect, several times faster than
# random.choices(..., k=1) (measured: ~0.6 vs ~3 us per draw).
# ---------------------------------------------------------------------------

def zipf_table(items, exponent=1.0):
    """Sampling table for `items` with weight 1/rank**exponent (rank 1 first)."""
    weights = [1.0 / rank ** exponent for rank in range(1, len(items) + 1)]
    norm, total, cum = sum(weights), 0.0, []
    for w in weights:
        total += w / norm
        cum.append(total)
    cum[-1] = 1.0  # so bisect(cum, u) < len(items) for any u in [0, 1)
    return (list(items), cum)


def draw(rng, table):
    items, cum = table
    return items[bisect(cum, rng.random())]


# lexicon key -> sampling-table key
KINDS = {"agents": "agent", "things": "thing", "places": "place",
          "tverbs": "tverb", "iverbs": "iverb", "adjs": "adj"}


def build_lexicon():
    """Sampling tables per topic, and for the shared words; built once at import."""
    lexicon = {topic: {KINDS[k]: zipf_table(v.split()) for k, v in lists.items()}
               for topic, lists in TOPICS.items()}
    shared = {KINDS[k]: zipf_table(v.split()) for k, v in GENERIC.items()}
    return lexicon, shared


LEXICON, SHARED = build_lexicon()
TOPIC_NAMES = list(TOPICS)
NAMES = make_names()
# Names: Zipf with a small exponent. Some names are common (like real names),
# but the pool is big enough that two passages rarely share one.
NAME_TABLE = zipf_table(range(N_NAMES), exponent=0.6)

# Function words with their probabilities, fixed, so the top ranks of the
# frequency list look like English ("the", ".", "a", ...).
DET_SG = zipf_table(["the", "a", "this", "that", "every", "one"], exponent=1.6)
DET_PL = zipf_table(["the", "some", "these", "two", "those", "three", "many", "several"],
                      exponent=1.4)
DET_COUNT = zipf_table(["some", "two", "three", "many", "several"], exponent=0.5)
PREPS = zipf_table(["near", "by", "behind", "beside", "under", "at", "inside", "around"],
                     exponent=0.9)

def tag_words():
    """Every surface form -> set of tags ('N_SG', 'N_PL', 'V_SG', 'V_PL', 'ADJ',
    'NAME_F', 'NAME_M'). Private; the tests use it to check agreement."""
    tags = {}

    def add(word, tag):
        tags.setdefault(word, set()).add(tag)

    for lists in list(TOPICS.values()) + [GENERIC]:
        for key, words in lists.items():
            for w in words.split():
                if key in ("agents", "things", "places"):
                    add(w, "N_SG")
                    add(plural(w), "N_PL")
                elif key in ("tverbs", "iverbs"):
                    add(w, "V_PL")
                    add(third_person(w), "V_SG")
                else:
                    add(w, "ADJ")
    for name, gender in NAMES:
        add(name, "NAME_F" if gender == "f" else "NAME_M")
    return tags


def number_words():
    """The words that carry grammatical number, for Chapter 9's agreement cases:
    ``(determiners, nouns, adjectives)``: determiner -> True when plural ("the",
    which is both, left out; "an", the grammar's "a" before a vowel, included),
    (singular, plural) noun pairs, and adjectives; each in lexicon order, no repeats."""
    dets = {w: False for w in DET_SG[0] + ["an"] if w != "the"}
    dets |= {w: True for w in DET_PL[0] + DET_COUNT[0] if w != "the"}
    nouns, adjs = {}, {}
    for lists in list(TOPICS.values()) + [GENERIC]:
        for key, words in lists.items():
            for w in words.split():
                if key in ("agents", "things", "places"):
                    nouns[w] = plural(w)
                elif key == "adjs":
                    adjs[w] = True
    return dets, list(nouns.items()), list(adjs)
