"""The facilitator pack and the participant handout: quotes that prove their message, pins, context,
honest credibility, content-derived do-no-harm, editions in every format, INTERNAL on every page."""
from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from counterbrief.cli import main

from conftest import REPO
from test_brief import FORMATS, flat, need, read_back

SOURCE = """SYNTHETIC SOURCE FOR PACK TESTS.
"They kill anyone who argues." said one, "and they slipped a verse into the video." He added:
"If they had known the truth they would not have joined."
Another said: "Their monthly pay is higher and they have better cars." and "They said the victims were spies."
A third said: "They beheaded the prisoners in the square."
"""

MONITORING = "WATCH FOR SYMPATHY MONITORING NOTE"
SAFEGUARDING = "CALL THE SAFEGUARDING LEAD ON 0000"


def write_story(root: Path, sid: str, quotes: list[dict], themes: list[str], speaker: dict | None = None,
                **fields) -> None:
    data = {"id": sid, "title": f"Title {sid}",
            "speaker": {"alias": f"Speaker {sid}", "role": "fighter", **(speaker or {})},
            "group": "ISIS", "language": "en", "themes": themes,
            "source": {"outlet": f"Outlet {sid}", "published": "2016", "snapshot": "sources/src.txt",
                       "url": f"https://example.org/{sid}"},
            "quotes": quotes, "sensitivity": "public", "status": "approved", "synthetic": True,
            "notes": f"CURATOR NOTE {sid.upper()}"}
    data.update(fields)
    (root / "stories" / f"{sid}.md").write_text(
        "---\n" + yaml.safe_dump(data, allow_unicode=True, sort_keys=False) + "---\n" + f"SUMMARY OF {sid.upper()}.\n",
        encoding="utf-8")


def write_recipe(root: Path, name: str, **fields) -> Path:
    recipe = {"title": "Pack test", "date": "2026-12-01", "level": "public", "goal": "Test the pack.",
              "audience": {"description": "Testers", "language": "en", "age": "adults"},
              "max_accounts_per_message": 3, **fields}
    path = root / "recipes" / f"{name}.yml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def pack(tmp_path):
    root = tmp_path / "pack"
    for sub in ("stories", "sources", "recipes"):
        (root / sub).mkdir(parents=True)
    shutil.copy(REPO / "vocabulary.yml", root / "vocabulary.yml")
    (root / "sources" / "src.txt").write_text(SOURCE, encoding="utf-8")
    write_story(root, "alpha", [
        {"text": "They kill anyone who argues.", "themes": ["suppression-of-dissent"],
         "context": "CONTEXT ALPHA ONE: they are the group."},
        {"text": "and they slipped a verse into the video.", "themes": ["propaganda-deception"],
         "context": "CONTEXT ALPHA TWO: the video of a killing."},
        {"text": "If they had known the truth they would not have joined."},
    ], ["suppression-of-dissent", "regret"])
    write_story(root, "bravo", [
        {"text": "Their monthly pay is higher and they have better cars.", "themes": ["media-privilege"]},
        {"text": "They said the victims were spies.", "themes": ["propaganda-deception"], "frames_group_claim": True,
         "context": "The group's claim about its victims."},
    ], ["media-privilege"], speaker={"involvement": "INVOLVEMENT BRAVO filmed for the media office",
                                     "speaking_from": "detention", "expresses_regret": "no"},
        corroboration=["CORROBORATION BRAVO two other defectors"])
    write_story(root, "charlie", [
        {"text": "They beheaded the prisoners in the square.", "themes": ["brutality-against-muslims"], "graphic": True},
    ], ["brutality-against-muslims"], content_warnings=["executions"])
    return root


def run(root: Path, *args):
    return CliRunner().invoke(main, ["--archive", str(root), *map(str, args)])


def brief_json(root: Path, recipe: Path, *extra) -> dict:
    result = run(root, "brief", recipe, "--format", "json", "--include-synthetic", *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def refs(data: dict) -> list[list[str]]:
    return [[q["ref"] for t in m["testimony"] for q in t["quotes"]] for m in data["messages"]]


# ----------------------------------------------------------------------------- selection

def test_no_quote_appears_twice_in_one_brief(pack):
    recipe = write_recipe(pack, "twice", messages=[{"text": f"M{i}", "themes": ["suppression-of-dissent", "regret"]}
                                                   for i in range(3)])
    data = brief_json(pack, recipe)
    used = [r for m in refs(data) for r in m]
    assert used and len(used) == len(set(used))


def test_quote_themes_decide_selection_and_fall_back_to_the_story_themes(pack):
    recipe = write_recipe(pack, "themes", messages=[{"text": "Regret", "themes": ["regret"]},
                                                    {"text": "Staging", "themes": ["propaganda-deception"]}])
    data = brief_json(pack, recipe)
    # alpha#1 is tagged suppression-of-dissent only: the story's regret theme does not let it in.
    assert refs(data)[0] == ["alpha#3"]
    # bravo#2 repeats the group's claim: never chosen unless pinned.
    assert refs(data)[1] == ["alpha#2"]


def test_pinned_quotes_come_first_in_their_order_and_are_still_gated(pack):
    recipe = write_recipe(pack, "pins", messages=[
        {"text": "Pinned", "themes": ["suppression-of-dissent"], "quotes": ["alpha#3", "alpha#1"]},
        {"text": "Claim", "themes": ["propaganda-deception"], "quotes": ["bravo#2", "charlie#1"]}])
    result = run(pack, "brief", recipe, "--format", "json", "--include-synthetic")
    data = json.loads(result.stdout)
    assert refs(data)[0] == ["alpha#3", "alpha#1"]
    assert refs(data)[1][0] == "bravo#2" and "charlie#1" not in refs(data)[1]
    assert "warning: message 2: pinned quote charlie#1 is marked graphic; left out" in result.stderr


def test_a_missing_pin_is_reported_by_brief_and_by_check_with_the_recipe_line(pack):
    recipe = write_recipe(pack, "missing", messages=[
        {"text": "Pinned", "themes": ["suppression-of-dissent"], "quotes": ["nobody#1", "alpha#9"]}])
    result = run(pack, "brief", recipe, "--format", "json", "--include-synthetic")
    assert "warning: message 1: pinned quote nobody#1 is not usable" in result.stderr
    assert "warning: message 1: pinned quote alpha#9 does not exist (alpha has 3 quotes)" in result.stderr
    line = next(i for i, text in enumerate(recipe.read_text().splitlines(), 1) if "nobody#1" in text)
    checked = run(pack, "check")
    assert checked.exit_code == 1
    assert (f"recipes/missing.yml:{line}: pinned quote nobody#1 of message 1: no story 'nobody'; "
            "check the id with 'counterbrief show'") in checked.stdout
    assert "pinned quote alpha#9 of message 1 does not exist: alpha has 3 quotes" in checked.stdout


def test_check_warns_when_a_pinned_quote_does_not_meet_the_message_themes(pack):
    write_recipe(pack, "mismatch", messages=[{"text": "Regret", "themes": ["regret"], "quotes": ["bravo#1"]}])
    checked = run(pack, "check")
    assert re.search(r"recipes/mismatch\.yml:\d+: warning: pinned quote bravo#1 of message 1 is about media-privilege, "
                     r"not the message's regret", checked.stdout), checked.stdout


def test_check_warns_about_a_mid_sentence_quote_and_an_unframed_group_claim(pack):
    write_story(pack, "delta", [{"text": "and they slipped a verse into the video."},
                                {"text": "They said the victims were spies.", "frames_group_claim": True}],
                ["propaganda-deception"])
    out = run(pack, "check", pack / "stories" / "delta.md").stdout
    assert "warning: quote 1 starts mid-sentence (\"and they slipped ...\") and has no context" in out
    assert "warning: quote 2 repeats the group's own claim (frames_group_claim) and has no context" in out
    assert "stories/alpha.md" not in run(pack, "check", pack / "stories" / "alpha.md").stdout


def test_a_quote_context_is_printed_with_it(pack, tmp_path):
    recipe = write_recipe(pack, "ctx", messages=[{"text": "Staging", "themes": ["propaganda-deception"]}])
    for fmt in ("md", "txt"):
        out = tmp_path / f"ctx.{fmt}"
        assert run(pack, "brief", recipe, "--include-synthetic", "-o", out).exit_code == 0
        text = out.read_text()
        assert text.index("CONTEXT ALPHA TWO") < text.index("and they slipped a verse")


# ----------------------------------------------------------------------------- editions

FACILITATOR_ONLY = [MONITORING, SAFEGUARDING, "Do no harm", "DO NO HARM", "Safeguarding", "SAFEGUARDING",
                    "Monitoring", "MONITORING", "Evaluation items", "credibility", "CREDIBILITY", "Speaks from",
                    "Limits", "INVOLVEMENT BRAVO", "CORROBORATION BRAVO", "SUMMARY OF", "CURATOR NOTE",
                    "Session plan", "SESSION PLAN", "Call to action", "Test the pack.", "Facilitator edition"]


@pytest.fixture
def two_editions(pack):
    return write_recipe(pack, "editions", monitoring=MONITORING, safeguarding=SAFEGUARDING, messages=[
        {"text": "Dissent", "themes": ["suppression-of-dissent"], "questions": ["QUESTION ONE?"]},
        {"text": "Pay", "themes": ["media-privilege"]}],
        evaluation=[{"statement": "EVALUATION STATEMENT", "scale": "1-5 agree"}])


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_handout_holds_no_facilitator_section_in_any_format(pack, two_editions, tmp_path, fmt):
    out = tmp_path / f"handout.{fmt}"
    result = run(pack, "brief", two_editions, "--include-synthetic", "--edition", "handout", "-o", out)
    assert result.exit_code == 0, result.output
    text = flat(read_back(out, tmp_path))
    named = '"edition": "handout"' if fmt == "json" else "Participant handout"
    for word in ("They kill anyone who argues.", "CONTEXT ALPHA ONE", "QUESTION ONE?", "Outlet alpha", named):
        assert word in text, word
    for word in [*FACILITATOR_ONLY, "EVALUATION STATEMENT"]:
        assert word not in text, word


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_facilitator_edition_holds_every_section_and_names_itself(pack, two_editions, tmp_path, fmt):
    out = tmp_path / f"facilitator.{fmt}"
    assert run(pack, "brief", two_editions, "--include-synthetic", "-o", out).exit_code == 0
    text = flat(read_back(out, tmp_path))
    for word in (MONITORING, SAFEGUARDING, "EVALUATION STATEMENT", "QUESTION ONE?", "INVOLVEMENT BRAVO",
                 "SUMMARY OF BRAVO", "Glamorisation risk", "Quotes marked graphic are left out",
                 '"edition": "facilitator"' if fmt == "json" else "Facilitator edition"):
        assert word in text, word
    assert "CURATOR NOTE" not in text


def test_the_handout_of_an_internal_brief_is_refused(pack, two_editions, tmp_path):
    out = tmp_path / "h.md"
    result = run(pack, "brief", two_editions, "--level", "internal", "--edition", "handout", "-o", out)
    assert result.exit_code == 2
    assert result.stderr.strip() == ("Error: an internal brief has no participant handout; make the handout from a "
                                     "public recipe, or use --edition facilitator")
    assert not out.exists()


# ----------------------------------------------------------------------------- INTERNAL everywhere

def test_internal_is_on_every_pdf_page(pack, tmp_path):
    recipe = write_recipe(pack, "long", level="internal", messages=[
        {"text": f"Message number {i} " + "with a long text " * 6, "themes": ["suppression-of-dissent", "regret"],
         "questions": [f"Question {i}.{j} " + "that goes on " * 8 for j in range(4)]} for i in range(8)])
    out = tmp_path / "internal.pdf"
    assert run(pack, "brief", recipe, "--include-synthetic", "-o", out).exit_code == 0
    info = subprocess.run([need("pdfinfo"), str(out)], capture_output=True, text=True, check=True).stdout
    pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))
    assert pages >= 3
    for n in range(1, pages + 1):
        page = subprocess.run([need("pdftotext"), "-f", str(n), "-l", str(n), str(out), "-"], capture_output=True,
                              text=True, check=True).stdout
        assert "INTERNAL" in page, f"page {n} of {pages}"


def test_internal_comes_first_in_markdown_and_text_and_marks_html_and_docx(pack, two_editions, tmp_path):
    import docx

    for fmt in ("md", "txt"):
        out = tmp_path / f"i.{fmt}"
        assert run(pack, "brief", two_editions, "--level", "internal", "-o", out).exit_code == 0
        assert out.read_text().lstrip("*").startswith("INTERNAL")
    html = tmp_path / "i.html"
    assert run(pack, "brief", two_editions, "--level", "internal", "-o", html).exit_code == 0
    page = html.read_text()
    assert re.search(r"<title>INTERNAL", page) and 'class="banner">INTERNAL' in page
    out = tmp_path / "i.docx"
    assert run(pack, "brief", two_editions, "--level", "internal", "-o", out).exit_code == 0
    document = docx.Document(str(out))
    section = document.sections[0]
    assert "INTERNAL" in section.header.paragraphs[0].text and "INTERNAL" in section.footer.paragraphs[0].text


# ----------------------------------------------------------------------------- ad-hoc briefs

@pytest.mark.parametrize("fmt", FORMATS)
def test_an_adhoc_brief_never_says_not_given_and_writes_its_message_from_the_theme(pack, tmp_path, fmt):
    out = tmp_path / f"adhoc.{fmt}"
    result = run(pack, "brief", "--theme", "suppression-of-dissent", "--theme", "infighting", "--include-synthetic",
                 "-o", out)
    assert result.exit_code == 0, result.output
    text = flat(read_back(out, tmp_path))
    assert "Not given" not in text and "Not described" not in text
    assert "Anyone who questions or argues with the group is punished or killed" in text
    assert "Killing and silencing of dissenters" not in text       # the label is not a message
    assert "suggested" in text


# ----------------------------------------------------------------------------- credibility

def test_credibility_comes_from_the_profile_and_says_not_assessed_when_empty(pack):
    recipe = write_recipe(pack, "cred", messages=[{"text": "Pay", "themes": ["media-privilege"]},
                                                  {"text": "Dissent", "themes": ["suppression-of-dissent"]}])
    data = brief_json(pack, recipe)
    by = {m["story_id"]: m for m in data["messengers"]}
    bravo = {row["label"]: row["text"] for row in by["bravo"]["profile"]}
    assert bravo["What they did inside"] == "INVOLVEMENT BRAVO filmed for the media office"
    assert bravo["Speaks from"].startswith("detention")
    assert bravo["Expresses regret"].startswith("no")
    assert bravo["Corroboration"] == "CORROBORATION BRAVO two other defectors"
    alpha = {row["label"]: row["text"] for row in by["alpha"]["profile"]}
    for label in ("What they did inside", "Speaks from", "Expresses regret", "Corroboration"):
        assert alpha[label] == "not assessed by a curator"
    assert "none" not in by["alpha"]["limits"].lower()


# ----------------------------------------------------------------------------- do no harm

def points(data: dict, kind: str) -> list[dict]:
    return [p for p in data["do_no_harm"]["points"] if p["kind"] == kind]


def test_do_no_harm_names_the_glamorising_and_the_graphic_quote(pack):
    recipe = write_recipe(pack, "harm", messages=[{"text": "Pay", "themes": ["media-privilege"]},
                                                  {"text": "Brutality", "themes": ["brutality-against-muslims"]}])
    data = brief_json(pack, recipe, "--include-graphic")
    glamour = points(data, "glamorisation")
    assert glamour and "Their monthly pay is higher" in glamour[0]["from"] and "\u201cpay\u201d" in glamour[0]["text"]
    violence = points(data, "violence")
    assert violence and "They beheaded the prisoners" in violence[0]["from"] and "marked graphic" in violence[0]["from"]
    assert any("executions" in p["text"] and "Speaker charlie" in p["from"] for p in points(data, "content-warning"))
    without = brief_json(pack, recipe)
    assert not points(without, "violence") and points(without, "graphic")


def test_an_under_18_audience_needs_a_safeguarding_plan(pack, tmp_path):
    young = write_recipe(pack, "young", audience={"description": "Pupils", "language": "en", "age": "14-17"},
                         messages=[{"text": "Dissent", "themes": ["suppression-of-dissent"]}])
    data = brief_json(pack, young)
    age = points(data, "age")
    assert age and age[0]["from"] == "audience age 14-17" and "the recipe has none" in age[0]["text"]
    assert data["safeguarding"]["required"] and data["safeguarding"]["missing"]
    result = run(pack, "brief", young, "--include-synthetic", "-o", tmp_path / "y.md")
    assert "warning: the audience (14-17) includes under-18s and the recipe has no safeguarding: plan" in result.stderr
    strict = run(pack, "brief", young, "--include-synthetic", "--strict", "-o", tmp_path / "strict.md")
    assert strict.exit_code == 1 and "no safeguarding plan; nothing was written" in strict.stderr
    assert not (tmp_path / "strict.md").exists()
    planned = write_recipe(pack, "planned", audience={"age": "14-17"}, safeguarding=SAFEGUARDING,
                           messages=[{"text": "Dissent", "themes": ["suppression-of-dissent"]}])
    assert run(pack, "brief", planned, "--include-synthetic", "--strict", "-o", tmp_path / "ok.md").exit_code == 0
    assert SAFEGUARDING in (tmp_path / "ok.md").read_text()


# ----------------------------------------------------------------------------- evaluation CSV

def test_the_evaluation_items_come_out_as_csv(pack, two_editions, tmp_path):
    target = tmp_path / "items.csv"
    result = run(pack, "brief", two_editions, "--include-synthetic", "--edition", "handout", "-o", tmp_path / "h.md",
                 "--evaluation", target)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert rows == [{"item_id": "E1", "statement": "EVALUATION STATEMENT", "scale": "1-5 agree", "scale_min": "1",
                     "scale_max": "5", "anchors": "1 = strongly disagree, 5 = strongly agree", "source": "recipe",
                     "pre": "", "post": ""}]
    adhoc = tmp_path / "adhoc.csv"
    assert run(pack, "brief", "--theme", "regret", "--include-synthetic", "--evaluation", adhoc).exit_code == 0
    rows = list(csv.DictReader(io.StringIO(adhoc.read_text(encoding="utf-8"))))
    assert rows[0]["statement"].startswith("Former members regret joining") and rows[0]["source"] == "suggested by counterbrief"


def test_a_brief_that_fails_writes_neither_the_brief_nor_its_evaluation_items(pack, two_editions, tmp_path):
    """The evaluation CSV goes with the brief: a template that cannot be found is refused before any
    work (one line, no warning first), and one that fails while rendering leaves no CSV behind."""
    target, out = tmp_path / "items.csv", tmp_path / "b.html"
    missing = run(pack, "brief", two_editions, "--include-synthetic", "--template", tmp_path / "nope.j2",
                  "-o", out, "--evaluation", target)
    assert missing.exit_code != 0 and missing.stderr.count("\n") == 1
    assert missing.stderr.startswith("Error: ") and "nope.j2: template not found" in missing.stderr
    broken = tmp_path / "broken.html.j2"
    broken.write_text('{% extends "elsewhere" %}', encoding="utf-8")
    failed = run(pack, "brief", two_editions, "--include-synthetic", "--template", broken, "-o", out,
                 "--evaluation", target)
    assert failed.exit_code != 0 and "template not found: elsewhere" in failed.stderr
    assert not target.exists() and not out.exists()


def test_a_missing_recipe_file_or_an_unknown_option_is_one_line_that_points_to_help(pack, tmp_path):
    for args, says in (
            (("brief", tmp_path / "nope.yml", "-o", tmp_path / "b.md"), "nope.yml' does not exist"),
            (("brief", "--no-such-option"), "No such option '--no-such-option'"),
            (("no-such-command",), "No such command 'no-such-command'")):
        result = run(pack, *args)
        assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.stderr
        assert says in result.stderr and "--help')" in result.stderr and "Usage:" not in result.stderr
    unknown_root = CliRunner().invoke(main, ["--no-such-root-option", "search", "x"])
    assert unknown_root.exit_code == 2 and unknown_root.stderr.count("\n") == 1, unknown_root.stderr


# ----------------------------------------------------------------------------- the bundled archive

def test_the_bundled_recipes_prove_every_message_with_pinned_quotes_and_check_clean():
    checked = run(REPO, "check")
    # The one kind of warning left on purpose: referral contacts are never invented, so the youth
    # workers' recipe holds [fill in: ...] placeholders until its users put their own contacts in.
    left = [line for line in checked.stdout.splitlines() if "still holds the placeholder [fill in:" not in line]
    assert checked.exit_code == 0 and left == [], checked.stdout
    for recipe in sorted((REPO / "recipes").glob("*.yml")):
        data = json.loads(run(REPO, "brief", recipe, "--format", "json").stdout)
        spec = yaml.safe_load(recipe.read_text())
        for m, want in zip(data["messages"], spec["messages"]):
            got = [q["ref"] for t in m["testimony"] for q in t["quotes"]]
            assert got[:len(want["quotes"])] == want["quotes"], recipe.name
            assert all(q["context"] for t in m["testimony"] for q in t["quotes"])
        assert all(not e.get("suggested") for e in data["evaluation"]) and data["safeguarding"]["given"]


def test_the_bundled_cbs_defector_is_not_given_a_nationality_the_report_does_not_state():
    text = (REPO / "stories" / "cbs-defector-turkey-2017.md").read_text()
    front = text.split("---")[1]
    assert "origin:" not in front and "Jordanian" not in text
    assert "2017-3-10" in text and "last year" in text      # the evidence for published and left


def test_the_pdf_is_tagged_for_accessibility(pack, two_editions, tmp_path):
    out = tmp_path / "tagged.pdf"
    assert run(pack, "brief", two_editions, "--include-synthetic", "-o", out).exit_code == 0
    info = subprocess.run([need("pdfinfo"), str(out)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"Tagged:\s+yes", info)


def lone_words(text: str) -> list[str]:
    """Lines of one word cut out of a running sentence: the line before is full, the next goes on in lowercase."""
    lines = [line.strip() for line in text.splitlines()]
    return [f"{a} / {b} / {c}" for a, b, c in zip(lines, lines[1:], lines[2:])
            if len(a) > 60 and len(b.split()) == 1 and b[-1:].isalpha() and c[:1].islower()]


@pytest.mark.parametrize("recipe", ["why-they-left-amman.yml", "propaganda-machine-teachers.yml"])
def test_the_bundled_pdf_briefs_have_no_stray_line_breaks(tmp_path, recipe):
    # WeasyPrint measures a text run's trailing space when it checks that the rest of a paragraph
    # fits: a run ending in a space before an inline element (or the end of a list item) could
    # then be cut after its first word. The template keeps such spaces inside the inline element.
    out = tmp_path / "brief.pdf"
    assert run(REPO, "brief", REPO / "recipes" / recipe, "-o", out).exit_code == 0
    assert lone_words(read_back(out, tmp_path)) == []


def test_a_protected_name_in_a_quote_never_leaks_through_the_do_no_harm_points(pack):
    (pack / "sources" / "src.txt").write_text(SOURCE + '"They kill anyone who argues, said the commander Zorvan Kethlimar."\n',
                                              encoding="utf-8")
    write_story(pack, "echo", [{"text": "They kill anyone who argues, said the commander Zorvan Kethlimar.",
                                "context": "He names his commander."}], ["suppression-of-dissent"],
                redact=["Zorvan Kethlimar"])
    recipe = write_recipe(pack, "protect", messages=[{"text": "Dissent", "themes": ["suppression-of-dissent"],
                                                      "quotes": ["echo#1"]}])
    text = json.dumps(brief_json(pack, recipe), ensure_ascii=False)
    assert "Zorvan" not in text and "Kethlimar" not in text
    assert "commander [redacted]" in text and points(brief_json(pack, recipe), "violence")


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_carries_the_same_facilitator_content(tmp_path, fmt):
    recipe = REPO / "recipes" / "why-they-left-amman.yml"
    data = json.loads(run(REPO, "brief", recipe, "--format", "json").stdout)
    out = tmp_path / f"amman.{fmt}"
    assert run(REPO, "brief", recipe, "-o", out).exit_code == 0
    text = flat(read_back(out, tmp_path))
    if fmt == "json":
        text = flat(" ".join(strings(json.loads(out.read_text()))))
    wanted = [q["context"] for m in data["messages"] for t in m["testimony"] for q in t["quotes"]]
    wanted += [row["text"] for p in data["messengers"] for row in p["profile"]]
    wanted += [p["summary"].split(".")[0] for p in data["messengers"]]
    wanted += data["session"]["steps"] + [data["safeguarding"]["text"]] + [e["statement"] for e in data["evaluation"]]
    wanted += [p["text"] for p in data["do_no_harm"]["points"]] + data["do_no_harm"]["rules"]
    wanted += [q for m in data["messages"] for q in m["questions"]]
    for want in wanted:
        assert flat(want) in text, want


def strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    return [s for v in value for s in strings(v)] if isinstance(value, list) else []


def test_the_keyword_lists_find_pay_and_killing_in_french_and_arabic():
    from counterbrief.select import GLAMOUR_WORDS, VIOLENCE_WORDS, _words_in

    assert _words_in("Leur salaire est plus élevé et ils ont de meilleures voitures.", "fr", GLAMOUR_WORDS) == [
        "salaire", "voiture"]
    assert _words_in("Ils tuent tous ceux qui discutent.", "fr", VIOLENCE_WORDS) == []   # "tuent": not in the list
    assert _words_in("Ils ont tué ceux qui discutaient.", "fr", VIOLENCE_WORDS) == ["tué"]
    assert _words_in("لديهم رواتب أعلى وسيارات أفضل", "ar", GLAMOUR_WORDS) == ["رواتب", "سيارات"]
    assert _words_in("قَتَلوا كل من اعترض", "ar", VIOLENCE_WORDS) == ["قتل"]
    assert _words_in("We were paid, and the car was ours.", "en", GLAMOUR_WORDS) == ["paid", "car"]
    assert _words_in("The carpet and the payload.", "en", GLAMOUR_WORDS) == []


def test_a_pin_that_is_not_usable_at_the_recipe_level_is_an_error_in_check(pack):
    write_story(pack, "golf", [{"text": "They kill anyone who argues."}], ["suppression-of-dissent"],
                sensitivity="internal")
    recipe = write_recipe(pack, "level", messages=[{"text": "Dissent", "themes": ["suppression-of-dissent"],
                                                    "quotes": ["golf#1", "charlie#1"]}])
    checked = run(pack, "check").stdout
    assert "pinned quote golf#1 of message 1 is not usable in a public brief (approved, internal)" in checked
    assert "pinned quote charlie#1 of message 1 is marked graphic and the recipe leaves graphic quotes out" in checked
    result = run(pack, "brief", recipe, "--format", "json", "--include-synthetic")
    assert "warning: message 1: pinned quote golf#1 is not usable in a public brief" in result.stderr
    internal = json.loads(run(pack, "brief", recipe, "--format", "json", "--include-synthetic", "--level",
                              "internal").stdout)
    assert refs(internal)[0][0] == "golf#1"
