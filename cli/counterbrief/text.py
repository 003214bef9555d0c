"""Text rules shared by every stage: what "verbatim" allows, citations, slugs, Arabic analysis.

Redaction is ``redact.py``."""
from __future__ import annotations

import re

# STORY-FORMAT.md: verbatim allows only runs of white space, straight versus typographic
# quotes and apostrophes, and the case of the first letter.
_QUOTES = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
})
_SPACE = re.compile(r"\s+")


# Every run of white space but a single plain space: the same result as replacing every run,
# without rewriting the millions of single spaces of a long snapshot.
_QUOTE_PAIRS = tuple((chr(k), v) for k, v in _QUOTES.items())
_SPACE_RUN = re.compile(r"\s{2,}|[^\S ]")
NORMALISE_CHUNK = 1 << 20


def normalise(text: str) -> str:
    """Typographic quotes made straight and every run of white space one space, stripped.

    A long text (a 20 MB snapshot) is done a chunk at a time: one pass over the whole held a
    quarter of a gigabyte of pieces at once.
    """
    out = []
    last_space = False
    for start in range(0, len(text), NORMALISE_CHUNK):
        piece = text[start:start + NORMALISE_CHUNK]
        for typographic, straight in _QUOTE_PAIRS:   # str.replace: far quicker than translate on long text
            if typographic in piece:
                piece = piece.replace(typographic, straight)
        piece = _SPACE_RUN.sub(" ", piece)
        if last_space and piece.startswith(" "):   # a run of white space across two chunks is one space
            piece = piece[1:]
        if piece:
            out.append(piece)
            last_space = piece.endswith(" ")
    return "".join(out).strip()


def find_verbatim(quote: str, snapshot_normalised: str) -> bool:
    """Is the quote in the (already normalised) snapshot, as STORY-FORMAT.md defines verbatim?"""
    q = normalise(quote)
    if not q:
        return False
    if q in snapshot_normalised:
        return True
    first = q[0]
    swapped = first.lower() if first.isupper() else first.upper()
    return swapped != first and (swapped + q[1:]) in snapshot_normalised


PLAIN_SEARCH_BELOW = 2_000_000   # quotes x snapshot characters: below it, one search per quote is quicker


def find_all_verbatim(quotes: list[str], snapshot_normalised: str) -> list[bool]:
    """``find_verbatim`` for many quotes at once, in one pass over the snapshot.

    A quote at a time costs a scan of the snapshot per quote (2,000 quotes against 20 MB took
    32 s); an Aho-Corasick automaton over every quote (both cases of its first letter) finds them
    all in one scan. Small jobs keep the plain search, which needs no automaton.
    """
    variants: list[tuple[str, ...]] = []
    for quote in quotes:
        q = normalise(quote)
        if not q:
            variants.append(())
            continue
        first = q[0]
        swapped = first.lower() if first.isupper() else first.upper()
        variants.append((q,) if swapped == first else (q, swapped + q[1:]))
    if len(quotes) * len(snapshot_normalised) < PLAIN_SEARCH_BELOW:
        return [any(v in snapshot_normalised for v in vs) for vs in variants]
    import ahocorasick

    keys = sorted({v for vs in variants for v in vs})
    if not keys:
        return [False] * len(quotes)
    found = bytearray(len(keys))
    pending = list(range(len(keys)))
    # Every match is reported, overlapping ones too: quotes that are suffixes of each other on a
    # repetitive text could report many per character. So the matches looked at in one scan are
    # bounded; when the bound is reached, the scan starts again with only the quotes not yet
    # found (each such round has found at least one), usually none of which match at all.
    while pending:
        automaton = ahocorasick.Automaton(ahocorasick.STORE_INTS)
        for n in pending:
            automaton.add_word(keys[n], n)
        automaton.make_automaton()
        left, budget = len(pending), len(snapshot_normalised) + 100_000
        for _, n in automaton.iter(snapshot_normalised):
            if not found[n]:
                found[n] = 1
                left -= 1
                if not left:
                    break
            budget -= 1
            if not budget:
                break
        if budget:
            break
        pending = [n for n in pending if not found[n]]
    index = {key: n for n, key in enumerate(keys)}
    return [any(found[index[v]] for v in vs) for vs in variants]


def citation(source: dict) -> str:
    """One source as a line of text: outlet, author, title, date, the outlet it cites, URL, retrieval."""
    parts = [source.get("outlet"), source.get("author") and f"by {source['author']}",
             source.get("title") and f"\u201c{source['title']}\u201d", source.get("published"),
             source.get("via") and f"citing {source['via']}" + _via_detail(source), source.get("url"),
             source.get("retrieved") and f"retrieved {source['retrieved']}"]
    return ", ".join(p for p in parts if p) or "source details not recorded"


def _via_detail(source: dict) -> str:
    """The cited report's authors, title and date, when the curator recorded them."""
    parts = [source.get("via_author"), source.get("via_title") and f"\u201c{source['via_title']}\u201d",
             source.get("via_published")]
    shown = ", ".join(p for p in parts if p)
    return f" ({shown})" if shown else ""


def slugify(text: str) -> str:
    """A lowercase ASCII id from a name in any script: transliterated (python-slugify with
    text-unidecode), so "Abū ʿAbdullāh al-Faransī" is abu-abdullah-al-faransi; at most 80 characters,
    cut at a hyphen."""
    from slugify import slugify as transliterate

    return transliterate(str(text), max_length=80, word_boundary=True)


# ----------------------------------------------------------------------------- Arabic
# Normalisation and light stemming (after Larkey et al.'s "light10"), applied only to words
# written in Arabic script, so the same analysis serves Arabic words inside any story.
_HARAKAT = re.compile("[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed\u0640]")  # diacritics and tatweel
_ALEF = str.maketrans({"\u0623": "\u0627", "\u0625": "\u0627", "\u0622": "\u0627", "\u0671": "\u0627",
                       "\u0629": "\u0647", "\u0649": "\u064a"})  # alef variants, ta marbuta, alef maqsura
_AR_PREFIXES = ("\u0648\u0627\u0644", "\u0628\u0627\u0644", "\u0643\u0627\u0644", "\u0641\u0627\u0644",
                "\u0644\u0644", "\u0627\u0644")  # وال بال كال فال لل ال
_AR_SUFFIXES = ("\u0647\u0627", "\u0627\u0646", "\u0627\u062a", "\u0648\u0646", "\u0648\u0627", "\u064a\u0646",
                "\u064a\u0647", "\u064a\u0629", "\u0647", "\u0629", "\u064a")  # ها ان ات ون وا ين يه ية ه ة ي


def is_arabic(word: str) -> bool:
    # A word's first letter decides: cheap enough to run on every token of every story.
    return bool(word) and "\u0600" <= word[0] <= "\u06ff"


def arabic_normalise(word: str) -> str:
    return _HARAKAT.sub("", word).translate(_ALEF)


def arabic_light_stem(word: str) -> str:
    """Strip the article, a leading wa- and common suffixes, keeping at least a two-letter stem."""
    if len(word) > 3 and word.startswith("\u0648"):  # و "and"
        word = word[1:]
    for prefix in _AR_PREFIXES:
        if word.startswith(prefix) and len(word) - len(prefix) >= 2:
            word = word[len(prefix):]
            break
    for suffix in _AR_SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 2:
            word = word[: -len(suffix)]
    return word


ARABIC_STOP_WORDS = frozenset(arabic_normalise(w) for w in (
    "في من على إلى الى عن أن ان إن كان كانت هذا هذه ذلك التي الذي الذين هو هي هم ما لا لم لن مع كل قد "
    "ثم أو او بين عند بعد قبل حتى إذا اذا كما لقد وقد وكان وهو وهي أي ايضا أيضا قال").split())
