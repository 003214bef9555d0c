"""Redaction as an attacker tries it: other spellings, every field, every output, broken lists, derived files.

A name one story lists under ``redact:`` must reach no output of the archive. Leaks are looked
for independently of the code under test: the output is read back (by real clients for PDF,
DOCX and HTML), decoded, folded to plain lower-case ASCII letters, and searched for the name's
letters run together, so no separator, mark, entity or invisible character can hide one.
"""
from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import unicodedata
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from counterbrief.cli import main
from counterbrief.redact import REDACTED, Redactor, declared_names, Unreadable

from conftest import REPO
from test_brief import read_back

NAME = "Karim Haddad"
LETTERS = "karimhaddad"

# Cyrillic and Greek letters that look like Latin ones, for the independent leak check.
_LOOK = str.maketrans({"К": "k", "к": "k", "Н": "h", "н": "h", "а": "a", "А": "a", "і": "i", "р": "p", "о": "o",
                       "Κ": "k", "Η": "h", "α": "a", "ι": "i", "м": "m", "М": "m"})


def letters(text: str) -> str:
    """The text as lower-case ASCII letters only: what is left of a name after any disguise."""
    text = html.unescape(html.unescape(text)).translate(_LOOK)
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text)).casefold()
    return "".join(c for c in text if "a" <= c <= "z")


def leaks(text: str, name_letters: str = LETTERS) -> bool:
    # Backwards too: written after a right-to-left override, a reversed name displays as the name.
    return name_letters in letters(text) or name_letters[::-1] in letters(text)


# ----------------------------------------------------------------------------- the matcher

SPELLINGS = {
    "line break": "Karim\nHaddad",
    "two spaces": "Karim  Haddad",
    "tab": "Karim\tHaddad",
    "no-break space": "Karim\u00a0Haddad",
    "em space": "Karim\u2003Haddad",
    "narrow no-break space": "Karim\u202fHaddad",
    "zero-width space": "Ka\u200brim Haddad",
    "zero-width joiner": "Kar\u200dim Had\u200ddad",
    "word joiner": "Karim Ha\u2060ddad",
    "soft hyphen": "Ka\u00adrim Had\u00addad",
    "fullwidth": "\uff2b\uff41\uff52\uff49\uff4d \uff28\uff41\uff44\uff44\uff41\uff44",
    "decomposed accent": "Kari\u0301m Hadda\u0301d",
    "html entity": "&#75;arim &#x48;addad",
    "named entity space": "Karim&nbsp;Haddad",
    "markdown emphasis": "Karim **Haddad**",
    "html tag": "Karim <b>Haddad</b>",
    "markdown link": "[Karim](https://example.org/) Haddad",
    "cyrillic look-alike": "\u041aarim \u041daddad",
    "greek look-alike": "\u039aar\u03b9m \u0397addad",
    "upper case": "KARIM HADDAD",
    "hyphenated": "Karim-Haddad",
    "written together": "KarimHaddad",
    "underscore": "Karim_Haddad",
    # found by an attacker after the first version: markup and references inside a word, links,
    # other compatibility forms and invisible characters, percent-encoding
    "comment inside": "Ka<!-- -->rim Haddad",
    "tag inside": "K<b>arim</b> Haddad",
    "empty span inside": "Ka<span></span>rim Haddad",
    "emphasis inside": "Ka*rim* Haddad",
    "reference leading zeros": "&#00000075;arim &#x000048;addad",
    "reference no semicolon": "Ka&#173rim Haddad",
    "legacy named reference": "Kar&iacutem Haddad",
    "reference link": "[Karim][1] Haddad",
    "titled link": '[Karim](https://example.org "t") Haddad',
    "circled": "\u24c0\u24b6\u24c7\u24be\u24c2 \u24bd\u24b6\u24b9\u24b9\u24b6\u24b9",
    "small capitals": "\u1d0b\u1d00\u0280\u026a\u1d0d \u029c\u1d00\u1d05\u1d05\u1d00\u1d05",
    "supplementary variation selector": "Kar\U000E0100im Haddad",
    "tag character": "Ka\U000E0041rim Haddad",
    "deprecated format": "Kar\u206aim Had\u206fdad",
    "mongolian selector": "Ka\u180brim Haddad",
    "khmer vowel": "Kar\u17b4im Haddad",
    "interlinear anchor": "Ka\ufff9rim Haddad",
    "musical format": "Ka\U0001D173rim Haddad",
    "hangul filler between": "Karim\u3164Haddad",
    "percent-encoded": "Karim%20Haddad",
    "control characters inside": "Kar\x00im Ha\x1bddad",
    "backwards after a right-to-left override": "\u202edaddaH miraK\u202c",
    "form feed inside": "Kar\x0cim Haddad",
    "next line (C1) inside": "Kar\x85im Haddad",
    "lone surrogate inside": "Kar\ud800im Haddad",
}
# A story holding control characters is refused by check (no output carries them): its spelling is
# tested in strings above, and as a refused story below.
REFUSED = {"control characters inside", "form feed inside", "next line (C1) inside", "lone surrogate inside"}
STORED_SPELLINGS = {k: v for k, v in SPELLINGS.items() if k not in REFUSED}


@pytest.mark.parametrize("spelling", SPELLINGS.values(), ids=SPELLINGS.keys())
def test_a_protected_name_is_found_in_every_other_spelling(spelling):
    r = Redactor.from_names([NAME])
    out = r.text(f"Before. {spelling} said so. After.")
    assert REDACTED in out and not leaks(out), out
    assert out.startswith("Before. ") and out.endswith(" said so. After.")


def test_arabic_names_are_found_with_harakat_tatweel_alef_forms_and_a_proclitic():
    r = Redactor.from_names(["كريم حداد"])
    for spelling in ("كَرِيم حَدَّاد", "كـــريم حداد", "وكريم حداد", "كريم\nحداد", "كريم\u200cحداد"):
        out = r.text(f"قال {spelling} ذلك")
        assert out == f"قال {REDACTED} ذلك", (spelling, out)
    assert Redactor.from_names(["أحمد"]).text("احمد وإحمد") == f"{REDACTED} {REDACTED}"


def test_a_name_is_matched_as_whole_words_only():
    r = Redactor.from_names(["Ali"])
    assert r.text("A totalitarian alibi, said Ali's cousin.") == f"A totalitarian alibi, said {REDACTED}'s cousin."
    assert Redactor.from_names([NAME]).text("Karimov Haddadi") == "Karimov Haddadi"


def test_redaction_keeps_the_rest_of_the_text_byte_for_byte():
    text = "“Quote” —\u00a0Karim\nHaddad, 2016 «\u00a0وقال\u00a0»  end\n"
    assert Redactor.from_names([NAME]).text(text) == f"“Quote” —\u00a0{REDACTED}, 2016 «\u00a0وقال\u00a0»  end\n"


def test_a_redactor_from_stored_hashes_matches_what_one_from_names_matches():
    key = b"k" * 16
    from_names = Redactor.from_names([NAME, "Ali"], key)
    from_hashes = Redactor.from_hashes(key, from_names.entries)
    for spelling in SPELLINGS.values():
        assert from_hashes.text(spelling) == from_names.text(spelling)
    stored = b"".join(h for entry in from_hashes.entries for h in entry)
    assert b"karim" not in stored.lower() and b"haddad" not in stored.lower()


_SEPARATORS = [" ", "  ", "\n", "\t", "\u00a0", "\u2009", " \u200b", "-", " **", "** ", "&nbsp;", "\r\n"]
_INSIDE = ["\u200b", "\u200d", "\u2060", "\u00ad", "\ufeff", "\u200e"]


def _disguise(word: str, data) -> str:
    out = []
    for ch in word:
        form = data.draw(st.sampled_from(["plain", "upper", "fullwidth", "entity", "accent"]))
        if form == "upper":
            ch = ch.upper()
        elif form == "fullwidth" and "a" <= ch.lower() <= "z":
            ch = chr(ord(ch) - 0x21 + 0xFF01) if ch.isascii() else ch
        elif form == "entity":
            ch = f"&#{ord(ch)};"
        elif form == "accent":
            ch = ch + "\u0301"
        out.append(ch)
        if data.draw(st.booleans()) and data.draw(st.booleans()):
            out.append(data.draw(st.sampled_from(_INSIDE)))
    return "".join(out)


_AROUND = st.text(alphabet=" .,;:!?()0123456789\n\t«»—–'\"漢字ابتـ", max_size=30)


@settings(max_examples=300, deadline=None)
@given(first=st.text("abcdefghijklmnopqrstuvwxyz", min_size=3, max_size=8),
       last=st.text("abcdefghijklmnopqrstuvwxyz", min_size=3, max_size=8),
       before=_AROUND, after=_AROUND, data=st.data())
def test_property_a_disguised_name_anywhere_in_a_text_never_survives(first, last, before, after, data):
    assume(first + last not in "redacted")
    name = f"{first.capitalize()} {last.capitalize()}"
    spelled = _disguise(first, data) + data.draw(st.sampled_from(_SEPARATORS)) + _disguise(last, data)
    out = Redactor.from_names([name]).text(f"{before} {spelled} {after}")
    assert REDACTED in out and (first + last) not in letters(out), (spelled, out)
    assert out.startswith(before) and out.endswith(after)


# ----------------------------------------------------------------------------- the archive

SOURCE = ("SYNTHETIC SOURCE FOR REDACTION TESTS. The defector said: \"They kill anyone who argues with them.\"\n"
          "He said \"Karim\nHaddad filmed the executions\" and left.\n")


def _write(root: Path, sid: str, body: str = "A synthetic summary.", **fields) -> Path:
    data = {"id": sid, "title": f"Title {sid}", "speaker": {"alias": f"Speaker {sid}", "role": "fighter"},
            "group": "ISIS", "language": "en", "themes": ["suppression-of-dissent"],
            "source": {"outlet": "Outlet", "published": "2016", "snapshot": "sources/src.txt"},
            "quotes": [{"text": "They kill anyone who argues with them."}],
            "sensitivity": "public", "status": "approved", "synthetic": True}
    for key, value in fields.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    path = root / "stories" / f"{sid}.md"
    path.write_text("---\n" + yaml.safe_dump(data, allow_unicode=True, sort_keys=False) + "---\n" + body + "\n",
                    encoding="utf-8")
    return path


@pytest.fixture
def archive(tmp_path):
    root = tmp_path / "archive"
    for sub in ("stories", "sources", "recipes"):
        (root / sub).mkdir(parents=True)
    shutil.copy(REPO / "vocabulary.yml", root / "vocabulary.yml")
    (root / "sources" / "src.txt").write_text(SOURCE, encoding="utf-8")
    _write(root, "protector", redact=[NAME])
    recipe = {"title": "Redaction test", "date": "2026-12-01", "goal": "Test.", "audience": {"description": "Testers"},
              "messages": [{"text": "They kill dissenters", "themes": ["suppression-of-dissent"]}],
              "max_accounts_per_message": 20}
    (root / "recipes" / "r.yml").write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return root


def run(root: Path, *args: str):
    return CliRunner().invoke(main, ["--archive", str(root), *args])


def every_output(root: Path, tmp_path: Path, story_id: str = "teller") -> dict[str, str]:
    """Every output of the archive that could carry the name, as its reader sees it."""
    out = {}
    for name, args in {
        "show": ["show", story_id], "show --json": ["show", story_id, "--json"],
        "show --notes": ["show", story_id, "--notes", "--json"],
        "search table": ["search", "*", "--facets"], "search json": ["search", "*", "--json"],
        "search jsonl": ["search", "*", "--format", "jsonl"], "search csv": ["search", "*", "--format", "csv"],
        "search snippet": ["search", "executions"], "stats": ["stats"], "stats --json": ["stats", "--json"],
        "themes": ["themes"], "themes --json": ["themes", "--json"], "check": ["check"],
    }.items():
        result = run(root, *args)
        out[name] = result.stdout + result.stderr
    for fmt in ("md", "html", "txt", "json", "pdf", "docx"):
        path = tmp_path / f"brief.{fmt}"
        result = run(root, "brief", str(root / "recipes" / "r.yml"), "-o", str(path), "--include-synthetic")
        assert result.exit_code == 0, result.output
        out[f"brief {fmt}"] = read_back(path, tmp_path) + result.stderr
    return out


def index_files(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (root / ".counterbrief").rglob("*") if p.is_file())


FIELDS = {   # where a name can hide, with the spelling each one is tried in
    "title": ({"title": "{name}'s story"}, "Karim\nHaddad"),
    "alias": ({"speaker": {"alias": "{name}"}}, "Karim  Haddad"),
    "role": ({"speaker": {"role": "aide to {name}"}}, "Ka\u200brim Haddad"),
    "origin": ({"speaker": {"origin": "the house of {name}"}}, "KARIM HADDAD"),
    "now": ({"speaker": {"now": "with {name}"}}, "Karim\u00a0Haddad"),
    "group": ({"group": "{name} brigade"}, "Karim Haddad"),
    "content warning": ({"content_warnings": ["killing of {name}"]}, "Karim Haddad"),
    "url": ({"source": {"url": "https://example.org/{name}"}}, "karim-haddad"),
    "outlet": ({"source": {"outlet": "{name} Times"}}, "Karim Haddad"),
    "author": ({"source": {"author": "{name}"}}, "\u041aarim Haddad"),
    "via": ({"source": {"via": "{name}'s blog"}}, "&#75;arim Haddad"),
    "source title": ({"source": {"title": "{name} speaks"}}, "Karim **Haddad**"),
    "notes": ({"notes": "Told by {name}"}, "Karim Haddad"),
    "quote": ({"quotes": [{"text": "{name} filmed the executions"}]}, "Karim\nHaddad"),
    "quote speaker": ({"quotes": [{"text": "They kill anyone who argues with them.", "speaker": "{name}"}]},
                      "Kari\u0301m Haddad"),
}


def fill(template, spelling: str):
    if isinstance(template, str):
        return template.replace("{name}", spelling)
    if isinstance(template, list):
        return [fill(v, spelling) for v in template]
    if isinstance(template, dict):
        return {k: fill(v, spelling) for k, v in template.items()}
    return template


@pytest.mark.parametrize("field", FIELDS.values(), ids=FIELDS.keys())
def test_a_name_another_story_protects_reaches_no_output_from_any_field(archive, tmp_path, field):
    _write(archive, "teller", body="Summary.", **fill(*field))
    outputs = every_output(archive, tmp_path)
    for name, text in outputs.items():
        assert not leaks(text), f"{name} shows the name:\n{text[:2000]}"
    assert b"karim" not in index_files(archive).lower()


def test_every_spelling_in_a_summary_reaches_no_output_of_any_format(archive, tmp_path):
    body = "\n\n".join(f"Case {n}: {s} was there." for n, s in enumerate(STORED_SPELLINGS.values()))
    _write(archive, "teller", body=body + "\n\nKarim\nHaddad, wrapped as any summary is.")
    outputs = every_output(archive, tmp_path)
    for name, text in outputs.items():
        assert not leaks(text), f"{name} shows the name:\n{text[:3000]}"
    assert "Case 0: [redacted] was there." in outputs["show"]
    assert b"karim" not in index_files(archive).lower()


def test_the_protected_words_are_not_index_terms(archive):
    _write(archive, "teller", body="Karim Haddad was there.", group="Karim Haddad brigade",
           content_warnings=["death of Karim Haddad"], speaker={"origin": "Karim Haddad"})
    for query in ("karim", "haddad", "warning:karim", "group:karim", "speaker:karim", "origin:haddad", '"karim haddad"'):
        result = run(archive, "search", query, "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["total"] == 0, query


def test_themes_never_print_a_protected_name_from_the_vocabulary(archive):
    vocabulary = yaml.safe_load((archive / "vocabulary.yml").read_text(encoding="utf-8"))
    vocabulary[0]["synonyms"] = [*vocabulary[0].get("synonyms", []), "what Karim Haddad did"]
    (archive / "vocabulary.yml").write_text(yaml.safe_dump(vocabulary, allow_unicode=True), encoding="utf-8")
    assert run(archive, "search", "*").exit_code == 0
    for args in (["themes"], ["themes", "--json"]):
        result = run(archive, *args)
        assert result.exit_code == 0 and not leaks(result.stdout), result.stdout
    assert b"karim" not in index_files(archive).lower()


def test_comments_are_looked_through_whether_closed_or_not_and_many_openings_are_read_in_one_pass():
    r = Redactor.from_names([NAME])
    assert r.text("a <!-- x --> K<!-- -->arim Haddad <!-- open") == "a <!-- x --> [redacted] <!-- open"
    assert r.text("<!-- open Karim Haddad") == "<!-- open [redacted]"
    # 250,000 openings with no end (a 1 MB story): each end is looked for once, so this returns;
    # a pattern for comments scanned ahead from every opening (hours for this text).
    text = "<!--" * 250_000 + " Karim Haddad"
    assert r.text(text) == "<!--" * 250_000 + " [redacted]"


def test_a_matching_name_does_not_touch_words_that_only_contain_it(archive):
    _write(archive, "teller", redact=["Ali"], body="A totalitarian rule.",
           quotes=[{"text": "They kill anyone who argues with them."}])
    result = run(archive, "show", "teller")
    assert "A totalitarian rule." in result.stdout


# ----------------------------------------------------------------------------- ids

def test_an_id_holding_a_protected_name_is_an_error_and_never_shown(archive, tmp_path):
    _write(archive, "karim-haddad-bbc")
    check = run(archive, "check")
    assert check.exit_code == 1
    # check names the file as every output does: without the protected name
    assert "stories/[redacted]-bbc.md:2: the id holds a name" in check.stdout
    for args in (["search", "*", "--json"], ["search", "*", "--format", "csv"], ["stats", "--json"]):
        result = run(archive, *args)
        assert "karim-haddad" not in result.stdout, args
    assert run(archive, "show", "karim-haddad-bbc").exit_code != 0
    path = tmp_path / "b.json"
    run(archive, "brief", str(archive / "recipes" / "r.yml"), "-o", str(path), "--include-synthetic")
    assert "karim" not in path.read_text(encoding="utf-8").lower()


def test_a_snapshot_file_named_after_a_protected_name_is_an_error(archive):
    shutil.copy(archive / "sources" / "src.txt", archive / "sources" / "karim-haddad.txt")
    _write(archive, "teller", source={"snapshot": "sources/karim-haddad.txt"})
    check = run(archive, "check")
    assert check.exit_code == 1 and "stories/teller.md:" in check.stdout and "snapshot's file name" in check.stdout
    assert "teller" not in run(archive, "search", "*", "--format", "csv").stdout


def test_show_never_suggests_an_id_that_holds_a_protected_name(archive):
    _write(archive, "karim-haddad-bbc")
    result = run(archive, "show", "karim-hadad-bbc")
    assert result.exit_code == 2 and "did you mean" not in result.output and "haddad" not in result.output.lower()


def test_a_theme_id_holding_a_protected_name_stays_out_of_the_index(archive):
    vocabulary = yaml.safe_load((archive / "vocabulary.yml").read_text(encoding="utf-8"))
    vocabulary.append({"id": "karim-haddad", "label": "About him"})
    (archive / "vocabulary.yml").write_text(yaml.safe_dump(vocabulary, allow_unicode=True), encoding="utf-8")
    _write(archive, "teller", themes=["suppression-of-dissent", "karim-haddad"])
    assert run(archive, "search", "*", "--facets").exit_code == 0
    assert b"karim" not in index_files(archive).lower()
    check = run(archive, "check")
    assert check.exit_code == 1 and "holds a name listed under redact" in check.stdout


def test_an_id_spelled_with_its_own_protected_name_is_an_error(archive):
    _write(archive, "karim-haddad-2016", redact=["KARIM HADDAD"])
    check = run(archive, "check", str(archive / "stories" / "karim-haddad-2016.md"))
    assert check.exit_code == 1 and "the id holds a name listed under redact" in check.stdout


def test_add_refuses_an_id_made_from_a_protected_name_and_proposes_a_neutral_one(archive, tmp_path):
    source = tmp_path / "article.txt"
    source.write_text(SOURCE, encoding="utf-8")
    result = run(archive, "add", "--source", str(source), "--alias", "Karim Haddad", "--outlet", "BBC",
                 "--published", "2016", "--title", "T", "--theme", "suppression-of-dissent",
                 "--quote", "They kill anyone who argues with them.")
    assert result.exit_code == 2
    assert "holds a name listed under redact" in result.output and "--id bbc-2016-1" in result.output
    assert not (archive / "stories" / "karim-haddad-bbc.md").exists()
    assert not (archive / "sources" / "karim-haddad-bbc.txt").exists()


# ----------------------------------------------------------------------------- failing closed

def _broken(archive: Path, raw: bytes) -> None:
    (archive / "stories" / "protector.md").write_bytes(raw)


FRONT = ("---\nid: protector\ntitle: T\nspeaker: {alias: Someone}\ngroup: ISIS\nlanguage: en\n"
         "themes: [suppression-of-dissent]\nsource: {snapshot: sources/src.txt}\nsensitivity: public\n"
         "status: approved\n")

RECOVERABLE = {
    "scalar": (FRONT + "redact: Karim Haddad\n---\nBody.\n").encode(),
    "unclosed quote elsewhere": (FRONT + "notes: \"never closed\nredact:\n  - Karim Haddad\n---\nBody.\n").encode(),
    "latin-1 byte": (FRONT + "notes: caf\xe9\nredact: [Karim Haddad, 'Other Name']\n---\nBody.\n").encode("latin-1"),
    "over 1 MB": (FRONT + "redact: [\"Karim Haddad\"]\n---\n" + "Long body. " * 110_000).encode(),
    "utf-16": (FRONT + "redact:\n- Karim Haddad\n---\nBody.\n").encode("utf-16"),
    "inline list never closed": (FRONT + "redact: [Karim Haddad, Other\n---\nBody.\n").encode(),
    "tab-indented items": (FRONT + "redact:\n\t- 'Karim Haddad'\n---\nBody.\n").encode(),
    "block scalar": (FRONT + "notes: \"never closed\nredact: |\n  Karim Haddad\n---\nBody.\n").encode(),
    "folded item": (FRONT + "notes: \"never closed\nredact:\n  - >-\n    Karim\n    Haddad\n---\nBody.\n").encode(),
    "escaped space": (FRONT + "notes: \"never closed\nredact: [\"Karim\\x20Haddad\"]\n---\nBody.\n").encode(),
    "item over two lines": (FRONT + "notes: \"never closed\nredact:\n  - Karim\n    Haddad\n---\n- Body.\n").encode(),
    "second redact key": (FRONT + "redact: [Karim Haddad]\nredact: []\n---\nBody.\n").encode(),
}


@pytest.mark.parametrize("raw", RECOVERABLE.values(), ids=RECOVERABLE.keys())
def test_a_broken_story_still_protects_the_names_its_raw_text_lists(archive, tmp_path, raw):
    _broken(archive, raw)
    _write(archive, "teller", body="Karim Haddad was there.")
    check = run(archive, "check")
    assert check.exit_code in (0, 1)
    for args in (["show", "teller"], ["search", "*", "--json"], ["search", "*", "--format", "csv"]):
        result = run(archive, *args)
        assert result.exit_code == 0, (args, result.output)
        assert not leaks(result.stdout), (args, result.stdout)
    assert REDACTED in run(archive, "show", "teller").stdout
    path = tmp_path / "b.md"
    assert run(archive, "brief", str(archive / "recipes" / "r.yml"), "-o", str(path), "--include-synthetic").exit_code == 0
    assert not leaks(path.read_text(encoding="utf-8"))


UNRECOVERABLE = {
    "a mapping": (FRONT + "redact: {name: Karim Haddad}\n---\nBody.\n").encode(),
    "mentioned but unreadable": (FRONT + "notes: [unclosed\n\"redact\" = Karim Haddad\n---\nBody.\n").encode(),
    "an alias": (FRONT + "notes: \"never closed\nx: &n [Karim Haddad]\nredact: *n\n---\nBody.\n").encode(),
}


@pytest.mark.parametrize("raw", UNRECOVERABLE.values(), ids=UNRECOVERABLE.keys())
def test_when_a_redact_list_cannot_be_read_every_output_is_refused(archive, tmp_path, raw):
    _write(archive, "teller", body="Karim Haddad was there.")
    assert run(archive, "search", "*").exit_code == 0       # an index exists, made with the list readable
    _broken(archive, raw)
    for args in (["show", "teller"], ["search", "*"], ["search", "*", "--format", "csv"], ["stats"], ["themes"],
                 ["brief", str(archive / "recipes" / "r.yml"), "--include-synthetic"]):
        result = run(archive, *args)
        assert result.exit_code == 1, (args, result.output)
        assert not leaks(result.output), (args, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and "stories/protector.md" in lines[0] and "cannot be read" in lines[0], lines
    check = run(archive, "check")
    assert check.exit_code == 1 and "stories/protector.md" in check.stdout and "redact list cannot be read" in check.stdout
    assert b"karim" not in index_files(archive).lower()
    source = tmp_path / "article.txt"
    source.write_text(SOURCE, encoding="utf-8")
    add = run(archive, "add", "--source", str(source), "--alias", "Karim Haddad", "--outlet", "BBC", "--title", "T",
              "--theme", "suppression-of-dissent", "--quote", "They kill anyone who argues with them.")
    assert add.exit_code == 1 and "stories/protector.md" in add.output
    assert sorted(p.name for p in (archive / "stories").iterdir()) == ["protector.md", "teller.md"]
    hint = run(archive, "show", "teler")
    assert hint.exit_code == 1 and "teller" not in hint.output and "stories/protector.md" in hint.output


@pytest.mark.parametrize("text,names", [
    ("---\nid: x\nredact: [A B, 'C, D']\n---\n", ["A B", "C, D"]),
    ("---\nid: x\nredact:\n  - A B   # a comment\n  - \"C D\"\nnotes: x\n---\n", ["A B", "C D"]),
    ("---\nid: x\nnotes: 'oops\nredact: Solo Name\n---\n", ["Solo Name"]),
    ("---\nid: x\nnotes: 'oops\n---\nbody mentions nothing\n", []),
])
def test_the_lenient_reader_recovers_names_from_broken_yaml(tmp_path, text, names):
    path = tmp_path / "s.md"
    path.write_text(text, encoding="utf-8")
    assert declared_names(path) == names


def test_a_file_that_mentions_redact_but_has_no_readable_list_is_unreadable(tmp_path):
    path = tmp_path / "s.md"
    path.write_text("---\nid: x\nnotes: 'oops\n\"redact\" = Karim\n---\n", encoding="utf-8")
    with pytest.raises(Unreadable):
        declared_names(path)


# ----------------------------------------------------------------------------- property: the whole archive

@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(sorted(set(FIELDS) - {"quote"})), spelling=st.sampled_from(sorted(STORED_SPELLINGS)))
def test_property_a_name_hidden_in_a_random_field_and_spelling_reaches_no_output(archive, field, spelling):
    _write(archive, "teller", body=f"Summary: {SPELLINGS[spelling]}.", **fill(FIELDS[field][0], SPELLINGS[spelling]))
    recipe = str(archive / "recipes" / "r.yml")
    for args in (["show", "teller", "--json", "--notes"], ["show", "teller"], ["search", "*", "--json"],
                 ["search", "*", "--format", "csv"], ["stats", "--json"], ["brief", recipe, "--include-synthetic"],
                 ["brief", recipe, "--include-synthetic", "--format", "json"],
                 ["brief", recipe, "--include-synthetic", "--format", "html"]):
        result = run(archive, *args)
        assert result.exit_code == 0, (args, result.output)
        assert not leaks(result.stdout), (field, spelling, args, result.stdout[:2000])


def test_a_story_refused_for_control_characters_inside_a_name_does_not_print_the_name_in_its_error(archive):
    _write(archive, "teller", body=f"Summary: {SPELLINGS['control characters inside']}.")
    for args in (["check"], ["show", "teller"], ["search", "*", "--json"]):
        result = run(archive, *args)
        assert not leaks(result.output), (args, result.output)
        if args[0] != "search":
            assert "teller.md" in result.output and "control character" in result.output, (args, result.output)
    assert run(archive, "check").exit_code != 0


# ----------------------------------------------------------------------------- the last pass over what is printed

def test_error_and_warning_lines_never_print_a_protected_name(archive):
    (archive / "recipes" / "bad.yml").write_text(
        "title: T\nmessages:\n  - text: x\n    themes: [Karim Haddad]\n", encoding="utf-8")
    check = run(archive, "check")
    assert check.exit_code == 1 and "recipes/bad.yml" in check.output and not leaks(check.output), check.output
    check_json = run(archive, "check", "--json")
    assert not leaks(check_json.stdout)
    brief = run(archive, "brief", str(archive / "recipes" / "bad.yml"))
    assert brief.exit_code != 0 and not leaks(brief.output), brief.output
    adhoc = run(archive, "brief", "--theme", "karim-haddad")
    assert adhoc.exit_code == 2 and "[redacted]" in adhoc.output and not leaks(adhoc.output), adhoc.output
    vocabulary = (archive / "vocabulary.yml").read_text(encoding="utf-8")
    (archive / "vocabulary.yml").write_text(vocabulary + "- id: karim-haddad\n  label: x\n- id: karim-haddad\n  label: y\n",
                                            encoding="utf-8")
    for args in (["search", "*"], ["stats"], ["themes"]):
        result = run(archive, *args)
        assert not leaks(result.output), (args, result.output)


def test_add_edit_never_prints_the_name_the_edited_story_protects(archive, tmp_path, monkeypatch):
    source = tmp_path / "article.txt"
    source.write_text(SOURCE, encoding="utf-8")
    editor = tmp_path / "editor.py"
    editor.write_text("import sys\np = sys.argv[1]\ns = open(p).read()\n"
                      "s = s.replace('redact: []', 'redact: [Karim Haddad]')\n"
                      "s = s.replace('They kill anyone', 'Karim Haddad killed anyone')\nopen(p, 'w').write(s)\n")
    monkeypatch.setenv("EDITOR", f"python3 {editor}")
    result = run(archive, "add", "--source", str(source), "--alias", "Abu X", "--outlet", "BBC", "--title", "T",
                 "--theme", "suppression-of-dissent", "--quote", "They kill anyone who argues with them.", "--edit")
    assert result.exit_code == 1 and "not verbatim" in result.output and not leaks(result.output), result.output


def test_the_last_pass_over_output_reads_the_index_list_and_not_every_story(archive, monkeypatch):
    from counterbrief import load
    from counterbrief.redact import output_redactor

    _write(archive, "teller")
    assert run(archive, "index").exit_code == 0
    monkeypatch.setattr(load, "story_paths", lambda *a: pytest.fail("read every story file"))
    last_pass = output_redactor(load.find_archive(archive, None, archive))
    assert last_pass.text("Karim Haddad and Omar") == "[redacted] and Omar"


# ----------------------------------------------------------------------------- what a template writes itself

_TAGLESS = [s for s in STORED_SPELLINGS.values() if "<" not in s]


def _own_templates(root: Path, html_extra: str = "") -> None:
    """Templates that write the name themselves: in every spelling, and (HTML) in every place where
    a page shows it as text or carries it as a value a reader sees."""
    (root / "templates").mkdir(exist_ok=True)
    lines = "\n\n".join(f"Case {n}: {s} helped." for n, s in enumerate(STORED_SPELLINGS.values()))
    for ext in ("md", "txt"):
        (root / "templates" / f"own.{ext}.j2").write_text(
            "# {{ title }}\n\nPrepared with Karim Haddad.\n\n" + lines + "\n\n{{ 'Kar' ~ 'im Had' ~ 'dad' }} wrote this.\n"
            "{% for m in messages %}\n- {{ m.text }}\n{% endfor %}\n", encoding="utf-8")
    cases = "\n".join(f"<p>Case {n}: {s} helped.</p>" for n, s in enumerate(_TAGLESS))
    (root / "templates" / "own.html.j2").write_text(
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Notes by Karim Haddad</title>'
        '<meta name="author" content="Karim Haddad"><meta name="description" content="with K&#97;rim Haddad">'
        '<style>li { color: brown }</style></head>'
        '<body><h1>{{ title }}</h1><p>Prepared with <b>Karim Haddad</b>.</p>'
        '<p title="Karim Haddad"><a href="https://example.org/karim-haddad">{{ "Kar" ~ "im Had" ~ "dad" }}</a></p>'
        '<img alt="Karim Haddad" src="data:image/gif;base64,R0lGODlhAQABAAAAACwAAAAAAQABAAA="><!-- Karim Haddad -->' +
        cases + html_extra +
        '<ul>{% for m in messages %}<li>{{ m.text }}</li>{% endfor %}</ul></body></html>\n',
        encoding="utf-8")


def _brief(archive: Path, out: Path):
    return run(archive, "brief", str(archive / "recipes" / "r.yml"), "--template", "own", "-o", str(out),
               "--include-synthetic")


@pytest.mark.parametrize("fmt", ["md", "txt", "html", "pdf"])
def test_a_name_the_template_itself_writes_is_redacted_in_every_brief(archive, tmp_path, fmt):
    _own_templates(archive)
    out = tmp_path / f"brief.{fmt}"
    result = _brief(archive, out)
    assert result.exit_code == 0, result.output
    seen = read_back(out, tmp_path)
    assert not leaks(seen), seen[:3000]
    assert "They kill dissenters" in seen and "Case 3: [redacted] helped." in " ".join(seen.split())
    if fmt == "html":   # the file itself too: comments, every attribute
        assert not leaks(out.read_text(encoding="utf-8"))
    if fmt == "pdf":    # the document's metadata (title, author, subject), as a PDF reader shows it
        from test_brief import need

        info = subprocess.run([need("pdfinfo"), "-enc", "UTF-8", str(out)], capture_output=True, text=True, check=True)
        assert "Title:" in info.stdout and "[redacted]" in info.stdout and not leaks(info.stdout), info.stdout


REFUSED_PLACES = {   # where a page would show or carry the name and no redaction in place is safe
    "split by an inline tag": "<p>Prepared with K<b>arim</b> Haddad.</p>",
    "split by a comment": "<p>Ka<!-- x -->rim Haddad</p>",
    "across two elements": "<span>Karim</span> <em>Haddad</em>",
    "a class a stylesheet shows": '<style>p.x::after { content: attr(class); }</style><p class="x karim-haddad"></p>',
    "an id (a PDF destination)": '<h2 id="Karim-Haddad">x</h2>',
    "a stylesheet's generated text": '<style>p.by::after { content: "signed Karim Haddad"; }</style><p class="by"></p>',
    "a CSS escape": '<style>p.by::after { content: "K\\61 rim Haddad"; }</style><p class="by"></p>',
    "two CSS strings": '<style>p.by::after { content: "Karim " "Haddad"; }</style><p class="by"></p>',
    "a bookmark label": "<h2 style=\"bookmark-label: 'Karim Haddad'\">x</h2>",
    "written backwards in <bdo>": '<bdo dir="rtl">daddaH miraK</bdo>',
    "a right-to-left override written as a reference": "<p>&#x202E;daddaH miraK&#x202C;</p>",
    "attributes with no space between": '<img alt="x"title="Karim Haddad">',
}


@pytest.mark.parametrize("fmt", ["html", "pdf"])
@pytest.mark.parametrize("place", REFUSED_PLACES.values(), ids=REFUSED_PLACES.keys())
def test_a_page_that_would_still_carry_the_name_is_refused_in_one_line_and_nothing_is_written(archive, tmp_path,
                                                                                               fmt, place):
    _own_templates(archive, html_extra=place)
    out = tmp_path / f"brief.{fmt}"
    result = _brief(archive, out)
    assert result.exit_code == 1, result.output
    assert "would show a name a story protects" in result.stderr and "own.html.j2" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not leaks(result.output)
    assert not out.exists()


def _data(kind: str, text: str) -> str:
    import base64

    return f"data:{kind};base64," + base64.b64encode(text.encode()).decode()


_PIXEL = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9aw"
          "AAAABJRU5ErkJggg==")


LAID_OUT_TRICKS = {   # where only the page as laid out shows the name: styles build, join, move or reverse it
    "generated text before an element's own": '<style>.who::before { content: "Karim "; }</style><p class="who">Haddad</p>',
    "attr() of a data attribute": '<style>.a::before { content: attr(data-first) " "; }</style>'
                                  '<p class="a" data-first="Karim">Haddad</p>',
    "string-set shown in a page margin": '<style>h2.t { string-set: t "Kar" content(text); } '
                                         '@page { @bottom-left { content: string(t); } }</style><h2 class="t">im Haddad</h2>',
    "two strings inside one word": '<style>p.by::after { content: "Kar" "im Haddad"; }</style><p class="by"></p>',
    "quotes": '<style>q { quotes: "Kar" "."; }</style><q>im Haddad</q>',
    "a bookmark label from two strings": "<h2 style=\"bookmark-label: 'Kar' 'im Haddad'\">x</h2>",
    "a hidden letter inside a word": '<p>Kar<span hidden>x</span>im Haddad</p>',
    "display: none inside a word": '<p>Kar<span style="display:none">x</span>im Haddad</p>',
    "a class that hides inside a word": '<style>.h { display: none }</style><p>Kar<span class="h">x</span>im Haddad</p>',
    "blocks made inline": '<div style="display:inline">Kar</div><div style="display:inline">im Haddad</div>',
    "attr() behind a comment": '<style>p.x::after { content: attr(/**/class); }</style><p class="x karim-haddad"></p>',
    "a counter style's symbols": '<style>@counter-style n { system: cyclic; symbols: K; suffix: "arim Haddad"; }'
                                 ' ol { list-style: n inside; }</style><ol><li>.</li></ol>',
    "flex row-reverse": '<div style="display:flex; flex-direction:row-reverse"><span>im Haddad</span><span>Kar</span></div>',
    "a faint letter before a split word": '<p><span style="color:rgba(0,0,0,.004)">x</span>Kar<b>im Haddad</b></p>',
    "a tiny letter before a split word": '<p><span style="font-size:0.01px">x</span>Kar<b>im Haddad</b></p>',
    "transparent text (the PDF's text layer)": '<style>.f::before { content: "Kar"; color: transparent }</style>'
                                                '<span class="f">im Haddad</span>',
    "Latin in a right-to-left paragraph, two isolates": '<p dir="rtl"><bdi>im Haddad</bdi><bdi>Kar</bdi></p>',
    "Latin around a right-to-left mark": '<p dir="rtl">im Haddad&#x200F;Kar</p>',
    "a right-to-left span in an English line": '<p>Note: <span dir="rtl">im Haddad&#x200F;Kar</span> wrote.</p>',
    "keywords in two tags": '<meta name="keywords" content="Karim"><meta name="keywords" content="Haddad">',
    "authors in two tags": '<meta name="author" content="Karim"><meta name="author" content="Haddad">',
    "a bidi override by class": '<style>.r { unicode-bidi: bidi-override; direction: rtl }</style>'
                                '<p><span class="r">daddaH miraK</span></p>',
}
FETCH_TRICKS = {   # what a data: URI would carry past every reading: only pictures and fonts are fetched
    "an SVG picture's text": '<img src="' + _data("image/svg+xml", '<svg xmlns="http://www.w3.org/2000/svg">'
                                                  '<text y="20">Karim Haddad</text></svg>') + '">',
    "an SVG claiming to be a PNG": '<img src="' + _data("image/png", '<svg xmlns="http://www.w3.org/2000/svg">'
                                                        '<text y="20">Karim Haddad</text></svg>') + '">',
    "a stylesheet": '<link rel="stylesheet" href="' + _data("text/css", 'p.by::after{content:"Karim Haddad"}')
                    + '"><p class="by"></p>',
    "an attached file": '<link rel="attachment" href="' + _data("text/plain", "Karim Haddad") + '">',
    "an attached picture": f'<a rel="attachment" href="{_PIXEL}">notes</a>',
}


def _refused(archive: Path, tmp_path: Path, fmt: str, place: str) -> str:
    """A brief whose own template holds ``place``: refused in one line that shows no name, nothing
    written. Its standard error."""
    _own_templates(archive, html_extra=place)
    out = tmp_path / f"brief.{fmt}"
    result = _brief(archive, out)
    assert result.exit_code == 1, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and not leaks(result.output)
    assert not out.exists()
    return result.stderr


@pytest.mark.parametrize("fmt", ["html", "pdf"])
@pytest.mark.parametrize("place", LAID_OUT_TRICKS.values(), ids=LAID_OUT_TRICKS.keys())
def test_a_page_whose_styles_would_build_the_name_is_read_as_laid_out_and_refused(archive, tmp_path, fmt, place):
    stderr = _refused(archive, tmp_path, fmt, place)
    assert "would show a name a story protects" in stderr, stderr


@pytest.mark.parametrize("fmt", ["html", "pdf"])
@pytest.mark.parametrize("place", FETCH_TRICKS.values(), ids=FETCH_TRICKS.keys())
def test_a_data_uri_that_is_not_a_picture_or_a_font_and_any_attachment_are_refused(archive, tmp_path, fmt, place):
    stderr = _refused(archive, tmp_path, fmt, place)
    assert re.search("asks the brief to (fetch data:|attach a file)|which no check can read", stderr), stderr




@pytest.mark.parametrize("fmt", ["html", "pdf"])
def test_a_template_s_own_picture_and_generated_punctuation_still_make_a_brief(archive, tmp_path, fmt):
    place = (f'<img alt="logo" src="{_PIXEL}"><style>.q::before {{ content: "\\201C"; }} '
             '@page { @bottom-right { content: "page " counter(page); } }</style><p class="q">Karim said nothing.</p>')
    _own_templates(archive, html_extra=place)
    out = tmp_path / f"brief.{fmt}"
    result = _brief(archive, out)
    assert result.exit_code == 0, result.output
    assert not leaks(read_back(out, tmp_path))


_SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="30">{}</svg>'
UNCHECKED = {   # what a browser would show or do beyond what the checks read: refused in an own template's page
    "a script": "<script>document.write('Kar' + 'im Haddad')</script>",
    "an event handler": '<img alt="x" src="%s" onload="document.title=1">' % _PIXEL,
    "a javascript: link": '<a href="javascript:alert(1)">x</a>',
    "a javascript: link with a tab inside": '<a href="java&#9;script:alert(1)">x</a>',
    "a javascript: link behind a control character": '<a href="&#1;javascript:alert(1)">x</a>',
    "SVG animation of a link": _SVG.format('<a><animate attributeName="href" values="javascript:alert(1)"/>'
                                           '<rect width="9" height="9"/></a>'),
    "a frame": '<iframe srcdoc="&lt;p&gt;x"></iframe>',
    "a refresh": '<meta http-equiv="refresh" content="0;url=https://example.org">',
    "a <base>": '<base href="https://example.org/">',
    "text an SVG places": _SVG.format('<text x="33" y="20">im Haddad</text><text x="5" y="20">Kar</text>'),
    "a font of its own": '<style>@font-face { font-family: x; src: url(data:font/ttf;base64,AAEAAA==) }</style>',
    "styles for the screen": '<style>@media screen { .s::before { content: "Kar" } }</style><p class="s">im Haddad</p>',
    "a shadow tree": '<span><template shadowrootmode="open"><slot name="b"></slot><slot name="a"></slot></template>'
                     '<span slot="a">im Haddad</span><span slot="b">Kar</span></span>',
    "a stylesheet link for the screen": '<link rel="stylesheet" media="screen" href="https://example.org/n.css">',
    "a picture source": '<picture><source srcset="https://example.org/x.png"><img alt="x" src="%s"></picture>' % _PIXEL,
    "a CSS import": '<style>@import "https://example.org/n.css";</style>',
    "a CSS background": '<p style="background: url(https://example.org/x.png)">x</p>',
    "a <noscript> a browser hides": '<p>Kar<noscript>x</noscript>im Haddad</p>',
    "an <audio> a browser hides": '<p>Kar<audio>x</audio>im Haddad</p>',
    "a MathML annotation": '<p>Kar<math><semantics><mi></mi><annotation>x</annotation></semantics></math>im Haddad</p>',
    "ruby text a browser puts above": '<p><ruby>Kar<rt>zzz</rt></ruby>im Haddad</p>',
    "a form field's value": '<input value="Kar" style="border:0;padding:0;width:1.45em">im Haddad',
    "styles for a link's target": '<style>.x:target::after { content: "im Haddad" }</style>'
                                  '<p><a href="#t">see</a></p><p id="t" class="x">Kar</p>',
    "styles for a hover": '<style>html:hover .x::after { content: "im Haddad" }</style><p class="x">Kar</p>',
    "closed details": '<details><summary>More</summary>Karim Haddad</details>',
}
IN_PDF_TOO = {"a script", "an event handler", "a javascript: link", "a javascript: link with a tab inside",
              "a javascript: link behind a control character", "SVG animation of a link", "a frame", "a <base>",
              "text an SVG places", "a shadow tree"}


@pytest.mark.parametrize("fmt", ["html", "pdf"])
@pytest.mark.parametrize("place", UNCHECKED.values(), ids=UNCHECKED.keys())
def test_an_own_template_s_page_that_would_show_or_do_more_than_the_checks_read_is_refused(archive, tmp_path, fmt,
                                                                                            place):
    """In an HTML page every one is refused. A PDF is WeasyPrint's page itself, read as it is laid
    out: there code and SVG text are refused, and anything else either makes no difference (a
    screen-only style is not applied), is refused by the fetcher, or is read in the layout."""
    _own_templates(archive, html_extra=place)
    out = tmp_path / f"brief.{fmt}"
    result = _brief(archive, out)
    if fmt == "pdf" and UNCHECKED_IDS[place] not in IN_PDF_TOO:
        if result.exit_code == 0:   # as a reader reads it (a field's "Kar" stands on a line of its own there)
            assert not Redactor.from_names([NAME]).finds(read_back(out, tmp_path))
        else:
            assert len(result.stderr.strip().splitlines()) == 1 and not out.exists(), result.output
        return
    assert result.exit_code == 1, result.output
    assert "which no check can read as a reader will see it" in result.stderr and "own.html.j2" in result.stderr, \
        result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()


UNCHECKED_IDS = {v: k for k, v in UNCHECKED.items()}


@pytest.mark.parametrize("fmt", ["html", "pdf"])
def test_css_that_changes_nothing_a_reader_sees_and_print_only_styles_do_not_refuse_an_own_template(archive, tmp_path,
                                                                                                     fmt):
    _own_templates(archive, html_extra='<style>a { transition: color .2s; cursor: pointer; print-color-adjust: exact; '
                                       'user-select: none } html { scroll-behavior: smooth } '
                                       '@media print { p { orphans: 3 } }</style><p><a href="mailto:x@example.org">'
                                       'write</a></p>')
    out = tmp_path / f"brief.{fmt}"
    assert _brief(archive, out).exit_code == 0
    if fmt == "pdf":   # the PDF is WeasyPrint's page: styles for a narrow screen change nothing there
        _own_templates(archive, html_extra='<style>@media (max-width: 600px) { p { margin: 0 } } '
                                           '@supports (display: grid) { p { margin: 0 } }</style>')
        assert _brief(archive, out).exit_code == 0


def test_css_that_weasyprint_does_not_read_refuses_an_own_template_s_html_page(archive, tmp_path):
    """A browser would paint it (text filled in another colour); the check, which reads the page
    as WeasyPrint lays it out, cannot: the HTML brief is refused, the PDF (WeasyPrint's) is not."""
    _own_templates(archive, html_extra='<style>.f::before { content: "x"; -webkit-text-fill-color: #000 }</style>'
                                       '<p class="f">y</p>')
    out = tmp_path / "brief.html"
    result = _brief(archive, out)
    assert result.exit_code == 1 and "CSS the check cannot read" in result.stderr, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()
    assert _brief(archive, tmp_path / "brief.pdf").exit_code == 0


@pytest.mark.parametrize("fmt", ["html", "pdf"])
def test_text_a_transform_moves_refuses_the_page_while_names_are_protected(archive, tmp_path, fmt):
    _own_templates(archive, html_extra='<p><span style="display:inline-block; transform: translate(0, 20px)">Kar'
                                       '</span></p><p style="margin-left: 2em">im Haddad</p>')
    out = tmp_path / f"brief.{fmt}"
    result = _brief(archive, out)
    assert result.exit_code == 1 and "moves text with a CSS transform" in result.stderr, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()


@pytest.mark.parametrize("fmt", ["html", "pdf"])
@pytest.mark.parametrize("place", [
    '<p><a href="https://example.org/">Haddad</a> family members later met Karim.</p>',
    '<p><b>Haddad</b>, Karim said, was a common name.</p>',
    '<div style="display:flex"><p style="width:40%">They paid</p><p style="width:40%">literacy teachers</p></div>'
    '<p>Karim <i>and</i> Haddad are two words here, apart.</p>'.replace("Karim <i>and</i> Haddad", "Karim, and not Haddad"),
], ids=["a link at the start of a line", "bold at the start of a line", "columns and words apart"])
def test_the_laid_out_reading_does_not_refuse_a_page_whose_words_only_sit_near_each_other(archive, tmp_path, fmt,
                                                                                          place):
    _own_templates(archive, html_extra=place)
    out = tmp_path / f"brief.{fmt}"
    result = _brief(archive, out)
    assert result.exit_code == 0, result.output
    assert "Haddad" in " ".join(read_back(out, tmp_path).split())


def test_an_arabic_line_is_read_right_to_left_and_words_that_only_sit_near_each_other_pass(archive, tmp_path):
    _write(archive, "protector-ar", redact=["كريم حداد"])
    (archive / "templates").mkdir()
    (archive / "templates" / "own.html.j2").write_text(
        '<!DOCTYPE html><html lang="ar" dir="rtl"><head><meta charset="utf-8"><title>{{ title }}</title></head><body>'
        '<p dir="rtl"><a href="https://example.org/">حداد</a> وأسرته التقوا لاحقاً كريم.</p>'
        '<ul>{% for m in messages %}<li>{{ m.text }}</li>{% endfor %}</ul></body></html>', encoding="utf-8")
    assert _brief(archive, tmp_path / "ok.pdf").exit_code == 0
    (archive / "templates" / "own.html.j2").write_text(
        '<!DOCTYPE html><html lang="ar" dir="rtl"><head><meta charset="utf-8"><title>{{ title }}</title></head><body>'
        '<p dir="rtl">قال <span>كر</span><b>يم حداد</b> ذلك.</p></body></html>', encoding="utf-8")
    result = _brief(archive, tmp_path / "no.pdf")
    assert result.exit_code == 1 and "would show a name a story protects" in result.stderr, result.output


def test_a_page_that_cannot_be_laid_out_is_one_line_not_an_internal_error(archive, tmp_path):
    _own_templates(archive, html_extra='<p style="font-size: 1e30px">x</p>')
    result = _brief(archive, tmp_path / "brief.pdf")
    if result.exit_code == 0:   # a WeasyPrint that copes with it: nothing to report
        return
    assert "internal error" not in result.output and "Traceback" not in result.output, result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.parametrize("trick", ["<bdo dir=\"rtl\">daddaH miraK</bdo>", "&#x202E;daddaH miraK&#x202C;",
                                   "Kar<span hidden>x</span>im Haddad", "Kar<i style=\"display:none\">x</i>im Haddad",
                                   "<span style=\"unicode-bidi:bidi-override;direction:rtl\">daddaH miraK</span>"],
                         ids=["bdo", "override as a reference", "hidden", "display none", "bidi-override"])
def test_a_markdown_brief_is_read_as_a_viewer_shows_it_and_refused_when_the_name_would_show(archive, tmp_path, trick):
    (archive / "templates").mkdir()
    (archive / "templates" / "own.md.j2").write_text("# {{ title }}\n\nSigned: " + trick + "\n", encoding="utf-8")
    out = tmp_path / "brief.md"
    result = _brief(archive, out)
    assert result.exit_code == 1 and "would show a name a story protects" in result.stderr, result.output
    assert not out.exists()


def test_a_template_file_given_on_the_command_line_and_a_brief_on_stdout_are_redacted_too(archive, tmp_path):
    mine = tmp_path / "elsewhere" / "mine.md.j2"
    mine.parent.mkdir()
    mine.write_text("# {{ title }}\n\nWith thanks to Karim\nHaddad.\n", encoding="utf-8")
    result = run(archive, "brief", str(archive / "recipes" / "r.yml"), "--template", str(mine), "--include-synthetic")
    assert result.exit_code == 0, result.output
    assert "With thanks to [redacted]." in result.stdout and not leaks(result.stdout)


def _tags(page: str) -> list[str]:
    return re.findall(r"</?[a-zA-Z0-9]+|\s(?:class|lang|dir|style|id)=\"[^\"]*\"", page)


def test_names_that_are_also_html_or_css_words_leave_the_page_markup_as_it_was(archive, tmp_path):
    """A protected "Li", "Em", "Brown", "Table" or "Banner" is redacted in the text and leaves <li>,
    <em>, <table>, `color: brown` and class="banner" alone: the HTML brief keeps its structure and
    its styles, and is written."""
    plain = tmp_path / "plain.html"
    assert run(archive, "brief", str(archive / "recipes" / "r.yml"), "-o", str(plain), "--include-synthetic").exit_code == 0
    _write(archive, "other", redact=["Li", "Em", "Brown", "Table", "Serif", "Blockquote", "Section", "Grid", "Banner"],
           body="Li and Em met Brown at the Table.", status="draft")   # in no brief: the page is the same
    protected = tmp_path / "protected.html"
    result = run(archive, "brief", str(archive / "recipes" / "r.yml"), "-o", str(protected), "--include-synthetic")
    assert result.exit_code == 0, result.output
    before, after = plain.read_text(encoding="utf-8"), protected.read_text(encoding="utf-8")
    assert _tags(after) == _tags(before)
    style = re.compile(r"<style[\s\S]*?</style>")
    assert style.findall(after) == style.findall(before) and style.findall(before)


_PLACES = {   # (a page with the name in one place, whether redaction in place takes it out)
    "text": ("<p>{}</p>", True),
    "title attribute": ('<p title="{}">x</p>', True),
    "unquoted address": ("<a href=https://example.org/{}>x</a>", True),
    "meta content": ('<meta name="author" content="{}">', True),
    "comment": ("<!-- {} -->", True),
    "title element": ("<title>{}</title>", True),
    "split by inline tags": (None, False),
    "class shown by attr()": ('<style>p::after {{ content: attr(class) }}</style><p class="{}">x</p>', False),
    "css string": ('<style>p::after {{ content: "{}" }}</style>', False),
    "css comment": ("<style>/* {} */ p {{ color: red }}</style>", False),
    "css string with an escape": (None, False),
}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=st.text("abcdefghijklmnopqrstuvwxyz", min_size=3, max_size=8),
       last=st.text("abcdefghijklmnopqrstuvwxyz", min_size=3, max_size=8),
       place=st.sampled_from(sorted(_PLACES)), data=st.data())
def test_property_a_disguised_name_anywhere_in_a_page_is_redacted_or_found_and_the_markup_stays(first, last, place,
                                                                                                 data):
    from counterbrief.redact import page_leak, redact_html

    assume(first + last not in "redacted")
    name = f"{first.capitalize()} {last.capitalize()}"
    separator = data.draw(st.sampled_from([" ", "\n", "&nbsp;", "\u00a0", " \u200b"]))
    spelled = _disguise(first, data) + separator + _disguise(last, data)
    pattern, in_place = _PLACES[place]
    if place == "split by inline tags":
        piece = f"<p>{_disguise(first[:2], data)}<b>{_disguise(first[2:], data)} {_disguise(last, data)}</b> said</p>"
    elif place == "css string with an escape":   # "\\6b arim" is "karim" on the page
        piece = f'<style>p::after {{ content: "\\{ord(first[0]):x} {first[1:]} {_disguise(last, data)}" }}</style>'
    elif place == "unquoted address":   # a space would end the value: in an address it is written %20
        piece = pattern.format(spelled.replace(" ", "%20").replace("\n", "%0A"))
    else:
        piece = pattern.format(spelled)
    head, tail = '<html><head><meta charset="utf-8"></head><body class="x">', "<ul><li>kept</li></ul></body></html>"
    r = Redactor.from_names([name])
    out = redact_html(head + piece + tail, r)
    leak = page_leak(out, r)
    assert out.startswith(head) and out.endswith(tail)
    if in_place:
        assert leak is None and REDACTED in out and (first + last) not in letters(out), (piece, out)
    else:
        assert leak is not None, (piece, out)


@pytest.mark.parametrize("fmt", ["html", "pdf"])
def test_a_copy_of_the_built_in_template_passes_every_check_an_own_template_gets(archive, tmp_path, fmt):
    """Curators start their own template from the built-in one: the copy, read as laid out and
    checked for what a browser would do beyond that, still makes the brief."""
    (archive / "templates").mkdir()
    shutil.copy(REPO / "templates" / "brief.html.j2", archive / "templates" / "own.html.j2")
    out = tmp_path / f"brief.{fmt}"
    result = _brief(archive, out)
    assert result.exit_code == 0, result.output
    seen = " ".join(read_back(out, tmp_path).split())
    assert "They kill dissenters" in seen and not leaks(seen)


@pytest.mark.parametrize("trick, why", [
    ('<style>.x::before { content: "Kar" }</style><span class="x">im Haddad</span>', "would show a name"),
    ('Kar<span style="font-size:0.01px">x</span>im Haddad', "would show a name"),
    ('<script>document.write("Karim Haddad")</script>', "which no check can read"),
    ('<img alt="x" src="https://example.org/pixel.png">', "which no check can read"),
], ids=["generated text", "a tiny letter", "a script", "a fetched picture"])
def test_an_own_markdown_template_is_checked_as_a_viewer_showing_its_html_and_styles_would_show_it(archive, tmp_path,
                                                                                                     trick, why):
    (archive / "templates").mkdir()
    (archive / "templates" / "own.md.j2").write_text("# {{ title }}\n\nSigned: " + trick + "\n", encoding="utf-8")
    out = tmp_path / "brief.md"
    result = _brief(archive, out)
    assert result.exit_code == 1 and why in result.stderr, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()
    (archive / "templates" / "own.md.j2").write_text("# {{ title }}\n\n**Karim**, not Haddad.\n", encoding="utf-8")
    assert _brief(archive, out).exit_code == 0 and "**Karim**, not Haddad." in out.read_text(encoding="utf-8")
