"""Writers: one per output format, found in WRITERS. Each turns the brief's context into bytes;
``write_atomic`` puts them on disk whole or not at all.
"""
from __future__ import annotations

import io
import json
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .errors import CounterbriefError, UsageProblem
from .render import render

SUFFIXES = {".md": "md", ".markdown": "md", ".html": "html", ".htm": "html", ".pdf": "pdf", ".docx": "docx",
            ".json": "json", ".txt": "txt"}
BINARY = {"pdf", "docx"}


@dataclass
class Templates:
    name: str
    archive_dir: Path
    builtin_dir: Path
    fonts_dir: Path


def format_for(output: Path | None, fmt: str | None) -> str:
    if fmt:
        return fmt
    if output is None:
        return "md"
    found = SUFFIXES.get(output.suffix.lower())
    if found is None:
        raise UsageProblem(f"cannot tell the format of {output.name}",
                           fix=f"name it with one of {', '.join(sorted(SUFFIXES))} or give --format")
    return found


def _text(fmt: str):
    def writer(context: dict[str, Any], t: Templates) -> bytes:
        text = render(context, t.name, fmt, t.archive_dir, t.builtin_dir)
        if fmt in ("md", "txt"):
            # Templates stay readable with loose whitespace; the reader gets at most one blank line.
            text = re.sub(r"\n{3,}", "\n\n", text)
        return text.encode("utf-8")
    return writer


def write_json(context: dict[str, Any], t: Templates) -> bytes:
    return (json.dumps(context, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _local_only(url: str):
    """WeasyPrint's fetcher, limited to our own files: no remote image or stylesheet is ever fetched."""
    from weasyprint.urls import default_url_fetcher

    if url.startswith(("file:", "data:")):
        return default_url_fetcher(url)
    raise ValueError(f"remote resource refused: {url}")


def write_pdf(context: dict[str, Any], t: Templates) -> bytes:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from weasyprint import CSS, HTML
        from weasyprint.text.fonts import FontConfiguration

    html = render(context, t.name, "pdf", t.archive_dir, t.builtin_dir)
    fonts = FontConfiguration()
    regular = (t.fonts_dir / "DejaVuSans.ttf").as_uri()
    bold = (t.fonts_dir / "DejaVuSans-Bold.ttf").as_uri()
    css = CSS(string=f"""
        @font-face {{ font-family: "counterbrief sans"; src: url("{regular}"); font-weight: normal; }}
        @font-face {{ font-family: "counterbrief sans"; src: url("{bold}"); font-weight: bold; }}
        body, blockquote, h1, h2, h3 {{ font-family: "counterbrief sans"; }}
    """, font_config=fonts)
    document = HTML(string=html, base_url=str(t.fonts_dir), url_fetcher=_local_only)
    # Tagged PDF (PDF/UA-1): headings, lists and reading order survive for screen readers.
    return document.write_pdf(stylesheets=[css], font_config=fonts, pdf_variant="pdf/ua-1") or b""


def write_docx(context: dict[str, Any], t: Templates) -> bytes:
    from .docx_writer import brief_docx

    return _reproducible_zip(brief_docx(context))


def _reproducible_zip(data: bytes) -> bytes:
    """Same content, same bytes: fixed timestamps and order in the DOCX's zip."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for name in src.namelist():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            dst.writestr(info, src.read(name))
    return out.getvalue()


def evaluation_csv(context: dict[str, Any]) -> bytes:
    """The brief's evaluation items as CSV, to print or load into a survey tool: asked before and
    after the session, each on its scale. A cell that a spreadsheet would run as a formula is quoted."""
    import csv

    def cell(value: str) -> str:
        return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value

    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["n", "statement", "scale", "when", "source"])
    for n, item in enumerate(context["evaluation"], 1):
        w.writerow([n, cell(item["statement"]), cell(item["scale"]), "before and after the session",
                    "suggested by counterbrief" if item.get("suggested") else "recipe"])
    return out.getvalue().encode("utf-8")


WRITERS: dict[str, Callable[[dict[str, Any], Templates], bytes]] = {
    "md": _text("md"), "html": _text("html"), "txt": _text("txt"), "json": write_json,
    "pdf": write_pdf, "docx": write_docx,
}


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside the target, then rename: never a half-written brief."""
    folder = path.resolve().parent
    if not folder.is_dir():
        raise CounterbriefError("folder does not exist", folder, fix="create it or choose another -o path")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
