"""A curator's day (issue 11): a team archive that survives git, review as commands, sources from
saved pages and PDFs, an interactive add on a real terminal, ids from names, and the rough edges."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from counterbrief import load
from counterbrief.cli import main
from counterbrief.errors import UsageProblem

from conftest import REPO, SOURCE_TEXT


def run(*args, env=None, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env, input=input)


def in_folder(folder: Path, *args, env=None):
    """The command run with folder as the current directory (discovery from the cwd)."""
    old = Path.cwd()
    os.chdir(folder)
    try:
        return run(*args, env={"COUNTERBRIEF_ARCHIVE": None, **(env or {})})
    finally:
        os.chdir(old)


# --------------------------------------------------------------------------- the archive marker

def clone_without_empty_folders(src: Path, dest: Path) -> Path:
    """What git leaves of an archive: every file, and no folder without one."""
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(".counterbrief"))
    for folder in sorted((p for p in dest.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        if not any(folder.iterdir()):
            folder.rmdir()
    return dest


def test_init_writes_a_marker_and_gitkeeps_that_git_keeps(tmp_path):
    dest = tmp_path / "team"
    assert run("init", dest).exit_code == 0
    assert "reviewers_required: 1" in (dest / "counterbrief.yml").read_text()
    assert (dest / "stories" / ".gitkeep").is_file() and (dest / "sources" / ".gitkeep").is_file()


def test_a_clone_of_a_new_archive_is_found_as_itself_not_as_the_bundled_one(tmp_path):
    made = tmp_path / "made"
    assert run("init", made).exit_code == 0
    for keep in made.rglob(".gitkeep"):
        keep.unlink()            # an archive whose folders git would drop
    clone = clone_without_empty_folders(made, tmp_path / "clone")
    assert not (clone / "stories").exists()
    result = in_folder(clone, "check")
    assert result.exit_code == 0, result.output
    assert f"checked 0 stories and 1 recipe in {clone.resolve()}" in result.stderr
    assert "bundled" not in result.stderr
    assert not (clone / "stories").exists()      # discovery creates nothing
    nested = clone / "recipes"
    assert in_folder(nested, "check", "--json").exit_code == 0


def test_an_incomplete_archive_in_an_ancestor_is_one_line_and_exit_2_never_the_bundled_one(tmp_path):
    old = tmp_path / "old-clone"      # made before the marker: vocabulary.yml, recipes/, no stories/
    (old / "recipes").mkdir(parents=True)
    shutil.copy(REPO / "vocabulary.yml", old / "vocabulary.yml")
    result = in_folder(old / "recipes", "check")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"Error: {old.resolve()} looks like a counterbrief archive but is incomplete: it has vocabulary.yml but no "
        f"stories/ folder; run 'counterbrief init --force {old.resolve()}' to fill in what is missing "
        "(existing files are kept)")
    assert run("init", "--force", old).exit_code == 0
    assert in_folder(old, "check").exit_code == 0


def test_a_marker_without_a_vocabulary_is_reported_as_incomplete(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "counterbrief.yml").write_text("reviewers_required: 1\n")
    with pytest.raises(UsageProblem, match="has counterbrief.yml but no vocabulary.yml"):
        load.find_archive(tmp_path / "a", None, Path("/"))


def test_falling_back_to_the_bundled_archive_is_said_every_time_unless_asked_for(tmp_path):
    empty = tmp_path / "nothing-here"
    empty.mkdir()
    for _ in range(2):
        result = in_folder(empty, "check")
        assert result.exit_code == 0
        assert result.stderr.startswith(f"no archive in {empty} or above it: using the bundled archive")
    asked = run("--archive", load.bundled_root(), "check")
    assert "no archive in" not in asked.stderr
    quiet = in_folder(empty, "check", "-q")
    assert quiet.stderr == ""


def test_the_bundled_archive_carries_the_marker():
    assert (load.bundled_root() / "counterbrief.yml").is_file()
    assert load.archive_state(load.bundled_root()) == ""
