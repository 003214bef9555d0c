"""Redaction: a name listed under ``redact:`` in any story reaches no output, in any spelling.

What matches. A text is read in a compared form, character by character, keeping for every
character of that form the range of the original it came from:

- character references are decoded, with or without their semicolon and with any number of
  leading zeros (``&#75;arim``, ``&#x04B;``, ``&iacute``), and so is percent-encoding in addresses
  (``Karim%20Haddad``);
- every character is folded: Unicode compatibility forms (NFKC: fullwidth ``Ｋａｒｉｍ``, circled
  ``Ⓚ``, ligatures, mathematical letters), case (casefold), accents and every other mark;
  Cyrillic, Greek and Armenian letters that look like Latin ones, and Latin small capitals and
  dotless letters, are read as the Latin letter (``Кarim`` with a Cyrillic К, ``ᴋᴀʀɪᴍ``); Arabic
  is normalised as search does (harakat and tatweel dropped, alef forms to alef, ta marbuta to
  ha, alef maqsura and Persian yeh to ya);
- what shows nothing is dropped, so it joins the letters around it: every format character
  (zero-width spaces and joiners, U+2060, soft hyphens, bidi controls, tag characters), every
  mark (variation selectors), tatweel and Hangul fillers;
- spaces, line breaks, punctuation and symbols separate words.

The text is read twice: with its markup read as text (so names inside tags, attributes and link
targets count) and with markup taken out (HTML tags and comments, Markdown emphasis, escapes,
brackets and link targets), so ``K<b>arim</b>`` and ``[Karim](x) Haddad`` read as the name.

A name matches a run of whole words, whatever separates them, and the same words written
together (``KarimHaddad``); an Arabic word may carry a one-letter proclitic (و ف ب ل ك) and the
article ال before the name. It never matches inside a word: ``Ali`` leaves "totalitarian" alone.
The text around a match is kept byte for byte; the match, from the first character of its first
word to the last of its last, becomes ``[redacted]``.

Names are kept in derived files (the search index) only as keyed hashes of their compared words:
the index can redact, but it does not hold the names.
"""
from __future__ import annotations

import hashlib
import html
import os
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Optional

from .safe import UNSAFE as _DROPPED   # what every output drops: the redactor reads it as nothing

REDACTED = "[redacted]"

# Parts of a text read specially: markup (looked through in one view, read as text in the other),
# character references and percent-encoding (decoded in both).
_UNITS = re.compile(   # comments are found by _units, with str.find: a pattern for them is quadratic on "<!--" * n
    r"(?P<tag><[A-Za-z/!?][^<>]{0,2000}>)"
    r"|(?P<link>\]\([^()]{0,2000}\)|\]\[[^\[\]]{0,200}\])"
    r"|(?P<ref>&#[0-9]{1,12};?|&#[xX][0-9a-fA-F]{1,12};?|&[A-Za-z][A-Za-z0-9]{0,31};?)"
    r"|(?P<pct>(?:%[0-9A-Fa-f]{2})+)"
    r"|(?P<mark>[*_~`\\\[\]])")
_MARKUP_KINDS = ("comment", "tag", "link", "mark")
_WORDS = re.compile(r"\S+")
_ASCII_WORD = re.compile(r"[a-z0-9]+")
_ASCII_MARKS = str.maketrans("", "", "*_~`\\[]")
_OVERRIDDEN = re.compile("\u202e([^\u202c\n]*)")
# ASCII control characters that fold to nothing (inside a word they hide it): such text takes the full path.
_ASCII_HIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Letters that show nothing and sit inside words without ending them (beside every mark and
# format character): tatweel, Hangul fillers, Khmer inherent vowels.
_INVISIBLE = frozenset("\u0640\u115f\u1160\u3164\uffa0\u17b4\u17b5")
_LATIN_NAME = re.compile(r"^LATIN (?:SMALL |CAPITAL )?LETTER (?:SMALL CAPITAL |DOTLESS |SMALL )?([A-Z])$")

# Look-alikes (after Unicode's confusables.txt): Cyrillic, Greek and Armenian letters that are
# read as the Latin letter they look like. Applied before case folding, so capitals map by shape.
_LOOKALIKE = str.maketrans({
    # Cyrillic
    "А": "a", "а": "a", "В": "b", "в": "b", "Е": "e", "е": "e", "Ё": "e", "ё": "e", "К": "k", "к": "k",
    "М": "m", "м": "m", "Н": "h", "н": "h", "О": "o", "о": "o", "Р": "p", "р": "p", "С": "c", "с": "c",
    "Т": "t", "т": "t", "У": "y", "у": "y", "Х": "x", "х": "x", "Ѕ": "s", "ѕ": "s", "І": "i", "і": "i",
    "Ї": "i", "ї": "i", "Ј": "j", "ј": "j", "Ԁ": "d", "ԁ": "d", "Һ": "h", "һ": "h", "Ӏ": "l", "ӏ": "l",
    "Ԛ": "q", "ԛ": "q", "Ԝ": "w", "ԝ": "w", "Ү": "y", "ү": "y", "Ь": "b", "ь": "b", "Ѵ": "v", "ѵ": "v",
    # Greek
    "Α": "a", "α": "a", "Β": "b", "β": "b", "Ε": "e", "ε": "e", "Ζ": "z", "Η": "h", "η": "n", "Ι": "i",
    "ι": "i", "Κ": "k", "κ": "k", "Μ": "m", "Ν": "n", "ν": "v", "Ο": "o", "ο": "o", "Ρ": "p", "ρ": "p",
    "Τ": "t", "τ": "t", "Υ": "y", "υ": "u", "Χ": "x", "χ": "x", "ω": "w", "Ϲ": "c", "ϲ": "c",
    # Armenian, Latin extras
    "օ": "o", "ս": "u", "հ": "h", "ո": "n", "ı": "i", "ȷ": "j", "ɡ": "g", "ɑ": "a",
})
# Arabic letters in one form: alef variants, ta marbuta, alef maqsura, Persian yeh and keheh.
_ARABIC = str.maketrans({"\u0623": "\u0627", "\u0625": "\u0627", "\u0622": "\u0627", "\u0671": "\u0627",
                         "\u0629": "\u0647", "\u0649": "\u064a", "\u06cc": "\u064a", "\u06a9": "\u0643"})
_AR_PROCLITICS = "\u0648\u0641\u0628\u0644\u0643"   # و ف ب ل ك
_AR_ARTICLE = "\u0627\u0644"                          # ال


@lru_cache(maxsize=None)
def _char(c: str) -> str:
    """One character in the form names are compared in: "" for what shows nothing, " " for what
    separates words, else lower-case letters and digits without marks (one character may give two:
    "ﬁ", "ß")."""
    category = unicodedata.category(c)
    if c != "\r" and _DROPPED.match(c):   # what every output drops (safe.clean_control) joins what it split
        return ""
    if category.startswith("Z") or c.isspace():
        return " "
    if c in _INVISIBLE or category in ("Mn", "Me", "Cf", "Cc", "Cs"):
        return ""
    text = unicodedata.normalize("NFKC", c).translate(_LOOKALIKE).casefold()
    out = []
    for ch in unicodedata.normalize("NFD", text).translate(_ARABIC):
        kind = unicodedata.category(ch)
        if kind in ("Mn", "Me", "Cf") or ch in _INVISIBLE:
            continue
        if not ch.isalnum():
            out.append(" ")
            continue
        if not ch.isascii() and kind.startswith("L"):   # small capitals, dotless i, ...: the Latin letter
            latin = _LATIN_NAME.match(unicodedata.name(ch, ""))
            ch = latin.group(1).lower() if latin else ch
        out.append(ch)
    return "".join(out)


class _Folded(dict):
    """_char for str.translate, filled as characters are met: folding runs at C speed."""

    def __missing__(self, code: int) -> str:
        value = self[code] = _char(chr(code))
        return value


_FOLD = _Folded()


class _View:
    """A text in compared form, as segments that remember the original range they came from; a
    segment read character by character (``plain``) maps each of its characters back exactly."""

    def __init__(self, source: str):
        self.source = source
        self.pieces: list[str] = []
        self.segments: list[tuple[int, int, bool]] = []   # (original start, original end, plain)
        self.offsets: list[int] = []                       # where each piece starts in the view
        self._length = 0

    def add(self, piece: str, start: int, end: int, plain: bool) -> None:
        if piece:
            self.pieces.append(piece)
            self.segments.append((start, end, plain))
            self.offsets.append(self._length)
            self._length += len(piece)

    def text(self) -> str:
        return "".join(self.pieces)

    def original(self, pos: int, end: bool) -> int:
        """The original position of view character ``pos``: where it starts, or where it ends."""
        from bisect import bisect_right

        i = bisect_right(self.offsets, pos) - 1
        start, stop, plain = self.segments[i]
        if not plain:
            return stop if end else start
        within, seen = pos - self.offsets[i], 0
        for j in range(start, stop):
            seen += len(_FOLD[ord(self.source[j])])
            if seen > within:
                return j + 1 if end else j
        return stop


def _units(text: str) -> Iterable[tuple[str, int, int, str]]:
    """(kind, start, end, text) of each part of ``text`` read specially (``_UNITS``, and comments),
    in order; linear in the text: each comment's end is looked for once, and a comment that has
    none ends no later comment either."""
    pos = 0
    while True:
        start = text.find("<!--", pos)
        close = text.find("-->", start + 4) if start >= 0 else -1
        stop = start if close >= 0 else len(text)
        for m in _UNITS.finditer(text, pos, stop):
            yield m.lastgroup, m.start(), m.end(), m.group()
        if close < 0:
            return
        yield "comment", start, close + 3, text[start:close + 3]
        pos = close + 3


def _views(text: str) -> tuple[_View, _View]:
    """The text in compared form, twice: as written (markup read as text, so words inside tags and
    link targets count) and with markup taken out (so ``K<b>arim</b>`` reads ``Karim``)."""
    written, bare = _View(text), _View(text)
    pos = 0
    for kind, start, end, raw in _units(text):
        if start > pos:
            piece = text[pos:start].translate(_FOLD)
            written.add(piece, pos, start, True)
            bare.add(piece, pos, start, True)
        if kind in _MARKUP_KINDS:
            written.add(raw.translate(_FOLD), start, end, True)
            bare.add(" " if kind in ("comment", "tag") and _block(raw) else "", start, end, False)
        else:
            decoded = html.unescape(raw) if kind == "ref" else _unpercent(raw)
            plain = decoded == raw
            piece = raw.translate(_FOLD) if plain else decoded.translate(_FOLD)
            written.add(piece, start, end, plain)
            bare.add(piece, start, end, plain)
        pos = end
    if pos < len(text):
        piece = text[pos:].translate(_FOLD)
        written.add(piece, pos, len(text), True)
        bare.add(piece, pos, len(text), True)
    return written, bare


_BLOCK_TAGS = re.compile(r"^</?(p|br|div|li|ul|ol|h[1-6]|tr|td|th|table|blockquote|hr|section|article)\b", re.I)


def _block(tag: str) -> bool:
    """A tag that breaks a line where it stands (words on either side are apart); inline ones join."""
    return bool(_BLOCK_TAGS.match(tag))


def _unpercent(raw: str) -> str:
    from urllib.parse import unquote

    return unquote(raw, errors="replace")


def name_words(name: str) -> tuple[str, ...]:
    """A protected name as the words it is matched by."""
    return tuple(_WORDS.findall(_views(name)[1].text()))


def _arabic_variants(word: str) -> tuple[str, ...]:
    """An Arabic word without the proclitic and article it may carry before a name."""
    out = []
    rest = word
    if len(rest) > 2 and rest[0] in _AR_PROCLITICS:
        rest = rest[1:]
        out.append(rest)
    if len(rest) > 3 and rest.startswith(_AR_ARTICLE):
        out.append(rest[2:])
    return tuple(out)


def _is_arabic(word: str) -> bool:
    return "\u0600" <= word[0] <= "\u06ff"



class Redactor:
    """Replaces every protected name in text (or in nested JSON-like data) with ``[redacted]``.

    Built from names (``from_names``) or from the keyed hashes an index stored
    (``from_hashes``); the two match the same texts.
    """

    def __init__(self, key: bytes, entries: Iterable[tuple[bytes, ...]]):
        self.key = key
        self.entries = frozenset(tuple(e) for e in entries if e)
        self._first: dict[bytes, list[tuple[bytes, ...]]] = {}
        for entry in sorted(self.entries, key=len, reverse=True):   # longest first
            self._first.setdefault(entry[0], []).append(entry)
        self._hashes: dict[str, bytes] = {}
        self._parts_cache: dict[str, tuple] = {}
        self._words_of_names = frozenset(h for entry in self.entries for h in entry)

    # -- construction
    @classmethod
    def from_names(cls, names: Iterable[str], key: Optional[bytes] = None) -> "Redactor":
        key = key if key is not None else os.urandom(16)
        r = cls(key, ())
        entries = set()
        for name in names:
            words = name_words(name) if isinstance(name, str) else ()
            if words:
                entries.add(tuple(r._hash(w) for w in words))
                if len(words) > 1:
                    entries.add((r._hash("".join(words)),))   # the same words written together
        return cls(key, entries)

    @classmethod
    def from_hashes(cls, key: bytes, entries: Iterable[tuple[bytes, ...]]) -> "Redactor":
        return cls(key, entries)

    def merged(self, other: "Redactor") -> "Redactor":
        if other.key != self.key:
            raise ValueError("redactors with different keys")
        return Redactor(self.key, self.entries | other.entries)

    def _hash(self, word: str) -> bytes:
        h = self._hashes.get(word)
        if h is None:
            h = hashlib.blake2b(word.encode("utf-8"), key=self.key, digest_size=12).digest()
            self._hashes[word] = h
        return h

    def __bool__(self) -> bool:
        return bool(self.entries)

    # -- matching
    def _word(self, word: str) -> tuple:
        """(hash, hashes of its Arabic variants) of a compared word."""
        found = self._parts_cache.get(word)
        if found is None:
            alts = tuple(self._hash(v) for v in _arabic_variants(word)) if _is_arabic(word) else ()
            found = self._parts_cache[word] = (self._hash(word), alts)
        return found

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Where protected names are in ``text``: (start, end) character ranges, merged."""
        if not self._first or not text:
            return []
        if (text.isascii() and "&" not in text and "<" not in text and "%" not in text
                and not _ASCII_HIDDEN.search(text)):
            # Plain ASCII (most English text): its words are runs of letters and digits (with
            # emphasis marks taken out, too), so a text none of whose distinct words is part of a
            # name is passed over at C speed.
            low = text.lower()
            words = set(_ASCII_WORD.findall(low))
            if any(c in text for c in "*_~`\\[]"):
                words.update(_ASCII_WORD.findall(low.translate(_ASCII_MARKS)))
            if self._words_of_names.isdisjoint(self._hash(w) for w in words):
                return []
        first = self._first
        found = []
        for view in _views(text):
            # (hash, Arabic variant hashes, view start, view end) of each word; original positions
            # are worked out only for the words of a match.
            text_of_view = view.text()
            if not any(key in first or any(a in first for a in alts)
                       for key, alts in map(self._word, set(_WORDS.findall(text_of_view)))):
                continue
            sequence = [(*self._word(m.group()), m.start(), m.end()) for m in _WORDS.finditer(text_of_view)]
            for i, (key, alts, start, _) in enumerate(sequence):
                for head in (key, *alts):
                    for entry in first.get(head, ()):
                        n = len(entry)
                        if i + n <= len(sequence) and all(sequence[i + k][0] == entry[k] for k in range(1, n)):
                            found.append((view.original(start, False), view.original(sequence[i + n - 1][3] - 1, True)))
                            break
        if "\u202e" in text:
            found += self._overridden(text)
        found.sort()
        merged: list[list[int]] = []
        for s, e in found:
            if merged and s <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        return [(s, e) for s, e in merged]

    def _overridden(self, text: str) -> list[tuple[int, int]]:
        """Names written backwards after a right-to-left override (U+202E), which displays them the
        right way round: each overridden run (to its U+202C, a line break or the end) is read reversed."""
        found = []
        for m in _OVERRIDDEN.finditer(text):
            run = m.group(1)
            start, size = m.start(1), len(run)
            found += [(start + size - e, start + size - s) for s, e in self.spans(run[::-1])]
        return found

    def text(self, text: str) -> str:
        spans = self.spans(text)
        if not spans:
            return text
        out, last = [], 0
        for s, e in spans:
            s, e = _widen_markup(text, s, e)
            out.append(text[last:s])
            out.append(REDACTED)
            last = e
        out.append(text[last:])
        return "".join(out)

    def finds(self, text: str) -> bool:
        return bool(self.spans(text))

    def __call__(self, value: Any) -> Any:
        """Redact a string, or every string (keys too) in nested lists, tuples and dicts."""
        if not self._first:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self(v) for v in value)
        if isinstance(value, dict):
            return {self(k): self(v) for k, v in value.items()}
        return value


_EMPHASIS = "*_~`"


def _widen_markup(text: str, s: int, e: int) -> tuple[int, int]:
    """A match that holds emphasis marks takes the marks that close or open them too, so that
    ``Karim **Haddad**`` becomes ``[redacted]`` and not ``[redacted]**``."""
    inner = text[s:e]
    link = "](" in inner or "][" in inner
    if not any(c in inner for c in _EMPHASIS) and not link:
        return s, e
    while e < len(text) and text[e] in _EMPHASIS:
        e += 1
    while s > 0 and text[s - 1] in _EMPHASIS:
        s -= 1
    if link and s > 0 and text[s - 1] == "[":   # [Karim](url) Haddad, [Karim][1] Haddad
        s -= 1
    return s, e


# ----------------------------------------------------------------------------- pages a template wrote

# Attributes whose value a reader sees or a file carries as text: redacted where they stand. Every
# other value (class, id, style, lang, ...) is the page's code, read only by ``page_leak``.
_TEXT_ATTRIBUTES = frozenset({"title", "alt", "content", "href", "src", "cite", "aria-label", "aria-description",
                              "placeholder", "value", "label", "summary", "abbr", "download", "srcdoc"})
_PAGE_TAG = re.compile(r"""<(/?[A-Za-z][^ \t\n\f\r/>]*+)((?:[^>"']++|"[^"]*+"|'[^']*+')*+)>""")
_RAW_TEXT = {"style": re.compile(r"</style[\s/>]", re.I), "script": re.compile(r"</script[\s/>]", re.I)}
# HTML's white space is ASCII only: a no-break space belongs to an unquoted value.
_PAGE_ATTRIBUTE = re.compile(r"""([ \t\n\f\r/][^ \t\n\f\r"'<>/=]++[ \t\n\f\r]*+=[ \t\n\f\r]*+)"""
                             r"""("[^"]*+"|'[^']*+'|[^ \t\n\f\r"'<>`=]++)""")
_BLOCKS = frozenset("address article aside blockquote body br caption dd details div dl dt fieldset figcaption "
                    "figure footer form h1 h2 h3 h4 h5 h6 head header hr html li main nav ol p pre section summary "
                    "table tbody td tfoot th thead title tr ul".split())
_CSS_NEWLINE = re.compile(r"\r\n|\r|\f")
_HIDING = re.compile(r"display\s*:\s*none|visibility\s*:\s*(?:hidden|collapse)|font-size\s*:\s*0(?![.\d])", re.I)
_CSS_COMMENT = re.compile(r"/\*(?:[^*]++|\*(?!/))*+(?:\*/|$)")
_CSS_ATTR = re.compile(r"attr\(\s*+([A-Za-z_-][\w-]*+)", re.I)
_CSS_ESCAPE = re.compile(r"\\(?:\n|([0-9a-fA-F]{1,6})[ \t\n]?|([\s\S]))")
_CSS_TEXT = re.compile(_CSS_COMMENT.pattern + r"""|"(?:[^"\\]++|\\[\s\S])*+"?|'(?:[^'\\]++|\\[\s\S])*+'?"""
                       r"""|url\((?:[^)\\]++|\\[\s\S])*+\)?""", re.I)


def redact_html(page: str, r: Redactor) -> str:
    """A page of HTML a template wrote (an HTML brief, or the page a PDF is made from) with the
    protected names taken out where that cannot change its markup: each run of text between two
    tags, each comment, and the values of the attributes a reader sees as text (titles, alt texts,
    links, ``<meta content>``, the PDF's metadata). Tag names and the page's code (class, style,
    lang, stylesheets, scripts) are left as they are, so a name "Li" leaves ``<li>`` and
    ``color: brown`` alone. What this leaves (a name split by tags, in a class or a stylesheet's
    string) is for ``page_leak`` to find. Linear in the page (no pattern backtracks)."""
    if not r:
        return page
    out, pos, n = [], 0, len(page)
    while pos < n:
        lt = page.find("<", pos)
        if lt < 0:
            lt = n
        if lt > pos:
            out.append(r.text(page[pos:lt]))
        if lt == n:
            break
        if page.startswith("<!--", lt):   # a comment runs to its end, or to the page's
            close = page.find("-->", lt + 4)
            pos = n if close < 0 else close + 3
            out.append("<!--" + r.text(page[lt + 4:close if close >= 0 else n]) + page[close if close >= 0 else n:pos])
            continue
        m = _PAGE_TAG.match(page, lt)
        if m is None:
            out.append("<")
            pos = lt + 1
            continue
        out.append("<" + m.group(1) + _PAGE_ATTRIBUTE.sub(lambda a: a.group(1) + (
            r.text(a.group(2)) if a.group(1).strip(" \t\n\r\f=/").lower() in _TEXT_ATTRIBUTES else a.group(2)),
            m.group(2)) + ">")
        pos = m.end()
        raw = _RAW_TEXT.get(m.group(1).lower())
        if raw is not None:   # a stylesheet or a script: code, up to its end tag
            close = raw.search(page, pos)
            end = n if close is None else close.start()
            out.append(page[pos:end])
            pos = end
    return "".join(out)


def _css_unescape(e: re.Match) -> str:
    """One CSS escape: a backslash before a line break is nothing, ``\\61 `` is "a"."""
    if e.group(1):
        return chr(min(int(e.group(1), 16), 0x10FFFF) or 0xFFFD)
    return e.group(2) or ""


def page_leak(page: str, r: Redactor) -> Optional[str]:
    """Where a protected name is still on a page, as a browser and WeasyPrint read it, or None.

    The page is parsed as they parse it (tinyhtml5, WeasyPrint's own parser), and every part that
    is shown or carried is read: the text, joined through inline elements (``K<b>arim</b>``) and
    read backwards inside ``<bdo>``; every attribute value (ids become PDF destinations, ``lang``
    its language); comments; scripts; and in stylesheets and ``style`` attributes their strings
    (``content``, ``bookmark-label``, ``string-set``), comments and ``url()``s, escapes decoded.
    Not read: tag names, attribute names, stylesheet rules, and classes unless a stylesheet shows
    them (``attr(class)``)."""
    import tinyhtml5

    if not r:
        return None
    root = tinyhtml5.parse(page, namespace_html_elements=False)
    stream: list[str] = []
    # A class names styles; it is shown only through CSS attr(class) (rare: then it is read too), so
    # a protected "Banner" does not refuse a page with class="banner".
    decoded = _CSS_COMMENT.sub("", _CSS_ESCAPE.sub(_css_unescape, page))
    shown_attributes = {m.lower() for m in _CSS_ATTR.findall(decoded)}
    # A browser reverses text under unicode-bidi: bidi-override (WeasyPrint does not): where a page
    # uses it, every element's text is read backwards too, as <bdo>'s is.
    overrides = "-override" in decoded.lower()

    def css(text: str) -> bool:
        parts = [_CSS_ESCAPE.sub(_css_unescape, m.group()) for m in _CSS_TEXT.finditer(_CSS_NEWLINE.sub("\n", text))]
        return any(map(r.finds, parts)) or r.finds(" ".join(parts))   # content: "Karim " "Haddad"

    shown: list[str] = []   # the stream without hidden elements: "Kar<span hidden>x</span>im" shows "Karim"

    def walk(el, hidden: bool) -> Optional[str]:
        tag = el.tag if isinstance(el.tag, str) else ""
        if not tag:   # a comment or processing instruction
            return "a comment" if r.finds(el.text or "") else None
        name = tag.rsplit("}", 1)[-1].lower()
        for key, value in el.attrib.items():
            key = str(key).rsplit("}", 1)[-1]
            if key.lower() == "class" and "class" not in shown_attributes:
                continue
            if (css(value) if key.lower() == "style" else r.finds(value)):
                return f"the {key} attribute of a <{name}>"
        if name == "style":
            return "a stylesheet" if css(el.text or "") else None
        if name == "script":
            return "a script" if r.finds(el.text or "") else None
        if (name == "bdo" or overrides) and r.finds("".join(el.itertext())[::-1]):
            return "text written backwards"
        hidden = hidden or any(str(k).rsplit("}", 1)[-1].lower() == "hidden" for k in el.attrib) or bool(
            _HIDING.search(_CSS_ESCAPE.sub(_css_unescape, el.attrib.get("style", ""))))

        def add(text: str) -> None:
            stream.append(text)
            if not hidden:
                shown.append(text)

        if name in _BLOCKS:
            add("\n")
        add(el.text or "")
        for child in el:
            found = walk(child, hidden)
            if found:
                return found
            add(child.tail or "")
        if name in _BLOCKS:
            add("\n")
        return None

    found = walk(root, False)
    if found:
        return found
    if r.finds(html.escape("".join(shown), quote=False)):
        return "the page's text"
    return "the page's text" if r.finds(html.escape("".join(stream), quote=False)) else None


_CODE_ELEMENTS = {"script", "iframe", "frame", "frameset", "object", "embed", "applet", "portal", "base", "template",
                  "foreignobject", "animate", "set", "animatemotion", "animatetransform", "use"}
_URL_ATTRIBUTES = {"src", "srcset", "poster", "background", "data", "action", "formaction", "ping", "manifest",
                   "codebase", "imagesrcset"}
_CODE_SCHEME = re.compile(r"^(?:javascript|vbscript|livescript)\s*:", re.I)
_URL_NOISE = re.compile(r"[\t\n\r]|^[\x00-\x20]+|[\x00-\x20]+$")   # what a browser drops from a URL
_CSS_FETCH = re.compile(r"@import|@font-face|@namespace|\b(?:url|image-set|image|src)\(\s*(?!['\"]?\s*(?:data:|#))", re.I)
_CSS_CONDITION = re.compile(r"@(?:media|supports|container|document|-moz-document|scope)\b\s*([^{;]*)", re.I)
_SVG_TEXT = {"text", "tspan", "textpath"}
# Elements a browser shows otherwise than WeasyPrint lays them out (hides, puts above the line,
# draws as a control): what the laid-out reading sees is not what a browser shows.
_BROWSER_ELEMENTS = {"noscript", "noembed", "noframes", "audio", "video", "canvas", "math", "ruby", "rt", "rp",
                     "input", "textarea", "select", "option", "optgroup", "button", "datalist", "dialog", "details",
                     "summary", "marquee", "slot"}
# States a browser reaches by the reader's hand (a click, a hover) that a laid-out page never has.
_CSS_STATE = re.compile(r":(?:hover|focus(?:-within|-visible)?|active|target(?:-within)?|visited|checked|open|"
                        r"popover-open|modal|fullscreen|user-(?:valid|invalid)|playing|paused)\b", re.I)


def _print_only(media: str) -> bool:
    return media.strip().lower() in ("", "all", "print")


def page_unchecked(page: str, browser: bool = True) -> Optional[str]:
    """What on a page from a template the package does not ship would show or do in a browser
    more than the checks read (they read the page as WeasyPrint lays it out), or None.

    Refused: code (a script, an event handler, a ``javascript:`` address however spelled, a frame,
    an object, SVG animation, a ``<base>``, a refresh), anything fetched when the page is opened (a
    ``src``, ``srcset``, ``<link>``, ``ping``, CSS ``url()``, ``@import``, ``@font-face``: only
    ``data:`` addresses and ``#`` fragments; a link one clicks, ``<a href>``, is fine), a shadow
    tree (``<template>``), text an SVG places by coordinates, and styles for another medium than
    print (``@media screen``, ``@supports``: WeasyPrint lays out for print, a browser for the screen),
    elements a browser shows otherwise than WeasyPrint (``<noscript>``, ``<ruby>``, form controls,
    ``<details>``) and styles for states a reader's hand brings (``:hover``, ``:target``). Such
    things could write, fetch or place a protected name where no check of the page reads it.
    For a PDF (``browser`` False), WeasyPrint's page is the page: only code and SVG text count."""
    import tinyhtml5

    root = tinyhtml5.parse(page, namespace_html_elements=False)
    in_svg = set()
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        name = el.tag.rsplit("}", 1)[-1].lower()
        if name in _CODE_ELEMENTS:
            return f"a <{name}>"
        if name == "svg":
            in_svg.update(id(d) for d in el.iter())
        if name in _SVG_TEXT and id(el) in in_svg:
            return "text placed by an SVG (write it as the page's text)"
        if not browser:
            if any(str(k).rsplit("}", 1)[-1].lower().startswith("on") or _CODE_SCHEME.match(_URL_NOISE.sub("", str(v)))
                   for k, v in el.attrib.items()):
                return f"code in a <{name}>"
            continue
        if name in _BROWSER_ELEMENTS:
            return f"a <{name}>, which a browser shows otherwise than the laid-out page"
        if name == "link":
            return "a <link> (a page fetches nothing when opened: put its styles in a <style>)"
        for key, value in el.attrib.items():
            key = str(key).rsplit("}", 1)[-1].lower()
            value = str(value)
            url = _URL_NOISE.sub("", value)
            if key.startswith("on"):
                return f"an {key} handler on a <{name}>"
            if _CODE_SCHEME.match(url) or (key in ("href", "xlink:href") and _CODE_SCHEME.match(url.replace(" ", ""))):
                return f"a script address in a <{name}>"
            if key == "http-equiv":
                return f"a <meta http-equiv=\"{value[:40]}\">"
            if key in _URL_ATTRIBUTES and not url.lower().startswith(("data:", "#")) and url:
                return f"the {key} of a <{name}>, fetched when the page is opened"
            if key in ("href", "xlink:href") and name != "a" and not url.lower().startswith(("data:", "#")):
                return f"the {key} of a <{name}>, fetched when the page is opened"
            if key == "media" and not _print_only(value):
                return f"styles for media \"{value[:40]}\""
        css = None
        if name == "style":
            css = el.text or ""
        elif "style" in el.attrib:
            css = str(el.attrib["style"])
        if css:
            css = _CSS_COMMENT.sub("", _CSS_ESCAPE.sub(_css_unescape, _CSS_NEWLINE.sub("\n", css)))
            m = _CSS_FETCH.search(css)
            if m:
                return f"a stylesheet's {m.group().strip()[:20]}, fetched when the page is opened"
            for m in _CSS_CONDITION.finditer(css):
                if not (m.group().lower().startswith("@media") and _print_only(m.group(1))):
                    return f"styles for {m.group().strip()[:40]}"
            m = _CSS_STATE.search(css)
            if m:
                return f"styles for the {m.group()} state, which a reader's hand brings"
    return None


TRANSFORMED = "text a CSS transform moves"   # layout_leak's answer when it cannot tell where text lands


def layout_leak(document, r: Redactor) -> Optional[str]:
    """Where a protected name is on the pages WeasyPrint laid out (a ``weasyprint.Document``), or None.

    This reads what the reader gets rather than the markup: every line of every page as it is
    drawn, its pieces in visual order, with nothing between two pieces that touch and a space
    between two that do not. So text that styles build (generated ``content``, ``attr()``,
    counters, ``string-set`` in a page margin), join (blocks made inline, a hidden letter inside a
    word), move (flex order, positioning) or reverse is read as shown. Read twice: with all the
    text drawn (the PDF's text layer, transparent text too: a reader copies or searches it) and
    with only the text a reader can see (faint, tiny or transparent pieces left out, so the
    letters around one join). Also read: bookmarks, anchors (PDF destinations), link targets and
    the document's metadata. Text moved by a CSS ``transform`` refuses the page: where it lands
    is not where the layout puts it."""
    if not r:
        return None
    meta = document.metadata
    custom = getattr(meta, "custom", None) or {}
    fields = [meta.title, meta.description, meta.generator, *(meta.authors or []), *(meta.keywords or []),
              *custom.keys(), *custom.values()]
    fields = [f for f in fields if isinstance(f, str)]
    # A reader sees the lists joined ("Author: Karim, Haddad"), and every field at once.
    fields += [", ".join(map(str, meta.authors or [])), ", ".join(map(str, meta.keywords or [])),
               "\n".join(f"{k} {v}" for k, v in custom.items()), "\n".join(fields)]
    if any(r.finds(f) for f in fields):
        return "the document's metadata"
    for number, page in enumerate(document.pages, 1):
        if any(r.finds(str(b[1])) for b in page.bookmarks):
            return f"a bookmark on page {number}"
        if any(r.finds(str(a)) for a in page.anchors):
            return f"an anchor on page {number}"
        for _, target, *_ in page.links:
            if r.finds(str(target)):
                return f"a link on page {number}"
        pieces = _pieces(page._page_box)
        if pieces is None:
            return TRANSFORMED
        for reading in (pieces, [p for p in pieces if p[-1]]):
            if any(map(r.finds, _laid_out_lines(reading))):
                return f"the text of page {number}"
    return None


def _pieces(page_box) -> Optional[list]:
    """Each piece of text a page draws: (middle, top, bottom, left, right, font size, right to
    left, text, seen), ``seen`` False for text a reader cannot see; None if a transform moves text."""
    pieces: list = []

    def visit(box, moved: bool) -> bool:
        style = box.style
        moved = moved or bool(style["transform"])
        if type(box).__name__ == "TextBox":
            if not box.text or style["visibility"] != "visible":
                return True
            if moved:
                return False
            size = style["font_size"] or 0
            alpha = getattr(style["color"], "alpha", 1)
            seen = size >= 3 and alpha >= 0.2 and style["opacity"] >= 0.2
            top, left = box.position_y, box.position_x
            pieces.append((top + box.height / 2, top, top + box.height, left, left + box.width, size,
                           style["direction"] == "rtl", box.text, seen))
            return True
        return all(visit(child, moved) for child in box.all_children())

    return pieces if visit(page_box, False) else None


_RTL_SCRIPT = re.compile("[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufeff]")


def _laid_out_lines(pieces: list) -> tuple[str, str]:
    """The pieces as lines of text in the order a reader's eye meets them: grouped by height, left
    to right, each piece's own text in visual order (the Unicode bidi algorithm, python-bidi, as
    Pango draws it: "im Haddad\u200fKar" in a right-to-left paragraph shows "Karim Haddad"), with
    nothing between two pieces that touch and a space between two that do not. Second, each line
    that holds right-to-left script read from the right (back in its logical order, as the
    redactor reads Arabic and Hebrew)."""
    from bidi import get_display

    rows: list[list] = []
    bottom = None
    for piece in sorted(pieces):
        middle, top, end = piece[0], piece[1], piece[2]
        if bottom is None or middle > bottom:
            rows.append([])
            bottom = end
        else:
            bottom = max(bottom, end)
        rows[-1].append(piece)
    forward, backward = [], []
    for row in rows:
        row.sort(key=lambda p: p[3])
        shown = [p[7] if p[7].isascii() and not p[6] else get_display(p[7], base_dir="R" if p[6] else "L")
                 for p in row]
        line = [shown[0]]
        for a, b, text in zip(row, row[1:], shown[1:]):
            touching = b[3] - a[4] < 0.25 * max(1.0, min(a[5], b[5]))
            line.append(("" if touching else " ") + text)
        joined = "".join(line)
        forward.append(joined)
        if _RTL_SCRIPT.search(joined):
            backward.append(joined[::-1])
    return "\n".join(forward), "\n".join(backward)


def redactor(names: Iterable[str]) -> Redactor:
    """A redactor for these names (a fresh key: for use within one process)."""
    return Redactor.from_names(names)


# ----------------------------------------------------------------------------- reading the lists

class Unreadable(Exception):
    """A story's redact list cannot be read: what it protects is unknown."""


_KEY_LINE = re.compile(r"""^\s*["']?redact["']?\s*:(.*)$""")
# A top-level key line of the raw text: the key plain, 'single-' or "double-quoted", then its value.
_TOP_KEY = re.compile(r"""^(?P<key>"(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s"'#:\[\]{},&*!|>%@`-][^:#]*?)\s*:(?P<value>(?:\s.*)?)$""")
_ITEM_LINE = re.compile(r"^\s*-\s*(.*)$")
_OTHER_KEY = re.compile(r"""^["']?[\w-]+["']?\s*:""")
_SCAN_LIMIT = 64_000_000      # bytes of a story file read to find its redact list
_LINE_LIMIT = 1_000_000


def declared_names(path: Path) -> list[str]:
    """The names a story file asks to redact, read leniently so a broken story still protects them.

    The file's YAML is used when it can be read; otherwise the raw text is read line by line
    (UTF-8, UTF-16 with a BOM, or Latin-1 bytes) for a ``redact:`` key in either list form, or a
    single name. Raises ``Unreadable`` when the file mentions a redact list that cannot be read,
    or cannot be read at all: the caller must then refuse outputs (fail closed).
    """
    from . import load
    from .errors import CounterbriefError

    try:
        data = load.parse_story_file(path, str(path)).data
    except CounterbriefError:
        data = None
    except (OSError, RecursionError, MemoryError, ValueError) as e:
        raise Unreadable(str(e)) from None
    if isinstance(data, dict):
        names = _names_of(data.get("redact"))
        for key, value in data.items():   # 'Redact:', 'redacted:', 'redact_names:': check says they are
            if key != "redact" and asks_redaction(key) and not isinstance(value, bool):   # errors; they protect all the same
                names += _names_of(value)
        try:   # the raw text too: a second 'redact:' key, which YAML would let override the first
            return list(dict.fromkeys(names + _lenient(path)))
        except Unreadable:
            return names
    return _lenient(path)


def protected_names(path: Path) -> tuple[Optional[list[str]], str]:
    """(the names a story file protects, "") or (None, why its list cannot be read): declared_names
    made quick for a whole archive. A regular file that never mentions 'redact' (UTF-8 or Latin-1;
    UTF-16 is always read) is not parsed; nothing else is opened in a way that could block."""
    from . import load
    from .errors import CounterbriefError

    try:
        fd, _ = load.open_regular(path)
    except CounterbriefError:
        fd = None   # declared_names says what it is
    if fd is not None:
        with os.fdopen(fd, "rb") as f:
            data = f.read(load.MAX_STORY_BYTES + 1)
        utf16 = data[:2] in (b"\xff\xfe", b"\xfe\xff") or (len(data) >= 4 and 0 in data[:2])
        if not utf16 and not may_protect(data):
            return [], ""
    try:
        return declared_names(path), ""
    except Unreadable as e:
        return None, str(e) or "unreadable"


@lru_cache(maxsize=4096)
def asks_redaction(key) -> bool:
    """A key that asks for names to be protected, however a careless hand spelled it: ``redact`` in
    any case or with a suffix (``Redact``, ``REDACT``, ``redacted``, ``redact_names``), or a near
    misspelling (``reddact``, ``redcat``). check calls every one but ``redact`` an error; until it is
    fixed, its names are protected all the same: reading a name too many over-protects, one too
    few shows it."""
    if not isinstance(key, str):
        return False
    folded = re.sub(r"[\W_]+", "", key.casefold())
    if "redact" in folded:
        return True
    import difflib

    return len(folded) >= 4 and difflib.SequenceMatcher(None, folded, "redact").ratio() >= 0.8


def _key_value(line: str) -> Optional[str]:
    """The value part of a line that opens a redact list: ``redact:`` (at any indentation, as
    before), or a top-level key that ``asks_redaction`` once unquoted (``"r\\x65dact":``,
    ``Redact:``); None for any other line."""
    m = _KEY_LINE.match(line)
    if m:
        return m.group(1)
    m = _TOP_KEY.match(line)
    if not m:
        return None
    key = m.group("key")
    if key.startswith('"'):
        import yaml

        try:
            key = yaml.safe_load(key)
        except yaml.YAMLError:
            return None
    elif key.startswith("'"):
        key = key[1:-1].replace("''", "'")
    return m.group("value") if asks_redaction(key) else None


def may_protect(data: bytes) -> bool:
    """Could a story file's bytes (UTF-8 or Latin-1) hold a redact list? False only when no
    top-level key of the front matter asks for redaction (``asks_redaction``), none is quoted with
    escapes (``"r\\x65dact"``) and the word appears nowhere: then the file need not be parsed."""
    if b"redact" in data.lower():
        return True
    end = data.find(b"\n---", 3)
    front = data[:end] if end > 0 else data
    for m in re.finditer(rb"(?m)^(\"[^\"\n]*\\|[^\s#:\-][^:\n]*:)", front):
        key = m.group(1)
        if key.startswith(b'"') or asks_redaction(key[:-1].decode("utf-8", "replace")):
            return True
    return False


def _names_of(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (str, int, float)):
        return [str(value)] if str(value).strip() else []
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return [str(v) for v in value if str(v).strip()]
    raise Unreadable("redact is neither a name nor a list of names")


def _lines(path: Path) -> Iterable[str]:
    """The file's lines, decoded as best can be, up to the scan limit (Unreadable beyond it)."""
    from . import load
    from .errors import CounterbriefError

    try:
        fd, _ = load.open_regular(path)   # never blocks on a FIFO
    except load.NotAFile:
        return   # a folder, FIFO, device or dangling link holds no list
    except CounterbriefError as e:
        raise Unreadable(e.problem) from None
    with os.fdopen(fd, "rb") as f:
        head = f.read(4)
        f.seek(0)
        if head[:2] in (b"\xff\xfe", b"\xfe\xff") or (len(head) == 4 and (head[1] == 0 or head[0] == 0)):
            import io

            encoding = "utf-16" if head[:2] in (b"\xff\xfe", b"\xfe\xff") else (
                "utf-16-le" if head[1] == 0 else "utf-16-be")
            reader = io.TextIOWrapper(f, encoding=encoding, errors="replace", newline=None)
            read = 0
            for line in reader:
                read += len(line) * 2
                if read > _SCAN_LIMIT:
                    raise Unreadable("too large to read its redact list")
                yield line.lstrip("\ufeff")
            return
        read = 0
        while True:
            raw = f.readline(_LINE_LIMIT)
            if not raw:
                return
            read += len(raw)
            if read > _SCAN_LIMIT:
                raise Unreadable("too large to read its redact list")
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                line = raw.decode("cp1252", errors="replace")
            yield line.lstrip("\ufeff").replace("\x00", "")


def _strip_value(value: str) -> str:
    value = value.strip()
    if value[:1] in ("'", '"'):
        quote = value[0]
        end = value.find(quote, 1)
        return value[1:end] if end > 0 else value[1:]
    return re.sub(r"\s+#.*$", "", value).strip()


_MENTION = re.compile(r"""(^\W*redact|redact["']?\s*[:=])""", re.I)


BODY_KEY = re.compile(r"""^["']?redact["']?\s*:""", re.I | re.M)   # a redact list written below the front matter


def _lenient(path: Path) -> list[str]:
    """The names under every ``redact:`` key of the front matter, read from the raw lines: each
    block (the key line and the indented or item lines under it) is read as YAML on its own, and
    guessed at line by line when even that fails. A ``redact:`` list written below the front
    matter (appended to the file by a careless hand) counts too: check calls it an error."""
    blocks: list[list[str]] = []
    current: Optional[list[str]] = None
    mentioned = False
    body = False
    for n, line in enumerate(_lines(path)):
        text = line.rstrip("\r\n")
        if n == 0 and text.strip() == "---":
            continue
        if text.strip() in ("---", "..."):
            body = True                                 # the end of the front matter
            if current is not None:
                blocks.append(current)
                current = None
            continue
        if _MENTION.search(text) and not body:
            mentioned = True
        if current is not None:
            if not text.strip() or text[:1] in (" ", "\t") or text.lstrip().startswith(("-", "#")):
                current.append(text)
                continue
            blocks.append(current)
            current = None
        if (BODY_KEY.match(text) if body else _key_value(text) is not None):
            current = [text]
    if current is not None:
        blocks.append(current)
    if mentioned and not blocks:
        raise Unreadable("it mentions 'redact' but has no readable 'redact:' list")
    names: list[str] = []
    for block in blocks:
        names += _block_names(block)
    return [n for n in names if n.strip()]


def _block_names(block: list[str]) -> list[str]:
    import yaml

    value = _key_value(block[0])
    if re.search(r"(^|[\s\[,])[&*!]", value) or any(re.match(r"^\s*-\s*[&*!]", b) for b in block[1:]):
        raise Unreadable("its redact list uses YAML anchors, aliases or tags")
    lines = ["redact:" + value] + [re.sub(r"^\t+", lambda m: "  " * len(m.group()), b) for b in block[1:]]
    try:
        found = yaml.safe_load("\n".join(lines)).get("redact")
        if isinstance(found, bool) and not _KEY_LINE.match(block[0]):   # 'redacted: true' names no one
            return []
        return _names_of(found)
    except (yaml.YAMLError, AttributeError):
        return _guess(lines)


def _guess(lines: list[str]) -> list[str]:
    """A redact block that is not YAML even on its own: an inline list (closed or not), a single
    name, or items (an item's indented continuation lines are part of it)."""
    value = _key_value(lines[0]).strip()
    if value.startswith("["):
        return _inline_items(" ".join([value, *(b.strip() for b in lines[1:])]))
    if value and not value.startswith(("#", "|", ">")):
        return [_strip_value(value)]
    if value.startswith(("|", ">")):
        return [" ".join(b.strip() for b in lines[1:] if b.strip())]
    names: list[str] = []
    for b in lines[1:]:
        item = _ITEM_LINE.match(b)
        if item:
            names.append(_strip_value(item.group(1)) if item.group(1).strip() else "")
        elif b.strip() and not b.lstrip().startswith("#") and names:
            names[-1] = (names[-1] + " " + _strip_value(b)).strip()
    return names


def _inline_items(text: str) -> list[str]:
    body = text.strip()
    body = body[1:] if body.startswith("[") else body
    body = body.split("]", 1)[0]
    out, current, quote = [], "", ""
    for c in body:
        if quote:
            if c == quote:
                quote = ""
            else:
                current += c
        elif c in ("'", '"') and not current.strip():
            quote = c
        elif c == ",":
            out.append(current.strip())
            current = ""
        else:
            current += c
    out.append(current.strip())
    return [o for o in out if o]


# ----------------------------------------------------------------------------- the archive's list

@dataclass
class ArchiveRedaction:
    """Every story's protected names, as read for one command: the redactor, and the files whose
    list could not be read (outputs that could carry names are then refused)."""

    redactor: Redactor
    unreadable: dict[str, str] = field(default_factory=dict)   # shown path -> why

    def require(self) -> Redactor:
        """The redactor, or one error naming a story whose redact list cannot be read (fail closed)."""
        if self.unreadable:
            from .errors import CounterbriefError

            rel, why = sorted(self.unreadable.items())[0]
            more = f" (and {len(self.unreadable) - 1} more)" if len(self.unreadable) > 1 else ""
            raise CounterbriefError(
                f"the names this story protects cannot be read ({why}), so nothing that could show them is "
                f"printed{more}", rel,
                fix="fix the file (counterbrief check shows what is wrong) or move it out of stories/")
        return self.redactor


def showable_ids(archive) -> list[str]:
    """The story ids a hint ("did you mean") may name: none that holds a protected name. Fails
    closed (raises) while a redact list cannot be read."""
    from . import load

    paths = load.story_paths(archive)
    protected = read_archive(paths, archive.rel).require()
    return [p.stem for p in paths if not protected.finds(p.stem)]


def read_archive(paths: Iterable[Path], shown, key: Optional[bytes] = None) -> ArchiveRedaction:
    """The redact lists of these story files (``shown(path)`` names a file for the user)."""
    names: list[str] = []
    unreadable: dict[str, str] = {}
    for path in paths:
        try:
            names += declared_names(path)
        except Unreadable as e:
            unreadable[shown(path)] = str(e)
    return ArchiveRedaction(Redactor.from_names(names, key), unreadable)


def redact_story(story, r: Redactor):
    """A copy of a story with every text field redacted (the id, themes and file paths are kept:
    ids that hold a protected name are refused by check and by the index)."""
    import dataclasses

    if not r:
        return story
    def themes(ids):   # a theme id that holds a name is left out: ids are index terms and facet values
        return [t for t in ids if not r.finds(t)]

    quotes = [dataclasses.replace(q, text=r.text(q.text), speaker=r.text(q.speaker), themes=themes(q.themes))
              for q in story.quotes]
    return dataclasses.replace(
        story, title=r.text(story.title), speaker=r(story.speaker), group=r.text(story.group), themes=themes(story.themes),
        source=r(story.source), quotes=quotes, body=r.text(story.body), content_warnings=r(story.content_warnings),
        notes=r.text(story.notes), redact=[], extra=r(story.extra))


def index_key(home: Path) -> bytes:
    """The index's key for hashing protected names: made once, kept beside the index (mode 0600)."""
    path = home / "redact.key"
    try:
        key = path.read_bytes()
        if len(key) == 16:
            return key
    except OSError:
        pass
    from .write import write_atomic

    home.mkdir(parents=True, exist_ok=True)
    key = os.urandom(16)
    write_atomic(path, key)
    os.chmod(path, 0o600)
    return key


def key_check(key: bytes) -> bytes:
    """Which key redact.bin's hashes were made with, stored beside them: with a lost or damaged
    redact.key every protected name would go unrecognised (and be shown); the index is rebuilt."""
    return hashlib.blake2b(b"counterbrief redact.bin", key=key, digest_size=8).digest()


def stored_redaction(folder: Path, key: bytes) -> ArchiveRedaction:
    """The protected names an index folder holds (``redact.bin``, keyed hashes), and the stories
    whose list could not be read. A missing or damaged file fails closed."""
    import marshal

    from .state import SCHEMA_VERSION

    try:
        version, entries, unreadable, check = marshal.loads((folder / "redact.bin").read_bytes())
        if version != SCHEMA_VERSION:
            raise ValueError("another version")
        if check != key_check(key):   # redact.key lost or damaged: the hashes would match no name any more
            raise ValueError("made with another key")
        return ArchiveRedaction(Redactor.from_hashes(key, [tuple(e) for e in entries]), dict(unreadable))
    except (OSError, ValueError, EOFError, TypeError):
        return ArchiveRedaction(Redactor.from_hashes(key, ()), {
            str(folder / "redact.bin"): "the search index's list of protected names is missing or damaged; "
                                        "run 'counterbrief index --rebuild'"})


def output_redactor(archive) -> Redactor:
    """The archive's names for a last pass over what a command prints (errors, warnings, check's
    lines): from the search index when it has one (a small file), else from the story files."""
    return output_redaction(archive).redactor


def output_redaction(archive) -> ArchiveRedaction:
    """``output_redactor``'s names, with the story files whose list cannot be read (for an output
    that must fail closed, such as shell completion)."""
    from . import load
    from .state import current_folder, index_home

    home = index_home(archive)
    folder = current_folder(home)
    try:
        key = (home / "redact.key").read_bytes()
    except OSError:
        key = b""
    if folder is not None and len(key) == 16:
        stored = stored_redaction(folder, key)
        if str(folder / "redact.bin") not in stored.unreadable:
            # Even when it holds no name: reading every story file instead cost 0.65 s a command
            # at 2,000 stories. But the list is as old as the index, and review, approve, check
            # print without bringing it up to date: the story files changed since (a stat each,
            # against the index's stat.bin) are read too, so a name protected a moment ago counts.
            from .state import read_stat

            known = read_stat(folder) or {}
            changed = [archive.root / rel for rel, stat in load.scan_archive(archive).items()
                       if rel.startswith("stories/") and known.get(rel) != stat]
            if not changed:
                return stored
            fresh = read_archive(changed, archive.rel, key)
            shown = {archive.rel(p) for p in changed}
            unreadable = {k: v for k, v in stored.unreadable.items() if k not in shown}
            return ArchiveRedaction(stored.redactor.merged(fresh.redactor), {**unreadable, **fresh.unreadable})
    return read_archive(load.story_paths(archive), archive.rel)
