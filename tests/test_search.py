"""Search: languages, themes and synonyms, facets, freshness, faults, concurrency, export."""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from counterbrief import load
from counterbrief.cli import main
from counterbrief.search import Index, SearchRequest, search
from counterbrief.validate import load_vocabulary

from conftest import REPO

sys.path.insert(0, str(REPO / "bench"))
import synth  # noqa: E402


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def ids(archive_root, query="", **kw):
    archive = load.find_archive(archive_root, None, Path("/"))
    index = Index(archive)
    index.fresh()
    vocabulary, _ = load_vocabulary(archive)
    result = search(index, SearchRequest(query=query, limit=50, **kw), vocabulary)
    return sorted(h["id"] for h in result.hits), result


@pytest.mark.parametrize("query", ["executing", "executed", "execute", "prisoner", "prisoners"])
def test_english_words_match_their_other_forms(fixture_archive, query):
    assert ids(fixture_archive, query)[0] == ["synthetic-en-executions"]


@pytest.mark.parametrize("query", ["étrangers", "etrangers", "étranger", "ETRANGER"])
def test_french_words_match_with_or_without_accents_and_plural(fixture_archive, query):
    assert ids(fixture_archive, query)[0] == ["synthetic-fr-etrangers"]


@pytest.mark.parametrize("query", ["الدولة", "دولة", "قتلوا", "الدَّوْلَة", "قتل"])
def test_arabic_words_match_without_diacritics_and_article(fixture_archive, query):
    assert ids(fixture_archive, query)[0] == ["synthetic-ar-dawla"]


def test_wildcards_and_phrases_work(fixture_archive):
    assert ids(fixture_archive, "exec*")[0] == ["synthetic-en-executions"]
    assert ids(fixture_archive, '"questioned the emir"')[0] == ["synthetic-en-executions"]
    assert ids(fixture_archive, '"emir questioned"')[0] == []
    assert ids(fixture_archive, "executed NOT emir")[0] == []


def test_a_theme_synonym_finds_the_theme_across_languages(fixture_archive):
    assert ids(fixture_archive, "dissenters")[0] == ["synthetic-ar-dawla", "synthetic-en-executions"]


def test_theme_filter_and_field_query_agree(fixture_archive):
    by_option = ids(fixture_archive, "*", themes=["corruption-hypocrisy"])[0]
    by_query = ids(fixture_archive, "theme:corruption-hypocrisy")[0]
    assert by_option == by_query == ["synthetic-fr-etrangers"]


def test_year_ranges_and_language_filters(fixture_archive):
    assert ids(fixture_archive, "year:2017..2018")[0] == ["synthetic-ar-dawla", "synthetic-fr-etrangers"]
    assert ids(fixture_archive, "*", language="ar")[0] == ["synthetic-ar-dawla"]
    assert ids(fixture_archive, "lang:fr")[0] == ["synthetic-fr-etrangers"]


def test_facets_count_the_matching_accounts(fixture_archive):
    _, result = ids(fixture_archive, "*")
    assert result.facets["themes"]["suppression-of-dissent"] == 2
    assert result.facets["language"] == {"ar": 1, "en": 1, "fr": 1}
    assert result.facets["year"] == {"2016": 1, "2017": 1, "2018": 1}
    assert result.facets["group"] == {"ISIS": 3}


def test_usable_excludes_drafts_and_internal_accounts(make_archive):
    make_archive.story("ok-one")
    make_archive.story("a-draft", status="draft")
    make_archive.story("internal-one", sensitivity="internal")
    assert ids(make_archive.root, "*", usable=True)[0] == ["ok-one"]


def test_an_edit_a_new_file_and_a_deletion_are_seen_by_the_next_search(make_archive):
    make_archive.story("first", body="Nothing about camels.")
    make_archive.story("second")
    assert ids(make_archive.root, "camels")[0] == ["first"]
    make_archive.story("second", body="Now camels too.")
    assert ids(make_archive.root, "camels")[0] == ["first", "second"]
    make_archive.story("third", body="Camels again.")
    assert ids(make_archive.root, "camels")[0] == ["first", "second", "third"]
    (make_archive.root / "stories" / "first.md").unlink()
    assert ids(make_archive.root, "camels")[0] == ["second", "third"]


def cli_ids(root, query):
    result = run("--archive", root, "search", query, "--json", "--limit", "50")
    assert result.exit_code == 0, result.output
    return sorted(h["id"] for h in json.loads(result.stdout)["hits"])


@pytest.mark.parametrize("probe", ["in a child process", "in the same process"])
def test_the_search_command_sees_an_edit_a_new_file_and_a_deletion(make_archive, monkeypatch, probe):
    if probe == "in the same process":
        monkeypatch.setenv("COUNTERBRIEF_NO_PROBE", "1")
    make_archive.story("first", body="Nothing about camels.")
    make_archive.story("second")
    assert cli_ids(make_archive.root, "camels") == ["first"]
    make_archive.story("second", body="Now camels too.")
    assert cli_ids(make_archive.root, "camels") == ["first", "second"]
    make_archive.story("third", body="Camels again.")
    assert cli_ids(make_archive.root, "camels") == ["first", "second", "third"]
    (make_archive.root / "stories" / "first.md").unlink()
    assert cli_ids(make_archive.root, "camels") == ["second", "third"]


def test_the_probe_says_fresh_only_for_the_archive_the_index_was_built_from(make_archive):
    from counterbrief.state import Probe

    make_archive.story("one", body="Camels.")
    make_archive.settle()
    archive = load.find_archive(make_archive.root, None, Path("/"))
    assert not Probe(archive).started          # no index yet: the caller builds it the plain way
    index = Index(archive)
    index.fresh()
    index.open()
    probe = Probe(archive)
    assert probe.started
    verdict = probe.verdict()
    assert verdict.covers(index.opened, index.opened_signature) and verdict.scan is None
    make_archive.story("one", body="Camels, edited.")
    verdict = Probe(archive).verdict()
    assert not verdict.fresh and "stories/one.md" in verdict.scan
    index.fresh(scan=verdict.scan)             # an update in between is a new write of stat.bin
    assert not Probe(archive).verdict().covers(index.opened, index.opened_signature)


@pytest.mark.parametrize("probe", ["in a child process", "in the same process"])
def test_show_stats_themes_and_brief_answer_from_the_archive_as_it_is_now(make_archive, monkeypatch, probe):
    if probe == "in the same process":
        monkeypatch.setenv("COUNTERBRIEF_NO_PROBE", "1")
    root = make_archive.root
    make_archive.story("first", speaker={"alias": "Abu Camel", "role": "fighter"}, body="Camels.")
    assert run("--archive", root, "stats", "--json").exit_code == 0          # the index now exists
    # Another story starts protecting the first one's name, and a second account appears.
    make_archive.story("second", themes=["regret"], redact=["Abu Camel"], body="More camels.")
    show = run("--archive", root, "show", "first")
    assert show.exit_code == 0 and "Abu Camel" not in show.stdout and "[redacted]" in show.stdout
    stats = json.loads(run("--archive", root, "stats", "--json").stdout)
    assert stats["stories"] == 2, stats
    themes = {row["id"]: row for row in json.loads(run("--archive", root, "themes", "--json").stdout)}
    assert themes["regret"]["stories"] == 1, themes["regret"]
    brief = run("--archive", root, "brief", "--theme", "regret", "--include-synthetic", "--format", "json")
    assert brief.exit_code == 0, brief.output
    used = [t["story_id"] for m in json.loads(brief.stdout)["messages"] for t in m["testimony"]]
    assert used == ["second"]


def test_an_error_met_on_a_stale_index_is_checked_again_on_the_fresh_one(make_archive):
    import click

    from counterbrief.cli import fresh_answer
    from counterbrief.errors import CounterbriefError

    make_archive.story("one")
    make_archive.settle()
    assert run("--archive", make_archive.root, "stats").exit_code == 0
    ctx = click.Context(main, obj={"archive_opt": make_archive.root, "archive_env": None, "verbose": False,
                                   "debug": False})
    calls = []

    def compute(index):
        calls.append(index.open())
        if len(calls) == 1:
            raise CounterbriefError("found nothing")
        return "found it"

    make_archive.story("two")
    make_archive.settle(30)
    assert fresh_answer(ctx, compute) == "found it" and len(calls) == 2
    calls.clear()
    with pytest.raises(CounterbriefError):   # nothing changed: the error stands
        fresh_answer(ctx, compute)
    assert len(calls) == 1


def test_a_probe_that_fails_leaves_the_search_to_the_plain_freshness_check(make_archive, monkeypatch):
    from counterbrief import state

    make_archive.story("one", body="Camels.")
    assert cli_ids(make_archive.root, "camels") == ["one"]
    make_archive.story("two", body="More camels.")

    def broken(*args):
        raise OSError("the child cannot read the archive")

    monkeypatch.setattr(state, "scan_part", broken)   # the forked child inherits the fault
    assert cli_ids(make_archive.root, "camels") == ["one", "two"]


def test_a_new_synonym_in_the_vocabulary_is_used_by_the_next_search(fixture_archive):
    assert cli_ids(fixture_archive, "camelids") == []
    vocab = fixture_archive / "vocabulary.yml"
    vocab.write_text(vocab.read_text().replace("synonyms: [dissent,", "synonyms: [camelids, dissent,"))
    assert cli_ids(fixture_archive, "camelids") == ["synthetic-ar-dawla", "synthetic-en-executions"]


def test_a_changed_snapshot_rechecks_the_stories_that_quote_it(make_archive):
    make_archive.story("quoted", body="Camels.")
    assert ids(make_archive.root, "camels")[0] == ["quoted"]
    (make_archive.root / "sources" / "src.txt").write_text("The source no longer holds the quote.\n")
    result = run("--archive", make_archive.root, "search", "camels", "--json")
    assert json.loads(result.stdout)["hits"] == []
    assert "quote 1 is not verbatim in sources/src.txt" in result.stderr


def test_a_story_waiting_for_its_snapshot_is_found_once_the_snapshot_arrives(make_archive):
    make_archive.story("early", body="Camels.", source={"snapshot": "sources/later.txt"})
    first = run("--archive", make_archive.root, "search", "camels", "--json")
    assert json.loads(first.stdout)["hits"] == [] and "snapshot 'sources/later.txt' not found" in first.stderr
    shutil.copy(make_archive.root / "sources" / "src.txt", make_archive.root / "sources" / "later.txt")
    second = run("--archive", make_archive.root, "search", "camels", "--json")
    assert [h["id"] for h in json.loads(second.stdout)["hits"]] == ["early"]


def test_a_duplicate_is_found_once_the_story_it_clashed_with_is_gone(make_archive):
    make_archive.story("alpha", body="Camels.")
    make_archive.story("beta", id="alpha", body="Camels too.")
    assert ids(make_archive.root, "camels")[0] == ["alpha"]
    (make_archive.root / "stories" / "alpha.md").unlink()
    make_archive.story("beta", body="Camels too.")   # the curator fixes the id
    assert ids(make_archive.root, "camels")[0] == ["beta"]


def test_a_snippet_keeps_the_quotes_and_the_summary_apart(make_archive):
    make_archive.story("two-quotes", body="A summary about smugglers.",
                       quotes=[{"text": "They kill anyone who disagrees."}, {"text": "We were lied to about everything"}])
    hit = json.loads(run("--archive", make_archive.root, "search", "lied", "--json").stdout)["hits"][0]
    assert hit["snippet"].startswith("They kill anyone who disagrees. / We were [[lied]] to about everything / A summary")


def test_did_you_mean_suggests_the_nearest_indexed_word(make_archive):
    make_archive.story("p", body="The propaganda videos were staged.")
    _, result = ids(make_archive.root, "propoganda")
    assert result.total == 0 and result.suggestion == "propaganda"
    out = run("--archive", make_archive.root, "search", "propoganda")
    assert "did you mean: propaganda" in out.stdout


@pytest.mark.parametrize("typo,word", [("exectued", "executed"), ("prisonors", "prisoners"), ("قتلو", "قَتَلُوا")])
def test_did_you_mean_shows_the_word_as_the_archive_writes_it(fixture_archive, typo, word):
    _, result = ids(fixture_archive, typo)
    assert result.total == 0 and result.suggestion == word


@pytest.mark.parametrize("query,message", [
    ('"unclosed phrase', "unclosed phrase"),
    ("year:[2014 TO", "unclosed range"),
    ("AND", "operator AND"),
    ("propaganda OR", "operator OR"),
    ("(propaganda", "unbalanced parentheses"),
    ("colour:red", "unknown field 'colour:'"),
    ("theme:", "field 'theme:' in query 'theme:' has no value"),
])
def test_a_bad_query_is_one_line_and_exit_2(fixture_archive, query, message):
    result = run("--archive", fixture_archive, "search", query)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("Error: ")


def test_no_hits_is_exit_0(fixture_archive):
    result = run("--archive", fixture_archive, "search", "zebra")
    assert result.exit_code == 0 and "0 accounts match 'zebra'" in result.stdout


def test_bad_story_files_are_skipped_with_their_error_and_good_ones_found(make_archive):
    make_archive.story("good", body="Camels.")
    make_archive.story("bad", raw="---\nid: [\n---\nCamels.\n")
    result = run("--archive", make_archive.root, "search", "camels", "--json")
    assert result.exit_code == 0
    assert [h["id"] for h in json.loads(result.stdout)["hits"]] == ["good"]
    assert "skipped stories/bad.md:2: bad YAML" in result.stderr


def test_redacted_names_cannot_be_found_or_shown(fixture_archive):
    assert ids(fixture_archive, '"Secret Cousin"')[0] == []
    assert ids(fixture_archive, "cousin")[0] == []
    result = run("--archive", fixture_archive, "search", "*", "--json")
    assert "Secret Cousin" not in result.stdout and "[redacted]" in result.stdout


def test_a_broken_story_still_protects_the_names_it_redacts(make_archive):
    make_archive.story("good", body="Camels were tended by Omar Example.")
    make_archive.story("broken", themes=["no-such-theme"], redact=["Omar Example"])
    result = run("--archive", make_archive.root, "search", "camels", "--json")
    assert [h["id"] for h in json.loads(result.stdout)["hits"]] == ["good"]
    assert "Omar Example" not in result.stdout and "[redacted]" in result.stdout
    shown = run("--archive", make_archive.root, "show", "good")
    assert "Omar Example" not in shown.stdout and "[redacted]" in shown.stdout


def test_json_output_follows_the_documented_contract(fixture_archive):
    data = json.loads(run("--archive", fixture_archive, "search", "executed", "--json").stdout)
    assert set(data) == {"query", "total", "page", "limit", "hits", "facets", "suggestion"}
    hit = data["hits"][0]
    for key in ("id", "title", "score", "snippet", "themes", "status", "sensitivity", "language", "speaker"):
        assert key in hit
    assert "[[executed]]" in hit["snippet"]
    assert set(data["facets"]) == {"themes", "group", "language", "year", "status", "sensitivity"}


def test_csv_and_jsonl_export_every_matching_account(fixture_archive):
    out = run("--archive", fixture_archive, "search", "*", "--format", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    assert sorted(r["id"] for r in rows) == ["synthetic-ar-dawla", "synthetic-en-executions", "synthetic-fr-etrangers"]
    assert {r["language"] for r in rows} == {"en", "fr", "ar"}
    lines = run("--archive", fixture_archive, "search", "*", "--format", "jsonl").stdout.splitlines()
    assert sorted(json.loads(line)["id"] for line in lines) == sorted(r["id"] for r in rows)


def damage_live_index(archive_root, *patterns):
    """Build the index, then overwrite the live index's files matching patterns with garbage."""
    assert run("--archive", archive_root, "index").exit_code == 0
    home = archive_root / ".counterbrief"
    current = home / (home / "current").read_text()
    for pattern in patterns:
        for f in current.glob(pattern):
            f.write_bytes(b"garbage")


def test_a_corrupt_index_is_rebuilt_with_one_line(fixture_archive):
    damage_live_index(fixture_archive, "*.seg", "_MAIN_*.toc")
    (fixture_archive / "stories" / "synthetic-fr-etrangers.md").touch()
    os.utime(fixture_archive / "stories" / "synthetic-fr-etrangers.md", (1, 1))
    result = run("--archive", fixture_archive, "search", "executed", "--json")
    assert result.exit_code == 0
    assert "the search index was unreadable; rebuilding it" in result.stderr
    assert [h["id"] for h in json.loads(result.stdout)["hits"]] == ["synthetic-en-executions"]


def test_a_corrupt_index_is_rebuilt_even_when_no_story_changed(fixture_archive):
    damage_live_index(fixture_archive, "_MAIN_*.toc")
    result = run("--archive", fixture_archive, "search", "etrangers", "--json")
    assert result.exit_code == 0, result.output
    assert result.stderr.count("the search index was unreadable; rebuilding it") == 1
    assert [h["id"] for h in json.loads(result.stdout)["hits"]] == ["synthetic-fr-etrangers"]


def _cb(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "counterbrief.cli", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_an_index_killed_mid_build_is_repaired_by_the_next_command(tmp_path):
    root = synth.make_archive(tmp_path / "big", 1500)
    proc = _cb("--archive", root, "index", "--rebuild")
    time.sleep(1.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    result = run("--archive", root, "search", "*", "--json", "--limit", "1")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["total"] == 1500


def test_two_indexers_at_once_both_succeed(tmp_path):
    root = synth.make_archive(tmp_path / "two", 300)
    procs = [_cb("--archive", root, "index"), _cb("--archive", root, "search", "regret", "--json")]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert json.loads(outs[1][0])["total"] > 0
    final = run("--archive", root, "search", "*", "--json", "--limit", "1")
    assert json.loads(final.stdout)["total"] == 300


@pytest.mark.parametrize("command", [["search", "emir"], ["themes"], ["stats"], ["show", "synthetic-en-executions"]])
def test_a_broken_vocabulary_is_one_line_and_leaves_the_index_as_it_was(fixture_archive, command):
    assert run("--archive", fixture_archive, "index").exit_code == 0
    home = fixture_archive / ".counterbrief"
    live = (home / "current").read_text()
    vocab = fixture_archive / "vocabulary.yml"
    good = vocab.read_text()
    vocab.write_text("- id: [\n")
    result = run("--archive", fixture_archive, *command)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.splitlines() == ["Error: vocabulary.yml:1: bad YAML: did not find expected node content; "
                                          "check the indentation, colons and quoting on this line; "
                                          "fix vocabulary.yml (counterbrief check)"]
    assert (home / "current").read_text() == live and sorted(p.name for p in home.glob("index-*")) == [live]
    vocab.write_text(good)
    assert run("--archive", fixture_archive, *command).exit_code == 0


def test_a_flawed_vocabulary_is_a_warning_and_search_goes_on(fixture_archive):
    vocab = fixture_archive / "vocabulary.yml"
    vocab.write_text(vocab.read_text() + "- id: regret\n  label: Regret again\n")
    result = run("--archive", fixture_archive, "search", "emir", "--json")
    assert result.exit_code == 0
    assert [h["id"] for h in json.loads(result.stdout)["hits"]] == ["synthetic-en-executions"]
    assert "warning: vocabulary.yml:49: theme 'regret' is defined twice; keep one" in result.stderr


def test_the_group_option_keeps_only_that_groups_accounts(make_archive):
    make_archive.story("isis-one", group="ISIS")
    make_archive.story("other-one", group="Al-Shabaab")
    result = run("--archive", make_archive.root, "search", "*", "--group", "Al-Shabaab", "--json")
    assert result.exit_code == 0, result.output
    assert [h["id"] for h in json.loads(result.stdout)["hits"]] == ["other-one"]
