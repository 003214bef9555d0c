"""Briefs: the gate, hostile text, reproducibility, gaps, errors, and every format read back by a real client."""
from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from counterbrief.cli import main

from conftest import REPO

FORMATS = ["md", "html", "txt", "json", "pdf", "docx"]

SOURCE = """SYNTHETIC SOURCE FOR BRIEF TESTS.
"Quote ALPHA approved public words about killing dissenters." said one.
"Quote BRAVO draft words about killing dissenters." said two.
"Quote CHARLIE internal words about killing dissenters." said three.
"Quote DELTA restricted words about killing dissenters." said four.
"Quote ECHO synthetic words about killing dissenters." said five.
"Quote FOXTROT graphic words about killing dissenters." said six.
"Quote GOLF hostile <script>alert('q')</script> words about killing dissenters." said seven.
"Quote HOTEL mentions Hidden Name about killing dissenters." said eight.
«قَتَلُوا كل من اعترض عليهم في الدَّوْلَة» قال تسعة.
"""

HOSTILE_SUMMARY = """Summary with <script>alert('x')</script> and <img src="http://evil.example/x.png" onerror="alert(1)">
and [a link](javascript:alert(2)) and <iframe src="http://evil.example/"></iframe> and <a href="#" onclick="alert(3)">click</a>."""


def story(root: Path, sid: str, quote: str, *, lang="en", graphic=False, body="A synthetic summary.", **fields):
    data = {"id": sid, "title": f"Title {sid}", "speaker": {"alias": f"Speaker {sid}", "role": "fighter", "now": "free"},
            "group": "ISIS", "language": lang, "themes": ["suppression-of-dissent"],
            "source": {"outlet": f"Outlet {sid}", "published": "2016", "snapshot": "sources/src.txt",
                       "url": f"https://example.org/{sid}"},
            "quotes": [{"text": quote, "graphic": graphic}], "sensitivity": "public", "status": "approved",
            "synthetic": False, "notes": f"CURATOR NOTE {sid.upper()}"}
    data.update(fields)
    (root / "stories" / f"{sid}.md").write_text("---\n" + yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
                                                + "---\n" + body + "\n", encoding="utf-8")


@pytest.fixture
def gated(tmp_path):
    """An archive with one story per gate: only alpha, golf, hotel and the Arabic one may appear by default."""
    root = tmp_path / "gated"
    for sub in ("stories", "sources", "recipes"):
        (root / sub).mkdir(parents=True)
    shutil.copy(REPO / "vocabulary.yml", root / "vocabulary.yml")
    (root / "sources" / "src.txt").write_text(SOURCE, encoding="utf-8")
    story(root, "alpha", "Quote ALPHA approved public words about killing dissenters.")
    story(root, "bravo", "Quote BRAVO draft words about killing dissenters.", status="draft")
    story(root, "charlie", "Quote CHARLIE internal words about killing dissenters.", sensitivity="internal")
    story(root, "delta", "Quote DELTA restricted words about killing dissenters.", sensitivity="restricted")
    story(root, "echo", "Quote ECHO synthetic words about killing dissenters.", synthetic=True)
    story(root, "foxtrot", "Quote FOXTROT graphic words about killing dissenters.", graphic=True)
    story(root, "golf", "Quote GOLF hostile <script>alert('q')</script> words about killing dissenters.",
          body=HOSTILE_SUMMARY)
    story(root, "hotel", "Quote HOTEL mentions Hidden Name about killing dissenters.", redact=["Hidden Name"],
          body="Hidden Name was his brother.")
    story(root, "arabic", "قَتَلُوا كل من اعترض عليهم في الدَّوْلَة", lang="ar")
    recipe = {"title": "Gate test", "date": "2026-12-01", "level": "public", "goal": "Test the gate.",
              "audience": {"description": "Testers", "language": "en"},
              "messages": [{"text": "They kill dissenters", "themes": ["suppression-of-dissent"]},
                           {"text": "Nothing backs this", "themes": ["infighting"]}],
              "max_accounts_per_message": 20}
    (root / "recipes" / "gate.yml").write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    return root


def brief(root: Path, out: Path, *extra):
    return CliRunner().invoke(main, ["--archive", str(root), "brief", str(root / "recipes" / "gate.yml"), "-o", str(out),
                                     *map(str, extra)])


# ----------------------------------------------------------------------------- real clients

def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        if os.environ.get("COUNTERBRIEF_REQUIRE_CLIENTS"):
            pytest.fail(f"{tool} is required here (COUNTERBRIEF_REQUIRE_CLIENTS) but not installed")
        pytest.skip(f"{tool} not installed")
    return path


def read_back(path: Path, tmp_path: Path) -> str:
    """What a reader of the file sees, through a real client where the format has one."""
    fmt = path.suffix[1:]
    if fmt == "pdf":
        return subprocess.run([need("pdftotext"), "-enc", "UTF-8", str(path), "-"], capture_output=True, text=True,
                              check=True).stdout
    if fmt == "docx":
        return subprocess.run([need("pandoc"), "-f", "docx", "-t", "plain", "--wrap=none", str(path)],
                              capture_output=True, text=True, check=True).stdout
    if fmt == "html":
        return chromium_dom(path, tmp_path)
    return path.read_text(encoding="utf-8")


def chromium_args(tmp_path: Path) -> list[str]:
    return [need("chromium"), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'chromium-profile'}"]


def chromium_dom(path: Path, tmp_path: Path) -> str:
    """The page's text after Chromium has parsed it and run whatever scripts survived."""
    result = subprocess.run([*chromium_args(tmp_path), "--dump-dom", path.as_uri()], capture_output=True, text=True,
                            timeout=120)
    return result.stdout


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("fmt", FORMATS)
def test_only_approved_public_accounts_reach_a_default_brief(gated, tmp_path, fmt):
    out = tmp_path / f"brief.{fmt}"
    result = brief(gated, out)
    assert result.exit_code == 0, result.output
    text = flat(read_back(out, tmp_path))
    assert "ALPHA" in text and "GOLF" in text and "HOTEL" in text
    for hidden in ("BRAVO", "CHARLIE", "DELTA", "ECHO", "FOXTROT", "CURATOR NOTE", "Hidden Name"):
        assert hidden not in text, hidden
    assert "[redacted]" in text


@pytest.mark.parametrize("fmt", ["md", "json", "pdf"])
def test_internal_briefs_add_internal_accounts_but_never_restricted(gated, tmp_path, fmt):
    out = tmp_path / f"internal.{fmt}"
    assert brief(gated, out, "--level", "internal").exit_code == 0
    text = flat(read_back(out, tmp_path))
    assert "CHARLIE" in text and "INTERNAL" in text.upper()
    assert "DELTA" not in text and "BRAVO" not in text


@pytest.mark.parametrize("fmt", ["md", "docx"])
def test_graphic_and_synthetic_quotes_enter_only_when_asked(gated, tmp_path, fmt):
    out = tmp_path / f"asked.{fmt}"
    assert brief(gated, out, "--include-graphic", "--include-synthetic").exit_code == 0
    text = flat(read_back(out, tmp_path))
    assert "FOXTROT" in text and "ECHO" in text
    assert "SYNTHETIC" in text.upper()
    assert "DELTA" not in text


@pytest.mark.parametrize("fmt", FORMATS)
def test_two_renders_are_byte_identical(gated, tmp_path, fmt):
    a, b = tmp_path / f"a.{fmt}", tmp_path / f"b.{fmt}"
    assert brief(gated, a).exit_code == 0
    assert brief(gated, b).exit_code == 0
    assert a.read_bytes() == b.read_bytes()


def test_hostile_story_text_is_neutralised_in_html(gated, tmp_path):
    out = tmp_path / "brief.html"
    assert brief(gated, out).exit_code == 0
    html = out.read_text()
    lowered = html.lower()
    for bad in ("<script", "onerror", "onclick", "javascript:", "<iframe", "evil.example", "<img"):
        assert bad not in lowered, bad
    assert "&lt;script&gt;alert(&#39;q&#39;)&lt;/script&gt;" in html   # the verbatim quote is shown as text
    dom = chromium_dom(out, tmp_path)
    assert "<script" not in dom.lower() and "Quote GOLF" in dom


def test_hostile_story_text_is_neutralised_in_pdf(gated, tmp_path):
    out = tmp_path / "brief.pdf"
    assert brief(gated, out).exit_code == 0
    raw = out.read_bytes()
    assert b"/JavaScript" not in raw and b"javascript:" not in raw.lower() and b"evil.example" not in raw
    text = read_back(out, tmp_path)
    assert "<script>alert('q')</script>" in flat(text)   # shown as harmless text, as the source has it


def test_a_message_with_no_usable_account_is_reported(gated, tmp_path):
    out = tmp_path / "brief.md"
    result = brief(gated, out)
    assert 'warning: no usable account for the message "Nothing backs this"' in result.stderr
    assert "No approved account backs this message yet" in out.read_text()
    strict = brief(gated, tmp_path / "strict.md", "--strict")
    assert strict.exit_code == 1
    assert "1 message(s) have no usable account; nothing was written" in strict.stderr
    assert not (tmp_path / "strict.md").exists()


def test_pdf_shows_the_arabic_quote_right_to_left(gated, tmp_path):
    out = tmp_path / "brief.pdf"
    assert brief(gated, out).exit_code == 0
    text = read_back(out, tmp_path)
    assert "الدَّوْلَة" in text or "الدولة" in re.sub("[\u064b-\u0652]", "", text)
    bbox = subprocess.run([need("pdftotext"), "-bbox", str(out), "-"], capture_output=True, text=True, check=True).stdout
    words = {}
    for m in re.finditer(r'<word xMin="([\d.]+)" yMin="([\d.]+)"[^>]*>([^<]+)</word>', bbox):
        # -bbox lists each Arabic word's glyphs in visual order: read them back to front.
        word = re.sub("[\u064b-\u0652]", "", m.group(3))
        if re.search("[\u0600-\u06ff]", word):
            word = word[::-1]
        words.setdefault(word.strip("\u201c\u201d\"\u00ab\u00bb"), (float(m.group(1)), float(m.group(2))))
    first, last = words.get("قتلوا"), words.get("الدولة")
    assert first and last, sorted(words)[:40]
    # Same line, and the first word of the sentence stands to the right of the last: right to left.
    assert abs(first[1] - last[1]) < 2 and first[0] > last[0]


def test_docx_has_real_headings_quote_style_and_rtl_arabic(gated, tmp_path):
    import docx

    out = tmp_path / "brief.docx"
    assert brief(gated, out).exit_code == 0
    document = docx.Document(str(out))
    styles = {p.style.name for p in document.paragraphs}
    assert {"Title", "Heading 1", "Heading 2", "Quote"} <= styles
    arabic = next(p for p in document.paragraphs if "الدَّوْلَة" in p.text)
    assert arabic._p.pPr.find("{http://schemas.openxmlformats.org/wordprocessingml/2006/main}bidi") is not None
    assert "ALPHA" in read_back(out, tmp_path)


def _png_is_blank(png: bytes) -> bool:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        if kind == b"IDAT":
            idat += png[pos + 8:pos + 8 + length]
        pos += 12 + length
    pixels = zlib.decompress(idat)
    return len(set(pixels[1:5000])) <= 2 and len(set(pixels)) <= 3


def test_html_renders_in_headless_chromium_to_a_page_that_is_not_blank(gated, tmp_path):
    out = tmp_path / "brief.html"
    assert brief(gated, out).exit_code == 0
    shot = tmp_path / "shot.png"
    subprocess.run([*chromium_args(tmp_path), f"--screenshot={shot}", "--window-size=900,1200", out.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.is_file(), "chromium wrote no screenshot"
    assert not _png_is_blank(shot.read_bytes())
    html = out.read_text()
    assert 'lang="ar" dir="rtl"' in html


def test_json_brief_has_the_documented_keys(gated, tmp_path):
    out = tmp_path / "brief.json"
    assert brief(gated, out).exit_code == 0
    data = json.loads(out.read_text())
    assert set(data) >= {"title", "date", "level", "goal", "audience", "messages", "messengers", "do_no_harm",
                         "citations", "provenance", "gaps"}
    assert set(data["provenance"]) >= {"recipe_sha256", "archive_fingerprint", "tool_version", "date"}
    quote_texts = [q["text"] for m in data["messages"] for t in m["testimony"] for q in t["quotes"]]
    assert any("ALPHA" in q for q in quote_texts)


def test_a_template_error_names_the_template_and_line_and_writes_nothing(gated, tmp_path):
    tpl = tmp_path / "mine.md.j2"
    tpl.write_text("# {{ title }}\n\n{{ no_such_field }}\n")
    out = tmp_path / "brief.md"
    out.write_text("the previous good brief")
    result = brief(gated, out, "--template", tpl)
    assert result.exit_code == 1
    assert re.search(r"mine\.md\.j2:3: template error: 'no_such_field' is undefined", result.stderr), result.stderr
    assert out.read_text() == "the previous good brief"


def test_a_sandboxed_template_cannot_reach_python_internals(gated, tmp_path):
    tpl = tmp_path / "evil.md.j2"
    tpl.write_text("{{ title.__class__.__mro__[1].__subclasses__() }}\n")
    result = brief(gated, tmp_path / "x.md", "--template", tpl)
    assert result.exit_code == 1 and "template error" in result.stderr


def test_a_bad_recipe_is_one_line_naming_the_file_field_and_fix(gated, tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("title: T\nmessages:\n  - text: M\n    themes: [propoganda-deception]\n")
    result = CliRunner().invoke(main, ["--archive", str(gated), "brief", str(bad)])
    assert result.exit_code == 1
    assert result.stderr.strip() == (f"Error: {bad}:4: unknown theme 'propoganda-deception' in message 1; "
                                     "did you mean 'propaganda-deception'?")


def test_an_adhoc_brief_makes_one_message_per_theme(gated):
    result = CliRunner().invoke(main, ["--archive", str(gated), "brief", "--theme", "suppression-of-dissent",
                                       "--theme", "regret", "--format", "json"])
    data = json.loads(result.stdout)
    assert [m["themes"] for m in data["messages"]] == [["suppression-of-dissent"], ["regret"]]
    assert data["messages"][1]["gap"] is True


def test_diversity_prefers_a_new_speaker_for_the_next_message(gated):
    recipe = gated / "recipes" / "two.yml"
    recipe.write_text(yaml.safe_dump({"title": "T", "date": "2026-01-01", "max_accounts_per_message": 1, "messages": [
        {"text": "One", "themes": ["suppression-of-dissent"]}, {"text": "Two", "themes": ["suppression-of-dissent"]}]}))
    data = json.loads(CliRunner().invoke(main, ["--archive", str(gated), "brief", str(recipe), "--format", "json"]).stdout)
    speakers = [m["testimony"][0]["speaker"] for m in data["messages"]]
    assert len(set(speakers)) == 2


def test_the_readme_first_command_writes_a_pdf_brief_from_the_bundled_archive(tmp_path):
    exe = shutil.which("counterbrief", path=os.path.dirname(sys.executable)) or shutil.which("counterbrief")
    if exe is None:
        pytest.skip("counterbrief is not installed")
    out = tmp_path / "brief.pdf"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    result = subprocess.run([exe, "brief", "recipes/why-they-left-amman.yml", "-o", str(out)], cwd=REPO,
                            capture_output=True, text=True, timeout=300, env={**os.environ, "TMPDIR": str(scratch)})
    assert result.returncode == 0, result.stderr
    text = flat(read_back(out, tmp_path))
    assert "They kill anyone who argues with them" in text
    assert "Why they left" in text and "archive fingerprint" in text
    assert list(scratch.iterdir()) == [], "the PDF writer left its temporary files behind"


def test_the_bundled_recipes_render_a_brief_with_no_gaps(tmp_path):
    for recipe in sorted((REPO / "recipes").glob("*.yml")):
        result = CliRunner().invoke(main, ["--archive", str(REPO), "brief", str(recipe), "--format", "json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["gaps"] == [], recipe.name


def test_an_archive_template_overrides_the_built_in_one(gated, tmp_path):
    (gated / "templates").mkdir(exist_ok=True)
    (gated / "templates" / "brief.md.j2").write_text("OUR TEMPLATE: {{ title }} / {{ messages | length }} messages\n")
    out = tmp_path / "brief.md"
    assert brief(gated, out).exit_code == 0
    assert out.read_text() == "OUR TEMPLATE: Gate test / 2 messages\n"
    html = tmp_path / "brief.html"
    assert brief(gated, html).exit_code == 0 and "<!DOCTYPE html>" in html.read_text()   # html still built in


def test_an_adhoc_brief_is_written_for_the_audience_given_on_the_command_line(fixture_archive, tmp_path):
    out = tmp_path / "b.md"
    result = CliRunner().invoke(main, ["--archive", str(fixture_archive), "brief", "--theme", "suppression-of-dissent",
                                       "--audience", "Teachers in Lyon", "--include-synthetic", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "Teachers in Lyon" in out.read_text(encoding="utf-8")


def test_a_pdf_made_by_the_writer_child_started_early_is_the_pdf_made_without_it(gated, tmp_path):
    """The PDF writer's child is started before the accounts are selected, to import WeasyPrint on
    the other core; what it writes is the same PDF, byte for byte (SOURCE_DATE_EPOCH fixed)."""
    from counterbrief import write

    if not hasattr(os, "fork"):
        pytest.skip("no fork: the writer runs in the process")
    env = {"SOURCE_DATE_EPOCH": "1700000000"}
    early, plain = tmp_path / "early.pdf", tmp_path / "plain.pdf"
    made = CliRunner().invoke(main, ["--archive", str(gated), "brief", "--theme", "suppression-of-dissent",
                                     "-o", str(early)], env=env)
    assert made.exit_code == 0, made.output
    assert write._WARM == {}   # used, not left behind
    saved, write._HEAVY = write._HEAVY, {}   # no early child: the plain fork
    try:
        made = CliRunner().invoke(main, ["--archive", str(gated), "brief", "--theme", "suppression-of-dissent",
                                         "-o", str(plain)], env=env)
    finally:
        write._HEAVY = saved
    assert made.exit_code == 0, made.output
    assert early.read_bytes() == plain.read_bytes()
    assert "Counter-messaging brief" in flat(read_back(early, tmp_path))


def test_a_writer_child_started_early_leaves_when_the_command_ends_before_sending_it_work():
    from counterbrief import write

    if not hasattr(os, "fork"):
        pytest.skip("no fork")
    write.prewarm("pdf")
    pid, request_w, result_r = write._WARM.pop(write._RAW["pdf"])
    os.close(request_w)                      # the command ended (an error, or nothing to write)
    assert os.read(result_r, 100) == b""     # it sends nothing
    os.close(result_r)
    assert os.waitpid(pid, 0)[1] == 0        # and leaves cleanly


def test_a_failed_brief_command_leaves_no_writer_child_behind(tmp_path):
    import time

    exe = shutil.which("counterbrief", path=os.path.dirname(sys.executable)) or shutil.which("counterbrief")
    if exe is None or shutil.which("pgrep") is None:
        pytest.skip("counterbrief or pgrep is not installed")
    proc = subprocess.Popen([exe, "brief", "--id", "no-such-story", "--theme", "regret", "-o", str(tmp_path / "b.pdf")],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "no story 'no-such-story'" in err, err
    # Every process of that command's session (its id is the command's pid) has gone: none waits on for work.
    for _ in range(50):
        left = subprocess.run(["pgrep", "-s", str(proc.pid)], capture_output=True, text=True).stdout.split()
        if not left:
            break
        time.sleep(0.1)
    assert left == [], left
    assert not (tmp_path / "b.pdf").exists()
