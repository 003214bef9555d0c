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


def brief_docx(ctx: dict[str, Any]) -> bytes:
    from docx import Document
    from docx.shared import Pt

    doc = Document()
    props = doc.core_properties
    props.title = ctx["title"]
    props.author = "counterbrief"
    props.comments = f"archive fingerprint {ctx['provenance']['archive_fingerprint']}"
    doc.styles["Normal"].font.name = "DejaVu Sans"
    doc.styles["Normal"].font.size = Pt(10.5)
    doc.add_heading(ctx["title"], level=0)
    meta = doc.add_paragraph(ctx["date"])
    if ctx["level"] == "internal":
        meta.add_run("  INTERNAL — not for distribution outside the organisation").bold = True
    if ctx["synthetic"]:
        doc.add_paragraph().add_run("This brief holds synthetic test data. It is not testimony and must not be used.").bold = True
    doc.add_heading("Goal", level=1)
    doc.add_paragraph(ctx["goal"] or "Not given in the recipe.")
    doc.add_heading("Audience", level=1)
    doc.add_paragraph(ctx["audience"].get("description") or "Not described in the recipe.")
    for key in ("country", "language", "age"):
        if ctx["audience"].get(key):
            doc.add_paragraph(f"{key.capitalize()}: {ctx['audience'][key]}", style="List Bullet")
    doc.add_heading("Key messages and the testimony behind them", level=1)
    for n, m in enumerate(ctx["messages"], 1):
        doc.add_heading(f"{n}. {m['text']}", level=2)
        if m["gap"]:
            doc.add_paragraph().add_run("No approved account backs this message yet.").italic = True
        for t in m["testimony"]:
            for q in t["quotes"]:
                p = doc.add_paragraph(f"{t['quote_open']}{q['text']}{t['quote_close']}", style="Quote")
                if t["dir"] == "rtl":
                    _rtl(p)
            years = f", in the group {t['joined'] or '?'}–{t['left'] or '?'}" if t["joined"] or t["left"] else ""
            who = doc.add_paragraph(f"— {t['speaker']}" + (f", {t['role']}" if t["role"] else "") + years + f" [{t['citation']}]")
            who.runs[0].font.size = Pt(9)
            if t["content_warnings"]:
                doc.add_paragraph().add_run(f"Content warning: {', '.join(t['content_warnings'])}").italic = True
    doc.add_heading("The messengers: why they are credible", level=1)
    for p in ctx["messengers"]:
        para = doc.add_paragraph(style="List Bullet")
        para.add_run(p["speaker"]).bold = True
        para.add_run((f" ({p['role']})" if p["role"] else "") + f": {p['credible_because']}. Limits: {p['limits']}.")
        doc.add_paragraph(markdown_plain(p["summary"]))
    if ctx["messenger_notes"]:
        doc.add_paragraph(ctx["messenger_notes"])
    for heading, key in (("Media", "media"), ("Call to action", "action"), ("Monitoring and evaluation", "monitoring")):
        doc.add_heading(heading, level=1)
        doc.add_paragraph(ctx[key] or "Not given in the recipe.")
    doc.add_heading("Do no harm", level=1)
    harm = ctx["do_no_harm"]
    if harm["content_warnings"]:
        doc.add_paragraph(f"Content warnings of the accounts used: {', '.join(harm['content_warnings'])}.", style="List Bullet")
    for rule in harm["rules"]:
        doc.add_paragraph(rule, style="List Bullet")
    doc.add_heading("Sources", level=1)
    for c in ctx["citations"]:
        doc.add_paragraph(f"[{c['n']}] {citation(c)}")
    prov = ctx["provenance"]
    foot = doc.add_paragraph(f"Made with counterbrief {prov['tool_version']} on {prov['date']} from recipe {prov['recipe']} "
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
