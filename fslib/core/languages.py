"""Language metadata: the paper's Table 3, the language list of each task, and the offline benchmark's languages.

Table 3 is copied as printed, including its oddities (Yoruba and Kazakh under "Arabic" script, Javanese and
Tagalog under "Brahmic"): the script study and the family grouping of the heatmaps follow the paper, so the
kit keeps the paper's labels rather than correcting them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Language:
    code: str  # ISO 639-1 (the synthetic languages of the offline benchmark use the unassigned q* codes)
    name: str
    script: str
    family: str


def _table(rows: str) -> dict[str, Language]:
    table = {}
    for row in rows.strip().splitlines():
        name, code, script, family = (cell.strip() for cell in row.split("|"))
        table[code] = Language(code, name, script, family)
    return table


# Table 3 of the paper (name | code | script | family).
PAPER_LANGUAGES: dict[str, Language] = _table("""
Afrikaans | af | Latin | IE:Germanic
Arabic | ar | Arabic | Afro-Asiatic
Azerbaijani | az | Latin | Turkic
Bulgarian | bg | Cyrillic | IE:Slavic
Bengali | bn | Brahmic | IE:Indo-Aryan
German | de | Latin | IE:Germanic
Greek | el | Greek | IE:Greek
English | en | Latin | IE:Germanic
Spanish | es | Latin | IE:Romance
Estonian | et | Latin | Uralic
Basque | eu | Latin | Basque
Persian | fa | Perso-Arabic | IE:Iranian
Finnish | fi | Latin | Uralic
French | fr | Latin | IE:Romance
Gujarati | gu | Brahmic | IE:Indo-Aryan
Hebrew | he | Jewish | Afro-Asiatic
Hindi | hi | Devanagari | IE:Indo-Aryan
Hungarian | hu | Latin | Uralic
Indonesian | id | Latin | Austronesian
Italian | it | Latin | IE:Romance
Japanese | ja | Ideograms | Japonic
Javanese | jv | Brahmic | Austronesian
Georgian | ka | Georgian | Kartvelian
Kazakh | kk | Arabic | Turkic
Korean | ko | Hangul | Koreanic
Lithuanian | lt | Latin | IE:Baltic
Malayalam | ml | Brahmic | Dravidian
Marathi | mr | Devanagari | IE:Indo-Aryan
Malay | ms | Latin | Austronesian
Burmese | my | Brahmic | Sino-Tibetan
Dutch | nl | Latin | IE:Germanic
Punjabi | pa | Brahmic | IE:Indo-Aryan
Polish | pl | Latin | IE:Slavic
Portuguese | pt | Latin | IE:Romance
CuscoQuechua | qu | Latin | Quechuan
Romanian | ro | Latin | IE:Romance
Russian | ru | Cyrillic | IE:Slavic
Swahili | sw | Latin | Niger-Congo
Tamil | ta | Brahmic | Dravidian
Telugu | te | Brahmic | Dravidian
Thai | th | Brahmic | Kra-Dai
Tagalog | tl | Brahmic | Austronesian
Turkish | tr | Latin | Turkic
Ukrainian | uk | Cyrillic | IE:Slavic
Urdu | ur | Perso-Arabic | IE:Indo-Aryan
Vietnamese | vi | Latin | Austro-Asiatic
Wolof | wo | Latin | Niger-Congo
Yoruba | yo | Arabic | Niger-Congo
Mandarin | zh | Chinese | Ideograms
""")

# The offline benchmark's synthetic languages (fslib.prepare.mini): systematic transforms of English, two word orders
# ("families") crossed with three scripts. Same-script languages share surface forms; Latin ones share them
# with English too.
MINI_LANGUAGES: dict[str, Language] = _table("""
Synthetic Latin SVO | qa | Latin | Synth-SVO
Synthetic Latin SOV | qb | Latin | Synth-SOV
Synthetic Cyrillic SVO | qc | Cyrillic | Synth-SVO
Synthetic Cyrillic SOV | qd | Cyrillic | Synth-SOV
Synthetic Greek SVO | qe | Greek | Synth-SVO
Synthetic Greek SOV | qf | Greek | Synth-SOV
""")

# Languages of the real UD and UNER benchmarks (params/real/*.yaml, the shared folders) that Table 3 does not
# list. UNER's Serbian SET is in Latin script.
EXTRA_LANGUAGES: dict[str, Language] = _table("""
Icelandic | is | Latin | IE:Germanic
Danish | da | Latin | IE:Germanic
Swedish | sv | Latin | IE:Germanic
Croatian | hr | Latin | IE:Slavic
Serbian | sr | Latin | IE:Slavic
Slovak | sk | Latin | IE:Slavic
""")
# English names that treebank folders (UD_<Language>-..., UNER_<Language>-...) use where Table 3 says otherwise.
NAME_ALIASES: dict[str, str] = {"Chinese": "zh"}

LANGUAGES: dict[str, Language] = {**PAPER_LANGUAGES, **EXTRA_LANGUAGES, **MINI_LANGUAGES}

SOURCE_LANG = "en"

# XTREME-R language lists, in the order of XTREME's download script.
TASK_LANGUAGES: dict[str, tuple[str, ...]] = {
    "ner": tuple("ar he vi id jv ms tl eu ml ta te af nl en de el bn hi mr ur fa fr it pt es bg ru ja ka ko th "
                 "sw yo my zh kk tr et fi hu qu pl uk az lt pa gu ro".split()),
    "pos": tuple("af ar bg de el en es et eu fa fi fr he hi hu id it ja kk ko mr nl pt ru ta te tr ur vi zh "
                 "lt pl uk wo ro".split()),
    "tydiqa": tuple("en ar bn fi id ko ru sw te".split()),
    "xnli": tuple("en ar bg de el es fr hi ru sw th tr ur vi zh".split()),
}
# UD languages that XTREME-R evaluates but that have no training split (so no shots): not part of the POS grid.
POS_WITHOUT_TRAIN: tuple[str, ...] = ("th", "tl", "yo")
MINI_LANGS: tuple[str, ...] = ("en", *MINI_LANGUAGES)

# google/xtreme names UD configs by English language name ("udpos.English").
HUB_UD_NAMES: dict[str, str] = {
    "af": "Afrikaans", "ar": "Arabic", "bg": "Bulgarian", "de": "German", "el": "Greek", "en": "English",
    "es": "Spanish", "et": "Estonian", "eu": "Basque", "fa": "Persian", "fi": "Finnish", "fr": "French",
    "he": "Hebrew", "hi": "Hindi", "hu": "Hungarian", "id": "Indonesian", "it": "Italian", "ja": "Japanese",
    "kk": "Kazakh", "ko": "Korean", "mr": "Marathi", "nl": "Dutch", "pt": "Portuguese", "ru": "Russian",
    "ta": "Tamil", "te": "Telugu", "th": "Thai", "tl": "Tagalog", "tr": "Turkish", "ur": "Urdu",
    "vi": "Vietnamese", "yo": "Yoruba", "zh": "Chinese",
}
# XTREME-R additions that google/xtreme on the hub does not have.
HUB_MISSING: dict[str, tuple[str, ...]] = {
    "ner": ("qu", "pl", "uk", "az", "lt", "pa", "gu", "ro"),
    "pos": ("lt", "pl", "uk", "wo", "ro"),
    "tydiqa": (),
    "xnli": (),
}
# TyDiQA question ids on the hub start with the language's English name in lower case.
TYDIQA_ID_PREFIXES: dict[str, str] = {
    "arabic": "ar", "bengali": "bn", "english": "en", "finnish": "fi", "indonesian": "id", "korean": "ko",
    "russian": "ru", "swahili": "sw", "telugu": "te",
}


def language(code: str) -> Language:
    """Metadata of one language; a language the kit does not know gets a placeholder script and family."""
    return LANGUAGES.get(code, Language(code, code, "unknown", "unknown"))


def code_of_name(name: str) -> str | None:
    """The code of a language by its English name as treebank folders write it (`Portuguese`, `Chinese`);
    None for a name the kit does not know."""
    codes = {meta.name: code for code, meta in {**PAPER_LANGUAGES, **EXTRA_LANGUAGES}.items()}
    return NAME_ALIASES.get(name, codes.get(name))


def family_order(codes: list[str]) -> list[str]:
    """Languages grouped by family (families in order of first appearance), as the paper's heatmaps are."""
    families: dict[str, list[str]] = {}
    for code in codes:
        families.setdefault(language(code).family, []).append(code)
    return [code for group in families.values() for code in group]
