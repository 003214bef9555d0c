"""Facet counts and per-story profiles from the index's packed ``facets`` column (no stored fields read)."""
from __future__ import annotations

import marshal
import os
import re
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


def _values(index: Index, keep=None) -> list[list[str]]:
    """The packed facet value of every live story, split into PROFILE_FIELDS; with ``keep``, only
    those whose fields (still bytes) it accepts are decoded."""
    ix, searcher = index.open()
    with searcher:
        table = facet_table(index, ix, searcher)
        live = _live(searcher.reader())
    width = len(PROFILE_FIELDS)
    out = []
    for n in live:
        raw = table[n]
        if not raw:
            continue
        if keep is not None:
            parts = raw.split(b"\t")
            if len(parts) != width or not keep(parts):
                continue
        value = raw.decode("utf-8").split("\t")
        if len(value) == width:
            out.append(value)
    return out


def _live(reader) -> list[int]:
    """The live document numbers, in order, from each segment's set of deleted ones (not a call per document)."""
    out: list[int] = []
    for sub, offset in reader.leaf_readers():
        count = sub.doc_count_all()
        segment = sub.segment()
        if not sub.has_deletions():
            out.extend(range(offset, offset + count))
        elif segment is not None:
            gone = set(segment.deleted_docs())
            out.extend(offset + d for d in range(count) if d not in gone)
        else:
            out.extend(offset + d for d in range(count) if not sub.is_deleted(d))
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


def gated(index: Index, levels: set[str], include_synthetic: bool, themes=None, ids=None) -> list[dict]:
    """The profiles of every approved account at the given sensitivity levels, in index order, with the
    keys of the stored ``meta`` selection used (``themes`` the story's own, ``all_themes`` with its quotes').
    With ``themes`` or ``ids`` (sets), only those with a quote that may carry one of the themes (a
    quick test on the packed bytes, never too strict) or with one of the ids."""
    wanted = {level.encode("utf-8") for level in levels}

    def keep(v: list) -> bool:   # the gate, on the packed bytes: only what passes is decoded
        return v[4] == b"approved" and v[5] in wanted and (include_synthetic or v[7] == b"0")

    if themes is not None or ids is not None:
        theme_bytes = [t.encode("utf-8") for t in themes or ()]
        id_bytes = {i.encode("utf-8") for i in ids or ()}
        gate = keep

        def keep(v: list) -> bool:  # noqa: F811 - the gate, then what a message can take
            return gate(v) and (v[9] in id_bytes or any(t in v[14] for t in theme_bytes))

    return [_profile(v) for v in _values(index, keep)]


def _segment_values(reader) -> list:
    if not reader.has_column("facets"):
        return [b""] * reader.doc_count_all()
    cr = reader.column_reader("facets")
    return [cr[n] for n in range(reader.doc_count_all())]


def _segment_file(folder: Path, key: str) -> Path:
    return folder / f"facets-{key}.bin"


def _read_segment(folder: Path, key: str, count: int) -> Optional[list]:
    """The cached facet values of one segment (``facets-SEGMENT.bin``), or None if missing or damaged."""
    try:
        values = marshal.loads(_segment_file(folder, key).read_bytes())
    except (OSError, ValueError, EOFError, TypeError):
        return None
    if not isinstance(values, list) or len(values) != count or not all(type(v) is bytes for v in values):
        return None
    return values


def _legacy_cache(folder: Path) -> dict:
    """``facets.bin``: every segment in one file, as earlier versions wrote it (read until the next update)."""
    try:
        cache = marshal.loads((folder / "facets.bin").read_bytes())
    except (OSError, ValueError, EOFError, TypeError):
        return {}
    return cache if isinstance(cache, dict) else {}


def _facet_table(ix, searcher, cache: Optional[dict] = None) -> tuple[list, dict]:
    """The packed facet values of every document by document number, and the per-segment cache.

    Segments never change once written, so their values are cached by segment id, one file per
    segment written once: after an update only the new small segment is read from its column, and
    nothing of the old segments is written again.
    """
    folder = Path(ix.storage.folder)
    legacy = None
    table: list = []
    fresh: dict = {}
    for sub, offset in searcher.reader().leaf_readers():
        segment = sub.segment()
        key = segment.segment_id() if segment is not None else None
        count = sub.doc_count_all()
        values = cache.get(key) if key and cache else None
        if key and (values is None or len(values) != count):
            values = _read_segment(folder, key, count)
            if values is None:
                legacy = _legacy_cache(folder) if legacy is None else legacy
                values = legacy.get(key)
        if values is None or len(values) != count:
            values = _segment_values(sub)
        if key:
            fresh[key] = values
        del table[offset:]
        table.extend(values)
    return table, fresh


def facet_table(index: Index, ix, searcher) -> list:
    """``_facet_table`` for this index, keeping the segments' values in ``index.facet_cache`` for the
    next read by this process (the watcher): a segment's values never change, so they are read once."""
    table, index.facet_cache = _facet_table(ix, searcher, index.facet_cache)
    return table


def write_facet_cache(ix, cache: Optional[dict] = None, searcher=None) -> dict:
    """After a commit: cache the facet values of the segments now live, a file per new segment (old
    ones are read back, or taken from ``cache``, what this process wrote last), and remove the files
    of segments gone; then the tally of the live documents. ``searcher``: one on the index as just
    committed (the watcher's, on its kept readers), else one is opened."""
    from .write import write_atomic

    folder = Path(ix.storage.folder)
    generation = ix.latest_generation()
    with searcher or ix.searcher() as searcher:
        _, cache = _facet_table(ix, searcher, cache)
        deleted = {}
        for sub, _ in searcher.reader().leaf_readers():
            segment = sub.segment()
            if segment is not None and segment.segment_id() in cache:
                deleted[segment.segment_id()] = sorted(segment.deleted_docs())
    present = set(os.listdir(folder))
    for key, values in cache.items():
        if _segment_file(folder, key).name not in present:
            write_atomic(_segment_file(folder, key), marshal.dumps(values))
    _write_tally(folder, generation, cache, deleted)
    keep = {_segment_file(folder, key).name for key in cache}
    for name in present:
        if name.startswith("facets-") and name.endswith(".bin") and name not in keep or name == "facets.bin":
            try:
                os.unlink(folder / name)
            except OSError:
                pass
    return cache


# ----------------------------------------------------------------------------- the tally (stats)
#
# What `stats` and `themes` count, summed once per commit: per segment over all its documents
# (segments never change), minus the documents deleted since. ``tally.bin`` holds the sum for the
# live index and the generation of whoosh's table of contents it was made for: a command reads this
# small file instead of importing whoosh and decoding a value per story (1.4 s at 100,000).

TALLY_VERSION = 1
_TOC = re.compile(r"_MAIN_([0-9]+)\.toc")
_COUNTED = ("theme", "usable_theme", "group", "origin", "year", "language", "status", "sensitivity")


def empty_tally() -> dict:
    return {"stories": 0, "quotes": 0, "usable": 0, **{name: {} for name in _COUNTED}}


def _add_values(total: dict, values, sign: int = 1) -> dict:
    """Add (or with sign -1, take away) the packed facet values of some documents to a tally."""
    width = len(PROFILE_FIELDS) - 1
    keys = Counter(tuple(v.split(b"\t", 9)[:9]) for v in values if v and v.count(b"\t") == width)
    for key, n in keys.items():
        themes, group, language, year, status, sensitivity, origin, synthetic, quotes = (
            k.decode("utf-8") for k in key)
        _add_profile(total, [t for t in themes.split("|") if t], group, language, year, status, sensitivity, origin,
                     synthetic == "1", int(quotes), n * sign)
    return total


def _add_profile(total: dict, themes, group, language, year, status, sensitivity, origin, synthetic, quotes,
                 n: int = 1) -> None:
    usable = status == "approved" and sensitivity == "public" and not synthetic
    total["stories"] += n
    total["quotes"] += quotes * n
    total["usable"] += n if usable else 0
    for name, value in (("group", group), ("origin", origin or "unknown"), ("year", year or "unknown"),
                        ("language", language), ("status", status), ("sensitivity", sensitivity)):
        if value:
            _bump(total[name], value, n)
    for t in themes:
        _bump(total["theme"], t, n)
        if usable:
            _bump(total["usable_theme"], t, n)


def _bump(counts: dict, key, n: int) -> None:
    value = counts.get(key, 0) + n
    if value:
        counts[key] = value
    else:
        counts.pop(key, None)


def _merge(total: dict, part: dict, sign: int = 1) -> dict:
    for name in ("stories", "quotes", "usable"):
        total[name] += part[name] * sign
    for name in _COUNTED:
        for key, n in part[name].items():
            _bump(total[name], key, n * sign)
    return total


def profiles_tally(profiles: list[dict]) -> dict:
    """The tally of ``story_profiles``' dicts (the slow way, for an index without ``tally.bin``)."""
    total = empty_tally()
    for p in profiles:
        _add_profile(total, p["themes"], p["group"], p["language"], p["year"], p["status"], p["sensitivity"],
                     p["origin"], p["synthetic"], p["quotes"])
    return total


def _write_tally(folder: Path, generation: int, cache: dict, deleted: dict) -> None:
    from .write import write_atomic

    try:
        version, _, _, kept = marshal.loads((folder / "tally.bin").read_bytes())
        if version != TALLY_VERSION or not isinstance(kept, dict):
            kept = {}
    except (OSError, ValueError, EOFError, TypeError):
        kept = {}
    segments, total = {}, empty_tally()
    for key, values in cache.items():
        part = kept.get(key)
        if part is None or part[0] != len(values):
            part = (len(values), _add_values(empty_tally(), values))
        segments[key] = part
        _merge(total, part[1])
        gone = deleted.get(key)
        if gone:
            _add_values(total, [values[n] for n in gone if n < len(values)], -1)
    write_atomic(folder / "tally.bin", marshal.dumps((TALLY_VERSION, generation, total, segments)))


def read_tally(folder: Path) -> Optional[dict]:
    """The tally of the live index in ``folder``, or None when ``tally.bin`` is missing, damaged or
    was written for another commit than the latest (a process killed between the two)."""
    try:
        latest = max((int(m.group(1)) for m in map(_TOC.fullmatch, os.listdir(folder)) if m), default=-1)
        version, generation, total, _ = marshal.loads((folder / "tally.bin").read_bytes())
    except (OSError, ValueError, EOFError, TypeError):
        return None
    if version != TALLY_VERSION or generation != latest or latest < 0 or not isinstance(total, dict):
        return None
    return total


def archive_tally(index: Index) -> dict:
    """What stats and themes count, for the live index: from ``tally.bin``, else from the facet column."""
    index.settle_facets()   # the watcher may have left the tally of its last update for later
    folder = index._current()
    if folder is not None:
        index._note_read(folder)
        total = read_tally(folder)
        if total is not None and set(total) == set(empty_tally()):
            return total
    return profiles_tally(story_profiles(index)[0])


def _head(packed: bytes) -> bytes:
    """The FACETS part of a packed value (the rest, e.g. the id, differs for every account)."""
    return b"\t".join(packed.split(b"\t", len(FACETS))[:len(FACETS)])


def _facet_heads(index: Index, ix, searcher) -> list:
    """``_head`` of every document's packed value, kept by segment for a process that stays (the
    watcher): a segment's heads are made once; the same head is one shared bytes object.
    ``index.facet_heads`` is (the segments' layout, heads by segment id, the heads in order)."""
    leaves = []
    for sub, offset in searcher.reader().leaf_readers():
        segment = sub.segment()
        leaves.append((segment.segment_id() if segment is not None else None, offset, sub.doc_count_all()))
    layout, parts, heads = index.facet_heads or (None, {}, [])
    if layout != leaves:
        table = None
        fresh: dict = {}
        heads = []
        for key, offset, count in leaves:
            part = parts.get(key) if key else None
            if part is None or len(part) != count:
                table = facet_table(index, ix, searcher) if table is None else table
                shared: dict = {}
                part = [shared.setdefault(h, h) for h in map(_head, table[offset:offset + count])]
            if key:
                fresh[key] = part
            del heads[offset:]
            heads.extend(part)
        index.facet_heads = (leaves, fresh, heads)
    return heads


def _facets(index: Index, ix, searcher, docs) -> dict[str, dict[str, int]]:
    if index.keep_warm:
        packed = Counter(map(_facet_heads(index, ix, searcher).__getitem__, docs))
    else:
        table = facet_table(index, ix, searcher)
        packed = Counter(_head(table[d]) for d in docs)
    counters = {name: Counter() for name in FACETS}
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
