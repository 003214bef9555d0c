"""The search index's life: where it is, when it is stale, building and updating it, opening it.

The index lives in ``ARCHIVE/.counterbrief/`` (or the user's cache for a read-only bundled
archive). ``current`` names the live index folder; each index folder holds the whoosh files,
``stat.bin`` (the size and mtime of every file it was built from), ``manifest.bin`` (their
hashes and what each story contributed) and ``facets.bin`` (facet values per segment). Every
command first compares the archive with ``stat.bin`` and indexes only what changed, under a file
lock; a full rebuild is made in a new folder and switched in by replacing ``current``
atomically, so readers never see a half-built index and a killed build leaves the old one.
"""
from __future__ import annotations

import marshal
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from . import load
from .errors import CounterbriefError, IndexUnreadable, Problem, disk_full as _disk_full
from .facets import write_facet_cache
from .model import HIDDEN_STATUSES, Archive, Theme
from .schema import _schema, story_document
from .state import (SCHEMA_VERSION, current_folder, index_home, read_stat, read_stat_signed, stat_signature,
                    why_unusable, write_stat)
from .redact import (ArchiveRedaction, Redactor, Unreadable, declared_names, index_key, key_check, redact_story,
                     stored_redaction)

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
    stories: dict[str, tuple] = field(default_factory=dict)  # rel -> (id, ok, snapshot, names as keyed hashes)
    # (a failed story has, instead of its id, the file of the story whose id it repeated, or "")
    unreadable_lists: dict[str, str] = field(default_factory=dict)   # rel -> why its redact list cannot be read

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

    def write(self, folder: Path) -> None:
        from .write import write_atomic

        # manifest.bin first, stat.bin last: stat.bin is what says "this index is fresh".
        write_atomic(folder / "manifest.bin", marshal.dumps(
            {"version": SCHEMA_VERSION, "hashes": self.hashes, "stories": self.stories,
             "unreadable": self.unreadable_lists}))
        # The archive's protected names (hashed) and the stories whose list cannot be read, apart:
        # every command reads this small file, never the whole manifest, to redact its output.
        write_atomic(folder / "redact.bin", marshal.dumps(
            (SCHEMA_VERSION, sorted(self.redact_entries()), sorted(self.unreadable().items()),
             key_check(index_key(folder.parent)))))
        write_stat(folder, self.stat)

    def record(self, rel: str, stat: tuple, root: Path) -> None:
        self.stat[rel] = stat
        self.hashes[rel] = _hash(root / rel, root)

    def forget(self, rel: str) -> None:
        self.stat.pop(rel, None)
        self.hashes.pop(rel, None)

    def redact_entries(self) -> set:
        """Every protected name of the archive, as the keyed hashes of its words."""
        return {e for *_, entries in self.stories.values() for e in entries}

    def unreadable(self) -> dict[str, str]:
        """Story files whose redact list cannot be read, and why."""
        return dict(self.unreadable_lists)


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

    def _write_vocabulary_cache(self, folder: Path, redact: Redactor) -> None:
        from .write import write_atomic

        if self._vocabulary_stat is not None:   # the size and time of the vocabulary.yml that was read
            # Derived files hold no protected name: labels, definitions and synonyms are redacted.
            rows = [(t.id, redact.text(t.label), redact.text(t.definition), redact(list(t.synonyms)))
                    for t in self._vocabulary.values() if not redact.finds(t.id)]
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
            self._sweep_dead(keep=folder)
            try:
                self.vocabulary()   # an unusable vocabulary stops here, before anything is written
                if rebuild or folder is None:
                    return self._rebuild(scan, progress)
                manifest = Manifest.read(folder, self._table.stat if self._table else None)
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

    def _rebuild(self, scan: dict, progress: Progress) -> IndexReport:
        name = f"index-{os.getpid()}-{os.urandom(4).hex()}"
        folder = self.home / name
        folder.mkdir(parents=True)
        try:
            return self._build_in(folder, name, scan, progress)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)   # a failed build leaves nothing behind (a full disk)
            raise

    def _build_in(self, folder: Path, name: str, scan: dict, progress: Progress) -> IndexReport:
        from whoosh import index

        ix = index.create_in(str(folder), _schema())
        manifest = Manifest()
        paths = sorted(rel for rel in scan if rel.startswith("stories/"))
        # The names the old index knew: a story whose redact list has become unreadable keeps them.
        old = self._current()
        old_manifest = Manifest.read(old) if old is not None else None
        previous = old_manifest.stories if old_manifest else {}
        report = self._index_paths(ix, manifest, paths, scan, progress, rebuild=True, previous=previous)
        report.rebuilt = True
        manifest.write(folder)
        # The switch: one atomic rename; until then readers use the old index.
        tmp = self.home / f".current.{os.getpid()}"
        tmp.write_text(name, encoding="utf-8")
        if (self.home / "current").is_dir() and not (self.home / "current").is_symlink():
            shutil.rmtree(self.home / "current")   # a damaged home: `current` must be the file that names the index
        os.replace(tmp, self.home / "current")
        self._sweep(keep=folder)
        return report

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
        from whoosh import index

        changed = set()
        for rel, stat in scan.items():
            if manifest.stat.get(rel) != stat:
                digest = _hash(self.archive.root / rel, self.archive.root)
                if manifest.hashes.get(rel) == digest:
                    manifest.stat[rel] = stat      # touched, not changed
                else:
                    changed.add(rel)
        removed = set(manifest.stat) - set(scan)
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
        stories |= {rel for rel, (clash, ok, snapshot, _) in manifest.stories.items()
                    if rel in scan and (snapshot in touched_sources
                                        or not ok and (clash in edited or not _watched(snapshot)))}
        ix = index.open_dir(str(folder))
        before_redact = manifest.redact_entries()
        report = self._index_paths(ix, manifest, sorted(stories), scan, progress, rebuild=False)
        for rel in removed:
            manifest.forget(rel)
        if manifest.redact_entries() != before_redact:
            # A redaction list changed: every stored text must be redacted anew.
            self.notice("a redaction list changed; rebuilding the search index")
            return self._rebuild(scan, progress)
        manifest.write(folder)
        return report

    def _index_paths(self, ix, manifest: Manifest, paths: list[str], scan: dict, progress: Progress,
                     rebuild: bool, previous: Optional[dict] = None) -> IndexReport:
        from .validate import SnapshotCache, check_story

        vocabulary = self.vocabulary()
        snapshots = SnapshotCache(self.archive)
        report = IndexReport()
        todo = [rel for rel in paths if rel in scan]
        # Progress runs over three phases: checking every story, adding it to the index, and then
        # saving the index (whoosh's commit: ~40% of a full build), shown as a phase of its own.
        steps = 3 * len(todo)
        step = (lambda n, _total, phase="checking": progress(n, steps, phase)) if progress else None
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
        failed_on: dict[str, tuple[str, str]] = {}   # rel -> (the story it clashed with, its snapshot)
        for rel in todo:
            story, problems = parsed[rel]
            if story is None:
                failed_on[rel] = ("", _snapshot_of(self.archive.root / rel, self.archive.root))
                continue
            other = ids.setdefault(story.id, rel)
            if other != rel:
                problems = problems + [Problem(rel, story.lines.get("id"), f"duplicate id '{story.id}', also used by "
                                               f"{other}; give each story its own id")]
                parsed[rel] = (None, problems)
                failed_on[rel] = (other, story.source.get("snapshot", ""))
        # Redaction is archive-wide: the names of every story, kept or changed, as keyed hashes. A
        # story whose list cannot be read keeps the names it had and is marked: outputs are refused.
        key = index_key(self.home)
        for rel, (story, _) in parsed.items():
            before = manifest.stories.get(rel) or (previous or {}).get(rel)
            manifest.unreadable_lists.pop(rel, None)
            try:
                names = story.redact if story is not None else declared_names(self.archive.root / rel)
                entries = tuple(sorted(Redactor.from_names(names, key).entries))
            except Unreadable as e:
                manifest.unreadable_lists[rel] = str(e)
                entries = before[3] if before else ()
            clash, snapshot = failed_on.get(rel, ("", ""))
            manifest.stories[rel] = ((story.id, True, story.source.get("snapshot", ""), entries)
                                     if story else (clash, False, snapshot, entries))
        for rel in paths:
            if rel not in scan:
                manifest.stories.pop(rel, None)
                manifest.unreadable_lists.pop(rel, None)
        redact = Redactor.from_hashes(key, manifest.redact_entries())
        for rel, (story, problems) in parsed.items():
            if story is not None and (redact.finds(story.id) or redact.finds(story.source.get("snapshot", ""))):
                parsed[rel] = (None, problems + [Problem(rel, story.lines.get("id"), ID_HOLDS_NAME)])
                manifest.stories[rel] = ("", False, "", manifest.stories[rel][3])
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
                if story is not None and story.status in HIDDEN_STATUSES:
                    pass   # rejected or withdrawn: kept on disk (and its redactions in force), out of every output
                elif story is not None:
                    writer.add_document(**story_document(redact_story(story, redact), rel))
                    report.indexed += 1
                    if step:
                        step(len(todo) + report.indexed, steps, "indexing")
                elif rel in scan:
                    report.skipped.extend(p for p in problems if p.severity == "error")
                else:
                    report.removed += 1
                if rel in scan:
                    manifest.record(rel, scan[rel], self.archive.root)
            for rel, stat in scan.items():
                if not rel.startswith("stories/") and manifest.stat.get(rel) != stat:
                    manifest.record(rel, stat, self.archive.root)
            if step:
                step(2 * len(todo), steps, "saving")
            writer.commit(optimize=False)
            if step:
                step(steps, steps, "saved")
        except BaseException:
            writer.cancel()
            raise
        report.total = sum(1 for _, ok, _, _ in manifest.stories.values() if ok)
        self.facet_cache = write_facet_cache(ix)
        self._write_vocabulary_cache(Path(ix.storage.folder), redact)
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
