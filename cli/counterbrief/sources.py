"""Source snapshots from what curators have: a saved web page, a PDF report, plain text, or standard input.

The text extracted here is what the snapshot holds and what every quote is checked against,
verbatim; where it came from (the file, its sha256, the extractor and its version, when) goes
beside it in ``sources/ID.meta.yml``, never into the snapshot, so that no provenance line can
ever pass as something a speaker said. Extractors are imported inside the functions that use them.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .errors import UsageProblem
from .load import MAX_SNAPSHOT_BYTES

HTML_SUFFIXES = (".html", ".htm", ".xhtml", ".shtml")
# Typographic ligatures some PDF producers emit: a curator copying "fight" must find "fight".
_LIGATURES = str.maketrans({"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl",
                            "\ufb05": "st", "\ufb06": "st", "\u00ad": ""})


@dataclass
class Extracted:
    """A source as the archive keeps it: the snapshot text, metadata found in it, and its provenance."""

    text: str
    suffix: str = ".txt"                                     # of the snapshot file
    meta: dict[str, str] = field(default_factory=dict)       # title, site, authors, date, url (as found)
    provenance: dict[str, Any] = field(default_factory=dict)

    def defaults(self) -> dict[str, str]:
        """What ``add`` may fill in from the metadata: option name -> value."""
        m = self.meta
        out = {"source_title": m.get("title", ""), "outlet": m.get("site", ""), "author": m.get("authors", ""),
               "published": m.get("date", ""), "url": m.get("url", "")}
        return {k: v for k, v in out.items() if v}


def kind_of(name: str, data: bytes) -> str:
    """html, pdf or text: by the file's suffix, else by its first bytes."""
    suffix = Path(name).suffix.lower()
    if suffix in HTML_SUFFIXES:
        return "html"
    if suffix == ".pdf":
        return "pdf"
    head = data[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if data.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith((b"<!doctype html", b"<html")) or (b"<html" in head and b"<head" in head):
        return "html"
    return "text"


def read_source(path: Optional[Path], stdin: Optional[bytes] = None) -> Extracted:
    """Extract a source given as a file (or as standard input's bytes when path is None)."""
    name = "-" if path is None else str(path)
    shown = "standard input" if path is None else name
    if path is None:
        data = stdin or b""
    else:
        try:
            if path.stat().st_size > MAX_SNAPSHOT_BYTES:
                raise UsageProblem(f"{shown} is over the {MAX_SNAPSHOT_BYTES / 1e6:g} MB limit of a source",
                                   fix="keep the article's text only")
            data = path.read_bytes()
        except OSError as e:
            raise UsageProblem(f"{shown}: {e.strerror or e}", fix="give a readable file") from None
    if len(data) > MAX_SNAPSHOT_BYTES:
        raise UsageProblem(f"{shown} is over the {MAX_SNAPSHOT_BYTES / 1e6:g} MB limit of a source",
                           fix="keep the article's text only")
    kind = kind_of(name, data)
    if kind == "html":
        extracted = _from_html(data, shown)
    elif kind == "pdf":
        extracted = _from_pdf(data, shown)
    else:
        extracted = _from_text(data, shown, path)
    if not extracted.text.strip():
        raise UsageProblem(f"no text found in {shown}",
                           fix="save the page as 'Web page, complete' or copy the article's text into a .txt file")
    extracted.provenance = {
        "file": "standard input" if path is None else Path(name).name,
        "sha256": hashlib.sha256(data).hexdigest(),
        **extracted.provenance,
        "extracted": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if extracted.meta:
        extracted.provenance["found"] = dict(extracted.meta)
    return extracted


def _from_text(data: bytes, shown: str, path: Optional[Path]) -> Extracted:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise UsageProblem(f"{shown}:{line}: not UTF-8 text (byte 0x{data[e.start]:02x})",
                           fix="re-save the file as UTF-8") from None
    suffix = (path.suffix if path is not None and path.suffix.lower() in (".txt", ".md", ".text") else "") or ".txt"
    return Extracted(text, suffix, {}, {"extractor": "none (plain text, copied as it is)"})


def _from_html(data: bytes, shown: str) -> Extracted:
    """Article text and metadata (OpenGraph, JSON-LD, meta tags, canonical link) with trafilatura."""
    import trafilatura

    try:
        doc = trafilatura.bare_extraction(data, with_metadata=True, include_comments=False, include_tables=True)
    except Exception as e:  # noqa: BLE001 - a page it cannot parse is one line, never a traceback
        raise UsageProblem(f"cannot read the page {shown}: {e}", fix="save it again from the browser, or give a .txt") from None
    if doc is None:
        return Extracted("", ".txt", {}, {})
    d = doc.as_dict() if hasattr(doc, "as_dict") else dict(doc)
    paragraphs = [" ".join(p.split()) for p in (d.get("text") or "").split("\n")]
    text = "\n\n".join(p for p in paragraphs if p) + "\n"
    authors = "; ".join(a.strip() for a in str(d.get("author") or "").split(";") if a.strip())
    meta = {"title": _clean(d.get("title")), "site": _clean(d.get("sitename")), "authors": authors,
            "date": _date(d.get("date")), "url": _url(d.get("url"))}
    meta = {k: v for k, v in meta.items() if v}
    return Extracted(text, ".txt", meta, {"extractor": f"trafilatura {trafilatura.__version__}"})


def _from_pdf(data: bytes, shown: str) -> Extracted:
    """The text of every page with pypdf; title and author from the document's information."""
    import io

    import pypdf

    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise UsageProblem(f"{shown} is an encrypted PDF", fix="save an unprotected copy, or copy its text into a .txt file")
        pages = [page.extract_text() or "" for page in reader.pages]
        info = reader.metadata or {}
        title, author = _clean(info.get("/Title")), _clean(info.get("/Author"))
    except UsageProblem:
        raise
    except Exception as e:  # noqa: BLE001 - pypdf raises many kinds on a damaged file
        raise UsageProblem(f"cannot read the PDF {shown}: {e}", fix="check the file, or copy its text into a .txt file") from None
    text = "\n\n".join(p.translate(_LIGATURES).strip() for p in pages if p.strip())
    meta = {k: v for k, v in (("title", title), ("authors", author)) if v}
    return Extracted(text + "\n" if text else "", ".txt", meta,
                     {"extractor": f"pypdf {pypdf.__version__}", "pages": len(pages)})


def _clean(value) -> str:
    """Metadata as one line, without the control characters a page or a PDF may hide in it (a
    title with an escape sequence would fail check, and print as one in the dialogue)."""
    from .safe import clean_control

    return " ".join(clean_control(str(value)).split()) if value else ""


def _date(value) -> str:
    m = re.match(r"^(\d{4})(-\d{2}(-\d{2})?)?", str(value or ""))
    return m.group(0) if m else ""


def _url(value) -> str:
    value = _clean(value)
    return value if re.match(r"^https?://", value) else ""


def provenance_yaml(snapshot_rel: str, provenance: dict[str, Any]) -> str:
    """The sidecar beside a snapshot: where its text came from."""
    import yaml

    head = (f"# Where {snapshot_rel} came from, written by counterbrief add. Quotes are checked against\n"
            f"# {snapshot_rel} only; this file is its record.\n")
    return head + yaml.safe_dump(provenance, sort_keys=False, allow_unicode=True, width=100)


def meta_path(snapshot: Path) -> Path:
    return snapshot.with_name(snapshot.stem + ".meta.yml")
