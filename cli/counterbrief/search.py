"""The search index: the only module that imports whoosh.

The index lives in ``ARCHIVE/.counterbrief/`` (or the user's cache for a read-only bundled
archive). ``current`` names the live index folder; each index folder holds the whoosh files,
``stat.bin`` (the size and mtime of every file it was built from), ``manifest.bin`` (their
hashes and what each story contributed) and ``facets.bin`` (facet values per segment). Every
search first compares the archive with ``stat.bin`` and indexes only what changed, under a file
lock; a full rebuild is made in a new folder and switched in by replacing ``current``
atomically, so readers never see a half-built index and a killed build leaves the old one.
"""
from __future__ import annotations

import marshal
import os
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

from . import load
from .errors import Problem, UsageProblem
from .model import Archive, Story, Theme
from .state import (SCHEMA_VERSION, current_folder, index_home, read_stat, read_stat_signed, stat_signature,
                    why_unusable, write_stat)
from .text import (ARABIC_STOP_WORDS, arabic_light_stem, arabic_normalise, is_arabic, redactor)

SNIPPET_SOURCE_CHARS = 1500
LANG_FIELDS = {"en": "text_en", "fr": "text_fr", "ar": "text_ar"}
OTHER_FIELD = "text_xx"
TEXT_FIELDS = ("text_en", "text_fr", "text_ar", OTHER_FIELD)
FACETS = ("themes", "group", "language", "year", "status", "sensitivity")
ALIASES = {"theme": "themes", "lang": "language", "published": "year"}
QUERY_FIELDS = ("id", "themes", "group", "language", "year", "status", "sensitivity", "synthetic", "speaker",
                "warning", "origin")

Progress = Optional[Callable[[int, int], None]]   # (done, total)
Notice = Optional[Callable[[str], None]]           # one line for the user (stderr)


# ----------------------------------------------------------------------------- analysis

from whoosh.analysis import Filter as _Filter  # noqa: E402  (this module is imported only by commands that search)


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


# ----------------------------------------------------------------------------- documents

def _year(value: Optional[str]) -> Optional[int]:
    m = re.match(r"^(\d{4})", str(value or ""))
    return int(m.group(1)) if m else None


def story_document(story: Story, rel: str, redact) -> dict[str, Any]:
    """What the index keeps of one story, with every redacted name already removed."""
    r = redact
    title, body, alias = r(story.title), r(story.body), r(story.speaker.get("alias", ""))
    role, origin = r(story.speaker.get("role", "")), r(story.speaker.get("origin", ""))
    quotes = [r(q.text) for q in story.quotes]
    text = "\n".join([title, alias, role, origin, body, *quotes])
    themes = story.all_themes()
    year = _year(story.source.get("published"))
    meta = {
        "id": story.id, "title": title, "speaker": alias, "role": role, "origin": origin, "group": story.group,
        "language": story.language, "themes": story.themes, "year": year, "status": story.status,
        "sensitivity": story.sensitivity, "synthetic": story.synthetic, "content_warnings": story.content_warnings,
        "outlet": r(story.source.get("outlet", "")), "author": r(story.source.get("author", "")),
        "published": story.source.get("published", ""), "url": story.source.get("url", ""),
        "via": r(story.source.get("via", "")),
        # for brief selection, which ranks accounts from the index before reading any file
        "all_themes": themes, "snapshot": story.source.get("snapshot", ""), "path": rel,
    }
    doc = {
        "path": rel, "id": story.id, "meta": meta,
        # Snippets come from the quotes and the start of the summary: enough to show why it matched.
        "content": "\n\n".join([*quotes, body])[:SNIPPET_SOURCE_CHARS],
        "themes": ",".join(themes),
        # One packed value per story: the search facets first (FACETS order), then what stats needs.
        "facets": "\t".join(["|".join(themes), story.group, story.language, str(year or ""), story.status,
                             story.sensitivity, origin.replace("\t", " "), "1" if story.synthetic else "0",
                             str(len(story.quotes))]).encode("utf-8"),
        "group": story.group, "language": story.language, "status": story.status,
        "sensitivity": story.sensitivity, "synthetic": "true" if story.synthetic else "false",
        "speaker": alias + " " + role, "origin": origin, "warning": " ".join(story.content_warnings),
        LANG_FIELDS.get(story.language, OTHER_FIELD): text,
    }
    for key, value in (("year", year), ("joined", _year(story.speaker.get("joined"))),
                       ("left", _year(story.speaker.get("left")))):
        if value is not None:
            doc[key] = value
    return doc


# ----------------------------------------------------------------------------- location & manifest

def _file_stat(path: Path) -> Optional[tuple]:
    try:
        st = path.stat()
        return (st.st_size, st.st_mtime_ns)
    except OSError:
        return None


def _hash(path: Path) -> bytes:
    import hashlib

    try:
        return hashlib.sha1(path.read_bytes()).digest()
    except OSError:
        return b""


PARALLEL_CHECK_FROM = 2000
_POOL_STATE: dict = {}


def _pool_init(archive: Archive, vocabulary) -> None:
    from .validate import SnapshotCache

    _POOL_STATE.update(archive=archive, vocabulary=vocabulary, snapshots=SnapshotCache(archive))


def _pool_check(rel: str):
    from .validate import check_story

    st = _POOL_STATE
    return rel, check_story(st["archive"].root / rel, st["archive"], st["vocabulary"], st["snapshots"])


def _check_in_pool(archive: Archive, vocabulary, todo: list[str], progress: Progress) -> dict:
    """Parse and validate many stories on every core: a full build spends a third of its time here."""
    import multiprocessing

    parsed = {}
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(os.cpu_count() or 2, initializer=_pool_init, initargs=(archive, vocabulary)) as pool:
        for n, (rel, result) in enumerate(pool.imap_unordered(_pool_check, todo, chunksize=100), 1):
            parsed[rel] = result
            if progress:
                progress(n, len(todo))
    return parsed


@dataclass
class _StatTable:
    """stat.bin as read, with the file's own signature: re-read only when another process wrote it."""

    folder: Path
    signature: tuple
    stat: Optional[dict]

    @classmethod
    def read(cls, folder: Path, last: Optional["_StatTable"]) -> "_StatTable":
        if last is not None and last.folder == folder and last.signature and last.signature == stat_signature(folder):
            return last
        return cls(folder, *read_stat_signed(folder))


@dataclass
class Manifest:
    """What one index folder was built from, read by updates (a search reads only stat.bin). Stored with marshal."""

    stat: dict[str, tuple] = field(default_factory=dict)     # rel -> (size, mtime_ns), compared as a whole
    hashes: dict[str, bytes] = field(default_factory=dict)   # rel -> sha1 digest, to tell a touch from an edit
    stories: dict[str, tuple] = field(default_factory=dict)  # rel -> (id, ok, snapshot, redact names)

    @classmethod
    def read(cls, folder: Path, stat: Optional[dict] = None) -> Optional["Manifest"]:
        stat = stat if stat is not None else read_stat(folder)
        try:
            data = marshal.loads((folder / "manifest.bin").read_bytes())
            if stat is None or data.get("version") != SCHEMA_VERSION:
                return None
            return cls(stat, data["hashes"], data["stories"])
        except (OSError, ValueError, EOFError, TypeError, KeyError, AttributeError):
            return None

    def write(self, folder: Path) -> None:
        from .write import write_atomic

        # manifest.bin first, stat.bin last: stat.bin is what says "this index is fresh".
        write_atomic(folder / "manifest.bin", marshal.dumps(
            {"version": SCHEMA_VERSION, "hashes": self.hashes, "stories": self.stories}))
        write_stat(folder, self.stat)

    def record(self, rel: str, stat: tuple, root: Path) -> None:
        self.stat[rel] = stat
        self.hashes[rel] = _hash(root / rel)

    def forget(self, rel: str) -> None:
        self.stat.pop(rel, None)
        self.hashes.pop(rel, None)

    def redact_names(self) -> list[str]:
        return sorted({n for _, _, _, names in self.stories.values() for n in names})


# ----------------------------------------------------------------------------- the index

@dataclass
class IndexReport:
    indexed: int = 0
    removed: int = 0
    skipped: list = field(default_factory=list)   # Problems of stories left out
    rebuilt: bool = False
    total: int = 0


class Index:
    """The archive's search index: always brought up to date before it is read."""

    def __init__(self, archive: Archive, notice: Notice = None):
        self.archive = archive
        self.home = index_home(archive)
        self.notice = notice or (lambda line: None)
        self.facet_cache: Optional[dict] = None   # set when this process just wrote it
        self._table: Optional[_StatTable] = None  # the last stat.bin read, kept to read it only once
        self._vocabulary: Optional[dict] = None
        self._vocabulary_stat: Optional[tuple] = None   # (size, mtime) of the vocabulary.yml read
        self.opened: Optional[Path] = None               # the index folder this object has read from,
        self.opened_signature: tuple = ()                # and its stat.bin's signature just before
        self._mixed = False                              # it read from two different writes of the index

    def vocabulary(self) -> dict:
        """The archive's vocabulary, read once per process; an unusable one is an error, a flawed one a warning.

        A search reads it from the live index folder's ``vocabulary.bin`` while vocabulary.yml
        has the size and time recorded there: parsing YAML costs more than the whole query.
        """
        if self._vocabulary is None:
            self._vocabulary = self._cached_vocabulary()
        if self._vocabulary is None:
            from .validate import usable_vocabulary

            self._vocabulary_stat = _file_stat(self.archive.vocabulary_path)   # before reading it
            self._vocabulary, problems = usable_vocabulary(self.archive)
            if problems:
                self.notice(f"warning: {problems[0]}; run 'counterbrief check' for all")
        return self._vocabulary

    def _cached_vocabulary(self) -> Optional[dict]:
        folder = self._current()
        if folder is None:
            return None
        try:
            version, stat, rows = marshal.loads((folder / "vocabulary.bin").read_bytes())
            if version != SCHEMA_VERSION or stat is None or stat != _file_stat(self.archive.vocabulary_path):
                return None
            self._vocabulary_stat = stat
            return {row[0]: Theme(row[0], row[1], row[2], list(row[3])) for row in rows}
        except (OSError, ValueError, EOFError, TypeError, IndexError):
            return None

    def _write_vocabulary_cache(self, folder: Path) -> None:
        from .write import write_atomic

        if self._vocabulary_stat is not None:   # the size and time of the vocabulary.yml that was read
            rows = [(t.id, t.label, t.definition, list(t.synonyms)) for t in self._vocabulary.values()]
            write_atomic(folder / "vocabulary.bin", marshal.dumps((SCHEMA_VERSION, self._vocabulary_stat, rows)))

    # -- locations
    def _current(self) -> Optional[Path]:
        return current_folder(self.home)

    def _lock(self):
        from filelock import FileLock

        self.home.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.home / "lock"), timeout=600)

    # -- freshness
    def _stale(self, folder: Optional[Path], scan: dict) -> bool:
        if folder is None:
            return True
        self._table = _StatTable.read(folder, self._table)
        return self._table.stat != scan

    def fresh(self, progress: Progress = None, rebuild: bool = False, scan: Optional[dict] = None) -> IndexReport:
        """Bring the index up to date (or rebuild it) and return what was done.

        ``scan`` is the archive's (size, mtime) table when a probe has just taken it.
        """
        scan = scan if scan is not None else load.scan_archive(self.archive)
        if not rebuild and not self._stale(self._current(), scan):
            return IndexReport(total=-1)   # unchanged; not counted, to keep searches quick
        with self._lock():
            # Another process may have done the work while we waited for the lock. The scan taken
            # before the lock is kept: a file changed since then differs from the recorded table
            # and is picked up by the next command.
            folder = self._current()
            if not rebuild and not self._stale(folder, scan):
                return IndexReport(total=-1)
            self.vocabulary()   # an unusable vocabulary stops here, before anything is written
            if rebuild or folder is None:
                return self._rebuild(scan, progress)
            manifest = Manifest.read(folder, self._table.stat if self._table else None)
            if manifest is None:
                self.notice(f"{self.home}: {why_unusable(folder)}; rebuilding it")
                return self._rebuild(scan, progress)
            try:
                return self._update(folder, manifest, scan, progress)
            except Exception:  # noqa: BLE001 - a damaged index is rebuilt, never a dead end
                self.notice(f"{self.home}: the search index was unreadable; rebuilding it")
                return self._rebuild(scan, progress)

    def _rebuild(self, scan: dict, progress: Progress) -> IndexReport:
        from whoosh import index

        name = f"index-{os.getpid()}-{os.urandom(4).hex()}"
        folder = self.home / name
        folder.mkdir(parents=True)
        ix = index.create_in(str(folder), _schema())
        manifest = Manifest()
        paths = sorted(rel for rel in scan if rel.startswith("stories/"))
        report = self._index_paths(ix, manifest, paths, scan, progress, rebuild=True)
        report.rebuilt = True
        manifest.write(folder)
        # The switch: one atomic rename; until then readers use the old index.
        tmp = self.home / f".current.{os.getpid()}"
        tmp.write_text(name, encoding="utf-8")
        os.replace(tmp, self.home / "current")
        self._sweep(keep=folder)
        return report

    def _sweep(self, keep: Path) -> None:
        """Remove index folders other than the live one (old ones, and those of killed builds)."""
        for folder in self.home.glob("index-*"):
            if folder != keep:
                shutil.rmtree(folder, ignore_errors=True)

    def _update(self, folder: Path, manifest: Manifest, scan: dict, progress: Progress) -> IndexReport:
        from whoosh import index

        changed = set()
        for rel, stat in scan.items():
            if manifest.stat.get(rel) != stat:
                digest = _hash(self.archive.root / rel)
                if manifest.hashes.get(rel) == digest:
                    manifest.stat[rel] = stat      # touched, not changed
                else:
                    changed.add(rel)
        removed = set(manifest.stat) - set(scan)
        if "vocabulary.yml" in changed | removed:
            self.notice("the vocabulary changed; rebuilding the search index")
            return self._rebuild(scan, progress)
        stories = {rel for rel in changed | removed if rel.startswith("stories/")}
        touched_sources = {rel for rel in changed | removed if rel.startswith("sources/")}
        # Stories quoting a changed source are checked again; so is every story that failed, since
        # what it lacked (a source, a unique id) may be what just changed. Failed stories are few.
        stories |= {rel for rel, (_, ok, snapshot, _) in manifest.stories.items()
                    if rel in scan and (snapshot in touched_sources or not ok)}
        ix = index.open_dir(str(folder))
        before_redact = manifest.redact_names()
        report = self._index_paths(ix, manifest, sorted(stories), scan, progress, rebuild=False)
        for rel in removed:
            manifest.forget(rel)
        if manifest.redact_names() != before_redact:
            # A redaction list changed: every stored text must be redacted anew.
            self.notice("a redaction list changed; rebuilding the search index")
            return self._rebuild(scan, progress)
        manifest.write(folder)
        return report

    def _index_paths(self, ix, manifest: Manifest, paths: list[str], scan: dict, progress: Progress,
                     rebuild: bool) -> IndexReport:
        from .validate import SnapshotCache, check_story, declared_redactions

        vocabulary = self.vocabulary()
        snapshots = SnapshotCache(self.archive)
        report = IndexReport()
        todo = [rel for rel in paths if rel in scan]
        # Progress runs over two passes: checking every story, then adding it to the index.
        steps = 2 * len(todo)
        step = (lambda n, _total: progress(n, steps)) if progress else None
        if len(todo) > PARALLEL_CHECK_FROM and hasattr(os, "fork"):   # the pool's workers are forked
            parsed = _check_in_pool(self.archive, vocabulary, todo, step)
        else:
            parsed = {}
            for n, rel in enumerate(todo, 1):
                parsed[rel] = check_story(self.archive.root / rel, self.archive, vocabulary, snapshots)
                if step:
                    step(n, steps)
        # Duplicate ids, in file order, against the stories already indexed and kept.
        ids = {sid: rel for rel, (sid, ok, _, _) in manifest.stories.items() if ok and rel not in paths and sid}
        for rel in todo:
            story, problems = parsed[rel]
            if story is None:
                continue
            other = ids.setdefault(story.id, rel)
            if other != rel:
                problems = problems + [Problem(rel, story.lines.get("id"), f"duplicate id '{story.id}', also used by "
                                               f"{other}; give each story its own id")]
                parsed[rel] = (None, problems)
        # Redaction is archive-wide: the names of every story, kept or changed.
        for rel, (story, _) in parsed.items():
            manifest.stories[rel] = ((story.id, True, story.source.get("snapshot", ""), tuple(story.redact))
                                     if story else ("", False, "", tuple(declared_redactions(self.archive.root / rel))))
        for rel in paths:
            if rel not in scan:
                manifest.stories.pop(rel, None)
        redact = redactor(manifest.redact_names())
        # Plain (not compound) segment files are memory-mapped when read: a search then reads only
        # the stored fields of the hits it shows, instead of copying a compound file's part.
        if rebuild and len(paths) > 2000:
            writer = ix.writer(procs=2, limitmb=1024, multisegment=True, compound=False)
        else:
            writer = ix.writer(limitmb=512, compound=False)
        try:
            for rel in paths:
                if not rebuild:
                    writer.delete_by_term("path", rel)
                story, problems = parsed.get(rel, (None, []))
                if story is not None:
                    writer.add_document(**story_document(story, rel, redact))
                    report.indexed += 1
                    if step:
                        step(len(todo) + report.indexed, steps)
                elif rel in scan:
                    report.skipped.extend(p for p in problems if p.severity == "error")
                else:
                    report.removed += 1
                if rel in scan:
                    manifest.record(rel, scan[rel], self.archive.root)
            for rel, stat in scan.items():
                if not rel.startswith("stories/") and manifest.stat.get(rel) != stat:
                    manifest.record(rel, stat, self.archive.root)
            writer.commit(optimize=False)
        except BaseException:
            writer.cancel()
            raise
        report.total = sum(1 for _, ok, _, _ in manifest.stories.values() if ok)
        self.facet_cache = write_facet_cache(ix)
        self._write_vocabulary_cache(Path(ix.storage.folder))
        return report

    # -- reading
    def _note_read(self, folder: Path) -> None:
        """Remember which index (folder and write of stat.bin) an answer is read from.

        A probe's verdict covers an answer only if every read came from the one index it
        compared with the archive (``state.Verdict.covers``).
        """
        seen = (folder, stat_signature(folder))
        if self.opened is None and not self._mixed:
            self.opened, self.opened_signature = seen
        elif seen != (self.opened, self.opened_signature):
            self._mixed, self.opened, self.opened_signature = True, None, ()

    def manifest(self) -> Optional[Manifest]:
        """The live index's manifest (as of the last update)."""
        folder = self._current()
        if folder is None:
            return None
        self._note_read(folder)
        return Manifest.read(folder)

    def redact_names(self) -> list[str]:
        """Every name any story of the archive asks to redact."""
        manifest = self.manifest()
        return manifest.redact_names() if manifest else []

    def open(self):
        """(index, searcher) on the live index; a damaged index is rebuilt first, with one line saying so.

        The searcher is opened here, once: opening a reader is most of the cost of opening an index.
        """
        from whoosh import index

        folder = self._current()
        if folder is not None:
            try:
                self._note_read(folder)
                ix = index.open_dir(str(folder))
                return ix, ix.searcher()
            except Exception:  # noqa: BLE001
                self.notice(f"{self.home}: the search index was unreadable; rebuilding it")
        self.fresh(rebuild=True)
        folder = self._current()
        self._note_read(folder)
        ix = index.open_dir(str(folder))
        return ix, ix.searcher()


# ----------------------------------------------------------------------------- queries

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


def check_query(q: str) -> None:
    """Refuse what whoosh would silently guess at: unclosed phrases and ranges, lone operators."""
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
    ix, searcher = index.open()
    qstring = _RANGE.sub(r"\1:[\2 TO \3]", raw)
    if qstring in ("", "*"):
        q = wq.Every()
    else:
        q = _parser(searcher.schema).parse(expand_synonyms(qstring, vocabulary))
        if q is wq.NullQuery:
            raise UsageProblem(f"query {raw!r} has no words to search for", fix="give a word, a phrase or a filter")
    filt = _filters(req)
    with searcher:
        sortedby, reverse = {"score": (None, False), "date": ("year", True), "id": ("id", False)}[req.sort]
        combined = wq.And([q, filt]) if filt is not None else q
        # One pass collects every match (for the total and the facets) and ranks them; only the
        # page shown gets stored fields and snippets.
        results = searcher.search(combined, limit=None, sortedby=sortedby, reverse=reverse, terms=False)
        docs = results.docs()
        total = len(docs)
        start = (req.page - 1) * req.limit if req.limit else 0
        page_hits = results[start:start + req.limit] if req.limit else list(results)
        schema = searcher.schema   # not ix.schema: that property re-reads the index's TOC each time
        hits = [_hit(h, q, schema, req.snippets) for h in page_hits]
        facets = _facets(ix, searcher, docs, index.facet_cache) if req.facets else {}
        suggestion = _suggest(searcher, schema, raw) if total < 3 and raw not in ("", "*") else None
        limit = req.limit
    return SearchResult(raw, total, hits, facets, suggestion, req.page, limit)


def gated_profiles(index: Index, levels: set[str], include_synthetic: bool) -> list[dict]:
    """The stored metadata of every approved account at the given sensitivity levels, from the index."""
    from whoosh import query as wq

    ix, searcher = index.open()
    terms = [wq.Term("status", "approved"), wq.Or([wq.Term("sensitivity", lv) for lv in sorted(levels)])]
    if not include_synthetic:
        terms.append(wq.Term("synthetic", "false"))
    with searcher:
        return [dict(searcher.stored_fields(n)["meta"]) for n in sorted(searcher.docs_for_query(wq.And(terms)))]


PROFILE_FIELDS = ("themes", "group", "language", "year", "status", "sensitivity", "origin", "synthetic", "quotes")


def story_profiles(index: Index) -> tuple[list[dict], int]:
    """(one dict per indexed story from its packed facet value, number of story files left out)."""
    ix, searcher = index.open()
    with searcher:
        table, _ = _facet_table(ix, searcher, index.facet_cache)
        live = sorted(searcher.reader().all_doc_ids())
    out = []
    for n in live:
        value = table[n].decode("utf-8").split("\t") if table[n] else []
        if len(value) != len(PROFILE_FIELDS):
            continue
        p = dict(zip(PROFILE_FIELDS, value))
        p["themes"] = [t for t in p["themes"].split("|") if t]
        p["synthetic"] = p["synthetic"] == "1"
        p["quotes"] = int(p["quotes"])
        out.append(p)
    manifest = index.manifest()
    bad = sum(1 for _, ok, _, _ in manifest.stories.values() if not ok) if manifest else 0
    return out, bad


def _hit(hit, q, schema, snippets: bool) -> dict:
    meta = dict(hit["meta"])
    meta["score"] = round(float(hit.score), 4) if hit.score is not None else None
    if snippets:
        meta["snippet"] = _snippet(hit, q, schema, meta["language"])
    return meta


def _snippet(hit, q, schema, language: str) -> str:
    from whoosh import highlight

    content = hit["content"]
    fieldname = LANG_FIELDS.get(language, OTHER_FIELD)
    terms = {text for name, text in q.iter_all_terms() if name == fieldname} if q is not None else set()
    if terms:
        analyzer = schema[fieldname].analyzer
        frag = highlight.ContextFragmenter(maxchars=240, surround=60)
        hl = highlight.highlight(content, terms, analyzer, frag, _marks(), top=1)
        if hl:
            return _one_line(hl)
    first = _one_line(content)
    return first[:200] + ("..." if len(first) > 200 else "")


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


def _suggest(searcher, schema, raw: str) -> Optional[str]:
    """Did you mean: each plain word of the query that no text field holds, replaced by its nearest word.

    Corrections are made on the index's own (stemmed) terms, then shown as a word a reader knows:
    the first place the corrected term occurs in a matching account's text.
    """
    reader = searcher.reader()
    changed = False
    out = []
    for tok in _TOKEN.findall(raw):
        word = tok.lower()
        if tok in ("AND", "OR", "NOT") or ":" in tok or tok.startswith('"') or not re.fullmatch(r"\w+", tok):
            out.append(tok)
            continue
        analysed = {name: [t.text for t in schema[name].analyzer(word)] for name in TEXT_FIELDS}
        if any(reader.doc_frequency(name, t) for name, terms in analysed.items() for t in terms):
            out.append(tok)
            continue
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
