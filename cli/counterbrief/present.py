"""How records look in a terminal. Plain strings in, plain strings out: the CLI prints them."""
from __future__ import annotations

import textwrap
from typing import Any

from .safe import csv_cell
from .text import citation

WIDTH = 88


def wrap(text: str, indent: str = "") -> str:
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    return "\n\n".join(textwrap.fill(" ".join(p.split()), WIDTH, initial_indent=indent, subsequent_indent=indent)
                       for p in paragraphs)


def show(record: dict[str, Any]) -> str:
    out = []
    if record["content_warnings"]:
        out.append(f"CONTENT WARNING: {', '.join(record['content_warnings'])}")
        out.append("")
    out.append(record["title"])
    out.append("=" * min(len(record["title"]), WIDTH))
    sp = record["speaker"]
    fields = [("id", record["id"]), ("speaker", sp.get("alias")), ("role", sp.get("role")), ("origin", sp.get("origin")),
              ("joined", sp.get("joined")), ("left", sp.get("left")), ("now", sp.get("now")),
              ("involvement", sp.get("involvement")), ("speaking from", sp.get("speaking_from")),
              ("regret", sp.get("expresses_regret")), ("corroboration", "; ".join(record.get("corroboration") or [])),
              ("group", record["group"]), ("language", record["language"]), ("themes", ", ".join(record["themes"])),
              ("status", f"{record['status']}, {record['sensitivity']}" + (", SYNTHETIC" if record["synthetic"] else ""))]
    width = max(len(k) for k, _ in fields)
    out += [f"{k.ljust(width)}  {v}" for k, v in fields if v]
    out += ["", wrap(record["summary"]), "", "Quotes:"]
    for q in record["quotes"]:
        mark = " [graphic]" if q["graphic"] else ""
        if q.get("context"):
            out.append(wrap(f"[{q['context']}]", "  "))
        out.append(wrap(f"\u201c{q['text']}\u201d \u2014 {q['speaker']}{mark}", "  "))
    out += ["", "Source: " + citation(record["source"])]
    if record.get("notes"):
        out += ["", "Curator notes: " + record["notes"]]
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


def themes(rows: list[dict[str, Any]]) -> str:
    out = []
    for t in rows:
        out.append(f"{t['id']}  ({t['stories']} stories, {t['usable']} usable)")
        out.append(f"  {t['label']}")
        if t["definition"]:
            out.append(wrap(t["definition"], "    "))
        if t["synonyms"]:
            out.append(wrap("synonyms: " + ", ".join(t["synonyms"]), "    "))
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


def _highlight(snippet: str, color: bool) -> str:
    if color:
        return snippet.replace("[[", "\x1b[1;33m").replace("]]", "\x1b[0m")
    return snippet


def search_table(result, color: bool = False) -> str:
    out = []
    first = (result.page - 1) * (result.limit or 0)
    for n, hit in enumerate(result.hits, first + 1):
        labels = [hit["status"], hit["sensitivity"]] + (["SYNTHETIC"] if hit.get("synthetic") else [])
        out.append(f"{n}. {hit['title']}  [{hit['id']}]")
        who = hit["speaker"] + (f", {hit['role']}" if hit.get("role") else "")
        out.append(f"   {who} | {', '.join(hit['themes'])} | {' '.join(labels)}")
        if hit.get("content_warnings"):
            out.append(f"   content warning: {', '.join(hit['content_warnings'])}")
        if hit.get("snippet"):
            out.append(wrap(_highlight(hit["snippet"], color), "   "))
        out.append("")
    shown = f"{first + 1}-{first + len(result.hits)} of " if result.hits else ""
    out.append(f"{shown}{result.total} account{'s' if result.total != 1 else ''} match {result.query or '*'!r}")
    if result.suggestion:
        out.append(f"did you mean: {result.suggestion}")
    for name, counts in (result.facets or {}).items():
        if counts:
            out.append(f"{name}: " + ", ".join(f"{k} ({v})" for k, v in counts.items()))
    return "\n".join(out)
