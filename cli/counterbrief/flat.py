"""A query's matches and scores, computed a posting list at a time instead of a document at a time.

whoosh walks a query's matcher tree one document at a time, in Python: at 100,000 accounts a
two-word query over the four language fields spends ~200 ms in method calls. Here the very tree
whoosh builds for each segment (the same leaves, the same shape, so the same order of additions)
is evaluated a posting list at a time: a leaf's postings are read a block at a time, the matching
documents come from set operations, and only those are scored, with whoosh's own scoring function
and parameters and in the tree's order. So every score is the float whoosh gives and the order is
whoosh's (score, best first, then document number).

Anything else in the tree (phrases, NOT, other scorers) makes ``search`` return None: whoosh then
runs the query as always. A segment never changes once written, so the postings and field lengths
read are kept in a ``Postings`` cache by segment id, within a budget: the watcher reads a term's
postings once, and after an edit only the new small segment's.

This relies on whoosh's matcher and scorer internals (attributes of whoosh3 3.54, pinned in
setup.cfg); the tests compare it with whoosh's own search on generated archives and queries.
"""
from __future__ import annotations

from array import array
from collections import OrderedDict
from typing import Optional

import whoosh.matching
from whoosh import scoring
from whoosh.codec.whoosh3 import LENGTHS_COLUMN, W3LeafMatcher, _lenfield
from whoosh.matching import binary, combo, mcore, wrappers
from whoosh.searching import Results
from whoosh.util.numeric import byte_to_length

_LENGTH = [byte_to_length(b) for b in range(256)]


class Unsupported(Exception):
    """A node this evaluator does not know: whoosh runs the query."""


class Postings:
    """Postings ({document: weight}) and field lengths of segments, by segment id, least recently
    used dropped first once more than ``budget`` postings are kept."""

    def __init__(self, budget: int = 2_000_000):
        self.budget = budget
        self._lists: OrderedDict = OrderedDict()
        self._size = 0
        self._lengths: dict = {}

    def postings(self, key, read) -> dict:
        if key is None:
            return read()
        got = self._lists.get(key)
        if got is not None:
            self._lists.move_to_end(key)
            return got
        got = read()
        self._lists[key] = got
        self._size += len(got)
        while self._size > self.budget and len(self._lists) > 1:
            _, old = self._lists.popitem(last=False)
            self._size -= len(old)
        return got

    def lengths(self, key, read):
        if key is None:
            return read()
        got = self._lengths.get(key)
        if got is None:
            got = self._lengths[key] = read()
        return got

    def keep_only(self, segment_ids: set) -> None:
        """Forget the segments no longer live (merged away)."""
        for key in [k for k in self._lists if k[0] not in segment_ids]:
            self._size -= len(self._lists.pop(key))
        for key in [k for k in self._lengths if k[0] not in segment_ids]:
            del self._lengths[key]


def search(searcher, q, cache: Optional[Postings] = None) -> Optional[Results]:
    """Every match of ``q``, ranked, as ``searcher.search(q, limit=None, terms=False)`` returns
    them; None when the query's tree has a node evaluated only by whoosh."""
    cache = cache if cache is not None else Postings()
    context = searcher.context()
    items: list = []
    live = set()
    try:
        for sub, offset in searcher.leaf_searchers():
            segment = sub.reader().segment() if hasattr(sub.reader(), "segment") else None
            segid = segment.segment_id() if segment is not None else None
            live.add(segid)
            tree = _tree(q, sub, context)
            _check(tree)
            seg = _Segment(sub, segid, cache)
            matched = seg.ids(tree)
            if not matched:
                continue
            for docnum, score in seg.scores(tree, matched).items():
                if not score > 0:      # whoosh's array union drops a document scored 0
                    raise Unsupported("a score of 0")
                items.append((score, offset + docnum))
    except Unsupported:
        return None
    cache.keep_only(live)
    items.sort(key=lambda x: (0 - x[0], x[1]))
    results = Results(searcher, q, items, docset={d for _, d in items})
    results._total = len(items)    # what len(results) asks the collector for; there is none
    return results


class _Gathered(combo.ArrayUnionMatcher):
    """whoosh's array union as ``PreloadedOr`` makes it for a segment, with the first block read
    when the matcher is first used, not when it is made. Made, it fills a 2,048-slot array and
    reads and scores every sub-matcher's first block (~0.3 ms per node and segment, a dozen nodes
    per search over four language fields), which ``search`` never uses: it reads the sub-matchers'
    postings itself. Used (whoosh's build of some queries walks a union, e.g. a range's constant
    score), it starts as the constructor would have: nothing else moves its sub-matchers."""

    _STATE = frozenset({"_a", "_docnum", "_offset", "_limit"})

    def __init__(self, submatchers, doccount, boost=1.0, scored=True, partsize=2048):
        combo.CombinationMatcher.__init__(self, submatchers, boost=boost)
        self._scored = scored
        self._doccount = doccount
        self._partsize = partsize or doccount

    def __getattr__(self, name):   # only for attributes not set yet: the state the first block makes
        if name in _Gathered._STATE and "_a" not in self.__dict__:
            self._a = array("d", (0 for _ in range(self._partsize)))
            self._docnum = self._min_id()
            self._read_part()
            return getattr(self, name)
        raise AttributeError(name)


def _tree(q, searcher, context):
    """The matcher tree whoosh builds for ``q`` on one segment, array unions gathered only. The
    commands run one query at a time in a process, so whoosh's name for the class is swapped for
    the time of the build alone; whoosh's own search (when ``search`` gives up) builds its tree again."""
    real = whoosh.matching.ArrayUnionMatcher
    whoosh.matching.ArrayUnionMatcher = _Gathered
    try:
        return q.matcher(searcher, context)
    finally:
        whoosh.matching.ArrayUnionMatcher = real


_UNIONS = (combo.ArrayUnionMatcher, _Gathered)
_INNER = (binary.UnionMatcher, binary.IntersectionMatcher, *_UNIONS, wrappers.FilterMatcher,
          wrappers.WrappingMatcher)
_LEAVES = (W3LeafMatcher, mcore.ListMatcher, mcore.NullMatcherClass)


def _check(m) -> None:
    """Refuse a tree with a node not evaluated here before any postings are read."""
    kind = type(m)
    if kind in _LEAVES:
        scorer = m.scorer if kind is W3LeafMatcher else getattr(m, "_scorer", None)
        if type(scorer) not in (scoring.BM25FScorer, scoring.WeightScorer) and \
                not (scorer is None and kind is not W3LeafMatcher):
            raise Unsupported(f"scorer {type(scorer).__name__}")
        return
    if kind not in _INNER:
        raise Unsupported(f"matcher {kind.__name__}")
    if kind is wrappers.FilterMatcher and (not m._exclude or type(m.child) not in _LEAVES):
        raise Unsupported("a filter of another kind")
    for child in m.children():
        _check(child)


class _Segment:
    def __init__(self, searcher, segid, cache: Postings):
        self.searcher = searcher
        self.segid = segid
        self.cache = cache

    # -- which documents match: sets
    def ids(self, m) -> set:
        kind = type(m)
        if kind is binary.UnionMatcher:
            return self.ids(m.a) | self.ids(m.b)
        if kind is binary.IntersectionMatcher:
            return self.ids(m.a) & self.ids(m.b)
        if kind in _UNIONS:
            out: set = set()
            for sub in m._submatchers:
                out |= self.ids(sub)
            return out
        if kind is wrappers.FilterMatcher:
            if not m._exclude:
                raise Unsupported("an inclusive filter")
            return self.postings(m.child).keys() - m._ids
        if kind is wrappers.WrappingMatcher:
            return self.ids(m.child)
        if kind is mcore.NullMatcherClass:
            return set()
        return set(self.postings(m))

    # -- their scores: dicts, added up in the tree's order
    def scores(self, m, matched: set) -> dict:
        kind = type(m)
        if kind is binary.UnionMatcher:
            a, b = self.scores(m.a, matched), self.scores(m.b, matched)
            for d, s in b.items():
                a[d] = a[d] + s if d in a else s
            return a
        if kind is binary.IntersectionMatcher:
            a, b = self.scores(m.a, matched), self.scores(m.b, matched)
            return {d: s + b[d] for d, s in a.items() if d in b}
        if kind in _UNIONS:
            boost = _positive(m._boost)
            acc: dict = {}
            for sub in m._submatchers:
                for d, s in self.scores(sub, matched).items():
                    acc[d] = (acc.get(d, 0.0) + s * boost) if m._scored else 1.0
            return acc
        if kind is wrappers.FilterMatcher:   # the segment's deleted documents: never in ``matched``
            out = self._leaf_scores(m.child, matched)
        elif kind is wrappers.WrappingMatcher:
            out = self.scores(m.child, matched)
        elif kind is mcore.NullMatcherClass:
            return {}
        else:
            return self._leaf_scores(m, matched)
        boost = _positive(m.boost)
        return out if boost == 1.0 else {d: s * boost for d, s in out.items()}

    def _leaf_scores(self, m, matched: set) -> dict:
        posted = self.postings(m)
        here = posted.keys() & matched
        scorer = m.scorer if type(m) is W3LeafMatcher else m._scorer
        kind = type(scorer)
        if kind is scoring.BM25FScorer:
            length = self.lengths(m._term[0])
            idf, avgfl, B, K1 = scorer.idf, scorer.avgfl, scorer.B, scorer.K1
            # scoring.bm25, written out (the same operations in the same order: the same floats)
            return {d: idf * ((tf * (K1 + 1)) / (tf + K1 * ((1 - B) + B * length(d) / avgfl)))
                    for d, tf in ((d, posted[d]) for d in here)}
        if kind is scoring.WeightScorer or (scorer is None and type(m) is mcore.ListMatcher):
            return {d: posted[d] for d in here}
        raise Unsupported(f"scorer {kind.__name__}")

    # -- what a leaf holds
    def postings(self, m) -> dict:
        kind = type(m)
        if kind is W3LeafMatcher:
            key = (self.segid, *m._term) if m._term and self.segid else None
            return self.cache.postings(key, lambda: _read_blocks(m))
        if kind is mcore.ListMatcher:
            n = len(m._ids)
            if m._all_weights:
                weights = [m._all_weights] * n
            elif m._weights:
                weights = list(m._weights)
            else:
                weights = [1.0] * n
            return dict(zip(m._ids, weights))
        raise Unsupported(f"matcher {kind.__name__}")

    def lengths(self, fieldname: str):
        """The function whoosh's scorer uses for a document's length in the field, as a table lookup."""
        key = (self.segid, "lengths", fieldname) if self.segid else None
        return self.cache.lengths(key, lambda: _read_lengths(self.searcher, fieldname))


def _positive(boost: float) -> float:
    """A boost of 0 or less can drop a match inside whoosh's array union: left to whoosh."""
    if not boost > 0:
        raise Unsupported("a boost of 0 or less")
    return boost


def _read_blocks(m: W3LeafMatcher) -> dict:
    """A leaf's postings, a block at a time (as its own id() and weight() would give them)."""
    m.reset()
    ids: list = []
    weights: list = []
    while True:
        m._read_ids()
        m._read_weights()
        ids.extend(m._ids)
        weights.extend(m._weights)
        if m._lastblock:
            break
        m._next_block()
    return dict(zip(ids, weights))


def _read_lengths(searcher, fieldname: str):
    """``searcher.doc_field_length(d, fieldname, 1)`` for every document of a segment, read at once."""
    perdoc = searcher.reader()._perdoc
    column = perdoc._cached_reader(_lenfield(fieldname), LENGTHS_COLUMN)
    if column is None:
        return lambda d: 1
    if getattr(column, "_typecode", None) != "B" or column._fixedlen != 1:
        raise Unsupported("a length column of another kind")
    raw = column._dbfile.get(column._basepos, column._count) if column._count else b""
    count, default = len(raw), column._default
    table = _LENGTH

    def length(d: int):
        b = raw[d] if d < count else default
        if not b:
            raise Unsupported("a document without a length")   # whoosh would fail on None
        return table[b]
    return length
