"""What a facilitator and a participant hold in their hands: the handout's own title, ground rules and
help line; quote numbers that match between the two editions; [fill in: ...] contacts never left
in silently; facilitator notes for a quote that repeats the group's claim; an evaluation CSV with
columns to fill; trauma points only from the places the accounts happened in."""
from __future__ import annotations

import csv
import io
import json
import re

import subprocess

import pytest

from conftest import REPO
from test_brief import FORMATS, flat, need
from test_brief import read_back as read_body
from test_brief_pack import MONITORING, lone_words, pack, run, write_recipe, write_story  # noqa: F401 - pack: a fixture

def read_back(path, tmp_path) -> str:
    """As test_brief.read_back, with the DOCX read standalone: pandoc takes its Title paragraph as the title."""
    if path.suffix == ".docx":
        return subprocess.run([need("pandoc"), "-s", "-f", "docx", "-t", "plain", "--wrap=none", str(path)],
                              capture_output=True, text=True, check=True).stdout
    return read_body(path, tmp_path)


PLAN = "PLAN FOR THE FACILITATOR WATCH THEM"
REFERRAL = "REFERRAL CONTACT 0000"
HELP = "HELP LINE FOR PARTICIPANTS"


@pytest.fixture
def participant(pack):
    return write_recipe(pack, "participant", title="Facilitator Title — a brief for trainers", monitoring=MONITORING,
                        handout_title="HANDOUT TITLE", ground_rules=["GROUND RULE ONE", "GROUND RULE TWO"],
                        safeguarding={"plan": PLAN, "referral": [REFERRAL], "participants": HELP},
                        messages=[{"text": "Dissent", "themes": ["suppression-of-dissent"], "quotes": ["alpha#1"],
                                   "facilitator_notes": ["FACILITATOR NOTE ONE"]},
                                  {"text": "Pay", "themes": ["media-privilege"]}])


def json_brief(root, recipe, *extra) -> dict:
    result = run(root, "brief", recipe, "--format", "json", "--include-synthetic", *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_handout_has_its_own_title_ground_rules_and_help_line_and_no_facilitator_note(pack, participant,
                                                                                         tmp_path, fmt):
    out = tmp_path / f"handout.{fmt}"
    result = run(pack, "brief", participant, "--include-synthetic", "--edition", "handout", "-o", out)
    assert result.exit_code == 0, result.output
    text = flat(read_back(out, tmp_path))
    for word in ("HANDOUT TITLE", "GROUND RULE ONE", "GROUND RULE TWO", HELP):
        assert word in text, word
    for word in ("Facilitator Title", "a brief for trainers", PLAN, REFERRAL, MONITORING, "FACILITATOR NOTE ONE",
                 "Facilitator notes", "watch them"):
        assert word not in text, word


@pytest.mark.parametrize("fmt", ["pdf", "docx", "md"])
def test_the_facilitator_edition_shows_what_the_handout_tells_participants_and_the_notes(pack, participant,
                                                                                      tmp_path, fmt):
    out = tmp_path / f"facilitator.{fmt}"
    assert run(pack, "brief", participant, "--include-synthetic", "-o", out).exit_code == 0
    text = flat(read_back(out, tmp_path))
    for word in ("Facilitator Title", PLAN, REFERRAL, HELP, "GROUND RULE ONE", "FACILITATOR NOTE ONE"):
        assert word in text, word
    assert "HANDOUT TITLE" not in text


def test_without_them_the_handout_gets_a_derived_title_and_default_rules_and_help(pack, tmp_path):
    recipe = write_recipe(pack, "bare", title="Why they left — a brief for youth workers", monitoring=MONITORING,
                          messages=[{"text": "Dissent", "themes": ["suppression-of-dissent"]}])
    facilitator = json_brief(pack, recipe)
    assert facilitator["ground_rules_suggested"] and facilitator["safeguarding"]["participants_suggested"]
    out = tmp_path / "bare.pdf"
    assert run(pack, "brief", recipe, "--include-synthetic", "--edition", "handout", "-o", out).exit_code == 0
    text = flat(read_back(out, tmp_path))
    assert text.startswith("PARTICIPANT HANDOUT Why they left [SYNTHETIC TEST DATA] 2026-12-01"), text[:80]
    assert "youth workers" not in text and "you can always pass" in text and "an adult you trust" in text
    generic = write_recipe(pack, "generic", title="Counter-messaging brief", messages=[{"text": "Dissent",
                                                                                         "themes": ["regret"]}])
    assert json_brief(pack, generic, "--edition", "handout")["title"] == "What people who left the group say [SYNTHETIC TEST DATA]"


def test_messages_and_quotes_carry_the_same_numbers_in_both_editions(pack, tmp_path):
    recipe = write_recipe(pack, "numbers", max_accounts_per_message=1, messages=[
        {"text": "Dissent", "themes": ["suppression-of-dissent"], "quotes": ["alpha#1", "alpha#3"]},
        {"text": "Nobody says this", "query": "zebra unicorn"},          # no account: not numbered
        {"text": "Pay", "themes": ["media-privilege"], "quotes": ["bravo#1"]},
        {"text": "Staging", "themes": ["propaganda-deception"], "quotes": ["alpha#2"]}])
    facilitator, handout = json_brief(pack, recipe), json_brief(pack, recipe, "--edition", "handout")

    def numbers(data):
        return [(m["n"], m["text"], [(q["n"], q["ref"]) for t in m["testimony"] for q in t["quotes"]])
                for m in data["messages"] if not m["gap"]]
    assert numbers(facilitator) == numbers(handout) == [
        (1, "Dissent", [(1, "alpha#1"), (2, "alpha#3")]), (2, "Pay", [(3, "bravo#1")]), (3, "Staging", [(4, "alpha#2")])]
    assert [m["n"] for m in facilitator["messages"]] == [1, None, 2, 3]
    for edition in ("facilitator", "handout"):
        out = tmp_path / f"{edition}.pdf"
        assert run(pack, "brief", recipe, "--include-synthetic", "--edition", edition, "-o", out).exit_code == 0
        text = flat(read_back(out, tmp_path))
        positions = [text.index(f"Quote {n}.") for n in (1, 2, 3, 4)]
        assert positions == sorted(positions)
        assert text.index("1. Dissent") < text.index("2. Pay") < text.index("3. Staging")
        assert ("Nobody says this" in text) == (edition == "facilitator")


# ----------------------------------------------------------------------------- placeholders

def test_a_fill_in_placeholder_in_safeguarding_is_warned_about_and_refused_by_strict(pack, tmp_path):
    recipe = write_recipe(pack, "todo", audience={"description": "Young people", "language": "en", "age": "15-18"},
                          safeguarding={"plan": "Tell the lead.", "referral": ["[fill in: the local helpline, phone]"],
                                        "participants": "Talk to [fill in: the youth worker's name] after the session."},
                          messages=[{"text": "Dissent", "themes": ["suppression-of-dissent"]}])
    checked = run(pack, "check")
    assert re.search(r"recipes/todo\.yml:\d+: warning: safeguarding\.referral\.0 still holds the placeholder "
                     r"\[fill in: the local helpline, phone\]; replace it with the real contact", checked.stdout)
    assert "safeguarding.participants still holds the placeholder [fill in: the youth worker's name]" in checked.stdout
    out = tmp_path / "todo.md"
    loose = run(pack, "brief", recipe, "--include-synthetic", "-o", out)
    assert loose.exit_code == 0 and "safeguarding section still holds 2 placeholder(s)" in loose.stderr
    assert "Still to fill in before the session" in out.read_text()
    strict = run(pack, "brief", recipe, "--include-synthetic", "--strict", "-o", tmp_path / "strict.md")
    assert strict.exit_code == 1 and not (tmp_path / "strict.md").exists()
    assert "still holds the placeholder [fill in: the local helpline, phone]; nothing was written" in strict.stderr
    assert "replace every [fill in: ...]" in strict.stderr
    handout = tmp_path / "todo-handout.pdf"
    assert run(pack, "brief", recipe, "--include-synthetic", "--edition", "handout", "-o", handout).exit_code == 0
    text = flat(read_back(handout, tmp_path))
    assert "Talk to ________________ (the youth worker's name) after the session." in text
    assert "fill in" not in text and "local helpline" not in text


def test_a_string_safeguarding_plan_still_works_and_holds_no_participant_line(pack):
    recipe = write_recipe(pack, "plain", safeguarding="PLAIN PLAN TEXT",
                          messages=[{"text": "Dissent", "themes": ["suppression-of-dissent"]}])
    data = json_brief(pack, recipe)
    assert data["safeguarding"]["text"] == "PLAIN PLAN TEXT" and data["safeguarding"]["referral"] == []
    assert data["safeguarding"]["participants_suggested"]
    assert PLAN not in json.dumps(json_brief(pack, recipe, "--edition", "handout"))


def test_an_unknown_safeguarding_field_is_one_clear_line(pack):
    recipe = write_recipe(pack, "typo", safeguarding={"plan": "x", "referal": ["y"]},
                          messages=[{"text": "Dissent", "themes": ["suppression-of-dissent"]}])
    result = run(pack, "brief", recipe, "--include-synthetic")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert re.search(r"typo\.yml:\d+: unknown safeguarding field 'referal'.*referral", result.stderr), result.stderr


# ----------------------------------------------------------------------------- the group's claim

def test_a_pinned_group_claim_without_a_facilitator_note_is_a_warning_and_gets_a_suggested_note(pack, tmp_path):
    bare = write_recipe(pack, "claim", messages=[{"text": "Staging", "themes": ["propaganda-deception"],
                                                  "quotes": ["bravo#2"]}])
    assert re.search(r"recipes/claim\.yml:\d+: warning: pinned quote bravo#2 of message 1 repeats the group's own "
                     r"claim \(frames_group_claim\) and message 1 has no facilitator_notes", run(pack, "check").stdout)
    data = json_brief(pack, bare)
    assert data["messages"][0]["facilitator_notes_suggested"]
    assert data["messages"][0]["facilitator_notes"][0].startswith("Quote 1 repeats the group's own claim")
    noted = write_recipe(pack, "claim", messages=[{"text": "Staging", "themes": ["propaganda-deception"],
                                                   "quotes": ["bravo#2"], "facilitator_notes": "ANSWER THE CLAIM"}])
    assert "claim.yml" not in re.sub(r"recipes/claim\.yml:\d+: warning: pinned quote bravo#2 of message 1 is synthetic.*",
                                     "", run(pack, "check").stdout)
    for edition, shown in (("facilitator", True), ("handout", False)):
        out = tmp_path / f"claim-{edition}.docx"
        assert run(pack, "brief", noted, "--include-synthetic", "--edition", edition, "-o", out).exit_code == 0
        text = flat(read_back(out, tmp_path))
        assert "They said the victims were spies." in text and "The group's claim about its victims." in text
        assert ("ANSWER THE CLAIM" in text) is shown


# ----------------------------------------------------------------------------- the evaluation CSV

def test_the_evaluation_csv_has_item_ids_scale_ends_and_empty_pre_post_columns_and_no_formula(pack, tmp_path):
    recipe = write_recipe(pack, "survey", messages=[{"text": "Dissent", "themes": ["suppression-of-dissent"]}],
                          evaluation=[{"statement": "=HYPERLINK(\"http://evil.example\")", "scale": "1-5 agree"},
                                      {"statement": "I trust what I see online.", "scale": "@SUM(1)"},
                                      {"statement": "-2+3 is a claim.", "scale": "1-7 true"}])
    target = tmp_path / "items.csv"
    assert run(pack, "brief", recipe, "--include-synthetic", "-o", tmp_path / "b.md", "--evaluation", target).exit_code == 0
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert list(rows[0]) == ["item_id", "statement", "scale", "scale_min", "scale_max", "anchors", "source", "pre", "post"]
    assert [r["item_id"] for r in rows] == ["E1", "E2", "E3"]
    assert rows[0]["statement"] == "'=HYPERLINK(\"http://evil.example\")" and rows[1]["scale"] == "'@SUM(1)"
    assert rows[2]["statement"] == "'-2+3 is a claim."
    assert (rows[0]["scale_min"], rows[0]["scale_max"], rows[0]["anchors"]) == ("1", "5", "1 = strongly disagree, 5 = strongly agree")
    assert (rows[1]["scale_min"], rows[1]["anchors"]) == ("", "")
    assert rows[2]["anchors"] == "1 = not at all true, 7 = completely true"
    assert all(r["pre"] == "" and r["post"] == "" and r["source"] == "recipe" for r in rows)
    # The same ids as the facilitator pack's evaluation items.
    assert [e["id"] for e in json_brief(pack, recipe)["evaluation"]] == ["E1", "E2", "E3"]


# ----------------------------------------------------------------------------- trauma from places

def test_trauma_points_come_from_the_places_the_account_happened_in_not_from_places_it_mentions(pack):
    write_story(pack, "echo", [{"text": "They kill anyone who argues.", "themes": ["regret"]}], ["regret"],
                places=["Morocco"])
    (pack / "stories" / "echo.md").write_text((pack / "stories" / "echo.md").read_text().replace(
        "SUMMARY OF ECHO.", "He once saw a film about Syria and read about Iraq."), encoding="utf-8")
    write_story(pack, "foxtrot", [{"text": "If they had known the truth they would not have joined.",
                                   "themes": ["regret"]}], ["regret"], speaker={"origin": "Jordanian"})
    recipe = write_recipe(pack, "places", audience={"description": "Youth", "language": "en", "country": "Jordan",
                                                    "age": "adults"},
                          messages=[{"text": "Regret", "themes": ["regret"], "quotes": ["echo#1", "foxtrot#1"]}])
    points = [p for p in json_brief(pack, recipe, "--id", "echo", "--id", "foxtrot")["do_no_harm"]["points"]
              if p["kind"] == "trauma"]
    text = " ".join(p["text"] + " " + p["from"] for p in points)
    assert "Syria" not in text and "Iraq" not in text
    home = next(p for p in points if p["text"].startswith("Jordan is the audience's country"))
    assert "a speaker used comes from there" in home["text"]
    assert home["from"] == "Jordan: Speaker foxtrot, message 1 (quote 2), the speaker's origin"
    other = next(p for p in points if "Morocco" in p["text"])
    assert other["text"].startswith("Morocco: events in the account used took place there.")
    assert other["from"] == "Morocco: Speaker echo, message 1 (quote 1)"


def test_an_account_without_places_is_named_as_not_assessed(pack):
    recipe = write_recipe(pack, "noplaces", messages=[{"text": "Dissent", "themes": ["suppression-of-dissent"],
                                                       "quotes": ["alpha#1"]}])
    points = [p for p in json_brief(pack, recipe, "--id", "alpha")["do_no_harm"]["points"] if p["kind"] == "trauma"]
    assert len(points) == 1 and "not assessed by a curator" in points[0]["text"]
    assert points[0]["from"] == "Speaker alpha, message 1 (quote 1)"


def test_a_source_page_with_a_content_warning_has_no_address_on_the_handout(pack, tmp_path):
    story = pack / "stories" / "alpha.md"
    story.write_text(story.read_text().replace("  url: https://example.org/alpha",
                                               "  url: https://example.org/alpha\n  content_warning: CW PAGE SHOWS A KILLING"),
                     encoding="utf-8")
    recipe = write_recipe(pack, "cw", messages=[{"text": "Dissent", "themes": ["suppression-of-dissent"],
                                                 "quotes": ["alpha#1"]}])
    for edition, address in (("facilitator", True), ("handout", False)):
        out = tmp_path / f"cw-{edition}.html"
        assert run(pack, "brief", recipe, "--include-synthetic", "--edition", edition, "-o", out).exit_code == 0
        text = flat(read_back(out, tmp_path))
        assert ("example.org/alpha" in text) is address and "CW PAGE SHOWS A KILLING" in text
    assert "Its address is left out of this handout" in text


# ----------------------------------------------------------------------------- the bundled recipes

def test_the_bundled_youth_recipe_is_refused_by_strict_until_its_contacts_are_filled_in(tmp_path):
    recipe = REPO / "recipes" / "why-they-left-amman.yml"
    strict = run(REPO, "brief", recipe, "--strict", "-o", tmp_path / "strict.md")
    assert strict.exit_code == 1 and "[fill in:" in strict.stderr and not (tmp_path / "strict.md").exists()
    filled = tmp_path / "filled.yml"
    filled.write_text(re.sub(r"\[fill in:[^\]]*\]", "Contact 0000", recipe.read_text(encoding="utf-8")), encoding="utf-8")
    assert run(REPO, "brief", filled, "--strict", "-o", tmp_path / "ok.md").exit_code == 0


@pytest.mark.parametrize("recipe", ["why-they-left-amman", "propaganda-machine-teachers"])
def test_the_bundled_handouts_hold_nothing_a_participant_must_not_see(tmp_path, recipe):
    out = tmp_path / f"{recipe}.pdf"
    assert run(REPO, "brief", REPO / "recipes" / f"{recipe}.yml", "--edition", "handout", "-o", out).exit_code == 0
    text = flat(read_back(out, tmp_path))
    for word in ("brief for", "Facilitator", "sympathy", "safeguarding lead the same day; do not investigate",
                 "Summary", "Do no harm", "Evaluation", "[fill in", "christiantoday.com", "Limits", "regret in the article"):
        assert word not in text, word
    assert "Our ground rules" in text and "Where to get help" in text and "Quote 1." in text
    assert lone_words(read_back(out, tmp_path)) == []
    assert not re.search(r"--\s*\n\s*\w", read_back(out, tmp_path))   # no option cut after its dashes
