"""``counterbrief watch``: a process that keeps the index up to date as files change and answers
the commands that read it (search, show, stats, themes, brief) over a Unix socket.

The server (``serve``) learns of changes from the operating system through ``watchdog``
(inotify, FSEvents, kqueue) instead of statting the archive on every command. Before every
answer it makes sure it has seen every change made before the request arrived: it writes a
sentinel file inside the watched tree and waits until the event for that write comes back
through the same queue, behind every earlier event. Changed files are statted one by one and
the index updated; a lost or overflowed event queue, a dead observer or a sentinel that does not
come back makes it rescan the whole archive first. It never answers from an index it knows
to be stale.

The client side (``ask``) is imported by the console script before click or whoosh: it speaks
a small JSON protocol and gives up silently (the command then runs in process, as always) when
there is no socket, nobody listening (a watcher killed with kill -9 leaves its socket file),
a watcher of another version or install, or any error.

The socket lives in the index folder (``ARCHIVE/.counterbrief/watch.sock``) with mode 0600,
and the server also checks the peer's user id where the platform tells it (Linux).
"""
from __future__ import annotations

import json
import os
import struct
import sys
import time

# The client side (``request``, ``ask``) runs in every command before click is imported: it uses
# the socket module's C core, ``_socket`` (the same objects, without socket.py's imports of enum
# and selectors: ~4 ms of a ~40 ms answer), and no typing. The server imports ``socket`` itself.
import _socket

SOCKET = "watch.sock"
SENTINEL = "watch.sync"
ANSWERS = {"search", "show", "stats", "themes", "brief"}
PROTOCOL = 1
MAX_MESSAGE = 256 * 1024 * 1024


def identity() -> dict:
    """What a client and a server must share: the protocol, the version and the installed package."""
    from . import __version__

    return {"protocol": PROTOCOL, "version": __version__, "package": os.path.dirname(os.path.abspath(__file__))}


# ----------------------------------------------------------------------------- wire

def _send(sock, obj) -> None:
    data = json.dumps(obj).encode("utf-8")
    sock.sendall(struct.pack(">I", len(data)) + data)


def _recv_exact(sock, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 1 << 20))
        if not chunk:
            raise ConnectionError("closed")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _recv(sock):
    (n,) = struct.unpack(">I", _recv_exact(sock, 4))
    if n > MAX_MESSAGE:
        raise ConnectionError("message too large")
    return json.loads(_recv_exact(sock, n).decode("utf-8"))


# ----------------------------------------------------------------------------- client

def socket_path(home: str) -> str:
    return os.path.join(home, SOCKET)


def request(home: str, message: dict, timeout: float | None = None) -> dict | None:
    """One request to the watcher of this index home; None when there is no usable watcher."""
    path = socket_path(home)
    if not hasattr(_socket, "AF_UNIX") or not os.path.exists(path):
        return None
    try:
        st = os.stat(path)
        if hasattr(os, "getuid") and st.st_uid != os.getuid():
            return None   # not ours: never believed
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(path)
            _send(sock, {**identity(), **message})
            reply = _recv(sock)
        finally:
            sock.close()
    except (OSError, ValueError, ConnectionError, struct.error):
        return None
    if not isinstance(reply, dict) or reply.get("identity") != identity():
        return None
    return reply


def ask(root: str, home: str, argv: list[str]) -> int | None:
    """Run the command through the watcher: its exit code once its output is written, or None."""
    if os.environ.get("COUNTERBRIEF_NO_WATCH"):
        return None
    env = {k: v for k, v in os.environ.items()
           if k in ("NO_COLOR", "SOURCE_DATE_EPOCH", "COUNTERBRIEF_ARCHIVE", "COLUMNS", "TZ")}
    # A watcher that hangs is given up on (the command then runs here); a long brief is not cut short.
    reply = request(home, {"op": "run", "root": root, "argv": argv, "cwd": os.getcwd(), "env": env}, timeout=600)
    if reply is None or reply.get("op") != "ran":
        return None
    out, err = reply.get("stdout", ""), reply.get("stderr", "")
    try:
        if err:
            sys.stderr.write(err)
            sys.stderr.flush()
        if out:
            sys.stdout.buffer.write(out.encode("utf-8", "surrogateescape"))
            sys.stdout.flush()
    except BrokenPipeError:
        pass
    return int(reply.get("code", 1))


# ----------------------------------------------------------------------------- server

class _Changes:
    """What the observer thread has seen since the last answer (guarded by a condition)."""

    def __init__(self, root: str):
        import threading

        from .state import SETTINGS   # not at the top: the client side of this module stays light

        self.root = root
        self.settings = SETTINGS
        self.cond = threading.Condition()
        self.paths: set[str] = set()
        self.rescan = False
        self.sentinels = 0
        # Written to when a change arrives, so that the serving loop wakes and takes it in at once
        # (before the next command asks), instead of when the command comes.
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        os.set_blocking(self.wake_r, False)

    def _wake(self) -> None:
        try:
            os.write(self.wake_w, b".")
        except OSError:   # the pipe is full: the loop is already awake
            pass

    def drain(self) -> None:
        try:
            while os.read(self.wake_r, 4096):
                pass
        except OSError:
            pass

    def pending(self) -> bool:
        with self.cond:
            return bool(self.paths) or self.rescan

    def note(self, path: str) -> None:
        rel = os.path.relpath(path, self.root).replace(os.sep, "/")
        with self.cond:
            if rel == ".counterbrief/" + SENTINEL:
                self.sentinels += 1
                self.cond.notify_all()
            elif rel.startswith(".counterbrief") or rel.startswith(".."):
                return
            elif rel in self.settings or (
                    rel.count("/") == 1 and rel.split("/")[0] in ("stories", "sources")):
                self.paths.add(rel)
                self._wake()

    def lost(self) -> None:
        with self.cond:
            self.rescan = True
            self.cond.notify_all()
        self._wake()

    def take(self) -> tuple[set, bool]:
        with self.cond:
            paths, rescan = self.paths, self.rescan
            self.paths, self.rescan = set(), False
            return paths, rescan


class _Handler:
    """A watchdog event handler that only records paths (runs on the observer's thread)."""

    def __init__(self, changes: _Changes):
        self.changes = changes

    def dispatch(self, event) -> None:
        if event.is_directory:
            # A folder modified is only a file inside it changing (its own event follows); a folder
            # moved or removed (stories/ itself, or a whole tree) may hide many: rescan.
            if event.event_type in ("moved", "deleted") or getattr(event, "is_synthetic", False):
                rel = os.path.relpath(os.fsdecode(event.src_path), self.changes.root)
                if not rel.startswith(".counterbrief"):
                    self.changes.lost()
            return
        for name in ("src_path", "dest_path"):
            path = getattr(event, name, "")
            if path:
                self.changes.note(os.fsdecode(path))


class _LostEvents:
    """A logging handler: watchdog reports a lost or overflowed queue in its log; we rescan."""

    def __init__(self, changes: _Changes):
        import logging

        class H(logging.Handler):
            def emit(self, record):
                text = record.getMessage().lower()
                if "overflow" in text or "lost" in text or "unable" in text:
                    changes.lost()

        self.handler = H(level=logging.WARNING)
        logging.getLogger("watchdog").addHandler(self.handler)
        logging.getLogger("watchdog").setLevel(logging.WARNING)
        logging.getLogger("watchdog").propagate = False


def _leave_out_index_folders(home: str) -> None:
    """Watch the index home (``.counterbrief/``, where the sentinel is written) but not the index
    folders inside it: every file in them is the watcher's own writing, whose events it ignores, and
    an edit's commit makes ~60-90 of them. Each went through watchdog's threads (~7 ms of CPU an
    edit at 20,000 stories, measured) while the update and the command after it wait for the same
    two cores. watchdog has no way to leave a folder out of a recursive watch, and separate watches
    are read by separate threads, so the sentinel would no longer come back behind every change: the
    one recursive watch stays, and its inotify backend (Linux; watchdog 7, pinned) is told not to
    add a watch under the home. With another backend or version everything is watched, as before:
    only slower. The watcher's process does nothing else, so the change is made process-wide."""
    try:
        from watchdog.observers.inotify import InotifyWatchGroup
    except ImportError:   # not Linux
        return
    add = getattr(InotifyWatchGroup, "_add_callback", None)
    if add is None:
        return
    left_out = getattr(add, "left_out", None)
    if left_out is None:   # the first watcher of this process (a test may start several)
        left_out = set()

        def _add_callback(self, path: bytes) -> None:
            path = os.fsencode(path)
            if not any(path.startswith(inside) for inside in left_out):
                add(self, path)
        _add_callback.left_out = left_out   # type: ignore[attr-defined]
        InotifyWatchGroup._add_callback = _add_callback
    left_out.add(os.fsencode(os.path.join(home, "")))


class Server:
    def __init__(self, archive, idle: float, notice=None):
        from .state import index_home

        self.archive = archive
        self.root = str(archive.root)
        self.home = str(index_home(archive))
        self.idle = idle
        self.notice = notice or (lambda line: None)
        self.changes = _Changes(self.root)
        self.table: dict = {}
        self.index = None
        self.observer = None
        self.sync_count = 0
        self.started = time.time()
        self.last = time.monotonic()
        self.answered = 0
        self._folder = None
        self.early: tuple | None = None   # (report, notices) of an update made before any command asked
        self._notices: list | None = None  # while updating between commands: the index's lines, kept
        self._sock = None   # the listening socket while serving
        self.finish_after = 0.3   # seconds without a command after an update before its tables are written
        self._pending_since: float | None = None
        self._last_token: object | None = None   # the last scan handed to the index (state.Scan.token)
        self._changed: set | None = None         # paths restatted since then; None after a full scan
        self._untidy = 0   # answers and updates since garbage was last collected in full (_tidy)

    # -- freshness
    def _new_index(self):
        from .index import Index

        def notice(line: str) -> None:
            if self._notices is not None:   # an update between commands: told to the next command
                self._notices.append(line)
            else:
                sys.stderr.write(line + "\n")   # the request's captured stderr while a command runs
        self.finish()
        if self.index is not None:
            self.index.close_readers()
        self.index = Index(self.archive, notice=notice)
        self.index.defer_tables = True   # manifest.bin and stat.bin after the answer (finish)
        self.index.keep_warm = True
        return self.index

    def finish(self) -> None:
        """Write what the last update left for after the answer, and release the index lock."""
        self._pending_since = None
        if self.index is not None:
            try:
                self.index.finish()
            except Exception:  # noqa: BLE001 - not written: the next command (any process) updates again
                self.changes.lost()

    def finish_between(self, sock) -> None:
        """Write those tables a step at a time, and stop between two steps when a command or a
        change comes in: it is not made to wait for the rest (an update it makes takes over)."""
        import select

        while self.index is not None and self.index._finish is not None:
            try:
                more = self.index.finish(step=True)
            except Exception:  # noqa: BLE001 - as in finish()
                self.changes.lost()
                more = False
            if not more:
                self._pending_since = None
                return
            if select.select([sock, self.changes.wake_r], [], [], 0)[0]:
                return

    def _full_scan(self) -> None:
        from .load import scan_archive

        self.table = scan_archive(self.archive)
        self._changed = None   # the next scan is compared whole

    def _scan(self):
        """A copy of the table for an update. The folders' times are observed and the folders
        listed when stat.bin is written (after the answer), and kept only if the listing names the
        same files: then the probe of a command run without the watcher need not list them."""
        from .state import Scan

        scan = Scan(self.table)
        scan.list_at_write = self.archive.root
        scan.token = object()
        if self._last_token is not None and self._changed is not None:
            scan.since = (self._last_token, frozenset(self._changed))
        self._last_token, self._changed = scan.token, set()
        return scan

    def _restat(self, paths: set) -> None:
        from .state import table_entry

        if self._changed is not None:
            self._changed |= paths
        for rel in paths:
            entry = table_entry(self.archive.root, rel)
            if entry is None:
                self.table.pop(rel, None)
            else:
                self.table[rel] = entry

    def _sync(self) -> bool:
        """Wait until every change made before now has reached us: True when it has."""
        if self.observer is None or not self.observer.is_alive():
            return False
        with self.changes.cond:
            seen = self.changes.sentinels
        self.sync_count += 1
        try:
            with open(os.path.join(self.home, SENTINEL), "w", encoding="utf-8") as f:
                f.write(str(self.sync_count))
        except OSError:
            return False
        deadline = time.monotonic() + 2.0
        with self.changes.cond:
            while self.changes.sentinels <= seen:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.changes.cond.wait(left)
        return True

    def bring_up_to_date(self, sync: bool = True):
        """Take in every change made so far; the index's report (what was updated, what skipped).
        Without ``sync`` (an update between commands, woken by an event), the changes whose events
        have arrived: the next command's update makes sure of the rest."""
        from .index import IndexReport
        from .state import current_folder

        if sync:
            synced = self._sync()
        else:
            synced = self.observer is not None and self.observer.is_alive()
        paths, rescan = self.changes.take()
        if not synced or rescan:
            self._full_scan()
        elif paths:
            self._restat(paths)
        if not synced or rescan or "counterbrief.yml" in paths:
            self._read_settings()
        folder = current_folder(self.index.home) if self.index else None
        if self.index is None or paths or rescan or not synced or folder != self._folder:
            # The same index object while only stories and sources change: it keeps the manifest it
            # wrote and the vocabulary it read. A new one when the vocabulary (or anything) may have.
            index = self.index
            if index is None or rescan or not synced or folder != self._folder or \
                    paths & {"vocabulary.yml", "counterbrief.yml"}:
                index = self._new_index()
            index.opened, index.opened_signature, index._mixed = None, (), False
            try:
                report = index.fresh(scan=self._scan())
            except BaseException:
                self.changes.lost()   # what was taken in is not in the index: look at everything again
                raise
            self.archive = index.archive   # its settings as the index was last built with (Index._rebuild)
            self._folder = current_folder(index.home)
            return report
        return IndexReport(total=-1)

    def _read_settings(self) -> None:
        """The archive's settings (counterbrief.yml) as they are now: reviewers_required decides which
        accounts pass check, so an index built with the old value would serve accounts it must not."""
        from .load import settings_now

        self.archive = settings_now(self.archive)

    def update_early(self) -> None:
        """Take in the changes that arrived while no command was asking: the next command then finds
        the index updated (its sync still makes sure nothing newer is missed). What the update
        would have said (skipped files, notices) is kept for that command."""
        self._notices = []
        try:
            report = self.bring_up_to_date(sync=False)
        except Exception:  # noqa: BLE001 - the next command takes the changes in again and says why
            return
        finally:
            notices, self._notices = self._notices, None
        if report.total >= 0 or notices:
            earlier = self.early
            if earlier is not None:   # two updates before a command: it hears of both
                report.skipped[:0] = earlier[0].skipped
                notices[:0] = earlier[1]
            self.early = (report, notices)
        if self._sock is None:   # not serving: nobody to answer first
            self.finish()

    # -- serving
    def _start_observer(self) -> None:
        from watchdog import events as ev
        from watchdog.observers import Observer

        _LostEvents(self.changes)
        _leave_out_index_folders(self.home)
        self.observer = Observer()
        # Changes only: with opens and reads in the mask, any reader of the archive (rg, a brief)
        # would flood the queue, and the sentinel would wait behind thousands of events.
        changes = [ev.FileCreatedEvent, ev.FileModifiedEvent, ev.FileDeletedEvent, ev.FileMovedEvent,
                   ev.FileClosedEvent, ev.DirCreatedEvent, ev.DirDeletedEvent, ev.DirMovedEvent]
        self.observer.schedule(_Handler(self.changes), self.root, recursive=True, event_filter=changes)
        self.observer.daemon = True
        self.observer.start()

    def _bind(self):
        import socket

        path = socket_path(self.home)
        os.makedirs(self.home, exist_ok=True)
        if os.path.exists(path):
            if request(self.home, {"op": "status"}, timeout=2) is not None:
                raise RuntimeError("running")
            os.unlink(path)   # left by a watcher that was killed
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            sock.bind(path)
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        sock.listen(16)
        return sock

    @staticmethod
    def _warm_up() -> None:
        """Load now what the first update and the first answer would load (~0.2 s)."""
        import click.testing  # noqa: F401
        import filelock  # noqa: F401
        import whoosh.highlight  # noqa: F401

        from . import cli, search  # noqa: F401
        from .validate import schema_problems

        schema_problems({}, {}, "")

    def serve(self, ready=None) -> None:
        sock = self._sock = self._bind()
        path = socket_path(self.home)
        try:
            self._warm_up()
            self._start_observer()     # first, so that no change after the scan is missed
            self._full_scan()
            self._new_index().fresh(scan=self._scan())
            from .state import current_folder

            self._folder = current_folder(self.index.home)
            if ready:
                ready()
            import gc
            import select

            # Garbage is collected between commands (_tidy), not while an update or an answer runs:
            # whoosh's writer and searcher allocate enough for a collection or two in each, ~1 ms
            # apiece while they walk the tables this process keeps (2-4 ms of an edit's update at
            # 20,000 stories, measured). What the start made is frozen: no collection walks it again.
            gc.collect()
            gc.freeze()
            gc.disable()

            sock.settimeout(1.0)
            while True:
                if time.monotonic() - self.last > self.idle:
                    break
                # After an update, the command that made the edit is usually on its way: it is
                # answered first, the update's tables written when it is (or after a short wait).
                waiting = self.index is not None and self.index._finish is not None
                ready, _, _ = select.select([sock, self.changes.wake_r], [], [], self.finish_after if waiting else 1.0)
                if sock not in ready:
                    if ready:
                        self.changes.drain()
                        if self.changes.pending():
                            self.update_early()
                            self._untidy += 1   # collected once the command it is for is answered
                    else:
                        self.finish_between(sock)
                        self._tidy(idle=True)
                    continue
                try:
                    conn, _ = sock.accept()
                except TimeoutError:
                    continue
                with conn:
                    going_on = self._handle(conn)
                self._tidy()   # the answer is sent
                # The tables an update left are written once no command has come for a moment (the
                # next one, often right behind, is not made to wait for them), and within a second.
                if self.index is not None and self.index._finish is not None:
                    self._pending_since = self._pending_since or time.monotonic()
                    if time.monotonic() - self._pending_since > 1.0:
                        self.finish_between(sock)
                if not going_on:
                    break
        finally:
            import gc

            gc.enable()
            gc.unfreeze()
            self.finish()
            try:
                if os.path.exists(path) and os.stat(path).st_ino == os.fstat(sock.fileno()).st_ino:
                    os.unlink(path)
            except OSError:
                pass
            try:
                os.unlink(path)
            except OSError:
                pass
            sock.close()
            if self.observer is not None:
                self.observer.stop()

    def _tidy(self, idle: bool = False) -> None:
        """Collect garbage between commands: the young generations after each answer, and all of it
        once nothing has come for a while, or every 20 answers (a watcher asked without pause still
        frees what has grown old)."""
        import gc

        if idle:
            if self._untidy:
                gc.collect()
                self._untidy = 0
            return
        self._untidy += 1
        if self._untidy >= 20:
            gc.collect()
            self._untidy = 0
        else:
            gc.collect(1)

    def _peer_ok(self, conn) -> bool:
        import socket

        if hasattr(socket, "SO_PEERCRED") and hasattr(os, "getuid"):
            try:
                creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
                _, uid, _ = struct.unpack("3i", creds)
                return uid == os.getuid()
            except OSError:
                return False
        return True

    def _handle(self, conn) -> bool:
        """Answer one request; False to stop serving."""
        conn.settimeout(30)
        try:
            if not self._peer_ok(conn):
                return True
            msg = _recv(conn)
            mine = identity()
            if not isinstance(msg, dict) or any(msg.get(k) != v for k, v in mine.items()):
                _send(conn, {"identity": mine, "op": "refused", "why": "another version"})
                return True
            self.last = time.monotonic()
            op = msg.get("op")
            if op == "status":
                _send(conn, {"identity": mine, "op": "status", "pid": os.getpid(), "archive": self.root,
                             "since": self.started, "answered": self.answered,
                             "idle_left": max(0.0, self.idle - (time.monotonic() - self.last))})
                return True
            if op == "stop":
                _send(conn, {"identity": mine, "op": "stopping", "pid": os.getpid()})
                return False
            if op == "run":
                _send(conn, {"identity": mine, **self._run(msg)})
                self.answered += 1
                return True
            _send(conn, {"identity": mine, "op": "refused", "why": "unknown request"})
        except (OSError, ValueError, ConnectionError, struct.error):
            pass
        return True

    def _run(self, msg: dict) -> dict:
        """Run one command in this process, on the warm index, and return what it printed."""
        from click.testing import CliRunner

        from . import cli

        argv = [str(a) for a in msg.get("argv", [])]
        if msg.get("root") != self.root:
            return {"op": "refused", "why": "another archive"}
        cwd = os.getcwd()
        try:
            os.chdir(msg.get("cwd") or cwd)
        except OSError:
            return {"op": "refused", "why": "cwd"}
        try:
            cli.WARM_INDEX = self
            env = {k: v for k, v in (msg.get("env") or {}).items() if isinstance(v, str)}
            env.setdefault("NO_COLOR", "")
            runner = CliRunner()
            result = runner.invoke(cli.main, argv, env=env, catch_exceptions=True, prog_name="counterbrief")
            if result.exception is not None and not isinstance(result.exception, SystemExit):
                return {"op": "refused", "why": f"{type(result.exception).__name__}"}
            return {"op": "ran", "code": result.exit_code,
                    "stdout": result.stdout_bytes.decode("utf-8", "surrogateescape"),
                    "stderr": result.stderr_bytes.decode("utf-8", "surrogateescape") if result.stderr_bytes else ""}
        finally:
            cli.WARM_INDEX = None
            os.chdir(cwd)

    def warm(self, archive):
        """(index, report) brought up to date for ``cli.fresh_answer``, or None for another archive."""
        if str(archive.root) != self.root:
            return None
        early, self.early = self.early, None
        if early is not None:
            for line in early[1]:
                sys.stderr.write(line + "\n")
        report = self.bring_up_to_date()
        if early is not None:
            report.skipped[:0] = early[0].skipped
        return self.index, report
