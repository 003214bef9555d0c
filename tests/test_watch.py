"""counterbrief watch: its answers equal the in-process ones, and a stale, dead or foreign watcher is never believed."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time

import pytest

pytestmark = pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="the watcher needs Unix sockets")

CLIENT = [sys.executable, "-c", "import sys; from counterbrief.entry import run; sys.argv[0] = 'counterbrief'; run()"]


def cb(root, *args, watch=True, check=False):
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUNTERBRIEF_")}
    if not watch:
        env["COUNTERBRIEF_NO_WATCH"] = "1"
    result = subprocess.run([*CLIENT, "--archive", str(root), *args], capture_output=True, text=True, env=env,
                            timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def start_watcher(root):
    proc = subprocess.Popen([*CLIENT, "--archive", str(root), "watch", "--idle", "120"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    for _ in range(200):
        if cb(root, "watch", "--status").returncode == 0:
            return proc
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read())
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("the watcher did not start")


def answered(root) -> int:
    line = cb(root, "watch", "--status", check=True).stderr
    return int(line.split(": ")[1].split(" commands")[0])


@pytest.fixture
def watched(make_archive):
    make_archive.story("one", body="Camels crossed the border.")
    make_archive.story("two", body="Nothing about animals.")
    cb(make_archive.root, "index", watch=False, check=True)
    proc = start_watcher(make_archive.root)
    yield make_archive
    cb(make_archive.root, "watch", "--stop")
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    proc.stderr.close()


def same_answers(root, *commands):
    for command in commands:
        warm, plain = cb(root, *command), cb(root, *command, watch=False)
        assert (warm.returncode, warm.stdout) == (plain.returncode, plain.stdout), command
    return True


def test_the_watchers_answers_equal_the_in_process_answers_over_edits_new_files_deletions_and_renames(watched):
    root = watched.root
    commands = [("search", "camels", "--json"), ("stats", "--json"), ("show", "one", "--json"),
                ("search", "*", "--format", "csv"),
                ("brief", "--theme", "suppression-of-dissent", "--include-synthetic", "--format", "md")]
    before = answered(root)
    assert same_answers(root, *commands)
    watched.story("one", body="Camels crossed the border at night.")              # an edit
    assert json.loads(cb(root, "search", "night", "--json").stdout)["total"] == 1
    assert same_answers(root, *commands)
    watched.story("three", body="More camels, and a smuggler.")                     # a new file
    assert [h["id"] for h in json.loads(cb(root, "search", "smuggler", "--json").stdout)["hits"]] == ["three"]
    assert same_answers(root, *commands)
    (root / "stories" / "two.md").unlink()                                           # a deletion
    assert json.loads(cb(root, "stats", "--json").stdout) == json.loads(cb(root, "stats", "--json", watch=False).stdout)
    assert same_answers(root, *commands)
    os.rename(root / "stories" / "three.md", root / "stories" / "four.md")          # a rename: the id no longer fits
    warm = cb(root, "search", "smuggler", "--json")
    assert json.loads(warm.stdout)["hits"] == []
    assert "four.md" in warm.stderr
    assert same_answers(root, *commands)
    (root / "sources" / "src.txt").write_text("The source no longer holds the quote.\n")   # a source changes
    assert json.loads(cb(root, "search", "camels", "--json").stdout)["hits"] == []
    assert same_answers(root, *commands)
    assert answered(root) - before >= 25   # the watcher, not the fallback, gave the answers


def test_the_socket_only_its_user_can_open(watched):
    path = watched.root / ".counterbrief" / "watch.sock"
    mode = os.stat(path).st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600


def test_a_watcher_killed_with_kill_9_leaves_nothing_that_breaks_the_next_command(make_archive):
    make_archive.story("one", body="Camels.")
    cb(make_archive.root, "index", watch=False, check=True)
    proc = start_watcher(make_archive.root)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert (make_archive.root / ".counterbrief" / "watch.sock").exists()   # left behind
    make_archive.story("two", body="More camels.")
    result = cb(make_archive.root, "search", "camels", "--json")
    assert result.returncode == 0 and result.stderr == ""
    assert sorted(h["id"] for h in json.loads(result.stdout)["hits"]) == ["one", "two"]
    assert cb(make_archive.root, "watch", "--status").returncode == 1
    proc = start_watcher(make_archive.root)   # a new watcher replaces the dead socket
    try:
        assert same_answers(make_archive.root, ("search", "camels", "--json"))
    finally:
        cb(make_archive.root, "watch", "--stop")
        proc.wait(timeout=10)


def _fake_watcher(path, reply):
    """A server on the socket that answers every request with ``reply`` (plus a made-up identity)."""
    from counterbrief import watch

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    os.chmod(path, 0o600)
    sock.listen(4)
    sock.settimeout(10)

    def serve():
        try:
            while True:
                conn, _ = sock.accept()
                with conn:
                    watch._recv(conn)
                    watch._send(conn, reply)
        except OSError:
            pass

    threading.Thread(target=serve, daemon=True).start()
    return sock


def test_a_watcher_of_another_version_is_never_believed(make_archive):
    from counterbrief import watch

    make_archive.story("one", body="Camels.")
    cb(make_archive.root, "index", watch=False, check=True)
    other = {**watch.identity(), "version": "0.0.1-other"}
    sock = _fake_watcher(make_archive.root / ".counterbrief" / "watch.sock",
                         {"identity": other, "op": "ran", "code": 0, "stdout": "BELIEVED\n", "stderr": ""})
    try:
        result = cb(make_archive.root, "search", "camels", "--json")
        assert "BELIEVED" not in result.stdout
        assert [h["id"] for h in json.loads(result.stdout)["hits"]] == ["one"]
    finally:
        sock.close()


def test_a_watcher_that_answers_nonsense_is_not_believed(make_archive):
    make_archive.story("one", body="Camels.")
    cb(make_archive.root, "index", watch=False, check=True)
    sock = _fake_watcher(make_archive.root / ".counterbrief" / "watch.sock", ["not", "a", "reply"])
    try:
        result = cb(make_archive.root, "search", "camels", "--json")
        assert [h["id"] for h in json.loads(result.stdout)["hits"]] == ["one"]
    finally:
        sock.close()


@contextlib.contextmanager
def in_process_watcher(make_archive):
    """A watcher Server in this process, observing the archive and up to date with it: (archive, server)."""
    from counterbrief import load
    from counterbrief.watch import Server

    make_archive.story("one", body="Camels.")
    archive = load.find_archive(make_archive.root, None, make_archive.root)
    server = Server(archive, idle=60)
    server._start_observer()
    try:
        server._full_scan()
        server.bring_up_to_date()
        yield archive, server
    finally:
        if server.observer is not None:
            server.observer.stop()
        for fd in (server.changes.wake_r, server.changes.wake_w):
            os.close(fd)


def warm_camels(server, archive) -> list[str]:
    """The ids the watcher's warm index finds for 'camels'."""
    from counterbrief.search import SearchRequest, search

    index, _ = server.warm(archive)
    return sorted(h["id"] for h in search(index, SearchRequest(query="camels"), index.vocabulary()).hits)


def test_the_watcher_rescans_before_answering_when_its_events_were_lost(make_archive):
    """A lost queue (or a dead observer) is never taken for 'nothing changed'."""
    with in_process_watcher(make_archive) as (archive, server):
        server.observer.stop()              # the observer dies: events from now on are lost
        server.observer.join(timeout=10)
        make_archive.story("two", body="More camels.")
        assert warm_camels(server, archive) == ["one", "two"]
        server.changes.lost()               # an overflowed queue: the next answer rescans first
        make_archive.story("three", body="Camels again.")
        server.changes.paths.clear()
        server.observer = None
        assert warm_camels(server, archive) == ["one", "three", "two"]


def test_the_watcher_answers_for_its_own_archive_only(make_archive, tmp_path):
    from counterbrief import load
    from counterbrief.watch import Server

    make_archive.story("one")
    archive = load.find_archive(make_archive.root, None, make_archive.root)
    other = tmp_path / "other"
    (other / "stories").mkdir(parents=True)
    (other / "vocabulary.yml").write_text((make_archive.root / "vocabulary.yml").read_text())
    server = Server(archive, idle=60)
    assert server.warm(load.find_archive(other, None, other)) is None


def test_the_watcher_takes_in_an_edit_before_any_command_asks_and_tells_the_next_command(watched):
    from counterbrief.state import current_folder, stat_signature

    root = watched.root
    home = root / ".counterbrief"
    before = stat_signature(current_folder(home))
    watched.story("one", raw="---\nid: one\ntitle: [broken\n---\nCamels.\n")          # an edit that breaks it
    for _ in range(200):                                   # no command runs: the watcher updates by itself
        if stat_signature(current_folder(home)) != before:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the watcher did not update the index before a command asked")
    warm = cb(root, "search", "camels", "--json")
    assert json.loads(warm.stdout)["hits"] == []
    assert "one.md" in warm.stderr                         # the skipped line goes to the command that follows
    assert cb(root, "search", "camels", "--json").stderr == ""   # and only to it, as in process
    assert same_answers(root, ("search", "camels", "--json"), ("stats", "--json"))


def test_an_update_that_fails_between_commands_is_taken_in_again_by_the_next_one(make_archive):
    with in_process_watcher(make_archive) as (archive, server):
        make_archive.story("two", body="More camels.")
        original = server.index.fresh
        server.index.fresh = lambda **kw: (_ for _ in ()).throw(OSError("disk gone"))
        server.update_early()                               # fails: nothing may be taken as done
        server.index.fresh = original
        assert warm_camels(server, archive) == ["one", "two"]


def test_an_update_whose_tables_the_watcher_had_not_yet_written_is_taken_in_again_after_a_kill(make_archive):
    """The watcher answers before it writes manifest.bin and stat.bin; killed in between, the next
    command finds the index stale and updates it again, without counting an account twice."""
    from counterbrief.search import Index, SearchRequest, search
    from counterbrief.state import current_folder, stat_signature

    with in_process_watcher(make_archive) as (archive, server):
        folder = current_folder(server.index.home)
        before = stat_signature(folder)
        server._sock = object()                 # serving: the tables wait for the answer
        make_archive.story("two", body="More camels.")
        for _ in range(200):   # its event has come (a busy machine takes more than a moment)
            if server.changes.pending():
                break
            time.sleep(0.05)
        server.update_early()
        assert server.index._finish is not None and stat_signature(folder) == before
        assert warm_camels(server, archive) == ["one", "two"]
        held = server.index._held
        server.index._finish = None             # killed here: its lock goes with it
        held.release()
    plain = Index(archive)
    assert plain.fresh().total == 2             # stale (stat.bin was not written): updated again
    found = search(plain, SearchRequest(query="camels"), plain.vocabulary())
    assert sorted(h["id"] for h in found.hits) == ["one", "two"] and found.total == 2


def test_the_watcher_records_the_folder_times_so_a_command_without_it_need_not_list_them(watched):
    from counterbrief.state import current_folder, listing, observe_folders, read_stat_table, stat_signature

    root = watched.root
    home = root / ".counterbrief"

    def after_update(change):
        before = stat_signature(current_folder(home))
        change()
        for _ in range(200):   # the watcher writes stat.bin by itself, once no command has come for a moment
            if stat_signature(current_folder(home)) != before:
                return read_stat_table(current_folder(home))[1]
            time.sleep(0.05)
        raise AssertionError("the watcher did not write stat.bin")

    table = after_update(lambda: watched.story("one", body="Camels crossed the border twice."))
    assert table.folders is not None and table.lists_as(observe_folders(root))
    assert table.rels() == listing(root)
    table = after_update(lambda: watched.story("three", body="A new one."))
    # A new file: the folder's time is new (and racy, so soon after): never taken as a match while
    # it is, and whatever was recorded names exactly the files there are.
    assert "stories/three.md" in table.rels() and table.rels() == listing(root)
    assert same_answers(root, ("search", "camels", "--json"), ("stats", "--json"))


def test_the_watcher_compares_only_the_changed_paths_and_its_index_stays_what_a_full_scan_gives(make_archive):
    """After the first update the watcher hands the index only the paths that changed (state.Scan.since),
    so an edit costs no loop over the whole table; the manifest must still equal a full scan after
    edits, new files, deletions and a source change, and a fresh process must find nothing to take in."""
    from counterbrief.index import Index
    from counterbrief.load import scan_archive

    with in_process_watcher(make_archive) as (archive, server):
        make_archive.story("two", body="More camels.")
        for change in (lambda: make_archive.story("one", body="Camels at night."),
                       lambda: make_archive.story("three", body="Camels again."),
                       lambda: (make_archive.root / "stories" / "two.md").unlink(),
                       lambda: (make_archive.root / "sources" / "src.txt").write_text("Nothing quoted here.\n"),
                       lambda: make_archive.story("one", body="Camels by day.")):
            change()
            seen = server._last_token
            report = server.bring_up_to_date()
            assert report.total >= 0
            server.finish()
            kept = server.index._manifest[2]
            assert kept.synced is server._last_token and server._last_token is not seen
            assert kept.stat == dict(scan_archive(archive))
        assert warm_camels(server, archive) == []          # the source no longer holds the quote
        after = Index(archive).fresh()                       # a fresh process: nothing to take in
        assert (after.indexed, after.removed, after.rebuilt) == (0, 0, False)


def test_an_edit_that_comes_before_the_last_updates_tables_are_written_takes_over_from_it(make_archive):
    """Edits in quick succession: the second update does not first write the tables the first one
    deferred (at 100,000 stories ~250 ms); it goes on from the manifest in memory, and the tables are
    written once, for both. Nothing may be lost: the index then matches a full scan, a fresh
    process finds nothing to take in, and the lock is free again."""
    from filelock import FileLock

    from counterbrief.index import Index
    from counterbrief.load import scan_archive
    from counterbrief.state import current_folder, stat_signature

    with in_process_watcher(make_archive) as (archive, server):
        server.finish()
        folder = current_folder(server.index.home)
        written = stat_signature(folder)
        make_archive.story("two", body="Camels at dusk.")
        assert server.bring_up_to_date().total >= 0           # its tables are left for later
        make_archive.story("three", body="Camels at dawn.")
        (make_archive.root / "stories" / "one.md").unlink()
        assert server.bring_up_to_date().total >= 0           # takes over from the first
        assert stat_signature(folder) == written              # nothing written in between
        assert warm_camels(server, archive) == ["three", "two"]
        server.finish()
        assert stat_signature(folder) != written
        assert server.index._manifest[2].stat == dict(scan_archive(archive))
        FileLock(str(server.index.home / "lock"), timeout=1).acquire()   # released
        after = Index(archive).fresh()
        assert (after.indexed, after.removed, after.rebuilt) == (0, 0, False)


def test_a_command_that_comes_while_the_watcher_writes_the_tables_waits_for_one_step_not_all_and_nothing_is_lost(
        make_archive):
    """Between commands the watcher writes an update's tables a step at a time (manifest.bin, the
    listing, stat.bin, then merges small segments) and stops between them when a command comes: at 100,000 stories in one file each, the
    whole of it made the search right after an edit wait 5x. An edit then takes over from what is
    left; the tables are written again after it, and nothing is lost."""
    from filelock import FileLock

    from counterbrief.index import Index
    from counterbrief.load import scan_archive
    from counterbrief.state import current_folder, stat_signature

    with in_process_watcher(make_archive) as (archive, server):
        server.finish()
        folder = current_folder(server.index.home)
        written, manifest_written = stat_signature(folder), (folder / "manifest.bin").stat().st_mtime_ns
        make_archive.story("two", body="Camels at dusk.")
        assert server.bring_up_to_date().total >= 0
        time.sleep(0.01)
        assert server.index.finish(step=True) is True            # one step: manifest.bin
        assert len(server.index._finish.steps) == 3              # then the listing, stat.bin, the merge
        assert (folder / "manifest.bin").stat().st_mtime_ns != manifest_written
        assert stat_signature(folder) == written                 # stat.bin still the one before
        make_archive.story("three", body="Camels at dawn.")
        (make_archive.root / "stories" / "one.md").unlink()
        assert server.bring_up_to_date().total >= 0             # takes over from what was left
        assert warm_camels(server, archive) == ["three", "two"]
        a, b = socket.socketpair()                              # no command waiting: all of it is written
        with a, b:
            for _ in range(3):   # (it stops for the file events of the edits too, until they are drained)
                server.changes.drain()
                server.finish_between(a)
        assert server.index._finish is None and stat_signature(folder) != written
        assert server.index._manifest[2].stat == dict(scan_archive(archive))
        FileLock(str(server.index.home / "lock"), timeout=1).acquire()   # released
        after = Index(archive).fresh()
        assert (after.indexed, after.removed, after.rebuilt) == (0, 0, False)


def test_the_watcher_stops_writing_the_tables_between_two_steps_when_a_command_is_waiting(make_archive):
    with in_process_watcher(make_archive) as (archive, server):
        server.finish()
        make_archive.story("two", body="Camels at dusk.")
        assert server.bring_up_to_date().total >= 0
        a, b = socket.socketpair()
        with a, b:
            b.send(b"x")                                          # a command knocks
            server.finish_between(a)
            assert server.index._finish is not None and len(server.index._finish.steps) == 3
            a.recv(1)
            for _ in range(3):
                server.changes.drain()
                server.finish_between(a)
        assert server.index._finish is None
        assert warm_camels(server, archive) == ["one", "two"]


def test_the_watchers_kept_readers_see_every_edit_and_deletion_and_its_small_segments_are_merged_between_commands(
        make_archive):
    """The watcher keeps each segment's reader from one command to the next and commits an edit's
    segment without merging; small segments are merged between commands. An edit deletes the old
    document inside a segment whose reader is kept: the answers must still be a fresh process's,
    with no document found twice or after its deletion, and readers of merged-away segments closed."""
    from counterbrief.index import Index
    from counterbrief.search import SearchRequest, search

    def everything(index):
        found = search(index, SearchRequest(query="camels", limit=0), index.vocabulary())
        return found.total, sorted((h["id"], h["title"]) for h in found.hits)

    with in_process_watcher(make_archive) as (archive, server):
        server.finish()
        expected = {"one"}
        most = 0
        for i in range(9):
            make_archive.story("one", body=f"Camels at hour {i}.", title=f"Hour {i}")   # an edit
            make_archive.story(f"new{i}", body="Camels again.")                          # a new file
            expected.add(f"new{i}")
            if i % 3 == 2:
                (make_archive.root / "stories" / f"new{i - 1}.md").unlink()              # a deletion
                expected.discard(f"new{i - 1}")
            report = server.bring_up_to_date()
            assert report.total >= 0
            kept = dict(server.index._readers)
            warm = everything(server.warm(archive)[0])
            assert warm[0] == len(expected) and {sid for sid, _ in warm[1]} == expected
            assert ("one", f"Hour {i}") in warm[1]
            most = max(most, len(server.index._readers))
            server.finish()                                   # the tables, then the merge
            server.warm(archive)
            live = server.index._readers
            assert all(reader.is_closed for sid, reader in kept.items() if sid not in live)
            assert not any(reader.is_closed for reader in live.values())
            assert all(reader.doc_count() > 0 for reader in live.values())   # emptied segments left out
            assert everything(server.warm(archive)[0]) == warm == everything(Index(archive))
        assert most >= 5 and len(server.index._readers) < 5   # segments gathered, and were merged


def test_the_watcher_pools_a_small_update_in_memory_and_a_large_one_on_disk(make_archive, monkeypatch):
    """An edit's commit in the watcher keeps whoosh's pool of postings in memory instead of a folder
    made and removed inside the watched tree; an update of many files (a checkout) keeps the folder,
    whose runs on disk bound the watcher's memory."""
    from whoosh import writing
    from whoosh.filedb.filestore import RamStorage

    from counterbrief import index as cbi

    pools = []
    made = writing.SegmentWriter.__init__

    def recording(self, *args, **kwargs):
        made(self, *args, **kwargs)
        pools.append(type(self._tempstorage))

    monkeypatch.setattr(writing.SegmentWriter, "__init__", recording)
    with in_process_watcher(make_archive) as (archive, server):
        server.finish()
        pools.clear()
        make_archive.story("one", body="Camels at dusk.")
        assert server.bring_up_to_date().total >= 0
        assert pools == [RamStorage]
        server.finish()
        pools.clear()
        for i in range(cbi.SMALL_UPDATE + 1):
            make_archive.story(f"many{i}", body="Camels in a caravan.")
        assert server.bring_up_to_date().total >= 0
        assert pools and RamStorage not in pools
        server.finish()
        from counterbrief.search import SearchRequest, search

        index, _ = server.warm(archive)
        assert search(index, SearchRequest(query="camels"), index.vocabulary()).total == cbi.SMALL_UPDATE + 2


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the index folders are left out on inotify (Linux)")
def test_the_watcher_hears_nothing_of_its_own_index_folders_but_every_story_change_and_its_sentinel(
        make_archive, monkeypatch):
    """The index folders inside .counterbrief/ hold only the watcher's own writing: their events
    (dozens for each edit's commit) no longer reach it. The sentinel written in .counterbrief/
    itself still comes back, and a story edited or added in stories/ is still heard of and found."""
    from counterbrief import watch
    from counterbrief.state import current_folder

    heard = []
    dispatch = watch._Handler.dispatch

    def recording(self, event):
        heard.append(os.fsdecode(event.src_path))
        dispatch(self, event)

    monkeypatch.setattr(watch._Handler, "dispatch", recording)
    with in_process_watcher(make_archive) as (archive, server):
        server.finish()
        folder = str(current_folder(server.index.home))
        heard.clear()
        make_archive.story("one", body="Camels at dusk.")
        make_archive.story("three", body="Camels at dawn.")
        assert server._sync()   # the sentinel came back, behind the edits
        assert server.bring_up_to_date().indexed == 2
        server.finish()   # the tables, the facet files, a merge: all written inside the index folder
        assert server._sync()
        assert warm_camels(server, archive) == ["one", "three"]
        assert any(path.endswith("stories/one.md") for path in heard)
        assert any(path.endswith(watch.SENTINEL) for path in heard)
        assert os.listdir(folder) and not [path for path in heard if path.startswith(folder)], heard


def test_the_watcher_collects_garbage_between_commands_and_gives_the_collector_back_when_it_stops(
        make_archive, monkeypatch):
    """While it serves, no collection runs in the middle of an update or an answer: the young
    generations are collected once an answer is sent, and everything once nothing has come for a
    while. When it stops, automatic collection is back on (a process that ran it goes on as before)."""
    import gc

    from counterbrief import load, watch
    from counterbrief.state import index_home

    make_archive.story("one", body="Camels.")
    archive = load.find_archive(make_archive.root, None, make_archive.root)
    home = str(index_home(archive))
    server = watch.Server(archive, idle=60)
    server.finish_after = 0.05
    collected, during = [], []
    collect, run = gc.collect, server._run

    def recording_collect(generation=2):
        collected.append(generation)
        return collect(generation)

    def recording_run(msg):
        during.append(gc.isenabled())
        return run(msg)

    monkeypatch.setattr(gc, "collect", recording_collect)
    monkeypatch.setattr(server, "_run", recording_run)
    ready = threading.Event()
    thread = threading.Thread(target=server.serve, args=(ready.set,), daemon=True)
    thread.start()
    assert ready.wait(60)
    try:
        collected.clear()
        make_archive.story("two", body="Camels again.")
        argv = ["--archive", str(archive.root), "search", "camels", "--json"]
        reply = watch.request(home, {"op": "run", "root": str(archive.root), "argv": argv}, timeout=60)
        assert reply["op"] == "ran" and sorted(h["id"] for h in json.loads(reply["stdout"])["hits"]) == ["one", "two"]
        assert during == [False]
        for _ in range(100):   # the young generations after the answer, then all once idle
            if 1 in collected and 2 in collected:
                break
            time.sleep(0.05)
        assert collected[0] == 1 and 2 in collected, collected
    finally:
        watch.request(home, {"op": "stop"}, timeout=10)
        thread.join(30)
    assert not thread.is_alive() and gc.isenabled()
