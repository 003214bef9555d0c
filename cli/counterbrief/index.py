"""The search index's life: where it is, when it is stale, building and updating it, opening it.

The index lives in ``ARCHIVE/.counterbrief/`` (or the user's cache for a read-only bundled
archive). ``current`` names the live index folder; each index folder holds the whoosh files,
``stat.bin`` (the size and mtime of every file it was built from), ``manifest.bin`` (their
hashes and what each story contributed), ``facets-SEGMENT.bin`` (facet values, a file per
segment) and ``tally.bin`` (what stats counts). Every command first compares the archive with ``stat.bin`` and indexes only what changed, under a file
lock; a full rebuild is made in a new folder and switched in by replacing ``current``
atomically, so readers never see a half-built index and a killed build leaves the old one.
"""
from __future__ import annotations

import marshal
import os
import shutil
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from . import load
from .errors import CounterbriefError, IndexUnreadable, Problem, disk_full as _disk_full
from .facets import write_facet_cache
from .model import HIDDEN_STATUSES, Archive, Theme
from .state import (SCHEMA_VERSION, current_folder, index_home, read_stat, read_stat_signed, stat_signature,
                    stat_folders, why_unusable, write_stat)
from .redact import (ArchiveRedaction, Redactor, index_key, key_check, protected_names,
                     redact_story, stored_redaction)

Progress = Optional[Callable[[int, int, str], None]]   # (done, total, phase: checking, indexing, saving, saved)
Notice = Optional[Callable[[str], None]]           # one line for the user (stderr)
ID_HOLDS_NAME = ("the id or the snapshot's file name holds a name listed under redact, and they are shown and kept "
                 "everywhere; rename them (counterbrief add proposes a neutral id)")


def _file_stat(path: Path) -> Optional[tuple]:
    try:
        st = path.stat()
        return (st.st_size, st.st_mtime_ns)
    except OSError:
        return None


def _hash(path: Path, root: Optional[Path] = None) -> bytes:
    # Streamed, and never past the snapshot limit: a 4 GB file no story uses costs one stat.
    return load.hash_file(path, load.MAX_SNAPSHOT_BYTES, root)


def _alive(pid: int) -> bool:
    if os.name != "posix":   # no harmless probe of a process there: keep its folder
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _watched(snapshot: str) -> bool:
    """Is this snapshot path one the freshness scan lists (a file directly in sources/)?"""
    name = snapshot[len("sources/"):] if snapshot.startswith("sources/") else ""
    return bool(name) and "/" not in name and name not in (".", "..")


def _snapshot_of(path: Path, root: Path) -> str:
    """The snapshot path a failed story names, if it can be read that far ("" otherwise)."""
    try:
        source = load.parse_story_file(path, "", root).data.get("source")
    except CounterbriefError:
        return ""
    snapshot = source.get("snapshot") if isinstance(source, dict) else None
    return snapshot if isinstance(snapshot, str) else ""


WRITER_LIMIT_MB = 256   # per writer process; see _index_paths
SMALL_UPDATE = 50       # stories: the watcher pools an update this small in memory (_index_paths)
HIDDEN = "hidden"       # a worker's answer for a good story that no output may show
_POOL_STATE: dict = {}


def _pool_init(archive: Archive, vocabulary, key: bytes, entries) -> None:
    from .validate import SnapshotCache

    _POOL_STATE.update(archive=archive, vocabulary=vocabulary, snapshots=SnapshotCache(archive), key=key,
                       redact=Redactor.from_hashes(key, entries))


def _names_entries(path: Path, story) -> tuple[Optional[tuple], str]:
    """(the story's protected names as keyed hashes, "") or (None, why its list cannot be read)."""
    names, why = (story.redact, "") if story is not None else protected_names(path)
    if names is None:
        return None, why
    return tuple(sorted(Redactor.from_names(names, _POOL_STATE["key"]).entries)), ""


def _pool_redactions(rel: str) -> tuple:
    """(entries or None, why unreadable) of one story file."""
    return _names_entries(_POOL_STATE["archive"].root / rel, None)


def _pool_hash(rel: str) -> bytes:
    root = _POOL_STATE["archive"].root
    return _hash(root / rel, root)


def _pool_document(rel: str) -> tuple:
    """Parse, validate and make the index document of one story, in a worker. Returns
    (rel, document or None, problems, (id, snapshot), (entries or None, why unreadable), digest, id line);
    only this goes back to the parent, which adds the document to the writer and forgets it."""
    from .schema import story_document
    from .validate import check_story

    st = _POOL_STATE
    root = st["archive"].root
    path = root / rel
    # Hashed before it is read: if the file changes in between, the recorded hash is of the older
    # text, so the next command sees the change and indexes the file again.
    digest = _hash(path, root)
    story, problems = check_story(path, st["archive"], st["vocabulary"], st["snapshots"])
    names = _names_entries(path, story)
    if story is None:   # the snapshot it names, if it can be read that far: it is checked again when that changes
        return rel, None, problems, ("", _snapshot_of(path, root)), names, digest, None
    line = story.lines.get("id")
    if st["redact"].finds(story.id) or st["redact"].finds(story.source.get("snapshot", "")):
        return rel, None, problems + [Problem(rel, line, ID_HOLDS_NAME)], ("", ""), names, digest, line
    if story.status in HIDDEN_STATUSES:   # rejected or withdrawn: kept on disk, out of every output
        return rel, HIDDEN, problems, (story.id, story.source.get("snapshot", "")), names, digest, line
    doc = story_document(redact_story(story, st["redact"]), rel)
    return rel, doc, problems, (story.id, story.source.get("snapshot", "")), names, digest, line


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


class StoryTable(dict):
    """``Manifest.stories`` (rel -> (id or clash, ok, snapshot, names)), with what an update asks of
    all of it kept up to date as entries change: the files that failed, the files by snapshot, the
    files that passed by id, and how many stories name each protected name. At 100,000 stories each
    of those questions was a loop over all of them on every edit the watcher took in. Made on first
    use (a process that updates once pays one pass); only ``[rel] = entry`` and ``pop`` change it.
    """

    def __init__(self, items=()):
        super().__init__(items)
        self._made = False

    def _make(self) -> None:
        if not self._made:
            from collections import Counter

            self.failed, self.by_snapshot, self.passed_ids, self.names = set(), {}, {}, Counter()
            self._made = True
            for rel, entry in dict.items(self):
                self._note(rel, entry, 1)

    def _note(self, rel: str, entry: tuple, sign: int) -> None:
        if not self._made:
            return
        sid, ok, snapshot, names = entry
        if ok:
            _bump(self.passed_ids, sid, rel, sign)
        elif sign > 0:
            self.failed.add(rel)
        else:
            self.failed.discard(rel)
        _bump(self.by_snapshot, snapshot, rel, sign)
        for name in set(names):
            self.names[name] += sign
            if self.names[name] <= 0:
                del self.names[name]

    def __setitem__(self, rel: str, entry: tuple) -> None:
        old = dict.get(self, rel)
        if old is not None:
            self._note(rel, old, -1)
        dict.__setitem__(self, rel, entry)
        self._note(rel, entry, 1)

    def pop(self, rel: str, *default):
        if rel in self:
            old = dict.pop(self, rel)
            self._note(rel, old, -1)
            return old
        if default:
            return default[0]
        raise KeyError(rel)

    def _refuse(self, *args, **kwargs):
        raise TypeError("StoryTable changes only through [rel] = entry and pop")

    __delitem__ = update = setdefault = popitem = clear = _refuse

    # -- the questions
    def failed_files(self) -> set:
        self._make()
        return self.failed

    def passing(self) -> int:
        return len(self) - len(self.failed_files())

    def naming_snapshot(self, snapshot) -> set:
        self._make()
        return self.by_snapshot.get(snapshot, set())

    def passed_with_id(self, sid: str) -> set:
        self._make()
        return self.passed_ids.get(sid, set())

    def name_entries(self) -> set:
        self._make()
        return set(self.names)


def _bump(table: dict, key, rel: str, sign: int) -> None:
    if sign > 0:
        table.setdefault(key, set()).add(rel)
    else:
        held = table.get(key)
        if held is not None:
            held.discard(rel)
            if not held:
                del table[key]


@dataclass
class Manifest:
    """What one index folder was built from, read by updates (a search reads only stat.bin). Stored with marshal."""

    stat: dict[str, tuple] = field(default_factory=dict)     # rel -> (size, mtime_ns), compared as a whole
    hashes: dict[str, bytes] = field(default_factory=dict)   # rel -> sha1 digest, to tell a touch from an edit
    stories: dict[str, tuple] = field(default_factory=dict)  # rel -> (id, ok, snapshot, names as keyed hashes)
    # (a failed story has, instead of its id, the file of the story whose id it repeated, or "")
    unreadable_lists: dict[str, str] = field(default_factory=dict)   # rel -> why its redact list cannot be read

    def __post_init__(self) -> None:
        if type(self.stories) is not StoryTable:
            self.stories = StoryTable(self.stories)
        self.synced: Optional[object] = None   # the token of the scan ``stat`` equals (state.Scan), if known

    @classmethod
    def read(cls, folder: Path, stat: Optional[dict] = None) -> Optional["Manifest"]:
        stat = stat if stat is not None else read_stat(folder)
        try:
            data = marshal.loads((folder / "manifest.bin").read_bytes())
            if stat is None or data.get("version") != SCHEMA_VERSION:
                return None
            return cls(stat, data["hashes"], data["stories"], data["unreadable"])
        except (OSError, ValueError, EOFError, TypeError, KeyError, AttributeError):
            return None

    def write(self, folder: Path, scan: Optional[dict] = None) -> None:
        # manifest.bin first, stat.bin last: stat.bin is what says "this index is fresh".
        self.write_tables(folder)
        self.write_small(folder)
        write_stat(folder, self.stat, scan)

    def write_tables(self, folder: Path) -> None:
        """manifest.bin: the archive's hashes and what each story contributed (large: read by updates only)."""
        from .write import write_atomic

        write_atomic(folder / "manifest.bin", marshal.dumps(
            {"version": SCHEMA_VERSION, "hashes": self.hashes, "stories": dict(self.stories),
             "unreadable": self.unreadable_lists}))

    def write_small(self, folder: Path, entries: Optional[set] = None, write=None) -> None:
        """The small files every answer reads: redact.bin and counts.bin (``write``: how to write a
        file, by default ``write.write_atomic``)."""
        from .write import write_atomic

        put = write or write_atomic
        # The archive's protected names (hashed) and the stories whose list cannot be read, apart:
        # every command reads this small file, never the whole manifest, to redact its output.
        entries = self.redact_entries() if entries is None else entries
        put(folder / "redact.bin", marshal.dumps(
            (SCHEMA_VERSION, sorted(entries), sorted(self.unreadable().items()),
             key_check(index_key(folder.parent)))))
        # What stats needs of the manifest, small enough to read on every stats, and the files it
        # left out for their errors (show trusts the others' check while the index is fresh).
        failed = sorted(self.stories.failed_files())
        put(folder / "counts.bin", marshal.dumps((SCHEMA_VERSION, len(failed), failed)))

    def record(self, rel: str, stat: tuple, root: Path) -> None:
        self.stat[rel] = stat
        self.hashes[rel] = _hash(root / rel, root)

    def forget(self, rel: str) -> None:
        self.stat.pop(rel, None)
        self.hashes.pop(rel, None)

    def redact_entries(self) -> set:
        """Every protected name of the archive, as the keyed hashes of its words."""
        return self.stories.name_entries()

    def unreadable(self) -> dict[str, str]:
        """Story files whose redact list cannot be read, and why."""
        return dict(self.unreadable_lists)


@contextmanager
def _in_memory(storage):
    """While the watcher writes a small update (SMALL_UPDATE): whoosh's pool of postings in memory
    rather than in a folder made and removed inside the watched tree for each commit (its events, a
    watch added and torn down), and each file of the new segment (and the table of contents) made in
    memory and written with one call when whoosh closes it. whoosh writes a one-story segment as
    ~15 files in ~1,200 small writes, each with a ``tell`` that is a system call on a real file
    (~4 ms of a ~30 ms update while the next command waits). The storage is the watcher's kept
    index's (_open_dir): put back as it was afterwards."""
    import io

    from whoosh.filedb.filestore import RamStorage
    from whoosh.filedb.structfile import StructFile

    create = storage.create_file

    def create_file(name, excl=False, mode="wb", **kwargs):
        if excl or mode != "wb" or kwargs:
            return create(name, excl=excl, mode=mode, **kwargs)
        path, buffer = storage._fpath(name), io.BytesIO()

        def write(_):
            with open(path, "wb") as f:
                f.write(buffer.getbuffer())
        return StructFile(buffer, name=name, onclose=write)

    storage.temp_storage = lambda name=None: RamStorage()
    storage.create_file = create_file
    try:
        yield storage
    finally:
        storage.__dict__.pop("temp_storage", None)
        storage.__dict__.pop("create_file", None)


def _drop_dead(writer, segments: list) -> list:
    """A whoosh merge policy: no merging, and the segments whose every document is now deleted
    are left out of the index (an edit of a story edited before empties the last edit's segment)."""
    return [segment for segment in segments if segment.doc_count() > 0]


def _merge_small_live(writer, segments: list) -> list:
    """whoosh's MERGE_SMALL over the segments that still hold a live document (merging an empty
    one would write a segment of none)."""
    from whoosh.writing import MERGE_SMALL

    return MERGE_SMALL(writer, _drop_dead(writer, segments))


def _renew(reader, segment) -> bool:
    """Give a kept segment reader its segment's new record: True when it could. Only the deleted
    documents change in a segment once written; whoosh3 3.54 (pinned) reads them from the record
    held by the reader and by its per-document reader, and caches their set on the reader."""
    perdoc = getattr(reader, "_perdoc", None)
    if perdoc is None or getattr(perdoc, "_segment", None) is not reader.segment() or \
            reader.segment().doc_count_all() != segment.doc_count_all():
        return False
    reader._segment = perdoc._segment = segment
    reader.__dict__.pop("deleted_docs_set", None)
    return True


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
        self.facet_cache: Optional[dict] = None   # segment id -> facet values, as last read or written
        self.postings = None   # flat.Postings: the postings this process read, by segment (kept by the watcher)
        self.keep_warm = False   # a process that stays (the watcher): keep per-segment tables made from reads
        self.facet_heads: Optional[tuple] = None  # facets part of each value, by segment (keep_warm; facets.py)
        self._facets_due = None    # the watcher: an index whose facet files and tally are still to write
        self._written: dict = {}   # path -> ((inode, size, mtime), bytes) of the small files this object wrote
        self._readers: dict = {}   # segment id -> whoosh SegmentReader kept between commands (keep_warm)
        self._readers_of: Optional[str] = None   # the index folder they read
        self._ix: Optional[tuple] = None   # the watcher: (folder, whoosh FileIndex) kept (_open_dir)
        self._table: Optional[_StatTable] = None  # the last stat.bin read, kept to read it only once
        self._vocabulary: Optional[dict] = None
        self._vocabulary_stat: Optional[tuple] = None   # (size, mtime) of the vocabulary.yml read
        self.opened: Optional[Path] = None               # the index folder this object has read from,
        self.opened_signature: tuple = ()                # and its stat.bin's signature just before
        self._mixed = False                              # it read from two different writes of the index
        self._manifest: Optional[tuple] = None           # (folder, stat.bin signature, Manifest) this object wrote
        # The watcher: after an update, manifest.bin and stat.bin are written once the answer is sent
        # (``finish``), under the lock still held; the small files every answer reads are written first.
        self.defer_tables = False
        self._finish: Optional[Callable[[], None]] = None
        self._pending: Optional[tuple] = None   # (lock, folder, manifest, write) of a deferred write (_carry)

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

    def _write_vocabulary_cache(self, folder: Path, redact: Redactor) -> None:
        if self._vocabulary_stat is not None:   # the size and time of the vocabulary.yml that was read
            # Derived files hold no protected name: labels, definitions and synonyms are redacted.
            rows = [(t.id, redact.text(t.label), redact.text(t.definition), redact(list(t.synonyms)))
                    for t in self._vocabulary.values() if not redact.finds(t.id)]
            self._write_changed(folder / "vocabulary.bin",
                                marshal.dumps((SCHEMA_VERSION, self._vocabulary_stat, rows)))

    def _write_changed(self, path: Path, data: bytes) -> None:
        """write_atomic, unless the file holds these bytes already because this process wrote them
        (its size, time and inode as they were then): a process that updates the index again and
        again (the watcher) writes the same small files after every edit, and most edits change none."""
        from .write import write_atomic

        try:
            st = os.stat(path)
            now = (st.st_ino, st.st_size, st.st_mtime_ns)
        except OSError:
            now = None
        if now is not None and self._written.get(path) == (now, data):
            return
        write_atomic(path, data)
        st = os.stat(path)
        self._written[path] = ((st.st_ino, st.st_size, st.st_mtime_ns), data)

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
        kept, since = self._manifest, getattr(scan, "since", None)
        if since and kept and kept[0] == folder and kept[2].synced is not None and kept[2].synced is since[0] \
                and kept[1] and kept[1] == stat_signature(folder):
            # stat.bin is still the one this object wrote from the manifest, which matches the scan
            # ``since`` names: only the paths changed since can differ.
            stat = kept[2].stat
            return any(scan.get(rel) != stat.get(rel) for rel in since[1])
        self._table = _StatTable.read(folder, self._table)
        return self._table.stat != scan

    def fresh(self, progress: Progress = None, rebuild: bool = False, scan: Optional[dict] = None) -> IndexReport:
        """Bring the index up to date (or rebuild it) and return what was done.

        ``scan`` is the archive's (size, mtime) table when a probe has just taken it.
        """
        scan = scan if scan is not None else load.scan_archive(self.archive)
        carried = self._carry()
        if carried is None:
            self.finish()
        if not rebuild and not self._stale(self._current(), scan):
            if carried is not None:
                self._pending, self._finish = carried, carried[3]   # still to be written, as before
            kept, since = self._manifest, getattr(scan, "since", None)
            if kept and since and kept[2].synced is not None and kept[2].synced is since[0]:
                kept[2].synced = scan.token   # the table it was written from is this scan
            return IndexReport(total=-1)   # unchanged; not counted, to keep searches quick
        self._held = carried[0] if carried is not None else self._lock()
        with self._held:
            if carried is not None:
                carried[0].release()   # the hold the dropped write kept; this ``with`` holds the lock now
            # Another process may have done the work while we waited for the lock. The scan taken
            # before the lock is kept: a file changed since then differs from the recorded table
            # and is picked up by the next command.
            folder = self._current()
            if not rebuild and carried is None and not self._stale(folder, scan):
                return IndexReport(total=-1)
            self._sweep_dead(keep=folder)
            try:
                self.vocabulary()   # an unusable vocabulary stops here, before anything is written
                if rebuild or folder is None:
                    return self._rebuild(scan, progress)
                manifest, self._manifest = self._kept_manifest(folder), None
                manifest = manifest or Manifest.read(folder, self._table.stat if self._table else None)
                if manifest is None:
                    self.notice(f"{self.home}: {why_unusable(folder)}; rebuilding it")
                    return self._rebuild(scan, progress)
                try:
                    return self._update(folder, manifest, scan, progress)
                except Exception as e:  # noqa: BLE001 - a damaged index is rebuilt, never a dead end
                    if _disk_full(e):
                        raise
                    self.notice(f"{self.home}: the search index was unreadable; rebuilding it")
                    return self._rebuild(scan, progress)
            except OSError as e:
                if _disk_full(e):
                    raise CounterbriefError(f"disk full: the search index cannot be written in {self.home}",
                                            fix="free some space on that disk and run the command again; "
                                                "the index as it was is kept") from None
                raise

    def _kept_manifest(self, folder: Path) -> Optional[Manifest]:
        """The manifest this object last wrote, while no other process has written the index since
        (a long-lived process, the watcher, then never reads the whole manifest back)."""
        kept = self._manifest
        if kept and kept[0] == folder and kept[1] and kept[1] == stat_signature(folder):
            return kept[2]
        return None

    def _rebuild(self, scan: dict, progress: Progress, tries: int = 0) -> IndexReport:
        from whoosh import index

        from .schema import _schema

        paths = sorted(rel for rel in scan if rel.startswith("stories/"))
        # The names the old index knew: a story whose redact list has become unreadable keeps them.
        old = self._current()
        old_manifest = Manifest.read(old) if old is not None else None
        previous = old_manifest.stories if old_manifest else {}
        del old_manifest
        # Every stored text is redacted with the names of the whole archive, so they are read first
        # (only files that mention 'redact' are parsed). If the full parse finds other names (a key
        # YAML spells another way), the build starts over with those: never with fewer.
        key = index_key(self.home)
        entries = set()
        for n, (rel, (found, _)) in enumerate(zip(paths, self._map(_pool_redactions, paths, key, ())), 1):
            entries.update(found if found is not None else (previous.get(rel) or ("", False, "", ()))[3])
            if progress and (n % 200 == 0 or n == len(paths)):   # progress: checking, indexing, saving
                progress(n, 3 * len(paths), "checking")
        for _ in range(3):
            # Named after the building process: a killed build's folder is swept by the next writer.
            name = f"index-{os.getpid()}-{os.urandom(4).hex()}"
            folder = self.home / name
            folder.mkdir(parents=True)
            try:
                ix = index.create_in(str(folder), _schema())
                manifest = Manifest()
                report = self._index_paths(ix, manifest, paths, scan, progress, rebuild=True, previous=previous,
                                           entries=entries)
                if manifest.redact_entries() == entries:
                    manifest.write(folder, scan)
                    self._switch(name)
                    break
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)   # a failed build leaves nothing behind (a full disk)
                raise
            entries = manifest.redact_entries()
            shutil.rmtree(folder, ignore_errors=True)
        else:
            raise RuntimeError("the archive's redaction lists kept changing while the index was built")
        self._sweep(keep=folder)
        # counterbrief.yml or vocabulary.yml says otherwise now than when it was read for this build:
        # an editor that writes a file in two steps (emptied, then written) can be read in between.
        # An index built with the empty marker's default would pass accounts it must not, one built
        # with half a vocabulary would leave accounts out, and either would record the file as it is
        # now: fresh, for every later command. Built again with what they say.
        settings = load.settings_now(self.archive)
        moved = self._vocabulary_stat is not None and _file_stat(self.archive.vocabulary_path) != self._vocabulary_stat
        if tries < 3 and (moved or settings is not self.archive):
            self.archive = settings
            if moved:
                self._vocabulary = self._vocabulary_stat = None
            return self._rebuild(scan, progress, tries + 1)
        report.rebuilt = True
        return report

    def _switch(self, name: str) -> None:
        """Make the index folder ``name`` the live one: one atomic rename; until then readers use the old index."""
        tmp = self.home / f".current.{os.getpid()}"
        tmp.write_text(name, encoding="utf-8")
        if (self.home / "current").is_dir() and not (self.home / "current").is_symlink():
            shutil.rmtree(self.home / "current")   # a damaged home: `current` must be the file that names the index
        os.replace(tmp, self.home / "current")

    def _map(self, func, items: list, key: bytes, entries, parallel=None):
        from . import parallel as par

        return par.ordered_map(func, items, _pool_init, (self.archive, self.vocabulary(), key, tuple(entries)),
                               parallel=parallel)

    def _sweep(self, keep: Path) -> None:
        """Remove index folders other than the live one (old ones, and those of killed builds)."""
        for folder in self.home.glob("index-*"):
            if folder != keep:
                shutil.rmtree(folder, ignore_errors=True)

    def _sweep_dead(self, keep: Optional[Path]) -> None:
        """Under the lock, before any write: remove what killed builds left (their folders and the
        half-made name of ``current``). A folder is named after the process that builds it, and
        only one whose process is gone is removed, so a build in progress is never touched."""
        for path in [*self.home.glob("index-*"), *self.home.glob(".current.*")]:
            if path == keep:
                continue
            pid = path.name.split("-")[1] if path.name.startswith("index-") else path.name.rsplit(".", 1)[-1]
            if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)

    def _update(self, folder: Path, manifest: Manifest, scan: dict, progress: Progress) -> IndexReport:
        changed = set()
        since = getattr(scan, "since", None)
        if since is not None and manifest.synced is not None and since[0] is manifest.synced:
            maybe = since[1]   # the only paths that can differ from the scan the manifest matches
            moved = [(rel, scan[rel]) for rel in maybe if rel in scan and manifest.stat.get(rel) != scan[rel]]
            removed = {rel for rel in maybe if rel not in scan and rel in manifest.stat}
        else:
            maybe = None
            moved = scan.items() - manifest.stat.items()   # compared in C: 100,000 files each time
            removed = manifest.stat.keys() - scan.keys()
        manifest.synced = None   # until this update is done
        for rel, stat in moved:
            digest = _hash(self.archive.root / rel, self.archive.root)
            if manifest.hashes.get(rel) == digest:
                manifest.stat[rel] = stat      # touched, not changed
            else:
                changed.add(rel)
        if "vocabulary.yml" in changed | removed:
            self.notice("the vocabulary changed; rebuilding the search index")
            return self._rebuild(scan, progress)
        if load.MARKER in changed | removed:
            self.notice(f"the archive's settings ({load.MARKER}) changed; rebuilding the search index")
            return self._rebuild(scan, progress)
        stories = {rel for rel in changed | removed if rel.startswith("stories/")}
        touched_sources = {rel for rel in changed | removed if rel.startswith("sources/")}
        # Stories quoting a changed source are checked again. A story that failed is checked again
        # only when what it failed on may have changed: its file, its snapshot (appeared, changed,
        # gone), or the story whose id it repeated. One whose snapshot is not a file the scan
        # watches, or which could not be read far enough to say, is checked every time.
        edited = set(stories)
        table = manifest.stories
        again = {rel for source in touched_sources for rel in table.naming_snapshot(source)}
        again |= {rel for rel in table.failed_files() if table[rel][0] in edited or not _watched(table[rel][2])}
        stories |= {rel for rel in again if rel in scan}
        ix = self._open_dir(folder)
        before_redact = manifest.redact_entries()
        report = self._index_paths(ix, manifest, sorted(stories), scan, progress, rebuild=False,
                                   entries=before_redact, maybe=maybe)
        for rel in removed:
            manifest.forget(rel)
        if self._names_changed and manifest.redact_entries() != before_redact:
            # A redaction list changed: every stored text must be redacted anew.
            self.notice("a redaction list changed; rebuilding the search index")
            return self._rebuild(scan, progress)
        manifest.synced = getattr(scan, "token", None)   # its table is now this scan's

        # The tables, as steps: the watcher writes them one at a time between commands (finish(step=True)):
        # (its facet files and tally, and) manifest.bin, the listing that stat.bin records folder times
        # for, stat.bin, (and for the watcher) the merge of small segments.
        listed: list = []
        steps = [lambda: (self.settle_facets(), manifest.write_tables(folder)),
                 lambda: listed.append(stat_folders(manifest.stat, scan)),
                 lambda: write_stat(folder, manifest.stat, scan, *listed)]
        if self.defer_tables:
            steps.append(lambda: self._merge_small(folder))

        def finish() -> None:
            while steps:
                steps.pop(0)()
            signature = stat_signature(folder)
            self._manifest = (folder, signature, manifest)
            self._table = _StatTable(folder, signature, dict(manifest.stat))   # what was just written

        if self.defer_tables:
            manifest.write_small(folder, before_redact, self._write_changed)
            lock = self._held
            lock.acquire()   # held past the update, until finish() has written the tables

            def finish_and_release() -> None:
                self._pending = None
                try:
                    finish()
                finally:
                    lock.release()

            finish_and_release.steps = steps   # type: ignore[attr-defined]
            self._finish = finish_and_release
            self._pending = (lock, folder, manifest, finish_and_release)
        else:
            manifest.write_small(folder, before_redact, self._write_changed)
            finish()
        return report

    def settle_facets(self) -> None:
        """Write the facet files and the tally that an update of the watcher left for later."""
        ix, self._facets_due = self._facets_due, None
        # (an update that went on to rebuild, when a redaction list changed, wrote a new folder)
        if ix is not None and Path(ix.storage.folder) == self._current():
            self._write_facets(ix, self.facet_cache)

    def _write_facets(self, ix, cache: Optional[dict]) -> None:
        """write_facet_cache after a commit, through the watcher's kept readers when it keeps them."""
        self.facet_cache = write_facet_cache(ix, cache, self._warm_searcher(ix))

    def _warm_searcher(self, ix):
        """The watcher's searcher on its kept readers (``_searcher``); None in a process that keeps none."""
        return self._searcher(ix, Path(ix.storage.folder)) if self.keep_warm else None

    def _merge_small(self, folder: Path) -> None:
        """Merge the small segments the watcher's updates left, as whoosh's commit would have
        (its MERGE_SMALL policy: only when enough of them have gathered), and cache the facet
        values of the merged segment. The index's content is unchanged: nothing else is written."""
        ix = self._open_dir(folder)
        segments = ix._segments()
        if len(segments) < 5 and all(segment.doc_count() > 0 for segment in segments):
            return   # nothing to drop, and MERGE_SMALL merges nothing with fewer than five
        writer = ix.writer(limitmb=256, compound=False)
        try:
            writer.commit(mergetype=_merge_small_live)
        except BaseException:
            writer.cancel()
            raise
        self._write_facets(ix, self.facet_cache)   # a new table of contents: the tally is kept by generation

    def finish(self, step: bool = False) -> bool:
        """Write what an update deferred (``defer_tables``) and let other writers in.

        With ``step``, write only its next table while more than one is left, and return True: the
        watcher answers a command that comes in between, and an update it makes takes over from
        what is left (``_carry``: nobody else writes while the lock is held, and tables written
        early are written again after it). False once all is written and the lock released."""
        pending = self._finish
        if pending is None:
            return False
        steps = getattr(pending, "steps", ())
        if step and len(steps) > 1:
            try:
                steps.pop(0)()
            except BaseException:
                steps.clear()   # nothing more written: the lock released, as a failed finish() does
                lock = self._pending[0]
                self._finish = self._pending = None
                lock.release()
                raise
            return True
        self._finish = None
        pending()
        return False

    def _carry(self) -> Optional[tuple]:
        """An update that comes while the tables of the last one are still to be written (the
        watcher, edits in quick succession) takes over from it instead of writing them first:
        the lock stays held, the manifest in memory goes on, and the tables are written once, after
        the new update, for both. (stat.bin on disk is still the one before: nobody else writes
        while the lock is held.) The pending (lock, folder, manifest, write), or None."""
        pending = self._pending
        if pending is None or self._finish is not pending[3]:
            return None
        lock, folder, manifest, _ = pending
        self._pending = self._finish = None
        self._manifest = (folder, stat_signature(folder), manifest)
        return pending

    def _index_paths(self, ix, manifest: Manifest, paths: list[str], scan: dict, progress: Progress,
                     rebuild: bool, previous: Optional[dict] = None, entries=(),
                     maybe: Optional[set] = None) -> IndexReport:
        """Parse, validate and index ``paths`` as a stream: workers make the documents a window at a
        time, redacted with ``entries`` (the archive's names as keyed hashes); this process adds each
        to the writer and keeps only the manifest's small record. The caller compares ``entries``
        with the manifest's afterwards and builds again if a list changed."""
        from . import parallel as par

        report = IndexReport()
        todo = [rel for rel in paths if rel in scan]
        key = index_key(self.home)
        # Whether any story's protected names may have changed (then the archive's set is compared).
        self._names_changed = rebuild
        for rel in paths:
            if rel not in scan:
                gone = manifest.stories.pop(rel, None)
                manifest.unreadable_lists.pop(rel, None)
                self._names_changed |= bool(gone and gone[3])
        # Duplicate ids, in file order, against the stories already indexed and kept.
        ids: dict = {}   # id -> the file that holds it: a kept story (not among paths), else the first here
        among = set(paths)

        def holder(sid: str, rel: str) -> str:
            if sid not in ids:
                kept = [r for r in manifest.stories.passed_with_id(sid) if r not in among] if sid else []
                ids[sid] = min(kept) if kept else rel
            return ids[sid]
        # Plain (not compound) segment files are memory-mapped when read: a search then reads only
        # the stored fields of the hits it shows, instead of copying a compound file's part. Each
        # of the two writer processes sorts postings in memory up to ``limitmb``, then in runs on disk.
        parallel = rebuild and len(todo) >= par.PARALLEL_FROM and par.can_fork()
        small = self.keep_warm and not parallel and len(todo) <= SMALL_UPDATE   # the watcher's edit
        with _in_memory(ix.storage) if small else nullcontext():
            if parallel:
                writer = ix.writer(procs=2, limitmb=WRITER_LIMIT_MB, multisegment=True, compound=False)
            else:
                writer = ix.writer(limitmb=256, compound=False)
            try:
                if not rebuild:
                    # the watcher's kept readers, on the table of contents the writer has just read (the lock
                    # is held): opening every segment again costs more than the update's own document
                    warm = self._warm_searcher(ix)
                    for rel in paths:
                        writer.delete_by_term("path", rel, searcher=warm)
                if progress and not rebuild:
                    progress(0, 3 * len(todo), "checking")
                results = self._map(_pool_document, todo, key, entries, parallel=len(todo) >= par.PARALLEL_FROM)
                for n, (rel, doc, problems, (sid, snapshot), (names, unreadable), digest, line) in enumerate(results, 1):
                    # Redaction is archive-wide: the names of every story, kept or changed, as keyed hashes. A
                    # story whose list cannot be read keeps the names it had and is marked: outputs are refused.
                    before = manifest.stories.get(rel) or (previous or {}).get(rel)
                    manifest.unreadable_lists.pop(rel, None)
                    if names is None:
                        manifest.unreadable_lists[rel] = unreadable
                        names = before[3] if before else ()
                    # A failed story keeps, instead of its id, the file of the story whose id it repeated
                    # (or ""), and the snapshot it names: it is checked again only when one of them changes.
                    clash = ""
                    if doc is not None:
                        other = holder(sid, rel)
                        if other != rel:
                            problems = problems + [Problem(rel, line, f"duplicate id '{sid}', also used by "
                                                           f"{other}; give each story its own id")]
                            doc, clash = None, other
                    self._names_changed |= set(names) != set(before[3] if before else ())
                    manifest.stories[rel] = (sid, True, snapshot, names) if doc is not None else (clash, False, snapshot, names)
                    if isinstance(doc, str):   # HIDDEN
                        pass
                    elif doc is not None:
                        writer.add_document(**doc)
                        report.indexed += 1
                    else:
                        report.skipped.extend(p for p in problems if p.severity == "error")
                    manifest.stat[rel] = scan[rel]
                    manifest.hashes[rel] = digest
                    if progress:   # the first third was the check of every file's redact list (_rebuild)
                        progress(len(todo) + n, 3 * len(todo), "indexing")
                report.removed = sum(1 for rel in paths if rel not in scan)
                others = [rel for rel in (scan if maybe is None else sorted(rel for rel in maybe if rel in scan))
                          if not rel.startswith("stories/") and manifest.stat.get(rel) != scan[rel]]
                hashes = self._map(_pool_hash, others, key, (), parallel=len(others) >= par.PARALLEL_FROM)
                for rel, digest in zip(others, hashes):
                    manifest.stat[rel] = scan[rel]
                    manifest.hashes[rel] = digest
                if progress:
                    progress(2 * len(todo), 3 * len(todo), "saving")
                if self.defer_tables and not rebuild:
                    # The watcher: an edit's segment is committed alone, and small segments are merged
                    # between commands (``_merge_small``, the last of the deferred steps), not while the
                    # command that follows the edit waits (a merge is ~1 in 5 commits, ~50 ms at 20,000).
                    writer.commit(mergetype=_drop_dead)
                elif not rebuild:
                    writer.commit(mergetype=_merge_small_live)
                else:
                    writer.commit(optimize=False)
                if progress:
                    progress(3 * len(todo), 3 * len(todo), "saved")
            except BaseException:
                writer.cancel()
                raise
        report.total = manifest.stories.passing()
        if self.defer_tables and not rebuild:
            # The watcher: the facet files and the tally are for other processes and for `stats`; its
            # own answers read the new segment's facet column. Written with the tables, or when
            # `stats` asks first (settle_facets), not while the command after the edit waits.
            self._facets_due = ix
        else:
            self._write_facets(ix, self.facet_cache if not rebuild else None)
        names = manifest.redact_entries() if self._names_changed else entries
        self._write_vocabulary_cache(Path(ix.storage.folder), Redactor.from_hashes(key, names))
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

    def redaction(self) -> ArchiveRedaction:
        """The archive's protected names as this index knows them (from the small ``redact.bin``)."""
        folder = self._current()
        key = index_key(self.home)
        if folder is None:
            return ArchiveRedaction(Redactor.from_hashes(key, ()), {})
        self._note_read(folder)
        stored = stored_redaction(folder, key)
        if str(folder / "redact.bin") in stored.unreadable:
            # Without the list nothing may be shown: fail closed; the caller rebuilds the index.
            raise IndexUnreadable("the search index's list of protected names is missing or damaged",
                                  folder / "redact.bin", fix="run 'counterbrief index --rebuild'")
        return stored

    def redactor(self) -> Redactor:
        """The redactor every output goes through; one error instead if a redact list cannot be read."""
        return self.redaction().require()

    def _counts(self) -> Optional[tuple]:
        """(how many story files the live index left out for their errors, which: a set or None
        when an older counts.bin does not say), from its small counts file; None without one."""
        folder = self._current()
        if folder is None:
            return 0, set()
        self._note_read(folder)
        try:
            version, bad, *failed = marshal.loads((folder / "counts.bin").read_bytes())
            if version == SCHEMA_VERSION and isinstance(bad, int):
                return bad, set(failed[0]) if failed and isinstance(failed[0], list) else None
        except (OSError, ValueError, EOFError, TypeError):
            pass
        return None

    def bad_count(self) -> int:
        """How many story files the live index left out for their errors (its small counts file)."""
        counts = self._counts()
        if counts is not None:
            return counts[0]
        manifest = Manifest.read(self._current())   # an index written before counts.bin
        return sum(1 for _, ok, _, _ in manifest.stories.values() if not ok) if manifest else 0

    def vouches_for(self, rel: str) -> bool:
        """Whether the live index took in the story file ``rel`` as passing check, as far as it knows:
        true only of a file it did not leave out. An answer that relies on this must be kept only when
        the index matches the archive's files (fresh_answer's verdict): then the file, its snapshot,
        the vocabulary and the settings are all what the check saw."""
        from .state import table_entry

        counts = self._counts()
        if counts is None or counts[1] is None or rel in counts[1] or self._current() is None:
            return False
        return rel.startswith("stories/") and table_entry(self.archive.root, rel) is not None   # a file the scan names

    def open(self):
        """(index, searcher) on the live index; a damaged index is rebuilt first, with one line saying so.

        The searcher is opened here, once: opening a reader is most of the cost of opening an index.
        """
        folder = self._current()
        if folder is not None:
            try:
                self._note_read(folder)
                ix = self._open_dir(folder)
                return ix, self._searcher(ix, folder)
            except Exception:  # noqa: BLE001
                self.notice(f"{self.home}: the search index was unreadable; rebuilding it")
        self.fresh(rebuild=True)
        folder = self._current()
        self._note_read(folder)
        ix = self._open_dir(folder)
        return ix, self._searcher(ix, folder)

    def _open_dir(self, folder: Path):
        """whoosh's index in ``folder``; the watcher keeps the object (it holds no state but the
        folder: every reader and writer reads the table of contents as it is then), so opening it,
        which reads and unpickles that table, is done once and not for every command and edit."""
        from whoosh import index

        if not self.keep_warm:
            return index.open_dir(str(folder))
        if self._ix is None or self._ix[0] != str(folder):
            self._ix = (str(folder), index.open_dir(str(folder)))
        return self._ix[1]

    def _searcher(self, ix, folder: Path):
        """A searcher on the index as its table of contents stands now. A process that stays (the
        watcher, ``keep_warm``) keeps each segment's reader from one command to the next, with the
        tables it has read (the stored fields' offsets: ~1.5 ms per segment and command at 20,000
        stories); after an update only the new segment is opened. A kept reader is given the
        segment's new record (its deleted documents, which whoosh reads from it) and closed once
        its segment is merged away; the searcher handed out leaves the readers open.

        (whoosh's own ``reader(reuse=...)`` is not used: it matches segments by id alone, so a
        reused reader keeps its old deletions, and it puts merged-away segments back.)"""
        if not self.keep_warm:
            return ix.searcher()
        from whoosh.reading import EmptyReader, MultiReader, SegmentReader
        from whoosh.searching import Searcher

        toc = ix._read_toc()
        if self._readers_of != str(folder):   # a rebuild writes a new folder
            self.close_readers()
        kept = self._readers
        live: dict = {}
        for segment in toc.segments:
            reader = kept.get(segment.segment_id())
            if reader is None:
                reader = SegmentReader(ix.storage, toc.schema, segment, generation=toc.generation)
            elif reader.segment() is not segment and not _renew(reader, segment):
                reader.close()
                reader = SegmentReader(ix.storage, toc.schema, segment, generation=toc.generation)
            live[segment.segment_id()] = reader
        for sid, reader in kept.items():
            if sid not in live:
                reader.close()
        self._readers, self._readers_of = live, str(folder)
        readers = list(live.values())
        if not readers:
            reader = EmptyReader(toc.schema)
        elif len(readers) == 1:
            reader = readers[0]
        else:
            reader = MultiReader(readers, generation=toc.generation)
        return Searcher(reader, fromindex=ix, closereader=False)

    def close_readers(self) -> None:
        """Close the readers ``_searcher`` kept (the watcher, when it leaves or replaces this index)."""
        for reader in self._readers.values():
            try:
                reader.close()
            except Exception:  # noqa: BLE001 - closing a reader of files already gone
                pass
        self._readers, self._readers_of = {}, None
