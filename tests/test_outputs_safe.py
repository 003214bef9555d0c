"""Outputs that cannot be turned against their reader, and templates that read only templates.

Attack tests over every output: control characters and bidi controls from the archive or a
recipe never reach a terminal, a document or a spreadsheet raw; CSV cells are no formulas;
a template is a name in templates/ (or a .j2 file on the command line), bounded in what it
builds and how long it runs; nothing from a recipe is written into CSS; a PDF fetches nothing
but its own fonts. Every story here is synthetic.
"""
from __future__ import annotations

import base64
import csv
import http.server
import io
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from counterbrief import safe
from counterbrief.cli import main

FORMATS = ["md", "html", "txt", "json", "pdf", "docx"]
# Every character that must never reach an output raw (safe.UNSAFE), as a test sees it.
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
ESC = "\x1b"
HOSTILE = {
    "clear": "\x1b[2J\x1b[H",
    "hide": "\x1b[8m",
    "osc8": "\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\",
    "title": "\x1b]0;owned\x07",
    "c1": "\x9b31m\x9d0;t\x9c",
    "nul": "\x00",
    "cr": "overwritten\rCLEAN",
    "del": "\x7f",
}
BIDI = "\u202eevil\u202c and \u2066isolated\u2069 and \u202bembedded\u202c"


def run(root: Path, *args: str):
    return CliRunner().invoke(main, ["--archive", str(root), *args])


def write_story(maker, sid: str, **fields) -> Path:
    return maker.story(sid, **fields)


def line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if text in line)


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        if os.environ.get("COUNTERBRIEF_REQUIRE_CLIENTS"):
            pytest.fail(f"{tool} is required here (COUNTERBRIEF_REQUIRE_CLIENTS) but not installed")
        pytest.skip(f"{tool} not installed")
    return path


def chromium_dom(path: Path, tmp_path: Path) -> str:
    args = [need("chromium"), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'chromium-profile'}", "--dump-dom", path.as_uri()]
    return subprocess.run(args, capture_output=True, text=True, timeout=120).stdout


def read_back(path: Path, tmp_path: Path) -> str:
    """What a reader sees, through a real client where the format has one."""
    fmt = path.suffix[1:]
    if fmt == "pdf":   # pdftotext ends each page with a form feed of its own
        return subprocess.run([need("pdftotext"), "-enc", "UTF-8", str(path), "-"], capture_output=True, text=True,
                              check=True).stdout.replace("\f", "\n")
    if fmt == "docx":
        return subprocess.run([need("pandoc"), "-f", "docx", "-t", "plain", "--wrap=none", str(path)],
                              capture_output=True, text=True, check=True).stdout
    if fmt == "html":
        return chromium_dom(path, tmp_path)
    return path.read_text(encoding="utf-8")


def recipe(maker, name: str = "r", **fields) -> Path:
    data = {"title": "A brief", "date": "2026-12-01", "goal": "Test.", "audience": {"description": "Testers"},
            "messages": [{"text": "They kill dissenters", "themes": ["suppression-of-dissent"]}]}
    data.update(fields)
    path = maker.root / "recipes" / f"{name}.yml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- safe.py itself

@given(st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(list("\x00\x1b\x07\x9b\x85\r\n\t\u202e\u2066\u200f"))))
@settings(max_examples=300)
def test_no_control_character_survives_the_neutralisers(text):
    for out in (safe.terminal_text(text), safe.clean_control(text), safe.csv_cell(text)):
        assert not RAW_CONTROL.search(out), repr(out)
    assert "\r" not in safe.clean_control(text)
    dumped = safe.json_text(json.dumps(text, ensure_ascii=False))
    assert not RAW_CONTROL.search(dumped) and "\u2028" not in dumped
    assert json.loads(dumped) == text   # JSON loses nothing


def test_terminal_text_shows_escapes_instead_of_obeying_them():
    assert safe.terminal_text("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert safe.terminal_text("\u202eevil") == "\\u202eevil"
    assert safe.terminal_text("one\r\ntwo\rthree\tfour") == "one\ntwo\nthree\tfour"
    assert safe.terminal_text("\u200f\u061c") == "\u200f\u061c"   # bidi marks are kept: Arabic uses them


def test_only_the_tools_own_colour_is_added_after_neutralising():
    text = safe.highlight(safe.terminal_text("a [[kill]] b \x1b[8m hidden"))
    assert text.count(ESC) == 3   # bold yellow, reset, and the closing reset
    assert "\\x1b[8m" in text and "\x1b[8m" not in text


@pytest.mark.parametrize("cell", ["=HYPERLINK(\"http://evil.example\",\"x\")", "+cmd|' /C calc'!A0", "-2+3",
                                  "@SUM(1+1)", "\t=1", "\r=1", " =1", "\x00=1"])
def test_a_csv_cell_that_a_spreadsheet_would_run_gets_a_leading_quote(cell):
    out = safe.csv_cell(cell)
    assert out.startswith("'") and not RAW_CONTROL.search(out)


# ----------------------------------------------------------------------------- check

def test_check_reports_control_characters_with_the_line_and_drops_the_story(make_archive):
    write_story(make_archive, "nul-body", body="First line.\nA NUL \x00 here and an ESC \x1b[2J there.")
    write_story(make_archive, "esc-title", title="Title \x1b[8mhidden")
    write_story(make_archive, "good")
    result = run(make_archive.root, "check")
    assert result.exit_code == 1
    line = line_of(make_archive.root / "stories" / "nul-body.md", "A NUL")
    assert f"stories/nul-body.md:{line}: control character U+0000 (NUL) in summary (2 in all); delete it" in result.stdout
    assert re.search(r"stories/esc-title\.md:3: control character U\+001B \(ESC\) in title", result.stdout)
    assert ESC not in result.stdout + result.stderr
    # The rest of the archive works, and the DOCX brief (which cannot hold a NUL) is made.
    out = make_archive.root / "b.docx"
    made = run(make_archive.root, "brief", "--theme", "suppression-of-dissent", "--include-synthetic", "-o", str(out))
    assert made.exit_code == 0, made.output
    assert "Speaker good" in read_back(out, make_archive.root)


def test_check_warns_about_bidi_controls_in_any_field_with_the_line(make_archive):
    write_story(make_archive, "bidi", title="Bidi \u202etitle", speaker={"alias": "A \u2066name\u2069"},
                content_warnings=["viol\u202eence"], body="Summary.\nSecond \u202b line.")
    result = run(make_archive.root, "check", "--json")
    assert result.exit_code == 0
    warnings = {(w["line"], w["message"].split(";")[0]) for w in json.loads(result.stdout)["warnings"]}
    assert (3, "bidirectional control U+202E (RLO) in title") in warnings
    assert (5, "bidirectional control U+2066 (LRI) in speaker.alias (2 in all)") in warnings
    assert any(m.endswith("in content_warnings.0") for _, m in warnings)
    second = line_of(make_archive.root / "stories" / "bidi.md", "Second")
    assert (second, "bidirectional control U+202B (RLE) in summary") in warnings
    assert not RAW_CONTROL.search(result.stdout)


# ----------------------------------------------------------------------------- terminal and exports

@pytest.fixture
def hostile(make_archive):
    """Stories that pass check (bidi controls warn), a vocabulary and a recipe full of control characters."""
    write_story(make_archive, "bidi-one", title=f"Title {BIDI}", speaker={"alias": f"Alias {BIDI}", "role": BIDI},
                group=f"Group {BIDI}", content_warnings=[f"warning {BIDI}"], body=f"Summary {BIDI} kill")
    write_story(make_archive, "formula", title="=HYPERLINK(\"http://evil.example\",\"x\")",
                speaker={"alias": "+cmd|' /C calc'!A0", "role": "@SUM(1+1)"}, group="-2+3",
                content_warnings=["=1+1"])
    vocab = yaml.safe_load((make_archive.root / "vocabulary.yml").read_text())
    for theme in vocab:
        theme["label"] += " " + "".join(HOSTILE.values())
        theme["definition"] = (theme.get("definition") or "") + HOSTILE["clear"]
        theme["synonyms"] = list(theme.get("synonyms") or []) + [HOSTILE["osc8"]]
    (make_archive.root / "vocabulary.yml").write_text(yaml.safe_dump(vocab, allow_unicode=True), encoding="utf-8")
    return make_archive


def test_no_terminal_output_carries_a_raw_control_character(hostile):
    root = hostile.root
    outputs = {
        "show": run(root, "show", "bidi-one"),
        "show json": run(root, "show", "bidi-one", "--json"),
        "search": run(root, "search", "*", "--facets"),
        "search json": run(root, "search", "*", "--json"),
        "search jsonl": run(root, "search", "*", "--format", "jsonl"),
        "search csv": run(root, "search", "*", "--format", "csv"),
        "stats": run(root, "stats"),
        "stats json": run(root, "stats", "--json"),
        "themes": run(root, "themes"),
        "themes json": run(root, "themes", "--json"),
        "check": run(root, "check"),
        "error": run(root, "brief", "--theme", "regret", "--template", "\x1b[2J\u202eevil"),
    }
    for name, result in outputs.items():
        assert result.exit_code in (0, 1), (name, result.output)
        assert not RAW_CONTROL.search(result.stdout + result.stderr), (name, (result.stdout + result.stderr)[:2000])
    assert "\\u202e" in outputs["show"].stdout and "\\x1b[2J" in outputs["themes"].stdout
    assert "\\x1b]8;;http://evil.example/" in outputs["themes"].stdout   # seen, not obeyed
    assert "'\\x1b[2J\\u202eevil' is not a template name" in outputs["error"].stderr
    # JSON loses nothing: the escapes read back as the archive's own text.
    themes = json.loads(outputs["themes json"].stdout)
    assert themes[0]["label"].endswith("".join(HOSTILE.values()))
    record = json.loads(outputs["show json"].stdout)
    assert record["title"] == f"Title {BIDI}"
    for line in outputs["search jsonl"].stdout.splitlines():
        json.loads(line)


def test_csv_export_cells_are_never_formulas(hostile):
    result = run(hostile.root, "search", "*", "--format", "csv")
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    row = next(r for r in rows if r["id"] == "formula")
    assert row["title"] == "'=HYPERLINK(\"http://evil.example\",\"x\")"
    assert row["speaker"] == "'+cmd|' /C calc'!A0" and row["role"] == "'@SUM(1+1)" and row["group"] == "'-2+3"
    assert row["content_warnings"] == "'=1+1"
    for r in rows:
        for value in r.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), value
            assert not RAW_CONTROL.search(value)


def test_the_search_table_is_coloured_only_by_the_tool(hostile, monkeypatch):
    from counterbrief import cli

    printed = []
    monkeypatch.setattr(cli.click, "echo", lambda text, **kw: printed.append(text))
    cli.echo("1. [[kill]] \x1b[8mhidden \x1b]0;t\x07", highlight=True)
    assert printed[0] == "1. \x1b[1;33mkill\x1b[0m \\x1b[8mhidden \\x1b]0;t\\x07\x1b[0m"


# ----------------------------------------------------------------------------- briefs

def hostile_recipe(maker) -> Path:
    dirty = "".join(HOSTILE.values()) + BIDI
    return recipe(maker, "dirty", title=f"Brief {dirty}", goal=f"Goal {dirty}",
                  audience={"description": f"Audience {dirty}", "country": dirty, "age": "16-24"},
                  messages=[{"text": f"They kill dissenters {dirty}", "themes": ["suppression-of-dissent"]}],
                  media=dirty, action=dirty, monitoring=dirty, messenger=dirty)


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_brief_format_carries_a_control_character(hostile, tmp_path, fmt):
    path = hostile_recipe(hostile)
    out = tmp_path / f"brief.{fmt}"
    result = run(hostile.root, "brief", str(path), "--include-synthetic", "-o", str(out))
    assert result.exit_code == 0, result.output   # the DOCX too: no "All strings must be XML compatible"
    text = read_back(out, tmp_path)
    assert "Alias evil and isolated" in " ".join(text.split()).replace("Alias  ", "Alias ")
    assert not RAW_CONTROL.search(text), repr(RAW_CONTROL.search(text))
    if fmt in ("md", "txt", "html", "json"):
        raw = out.read_text(encoding="utf-8")
        assert not RAW_CONTROL.search(raw)
        assert "\\u001b" not in raw and "\\u202e" not in raw   # dropped from documents, not escaped


def test_brief_to_stdout_carries_no_control_character(hostile):
    path = hostile_recipe(hostile)
    for fmt in ("md", "txt", "html", "json"):
        result = run(hostile.root, "brief", str(path), "--include-synthetic", "--format", fmt)
        assert result.exit_code == 0
        assert not RAW_CONTROL.search(result.stdout), fmt


control_or_bidi = st.text(alphabet=st.sampled_from(list("ab \x00\x07\x08\x1b[]\x7f\x85\x9b\x9d\r\t\u202a\u202e\u2066\u2069")),
                          min_size=1, max_size=12)


@given(title=control_or_bidi, goal=control_or_bidi, alias=st.text(alphabet=st.sampled_from(list("ab \u202a\u202e\u2066\u2069")),
                                                                   min_size=1, max_size=8),
       where=st.sampled_from(["title", "goal", "message", "audience"]))
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_random_control_characters_in_random_fields_never_reach_terminal_md_or_txt(make_archive, tmp_path_factory,
                                                                                  title, goal, alias, where):
    write_story(make_archive, "random", speaker={"alias": "Alias " + alias, "role": alias}, title="T " + alias,
                body="Summary " + alias)
    fields = {"title": "Brief " + title, "goal": goal}
    if where == "message":
        fields["messages"] = [{"text": "M " + goal, "themes": ["suppression-of-dissent"]}]
    if where == "audience":
        fields["audience"] = {"description": goal, "country": title}
    path = recipe(make_archive, "random", **fields)
    out = tmp_path_factory.mktemp("random")
    for fmt in ("md", "txt"):
        made = run(make_archive.root, "brief", str(path), "--include-synthetic", "-o", str(out / f"b.{fmt}"))
        assert made.exit_code == 0, made.output
        assert not RAW_CONTROL.search((out / f"b.{fmt}").read_text(encoding="utf-8"))
    for args in (("show", "random"), ("search", "summary"), ("search", "*", "--format", "csv"), ("stats",)):
        result = run(make_archive.root, *args)
        assert not RAW_CONTROL.search(result.stdout + result.stderr), args


# ----------------------------------------------------------------------------- templates are templates

def secret_story(maker):
    write_story(maker, "secret", sensitivity="restricted", notes="CURATOR SECRET NOTE", redact=["Hidden Name"],
                body="Hidden Name told us everything.")


@pytest.mark.parametrize("value", ["/etc/passwd", "stories/secret.md", "../stories/secret", "templates/brief.md.j2",
                                   "brief.md", "C:\\x", "~/x", ""])
def test_a_recipe_template_that_is_not_a_name_fails_check_with_its_line_and_makes_no_brief(make_archive, tmp_path, value):
    secret_story(make_archive)
    write_story(make_archive, "good")
    path = recipe(make_archive, "evil", template=value or " ")
    result = run(make_archive.root, "check")
    assert result.exit_code == 1
    line = next(i for i, t in enumerate(path.read_text().splitlines(), 1) if t.startswith("template:"))
    assert f"recipes/evil.yml:{line}: template " in result.stdout and "is not a template name" in result.stdout
    out = tmp_path / "brief.pdf"
    made = run(make_archive.root, "brief", str(path), "--include-synthetic", "-o", str(out))
    assert made.exit_code == 1 and not out.exists()
    assert "root:" not in made.output and "CURATOR SECRET" not in made.output


def test_check_reports_control_characters_in_a_recipe_with_the_line(make_archive):
    path = recipe(make_archive, "dirty", title="A \x00 title", goal="Goal \u202e reversed")
    result = run(make_archive.root, "check")
    assert result.exit_code == 1
    assert f"recipes/dirty.yml:{line_of(path, 'title:')}: control character U+0000 (NUL) in title" in result.stdout
    assert f"recipes/dirty.yml:{line_of(path, 'goal:')}: warning: bidirectional control U+202E (RLO) in goal" in result.stdout


def test_check_reports_a_recipe_naming_a_template_that_does_not_exist(make_archive):
    path = recipe(make_archive, "typo", template="handuot")
    result = run(make_archive.root, "check")
    assert result.exit_code == 1
    assert f"recipes/typo.yml:{line_of(path, 'template:')}: no template 'handuot' in templates/ or built in" in result.stdout


def test_a_template_linked_out_of_templates_is_no_template(make_archive, tmp_path):
    secret_story(make_archive)
    write_story(make_archive, "good")
    templates = make_archive.root / "templates"
    for fmt in ("md", "html", "txt"):
        (templates / f"evil.{fmt}.j2").symlink_to(make_archive.root / "stories" / "secret.md")
    (templates / "pw.md.j2").symlink_to("/etc/passwd")
    path = recipe(make_archive, "linked", template="evil")
    check = run(make_archive.root, "check")
    assert f"recipes/linked.yml:{line_of(path, 'template:')}: no template 'evil' in templates/ or built in" in check.stdout
    for name in ("evil", "pw"):
        out = tmp_path / f"{name}.md"
        made = run(make_archive.root, "brief", "--theme", "regret", "--include-synthetic", "--template", name, "-o", str(out))
        assert made.exit_code == 1 and f"no template '{name}' for md" in made.stderr
        assert not out.exists()


@pytest.mark.parametrize("given_path", ["stories/secret.md", "/etc/passwd", "link.j2"])
def test_the_command_line_template_is_a_j2_file_and_nothing_else(make_archive, tmp_path, given_path):
    secret_story(make_archive)
    write_story(make_archive, "good")
    (tmp_path / "link.j2").symlink_to("/etc/passwd")
    arg = str(tmp_path / "link.j2") if given_path == "link.j2" else (
        str(make_archive.root / given_path) if not given_path.startswith("/") else given_path)
    out = tmp_path / "b.md"
    made = run(make_archive.root, "brief", "--theme", "suppression-of-dissent", "--include-synthetic",
               "--template", arg, "-o", str(out))
    assert made.exit_code == 1 and not out.exists()
    assert "CURATOR SECRET" not in made.output and "root:" not in made.output


@pytest.mark.parametrize("include", ["../stories/secret.md", "secret.md", "/etc/passwd", "pw.j2"])
def test_a_template_includes_only_j2_templates_inside_its_own_folder(make_archive, tmp_path, include):
    secret_story(make_archive)
    write_story(make_archive, "good")
    folder = tmp_path / "tpl"
    folder.mkdir()
    shutil.copy(make_archive.root / "stories" / "secret.md", folder / "secret.md")
    (folder / "pw.j2").symlink_to("/etc/passwd")
    (folder / "mine.md.j2").write_text(f'# {{{{ title }}}}\n{{% include "{include}" %}}\n')
    out = tmp_path / "b.md"
    made = run(make_archive.root, "brief", "--theme", "suppression-of-dissent", "--include-synthetic",
               "--template", str(folder / "mine.md.j2"), "-o", str(out))
    assert made.exit_code == 1 and not out.exists()
    assert "template not found" in made.stderr
    assert "CURATOR SECRET" not in made.output and "root:" not in made.output


# ----------------------------------------------------------------------------- bounded templates

ATTACKS = {
    "multiply": "{{ 'x' * 10**9 }}",
    "lipsum": "{{ lipsum(100000) }}",
    "range": "{{ range(10**9) | list }}",
    "nested loops": "{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}",
    "center": "{{ 'x' | center(10**9) }}",
    "percent": '{{ "%0999999999d" % 1 }}',
    "format": '{{ "{:>999999999}".format(1) }}',
    "format width argument": '{{ "{0:{1}}".format(1.5, 999999999) }}',
    "format filter": '{{ "%999999999d" | format(1) }}',
    "star width": '{{ "%*d" % (999999999, 1) }}',
    "named width": '{{ "%(a)999999999s" % {"a": 1} }}',
    "precision": '{{ "%5.999999999f" % 1.5 }}',
    "replace filter": "{{ ('y' * 1000) | replace('', 'x' * 1000000) }}",
    "replace method": "{{ ('y' * 1000).replace('y', 'x' * 1000000) }}",
    "indent": "{{ ('\\n' * 100000) | indent(1000) }}",
    "doubling": "{% set ns = namespace(s='x') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
    "huge join": "{{ (['x' * 1000000] * 1000) | join }}",
    "list growth": "{% set l = [1] %}{% for i in range(60) %}{{ l.extend(l) }}{% endfor %}",
    "power": "{{ 7 ** 999999999 }}",
    "memory": "{{ ('\\t' * 2000000).expandtabs(1000) | length }}",
    "output": "{% for i in range(10000) %}{{ 'y' * 1999 }}{% endfor %}{% for i in range(10000) %}{{ 'y' * 1999 }}{% endfor %}",
    "recursion": "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
}

ATTACK_SCRIPT = r"""
import json, resource, sys, time
from click.testing import CliRunner
from counterbrief.cli import main
root, attacks = sys.argv[1], json.loads(sys.argv[2])
results = {}
for name, source in attacks.items():
    with open(f"{root}/templates/{name.replace(' ', '-')}.md.j2", "w") as f:
        f.write(source)
    start = time.monotonic()
    r = CliRunner().invoke(main, ["--archive", root, "brief", "--theme", "suppression-of-dissent", "--include-synthetic",
                                  "--template", name.replace(" ", "-"), "-o", f"{root}/out.md"])
    results[name] = [r.exit_code, r.stderr, time.monotonic() - start]
# This process's own high-water mark (VmHWM starts afresh at exec; ru_maxrss would carry pytest's over).
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
results["peak_kb"] = [hwm, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]
print(json.dumps(results))
"""


def test_template_resource_attacks_end_in_one_line_in_seconds_with_bounded_memory(make_archive):
    write_story(make_archive, "good")
    root = make_archive.root
    proc = subprocess.run([sys.executable, "-c", ATTACK_SCRIPT, str(root), json.dumps(ATTACKS)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    self_kb, children_kb = results.pop("peak_kb")
    for name, (code, stderr, seconds) in results.items():
        lines = stderr.strip().splitlines()
        assert code == 1, (name, stderr)
        assert len(lines) == 1 and f"templates/{name.replace(' ', '-')}.md.j2" in lines[0], (name, stderr)
        assert "internal error" not in stderr and "Traceback" not in stderr, (name, stderr)
        assert seconds < 20, (name, seconds)
    assert not (root / "out.md").exists()
    # Generous: the command alone is ~50 MB, and every attack above is refused before it is built.
    assert self_kb < 300_000 and children_kb < 300_000, (self_kb, children_kb)


SLOW = "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}\n{{ f(60) }}"


def test_a_template_that_runs_too_long_is_stopped_at_its_line(make_archive, tmp_path, monkeypatch):
    from counterbrief import render

    monkeypatch.setattr(render, "RENDER_SECONDS", 2)
    write_story(make_archive, "good")
    # Exponential work that no loop counts and that prints nothing: only the clock stops it.
    (make_archive.root / "templates" / "slow.md.j2").write_text(SLOW)
    start = time.monotonic()
    made = run(make_archive.root, "brief", "--theme", "suppression-of-dissent", "--include-synthetic",
               "--template", "slow", "-o", str(tmp_path / "b.md"))
    assert time.monotonic() - start < 15
    assert made.exit_code == 1
    lines = made.stderr.strip().splitlines()
    assert len(lines) == 1 and re.match(r"Error: .*templates/slow\.md\.j2:1: template stopped: it ran over 2 s; ", lines[0])
    assert not (tmp_path / "b.md").exists()


def test_a_writer_that_runs_too_long_is_stopped_by_the_clock_of_its_child_process(make_archive, tmp_path, monkeypatch):
    from counterbrief import render, write

    monkeypatch.setattr(render, "RENDER_SECONDS", 600)
    monkeypatch.setattr(write, "WRITE_SECONDS", 2)
    write_story(make_archive, "good")
    (make_archive.root / "templates" / "slow.md.j2").write_text(SLOW)
    start = time.monotonic()
    made = run(make_archive.root, "brief", "--theme", "suppression-of-dissent", "--include-synthetic",
               "--template", "slow", "-o", str(tmp_path / "b.md"))
    assert time.monotonic() - start < 15
    assert made.exit_code == 1
    assert made.stderr.strip() == ("Error: making the brief with template 'slow' took over 2 s and was stopped; "
                                   "a template lays out the brief's data; remove whatever loops or recurses that long")
    assert not (tmp_path / "b.md").exists()


# ----------------------------------------------------------------------------- CSS and the PDF's fetcher

class StyleText(HTMLParser):
    def __init__(self):
        super().__init__()
        self.inside, self.css, self.urls = False, [], []

    def handle_starttag(self, tag, attrs):
        self.inside = tag == "style"
        self.urls += [v for k, v in attrs if k in ("src", "href", "style") and v]

    def handle_endtag(self, tag):
        self.inside = False

    def handle_data(self, data):
        if self.inside:
            self.css.append(data)


def test_a_recipe_title_never_reaches_the_style_sheet_and_the_brief_stays_self_contained(make_archive, tmp_path):
    write_story(make_archive, "good")
    title = ('Title"\n} } body { background: url(http://evil.example/bg.png) } '
             '@page { @top-left { content: url(file:///etc/passwd) } } </style><style>* { background: url(//evil.example/x) }')
    path = recipe(make_archive, "css", title=title)
    html_out, pdf_out = tmp_path / "b.html", tmp_path / "b.pdf"
    assert run(make_archive.root, "brief", str(path), "--include-synthetic", "-o", str(html_out)).exit_code == 0
    parser = StyleText()
    parser.feed(html_out.read_text(encoding="utf-8"))
    css = "".join(parser.css)
    assert "evil" not in css and "url(" not in css and "passwd" not in css
    assert not [u for u in parser.urls if "evil" in u]
    dom = chromium_dom(html_out, tmp_path)
    assert "<style>* { background" not in dom and "evil.example" in dom   # the title is text, shown as text
    made = run(make_archive.root, "brief", str(path), "--include-synthetic", "-o", str(pdf_out))
    assert made.exit_code == 0, made.output
    text = read_back(pdf_out, tmp_path)
    assert "Speaker good" in text and "root:" not in text


def test_the_running_title_of_a_long_title_stays_on_one_line(make_archive, tmp_path):
    write_story(make_archive, "good")
    path = recipe(make_archive, "long", title="A very long title " * 12 + "END")
    out = tmp_path / "b.pdf"
    assert run(make_archive.root, "brief", str(path), "--include-synthetic", "-o", str(out)).exit_code == 0
    text = subprocess.run([need("pdftotext"), "-layout", str(out), "-"], capture_output=True, text=True).stdout
    footer = [line for line in text.splitlines() if "page 1 of" in line]
    assert footer and footer[0].lstrip().startswith("A very long title")


class Recorder(http.server.BaseHTTPRequestHandler):
    seen: list = []

    def do_GET(self):  # noqa: N802
        Recorder.seen.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"body { background: red }")

    def log_message(self, *args):
        pass


def test_a_pdf_or_an_own_template_s_html_page_fetches_nothing_but_its_own_fonts(make_archive, tmp_path):
    write_story(make_archive, "good")
    server = http.server.HTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        leaks = {
            "image": '<img src="file:///etc/passwd">',
            "attachment": '<a rel="attachment" href="file:///etc/passwd">x</a>',
            "stylesheet": f'<link rel="stylesheet" href="{base}/x.css">',
            "remote-image": f'<img src="{base}/x.png">',
            "font": f'<style>@font-face {{ font-family: x; src: url({base}/f.ttf) }} h1 {{ font-family: x }}</style>',
            "escape": '<img src="FONTS/../../../../../../etc/passwd">',
        }
        from importlib.resources import files

        fonts = Path(str(files("counterbrief") / "fonts"))
        for name, tag in leaks.items():
            tag = tag.replace("FONTS", fonts.as_uri())
            (make_archive.root / "templates" / f"{name}.html.j2").write_text(
                f"<html><head></head><body><h1>{{{{ title }}}}</h1>{tag}</body></html>")
            for fmt in ("pdf", "html"):
                out = tmp_path / f"{name}.{fmt}"
                made = run(make_archive.root, "brief", "--theme", "regret", "--include-synthetic", "--template", name,
                           "-o", str(out))
                assert made.exit_code == 1, (name, made.output)
                assert re.search(f"template '{name}' asks the brief to (fetch|attach a file)|which no check can read",
                                 made.stderr), made.stderr
                assert not out.exists()
        assert Recorder.seen == []
    finally:
        server.shutdown()
        server.server_close()
    # The package's own fonts still load: the PDF embeds them.
    out = tmp_path / "ok.pdf"
    assert run(make_archive.root, "brief", "--theme", "suppression-of-dissent", "--include-synthetic",
               "-o", str(out)).exit_code == 0
    fonts_listed = subprocess.run([need("pdffonts"), str(out)], capture_output=True, text=True).stdout
    assert "counterbrief-sans" in fonts_listed and "yes" in fonts_listed


def test_the_fetcher_lets_through_only_the_package_s_font_files_and_data_uris_holding_a_picture(tmp_path):
    pytest.importorskip("weasyprint")
    from importlib.resources import files

    from counterbrief.write import _local_fetcher

    fonts = Path(str(files("counterbrief") / "fonts"))
    refused: list = []
    fetch = _local_fetcher(fonts, refused)
    font = fetch((fonts / "DejaVuSans.ttf").as_uri())
    data = font.read() if hasattr(font, "read") else (font.get("string") or font["file_obj"].read())
    assert data[:4] == b"\x00\x01\x00\x00"
    png = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9aw"
           "AAAABJRU5ErkJggg==")
    fetch(png)
    fetch(png.replace("image/png", "text/plain"))   # told by its bytes, not by the type it claims
    for url in ("data:font/ttf;base64," + base64.b64encode(data[:64]).decode(), "data:text/plain,hello", "data:,", "data:text/css,p{}", "data:image/svg+xml,<svg/>",
                "data:image/png,<svg xmlns='http://www.w3.org/2000/svg'/>", "data:image/png;base64,!!"):
        with pytest.raises(ValueError):
            fetch(url)
    outside = tmp_path / "x.ttf"
    outside.write_bytes(b"x")
    for url in ("file:///etc/passwd", fonts.as_uri() + "/../../../../../../etc/passwd", outside.as_uri(),
                "http://127.0.0.1:9/x", "https://example.org/x", "ftp://example.org/x",
                "file://otherhost" + str(fonts / "DejaVuSans.ttf")):
        with pytest.raises(ValueError):
            fetch(url)
    assert len(refused) == 14


@pytest.mark.parametrize("spelling", ["Kar\x00im Haddad", "Kar\x1bim Had\x7fdad", "Karim\x85Haddad", "Ka\u202erim Haddad",
                                      "Kar\x9bim\rHaddad"])
def test_a_protected_name_split_by_control_characters_in_a_recipe_is_still_redacted(make_archive, tmp_path, spelling):
    # Outputs drop control characters: redaction must see the text as the reader will, or dropping
    # them would join a name back together after redaction let it pass.
    write_story(make_archive, "protector", redact=["Karim Haddad"])
    path = recipe(make_archive, "leaky", title=f"About {spelling}", goal=spelling,
                  messages=[{"text": f"They kill {spelling}", "themes": ["suppression-of-dissent"]}])
    for fmt in FORMATS:
        out = tmp_path / f"b.{fmt}"
        made = run(make_archive.root, "brief", str(path), "--include-synthetic", "-o", str(out))
        assert made.exit_code == 0, made.output
        text = " ".join(read_back(out, tmp_path).split())
        assert "Karim" not in text and "Haddad" not in text, (fmt, text[:500])
        assert "[redacted]" in text
