"""The brief as a Word document (python-docx): real headings, a quote style, right-to-left Arabic."""
from __future__ import annotations

import io
from typing import Any

from .render import markdown_plain
from .text import citation


def _rtl(paragraph) -> None:
    """A right-to-left paragraph: w:bidi on the paragraph, w:rtl and a complex-script font on its runs."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    ppr = paragraph._p.get_or_add_pPr()
    ppr.append(OxmlElement("w:bidi"))
    for run in paragraph.runs:
        rpr = run._r.get_or_add_rPr()
        fonts = rpr.find(qn("w:rFonts"))
        if fonts is None:
            fonts = OxmlElement("w:rFonts")
            rpr.insert(0, fonts)
        fonts.set(qn("w:cs"), "DejaVu Sans")
        rpr.append(OxmlElement("w:rtl"))


INTERNAL = "INTERNAL — not for distribution outside the organisation"


def brief_docx(ctx: dict[str, Any]) -> bytes:
    """The brief as DOCX, with the same content as the Markdown brief, in either edition."""
    from docx import Document
    from docx.shared import Pt

    facilitator = ctx["edition"] == "facilitator"
    doc = Document()
    props = doc.core_properties
    props.title = ("INTERNAL — " if ctx["level"] == "internal" else "") + ctx["title"]
    props.author = "counterbrief"
    props.comments = f"archive fingerprint {ctx['provenance']['archive_fingerprint']}"
    doc.styles["Normal"].font.name = "DejaVu Sans"
    doc.styles["Normal"].font.size = Pt(10.5)
    if ctx["level"] == "internal":
        # On every page: the section's header and footer repeat on each one.
        for part in (doc.sections[0].header, doc.sections[0].footer):
            part.paragraphs[0].add_run(INTERNAL).bold = True
        doc.add_paragraph().add_run(INTERNAL).bold = True
    doc.add_heading(ctx["title"], level=0)
    doc.add_paragraph(f"{ctx['date']} · " + ("Facilitator edition" if facilitator else "Participant handout"))
    if ctx["synthetic"]:
        doc.add_paragraph().add_run("This brief holds synthetic test data. It is not testimony and must not be used.").bold = True

    def suggested(key: str, note: str = " (suggested)") -> str:
        return note if key in ctx["suggested"] else ""

    def bullet(text: str, style: str = "List Bullet") -> None:
        doc.add_paragraph(text, style=style)

    if facilitator:
        doc.add_heading("Goal", level=1)
        doc.add_paragraph(ctx["goal"] + suggested("goal", " (suggested: the recipe gives no goal)"))
        doc.add_heading("Audience", level=1)
        doc.add_paragraph(ctx["audience"].get("description") or "Described only by the recipe's messages: add audience.description.")
        for key in ("country", "language", "age"):
            if ctx["audience"].get(key):
                bullet(f"{key.capitalize()}: {ctx['audience'][key]}")
        doc.add_heading("Key messages and the testimony behind them", level=1)
    else:
        doc.add_heading("Our ground rules", level=1)
        for rule in ctx["ground_rules"]:
            bullet(rule)
        doc.add_heading("Messages, and what former members say", level=1)
    for m in ctx["messages"]:
        doc.add_heading(f"Not numbered: {m['text']}" if m["gap"] else f"{m['n']}. {m['text']}", level=2)
        if m["gap"]:
            doc.add_paragraph().add_run("No approved account backs this message yet, so it is not in the handout: "
                                        "find one before using it, or drop the message.").italic = True
        for t in m["testimony"]:
            for q in t["quotes"]:
                ctx_p = doc.add_paragraph()
                label = ctx_p.add_run(f"Quote {q['n']}.")
                label.bold, label.font.size = True, Pt(9)
                if q["context"]:
                    run = ctx_p.add_run(f" Context: {q['context']}")
                    run.italic, run.font.size = True, Pt(9)
                p = doc.add_paragraph(f"{t['quote_open']}{q['text']}{t['quote_close']}", style="Quote")
                if t["dir"] == "rtl":
                    _rtl(p)
            years = (f", in the group {t['joined'] or '?'}–{t['left'] or '?'}"
                     if facilitator and (t.get("joined") or t.get("left")) else "")
            who = doc.add_paragraph(f"— {t['speaker']}" + (f", {t['role']}" if t["role"] else "") + years + f" [{t['citation']}]")
            who.runs[0].font.size = Pt(9)
            if t["content_warnings"]:
                doc.add_paragraph().add_run(f"Content warning: {', '.join(t['content_warnings'])}").italic = True
        if not m["gap"]:
            label = doc.add_paragraph()
            label.add_run("Questions to discuss").bold = True
            if facilitator and m["questions_suggested"]:
                label.add_run(" (suggested: the recipe gives none)").italic = True
            for question in m["questions"]:
                bullet(question)
            if facilitator and m["facilitator_notes"]:
                label = doc.add_paragraph()
                label.add_run("Facilitator notes").bold = True
                if m["facilitator_notes_suggested"]:
                    label.add_run(" (suggested: the recipe gives none)").italic = True
                for note in m["facilitator_notes"]:
                    bullet(note)
    if facilitator:
        doc.add_heading("The messengers: credibility and its limits", level=1)
        for p in ctx["messengers"]:
            para = doc.add_paragraph(style="List Bullet")
            para.add_run(p["speaker"]).bold = True
            para.add_run((f" ({p['role']})" if p["role"] else "") + f": {p['credible_because']}.")
            for row in p["profile"]:
                bullet(f"{row['label']}: {row['text']}", "List Bullet 2")
            doc.add_paragraph("Summary, for the facilitator: " + markdown_plain(p["summary"]).replace("\n\n", " "))
        if not ctx["messengers"]:
            doc.add_paragraph("No messengers: no account was selected.")
        if ctx["messenger_notes"]:
            note = doc.add_paragraph()
            note.add_run("Note on the messengers, from the recipe: ").italic = True
            note.add_run(ctx["messenger_notes"])
        for heading, key in (("Media", "media"), ("Call to action", "action")):
            doc.add_heading(heading, level=1)
            doc.add_paragraph(ctx[key] + suggested(key))
        session = ctx["session"]
        doc.add_heading("Session plan" + (" (suggested: the recipe gives none)" if session["suggested"] else ""), level=1)
        doc.add_paragraph(f"Length: {session['length']} · Group size: {session['group_size']}")
        for step in session["steps"]:
            bullet(step, "List Number")
        doc.add_paragraph("Ground rules, printed on the participant handout"
                          + (" (suggested: the recipe gives none)" if ctx["ground_rules_suggested"] else "") + ":")
        for rule in ctx["ground_rules"]:
            bullet(rule)
        safe = ctx["safeguarding"]
        doc.add_heading("Safeguarding and referral" + (" (required: under-18 audience)" if safe["required"] else ""), level=1)
        if safe["missing"]:
            doc.add_paragraph().add_run("Warning: the audience includes under-18s and the recipe has no safeguarding plan.").bold = True
        if safe["placeholders"]:
            still = doc.add_paragraph()
            still.add_run("Still to fill in before the session: ").bold = True
            still.add_run(f"{len(safe['placeholders'])} contact(s) marked [fill in: ...] below. counterbrief never "
                          "invents contacts: put in your own.")
        doc.add_paragraph(safe["text"])
        if safe["referral"]:
            doc.add_paragraph("Referral contacts:")
            for contact in safe["referral"]:
                bullet(contact)
        doc.add_paragraph("Where participants are told to get help (printed on the handout)"
                          + (" (suggested: the recipe gives none)" if safe["participants_suggested"] else "")
                          + f": {safe['participants']}")
        doc.add_heading("Monitoring and evaluation", level=1)
        doc.add_paragraph(ctx["monitoring"] + suggested("monitoring"))
        doc.add_paragraph("Evaluation items, asked before and after the session:")
        for e in ctx["evaluation"]:
            bullet(f"{e['statement']} ({e['scale']}{'; suggested' if e.get('suggested') else ''})", "List Number 2")
        doc.add_heading("Do no harm", level=1)
        harm = ctx["do_no_harm"]
        for point in harm["points"]:
            bullet(f"{point['text']} (from {point['from']})")
        if harm["content_warnings"]:
            bullet(f"Content warnings of the accounts used: {', '.join(harm['content_warnings'])}.")
        for rule in harm["rules"]:
            bullet(rule)
    else:
        doc.add_heading("Where to get help", level=1)
        doc.add_paragraph(ctx["help"])
    doc.add_heading("Sources", level=1)
    for c in ctx["citations"]:
        if not facilitator and c.get("url_withheld"):
            note = f" — Its address is left out of this handout: {c['content_warning']}."
        else:
            note = f" — Content warning: {c['content_warning']}" if c.get("content_warning") else ""
        doc.add_paragraph(f"[{c['n']}] {citation(c)}" + note)
    if not ctx["citations"]:
        doc.add_paragraph("No sources: no account was selected.")
    prov = ctx["provenance"]
    foot = doc.add_paragraph(("Facilitator edition: not for participants. " if facilitator else "Participant handout. ")
                             + f"Made with counterbrief {prov['tool_version']} on {prov['date']} from recipe {prov['recipe']} "
                             f"(sha256 {prov['recipe_sha256']}), archive fingerprint {prov['archive_fingerprint']}.")
    foot.runs[0].font.size = Pt(7.5)
    # Fixed document dates: the same brief gives the same file.
    import datetime as dt

    fixed = dt.datetime(2000, 1, 1)
    props.created = props.modified = fixed
    props.last_modified_by = "counterbrief"
    props.revision = 1
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()
