"""How records look in a terminal. Plain strings in, plain strings out: the CLI prints them."""
from __future__ import annotations

import textwrap
from typing import Any

from .safe import csv_cell
from .text import citation

WIDTH = 88


def count(n: int, one: str, many: str = "") -> str:
    """'1 story', '2 stories': a number with its noun in the right form."""
    return f"{n} {one if n == 1 else (many or one + 's')}"


def lines(text: str, width: int = WIDTH, indent: str = "", subsequent: str | None = None) -> list[str]:
    """One paragraph as lines of at most ``width`` characters, broken only between words (a single
    word longer than the width stands alone on its line, never cut)."""
    return textwrap.wrap(" ".join(text.split()), max(width, len(indent) + 10), initial_indent=indent,
                         subsequent_indent=indent if subsequent is None else subsequent,
                         break_long_words=False, break_on_hyphens=False) or [indent.rstrip()]


def wrap(text: str, indent: str = "", width: int = WIDTH) -> str:
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    return "\n\n".join("\n".join(lines(p, width, indent)) for p in paragraphs)


def show(record: dict[str, Any], width: int = WIDTH) -> str:
    out = []
    if record["content_warnings"]:
        out.append(f"CONTENT WARNING: {', '.join(record['content_warnings'])}")
        out.append("")
    out.append(record["title"])
    out.append("=" * min(len(record["title"]), width))
    sp = record["speaker"]
    fields = [("id", record["id"]), ("speaker", sp.get("alias")), ("role", sp.get("role")), ("origin", sp.get("origin")),
              ("joined", sp.get("joined")), ("left", sp.get("left")), ("now", sp.get("now")),
              ("involvement", sp.get("involvement")), ("speaking from", sp.get("speaking_from")),
              ("regret", sp.get("expresses_regret")), ("corroboration", "; ".join(record.get("corroboration") or [])),
              ("group", record["group"]), ("language", record["language"]), ("themes", ", ".join(record["themes"])),
              ("status", f"{record['status']}, {record['sensitivity']}" + (", SYNTHETIC" if record["synthetic"] else ""))]
    label = max(len(k) for k, _ in fields)
    for k, v in fields:
        if v:   # the value wraps under itself, the labels stay in their column
            rows = lines(str(v), width - label - 2)
            out += [f"{k.ljust(label)}  {rows[0]}"] + [" " * (label + 2) + r for r in rows[1:]]
    out += ["", wrap(record["summary"], width=width), "", "Quotes:"]
    for q in record["quotes"]:
        mark = " [graphic]" if q["graphic"] else ""
        if q.get("context"):
            out.append(wrap(f"[{q['context']}]", "  ", width))
        out.append(wrap(f"\u201c{q['text']}\u201d \u2014 {q['speaker']}{mark}", "  ", width))
    out += [""] + lines("Source: " + citation(record["source"]), width, "", "  ")
    for r in record.get("review") or []:
        why = f": {r['reason']}" if r.get("reason") else ""
        out += lines(f"Review: {r.get('decision')} by {r.get('by')} ({str(r.get('at', ''))[:10]}){why}", width, "", "  ")
    if record.get("notes"):
        out += ["", "Curator notes: " + record["notes"]]
    return "\n".join(out)


def review_queue(data: dict[str, Any], width: int = WIDTH) -> str:
    """The review queue: one block per waiting account, what check says, then what is hidden."""
    out = []
    for item in data["waiting"]:
        state = ", ".join(str(x) for x in (item["status"] or "unreadable", item["sensitivity"]) if x)
        out += lines(f"{item['id']} ({state})" + (f" {item['title']}" if item["title"] else ""), width, "", "    ")
        who = ", ".join(item["approved_by"]) or "none yet"
        out += lines(f"approvals: {who} ({len(item['approved_by'])} of {item['required']} needed)", width, "  ", "    ")
        for line in item["errors"]:
            out += lines(f"error: {line}", width, "  ", "    ")
        for line in item["warnings"]:
            out += lines(line, width, "  ", "    ")
        if not item["errors"]:
            out += lines(f"check: no errors; approve with 'counterbrief approve {item['id']} --by NAME'", width, "  ", "    ")
        out.append("")
    n = len(data["waiting"])
    out += lines(f"{count(n, 'account')} waiting for review" + (": none" if not n else "")
                 + f"; {data['rejected']} rejected, {data['withdrawn']} withdrawn (kept, in no output)", width)
    return "\n".join(out)


def counts_table(title: str, counts: dict[str, int]) -> list[str]:
    if not counts:
        return [f"{title}: none"]
    width = max(len(k) for k in counts)
    return [f"{title}:"] + [f"  {k.ljust(width)}  {v:>5}" for k, v in counts.items()]


def stats(data: dict[str, Any]) -> str:
    out = [f"archive: {data['archive']}",
           f"{data['stories']} stories ({data['usable']} approved and public), {data['quotes']} quotes"
           + (f"; {data['bad_files']} files with errors left out (run counterbrief check)" if data["bad_files"] else "")]
    for name, counts in data["by"].items():
        out.append("")
        out += counts_table(f"by {name}", counts)
    out.append("")
    if data["gaps"]:
        out.append("gaps (themes with no approved public account): " + ", ".join(data["gaps"]))
    else:
        out.append("gaps: none — every theme has an approved public account")
    return "\n".join(out)


def themes(rows: list[dict[str, Any]], width: int = WIDTH) -> str:
    out = []
    for t in rows:
        out.append(f"{t['id']}  ({t['stories']} stories, {t['usable']} usable)")
        out.append(f"  {t['label']}")
        if t["definition"]:
            out.append(wrap(t["definition"], "    ", width))
        if t["synonyms"]:
            out.append(wrap("synonyms: " + ", ".join(t["synonyms"]), "    ", width))
    return "\n".join(out)


# ----------------------------------------------------------------------------- search

EXPORT_COLUMNS = ("id", "title", "speaker", "role", "origin", "group", "language", "themes", "year", "status",
                  "sensitivity", "synthetic", "content_warnings", "outlet", "author", "published", "via", "url", "score")


def search_json(result) -> dict[str, Any]:
    return {"query": result.query, "total": result.total, "page": result.page, "limit": result.limit,
            "hits": result.hits, "facets": result.facets, "suggestion": result.suggestion}


def export_row(hit: dict[str, Any]) -> dict[str, Any]:
    return {k: hit.get(k) for k in EXPORT_COLUMNS}


def search_csv(hits: list[dict[str, Any]]) -> str:
    import csv
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for hit in hits:
        row = export_row(hit)
        for key in ("themes", "content_warnings"):
            row[key] = "; ".join(row[key] or [])
        writer.writerow({k: csv_cell(v) for k, v in row.items()})   # no formula, no control character
    return buf.getvalue()


HIGHLIGHT, RESET = "\x1b[1;33m", "\x1b[0m"


def _marked(snippet: str) -> tuple[str, list[bool]]:
    """A snippet's text without its [[...]] marks, and for each character whether it was marked."""
    plain, marked, inside, i = [], [], False, 0
    while i < len(snippet):
        if snippet.startswith("[[", i) and not inside:
            inside, i = True, i + 2
        elif snippet.startswith("]]", i) and inside:
            inside, i = False, i + 2
        else:
            plain.append(snippet[i])
            marked.append(inside)
            i += 1
    return "".join(plain), marked


def snippet_lines(snippet: str, width: int, indent: str, color: bool) -> list[str]:
    """A snippet wrapped to the width, then coloured: the escape codes never count as width.

    Without colour the [[marks]] stay, as plain text that any reader sees.
    """
    if not color:
        return lines(snippet, width, indent)
    plain, marked = _marked(" ".join(snippet.split()))
    out, at = [], 0
    for line in lines(plain, width, indent):
        body = line[len(indent):]
        at = plain.index(body, at) if body else at
        chunks, on = [indent], False
        for k, ch in enumerate(body):
            if marked[at + k] != on:
                on = marked[at + k]
                chunks.append(HIGHLIGHT if on else RESET)
            chunks.append(ch)
        if on:
            chunks.append(RESET)
        out.append("".join(chunks))
        at += len(body)
    return out


def search_table(result, color: bool = False, width: int = WIDTH) -> str:
    out = []
    first = (result.page - 1) * (result.limit or 0)
    for n, hit in enumerate(result.hits, first + 1):
        labels = [hit["status"], hit["sensitivity"]] + (["SYNTHETIC"] if hit.get("synthetic") else [])
        out += lines(f"{n}. {hit['title']}  [{hit['id']}]", width, "", "   ")
        who = hit["speaker"] + (f", {hit['role']}" if hit.get("role") else "")
        out += lines(f"{who} | {', '.join(hit['themes'])} | {' '.join(labels)}", width, "   ")
        if hit.get("content_warnings"):
            out += lines(f"content warning: {', '.join(hit['content_warnings'])}", width, "   ")
        if hit.get("snippet"):
            out += snippet_lines(hit["snippet"], width, "   ", color)
        out.append("")
    shown = f"{first + 1}-{first + len(result.hits)} of " if result.hits else ""
    verb = "matches" if result.total == 1 else "match"
    out += lines(f"{shown}{count(result.total, 'account')} {verb} {result.query or '*'!r}", width)
    if result.suggestion:
        out += lines(f"did you mean: {result.suggestion}", width, "", "  ")
    for name, counts in (result.facets or {}).items():
        if counts:
            out += lines(f"{name}: " + ", ".join(f"{k} ({v})" for k, v in counts.items()), width, "", "  ")
    return "\n".join(out)
