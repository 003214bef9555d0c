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
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .load import scan_archive
from .model import Archive

INDEX_NAME = re.compile(r"index-[0-9]+-[0-9a-f]+")   # index-PID-RANDOM: the process that builds it
SCHEMA_VERSION = 15   # 15: redact.bin records which key its hashes were made with


def index_home(archive: Archive) -> Path:
    """ARCHIVE/.counterbrief, or the user's cache for an archive we may not write into."""
    home = archive.root / ".counterbrief"
    installed = archive.bundled and "site-packages" in archive.root.parts
    if not installed and (home.is_dir() and os.access(home, os.W_OK) or os.access(archive.root, os.W_OK)):
        return home
    import hashlib

    import platformdirs

    key = hashlib.sha1(str(archive.root).encode()).hexdigest()[:16]
    return Path(platformdirs.user_cache_dir("counterbrief")) / key


def current_folder(home: Path) -> Optional[Path]:
    """The live index folder named by ``home/current``, or None."""
    try:
        name = (home / "current").read_text(encoding="utf-8").strip()
    except (OSError, ValueError):   # missing, or damaged into bytes that are not text
        return None
    if not INDEX_NAME.fullmatch(name):   # only ever one of our folders, never a path elsewhere
        return None
    folder = home / name
    return folder if folder.is_dir() else None


def read_stat(folder: Path) -> Optional[dict]:
    """The (size, mtime) table an index folder was built from: all an unchanged search reads."""
    return read_stat_signed(folder)[1]


def read_stat_signed(folder: Path) -> tuple[tuple, Optional[dict]]:
    """(the signature of the stat.bin read, its table): the signature tells one write of it from the next."""
    try:
        with open(folder / "stat.bin", "rb") as f:
            st = os.fstat(f.fileno())
            version, stat = marshal.loads(f.read())
        return (st.st_ino, st.st_size, st.st_mtime_ns), (stat if version == SCHEMA_VERSION else None)
    except (OSError, ValueError, EOFError, TypeError):
        return (), None


def write_stat(folder: Path, stat: dict) -> None:
    """Write the table last, after the commit it describes: stat.bin is what says "this index is fresh"."""
    from .write import write_atomic

    write_atomic(folder / "stat.bin", marshal.dumps((SCHEMA_VERSION, stat)))


def why_unusable(folder: Path) -> str:
    try:
        version, _ = marshal.loads((folder / "stat.bin").read_bytes())
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


@dataclass
class Verdict:
    folder: Path              # the index folder the probe compared with
    signature: tuple          # which write of its stat.bin: an update in between changes it
    fresh: bool               # the archive is exactly what that folder was built from
    scan: Optional[dict]      # the archive's (size, mtime) table, when it is not fresh

    def covers(self, folder: Optional[Path], signature: tuple) -> bool:
        """True when an index opened at (folder, signature) answers for the archive as it is now."""
        return self.fresh and folder == self.folder and bool(signature) and signature == self.signature


class Probe:
    """The freshness check of one command, run in a child process when the platform can fork.

    ``started`` is False when there is no index yet or no fork: the caller then brings the index
    up to date first, the plain way. The child only reads (stat calls and ``stat.bin``); every
    write to the index stays with the parent, under the index lock.
    """

    def __init__(self, archive: Archive):
        self.pid: Optional[int] = None
        self.fd: Optional[int] = None
        self.home = index_home(archive)
        if not hasattr(os, "fork") or os.environ.get("COUNTERBRIEF_NO_PROBE"):
            return
        folder = current_folder(self.home)
        if folder is None:
            return
        read_end, write_end = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(read_end)
            os.close(write_end)
            return
        if pid == 0:   # the child: compare, send the verdict, leave without running any exit handler
            code = 1
            try:
                os.close(read_end)
                scan = scan_archive(archive)
                signature, stat = read_stat_signed(folder)
                fresh = stat == scan and current_folder(self.home) == folder
                payload = marshal.dumps((str(folder), signature, fresh, None if fresh else scan))
                with os.fdopen(write_end, "wb") as out:
                    out.write(payload)
                code = 0
            finally:
                os._exit(code)
        os.close(write_end)
        self.pid, self.fd = pid, read_end

    @property
    def started(self) -> bool:
        return self.pid is not None

    def verdict(self) -> Optional[Verdict]:
        """Wait for the child; None when it could not tell (the caller then checks the plain way)."""
        if self.pid is None:
            return None
        try:
            with os.fdopen(self.fd, "rb") as f:
                data = f.read()
            folder, signature, fresh, scan = marshal.loads(data)
            return Verdict(Path(folder), tuple(signature), bool(fresh), scan)
        except (OSError, ValueError, EOFError, TypeError):
            return None
        finally:
            self._reap()

    def close(self) -> None:
        """Stop waiting (e.g. the query was refused): the child is reaped, its answer dropped."""
        if self.pid is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self._reap()

    def _reap(self) -> None:
        try:
            os.waitpid(self.pid, 0)
        except OSError:
            pass
        self.pid = None
