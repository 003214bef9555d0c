"""The search index's bookkeeping, without whoosh: where the index lives, which folder is live,
the (size, mtime) table it was built from, and the freshness probe.

Kept apart from ``search`` (which imports whoosh) so that a command can start its freshness check
before whoosh is imported: the probe stats every file the index depends on in a child process,
on the other core, while this process imports whoosh and computes its answer on the index as it
is. On an unchanged archive the answer is then ready when the check is; when something changed,
the index is brought up to date and the answer computed again (see ``cli.fresh_answer``).
"""
from __future__ import annotations

import marshal
import os
import time
from stat import S_ISDIR, S_ISLNK

# The probe's children import this module alone, so it imports only os, marshal, time and stat:
# typing (~8 ms: re, functools), pathlib and dataclasses would cost each child more than its share
# of a 2,000-file archive takes to stat. (typing.TYPE_CHECKING, without importing typing.)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Optional

    from .model import Archive


def _index_name(name: str) -> bool:
    """index-PID-RANDOM (digits, then lowercase hex): the name of a folder a process built."""
    kind, _, rest = name.partition("-")
    pid, _, random = rest.partition("-")
    return kind == "index" and bool(pid) and bool(random) and \
        all(c in "0123456789" for c in pid) and all(c in "0123456789abcdef" for c in random)
SCHEMA_VERSION = 18   # 15: redact.bin records its key; 16: stat.bin packed, counts.bin, failed stories keep what they failed on; 18: tally.bin, facet files per segment;
# 17: redact lists under careless keys and below the front matter (an index made under the old rules holds their names)


def index_home(archive: Archive) -> Path:
    """ARCHIVE/.counterbrief, or the user's cache for an archive we may not write into."""
    home = archive.root / ".counterbrief"
    installed = archive.bundled and "site-packages" in archive.root.parts
    if not installed and (home.is_dir() and os.access(home, os.W_OK) or os.access(archive.root, os.W_OK)):
        return home
    import hashlib
    from pathlib import Path

    import platformdirs

    key = hashlib.sha1(str(archive.root).encode()).hexdigest()[:16]
    return Path(platformdirs.user_cache_dir("counterbrief")) / key


def current_folder(home: Path) -> Optional[Path]:
    """The live index folder named by ``home/current``, or None (a str for a str ``home``: the probe's
    children work on strings, without importing pathlib)."""
    try:
        with open(os.path.join(home, "current"), encoding="utf-8") as f:
            name = f.read().strip()
    except (OSError, ValueError):   # missing, or damaged into bytes that are not text
        return None
    if not _index_name(name):   # only ever one of our folders, never a path elsewhere
        return None
    if not os.path.isdir(os.path.join(home, name)):
        return None
    return os.path.join(home, name) if isinstance(home, str) else home / name


def read_stat(folder: Path) -> Optional[dict]:
    """The (size, mtime) table an index folder was built from, as a dict (updates use it)."""
    return read_stat_signed(folder)[1]


def read_stat_signed(folder: Path) -> tuple[tuple, Optional[dict]]:
    """(the signature of the stat.bin read, its table): the signature tells one write of it from the next."""
    signature, table = read_stat_table(folder)
    return signature, table.as_dict() if table is not None else None


class StatTable:
    """The (size, mtime) of every file, compactly: the paths sorted and joined by NUL, and two
    arrays of 64-bit integers in the same order. Compared as a whole (string and array equality,
    in C) or a share at a time (every k-th file), without a dict of the whole archive."""

    __slots__ = ("names", "sizes", "mtimes", "folders")

    def __init__(self, names: str, sizes, mtimes, folders: Optional[tuple] = None):
        self.names, self.sizes, self.mtimes, self.folders = names, sizes, mtimes, folders

    @classmethod
    def from_dict(cls, stat: dict, folders: Optional[tuple] = None) -> "StatTable":
        from array import array

        rels = sorted(stat)
        return cls("\0".join(rels), array("q", [stat[r][0] for r in rels]), array("q", [stat[r][1] for r in rels]),
                   folders)

    def lists_as(self, folders: tuple) -> bool:
        """Do the folders, as ``observe_folders`` found them now, still hold exactly the files named here?"""
        return self.folders is not None and self.folders == folders and all(m != RACY for _, m in folders)

    def rels(self) -> list[str]:
        return self.names.split("\0") if self.names else []

    def as_dict(self) -> dict:
        return dict(zip(self.rels(), zip(self.sizes, self.mtimes)))

    def dumps(self) -> bytes:
        return marshal.dumps((SCHEMA_VERSION, self.names, self.sizes.tobytes(), self.mtimes.tobytes(), self.folders))

    @classmethod
    def loads(cls, data: bytes) -> Optional["StatTable"]:
        from array import array

        version, names, sizes, mtimes, *rest = marshal.loads(data)   # a table written before folders had 4 parts
        if version != SCHEMA_VERSION:
            return None
        a, b = array("q"), array("q")
        a.frombytes(sizes)
        b.frombytes(mtimes)
        folders = rest[0] if rest and isinstance(rest[0], tuple) else None
        return cls(names, a, b, folders)


def read_stat_table(folder: Path) -> tuple[tuple, Optional[StatTable]]:
    try:
        with open(os.path.join(folder, "stat.bin"), "rb") as f:
            st = os.fstat(f.fileno())
            data = f.read()
        signature = (st.st_ino, st.st_size, st.st_mtime_ns)
    except OSError:
        return (), None
    try:
        return signature, StatTable.loads(data)
    except (ValueError, EOFError, TypeError):
        return signature, None


# A file changed this close to the index's write is "racy" (see write_stat): within a tick of the
# file system's clock (a few ms where stamps have nanoseconds; 1-2 s where they are whole seconds).
RACY_NS = 100_000_000
RACY_COARSE_NS = 3_000_000_000
RACY = -2   # the time recorded for it: no file has it, so the next command looks again


def _racy(mtime: int, now: int) -> bool:
    return mtime >= now - RACY_NS or (mtime >= now - RACY_COARSE_NS and mtime % 1_000_000_000 == 0)


_UNLISTED = object()   # write_stat: the folders not listed yet


def write_stat(folder: Path, stat: dict, scan: Optional[dict] = None, listed: object = _UNLISTED) -> None:
    """Write the table last, after the commit it describes: stat.bin is what says "this index is fresh".

    A file changed within a clock tick of now (or in the future) is recorded without its time, as
    git does with its index: an edit made in the same tick, keeping the size, would otherwise look
    unchanged for ever. The next command hashes such
    a file again; the hash tells an edit from a touch, so an unchanged file is not re-indexed.

    With ``scan`` (a ``Scan`` naming exactly the files of ``stat``), the times of the folders it
    was listed from are kept too: while they stay the same, the probe need not list them again.
    ``listed``: those times as ``stat_folders`` found them a moment before, when it was a step apart.
    """
    from .write import write_atomic

    folders = stat_folders(stat, scan) if listed is _UNLISTED else listed
    now = time.time_ns()
    if any(_racy(mtime, now) for _, mtime in stat.values()):
        stat = {rel: (size, RACY if _racy(mtime, now) else mtime) for rel, (size, mtime) in stat.items()}
    write_atomic(folder / "stat.bin", StatTable.from_dict(stat, folders).dumps())


def stat_folders(stat: dict, scan: Optional[dict]) -> Optional[tuple]:
    """The folder times write_stat records with ``stat``, or None: those of the scan's listing, or
    for the watcher's table (kept from events: ``list_at_write``) the folders listed now to be
    sure. A step of its own, so that the watcher can answer a command in between."""
    folders = getattr(scan, "folders", None)
    root = getattr(scan, "list_at_write", None)
    if folders is None and root is not None:
        folders = observe_folders(root)
        if listing(root) != sorted(stat):
            folders = None
    if folders is not None and stat.keys() != scan.keys():
        folders = None
    return folders


FOLDERS = ("", "sources", "stories")   # the folders whose listing the table records: top, sources/, stories/


class Scan(dict):
    """The archive's (size, mtime) table by path, with ``folders``: ``observe_folders`` taken just
    before the listing it came from (None when unknown, as in any copy of it)."""

    folders: Optional[tuple] = None
    list_at_write: Optional[Path] = None   # without folders: the archive to observe and list when stat.bin is written
    # What a process that keeps its table up to date (the watcher) knows: this scan's identity, and
    # (an earlier scan's token, the paths that may differ from it). An index whose manifest matches
    # that earlier scan compares only those paths instead of the whole table.
    token: Optional[object] = None
    since: Optional[tuple] = None


def observe_folders(root) -> tuple:
    """(inode, mtime_ns) of the top folder, sources/ and stories/, taken before they are listed.

    A file added, removed or renamed in a folder changes the folder's time, so while these stay the
    same the listing does too (an edit inside a file does not, which is why every file is still
    stat'd). A time within a clock tick of now is RACY: the folder could change again in the same
    tick and keep its time, so a racy time is never taken as a match.
    """
    now = time.time_ns()
    seen = []
    for sub in FOLDERS:
        try:
            st = os.stat(os.path.join(root, sub))
            seen.append((st.st_ino, RACY if _racy(st.st_mtime_ns, now) else st.st_mtime_ns))
        except OSError:
            seen.append((-1, RACY))
    return tuple(seen)


def inside(path: Path, root: Path) -> bool:
    """Does ``path``, with every link followed, stay inside ``root`` (an already resolved folder)?"""
    from pathlib import Path

    try:
        return Path(os.path.realpath(path)).is_relative_to(root)
    except (OSError, ValueError, RuntimeError):
        return False


def stat_entry(root: Path, rel: str) -> os.stat_result:
    """The stat the freshness table records for ``rel``: a link is followed only to a file inside the
    archive, otherwise the link itself is recorded (reading it is refused with one line); the two
    settings files at the top are followed. Raises OSError when it is gone."""
    path = os.path.join(root, rel)
    if "/" not in rel:
        return os.stat(path)
    st = os.lstat(path)
    if S_ISLNK(st.st_mode) and inside(path, root):
        try:
            return os.stat(path)
        except OSError:
            pass   # a loop or a broken link: the link's own stat stands
    return st


SETTINGS = ("counterbrief.yml", "vocabulary.yml")   # the marker's settings decide which stories pass check


def listing(root: Path) -> list[str]:
    """The sorted archive-relative paths of every file the index depends on: each ``stories/*.md``
    and each entry of ``sources/`` but folders (neither an editor's ``.#`` lock file), then
    ``vocabulary.yml`` and ``counterbrief.yml`` where they are. Only the folders are read: the
    probe and ``load.scan_archive`` list with this, so they always agree on the names."""
    names: list[str] = []
    for sub, suffix in (("sources", ""), ("stories", ".md")):
        try:
            with os.scandir(os.path.join(root, sub)) as it:
                for e in it:
                    name = e.name
                    if not name.endswith(suffix) or name.startswith(".#"):
                        continue
                    if sub == "sources" and (e.is_dir(follow_symlinks=False)
                                             or e.is_symlink() and _links_to_folder(root, sub + "/" + name)):
                        continue
                    names.append(sub + "/" + name)
        except OSError:   # missing, not a folder, a link loop: nothing in it can be read either
            continue
    for name in SETTINGS:
        if os.path.exists(os.path.join(root, name)):
            names.append(name)
    names.sort()   # runs already in order: linear
    return names


def table_entry(root: Path, rel: str) -> Optional[tuple[int, int]]:
    """(size, mtime) of one path as the freshness table records it, or None when ``listing`` would
    not name it (or it is gone): for a table kept up to date one changed path at a time (the watcher)."""
    sub, _, name = rel.partition("/")
    if not name:
        named = rel in SETTINGS
    else:
        named = sub in ("stories", "sources") and "/" not in name and not name.startswith(".#") and \
            (sub == "sources" or name.endswith(".md"))
    if not named:
        return None
    try:
        st = stat_entry(root, rel)
    except OSError:
        return None
    if sub == "sources" and S_ISDIR(st.st_mode):
        return None
    return st.st_size, st.st_mtime_ns


def _links_to_folder(root: Path, rel: str) -> bool:
    try:
        return S_ISDIR(stat_entry(root, rel).st_mode)
    except OSError:
        return False


def scan_part(root: Path, names: list[str], part: int, parts: int):
    """(sizes, mtimes) arrays of every ``parts``-th file from ``part``; a file gone since the listing is -1."""
    from array import array

    sizes, mtimes = array("q"), array("q")
    lstat = os.lstat
    base = str(root) + os.sep
    for rel in names[part::parts]:
        try:
            st = lstat(base + rel)
            if S_ISLNK(st.st_mode) or "/" not in rel:
                st = stat_entry(root, rel)
            sizes.append(st.st_size)
            mtimes.append(st.st_mtime_ns)
        except OSError:
            sizes.append(-1)
            mtimes.append(-1)
    return sizes, mtimes


def why_unusable(folder: Path) -> str:
    try:
        version = marshal.loads((folder / "stat.bin").read_bytes())[0]
        if version != SCHEMA_VERSION:
            return "the search index was made by another version of counterbrief"
    except (OSError, ValueError, EOFError, TypeError):
        pass
    return "the search index was unreadable"


def stat_signature(folder: Path) -> tuple:
    try:
        st = (folder / "stat.bin").stat()
        return (st.st_ino, st.st_size, st.st_mtime_ns)
    except OSError:
        return ()


class Verdict:
    """What the probe found (a plain class: dataclasses would cost the children ~8 ms to import)."""

    __slots__ = ("folder", "signature", "fresh", "scan")

    def __init__(self, folder: Path, signature: tuple, fresh: bool, scan: Optional[dict]):
        self.folder = folder          # the index folder the probe compared with
        self.signature = signature    # which write of its stat.bin: an update in between changes it
        self.fresh = fresh            # the archive is exactly what that folder was built from
        self.scan = scan              # the archive's (size, mtime) table, when it is not fresh

    def covers(self, folder: Optional[Path], signature: tuple) -> bool:
        """True when an index opened at (folder, signature) answers for the archive as it is now."""
        return self.fresh and folder == self.folder and bool(signature) and signature == self.signature


class Probe:
    """The freshness check of one command, run in child processes when the platform can fork.

    ``started`` is False when there is no index yet or no fork: the caller then brings the index
    up to date first, the plain way. Each child lists the archive, stats its share of the files
    (every k-th; one child per core on a large archive, see ``early.spawn``) and compares that
    share with ``stat.bin``. The children only read; every write to the index stays with the
    parent, under the index lock.
    """

    def __init__(self, archive: Archive, children: Optional[list] = None):
        from . import early

        self.root = archive.root
        self.home = index_home(archive)
        self.children: list[tuple[int, int]] = children or []   # (pid, read end of its pipe)
        if self.children or not hasattr(os, "fork") or os.environ.get("COUNTERBRIEF_NO_PROBE"):
            return
        folder = current_folder(self.home)
        if folder is not None:
            self.children = early.spawn(str(self.root), str(self.home), str(folder))

    @property
    def started(self) -> bool:
        return bool(self.children)

    def verdict(self) -> Optional[Verdict]:
        """Wait for the children; None when they could not tell (the caller then checks the plain way)."""
        if not self.children:
            return None
        try:
            answers = []
            for _, fd in self.children:
                with os.fdopen(fd, "rb", closefd=False) as f:
                    answers.append(marshal.loads(f.read()))
            return _combine(self.home, answers)
        except (OSError, ValueError, EOFError, TypeError, IndexError):
            return None
        finally:
            self.close()

    def close(self) -> None:
        """Stop waiting (e.g. the query was refused): the children are reaped, their answers dropped."""
        from . import early

        early.reap(self.children)
        self.children = []


def compare_share(root: Path, home: Path, folder: Path, part: int, parts: int) -> bytes:
    """One child's verdict on its share of the files, marshalled: (folder, signature, fresh, part,
    parts, names or None when they equal stat.bin's, sizes, mtimes, the folders as observed).
    The folders are listed only when their times differ from those stat.bin recorded."""
    folders = observe_folders(root)
    signature, table = read_stat_table(folder)
    if table is not None and table.lists_as(folders):
        names, same_names = table.rels(), True
    else:
        names = listing(root)
        joined = "\0".join(names)
        same_names = table is not None and table.names == joined
    sizes, mtimes = scan_part(root, names, part, parts)
    fresh = (same_names and table.sizes[part::parts] == sizes and table.mtimes[part::parts] == mtimes
             and current_folder(home) == folder)
    return marshal.dumps((str(folder), signature, fresh, part, parts, None if same_names else joined,
                          sizes.tobytes(), mtimes.tobytes(), folders))


def _combine(home: Path, answers: list) -> Optional[Verdict]:
    """The verdict of all shares: fresh only if every share is; else the archive's whole table."""
    from array import array

    folders = {a[0] for a in answers}
    signatures = {tuple(a[1]) for a in answers}
    if len(folders) != 1 or len(signatures) != 1:
        return None   # an update between the children's reads: let the plain check decide
    from pathlib import Path

    folder, signature = Path(answers[0][0]), tuple(answers[0][1])
    if all(a[2] for a in answers):
        return Verdict(folder, signature, True, None)
    joined = next((a[5] for a in answers if a[3] == 0), None)
    if joined is None:   # child 0 found stat.bin's names: take them from there
        sig, table = read_stat_table(folder)
        if table is None or sig != signature:
            return Verdict(folder, signature, False, None)
        joined = table.names
    rels = joined.split("\0") if joined else []
    sizes, mtimes = array("q", [0]) * len(rels), array("q", [0]) * len(rels)
    for _, _, _, part, parts, _, s, m, _ in answers:
        a, b = array("q"), array("q")
        a.frombytes(s)
        b.frombytes(m)
        sizes[part::parts], mtimes[part::parts] = a, b
    scan = Scan((rel, (sz, mt)) for rel, sz, mt in zip(rels, sizes, mtimes) if sz >= 0)
    observed = {a[8] for a in answers}
    scan.folders = observed.pop() if len(observed) == 1 and len(scan) == len(rels) else None
    return Verdict(folder, signature, False, scan)


def take_probe(archive: Archive) -> Probe:
    """The probe the console script started for this archive (``early.start``), else a new one."""
    from . import early

    home = index_home(archive)
    return Probe(archive, early.take(archive.root, home))
