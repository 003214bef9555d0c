"""The archive: finding it, reading stories, validating them, and the bundled seed accounts."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from counterbrief import load
from counterbrief.errors import UsageProblem
from counterbrief.text import find_verbatim, normalise
from counterbrief.validate import load_archive

from conftest import REPO

SEEDS = REPO.parent / "shared" / "seeds"
SEEDS_MISSING = (f"the seed articles the bundled quotes were taken from are not at {SEEDS} "
                 "(the project's shared/seeds/*.txt, beside the checkout)")


def messages(loaded):
    return [str(p) for p in loaded.errors]


def test_bundled_archive_checks_clean_and_has_the_three_seed_accounts():
    loaded = load_archive(load.find_archive(None, None, Path("/")))
    assert loaded.archive.bundled
    assert not loaded.errors, messages(loaded)
    assert sorted(loaded.by_id()) == ["abu-abdullah-al-maghribi", "abu-hajer-al-maghribi", "cbs-defector-turkey-2017"]
    assert all(s.usable for s in loaded.stories)


@pytest.mark.skipif(not SEEDS.is_dir(), reason=SEEDS_MISSING)
def test_every_bundled_quote_is_verbatim_in_the_seed_articles():
    seeds = normalise(" ".join(p.read_text(encoding="utf-8") for p in SEEDS.glob("*.txt")))
    loaded = load_archive(load.find_archive(REPO, None, Path("/")))
    quotes = [q.text for s in loaded.stories for q in s.quotes]
    assert len(quotes) >= 7
    missing = [q for q in quotes if not find_verbatim(q, seeds)]
    assert missing == []


@pytest.mark.skipif(not SEEDS.is_dir(), reason=SEEDS_MISSING)
def test_every_paragraph_of_a_bundled_snapshot_comes_from_a_seed_article():
    seeds = normalise(" ".join(p.read_text(encoding="utf-8") for p in SEEDS.glob("*.txt")))
    for snap in (REPO / "sources").glob("*.txt"):
        for para in snap.read_text(encoding="utf-8").split("\n\n"):
            assert normalise(para) in seeds, (snap.name, para)


def test_the_carrying_quotes_of_the_articles_are_in_the_bundled_archive():
    loaded = load_archive(load.find_archive(REPO, None, Path("/")))
    text = normalise(" ".join(q.text for s in loaded.stories for q in s.quotes)).lower()
    for phrase in ["canon camera", "the paper just gives you the location", "whole army of media personnel",
                   "monthly income is higher", "better cars", "they kill anyone who argues with them",
                   "they said they were cia agents, not journalists", "if they'd known the truth they wouldn't have joined"]:
        assert phrase in text


def test_verbatim_allows_whitespace_typographic_quotes_and_first_letter_case_only():
    snap = normalise("He said: \u201cThey\u2019d   known\nthe truth.\u201d")
    assert find_verbatim("they'd known the truth.", snap)
    assert find_verbatim('"They\'d known the truth."', snap)
    assert not find_verbatim("They had known the truth.", snap)
    assert not find_verbatim("THEY'D known the truth.", snap)


def test_archive_is_found_by_option_then_env_then_parent_then_bundled(make_archive, tmp_path):
    root = make_archive.root
    nested = root / "stories"
    assert load.find_archive(root, None, Path("/")).root == root.resolve()
    assert load.find_archive(None, str(root), Path("/")).root == root.resolve()
    assert load.find_archive(None, None, nested).root == root.resolve()
    assert load.find_archive(None, None, tmp_path).bundled


def test_a_folder_that_is_not_an_archive_is_a_usage_error(tmp_path):
    with pytest.raises(UsageProblem, match="is not a counterbrief archive"):
        load.find_archive(tmp_path, None, Path("/"))


BAD_CASES = {
    "broken-yaml": ("raw", "---\nid: broken-yaml\ntitle: [unclosed\n---\nbody\n", r"broken-yaml\.md:3: bad YAML"),
    "no-front": ("raw", "just a body, no front matter\n", r"no-front\.md:1: no YAML front matter"),
    "empty": ("raw", "", r"empty\.md:1: empty file"),
    "unknown-theme": ("fields", {"themes": ["propoganda-deception"]},
                      r"unknown-theme\.md:\d+: unknown theme 'propoganda-deception'; did you mean 'propaganda-deception'\?"),
    "bad-quote": ("fields", {"quotes": [{"text": "An invented sentence nobody said"}]},
                  r"bad-quote\.md:\d+: quote 1 is not verbatim in sources/src\.txt"),
    "no-snapshot": ("fields", {"source": {"outlet": "X", "snapshot": "sources/missing.txt"}},
                    r"no-snapshot\.md:\d+: snapshot 'sources/missing\.txt' not found"),
    "other-name": ("fields", {"id": "not-the-stem"}, r"other-name\.md:\d+: id 'not-the-stem' differs from the file name"),
    "wrong-type": ("fields", {"themes": "regret"}, r"wrong-type\.md:\d+: 'themes' must be a list; write it as \[a, b\]"),
    "bad-status": ("fields", {"status": "aproved"}, r"bad-status\.md:\d+: 'status' is 'aproved'.*did you mean 'approved'"),
    "bad-date": ("fields", {"source": {"published": "last spring", "snapshot": "sources/src.txt"}},
                 r"bad-date\.md:\d+: 'source\.published' is 'last spring', not a date"),
}


@pytest.mark.parametrize("name", sorted(BAD_CASES))
def test_each_bad_story_is_one_line_naming_the_file_and_good_stories_still_load(make_archive, name):
    kind, content, pattern = BAD_CASES[name]
    make_archive.story("good-one")
    if kind == "raw":
        make_archive.story(name, raw=content)
    else:
        make_archive.story(name, **content)
    loaded = load_archive(load.find_archive(make_archive.root, None, Path("/")))
    lines = messages(loaded)
    assert len(lines) >= 1
    assert any(re.search(pattern, line) for line in lines), lines
    assert all("\n" not in line for line in lines)
    assert [s.id for s in loaded.stories] == ["good-one"]


def test_a_non_utf8_story_is_reported_with_its_line(make_archive):
    path = make_archive.story("latin1")
    path.write_bytes(path.read_bytes().replace(b"A synthetic summary.", "Résumé".encode("latin-1")))
    loaded = load_archive(load.find_archive(make_archive.root, None, Path("/")))
    assert any(re.match(r"stories/latin1\.md:\d+: not UTF-8 text \(byte 0xe9\); re-save the file as UTF-8", m)
               for m in messages(loaded)), messages(loaded)


def test_a_15_mb_story_is_refused_with_a_clear_error_and_the_rest_still_load(make_archive):
    make_archive.story("good-one")
    make_archive.story("huge", body="x" * 15_000_000)
    loaded = load_archive(load.find_archive(make_archive.root, None, Path("/")))
    assert messages(loaded) == ["stories/huge.md: story is 15.0 MB, over the 1 MB limit; "
                                "keep the story short and put long text in its source snapshot"]
    assert [s.id for s in loaded.stories] == ["good-one"]


def test_a_duplicate_id_is_reported_on_the_second_file(make_archive):
    make_archive.story("alpha")
    make_archive.story("beta", id="alpha")
    loaded = load_archive(load.find_archive(make_archive.root, None, Path("/")))
    assert any("stories/beta.md" in m and "duplicate id 'alpha', also used by stories/alpha.md" in m
               for m in messages(loaded)), messages(loaded)


def test_the_line_of_the_offending_field_is_given(make_archive):
    path = make_archive.story("lined", themes=["nope-theme"])
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "nope-theme" in text)
    loaded = load_archive(load.find_archive(make_archive.root, None, Path("/")))
    assert messages(loaded)[0].startswith(f"stories/lined.md:{line}: unknown theme 'nope-theme'")


def test_a_snapshot_outside_the_archive_is_refused(make_archive):
    make_archive.story("escape", source={"snapshot": "../../etc/passwd"})
    loaded = load_archive(load.find_archive(make_archive.root, None, Path("/")))
    assert "outside the archive" in messages(loaded)[0]
