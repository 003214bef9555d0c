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
    out = []
    for v in _values(index):
        out.append({"themes": [t for t in v[0].split("|") if t], "group": v[1], "language": v[2], "year": v[3],
                    "status": v[4], "sensitivity": v[5], "origin": v[6], "synthetic": v[7] == "1",
                    "quotes": int(v[8]), "id": v[9]})
    return out, index.bad_count()


def _values(index: Index) -> list[list[str]]:
    """The packed facet value of every live story, split into PROFILE_FIELDS."""
    ix, searcher = index.open()
    with searcher:
        table, _ = _facet_table(ix, searcher, index.facet_cache)
        live = sorted(searcher.reader().all_doc_ids())
    width = len(PROFILE_FIELDS)
    out = []
    for n in live:
        value = table[n].decode("utf-8").split("\t") if table[n] else []
        if len(value) == width:
            out.append(value)
    return out


def _profile(v: list[str]) -> dict:
    p = dict(zip(PROFILE_FIELDS, v))
    p["all_themes"] = _split(v[0])
    p["themes"] = _split(v[13])
    p["synthetic"] = v[7] == "1"
    p["quotes"] = int(v[8])
    p["year"] = int(v[3]) if v[3] else None
    p["quote_meta"] = [_quote_meta(q) for q in v[14].split(";")] if v[14] else []
    return p


# Values repeat across thousands of accounts (the same themes, the same quote flags): each distinct
# one is decoded once, and the decoded value is shared, read-only, by every profile that has it.
_SPLIT: dict = {}
_QUOTE_META: dict = {}


def _split(packed: str) -> list:
    found = _SPLIT.get(packed)
    if found is None:
        found = _SPLIT[packed] = [t for t in packed.split("|") if t]
    return found


def _quote_meta(packed: str):
    """{"themes", "graphic", "group_claim"} of one quote, from its packed form "theme|theme/GC"."""
    found = _QUOTE_META.get(packed)
    if found is None:
        from types import MappingProxyType

        themes, _, flags = packed.rpartition("/")
        found = _QUOTE_META[packed] = MappingProxyType(
            {"themes": _split(themes), "graphic": flags[:1] == "1", "group_claim": flags[1:2] == "1"})
    return found


def gated(index: Index, levels: set[str], include_synthetic: bool) -> list[dict]:
    """The profiles of every approved account at the given sensitivity levels, in index order, with the
    keys of the stored ``meta`` selection used (``themes`` the story's own, ``all_themes`` with its quotes')."""
    return [_profile(v) for v in _values(index)
            if v[4] == "approved" and v[5] in levels and (include_synthetic or v[7] == "0")]


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
