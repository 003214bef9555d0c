"""One bad file never stops the others, in bounded time and memory; a damaged index repairs itself.

The resource cases run the installed command in a child process and read that child's own peak
memory and time from ``os.wait4``: margins are generous (seconds, a few hundred MB), the failures
they guard against took minutes and gigabytes.
"""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from counterbrief import load
from counterbrief.cli import main
from counterbrief.errors import CounterbriefError

from conftest import SOURCE_TEXT

GOOD = "They kill anyone who disagrees."


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


# The command runs as the grandchild of a small Python: a child's peak memory (ru_maxrss) starts from
# the size of the process it was forked from, so forked from pytest it would carry pytest's size.
MEASURE = r"""
import os, subprocess, sys, threading
timeout, report, args = float(sys.argv[1]), sys.argv[2], sys.argv[3:]
proc = subprocess.Popen([sys.executable, "-m", "counterbrief.cli", *args])
timer = threading.Timer(timeout, proc.kill)
timer.start()
_, status, usage = os.wait4(proc.pid, 0)
timer.cancel()
with open(report, "w") as f:
    f.write(f"{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss}")
"""


def measured(*args, timeout: float = 120, env: dict | None = None) -> tuple[int, str, str, float, float]:
    """Run ``counterbrief ARGS`` in a child: (exit code, stdout, stderr, seconds, peak MB of that child)."""
    import tempfile

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "report")
        start = time.monotonic()
        subprocess.run([sys.executable, "-c", MEASURE, str(timeout), report, *map(str, args)], stdout=out, stderr=err,
                       env={**os.environ, **(env or {})}, timeout=timeout + 60)
        seconds = time.monotonic() - start
        code, peak_kb = map(int, open(report).read().split())
        out.seek(0)
        err.seek(0)
        return code, out.read().decode(), err.read().decode(), seconds, peak_kb / 1024   # kilobytes on Linux


def story_text(sid: str, extra: str = "", snapshot: str = "sources/src.txt", quotes: list[str] | None = None) -> str:
    quotes = quotes or [GOOD]
    qs = "".join(f"  - text: {json.dumps(q)}\n" for q in quotes)
    return (f"---\nid: {sid}\ntitle: Synthetic {sid}\nspeaker:\n  alias: Speaker {sid}\ngroup: ISIS\nlanguage: en\n"
            f"themes: [suppression-of-dissent]\nsource:\n  outlet: Test\n  snapshot: {snapshot}\nquotes:\n{qs}"
            f"sensitivity: public\nstatus: approved\nsynthetic: true\n{extra}---\nA synthetic summary.\n")


def searchable(root) -> list[str]:
    result = run("--archive", root, "search", "*", "--json", "--limit", "100")
    assert result.exit_code == 0, result.output
    return sorted(h["id"] for h in json.loads(result.stdout)["hits"])


# ----------------------------------------------------------------------------- YAML

BILLION_LAUGHS = """a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
notes: [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def test_yaml_anchors_and_aliases_are_refused_with_the_line_before_anything_is_built():
    with pytest.raises(CounterbriefError) as e:
        load.load_yaml("id: x\nnotes: &n [a, b]\nother: *n\n", "stories/x.md", first_line=2)
    assert str(e.value).startswith("stories/x.md:3: YAML anchor &n is not allowed; ")
    with pytest.raises(CounterbriefError, match="alias"):   # an alias with no anchor is still no expansion
        load.load_yaml("a: *nothing\n", "x.yml")
    # An '&' in text is no anchor.
    assert load.load_yaml("notes: 'Tom & Jerry'\ntitle: \"A & B\"\n", "x.yml")[0] == {
        "notes": "Tom & Jerry", "title": "A & B"}


def test_deep_nesting_is_one_line_however_deep_and_however_written():
    for deep in ("notes: " + "[" * 500 + "]" * 500 + "\n",
                 "notes: " + "{a: " * 200 + "1" + "}" * 200 + "\n",
                 "notes:\n" + "".join("  " * i + "-\n" for i in range(1, 300))):
        with pytest.raises(CounterbriefError, match=r"^x.yml:\d+: bad YAML: nested more than 32 levels deep"):
            load.load_yaml(deep, "x.yml")
    assert load.load_yaml("notes: [[[a]]]\n", "x.yml")[0] == {"notes": [[["a"]]]}


def test_a_billion_laughs_story_is_one_line_in_seconds_and_the_others_still_work(make_archive):
    make_archive.story("good")
    (make_archive.root / "stories" / "laughs.md").write_text(story_text("laughs", BILLION_LAUGHS), encoding="utf-8")
    code, out, err, seconds, peak = measured("--archive", make_archive.root, "check", timeout=60)
    assert code == 1
    assert out.splitlines() == ["stories/laughs.md:17: YAML anchor &a is not allowed; write the value out in full; "
                                "counterbrief files use no anchors or aliases"]
    assert seconds < 20 and peak < 400, (seconds, peak)
    code, out, err, seconds, peak = measured("--archive", make_archive.root, "search", "kill", "--json", timeout=60)
    assert code == 0, err
    assert [h["id"] for h in json.loads(out)["hits"]] == ["good"]
    assert err.count("skipped stories/laughs.md:17: YAML anchor") == 1
    assert seconds < 20 and peak < 400, (seconds, peak)


def test_a_kilobyte_of_brackets_in_notes_stops_only_that_story(make_archive):
    make_archive.story("good")
    (make_archive.root / "stories" / "deep.md").write_text(
        story_text("deep", "notes: " + "[" * 600 + "]" * 600 + "\n"), encoding="utf-8")
    result = run("--archive", make_archive.root, "check")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "stories/deep.md:17: bad YAML: nested more than 32 levels deep; story, recipe and vocabulary fields nest a "
        "few levels at most; remove the extra brackets or indentation"]
    assert searchable(make_archive.root) == ["good"]
    for command in (["show", "good"], ["stats"], ["themes"], ["brief", "--theme", "suppression-of-dissent",
                                                              "--include-synthetic"]):
        result = run("--archive", make_archive.root, *command)
        assert result.exit_code == 0, (command, result.output)


def test_recipes_and_the_vocabulary_go_through_the_same_guarded_loader(make_archive):
    make_archive.story("good")
    recipe = make_archive.root / "recipes" / "r.yml"
    recipe.write_text("title: &t T\nmessages:\n  - text: *t\n    themes: [regret]\n", encoding="utf-8")
    result = run("--archive", make_archive.root, "check", recipe)
    assert result.exit_code == 1
    assert "r.yml:1: YAML anchor &t is not allowed" in result.stdout
    vocabulary = make_archive.root / "vocabulary.yml"
    vocabulary.write_text(vocabulary.read_text(encoding="utf-8") + "- id: deep\n  synonyms: " + "[" * 100 + "]" * 100
                          + "\n", encoding="utf-8")
    result = run("--archive", make_archive.root, "check")
    assert result.exit_code == 1
    assert "vocabulary.yml:" in result.stdout and "nested more than 32 levels deep" in result.stdout


@pytest.mark.parametrize("value, problem", [
    ("2016-13-01", "month must be in 1..12"), ("2016-02-30", "day is out of range for month"),
    ("9" * 5000, "Exceeds the limit (4300 digits) for integer string conversion: value has 5000 digits")])
def test_a_value_yaml_reads_but_python_cannot_build_is_one_line_for_that_story(make_archive, value, problem):
    make_archive.story("good")
    text = story_text("typo").replace("  outlet: Test\n", f"  outlet: Test\n  published: {value}\n")
    (make_archive.root / "stories" / "typo.md").write_text(text, encoding="utf-8")
    result = run("--archive", make_archive.root, "check")
    assert result.exit_code == 1
    assert result.stdout == (f"stories/typo.md:11: bad YAML: a value cannot be read ({problem}); quote it to keep "
                             "it as text, e.g. '2016-13-01', or correct it\n")
    assert searchable(make_archive.root) == ["good"]


# ----------------------------------------------------------------------------- paths and file kinds

def test_an_id_is_a_slug_so_show_and_brief_read_nothing_outside_stories(make_archive, tmp_path):
    make_archive.story("good")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "evil.md").write_text(story_text("evil"), encoding="utf-8")
    for command in (["show", "../../outside/evil"], ["show", "Good"], ["show", "good/../good"],
                    ["brief", "--theme", "regret", "--id", "../../outside/evil"]):
        result = run("--archive", make_archive.root, *command)
        assert result.exit_code == 2, (command, result.output)
        assert result.stderr.count("\n") == 1 and "is not a story id" in result.stderr
        assert "Speaker evil" not in result.output


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_links_fifos_and_folders_in_stories_are_each_one_line_and_the_rest_works(make_archive, tmp_path):
    root = make_archive.root
    stories = root / "stories"
    make_archive.story("good")
    make_archive.story("target", body="The linked one.")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "evil.md").write_text(story_text("evil"), encoding="utf-8")
    (stories / "evil.md").symlink_to(tmp_path / "outside" / "evil.md")
    (stories / "loop-a.md").symlink_to("loop-b.md")
    (stories / "loop-b.md").symlink_to("loop-a.md")
    (stories / "broken.md").symlink_to("nowhere.md")
    os.mkfifo(stories / "fifo.md")
    (stories / "folder.md").mkdir()
    (stories / ".#good.md").symlink_to("someone@host.1234")   # an editor's lock file: not a story
    expected = {
        "stories/broken.md: story is a broken link; replace the link by the file, or remove it",
        "stories/evil.md: story is a link to a file outside the archive; copy the file into the archive instead",
        "stories/fifo.md: story is a FIFO, not a regular file; only regular files are read; move it out",
        "stories/folder.md: story is a folder, not a regular file; only regular files are read; move it out",
        "stories/loop-a.md: story is a link loop; replace the link by the file, or remove it",
        "stories/loop-b.md: story is a link loop; replace the link by the file, or remove it",
    }
    code, out, err, seconds, _ = measured("--archive", root, "check", timeout=60)
    assert code == 1 and set(out.splitlines()) == expected, out
    for probe in ("1", ""):   # the freshness scan, in the same process and in the forked probe
        code, out, err, seconds, _ = measured("--archive", root, "search", "*", "--json", timeout=60,
                                              env={"COUNTERBRIEF_NO_PROBE": probe})
        assert code == 0, err
        assert sorted(h["id"] for h in json.loads(out)["hits"]) == ["good", "target"]
        assert "Speaker evil" not in out
        if probe:
            assert {line.removeprefix("skipped ") for line in err.splitlines()} == expected
    for command in (["show", "good"], ["stats"], ["themes"], ["index", "--rebuild"]):
        code, out, err, _, _ = measured("--archive", root, *command, timeout=60)
        assert code == 0, (command, err)
    for sid, what in (("evil", "a link to a file outside the archive"), ("fifo", "a FIFO"), ("loop-a", "a link loop")):
        code, out, err, _, _ = measured("--archive", root, "show", sid, timeout=30)
        assert code == 2 and what in err and err.count("\n") == 1, err


def test_a_link_to_a_story_inside_the_archive_is_followed(make_archive):
    make_archive.story("good")
    (make_archive.root / "drafts").mkdir()
    (make_archive.root / "drafts" / "linked.md").write_text(story_text("linked"), encoding="utf-8")
    (make_archive.root / "stories" / "linked.md").symlink_to(make_archive.root / "drafts" / "linked.md")
    assert searchable(make_archive.root) == ["good", "linked"]
    (make_archive.root / "drafts" / "linked.md").write_text(story_text("linked").replace("Speaker linked", "Renamed"),
                                                           encoding="utf-8")
    result = run("--archive", make_archive.root, "show", "linked", "--json")
    assert json.loads(result.stdout)["speaker"]["alias"] == "Renamed"


@pytest.mark.parametrize("snapshot, problem", [
    ("sources/" + "x" * 300, "is too long (over 255 bytes in one name)"),
    ('"sources/a\\0b.txt"', "holds a control character"),
    ("sources/" + "é" * 130, "is too long (over 255 bytes in one name)"),
    ("sources/../../outside.txt", "is outside the archive"),
    ("sources/passwd.txt", "is outside the archive"),
    ("sources/pipe.txt", "snapshot is a FIFO, not a regular file"),
    ("sources", "snapshot is a folder, not a regular file"),
])
def test_a_snapshot_path_no_file_system_takes_is_one_problem_for_that_story(make_archive, tmp_path, snapshot, problem):
    (tmp_path / "outside.txt").write_text(SOURCE_TEXT, encoding="utf-8")
    (make_archive.root / "sources" / "passwd.txt").symlink_to(tmp_path / "outside.txt")
    os.mkfifo(make_archive.root / "sources" / "pipe.txt")
    make_archive.story("good")
    (make_archive.root / "stories" / "bad.md").write_text(story_text("bad", snapshot=snapshot), encoding="utf-8")
    result = run("--archive", make_archive.root, "check")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert all(line.startswith("stories/bad.md:11: ") for line in lines), result.stdout   # that story only
    assert any(line.startswith("stories/bad.md:11: snapshot") and problem in line for line in lines), result.stdout
    assert searchable(make_archive.root) == ["good"]


def test_a_sparse_4_gb_file_in_sources_costs_a_stat_not_a_read(make_archive):
    make_archive.story("good")
    with open(make_archive.root / "sources" / "huge.bin", "wb") as f:
        f.truncate(4 * 1024 ** 3)
    code, out, err, seconds, peak = measured("--archive", make_archive.root, "search", "kill", "--json", timeout=60)
    assert code == 0, err
    assert [h["id"] for h in json.loads(out)["hits"]] == ["good"]
    assert seconds < 15 and peak < 300, (seconds, peak)
    os.utime(make_archive.root / "sources" / "huge.bin", (1, 1))   # touched: the update must not read it either
    code, out, err, seconds, peak = measured("--archive", make_archive.root, "search", "kill", "--json", timeout=60)
    assert code == 0 and seconds < 15 and peak < 300, (seconds, peak, err)


def test_hashing_streams_and_stops_at_the_limit(tmp_path):
    small = tmp_path / "small.txt"
    small.write_bytes(b"abc" * 100_000)
    import hashlib

    assert load.hash_file(small, 10_000_000) == hashlib.sha1(small.read_bytes()).digest()
    assert load.hash_file(small, 1000) == b"size:300000"
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "fifo")
        assert load.hash_file(tmp_path / "fifo", 1000).startswith(b"unreadable:")   # and it did not block


# ----------------------------------------------------------------------------- verbatim at scale

from hypothesis import given, settings, strategies as st  # noqa: E402

from counterbrief import text  # noqa: E402


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="aAbB '\u2019\"\u201c\n\u0130", max_size=8), max_size=12),
       st.text(alphabet="aAbB '\u2019\"\u201c\n\u0130", max_size=60))
def test_all_quotes_at_once_mean_exactly_what_one_quote_at_a_time_means(quotes, snapshot):
    flat = text.normalise(snapshot)
    expected = [text.find_verbatim(q, flat) for q in quotes]
    old = text.PLAIN_SEARCH_BELOW
    try:
        text.PLAIN_SEARCH_BELOW = 0   # the automaton, however small the job
        assert text.find_all_verbatim(quotes, flat) == expected
    finally:
        text.PLAIN_SEARCH_BELOW = old
    assert text.find_all_verbatim(quotes, flat) == expected


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=" \t\n\r\u00a0\u2028\x1c\u2019\u201c\u201dab'\"", max_size=40), st.integers(1, 7))
def test_normalising_a_chunk_at_a_time_gives_what_one_pass_gives(raw, chunk):
    import re

    one_pass = re.sub(r"\s+", " ", raw.translate(text._QUOTES)).strip()
    old = text.NORMALISE_CHUNK
    try:
        text.NORMALISE_CHUNK = chunk
        assert text.normalise(raw) == one_pass
    finally:
        text.NORMALISE_CHUNK = old
    assert text.normalise(raw) == one_pass


def test_quotes_that_are_suffixes_of_each_other_on_a_repetitive_text_stay_bounded_and_right():
    snapshot = "a" * 5_000_000
    quotes = ["a" * n for n in range(1, 200)] + ["b", "A" + "a" * 10, "ab"] + [f"missing {n}" for n in range(2000)]
    start = time.monotonic()
    assert text.find_all_verbatim(quotes, snapshot) == [True] * 199 + [False, True, False] + [False] * 2000
    assert time.monotonic() - start < 8


def big_snapshot(path: Path, lines: int) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for i in range(lines):
            f.write(f"Sentence number {i} says something about topic {i * 7 % 1000}, as the \u201ct\u00e9moin\u201d "
                    "put it.\n")


def test_two_thousand_quotes_against_a_20_mb_snapshot_are_checked_in_seconds(make_archive):
    big_snapshot(make_archive.root / "sources" / "big.txt", 230_000)
    assert 17_000_000 < (make_archive.root / "sources" / "big.txt").stat().st_size < 20_000_000
    # Half of them are not in the snapshot: one search per quote read all 20 MB twice for each
    # of those (both cases of the first letter), 2,000 times over.
    quotes = ([f"number {i * 113 % 230_000} says something" for i in range(999)] + ['topic 14, as the "t\u00e9moin"']
              + [f"number {i * 113 % 230_000} said nothing" for i in range(1000)])
    make_archive.story("good")
    (make_archive.root / "stories" / "many.md").write_text(
        story_text("many", snapshot="sources/big.txt", quotes=quotes), encoding="utf-8")
    assert (make_archive.root / "stories" / "many.md").stat().st_size > 50_000
    code, out, err, seconds, peak = measured("--archive", make_archive.root, "check", timeout=120)
    errors = [line for line in out.splitlines() if ": warning: " not in line]
    assert code == 1 and len(errors) == 1000, out[-500:] + err
    assert out.splitlines()[0].startswith("stories/many.md:") and "quote 1001 is not verbatim" in out
    assert seconds < 12 and peak < 400, (seconds, peak)
    code, out, err, seconds, peak = measured("--archive", make_archive.root, "search", "*", "--json", timeout=120)
    assert code == 0 and [h["id"] for h in json.loads(out)["hits"]] == ["good"], err
    assert seconds < 12 and peak < 400, (seconds, peak)


def test_a_failed_story_is_not_checked_again_until_it_or_its_snapshot_changes(make_archive):
    big_snapshot(make_archive.root / "sources" / "big.txt", 50_000)
    quotes = [f"number {i} says something" for i in range(0, 50_000, 25)] + ["never said"]
    (make_archive.root / "stories" / "many.md").write_text(
        story_text("many", snapshot="sources/big.txt", quotes=quotes), encoding="utf-8")
    make_archive.story("good")
    first = run("--archive", make_archive.root, "search", "kill")
    assert first.exit_code == 0
    assert "skipped stories/many.md:" in first.stderr and "quote 2001 is not verbatim" in first.stderr
    make_archive.story("other", body="An unrelated edit.")
    (make_archive.root / "stories" / "broken.md").write_text("not a story\n", encoding="utf-8")
    second = run("--archive", make_archive.root, "search", "kill")
    assert second.exit_code == 0
    assert "stories/many.md" not in second.stderr   # not checked again
    assert "skipped stories/broken.md:" in second.stderr
    with open(make_archive.root / "sources" / "big.txt", "a", encoding="utf-8") as f:
        f.write("never said\n")
    assert searchable(make_archive.root) == ["good", "many", "other"]


def test_a_failed_story_whose_snapshot_lies_in_a_subfolder_is_found_once_it_arrives(make_archive):
    make_archive.story("good")
    make_archive.story("waiting", source={"snapshot": "sources/later/src.txt"})
    assert searchable(make_archive.root) == ["good"]
    (make_archive.root / "sources" / "later").mkdir()
    (make_archive.root / "sources" / "later" / "src.txt").write_text(SOURCE_TEXT, encoding="utf-8")
    make_archive.story("third")   # any change makes the next command update the index
    assert searchable(make_archive.root) == ["good", "third", "waiting"]


# ----------------------------------------------------------------------------- queries

def _unknown_words(n: int) -> list[str]:
    import random

    rng = random.Random(5)
    return ["".join(rng.choice("bcdfghjklmnpqrstvwxz") for _ in range(8)) for _ in range(n)]


def test_five_thousand_unknown_words_are_refused_in_one_line_not_minutes(fixture_archive):
    start = time.monotonic()
    result = run("--archive", fixture_archive, "search", " OR ".join(_unknown_words(5000)))
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: the query is ") and result.stderr.count("\n") == 1
    words = " OR ".join(_unknown_words(600))[:4900]
    result = run("--archive", fixture_archive, "search", words)
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: the query has ") and "words, over the limit of 200" in result.stderr
    assert time.monotonic() - start < 10


def test_a_long_query_under_the_limits_suggests_for_its_first_words_only(fixture_archive, monkeypatch):
    from counterbrief import search

    asked = []
    real = search._surface
    monkeypatch.setattr(search, "_surface", lambda *a: asked.append(a) or real(*a))
    words = ["emirr"] * 3 + _unknown_words(150) + ["executd"]
    start = time.monotonic()
    result = run("--archive", fixture_archive, "search", " OR ".join(words), "--json")
    assert result.exit_code == 0, result.output
    assert time.monotonic() - start < 20
    suggestion = json.loads(result.stdout)["suggestion"]
    assert suggestion.startswith("emir OR emir OR emir OR ") and suggestion.endswith("OR executd")
    assert len(asked) <= 3


@pytest.mark.parametrize("query", ["(" * 5000 + "emir" + ")" * 5000, "(" * 21 + "emir" + ")" * 21,
                                   "(a OR " * 300 + "b" + ")" * 300])
def test_deeply_nested_parentheses_are_a_bad_query_not_a_recursion_error(fixture_archive, query):
    result = run("--archive", fixture_archive, "search", query)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: parentheses nested ") and result.stderr.count("\n") == 1
    ok = run("--archive", fixture_archive, "search", "(" * 20 + "emir" + ")" * 20, "--json")
    assert ok.exit_code == 0 and json.loads(ok.stdout)["total"] == 1


def test_any_recursion_or_memory_error_in_parsing_is_a_bad_query(fixture_archive, monkeypatch):
    from whoosh import qparser

    for error in (RecursionError, MemoryError):
        def boom(self, text, *a, **kw):
            raise error()

        monkeypatch.setattr(qparser.QueryParser, "parse", boom)
        result = run("--archive", fixture_archive, "search", "emir")
        assert result.exit_code == 2, result.output
        assert "is too complex to parse; use fewer parentheses and operators" in result.stderr


# ----------------------------------------------------------------------------- index repair

def _indexed_copy(fixture_archive, tmp_path, name="damaged") -> tuple[Path, Path]:
    """A copy of an archive whose index is built: (archive, its live index folder)."""
    root = tmp_path / name
    if not (fixture_archive / ".counterbrief").is_dir():
        assert run("--archive", fixture_archive, "index").exit_code == 0
    import shutil

    shutil.copytree(fixture_archive, root, symlinks=True)
    home = root / ".counterbrief"
    return root, home / (home / "current").read_text(encoding="utf-8").strip()


INDEX_FILES = ["*.toc", "*.pst", "*.trm", "*_stored.col", "*_text_en_len.col", "*.facets.col", "*.id.col",
               "*.year.col", "stat.bin", "manifest.bin", "redact.bin", "facets-*.bin", "tally.bin", "vocabulary.bin", "../current",
               "../redact.key"]


def _damage(path: Path, how: str, rng) -> None:
    data = path.read_bytes()
    if how == "missing":
        path.unlink()
        return
    path.write_bytes({"truncate": data[: len(data) // 2], "empty": b"",
                      "random": bytes(rng.randrange(256) for _ in range(max(len(data), 16)))}[how])


@pytest.mark.parametrize("how", ["truncate", "random", "empty", "missing"])
def test_every_kind_of_index_file_damaged_is_repaired_by_the_next_search(fixture_archive, tmp_path, how):
    import random

    rng = random.Random(how)
    for n, pattern in enumerate(INDEX_FILES):
        root, folder = _indexed_copy(fixture_archive, tmp_path, f"{how}-{n}")
        targets = sorted(folder.glob(pattern)) if not pattern.startswith("../") else [folder / pattern]
        assert targets, pattern
        for target in targets:
            _damage(target.resolve(), how, rng)
        for args, check in (
                (["search", "executed", "--json"],
                 lambda out: [h["id"] for h in json.loads(out)["hits"]] == ["synthetic-en-executions"]),
                (["stats", "--json"], lambda out: json.loads(out)["stories"] == 3 and json.loads(out)["quotes"] == 4),
                (["show", "synthetic-en-executions"], lambda out: "[redacted]" in out and "Secret Cousin" not in out),
                (["brief", "--theme", "suppression-of-dissent", "--include-synthetic", "--level", "internal"],
                 lambda out: "**Test Speaker One**, fighter" in out and "[redacted] helped him leave" in out)):
            result = run("--archive", root, *args)
            assert result.exit_code == 0, (pattern, args, result.output)
            assert check(result.stdout), (pattern, args, result.stdout)
            assert result.stderr.count("\n") <= 1, (pattern, args, result.stderr)
            assert "Secret Cousin" not in result.output


def test_index_rebuild_works_whatever_current_holds(fixture_archive, tmp_path):
    for n, content in enumerate([bytes(range(256)), b"", b"../../..", b"index-1-ab/../../stories", b"\x00" * 40]):
        root, folder = _indexed_copy(fixture_archive, tmp_path, f"current-{n}")
        (root / ".counterbrief" / "current").write_bytes(content)
        result = run("--archive", root, "index", "--rebuild")
        assert result.exit_code == 0, (content, result.output)
        assert "index rebuilt in" in result.stderr
        assert sorted(p.name for p in (root / "stories").iterdir()) == [
            "synthetic-ar-dawla.md", "synthetic-en-executions.md", "synthetic-fr-etrangers.md"]
        assert searchable(root) == ["synthetic-ar-dawla", "synthetic-en-executions", "synthetic-fr-etrangers"]


def test_folders_of_killed_builds_are_removed_under_the_lock_and_a_live_build_is_left_alone(fixture_archive, tmp_path):
    root, folder = _indexed_copy(fixture_archive, tmp_path)
    home = root / ".counterbrief"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    living = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = home / f"index-{gone.pid}-0badf00d"
        dead.mkdir()
        (dead / "MAIN_x.seg").write_bytes(b"half a build")
        (home / f".current.{gone.pid}").write_text(dead.name, encoding="utf-8")
        building = home / f"index-{living.pid}-00c0ffee"
        building.mkdir()
        (root / "stories" / "synthetic-fr-etrangers.md").write_text(
            (root / "stories" / "synthetic-fr-etrangers.md").read_text(encoding="utf-8") + "\nEdited.\n",
            encoding="utf-8")
        assert searchable(root) == ["synthetic-ar-dawla", "synthetic-en-executions", "synthetic-fr-etrangers"]
        assert not dead.exists() and not (home / f".current.{gone.pid}").exists()
        assert building.is_dir() and folder.is_dir()   # a build in progress, and the live index
    finally:
        living.kill()
        living.wait()


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("where", ["whoosh segment files", "manifest and stat files"])
def test_a_full_disk_says_disk_full_with_the_folder_and_keeps_the_index(fixture_archive, tmp_path, monkeypatch, where):
    from whoosh.filedb.filestore import FileStorage

    from counterbrief import write

    root, folder = _indexed_copy(fixture_archive, tmp_path)
    home = root / ".counterbrief"
    story = root / "stories" / "synthetic-fr-etrangers.md"
    story.write_text(story.read_text(encoding="utf-8") + "Chameau.\n", encoding="utf-8")
    with monkeypatch.context() as patch:
        if where == "whoosh segment files":
            patch.setattr(FileStorage, "create_file", _enospc)
        else:
            patch.setattr(write, "write_atomic", _enospc)
        for args in (["search", "chameau"], ["index", "--rebuild"]):
            result = run("--archive", root, *args)
            assert result.exit_code == 1, (args, result.output)
            assert result.stderr == (f"Error: disk full: the search index cannot be written in {home}; free some "
                                     "space on that disk and run the command again; the index as it was is kept\n")
            assert sorted(p.name for p in home.glob("index-*")) == [folder.name]   # no half-built folder left
    result = run("--archive", root, "search", "chameau", "--json")
    assert result.exit_code == 0 and [h["id"] for h in json.loads(result.stdout)["hits"]] == ["synthetic-fr-etrangers"]


def test_a_lost_or_damaged_redact_key_never_lets_a_protected_name_through(fixture_archive, tmp_path):
    for n, damage in enumerate(["delete", "random", "short"]):
        root, _ = _indexed_copy(fixture_archive, tmp_path, f"key-{n}")
        key = root / ".counterbrief" / "redact.key"
        if damage == "delete":
            key.unlink()
        else:
            key.write_bytes(os.urandom(16 if damage == "random" else 3))
        for args in (["show", "synthetic-en-executions"], ["brief", "--theme", "suppression-of-dissent",
                                                          "--include-synthetic", "--level", "internal"]):
            result = run("--archive", root, *args)
            assert result.exit_code == 0, result.output
            assert "Secret Cousin" not in result.output and "[redacted]" in result.stdout, (damage, args)


def test_check_reads_a_draft_the_user_names_outside_the_archive_but_not_a_link_to_it_in_stories(make_archive, tmp_path):
    make_archive.story("good")
    draft = tmp_path / "draft.md"
    draft.write_text(story_text("draft"), encoding="utf-8")
    result = run("--archive", make_archive.root, "check", draft)
    assert result.exit_code == 0, result.output
    (make_archive.root / "stories" / "draft.md").symlink_to(draft)
    result = run("--archive", make_archive.root, "check", make_archive.root / "stories" / "draft.md")
    assert result.exit_code == 1
    assert result.stdout == ("stories/draft.md: story is a link to a file outside the archive; copy the file into "
                             "the archive instead\n")


@pytest.mark.parametrize("query, message", [
    ("*a*", "Error: wildcard '*a*' in query '*a*' matches almost every word; give at least two letters with it"),
    ("e* OR emir", "Error: wildcard 'e*' in query 'e* OR emir' matches almost every word"),
    ("ex* OR em* OR pr* OR fo*", "Error: the query has 4 wildcard words, over the limit of 3")])
def test_wildcards_that_would_expand_to_most_of_the_index_are_a_bad_query(fixture_archive, query, message):
    result = run("--archive", fixture_archive, "search", query)
    assert result.exit_code == 2 and result.stderr.startswith(message), result.output
    assert result.stderr.count("\n") == 1
    for fine in ("exec*", "*", "ex* OR em* OR pr*", '"a*"'):
        assert run("--archive", fixture_archive, "search", fine).exit_code == 0, fine


def test_the_snapshot_cache_holds_a_bounded_amount_of_text(make_archive):
    from counterbrief.validate import SnapshotCache

    for n in range(6):
        (make_archive.root / "sources" / f"s{n}.txt").write_text(f"snapshot {n} " * 1000, encoding="utf-8")
    cache = SnapshotCache(load.find_archive(make_archive.root, None, Path("/")), budget=25_000)
    for n in [0, 1, 0, 2, 3, 4, 5, 5, 0]:
        text_, why = cache.get(f"sources/s{n}.txt")
        assert why == "" and text_.startswith(f"snapshot {n} ")
        assert cache._held == sum(len(t or "") for t, _ in cache._texts.values()) <= 25_000 or len(cache._texts) == 1
    assert len(cache._texts) == 2


def test_review_and_approve_never_read_a_story_linked_from_outside_the_archive(make_archive, tmp_path):
    make_archive.story("good", status="draft")
    (tmp_path / "outside.md").write_text(story_text("evil").replace("status: approved", "status: draft")
                                         .replace("title: Synthetic evil", "title: Outside Secret"), encoding="utf-8")
    (make_archive.root / "stories" / "evil.md").symlink_to(tmp_path / "outside.md")
    result = run("--archive", make_archive.root, "review", "--json")
    assert result.exit_code == 0, result.output
    assert "Outside Secret" not in result.output
    result = run("--archive", make_archive.root, "approve", "evil", "--by", "Tester")
    assert result.exit_code != 0 and "a link to a file outside the archive" in result.stderr
    assert "Outside Secret" in (tmp_path / "outside.md").read_text(encoding="utf-8")   # untouched
    assert (make_archive.root / "stories" / "evil.md").is_symlink()


# ----------------------------------------------------------------------------- freshness

def test_an_edit_that_keeps_the_size_and_the_time_stamp_is_still_found(make_archive):
    path = make_archive.story("teller", body="The word is apples.")
    # A clock ahead of this one, or a coarse one (1-2 s ticks): the edit lands on the same time stamp.
    stamp = time.time_ns() + 60 * 10**9
    os.utime(path, ns=(stamp, stamp))

    def found(word):
        result = run("--archive", make_archive.root, "search", word, "--json")
        assert result.exit_code == 0, result.output
        return [h["id"] for h in json.loads(result.stdout)["hits"]]

    assert found("apples") == ["teller"]
    path.write_text(path.read_text(encoding="utf-8").replace("apples", "melons"), encoding="utf-8")
    os.utime(path, ns=(stamp, stamp))
    assert found("melons") == ["teller"] and found("apples") == []


def test_an_index_records_a_file_changed_just_before_it_was_written_as_one_to_look_at_again(make_archive):
    from counterbrief.state import RACY, current_folder, index_home, read_stat

    old = make_archive.story("old")
    new = make_archive.story("new")
    hour_ago = time.time_ns() - 3600 * 10**9
    os.utime(old, ns=(hour_ago, hour_ago))
    assert run("--archive", make_archive.root, "index").exit_code == 0
    table = read_stat(current_folder(index_home(load.find_archive(make_archive.root, None, make_archive.root))))
    assert table["stories/old.md"][1] == hour_ago and table["stories/new.md"][1] == RACY
