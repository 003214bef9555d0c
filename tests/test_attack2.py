"""Attack on issue 9's promises through the paths merged since the last attack: the watcher, the
review commands, the last pass over output, shell completion, the interactive add, and a redact
list written by a careless hand. Every story here is synthetic."""
from __future__ import annotations

import contextlib
import os
import pty
import socket
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from counterbrief.cli import main

NAME = "Karim Haddad"
CLIENT = [sys.executable, "-c", "import sys; from counterbrief.entry import run; sys.argv[0] = 'counterbrief'; run()"]


def run(root, *args, **kwargs):
    return CliRunner().invoke(main, ["--archive", str(root), *args], **kwargs)


def leaks(text: str) -> bool:
    low = text.lower()
    return "karim" in low or "haddad" in low


def cb(root, *args, watch=True, timeout=120):
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUNTERBRIEF_")}
    if not watch:
        env["COUNTERBRIEF_NO_WATCH"] = "1"
    return subprocess.run([*CLIENT, "--archive", str(root), *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


@contextlib.contextmanager
def watching(root):
    """The archive indexed, and a watcher serving it (started as a user would) until the block ends."""
    assert cb(root, "index", watch=False).returncode == 0
    proc = subprocess.Popen([*CLIENT, "--archive", str(root), "watch", "--idle", "120"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        for _ in range(200):
            if cb(root, "watch", "--status").returncode == 0:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the watcher did not start")
        yield
    finally:
        cb(root, "watch", "--stop")
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ----------------------------------------------------------------------------- a list newer than the index

def test_review_approve_and_check_never_show_an_id_holding_a_name_protected_after_the_index_was_built(make_archive):
    make_archive.story("protector")
    make_archive.story("karim-haddad-bbc", status="draft")
    make_archive.settle()
    assert run(make_archive.root, "index").exit_code == 0
    make_archive.story("protector", redact=[NAME])   # the curator protects the name; no search since
    for args in (["review"], ["review", "--json"], ["check"], ["approve", "karim-hadad-bbc", "--by", "Amina"],
                 ["reject", "karim-haddad-bbc", "--by", "Amina", "--reason", "rename it"]):
        result = run(make_archive.root, *args)
        assert not leaks(result.output.replace("karim-hadad-bbc", "")), (args, result.output)


# ----------------------------------------------------------------------------- a careless key

@pytest.mark.parametrize("line", [
    "Redact: [Karim Haddad]",
    "REDACT: [Karim Haddad]",
    "redacted: [Karim Haddad]",
    "redact_names:\n- Karim Haddad",
    "reddact: Karim Haddad",
    '"r\\x65dact": [Karim Haddad]\nthemez: [x]',      # valid YAML, the story fails check for another field
    '"r\\x65dact": *K [Karim Haddad]',                 # broken YAML, the key spelled with an escape
    "Redact: [Karim Haddad",                            # broken YAML, the key in capitals
], ids=["capital", "upper", "redacted", "suffix", "misspelt", "escaped-key", "escaped-broken", "capital-broken"])
def test_a_redact_list_under_a_misspelled_or_escaped_key_still_protects_its_names(make_archive, line):
    path = make_archive.story("protector")
    path.write_text(path.read_text().replace("synthetic: true\n", f"synthetic: true\n{line}\n"), encoding="utf-8")
    make_archive.story("teller", body=f"He met {NAME} in Raqqa.")
    for args in (["show", "teller"], ["search", "Raqqa"], ["search", "*", "--format", "csv"]):
        result = run(make_archive.root, *args)
        assert not leaks(result.output), (args, result.output)
    assert run(make_archive.root, "check").exit_code == 1   # and check still calls the key an error
    assert not leaks(run(make_archive.root, "index", "--rebuild").output)
    assert not leaks(run(make_archive.root, "show", "teller").output)


def test_a_key_that_only_looks_like_redact_with_no_name_protects_nothing(make_archive):
    path = make_archive.story("protector")
    path.write_text(path.read_text().replace("synthetic: true\n", "synthetic: true\nredacted: true\n"), encoding="utf-8")
    make_archive.story("teller", body="It was True.")
    result = run(make_archive.root, "search", "*", "--format", "csv")
    assert "[redacted]" not in result.output and ",True," in result.output


# ----------------------------------------------------------------------------- shell completion

def complete(root, words: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUNTERBRIEF_")}
    env.update(COMP_WORDS=f"counterbrief --archive {root} {words}", COMP_CWORD=str(len(words.split(" ")) + 2),
               _COUNTERBRIEF_COMPLETE="bash_complete", COUNTERBRIEF_NO_WATCH="1")
    out = subprocess.run(CLIENT, capture_output=True, text=True, env=env, timeout=60).stdout
    return [line.split(",", 1)[1] for line in out.splitlines() if "," in line]


def test_shell_completion_never_offers_an_id_holding_a_protected_name_or_a_file_name_with_control_characters(make_archive):
    make_archive.story("protector", redact=[NAME])
    make_archive.story("karim-haddad-bbc")
    (make_archive.root / "stories" / "x\x1b]0;pwned\x07.md").write_text("---\n---\n", encoding="utf-8")
    offered = complete(make_archive.root, "show ")
    assert "protector" in offered
    assert not any(leaks(c) or "\x1b" in c for c in offered), offered
    assert complete(make_archive.root, "approve karim") == []
    vocabulary = make_archive.root / "vocabulary.yml"
    vocabulary.write_text(vocabulary.read_text() + "- id: karim-haddad\n  label: K\n- id: \"x\\e[2J\"\n  label: X\n",
                          encoding="utf-8")
    themes = complete(make_archive.root, "search --theme ")
    assert "suppression-of-dissent" in themes and not any(leaks(t) or "\x1b" in t for t in themes), themes


# ----------------------------------------------------------------------------- the interactive add

def interactive(args, answers, cwd, timeout=60):
    """Run a command with a terminal as standard input (so add asks), typing ``answers``."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(args, stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd)
    os.close(slave)
    try:
        for answer in answers:
            os.write(master, (answer + "\n").encode())
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
    finally:
        os.close(master)
    return proc.returncode, out.decode(), err.decode()


def test_the_interactive_add_prints_what_it_found_in_a_source_redacted_and_with_control_characters_made_visible(
        make_archive, tmp_path):
    make_archive.story("protector", redact=[NAME])
    text = tmp_path / "article.txt"
    text.write_text(f"{NAME} said: \x1b[2J\x1b]0;pwned\x07 They kill anyone who disagrees. And more.\n", encoding="utf-8")
    options = ["--alias", "Abu X", "--title", "T", "--theme", "suppression-of-dissent", "--outlet", "O",
               "--source-title", "H", "--author", "A", "--published", "2016", "--url", "https://example.org",
               "--summary", "S"]
    code, out, err = interactive([*CLIENT, "add", "--source", str(text), "--id", "abu-x-text", *options],
                                 ["Karim Haddad said They kill", "They kill anyone who disagrees.", ""],
                                 make_archive.root)
    assert code == 0, err
    assert "nearest passage" in err and "\\x1b[2J" in err, err
    assert "\x1b" not in err and not leaks(err), err
    page = tmp_path / "page.html"
    page.write_text(f"<html><head><title>{NAME} speaks</title><meta property='og:site_name' content='Site \u202e desrever'>"
                    "</head><body><article>" + "<p>They kill anyone who disagrees. Words words words words.</p>" * 8
                    + "</article></body></html>", encoding="utf-8")
    code, out, err = interactive([*CLIENT, "add", "--source", str(page), "--id", "abu-x-page", *options[:-12],
                                  "--author", "A", "--published", "2016", "--url", "https://example.org",
                                  "--summary", "S"], ["They kill anyone who disagrees.", "", "", ""], make_archive.root)
    assert code == 0, err
    assert "found title: [redacted] speaks" in err and "\u202e" not in err and not leaks(err), err


def test_a_pdf_title_with_an_escape_sequence_is_taken_without_it(tmp_path):
    import io

    pypdf = pytest.importorskip("pypdf")
    weasyprint = pytest.importorskip("weasyprint")
    from counterbrief.sources import read_source

    pdf = weasyprint.HTML(string="<p>They kill anyone who disagrees.</p>").write_pdf()
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(pdf)))
    writer.add_metadata({"/Title": "A title \x1b]0;pwned\x07\x1b[2J", "/Author": "B\x1b[8m hidden"})
    out = io.BytesIO()
    writer.write(out)
    (tmp_path / "doc.pdf").write_bytes(out.getvalue())
    meta = read_source(tmp_path / "doc.pdf").meta
    assert meta["title"] == "A title ]0;pwned[2J" and meta["authors"] == "B[8m hidden", meta


# ----------------------------------------------------------------------------- the watcher

@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="the watcher needs Unix sockets")
def test_through_the_watcher_a_story_whose_redact_list_cannot_be_read_prints_only_the_refusal(make_archive):
    make_archive.story("protector")
    make_archive.story("teller", body="Omar Said was there.")
    with watching(make_archive.root):
        path = make_archive.root / "stories" / "protector.md"
        path.write_text(path.read_text().replace("synthetic: true\n", "synthetic: true\nredact: &Omar_Said [Omar Said]\n"),
                        encoding="utf-8")
        warm, plain = cb(make_archive.root, "show", "teller"), cb(make_archive.root, "show", "teller", watch=False)
        assert warm.returncode == plain.returncode == 1
        assert "Omar" not in warm.stdout + warm.stderr, warm.stderr
        assert warm.stderr == plain.stderr


# ----------------------------------------------------------------------------- the Markdown brief

def rendered_markdown(text: str) -> list[str]:
    """The Markdown brief as viewers render it: Python-Markdown, and pandoc (markdown and gfm) where installed."""
    import shutil

    import markdown

    out = [markdown.markdown(text)]
    if shutil.which("pandoc"):
        for flavour in ("markdown", "gfm"):
            out.append(subprocess.run(["pandoc", "-f", flavour, "-t", "html"], input=text, capture_output=True,
                                      text=True, timeout=60).stdout)
    return out


@pytest.mark.parametrize("edition", ["facilitator", "handout"])
def test_the_markdown_brief_shows_html_images_and_links_from_the_archive_as_text_in_every_viewer(make_archive, edition):
    make_archive.story("teller", speaker={"alias": "Abu <img src=http://evil.example/alias.png>",
                                          "role": "![r](http://evil.example/role.png)"},
                       body="He met \\!\\[x\\](http://evil.example/plain.png) and &lt;img src=http://evil.example/e.png&gt; "
                            "and \\\\<img src=http://evil.example/b.png> [click](javascript:alert(1))",
                       content_warnings=["<script>alert(1)</script>"])
    (make_archive.root / "recipes" / "r.yml").write_text(
        "title: 'Brief <img src=http://evil.example/title.png>'\n"
        "messages:\n  - text: \"They kill ![m](http://evil.example/m.png)\"\n    themes: [suppression-of-dissent]\n"
        "    questions: ['[q](javascript:alert(1))?']\n", encoding="utf-8")
    result = run(make_archive.root, "brief", str(make_archive.root / "recipes" / "r.yml"), "--include-synthetic",
                 "--edition", edition)
    assert result.exit_code == 0, result.output
    assert "evil.example/alias.png" in result.stdout   # shown, as text
    for html in rendered_markdown(result.stdout):
        assert "<img" not in html and "<script" not in html and 'href="javascript' not in html, html


# ----------------------------------------------------------------------------- add's proposal

def test_the_neutral_id_add_proposes_never_holds_the_protected_name_itself(make_archive, tmp_path):
    make_archive.story("protector", redact=[NAME])
    source = tmp_path / "src.txt"
    source.write_text("SYNTHETIC. They kill anyone who disagrees.\n", encoding="utf-8")
    result = run(make_archive.root, "add", "--source", str(source), "--alias", NAME, "--outlet", f"{NAME} Times",
                 "--title", "T", "--theme", "suppression-of-dissent", "--quote", "They kill anyone who disagrees.",
                 "--published", "2016")
    assert result.exit_code == 2 and "--id account-2016-1" in result.output and "[redacted]" not in result.output, \
        result.output


# ----------------------------------------------------------------------------- review records

def test_a_control_character_pasted_into_a_review_reason_never_breaks_the_story_it_is_recorded_in(make_archive):
    make_archive.story("pending", status="draft")
    result = run(make_archive.root, "approve", "pending", "--by", "Amina\x1b[8m", "--reason", "ok\x1b[2J \u202echecked")
    assert result.exit_code == 0, result.output
    assert run(make_archive.root, "check").exit_code == 0
    shown = run(make_archive.root, "show", "pending")
    assert shown.exit_code == 0 and "Review: approved by Amina[8m" in shown.output and "ok[2J checked" in shown.output, \
        shown.output


def test_approve_fails_closed_while_a_redact_list_cannot_be_read(make_archive):
    path = make_archive.story("protector")
    path.write_text(path.read_text().replace("synthetic: true", "synthetic: true\nredact: &a [Omar Said]"),
                    encoding="utf-8")
    make_archive.story("omar-said-story", status="draft")
    make_archive.story("pending", status="draft", language="Omar Said")
    for args in (["approve", "pending", "--by", "Amina"], ["approve", "omar-said-stor", "--by", "Amina"],
                 ["withdraw", "omar-said-stor", "--reason", "asked"]):
        result = run(make_archive.root, *args)
        assert result.exit_code == 1 and "Omar" not in result.output and "cannot be read" in result.output, \
            (args, result.output)


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="the watcher needs Unix sockets")
def test_the_watchers_answers_redact_every_spelling_a_name_changed_while_it_runs(make_archive):
    from test_redaction import STORED_SPELLINGS
    from test_redaction import leaks as shows_name

    make_archive.story("protector")
    make_archive.story("teller", body="Nothing yet.")
    with watching(make_archive.root):
        # While it runs: the name is protected, and written in every spelling in another story.
        make_archive.story("protector", redact=[NAME])
        body = "\n\n".join(f"Case {n}: {s} was there." for n, s in enumerate(STORED_SPELLINGS.values()))
        make_archive.story("teller", body=body, title=f"Story of {NAME}",
                           review=[{"by": "Amina", "at": "2026-01-01", "decision": "approved",
                                    "reason": "checked with Karim\nHaddad"}])
        for args in (("show", "teller"), ("show", "teller", "--json"), ("search", "Case"),
                     ("search", "*", "--format", "csv"), ("stats",), ("themes",),
                     ("brief", "--theme", "suppression-of-dissent", "--include-synthetic", "--format", "md"),
                     ("brief", "--theme", "suppression-of-dissent", "--include-synthetic", "--format", "html")):
            warm = cb(make_archive.root, *args)
            assert warm.returncode == 0, (args, warm.stderr)
            assert not shows_name(warm.stdout + warm.stderr), (args, warm.stdout[:3000])
        assert int(cb(make_archive.root, "watch", "--status").stderr.split(": ")[1].split(" commands")[0]) >= 8


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="the watcher needs Unix sockets")
def test_the_watcher_drops_an_account_at_once_when_the_archive_starts_to_require_a_second_reviewer(make_archive):
    make_archive.story("one", review=[{"by": "Amina", "at": "2026-01-01", "decision": "approved"}])
    marker = make_archive.root / "counterbrief.yml"
    marker.write_text("reviewers_required: 1\n", encoding="utf-8")
    with watching(make_archive.root):
        brief = ("brief", "--theme", "suppression-of-dissent", "--include-synthetic", "--format", "json")
        assert '"one"' in cb(make_archive.root, *brief).stdout
        marker.write_text("reviewers_required: 2\n", encoding="utf-8")
        warm, plain = cb(make_archive.root, *brief), cb(make_archive.root, *brief, watch=False)
        assert '"one"' not in warm.stdout and warm.stdout == plain.stdout
        assert '"total": 0' in cb(make_archive.root, "search", "*", "--json").stdout
        assert int(cb(make_archive.root, "watch", "--status").stderr.split(": ")[1].split(" commands")[0]) >= 3


def test_an_index_built_while_counterbrief_yml_was_half_written_is_built_again_with_what_it_says(make_archive):
    """An editor saves counterbrief.yml in two steps: emptied, then written. A command (or the
    watcher) that read its settings in between saw the empty file's default (no second reviewer
    needed) and would build an index that passes an account once approved, while recording the
    file as it is now, so every later command would trust that index. The build reads the file
    again at its end and builds once more with what it says."""
    from counterbrief import load
    from counterbrief.index import Index

    make_archive.story("one", review=[{"by": "Amina", "at": "2026-01-01", "decision": "approved"}])
    marker = make_archive.root / "counterbrief.yml"
    marker.write_text("reviewers_required: 2\n", encoding="utf-8")
    archive = load.find_archive(make_archive.root, None, make_archive.root)
    assert archive.reviewers_required == 2
    archive.reviewers_required = 0   # what a read of the emptied file gave
    index = Index(archive)
    index.fresh(rebuild=True)
    result = cb(make_archive.root, "search", "*", "--json", watch=False)
    assert result.returncode == 0 and '"total": 0' in result.stdout, result.stdout
    assert index.archive.reviewers_required == 2


def test_an_index_built_while_the_vocabulary_was_half_written_is_built_again_with_all_of_it(make_archive):
    """The same for vocabulary.yml: read while half of it was written, the build would leave out
    every account whose theme is in the other half, and record the whole file as what it was
    built from. It sees the file changed since it was read and builds again."""
    from counterbrief import load
    from counterbrief.index import Index

    make_archive.story("one")   # its theme, suppression-of-dissent, is in the second half
    vocabulary = make_archive.root / "vocabulary.yml"
    whole = vocabulary.read_text(encoding="utf-8")
    vocabulary.write_text(whole[:whole.index("- id: suppression-of-dissent")], encoding="utf-8")
    index = Index(load.find_archive(make_archive.root, None, make_archive.root))
    assert "suppression-of-dissent" not in index.vocabulary()   # read while half written
    vocabulary.write_text(whole, encoding="utf-8")
    index.fresh(rebuild=True)
    result = cb(make_archive.root, "search", "*", "--json", watch=False)
    assert result.returncode == 0 and '"id": "one"' in result.stdout, result.stdout


def test_shell_completion_offers_no_id_while_a_redact_list_cannot_be_read(make_archive):
    path = make_archive.story("protector")
    make_archive.story("omar-said-story")
    assert "omar-said-story" in complete(make_archive.root, "show o")
    path.write_text(path.read_text().replace("synthetic: true", "synthetic: true\nredact: &a [Omar Said]"),
                    encoding="utf-8")
    assert complete(make_archive.root, "show o") == []
    assert run(make_archive.root, "index").exit_code in (0, 1)   # the index now knows the list is unreadable
    assert complete(make_archive.root, "show ") == []


@pytest.mark.parametrize("tail", ["redact: [Karim Haddad]\n", "Redact:\n- Karim Haddad\n"], ids=["inline", "block"])
def test_a_redact_list_appended_below_the_front_matter_protects_its_names_and_is_an_error(make_archive, tail):
    path = make_archive.story("protector", body="Summary.")
    path.write_text(path.read_text() + tail, encoding="utf-8")
    make_archive.story("teller", body=f"He met {NAME}.")
    for args in (["show", "teller"], ["search", "*", "--format", "csv"], ["search", "met"],
                 ["brief", "--theme", "suppression-of-dissent", "--include-synthetic", "--format", "md"]):
        result = run(make_archive.root, *args)
        assert not leaks(result.output), (args, result.output)
    checked = run(make_archive.root, "check")
    assert checked.exit_code == 1 and "below the front matter" in checked.output, checked.output
    assert "protector" not in run(make_archive.root, "search", "*", "--format", "csv").output
    assert not leaks(run(make_archive.root, "index", "--rebuild").output + run(make_archive.root, "show", "teller").output)
