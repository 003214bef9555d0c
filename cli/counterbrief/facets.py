"""Facet counts and per-story profiles from the index's packed ``facets`` column (no stored fields read)."""
from __future__ import annotations

import marshal
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from .index import Index

FACETS = ("themes", "group", "language", "year", "status", "sensitivity")


PROFILE_FIELDS = ("all_themes", "group", "language", "year", "status", "sensitivity", "origin", "synthetic", "quotes",
                  "id", "path", "speaker", "snapshot", "themes", "quote_meta")


def story_profiles(index: Index) -> tuple[list[dict], int]:
    """(one dict per indexed story from its packed facet value, number of story files left out).

    Reads the ``facets`` column (through the per-segment cache) and the index's small counts
    file: no stored field and no manifest. ``themes`` holds the quotes' themes too, and ``year``
    is text, as stats counts them.
    """
    out = _profiles(index)
    for p in out:
        p["story_themes"], p["themes"] = p["themes"], p["all_themes"]
        p["year"] = str(p["year"]) if p["year"] is not None else ""
    return out, index.bad_count()


def _profiles(index: Index) -> list[dict]:
    ix, searcher = index.open()
    with searcher:
        table, _ = _facet_table(ix, searcher, index.facet_cache)
        live = sorted(searcher.reader().all_doc_ids())
    out = []
    width = len(PROFILE_FIELDS)
    for n in live:
        value = table[n].decode("utf-8").split("\t") if table[n] else []
        if len(value) != width:
            continue
        p = dict(zip(PROFILE_FIELDS, value))
        p["all_themes"] = [t for t in p["all_themes"].split("|") if t]
        p["themes"] = [t for t in p["themes"].split("|") if t]
        p["synthetic"] = p["synthetic"] == "1"
        p["quotes"] = int(p["quotes"])
        p["year"] = int(p["year"]) if p["year"] else None
        p["quote_meta"] = [_quote_meta(q) for q in p["quote_meta"].split(";")] if p["quote_meta"] else []
        out.append(p)
    return out


_QUOTE_META: dict = {}


def _quote_meta(packed: str) -> dict:
    """{"themes", "graphic", "group_claim"} of one quote, from its packed form (shared values are decoded once)."""
    found = _QUOTE_META.get(packed)
    if found is None:
        themes, _, flags = packed.rpartition("/")
        found = _QUOTE_META[packed] = (tuple(t for t in themes.split("|") if t), flags[:1] == "1", flags[1:2] == "1")
    return {"themes": list(found[0]), "graphic": found[1], "group_claim": found[2]}


def gated(index: Index, levels: set[str], include_synthetic: bool) -> list[dict]:
    """The profiles of every approved account at the given sensitivity levels, in index order, with the
    keys of the stored ``meta`` selection used (``themes`` the story's own, ``all_themes`` with its quotes')."""
    return [p for p in _profiles(index) if p["status"] == "approved" and p["sensitivity"] in levels
            and (include_synthetic or not p["synthetic"])]


def _segment_values(reader) -> list:
    if not reader.has_column("facets"):
        return [b""] * reader.doc_count_all()
    cr = reader.column_reader("facets")
    return [cr[n] for n in range(reader.doc_count_all())]


def _facet_table(ix, searcher, cache: Optional[dict] = None) -> tuple[list, dict]:
    """The packed facet values of every document by document number, and the per-segment cache.

    Segments never change once written, so their values are cached by segment id: after an
    update only the new small segment is read from its column.
    """
    if cache is None:
        try:
            cache = marshal.loads((Path(ix.storage.folder) / "facets.bin").read_bytes())
        except (OSError, ValueError, EOFError, TypeError):
            cache = {}
        if not isinstance(cache, dict):
            cache = {}
    table: list = []
    fresh: dict = {}
    for sub, offset in searcher.reader().leaf_readers():
        segment = sub.segment()
        key = segment.segment_id() if segment is not None else None
        values = cache.get(key) if key else None
        if values is None or len(values) != sub.doc_count_all():
            values = _segment_values(sub)
        if key:
            fresh[key] = values
        del table[offset:]
        table.extend(values)
    return table, fresh


def write_facet_cache(ix) -> dict:
    """After a commit: cache the facet values of the segments now live (old ones are read back)."""
    from .write import write_atomic

    with ix.searcher() as searcher:
        _, cache = _facet_table(ix, searcher)
    write_atomic(Path(ix.storage.folder) / "facets.bin", marshal.dumps(cache))
    return cache


def _facets(ix, searcher, docs, cache: Optional[dict] = None) -> dict[str, dict[str, int]]:
    table, _ = _facet_table(ix, searcher, cache)
    counters = {name: Counter() for name in FACETS}
    packed = Counter(table[d] for d in docs)
    for value, n in packed.items():
        if not value:
            continue
        themes, *rest = value.decode("utf-8").split("\t")
        for t in themes.split("|"):
            if t:
                counters["themes"][t] += n
        for name, v in zip(FACETS[1:], rest):
            if v:
                counters[name][v] += n
    return {name: dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))) for name, c in counters.items()}
