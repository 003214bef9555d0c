"""The search's fast paths give exactly what whoosh gives: the posting-list evaluator (flat) its
matches, scores and order (or it stands aside), the kept word analysis its snippets, and the
facet heads a staying process keeps the counts of a fresh read. Placed last in this file, the
facet test edits the shared archive.

Every query is run both ways on one index of several segments with deleted documents (as edits
leave it), and compared float for float; generated queries cover words, fields, wildcards,
ranges, boosts, AND/OR/NOT, phrases and the search command's filters, with each of whoosh's ways
of building an OR (a tree of unions, an array of scores, automatic).
"""
from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ArchiveMaker

WORDS_EN = ["propaganda", "executed", "executions", "prison", "money", "family", "fear", "border", "video",
            "regret", "promise", "lies", "truth", "smuggler", "emir", "dissent", "dissenters", "camera"]
WORDS_FR = ["propagande", "exécutés", "prison", "argent", "famille", "peur", "frontière", "vidéo", "regret"]
THEMES = ["suppression-of-dissent", "false-promises", "regret", "propaganda-deception", "corruption-hypocrisy"]


def _story(rng: random.Random, maker: ArchiveMaker, n: int) -> None:
    french = rng.random() < 0.3
    words = WORDS_FR if french else WORDS_EN
    body = " ".join(rng.choice(words) for _ in range(rng.randint(3, 60))) + "."
    maker.story(f"s{n:03d}", body=body, language="fr" if french else "en",
                themes=rng.sample(THEMES, rng.randint(1, 2)),
                status=rng.choice(["approved", "approved", "draft"]),
                sensitivity=rng.choice(["public", "public", "internal"]),
                source={"outlet": "Test Outlet", "published": str(rng.randint(2014, 2019)), "snapshot": "sources/src.txt"})


@pytest.fixture(scope="module")
def segmented(tmp_path_factory):
    """An index of three segments, the first two with deleted documents: (index, searcher)."""
    from counterbrief import load
    from counterbrief.index import Index

    maker = ArchiveMaker(tmp_path_factory.mktemp("flat") / "archive")
    rng = random.Random(5)
    for n in range(80):
        _story(rng, maker, n)
    archive = load.find_archive(maker.root, None, maker.root)
    Index(archive).fresh()
    for batch in (range(0, 80, 7), range(3, 80, 11)):   # edits: old documents deleted, new segment
        for n in batch:
            _story(rng, maker, n)
        for n in range(80 + batch.start * 3, 84 + batch.start * 3):
            _story(rng, maker, n)
        (maker.root / "stories" / f"s{batch.start + 1:03d}.md").unlink()
        Index(archive).fresh()
    index = Index(archive)
    ix, searcher = index.open()
    reader = searcher.reader()
    assert len(reader.leaf_readers()) >= 3 and reader.has_deletions()
    yield index, searcher
    searcher.close()


def _word(draw) -> str:
    return draw(st.sampled_from(WORDS_EN + WORDS_FR + ["absent", "dissenters", "disappeared"]))


@st.composite
def queries(draw, depth: int = 0) -> str:
    kind = draw(st.sampled_from(["word", "word", "word", "field", "wild", "range", "boost", "phrase", "not", "and",
                                 "or", "group"] if depth < 2 else ["word", "field", "wild"]))
    if kind == "word":
        return _word(draw)
    if kind == "field":
        return "theme:" + draw(st.sampled_from(THEMES + ["no-such"]))
    if kind == "wild":
        return _word(draw)[:draw(st.integers(2, 4))] + "*"
    if kind == "range":
        return f"year:{draw(st.integers(2013, 2016))}..{draw(st.integers(2016, 2020))}"
    if kind == "boost":
        return f"{_word(draw)}^{draw(st.sampled_from(['2', '0.5', '3']))}"
    if kind == "phrase":
        return f'"{_word(draw)} {_word(draw)}"'
    if kind == "not":
        return f"{draw(queries(depth + 1))} NOT {_word(draw)}"
    if kind == "group":
        return f"({draw(queries(depth + 1))} OR {draw(queries(depth + 1))})"
    joined = " AND " if kind == "and" else " OR "
    return joined.join(draw(st.lists(queries(depth + 1), min_size=2, max_size=4)))


def _both(index, searcher, qstring: str, filters: dict):
    """(whoosh's (score, docnum) list and document set, flat's or None)."""
    from whoosh import query as wq

    from counterbrief import flat
    from counterbrief.search import _RANGE, SearchRequest, _filters, _parser, expand_synonyms

    qstring = _RANGE.sub(r"\1:[\2 TO \3]", qstring)    # as the search command does
    q = _parser(searcher.schema).parse(expand_synonyms(qstring, index.vocabulary()))
    filt = _filters(SearchRequest(**filters))
    if filt is not None:
        q = wq.And([q, filt])
    expected = searcher.search(q, limit=None, terms=False)
    got = flat.search(searcher, q, index.postings)
    return (list(expected.top_n), set(expected.docs())), got


FILTERS = st.sampled_from([{}, {"usable": True}, {"themes": ["regret"]}, {"language": "fr", "status": "draft"}])


@pytest.mark.parametrize("or_kind", ["auto", "tree", "array"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(qstring=queries(), filters=FILTERS)
def test_flat_search_gives_whoosh_scores_and_order_or_stands_aside(segmented, monkeypatch, or_kind, qstring,
                                                                    filters):
    from whoosh.query import compound

    from counterbrief import flat

    index, searcher = segmented
    if index.postings is None:
        index.postings = flat.Postings(budget=500)   # small: entries are dropped and read again
    kinds = {"auto": compound.Or.AUTO_MATCHER, "tree": compound.Or.DEFAULT_MATCHER,
             "array": compound.Or.ARRAY_MATCHER}
    monkeypatch.setattr(compound.Or, "matcher_type", kinds[or_kind])
    (expected, docs), got = _both(index, searcher, qstring, filters)
    plain = not any(t in qstring for t in ('"', "NOT", "^0"))
    if got is None:
        assert not plain, f"{qstring!r} should be evaluated by flat"
        return
    assert list(got.top_n) == expected            # the same floats, the same order
    assert set(got.docs()) == docs and len(got) == len(expected)


def test_flat_search_is_used_and_equal_for_the_commands_own_queries(segmented):
    index, searcher = segmented
    for qstring in ("propaganda executed", "dissenters", "regret OR prison", "theme:regret fear", "exéc*",
                    "year:2015..2018 money"):
        (expected, docs), got = _both(index, searcher, qstring, {"usable": True})
        assert got is not None and expected, qstring
        assert list(got.top_n) == expected and set(got.docs()) == docs


def test_the_postings_kept_stay_within_their_budget_and_forget_segments_merged_away(segmented):
    from whoosh.query import Term

    from counterbrief import flat

    index, searcher = segmented
    cache = flat.Postings(budget=60)
    for word in ("propaganda", "prison", "money", "family", "fear", "border"):
        assert flat.search(searcher, Term("text_en", word), cache) is not None
    assert cache._lists and (cache._size <= 60 or len(cache._lists) == 1)
    assert cache._size == sum(len(p) for p in cache._lists.values())
    cache.keep_only(set())
    assert not cache._lists and not cache._lengths and cache._size == 0


SNIPPET_WORDS = WORDS_EN + WORDS_FR + ["the", "a", "and", "les", "été", "Exécutés", "PROPAGANDA", "قَتَلُوا",
                                       "الدولة", "في", "على", "والدعاية", "naïve", "x"]


@pytest.mark.parametrize("fieldname", ["text_en", "text_fr", "text_ar", "text_xx"])
@settings(max_examples=150, deadline=None)
@given(words=st.lists(st.sampled_from(SNIPPET_WORDS), max_size=120),
       seps=st.lists(st.sampled_from([" ", ", ", ".\n\n", " — ", "'", "\u00a0", "-"]), min_size=1),
       picked=st.lists(st.sampled_from(SNIPPET_WORDS), min_size=1, max_size=3))
def test_snippets_from_the_kept_word_analysis_equal_the_analyzers_own(fieldname, words, seps, picked):
    """A search hit's snippet comes from each word's analysis kept (_WordMemo), not from running the
    analyzer over the whole text: the highlighted passage must be the same, character for character."""
    from whoosh import highlight

    from counterbrief.schema import _schema
    from counterbrief.search import _WordMemo, _marks

    analyzer = _schema()[fieldname].analyzer
    text = "".join(w + seps[i % len(seps)] for i, w in enumerate(words))
    terms = {t.text for w in picked for t in analyzer(w)}

    def snippet(an):
        frag = highlight.ContextFragmenter(maxchars=240, surround=60)
        return highlight.highlight(text, terms, an, frag, _marks(), top=1)

    assert snippet(_WordMemo(analyzer)) == snippet(analyzer)


def test_facet_counts_kept_by_a_staying_process_equal_those_read_afresh(segmented, tmp_path):
    """The watcher keeps each segment's facet heads; its counts must be a fresh process's, before and
    after an edit adds a segment and deletes documents."""
    from counterbrief.facets import _facets
    from counterbrief.index import Index

    index, searcher = segmented
    archive = index.archive
    warm = Index(archive)
    warm.keep_warm = True
    rng = random.Random(9)
    for round_ in range(3):
        ix, s = warm.open()
        cold = Index(archive)
        cix, cs = cold.open()
        for _ in range(5):
            docs = set(rng.sample(range(s.doc_count_all()), rng.randint(0, s.doc_count_all())))
            docs = {d for d in docs if not s.reader().is_deleted(d)}
            assert _facets(warm, ix, s, docs) == _facets(cold, cix, cs, docs)
        assert sum(_facets(warm, ix, s, set(range(s.doc_count_all())) - {
            d for d in range(s.doc_count_all()) if s.reader().is_deleted(d)})["language"].values()) == s.doc_count()
        s.close()
        cs.close()
        maker = ArchiveMaker.__new__(ArchiveMaker)
        maker.root = archive.root
        _story(rng, maker, 200 + round_)
        _story(rng, maker, round_ * 5)
        warm.fresh()
