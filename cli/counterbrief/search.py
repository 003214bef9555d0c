"""Queries on the search index: the query language, filters, ranking, snippets, "did you mean".

The index itself (building, freshness, opening) is ``index``; what it holds is ``schema``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Optional

from .errors import UsageProblem
from .facets import _facets, story_profiles
from .index import Index
from .schema import LANG_FIELDS, OTHER_FIELD, TEXT_FIELDS

ALIASES = {"theme": "themes", "lang": "language", "published": "year"}
QUERY_FIELDS = ("id", "themes", "group", "language", "year", "status", "sensitivity", "synthetic", "speaker",
                "warning", "origin")

__all__ = ["Index", "SearchRequest", "SearchResult", "search", "gated_profiles", "query_scores", "story_profiles"]


@dataclass
class SearchRequest:
    query: str = ""
    themes: list[str] = field(default_factory=list)
    group: Optional[str] = None
    language: Optional[str] = None
    status: Optional[str] = None
    usable: bool = False
    include_synthetic: bool = True
    limit: Optional[int] = 10
    page: int = 1
    sort: str = "score"
    facets: bool = True
    snippets: bool = True


@dataclass
class SearchResult:
    query: str
    total: int
    hits: list[dict]
    facets: dict[str, dict[str, int]]
    suggestion: Optional[str]
    page: int
    limit: Optional[int]


_RANGE = re.compile(r"\b(\w+):(\d{4})\.\.(\d{4})\b")
_FIELD = re.compile(r'(?<![\w"])(\w+):')
_TOKEN = re.compile(r'"[^"]*"|\S+')


# Bounds on a query's size: whoosh's parser recurses once per parenthesis and "did you mean"
# costs ~20 ms a word on a large index, so an unbounded query could take minutes or overflow.
MAX_QUERY_CHARS = 5000
MAX_QUERY_TERMS = 200
MAX_QUERY_DEPTH = 20
MAX_WILDCARDS = 3
SUGGEST_WORDS = 5        # "did you mean" looks at the first few unknown words only


def check_query(q: str) -> None:
    """Refuse what whoosh would silently guess at (unclosed phrases and ranges, lone operators),
    and queries too large to answer in bounded time."""
    depth = deepest = 0
    for c in re.sub(r'"[^"]*"', "", q):
        depth += (c == "(") - (c == ")")
        deepest = max(deepest, depth)
    if deepest > MAX_QUERY_DEPTH:
        raise UsageProblem(f"parentheses nested {deepest} deep in the query, over the limit of {MAX_QUERY_DEPTH}",
                           fix="remove the extra parentheses")
    if len(q) > MAX_QUERY_CHARS:
        raise UsageProblem(f"the query is {len(q)} characters long, over the limit of {MAX_QUERY_CHARS}",
                           fix="search for fewer words; use --theme and the other filters to narrow")
    tokens = _TOKEN.findall(q)
    terms = sum(1 for w in tokens if w not in ("AND", "OR", "NOT", "ANDNOT", "ANDMAYBE"))
    if terms > MAX_QUERY_TERMS:
        raise UsageProblem(f"the query has {terms} words, over the limit of {MAX_QUERY_TERMS}",
                           fix="search for fewer words; use --theme and the other filters to narrow")
    # A wildcard word is expanded to every indexed word it matches, in every field: '*a*' alone
    # matches most of the index, and a few of them took seconds and hundreds of MB.
    wild = [w.split(":", 1)[-1].strip("()") for w in tokens if not w.startswith('"') and ("*" in w or "?" in w)]
    wild = [w for w in wild if w != "*" or q.strip() != "*"]
    if len(wild) > MAX_WILDCARDS:
        raise UsageProblem(f"the query has {len(wild)} wildcard words, over the limit of {MAX_WILDCARDS}",
                           fix="spell out the other words, or search for them one at a time")
    short = next((w for w in wild if len(re.sub(r"[*?]", "", w)) < 2), None)
    if short is not None:
        raise UsageProblem(f"wildcard '{short}' in query {q!r} matches almost every word",
                           fix="give at least two letters with it, e.g. exec*")
    if q.count('"') % 2:
        raise UsageProblem(f"unclosed phrase in query {q!r}", fix='close it with a second "')
    if q.count("[") != q.count("]") or q.count("{") != q.count("}"):
        raise UsageProblem(f"unclosed range in query {q!r}", fix="write year:[2014 TO 2016] or year:2014..2016")
    if q.count("(") != q.count(")"):
        raise UsageProblem(f"unbalanced parentheses in query {q!r}", fix="close every '(' with ')'")
    words = [w for w in _TOKEN.findall(q) if not w.startswith('"')]
    ops = {"AND", "OR", "NOT", "ANDNOT", "ANDMAYBE"}
    if words and (words[-1] in ops or words[0] in ops - {"NOT"}):
        op = words[-1] if words[-1] in ops else words[0]
        raise UsageProblem(f"operator {op} in query {q!r} has nothing to join",
                           fix="put a word on each side, e.g. 'propaganda AND video'")
    for a, b in zip(words, words[1:]):
        if a in ops and b in ops - {"NOT"}:
            raise UsageProblem(f"operators {a} {b} in query {q!r} have nothing between them",
                               fix="put a word between them")
    empty = re.search(r'(?<!\w)(\w+):(?=\s|\)|$)', re.sub(r'"[^"]*"', " ", q))
    if empty:
        raise UsageProblem(f"field '{empty.group(1)}:' in query {q!r} has no value",
                           fix=f"write {empty.group(1)}:something, e.g. theme:regret")
    for name in _FIELD.findall(q.replace('"', " ")):
        if name not in QUERY_FIELDS and name not in ALIASES:
            raise UsageProblem(f"unknown field '{name}:' in query {q!r}",
                               fix="use theme:, group:, lang:, status:, sensitivity:, year:, id:, speaker: or origin:")


def expand_synonyms(q: str, vocabulary) -> str:
    """Let a theme's synonyms, label and id find it: 'dissenters' also means themes:suppression-of-dissent."""
    table: dict[tuple[str, ...], set[str]] = {}
    for theme in vocabulary.values():
        for phrase in [theme.id.replace("-", " "), theme.label, *theme.synonyms]:
            key = tuple(re.findall(r"\w+", phrase.lower()))
            if key:
                table.setdefault(key, set()).add(theme.id)
    longest = max((len(k) for k in table), default=0)
    tokens = _TOKEN.findall(q)
    out: list[str] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.startswith('"') and tok.endswith('"') and len(tok) > 1:
            key = tuple(re.findall(r"\w+", tok.lower()))
            if key in table:
                out.append(_or(tok, table[key]))
            else:
                out.append(tok)
            i += 1
            continue
        matched = False
        for size in range(min(longest, len(tokens) - i), 0, -1):
            words = tokens[i:i + size]
            if any(not re.fullmatch(r"[\w'-]+", w) or w in ("AND", "OR", "NOT") for w in words):
                continue
            key = tuple(w2 for w in words for w2 in re.findall(r"\w+", w.lower()))
            if key in table:
                text = " ".join(words)
                out.append(_or(f'"{text}"' if size > 1 else text, table[key]))
                i += size
                matched = True
                break
        if not matched:
            out.append(tok)
            i += 1
    return " ".join(out)


def _or(text: str, themes: Iterable[str]) -> str:
    return "(" + " OR ".join([text, *(f"themes:{t}" for t in sorted(themes))]) + ")"


def _parser(schema):
    from whoosh import qparser

    parser = qparser.MultifieldParser(list(TEXT_FIELDS), schema, group=qparser.AndGroup)
    parser.add_plugin(qparser.FieldAliasPlugin({v: [k] for k, v in ALIASES.items()}))
    parser.add_plugin(qparser.GtLtPlugin())
    parser.remove_plugin_class(qparser.PlusMinusPlugin)
    return parser


def _filters(req: SearchRequest):
    from whoosh import query

    terms = [query.Term("themes", t.lower()) for t in req.themes]
    if req.group:
        terms.append(query.Term("group", req.group.lower()))  # the group field is lowercased
    if req.language:
        terms.append(query.Term("language", req.language))
    if req.status:
        terms.append(query.Term("status", req.status))
    if req.usable:
        terms += [query.Term("status", "approved"), query.Term("sensitivity", "public")]
    if not req.include_synthetic:
        terms.append(query.Term("synthetic", "false"))
    return query.And(terms) if terms else None


def search(index: Index, req: SearchRequest, vocabulary) -> SearchResult:
    """Run one search on a fresh index."""
    from whoosh import query as wq

    raw = req.query.strip()
    check_query(raw)
    redact = index.redactor()   # stored text was redacted when indexed; output is redacted again
    ix, searcher = index.open()
    qstring = _RANGE.sub(r"\1:[\2 TO \3]", raw)
    if qstring in ("", "*"):
        q = wq.Every()
    else:
        try:
            q = _parser(searcher.schema).parse(expand_synonyms(qstring, vocabulary))
        except (RecursionError, MemoryError):
            searcher.close()
            raise UsageProblem(f"query {raw[:60]!r}... is too complex to parse",
                               fix="use fewer parentheses and operators") from None
        if q is wq.NullQuery:
            raise UsageProblem(f"query {raw!r} has no words to search for", fix="give a word, a phrase or a filter")
    filt = _filters(req)
    with searcher:
        combined = wq.And([q, filt]) if filt is not None else q
        # One pass collects every match (for the total and the facets) and ranks them; only the
        # page shown gets stored fields and snippets.
        results = _all_matches(index, searcher, combined, _sort_order(req.sort))
        docs = results.docs()
        total = len(docs)
        start = (req.page - 1) * req.limit if req.limit else 0
        page_hits = results[start:start + req.limit] if req.limit else list(results)
        schema = searcher.schema   # not ix.schema: that property re-reads the index's TOC each time
        hits = [_hit(h, q, schema, req.snippets, req.sort == "score") for h in page_hits]
        facets = _facets(index, ix, searcher, docs) if req.facets else {}
        suggestion = _suggest(searcher, schema, raw) if total < 3 and raw not in ("", "*") else None
        limit = req.limit
    return SearchResult(raw, total, redact(hits), redact(facets), redact(suggestion), req.page, limit)


def gated_profiles(index: Index, levels: set[str], include_synthetic: bool, themes=None, ids=None) -> list[dict]:
    """The profile of every approved account at the given sensitivity levels, from the index's facet
    column (id, path, speaker, snapshot, origin, language, themes, all_themes, group, year, ...);
    with ``themes`` or ``ids``, only of those with a quote on one of the themes or with one of the ids."""
    from .facets import gated

    return gated(index, levels, include_synthetic, themes, ids)


def query_scores(index: Index, query: str, vocabulary) -> dict[str, float]:
    """The query's score for every matching account, scaled 0..1 (best = 1), by id: scored, with
    ids read from the id column, without reading any stored field."""
    from whoosh import query as wq

    raw = query.strip()
    check_query(raw)
    ix, searcher = index.open()
    qstring = _RANGE.sub(r"\1:[\2 TO \3]", raw)
    if qstring in ("", "*"):
        q = wq.Every()
    else:
        q = _parser(searcher.schema).parse(expand_synonyms(qstring, vocabulary))
        if q is wq.NullQuery:
            raise UsageProblem(f"query {raw!r} has no words to search for", fix="give a word, a phrase or a filter")
    with searcher:
        results = _all_matches(index, searcher, q)
        ids = searcher.reader().column_reader("id")
        # rounded as a search hit's score is, so a brief picks exactly what it picked from hits
        scored = [(ids[docnum], round(float(score), 4)) for score, docnum in results.top_n]
    best = max((s for _, s in scored), default=0) or 1
    return {sid: s / best for sid, s in scored}


def _all_matches(index: Index, searcher, q, sortedby=None):
    """Every match of ``q``, ranked: a posting list at a time (``flat``) where it can, with the same
    scores and order as whoosh's own search, which runs the rest."""
    if sortedby is None:
        from . import flat

        if index.postings is None:
            index.postings = flat.Postings()
        results = flat.search(searcher, q, index.postings)
        if results is not None:
            return results
    return searcher.search(q, limit=None, sortedby=sortedby, terms=False)


def _sort_order(sort: str):
    """score: best first; date: newest first (a full date before a month or a year alone), undated
    last; id: a to z. Ties go to the id, so the order never depends on the index's layout."""
    from whoosh import sorting

    if sort == "score":
        return None
    if sort == "date":
        return sorting.MultiFacet([sorting.FieldFacet("date", reverse=True), sorting.FieldFacet("id")])
    if sort == "id":
        return sorting.FieldFacet("id")
    raise UsageProblem(f"unknown sort '{sort}'", fix="use score, date or id")


def _hit(hit, q, schema, snippets: bool, scored: bool = True) -> dict:
    meta = dict(hit["meta"])
    # Sorted by date or id, whoosh puts the sort key where the score goes: there is no score then.
    meta["score"] = round(float(hit.score), 4) if scored and hit.score is not None else None
    if snippets:
        meta["snippet"] = _snippet(hit, q, schema, meta["language"])
    return meta


def _snippet(hit, q, schema, language: str) -> str:
    from whoosh import highlight

    content = hit["content"]
    fieldname = LANG_FIELDS.get(language, OTHER_FIELD)
    terms = {text for name, text in q.iter_all_terms() if name == fieldname} if q is not None else set()
    if terms:
        analyzer = _WordMemo.of(fieldname, schema[fieldname].analyzer)
        frag = highlight.ContextFragmenter(maxchars=240, surround=60)
        hl = highlight.highlight(content, terms, analyzer, frag, _marks(), top=1)
        if hl:
            return _one_line(hl)
    first = _one_line(content)
    return first[:200] + ("..." if len(first) > 200 else "")


class _WordMemo:
    """A field's analyzer for highlighting, with each word's analysis kept: the same tokens (text,
    start and end) as the analyzer gives, without running every word through its chain of filters
    again. Exact because every filter of the chain maps one word to at most one term, whatever the
    words around it (checked for each word: a word analysed otherwise falls back to the chain)."""
    _kept: dict = {}
    MAX_WORDS = 200_000

    def __init__(self, analyzer):
        from whoosh.analysis import RegexTokenizer

        self.analyzer = analyzer
        first = analyzer.items[0] if hasattr(analyzer, "items") else None
        self.words = first.expression if type(first) is RegexTokenizer and not first.gaps else None
        self.terms: dict = {}

    @classmethod
    def of(cls, fieldname: str, analyzer) -> "_WordMemo":
        memo = cls._kept.get(fieldname)
        if memo is None or (memo.analyzer is not analyzer and memo.analyzer != analyzer):
            memo = cls._kept[fieldname] = cls(analyzer)
        return memo

    def __call__(self, text: str, **kw):
        if self.words is None:
            return self.analyzer(text, **kw)
        return self._tokens(text, kw)

    def _tokens(self, text: str, kw: dict):
        terms, analyzer = self.terms, self.analyzer
        if len(terms) > self.MAX_WORDS:
            terms.clear()
        found = []
        for match in self.words.finditer(text):
            word = match.group()
            term = terms.get(word, False)
            if term is False:
                out = [t.text for t in analyzer(word, **kw)]
                if len(out) > 1:       # not one word to one term: the chain itself, for all of it
                    return analyzer(text, **kw)
                term = terms[word] = out[0] if out else None
            if term is not None:
                found.append((term, match.start(), match.end()))
        return self._stream(found, kw)

    @staticmethod
    def _stream(found: list, kw: dict):
        from whoosh.analysis import Token

        token = Token(chars=True, removestops=kw.get("removestops", True), mode=kw.get("mode", ""))
        for token.text, token.startchar, token.endchar in found:
            token.boost = 1.0
            yield token


def _one_line(text: str) -> str:
    """A snippet on one line; the quotes and the summary it comes from stay apart, with ' / ' between."""
    return " / ".join(" ".join(part.split()) for part in re.split(r"\n\s*\n", text) if part.strip())


def _marks():
    """Highlights as [[word]]: plain text, safe in any output; the terminal printer styles it."""
    from whoosh import highlight

    class Marks(highlight.Formatter):
        between = " ... "

        def format_token(self, text, token, replace=False):
            return f"[[{highlight.get_text(text, token, replace)}]]"

        def format_fragment(self, fragment, replace=False):
            # Widen the window to whole words, so a snippet never starts or ends mid-word.
            text = fragment.text
            start, end = fragment.startchar, fragment.endchar
            while 0 < start and not text[start - 1].isspace() and fragment.startchar - start < 30:
                start -= 1
            while end < len(text) and not text[end].isspace() and end - fragment.endchar < 30:
                end += 1
            fragment.startchar, fragment.endchar = start, end
            return super().format_fragment(fragment, replace)

    return Marks()


def _suggest(searcher, schema, raw: str) -> Optional[str]:
    """Did you mean: each plain word of the query that no text field holds, replaced by its nearest word.

    Corrections are made on the index's own (stemmed) terms, then shown as a word a reader knows:
    the first place the corrected term occurs in a matching account's text.
    """
    reader = searcher.reader()
    changed = False
    out = []
    looked = 0
    for tok in _TOKEN.findall(raw):
        word = tok.lower()
        if tok in ("AND", "OR", "NOT") or ":" in tok or tok.startswith('"') or not re.fullmatch(r"\w{1,40}", tok) \
                or looked >= SUGGEST_WORDS:
            out.append(tok)
            continue
        analysed = {name: [t.text for t in schema[name].analyzer(word)] for name in TEXT_FIELDS}
        if any(reader.doc_frequency(name, t) for name, terms in analysed.items() for t in terms):
            out.append(tok)
            continue
        looked += 1
        best = None   # (document frequency, field, corrected term)
        for name, terms in analysed.items():
            for term in searcher.corrector(name).suggest(terms[0], limit=1, maxdist=2) if terms else []:
                candidate = (reader.doc_frequency(name, term), name, term)
                best = max(best, candidate) if best else candidate
        if best is None:
            out.append(tok)
            continue
        out.append(_surface(searcher, schema, best[1], best[2]))
        changed = True
    return " ".join(out) if changed else None


def _surface(searcher, schema, fieldname: str, term: str) -> str:
    """A word as written in the archive for an indexed (stemmed, folded) term."""
    from whoosh import query as wq

    hits = searcher.search(wq.Term(fieldname, term), limit=1)
    if hits:
        content = hits[0]["content"]
        for token in schema[fieldname].analyzer(content, chars=True, mode="index"):
            if token.text == term:
                return content[token.startchar:token.endchar].lower()
    return term
