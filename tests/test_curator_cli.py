"""The curator's commands through click: init, add, check, show, stats, themes."""
from __future__ import annotations

import json

from click.testing import CliRunner

from counterbrief.cli import main

from conftest import SOURCE_TEXT


def archive_files(root):
    """Every file and folder of an archive but its derived index home (where the write lock lives)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if ".counterbrief" not in p.parts)


def run(*args, env=None, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env, input=input)


def test_init_creates_an_archive_that_checks_clean(tmp_path):
    dest = tmp_path / "new"
    result = run("init", dest)
    assert result.exit_code == 0, result.output
    for rel in ("stories", "sources", "recipes", "templates", "vocabulary.yml", "recipes/example.yml", "README.md"):
        assert (dest / rel).exists()
    assert ".counterbrief/" in (dest / ".gitignore").read_text()
    checked = run("--archive", dest, "check", "--json")
    assert checked.exit_code == 0
    assert json.loads(checked.stdout)["errors"] == []


def test_init_refuses_a_non_empty_folder_and_force_keeps_existing_files(tmp_path):
    dest = tmp_path / "busy"
    dest.mkdir()
    (dest / "vocabulary.yml").write_text("- id: ours\n  label: Ours\n")
    result = run("init", dest)
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"Error: {dest} is a folder that is not empty; choose a new folder, or add --force "
                                     "to fill in what is missing (existing files are kept)")
    assert run("init", "--force", dest).exit_code == 0
    assert (dest / "vocabulary.yml").read_text() == "- id: ours\n  label: Ours\n"
    assert (dest / "stories").is_dir()


def test_add_writes_a_draft_whose_quotes_check(make_archive, tmp_path):
    src = tmp_path / "article.txt"
    src.write_text(SOURCE_TEXT)
    result = run("--archive", make_archive.root, "add", "--source", src, "--alias", "Abu Test", "--title", "A test",
                 "--theme", "regret", "--quote", "we were lied to about everything", "--outlet", "Test Outlet")
    assert result.exit_code == 0, result.output
    story = make_archive.root / "stories" / "abu-test-test-outlet.md"
    text = story.read_text()
    assert "status: draft" in text and "we were lied to about everything" in text
    assert (make_archive.root / "sources" / "abu-test-test-outlet.txt").read_text() == SOURCE_TEXT
    assert run("--archive", make_archive.root, "check").exit_code == 0


def test_add_with_a_quote_not_in_the_source_writes_nothing(make_archive, tmp_path):
    src = tmp_path / "article.txt"
    src.write_text(SOURCE_TEXT)
    before = archive_files(make_archive.root)
    result = run("--archive", make_archive.root, "add", "--source", src, "--alias", "Abu Test", "--title", "A test",
                 "--theme", "regret", "--quote", "words nobody said")
    assert result.exit_code == 2
    assert "quote not found verbatim" in result.stderr and "nothing was written" in result.stderr
    assert archive_files(make_archive.root) == before


def test_add_never_overwrites_an_existing_story(make_archive, tmp_path):
    make_archive.story("taken")
    original = (make_archive.root / "stories" / "taken.md").read_text()
    src = tmp_path / "article.txt"
    src.write_text(SOURCE_TEXT)
    result = run("--archive", make_archive.root, "add", "--source", src, "--id", "taken", "--alias", "X", "--title", "T",
                 "--theme", "regret", "--quote", "He paid a smuggler to leave.")
    assert result.exit_code == 2
    assert "exists already" in result.stderr
    assert (make_archive.root / "stories" / "taken.md").read_text() == original


def test_check_prints_one_line_per_problem_and_exits_1(make_archive):
    make_archive.story("good")
    make_archive.story("bad", themes=["no-such-theme"])
    result = run("--archive", make_archive.root, "check")
    assert result.exit_code == 1
    assert result.stdout.strip().splitlines() == [
        "stories/bad.md:10: unknown theme 'no-such-theme'; add it to vocabulary.yml or use a listed id"]
    assert "checked 2 stories" in result.stderr and "1 error," in result.stderr


def test_check_json_lists_errors_with_file_line_and_message(make_archive):
    make_archive.story("bad", raw="no front matter\n")
    data = json.loads(run("--archive", make_archive.root, "check", "--json").stdout)
    assert data["errors"] == [{"file": "stories/bad.md", "line": 1, "message":
                               "no YAML front matter; start the file with a line '---', the fields, then a closing '---'"}]
    assert data["warnings"] == []


def test_check_of_named_files_checks_only_those(make_archive):
    good = make_archive.story("good")
    make_archive.story("bad", themes=["no-such-theme"])
    assert run("--archive", make_archive.root, "check", good).exit_code == 0


def test_show_prints_warnings_first_and_never_a_redacted_name(fixture_archive):
    result = run("--archive", fixture_archive, "show", "synthetic-en-executions")
    assert result.exit_code == 0
    assert result.stdout.startswith("CONTENT WARNING: executions")
    assert "Secret Cousin" not in result.stdout and "[redacted]" in result.stdout
    assert "CURATOR-ONLY" not in result.stdout
    data = json.loads(run("--archive", fixture_archive, "show", "--json", "synthetic-en-executions").stdout)
    assert data["quotes"][0]["text"] == "Anyone who questioned the emir was taken away"
    assert "Secret Cousin" not in json.dumps(data)


def test_show_of_an_unknown_id_suggests_the_nearest(fixture_archive):
    result = run("--archive", fixture_archive, "show", "synthetic-en-execution")
    assert result.exit_code == 2
    assert result.stderr.strip() == "Error: no story 'synthetic-en-execution'; did you mean 'synthetic-en-executions'?"


def test_good_stories_still_show_and_count_beside_a_broken_one(fixture_archive):
    (fixture_archive / "stories" / "broken.md").write_text("---\nid: [\n---\n")
    assert run("--archive", fixture_archive, "show", "synthetic-fr-etrangers").exit_code == 0
    result = run("--archive", fixture_archive, "stats", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["stories"] == 3 and data["bad_files"] == 1
    assert "1 story file(s) with errors left out" in result.stderr


def test_stats_counts_by_facet_and_lists_gaps(fixture_archive):
    data = json.loads(run("--archive", fixture_archive, "stats", "--json").stdout)
    assert data["by"]["language"] == {"ar": 1, "en": 1, "fr": 1}
    assert data["by"]["year"] == {"2016": 1, "2017": 1, "2018": 1}
    assert data["archive"] == str(fixture_archive.resolve())
    # the fixture stories are synthetic, so no theme has a usable account
    assert "regret" in data["gaps"]


def test_themes_lists_the_vocabulary_with_counts(fixture_archive):
    rows = json.loads(run("--archive", fixture_archive, "themes", "--json").stdout)
    by_id = {r["id"]: r for r in rows}
    assert by_id["suppression-of-dissent"]["stories"] == 2
    assert "dissenters" in by_id["suppression-of-dissent"]["synonyms"]
    text = run("--archive", fixture_archive, "themes").stdout
    assert "suppression-of-dissent  (2 stories, 0 usable)" in text


def test_a_missing_archive_is_one_line_and_exit_2(tmp_path):
    result = run("--archive", tmp_path / "nowhere", "check")
    assert result.exit_code == 2
    assert "nowhere" in result.stderr and "Traceback" not in result.output


def test_verbose_says_which_archive_is_used(fixture_archive):
    result = run("--archive", fixture_archive, "-v", "stats")
    assert f"archive: {fixture_archive.resolve()}" in result.stderr


def test_add_edit_opens_the_editor_on_the_new_story(make_archive, tmp_path):
    src = tmp_path / "article.txt"
    src.write_text(SOURCE_TEXT)
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i -e 's/to be written/written in the editor/' \"$1\"\n")
    editor.chmod(0o755)
    result = run("--archive", make_archive.root, "add", "--source", src, "--alias", "Abu Edit", "--title", "T",
                 "--theme", "regret", "--quote", "He paid a smuggler to leave.", "--edit", env={"EDITOR": str(editor)})
    assert result.exit_code == 0, result.output
    story = next((make_archive.root / "stories").glob("abu-edit*.md"))
    assert "written in the editor" in story.read_text()


def test_archive_may_be_given_after_the_command_name(fixture_archive):
    result = run("check", "--archive", fixture_archive, "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["archive"] == str(fixture_archive.resolve())
    shown = run("show", "synthetic-fr-etrangers", "--archive", fixture_archive)
    assert shown.exit_code == 0 and "Témoin Deux" in shown.stdout


def test_check_also_reports_a_recipe_that_would_not_make_a_brief(make_archive):
    make_archive.story("good")
    (make_archive.root / "recipes" / "bad.yml").write_text("title: T\nmessages: []\n")
    result = run("--archive", make_archive.root, "check")
    assert result.exit_code == 1
    assert result.stdout.strip().splitlines() == [
        "recipes/bad.yml:2: the recipe has no messages; add 'messages:' with at least one '- text: ...' and its themes"]
    assert "checked 1 story and 1 recipe" in result.stderr


def test_add_with_a_bad_date_writes_nothing_and_says_what_check_would_say(make_archive, tmp_path):
    src = tmp_path / "article.txt"
    src.write_text(SOURCE_TEXT)
    before = archive_files(make_archive.root)
    result = run("--archive", make_archive.root, "add", "--source", src, "--alias", "Abu Date", "--title", "T",
                 "--theme", "regret", "--quote", "He paid a smuggler to leave.", "--published", "last spring")
    assert result.exit_code == 2
    assert "'source.published' is 'last spring', not a date" in result.stderr
    assert "nothing was written" in result.stderr
    assert archive_files(make_archive.root) == before
