"""Scale: the build and check stream with bounded memory; selection and stats read columns; the
freshness probe compares compact tables, a share per core."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import synth  # noqa: E402

from counterbrief import load, parallel, state  # noqa: E402
from counterbrief.search import Index, gated_profiles  # noqa: E402


# ------------------------------------------------------------------ bounded memory

_PRODUCED = None


def _init_counter(counter):
    global _PRODUCED
    _PRODUCED = counter


def _produce(i):
    with _PRODUCED.get_lock():
        _PRODUCED.value += 1
    return i


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the pool forks")
def test_the_workers_never_run_more_than_two_windows_ahead_of_a_slow_consumer():
    import multiprocessing
    import time

    counter = multiprocessing.get_context("fork").Value("i", 0)
    window = 50
    results = parallel.ordered_map(_produce, list(range(1000)), _init_counter, (counter,), parallel=True, window=window)
    consumed = 0
    for i in results:
        assert i == consumed            # in order
        consumed += 1
        if consumed % 100 == 0:
            time.sleep(0.05)            # the consumer (the index writer) is the slow side
            assert counter.value - consumed <= 2 * window
    assert consumed == 1000


BUILD_MEMORY = """
import resource, subprocess, sys
subprocess.run([sys.executable, "-c", "from counterbrief.cli import run; import sys; "
                "sys.argv = ['counterbrief', '--archive', sys.argv[1], 'index', '--rebuild']; run()", sys.argv[1]],
               check=True, capture_output=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux")
def test_a_full_build_of_a_generated_archive_stays_within_bounded_memory(tmp_path):
    """2,000 stories take the parallel path (pool of parsers, two whoosh writer processes). Each
    process stays far below what keeping every parsed story would cost at 100,000 (1.2 GB)."""
    root = synth.make_archive(tmp_path / "a", 2000, words_per_story=200)
    out = subprocess.run([sys.executable, "-c", BUILD_MEMORY, str(root)], capture_output=True, text=True, check=True)
    largest_mb = int(out.stdout.strip()) / 1024      # the largest process of the build, children included
    assert largest_mb < 250, f"the largest process of the build reached {largest_mb:.0f} MB"
    archive = load.find_archive(root, None, root)
    assert Index(archive).fresh().total == -1         # what was built is the archive as it is


def test_check_finds_the_same_problems_as_loading_the_whole_archive(make_archive):
    from counterbrief.validate import check_archive, load_archive

    make_archive.story("one")
    make_archive.story("two", id="one")                       # a duplicate id
    make_archive.story("bad", raw="---\nid: [unclosed\n---\n")
    make_archive.story("three", themes=["no-such-theme"])
    archive = load.find_archive(make_archive.root, None, make_archive.root)
    streamed, loaded = check_archive(archive), load_archive(archive)
    assert [str(p) for p in streamed.problems] == [str(p) for p in loaded.problems]
    assert (streamed.good, streamed.bad_files) == (len(loaded.stories), loaded.bad_files)


# ------------------------------------------------------------------ columns

def test_brief_selection_reads_from_columns_what_the_stored_fields_say(fixture_archive):
    archive = load.find_archive(fixture_archive, None, fixture_archive)
    index = Index(archive)
    index.fresh()
    profiles = gated_profiles(index, {"public", "internal"}, include_synthetic=True)
    assert profiles
    ix, searcher = index.open()
    with searcher:
        stored = {m["id"]: m for m in (f["meta"] for f in searcher.all_stored_fields())}
    for p in profiles:
        meta = stored[p["id"]]
        for key in ("id", "path", "speaker", "snapshot", "origin", "language", "themes", "all_themes", "group",
                    "year", "status", "sensitivity", "synthetic", "quote_meta"):
            assert p[key] == meta[key], key
        assert p["status"] == "approved" and p["sensitivity"] in ("public", "internal")


def test_stats_and_selection_never_read_stored_fields_or_the_manifest(fixture_archive, monkeypatch):
    from counterbrief import index as index_module
    from counterbrief.facets import story_profiles

    archive = load.find_archive(fixture_archive, None, fixture_archive)
    index = Index(archive)
    index.fresh()
    ix, searcher = index.open()

    def refuse(*args, **kwargs):
        raise AssertionError("read the whole table")

    monkeypatch.setattr(index_module.Manifest, "read", classmethod(refuse))
    from whoosh import reading
    for cls in (reading.SegmentReader, reading.MultiReader):
        monkeypatch.setattr(cls, "stored_fields", refuse)
    profiles, bad = story_profiles(Index(archive))
    assert profiles and bad == 0
    assert gated_profiles(Index(archive), {"public"}, include_synthetic=True)


# ------------------------------------------------------------------ the freshness probe

@pytest.mark.skipif(not hasattr(os, "fork"), reason="the probe forks")
@pytest.mark.parametrize("which", [0, 1, 2])
def test_a_probe_split_over_the_cores_sees_a_change_in_any_share(make_archive, monkeypatch, which):
    from counterbrief import early

    for i in range(6):
        make_archive.story(f"s{i}")
    make_archive.settle()
    archive = load.find_archive(make_archive.root, None, make_archive.root)
    Index(archive).fresh()
    monkeypatch.setattr(early, "SPLIT_FROM_BYTES", 0)   # split even this small archive
    verdict = state.Probe(archive).verdict()
    assert verdict.fresh and verdict.scan is None
    names = state.listing(archive.root)
    edited = archive.root / names[1 + which]             # a file of one share or another
    edited.write_text(edited.read_text() + "\n")
    verdict = state.Probe(archive).verdict()
    assert not verdict.fresh
    assert verdict.scan == load.scan_archive(archive)    # the whole table, put together from the shares


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the probe forks")
def test_the_probe_and_the_plain_scan_list_the_same_files_so_neither_finds_the_other_s_index_stale(
        make_archive, tmp_path, monkeypatch):
    from counterbrief import early

    make_archive.story("a")
    make_archive.story("b")
    root = make_archive.root
    outside = tmp_path / "outside.txt"
    outside.write_text("elsewhere")
    (root / "stories" / ".#a.md").symlink_to("user@host.123")      # an editor's lock file
    (root / "stories" / "folder.md").mkdir()                       # a folder named like a story
    (root / "sources" / "old").mkdir()                             # a folder among the sources
    (root / "sources" / "in.txt").symlink_to(root / "sources" / "src.txt")
    (root / "sources" / "out.txt").symlink_to(outside)
    (root / "sources" / "broken.txt").symlink_to(root / "sources" / "gone.txt")
    (root / "sources" / "dirlink").symlink_to(root / "sources" / "old")
    make_archive.settle()
    settled = (os.stat(root / "vocabulary.yml").st_mtime_ns,) * 2   # settle() dates files only, not links or folders
    for entry in [root / "stories" / "folder.md", root / "sources" / "old", root / "stories" / ".#a.md",
                  *(root / "sources" / name for name in ("in.txt", "out.txt", "broken.txt", "dirlink"))]:
        os.utime(entry, ns=settled, follow_symlinks=False)
    archive = load.find_archive(root, None, root)
    assert (root / "counterbrief.yml").exists()
    assert state.listing(root) == sorted(load.scan_archive(archive))
    # The watcher's table, kept one changed path at a time, records every path as the scan does.
    every = [f"{sub}/{name}" for sub in ("stories", "sources") for name in os.listdir(root / sub)]
    one_at_a_time = {rel: state.table_entry(root, rel) for rel in [*every, "counterbrief.yml", "vocabulary.yml", "x.md"]}
    assert {rel: e for rel, e in one_at_a_time.items() if e is not None} == load.scan_archive(archive)
    monkeypatch.setattr(early, "SPLIT_FROM_BYTES", 0)
    for build_with_probe in (False, True):
        index = Index(archive)
        if build_with_probe:
            verdict = state.Probe(archive).verdict()
            index.fresh(scan=verdict.scan if verdict and verdict.scan else load.scan_archive(archive))
        else:
            index.fresh()
        built = index._current()
        verdict = state.Probe(archive).verdict()
        assert verdict.fresh, "the probe found the index stale on an unchanged archive"
        assert Index(archive).fresh().total == -1, "the plain scan found the index stale"
        assert Index(archive).fresh(scan=state.Probe(archive).verdict().scan or load.scan_archive(archive)).total == -1
        assert Index(archive)._current() == built, "the index was rebuilt on an unchanged archive"


def _probe_listings(monkeypatch):
    """Split the probe over two children and count, in a file, how often a child lists the folders."""
    import tempfile

    from counterbrief import early

    monkeypatch.setattr(early, "SPLIT_FROM_BYTES", 0)
    marks = Path(tempfile.mkdtemp()) / "listed"
    real = state.listing

    def counted(root):
        with open(marks, "a") as f:
            f.write("x")
        return real(root)
    monkeypatch.setattr(state, "listing", counted)   # the children are forked: they inherit it
    return lambda: len(marks.read_text()) if marks.exists() else 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the probe forks")
def test_the_probe_lists_the_folders_only_when_their_times_changed_and_still_sees_every_edit(
        make_archive, monkeypatch):
    for i in range(4):
        make_archive.story(f"s{i}")
    root = make_archive.root
    (root / ".counterbrief").mkdir()   # made by the first index: it changes the top folder's time
    make_archive.settle()
    for folder in (root, root / "stories", root / "sources"):
        os.utime(folder, ns=(os.stat(root / "vocabulary.yml").st_mtime_ns,) * 2)
    archive = load.find_archive(root, None, root)
    Index(archive).fresh()
    listed = _probe_listings(monkeypatch)
    assert state.Probe(archive).verdict().fresh and listed() == 0     # names taken from stat.bin
    story = root / "stories" / "s1.md"
    story.write_text(story.read_text().replace("synthetic summary", "synthetic summarx"))
    verdict = state.Probe(archive).verdict()
    assert not verdict.fresh and listed() == 0                         # an edit: seen by its stat alone
    settled = os.stat(root / "vocabulary.yml").st_mtime_ns
    os.utime(story, ns=(settled - 10**9,) * 2)   # else written within a clock tick of the update: racy
    Index(archive).fresh()                                             # the plain scan lists: 1
    new = make_archive.story("new")                                    # a new file changes the folder's time
    os.utime(new, ns=(settled, settled))
    soon = time.time_ns() + 10**9                                      # "within a clock tick of now", surely
    os.utime(root / "stories", ns=(soon, soon))
    verdict = state.Probe(archive).verdict()
    assert not verdict.fresh and "stories/new.md" in verdict.scan and listed() == 1 + 2
    Index(archive).fresh(scan=verdict.scan)   # the folder changed within a clock tick: recorded as racy
    assert state.read_stat_table(Index(archive)._current())[1].folders[2][1] == state.RACY
    assert state.Probe(archive).verdict().fresh and listed() == 3 + 2  # so listed again, every time
    (root / "stories" / "s2.md").unlink()
    verdict = state.Probe(archive).verdict()
    assert not verdict.fresh and "stories/s2.md" not in verdict.scan


def test_a_scan_keeps_its_folder_times_only_while_it_names_exactly_the_files_recorded(make_archive, tmp_path):
    make_archive.story("a")
    archive = load.find_archive(make_archive.root, None, make_archive.root)
    scan = load.scan_archive(archive)
    assert scan.folders is not None and dict(scan) == scan
    folder = tmp_path / "ix"
    folder.mkdir()
    state.write_stat(folder, dict(scan), scan)
    assert state.read_stat_table(folder)[1].folders == scan.folders
    fewer = dict(scan)
    fewer.pop("stories/a.md")
    state.write_stat(folder, fewer, scan)
    assert state.read_stat_table(folder)[1].folders is None
    state.write_stat(folder, dict(scan), dict(scan))   # a copy has no folder times
    assert state.read_stat_table(folder)[1].folders is None
    kept = state.Scan(scan)                            # the watcher's table: listed when written
    kept.list_at_write = archive.root
    state.write_stat(folder, dict(kept), kept)
    assert state.read_stat_table(folder)[1].folders == state.observe_folders(archive.root)
    make_archive.story("b")                            # a file its table does not hold
    state.write_stat(folder, dict(kept), kept)
    assert state.read_stat_table(folder)[1].folders is None


def test_stat_bin_holds_sorted_paths_and_two_arrays(make_archive):
    make_archive.story("b")
    make_archive.story("a")
    make_archive.settle()
    archive = load.find_archive(make_archive.root, None, make_archive.root)
    index = Index(archive)
    index.fresh()
    _, table = state.read_stat_table(index._current())
    assert table.rels() == sorted(load.scan_archive(archive))
    assert table.as_dict() == load.scan_archive(archive)
    assert table.sizes.typecode == "q"


def test_the_console_script_finds_an_edit_made_just_before_it_runs(make_archive):
    make_archive.story("one", body="Camels.")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("COUNTERBRIEF_")},
           "COUNTERBRIEF_NO_WATCH": "1"}
    cmd = [sys.executable, "-c", "import sys; from counterbrief.entry import run; run()",
           "--archive", str(make_archive.root), "search", "camels", "--json"]
    first = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    assert [h["id"] for h in json.loads(first.stdout)["hits"]] == ["one"]
    make_archive.story("two", body="More camels.")
    second = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    assert sorted(h["id"] for h in json.loads(second.stdout)["hits"]) == ["one", "two"]


# ------------------------------------------------------------------ stats from the tally

def _slow_tally(index):
    from counterbrief.facets import profiles_tally, story_profiles

    return profiles_tally(story_profiles(index)[0])


def test_the_stored_tally_equals_counting_every_story_over_edits_deletions_and_new_files(make_archive):
    from counterbrief.facets import _live, read_tally

    for i in range(6):
        make_archive.story(f"s{i}", themes=["regret", "recruitment"] if i % 2 else ["suppression-of-dissent"],
                           status="approved" if i % 3 else "draft",
                           speaker={"alias": f"Speaker {i}", "role": "fighter", "origin": f"Place {i % 2}"},
                           sensitivity="public" if i < 4 else "internal", synthetic=i == 5)
    archive = load.find_archive(make_archive.root, None, make_archive.root)
    edits = [
        lambda: make_archive.story("s1", themes=["harsh-living-conditions"], synthetic=False,
                                   speaker={"alias": "Speaker 1", "role": "fighter", "origin": "Elsewhere"}),
        lambda: (make_archive.root / "stories" / "s2.md").unlink(),
        lambda: make_archive.story("s7", themes=["regret"], status="approved", synthetic=False),
        lambda: (make_archive.root / "stories" / "s0.md").rename(make_archive.root / "stories" / "s0-moved.md"),
        lambda: make_archive.story("s3", raw="---\nid: [broken\n---\n"),
    ]
    for edit in [lambda: None, *edits]:
        edit()
        index = Index(archive)
        index.fresh()
        stored = read_tally(index._current())
        assert stored is not None
        assert stored == _slow_tally(Index(archive))
        _, searcher = Index(archive).open()
        with searcher:
            assert _live(searcher.reader()) == sorted(searcher.reader().all_doc_ids())
    assert stored["stories"] == 4   # s1, s4, s5, s7; s2 gone, s3 broken, s0 moved under another name than its id
    assert stored["theme"]["harsh-living-conditions"] == 1 and stored["origin"]["Elsewhere"] == 1
    assert stored["usable_theme"] == {"harsh-living-conditions": 1, "regret": 1}   # s1, s7 (s4 is internal)
    assert stored["status"] == {"approved": 4} and stored["sensitivity"] == {"internal": 2, "public": 2}


def test_a_tally_written_for_another_commit_is_not_believed(make_archive):
    from counterbrief.facets import archive_tally, read_tally

    make_archive.story("a")
    make_archive.story("b", status="draft")
    archive = load.find_archive(make_archive.root, None, make_archive.root)
    index = Index(archive)
    index.fresh()
    folder = index._current()
    data = (folder / "tally.bin").read_bytes()
    make_archive.story("c")
    index.fresh()
    (folder / "tally.bin").write_bytes(data)      # as if the process died between commit and tally
    assert read_tally(folder) is None
    assert archive_tally(Index(archive))["stories"] == 3
    (folder / "tally.bin").write_bytes(b"garbage")
    assert read_tally(folder) is None
    assert archive_tally(Index(archive)) == _slow_tally(Index(archive))


def test_stats_and_themes_import_no_whoosh_on_a_fresh_index(make_archive):
    make_archive.story("one")
    make_archive.settle()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("COUNTERBRIEF_")},
           "COUNTERBRIEF_NO_WATCH": "1"}
    base = [sys.executable, "-c", "import sys; from counterbrief.entry import run; run()", "--archive",
            str(make_archive.root)]
    subprocess.run([*base, "index"], check=True, capture_output=True, env=env)
    probe = ("import sys, atexit, os\n"
             "from counterbrief import cli\n"
             "sys.argv = ['counterbrief', '--archive', sys.argv[1], *sys.argv[2:]]\n"
             "try:\n    cli.main()\n"
             "except SystemExit:\n    pass\n"
             "print('WHOOSH' if any(m.startswith('whoosh') for m in sys.modules) else 'NO-WHOOSH')\n")
    for args in (["stats", "--json"], ["themes", "--json"]):
        out = subprocess.run([sys.executable, "-c", probe, str(make_archive.root), *args], capture_output=True,
                             text=True, env=env, check=True).stdout
        assert out.rstrip().endswith("NO-WHOOSH"), args
        assert '"stories": 1' in out or args[0] == "themes"


def test_an_update_writes_the_facet_values_of_its_new_segment_only_and_a_damaged_one_is_read_from_the_column(
        make_archive):
    from counterbrief.search import SearchRequest, search

    for i in range(3):
        make_archive.story(f"s{i}", themes=["regret"])
    archive = load.find_archive(make_archive.root, None, make_archive.root)
    index = Index(archive)
    index.fresh()
    folder = index._current()
    first = {p.name: p.stat().st_ino for p in folder.glob("facets-*.bin")}
    assert first
    make_archive.story("s3", themes=["recruitment"])
    Index(archive).fresh()
    second = {p.name: p.stat().st_ino for p in folder.glob("facets-*.bin")}
    assert set(first) < set(second) and all(second[name] == ino for name, ino in first.items())
    for path in folder.glob("facets-*.bin"):
        path.write_bytes(b"\x00damaged")
    found = search(Index(archive), SearchRequest(query="*", facets=True), Index(archive).vocabulary())
    assert found.facets["themes"] == {"regret": 3, "recruitment": 1}


def test_an_update_that_adds_or_drops_a_protected_name_rewrites_what_every_output_is_redacted_with(make_archive):
    from counterbrief.search import SearchRequest, search

    make_archive.story("teller", body="Camels, said Karim Zed.")
    make_archive.story("other", body="More camels.")
    archive = load.find_archive(make_archive.root, None, make_archive.root)
    Index(archive).fresh()
    assert not Index(archive).redactor().finds("Karim Zed")
    make_archive.story("other", body="More camels.", redact=["Karim Zed"])      # a name added by an edit
    index = Index(archive)
    index.fresh()
    assert index.redactor().finds("Karim Zed")
    found = search(index, SearchRequest(query="camels"), index.vocabulary())
    assert "Karim" not in json.dumps([h.get("snippet") for h in found.hits])
    make_archive.story("plain", body="Nothing.")                                  # an update that changes no list
    Index(archive).fresh()
    assert Index(archive).redactor().finds("Karim Zed")
    (make_archive.root / "stories" / "other.md").unlink()                          # the list goes with its story
    Index(archive).fresh()
    assert not Index(archive).redactor().finds("Karim Zed")


def test_a_brief_decoding_only_what_its_messages_can_take_picks_exactly_what_it_picks_from_every_account(
        tmp_path, monkeypatch):
    from click.testing import CliRunner

    from counterbrief import facets
    from counterbrief.cli import main

    root = synth.make_archive(tmp_path / "a", 300)
    (root / "recipes" / "mixed.yml").write_text(
        "title: Mixed\ndate: '2026-12-01'\naudience: {language: en}\nmax_accounts_per_message: 3\nmessages:\n"
        f"  - text: One\n    themes: [{synth.THEMES[0]}]\n    query: propaganda\n"
        "  - text: Two, a query and no theme\n    query: executed\n"
        "  - text: Three, a pin\n    query: hunger\n    quotes: ['synthetic-000005#2']\n"
        f"  - text: Four\n    themes: [{synth.THEMES[3]}, {synth.THEMES[7]}]\n", encoding="utf-8")
    args = ["--archive", str(root), "brief", str(root / "recipes" / "mixed.yml"), "--include-synthetic",
            "--format", "json"]
    narrowed = CliRunner().invoke(main, args)
    assert narrowed.exit_code == 0, narrowed.output
    seen = []
    everything = facets.gated

    def gated_all(index, levels, include_synthetic, themes=None, ids=None):
        seen.append((themes, ids))
        return everything(index, levels, include_synthetic)

    monkeypatch.setattr(facets, "gated", gated_all)
    whole = CliRunner().invoke(main, args)
    assert whole.exit_code == 0, whole.output
    assert seen and seen[0][0] and "synthetic-000005" in seen[0][1]
    assert narrowed.output == whole.output
    assert len(everything(__import__("counterbrief.search").search.Index(load.find_archive(root, None, root)),
                          {"public"}, True, seen[0][0], seen[0][1])) < 225   # fewer decoded than gated


def _show(root, sid):
    from click.testing import CliRunner

    from counterbrief.cli import main

    return CliRunner().invoke(main, ["--archive", str(root), "show", sid], env={"COUNTERBRIEF_NO_WATCH": "1"})


def test_show_takes_a_fresh_indexs_word_for_a_story_that_passed_check(make_archive, monkeypatch):
    """At 100,000 accounts show must not import jsonschema nor read the snapshot again for a story the
    fresh index took in as it is: the schema check is not run for it."""
    from counterbrief import validate

    make_archive.story("one", body="Camels.")
    assert _show(make_archive.root, "one").exit_code == 0        # builds the index
    calls = []
    real = validate.schema_problems
    monkeypatch.setattr(validate, "schema_problems", lambda *a: calls.append(a) or real(*a))
    result = _show(make_archive.root, "one")
    assert result.exit_code == 0 and "They kill anyone who disagrees." in result.output
    assert calls == []


def test_show_judges_a_story_again_once_it_or_its_snapshot_changed(make_archive):
    """The index's word holds only for the files it saw: an edit that breaks the story, or a snapshot
    that no longer holds the quote, is reported as check reports it, never shown."""
    make_archive.story("one", body="Camels.")
    make_archive.story("two", body="More camels.")
    assert _show(make_archive.root, "one").exit_code == 0
    path = make_archive.story("one", body="Camels.", group=None)        # the schema: group must be text
    result = _show(make_archive.root, "one")
    assert result.exit_code != 0 and "has errors" in result.output and "group" in result.output
    assert "Traceback" not in result.output
    path.unlink()
    make_archive.story("one", body="Camels.")
    assert _show(make_archive.root, "one").exit_code == 0
    (make_archive.root / "sources" / "src.txt").write_text("A snapshot that no longer holds the quote.\n")
    result = _show(make_archive.root, "two")
    assert result.exit_code != 0 and "not verbatim" in result.output


def test_the_manifests_story_table_answers_as_a_loop_over_every_story_would():
    """StoryTable keeps the failed files, the files by snapshot, the passing files by id and the
    protected names as entries change; after any sequence of changes each answer must equal the one
    a loop over all the stories gives."""
    from collections import Counter

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from counterbrief.index import StoryTable

    entry = st.tuples(st.sampled_from(["a", "b", "", "stories/x.md"]), st.booleans(),
                      st.sampled_from(["sources/s1.txt", "sources/s2.txt", ""]),
                      st.lists(st.sampled_from([b"n1", b"n2", b"n3"]), max_size=3).map(tuple))
    op = st.tuples(st.sampled_from(["set", "pop", "ask"]), st.sampled_from([f"stories/{i}.md" for i in range(6)]), entry)

    @settings(max_examples=300, deadline=None)
    @given(start=st.dictionaries(st.sampled_from([f"stories/{i}.md" for i in range(6)]), entry), ops=st.lists(op))
    def run(start, ops):
        table = StoryTable(start)
        plain = dict(start)
        for kind, rel, value in ops:
            if kind == "set":
                table[rel] = plain[rel] = value
            elif kind == "pop":
                assert table.pop(rel, None) == plain.pop(rel, None)
            else:
                table.failed_files()            # made now: later changes keep it up to date
        assert dict(table) == plain
        assert table.failed_files() == {r for r, e in plain.items() if not e[1]}
        assert table.passing() == sum(1 for e in plain.values() if e[1])
        for snapshot in ("sources/s1.txt", "sources/s2.txt", ""):
            assert table.naming_snapshot(snapshot) == {r for r, e in plain.items() if e[2] == snapshot}
        for sid in ("a", "b", "", "stories/x.md"):
            assert table.passed_with_id(sid) == {r for r, e in plain.items() if e[1] and e[0] == sid}
        assert table.name_entries() == {n for e in plain.values() for n in e[3]}
        assert +Counter(table.names) == table.names

    run()
    with pytest.raises(TypeError):
        StoryTable().update({"x": ("a", True, "", ())})


def test_the_probes_children_import_nothing_but_os_marshal_time_and_stat():
    """Each probe child imports counterbrief.state after the fork; typing, pathlib, dataclasses or
    re there cost each child ~25 ms of the two cores the whole command shares (state's imports at
    module level, outside ``if TYPE_CHECKING``, are read from its source)."""
    import ast

    from counterbrief import state

    tree = ast.parse(Path(state.__file__).read_text(encoding="utf-8"))
    top = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            top += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            top.append("." * node.level + (node.module or ""))
    assert set(top) <= {"__future__", "marshal", "os", "time", "stat"}, top
    early = ast.parse(Path(state.__file__).with_name("early.py").read_text(encoding="utf-8"))
    child_imports = {n.module for n in ast.walk(early) if isinstance(n, ast.ImportFrom)}
    assert child_imports <= {"__future__", "state"}, child_imports
