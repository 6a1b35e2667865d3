"""The mini benchmark's vocabulary and the three transforms that turn English into a synthetic language.

1. Vocabulary: every English word gets a deterministic pseudo-word per family (SVO: qa, qc, qe; SOV: qb, qd, qf),
   built from syllables drawn with a hash of the word, so the languages of a family share stems; each language
   then shifts one vowel, so family members are related but not identical.
2. Word order (fslib.prepare.mini.syntax): the SOV family puts the verb last and adjectives after nouns.
3. Script: the result is transliterated letter by letter into Latin (identity), Cyrillic or Greek.

Names (people, organisations, places, titles of works) are never translated, only transliterated: Latin-script
languages share them with English, Cyrillic ones with each other, Greek ones with each other. Since every
letter maps into its script's own Unicode block, a Cyrillic word form can never equal a Latin or Greek one;
only tokens without letters (punctuation, digits, symbols) are shared across scripts.

The lexicon does not depend on the generation seed: the languages are fixed, the seed only changes the data.
"""

from __future__ import annotations

import hashlib
from functools import cache

from fslib.core.languages import MINI_LANGUAGES

# --- English words, by part of speech -------------------------------------------------------------------------

DETERMINERS = ("the", "a", "an", "this", "that", "every", "some", "these", "those")
SUBJECT_PRONOUNS = {"he": False, "she": False, "it": False, "they": True, "we": True, "you": True}  # -> plural
OBJECT_PRONOUNS = ("him", "her", "them", "us", "me")
ADPOSITIONS = ("in", "on", "at", "for", "with", "from", "to", "near", "after", "before", "about", "by", "of")
CONJUNCTIONS = ("and", "but", "or")
SUBORDINATORS = ("because", "when", "if", "while", "although")  # "that" too, after verbs of saying
INTERJECTIONS = ("oh", "yes", "well", "wow", "hey", "hello")
ADVERBS = ("quickly", "slowly", "often", "always", "never", "again", "also", "soon", "yesterday", "today",
           "tomorrow", "here", "there", "well", "together", "alone")
DEGREE_ADVERBS = ("very", "really", "quite")
X_WORDS = ("etc", "ibid", "viz")  # UD tags these X (abbreviated foreign words)
NUMBER_WORDS = ("two", "three", "four", "five", "six", "seven", "ten", "twelve", "twenty")
TITLES = ("Mr", "Ms", "Dr")  # PROPN in UD, but words of the language (translated), and O for NER

# Adjectives in classes: swapping within a class is a contradiction for XNLI ("red car" vs "blue car").
ADJECTIVE_CLASSES = (
    ("red", "blue", "green", "black", "white", "yellow"),
    ("old", "new"),
    ("young", "elderly"),
    ("large", "small"),
    ("cheap", "expensive"),
    ("quiet", "busy"),
    ("happy", "tired", "angry"),
    ("famous", "unknown"),
    ("modern", "ancient"),
)
ADJECTIVES = tuple(adj for group in ADJECTIVE_CLASSES for adj in group)
# Adjectives that suit people; the others suit things.
PERSON_ADJECTIVES = ("young", "elderly", "happy", "tired", "angry", "famous", "unknown", "old")

# (singular, plural)
PERSON_NOUNS = (("teacher", "teachers"), ("doctor", "doctors"), ("student", "students"), ("farmer", "farmers"),
                ("driver", "drivers"), ("engineer", "engineers"), ("writer", "writers"), ("singer", "singers"),
                ("child", "children"), ("friend", "friends"), ("lawyer", "lawyers"), ("nurse", "nurses"),
                ("mayor", "mayors"), ("player", "players"), ("artist", "artists"), ("neighbour", "neighbours"))
THING_NOUNS = (("house", "houses"), ("car", "cars"), ("letter", "letters"), ("song", "songs"),
               ("game", "games"), ("market", "markets"), ("road", "roads"), ("garden", "gardens"),
               ("film", "films"), ("hotel", "hotels"), ("bridge", "bridges"), ("school", "schools"),
               ("museum", "museums"), ("library", "libraries"), ("office", "offices"), ("prize", "prizes"),
               ("ship", "ships"), ("tree", "trees"), ("window", "windows"), ("door", "doors"),
               ("meal", "meals"), ("story", "stories"), ("room", "rooms"), ("bicycle", "bicycles"),
               ("computer", "computers"), ("painting", "paintings"), ("ticket", "tickets"), ("boat", "boats"),
               ("phone", "phones"), ("shoe", "shoes"), ("chair", "chairs"), ("bottle", "bottles"))
GROUP_NOUNS = (("company", "companies"), ("team", "teams"), ("bank", "banks"), ("city", "cities"),
               ("village", "villages"))
# Words that are NOUN after a determiner and VERB after a subject: (singular, plural = 3sg, base, past).
AMBIGUOUS = (("book", "books", "book", "booked"), ("plan", "plans", "plan", "planned"),
             ("visit", "visits", "visit", "visited"), ("record", "records", "record", "recorded"),
             ("study", "studies", "study", "studied"), ("report", "reports", "report", "reported"),
             ("watch", "watches", "watch", "watched"), ("design", "designs", "design", "designed"),
             ("paint", "paints", "paint", "painted"), ("call", "calls", "call", "called"))

# (base, 3rd person singular, past)
TRANSITIVE_VERBS = (("build", "builds", "built"), ("sell", "sells", "sold"), ("buy", "buys", "bought"),
                    ("write", "writes", "wrote"), ("read", "reads", "read"), ("open", "opens", "opened"),
                    ("close", "closes", "closed"), ("find", "finds", "found"), ("like", "likes", "liked"),
                    ("help", "helps", "helped"), ("need", "needs", "needed"), ("love", "loves", "loved"),
                    ("clean", "cleans", "cleaned"), ("move", "moves", "moved"), ("win", "wins", "won"),
                    ("lose", "loses", "lost"), ("see", "sees", "saw"), ("make", "makes", "made"),
                    ("repair", "repairs", "repaired"), ("carry", "carries", "carried"),
                    ("describe", "describes", "described"), ("show", "shows", "showed"))
TRANSITIVE_VERBS += tuple((base, third, past) for _, third, base, past in AMBIGUOUS)
# Verbs whose object may be a quoted title ("wrote "Blue River"").
TITLE_VERBS = (("write", "writes", "wrote"), ("read", "reads", "read"), ("like", "likes", "liked"),
               ("record", "records", "recorded"), ("describe", "describes", "described"))
# Intransitive verbs with the adposition and entity type of their typical complement.
INTRANSITIVE_VERBS = ((("live", "lives", "lived"), "in", "LOC"), (("work", "works", "worked"), "for", "ORG"),
                      (("travel", "travels", "travelled"), "to", "LOC"),
                      (("arrive", "arrives", "arrived"), "in", "LOC"),
                      (("speak", "speaks", "spoke"), "with", "PER"), (("wait", "waits", "waited"), "for", "PER"),
                      (("sleep", "sleeps", "slept"), "in", "LOC"), (("study", "studies", "studied"), "at", "ORG"),
                      (("dance", "dances", "danced"), "with", "PER"), (("stay", "stays", "stayed"), "in", "LOC"))
SAY_VERBS = (("say", "says", "said"), ("think", "thinks", "thought"), ("know", "knows", "knew"))
WANT_VERBS = (("want", "wants", "wanted"), ("hope", "hopes", "hoped"), ("try", "tries", "tried"))
CHANGE_VERBS = (("rise", "rises", "rose"), ("fall", "falls", "fell"))
# AUX forms by tense and number; DO_SUPPORT for negated present and past.
COPULA = {("present", False): "is", ("present", True): "are", ("past", False): "was", ("past", True): "were"}
MODALS = ("will", "can", "must")
DO_SUPPORT = {("present", False): "does", ("present", True): "do", ("past", False): "did", ("past", True): "did"}
# Words of the fact sentences and questions of TyDiQA.
QA_WORDS = ("born", "founded", "based", "marry", "married", "have", "has", "children", "employees", "where", "who",
            "whom", "what", "which", "how", "many", "year", "runs", "as")
MISC_WORDS = ("not", "to", "'s", "that", "price", "number")

# --- Names (never translated) ---------------------------------------------------------------------------------

FIRST_NAMES = ("Anna", "Boris", "Carla", "Dmitri", "Elena", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Kira",
               "Luca", "Mira", "Nadia", "Oskar", "Paulo", "Rosa", "Stefan", "Tomas", "Ulla", "Viktor", "Wanda",
               "Yusuf", "Zara", "Amir", "Bianca", "Cyril", "Dora", "Emil", "Freya", "Goran", "Helga", "Igor",
               "Jana", "Karim", "Lena", "Marek", "Nora", "Otto", "Petra", "Rafael", "Sonja", "Teodor", "Vera",
               "Walter", "Xenia", "Yara", "Zoltan", "Ivo", "Ada", "Leila", "Mateo", "Noor", "Selma", "Tarik",
               "Olga", "Pablo", "Hana", "Dario", "Ilse")
LAST_NAMES = ("Novak", "Lindqvist", "Moreau", "Okafor", "Petrov", "Rossi", "Schmidt", "Tanaka", "Umarov", "Vidal",
              "Weber", "Yilmaz", "Zeller", "Andersen", "Barros", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia",
              "Hansen", "Ivanova", "Jensen", "Kowalski", "Larsen", "Meier", "Nilsen", "Olsen", "Pereira", "Quinn",
              "Richter", "Santos", "Torres", "Urban", "Varga", "Wagner", "Horvat", "Kovacs", "Lambert", "Mendes",
              "Nowak", "Ortega", "Popescu", "Romero", "Silva", "Tamm", "Valdez", "Wolff", "Berg", "Castro",
              "Haddad", "Mensah", "Sato", "Kaya", "Dahl", "Brandt", "Ferreira", "Janssen", "Keller", "Lund")
ORG_STEMS = ("Acme", "Northwind", "Zenith", "Orion", "Blue Harbor", "Silver Lake", "Redstone", "Polaris", "Vega",
             "Nimbus", "Apex", "Crescent", "Falcon", "Granite", "Helix", "Ironwood", "Juniper", "Kestrel", "Lumen",
             "Meridian", "Nova", "Oakridge", "Pinnacle", "Quasar", "Radiant", "Summit", "Titan", "Umbra",
             "Vertex", "Willow", "Golden Gate", "Black Rock", "Evergreen", "Sunrise", "Tidewater", "Copperfield")
ORG_SUFFIXES = ("Holdings", "Bank", "Group", "Motors", "Labs", "Airlines", "Foods", "Systems", "Media",
                "Energy", "Textiles", "Press", "Insurance", "Records")
LOCATIONS = ("Tarvik", "Elmora", "Kastel", "Dunmore", "Valbruna", "Orsk", "Belmonte", "Caldera", "Drovna",
             "Estavia", "Fenwick", "Glenholm", "Ilvaro", "Jorvik", "Korsa", "Lindau", "Marvella", "Nesbit",
             "Ostrava", "Pavona", "Quillan", "Rovigo", "Saltmarsh", "Trevena", "Ulmeri", "Varna", "Westby",
             "Paris", "Oslo", "Lima", "Cairo", "Tokyo", "Berlin", "Madrid", "Nairobi", "Lagos", "Delhi", "Quito",
             "Port Elinor", "New Tarvik", "San Lorenzo", "Lake Miren", "Mount Kelda", "North Varen", "Santa Aurelia",
             "East Holm", "Bay of Sarn", "Upper Drovna")
TITLES_OF_WORKS = ("Blue River", "The Long Night", "Silent Harbor", "Winter Roads", "Paper Moon", "Golden Fields",
                   "The Last Train", "Stone Garden", "Red Lanterns", "Northern Light")

# --- The synthetic languages ----------------------------------------------------------------------------------

FAMILY = {code: ("svo" if lang.family.endswith("SVO") else "sov") for code, lang in MINI_LANGUAGES.items()}
SCRIPT = {"en": "Latin", **{code: lang.script for code, lang in MINI_LANGUAGES.items()}}
# The "small language-specific change" within a family: one vowel shifted in every translated word.
VOWEL_SHIFT = {"qa": "", "qc": "ou", "qe": "ei", "qb": "", "qd": "ae", "qf": "iy"}

# Letter-by-letter maps; both are injective so that distinct Latin forms stay distinct.
_CYRILLIC = dict(zip("abcdefghijklmnopqrstuvwxyz", "абцдефгхийклмнопщрстувшжыз"))
_GREEK = dict(zip("abcdefghijklmnopqrstuvwxyz", "αβξδεφγηιϳκλμνοπθρστυψωχύζ"))
_SCRIPT_MAPS = {"Cyrillic": _CYRILLIC, "Greek": _GREEK}

# Syllable inventories: the families sound different (SVO: open syllables; SOV: closed final syllables).
_CONSONANTS = {"svo": "bdfgklmnprstvz", "sov": "bcghjkmnprstwx"}
_VOWELS = "aeiou"


def vocabulary() -> tuple[str, ...]:
    """Every English word (lower case, titles excepted) that the grammar may emit, sorted."""
    words: set[str] = set()
    words.update(DETERMINERS, SUBJECT_PRONOUNS, OBJECT_PRONOUNS, ADPOSITIONS, CONJUNCTIONS, SUBORDINATORS,
                 INTERJECTIONS, ADVERBS, DEGREE_ADVERBS, X_WORDS, NUMBER_WORDS, TITLES, ADJECTIVES, QA_WORDS,
                 MISC_WORDS, MODALS, COPULA.values(), DO_SUPPORT.values())
    for pairs in (PERSON_NOUNS, THING_NOUNS, GROUP_NOUNS, AMBIGUOUS):
        for forms in pairs:
            words.update(forms)
    for triples in (TRANSITIVE_VERBS, SAY_VERBS, WANT_VERBS, CHANGE_VERBS):
        for forms in triples:
            words.update(forms)
    for forms, adposition, _ in INTRANSITIVE_VERBS:
        words.update(forms)
        words.add(adposition)
    return tuple(sorted(words))


def _pseudo_word(word: str, family: str, attempt: int) -> str:
    # A hash (not Python's salted hash()) makes the stem a fixed function of the word and the family.
    digest = hashlib.sha256(f"{family}|{word}|{attempt}".encode()).digest()
    consonants = _CONSONANTS[family]
    syllables = 1 if len(word) <= 3 else 2 if len(word) <= 7 else 3
    letters = []
    for i in range(syllables):
        letters.append(consonants[digest[2 * i] % len(consonants)])
        letters.append(_VOWELS[digest[2 * i + 1] % len(_VOWELS)])
    if syllables == 1 or family == "sov":
        letters.append(consonants[digest[-1] % len(consonants)])
    return "".join(letters)


@cache
def dictionary(lang: str) -> dict[str, str]:
    """English word -> the word of `lang` in Latin letters (before transliteration); injective except that
    "a" and "an" are one word."""
    if lang == "en":
        return {word: word for word in vocabulary()}
    shift = VOWEL_SHIFT[lang]
    table = str.maketrans(shift[0], shift[1]) if shift else {}
    result: dict[str, str] = {}
    used: set[str] = set()
    for word in vocabulary():
        key = word.lower()
        attempt = 0
        while True:
            form = _pseudo_word(key, FAMILY[lang], attempt).translate(table)
            if form not in used:
                break
            attempt += 1  # a collision: draw another stem, so that no two English words merge
        used.add(form)
        result[word] = form.capitalize() if word[0].isupper() else form
    result["an"] = result["a"]  # the synthetic languages have one indefinite article
    return result


def transliterate(text: str, script: str) -> str:
    """`text` (Latin letters) in `script`, letter by letter, keeping case; non-letters are kept."""
    if script == "Latin":
        return text
    mapping = _SCRIPT_MAPS[script]
    out = []
    for char in text:
        lower = char.lower()
        if lower in mapping:
            mapped = mapping[lower]
            out.append(mapped.upper() if char.isupper() else mapped)
        else:
            if char.isalpha():
                raise ValueError(f"no {script} letter for {char!r} in {text!r}")
            out.append(char)
    return "".join(out)


@cache
def translate(word: str, lang: str) -> str:
    """The surface form of the English word `word` in `lang`."""
    try:
        latin = dictionary(lang)[word]
    except KeyError:
        raise KeyError(f"{word!r} is not in the mini benchmark's vocabulary (fslib.prepare.mini.lexicon)") from None
    return transliterate(latin, SCRIPT[lang])


@cache
def name_form(name: str, lang: str) -> str:
    """A name token in `lang`: transliterated, never translated."""
    return transliterate(name, SCRIPT[lang])
