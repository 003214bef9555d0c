"""What the search index holds: the analysers (English, French, Arabic), the schema, and the
document made from one story. Imports whoosh; used by ``index`` and ``search``."""
from __future__ import annotations

import re
from typing import Any, Optional

from .model import Story
from .text import ARABIC_STOP_WORDS, arabic_light_stem, arabic_normalise, is_arabic

SNIPPET_SOURCE_CHARS = 1500
LANG_FIELDS = {"en": "text_en", "fr": "text_fr", "ar": "text_ar"}
OTHER_FIELD = "text_xx"
TEXT_FIELDS = ("text_en", "text_fr", "text_ar", OTHER_FIELD)


from whoosh.analysis import Filter as _Filter


class ArabicFilter(_Filter):
    """Normalise and light-stem words in Arabic script; leave others alone. Pickled in the schema."""

    def __init__(self, stem: bool = True):
        self.stem = stem

    def __eq__(self, other):
        return type(self) is type(other) and self.stem == other.stem

    def __call__(self, tokens):
        for t in tokens:
            if is_arabic(t.text):
                t.text = arabic_normalise(t.text)
                if t.text in ARABIC_STOP_WORDS:
                    continue
                if self.stem:
                    t.text = arabic_light_stem(t.text)
            yield t


class FrenchPluralFilter(_Filter):
    """Drop a plural -s/-x before the Snowball stemmer, which stems étrangers and étranger differently."""

    def __eq__(self, other):
        return type(self) is type(other)

    def __call__(self, tokens):
        for t in tokens:
            if len(t.text) > 4 and t.text[-1] in "sx" and not is_arabic(t.text):
                t.text = t.text[:-1]
            yield t


def _analyzer(lang: str):
    from whoosh.analysis import CharsetFilter, LowercaseFilter, RegexTokenizer, StemFilter, StopFilter
    from whoosh.support.charset import accent_map

    # Words may carry combining marks (Arabic harakat, decomposed accents): keep them in the token.
    chain = RegexTokenizer(r"[\w\u0300-\u036f\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed\u0640]+") | LowercaseFilter()
    chain = chain | ArabicFilter()
    if lang == "fr":
        chain = chain | StopFilter(lang=lang) | FrenchPluralFilter() | StemFilter(lang=lang, cachesize=50000)
    elif lang == "en":
        chain = chain | StopFilter(lang=lang) | StemFilter(lang=lang, cachesize=50000)
    return chain | CharsetFilter(accent_map)


def _schema():
    from whoosh import columns, fields

    text = {name: fields.TEXT(analyzer=_analyzer(name[-2:]), phrase=True) for name in TEXT_FIELDS}
    return fields.Schema(
        path=fields.ID(unique=True, stored=True),
        id=fields.ID(stored=True, sortable=True),
        meta=fields.STORED(),
        content=fields.STORED(),
        themes=fields.KEYWORD(commas=True, lowercase=True, scorable=True),
        facets=fields.COLUMN(columns.VarBytesColumn()),
        group=fields.KEYWORD(lowercase=True),
        language=fields.ID(sortable=True),
        year=fields.NUMERIC(int, sortable=True, signed=False),
        date=fields.ID(sortable=True),   # the publication date as written (2017, 2017-03, 2017-03-04), for --sort date
        joined=fields.NUMERIC(int),
        left=fields.NUMERIC(int),
        status=fields.ID(sortable=True),
        sensitivity=fields.ID(sortable=True),
        synthetic=fields.ID(),
        speaker=fields.TEXT(analyzer=_analyzer("xx")),
        origin=fields.TEXT(analyzer=_analyzer("xx")),
        warning=fields.TEXT(analyzer=_analyzer("xx")),
        **text,
    )



def _year(value: Optional[str]) -> Optional[int]:
    m = re.match(r"^(\d{4})", str(value or ""))
    return int(m.group(1)) if m else None


def _flat(value) -> str:
    return " ".join(str(value).replace("\t", " ").split("\n")) if value else ""


def story_document(story: Story, rel: str) -> dict[str, Any]:
    """What the index keeps of one story. The story comes redacted (``redact.redact_story``): no
    protected name reaches a stored field, a column or an index term."""
    title, body, alias = story.title, story.body, story.speaker.get("alias", "")
    role, origin = story.speaker.get("role", ""), story.speaker.get("origin", "")
    quotes = [q.text for q in story.quotes]
    text = "\n".join([title, alias, role, origin, body, *quotes])
    themes = story.all_themes()
    year = _year(story.source.get("published"))
    meta = {
        "id": story.id, "title": title, "speaker": alias, "role": role, "origin": origin, "group": story.group,
        "language": story.language, "themes": story.themes, "year": year, "status": story.status,
        "sensitivity": story.sensitivity, "synthetic": story.synthetic, "content_warnings": story.content_warnings,
        "outlet": story.source.get("outlet", ""), "author": story.source.get("author", ""),
        "published": story.source.get("published", ""), "url": story.source.get("url", ""),
        "via": story.source.get("via", ""),
        # for brief selection, which ranks accounts from the index before reading any file
        "all_themes": themes, "snapshot": story.source.get("snapshot", ""), "path": rel,
        # per quote, in order: the themes it is matched on (its own, else the story's), whether it is
        # graphic, and whether it repeats the group's own claim (a brief takes it only when pinned)
        "quote_meta": [{"themes": story.quote_themes(q), "graphic": q.graphic, "group_claim": q.frames_group_claim}
                       for q in story.quotes],
    }
    doc = {
        "path": rel, "id": story.id, "meta": meta,
        # Snippets come from the quotes and the start of the summary: enough to show why it matched.
        "content": "\n\n".join([*quotes, body])[:SNIPPET_SOURCE_CHARS],
        "themes": ",".join(themes),
        # One packed value per story: the search facets first (FACETS order), then what stats and
        # brief selection need (facets.PROFILE_FIELDS): both read this column, never stored fields.
        "facets": "\t".join(_flat(v) for v in [
            "|".join(themes), story.group, story.language, str(year or ""), story.status, story.sensitivity,
            origin, "1" if story.synthetic else "0", str(len(story.quotes)),
            story.id, rel, alias, story.source.get("snapshot", ""), "|".join(story.themes),
            # quote_meta, one quote after another: "theme|theme/graphic group_claim", e.g. "regret/10;..."
            ";".join("|".join(story.quote_themes(q)) + "/" + ("1" if q.graphic else "0") +
                     ("1" if q.frames_group_claim else "0") for q in story.quotes)]).encode("utf-8"),
        "group": story.group, "language": story.language, "status": story.status,
        "sensitivity": story.sensitivity, "synthetic": "true" if story.synthetic else "false",
        "speaker": alias + " " + role, "origin": origin, "warning": " ".join(story.content_warnings),
        LANG_FIELDS.get(story.language, OTHER_FIELD): text,
    }
    if year is not None:
        doc["date"] = str(story.source.get("published"))[:10]
    for key, value in (("year", year), ("joined", _year(story.speaker.get("joined"))),
                       ("left", _year(story.speaker.get("left")))):
        if value is not None:
            doc[key] = value
    return doc
