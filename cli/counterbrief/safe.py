"""Text from the archive made safe for the one who reads it: the only place control characters are handled.

Story files, recipes, the vocabulary and templates are written by people and tools we do not
control. What they hold is printed to terminals, exported to spreadsheets and written into
documents, so every output passes through one of these functions at its boundary:

- ``terminal_text``: what the CLI prints (tables, ``show``, ``stats``, ``themes``, ``check`` lines,
  errors). Every control character is made *visible* (``\\x1b``, ``\\u202e``), so a curator sees
  that something is there and a terminal never acts on it: no screen clearing, no hidden text,
  no OSC 8 links or window titles, no line overwritten by a carriage return. Colour that the tool
  itself adds (``highlight``) is added after, and is the only escape sequence ever printed.
- ``clean_control``: documents (the brief in every format, CSV cells). Control characters are
  *dropped*: a brief is handed on and read, and nothing invisible must travel with it.
- ``json_text``: JSON output. Nothing is lost: what ``json.dumps`` leaves raw (DEL, C1, bidi
  controls, line separators, lone surrogates) is written as a JSON escape (``\\u202e``).
- ``csv_cell``: a spreadsheet cell. Cleaned as a document, and a cell that a spreadsheet would
  take as a formula (it starts with = + - @, a tab or a line break) gets a leading ``'``, as the
  OWASP guidance on CSV injection says.

What counts as a control character (``UNSAFE``): C0 (U+0000-U+001F) except tab and newline;
DEL; C1 (U+0080-U+009F); the bidirectional embeddings, overrides and isolates (U+202A-U+202E,
U+2066-U+2069), which can make a line read as something else; lone surrogates and U+FFFE/U+FFFF,
which are not valid in XML (DOCX). A carriage return is a line break: CRLF and lone CR become a
newline first. The bidi *marks* (U+200E, U+200F, U+061C) are kept: they cannot reorder strong
text, and Arabic typesetting uses them.
"""
from __future__ import annotations

import re
from typing import Any

UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufffe\uffff]")
BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")
# Left raw by json.dumps(ensure_ascii=False): every UNSAFE character above U+001F, and the line
# and paragraph separators, which end a line in JavaScript and in some viewers.
_JSON_RAW = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufffe\uffff]")
_NEWLINES = re.compile("\r\n?")
# Cells that Excel, LibreOffice and Google Sheets may read as a formula (OWASP: CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
HIGHLIGHT_ON, HIGHLIGHT_OFF = "\x1b[1;33m", "\x1b[0m"


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean_control(text: str) -> str:
    """Text for a document: line breaks normalised, every other control character dropped."""
    return UNSAFE.sub("", _NEWLINES.sub("\n", text))


def terminal_text(text: str) -> str:
    """Text for a terminal: line breaks normalised, every other control character shown as an escape."""
    return UNSAFE.sub(_escape, _NEWLINES.sub("\n", text))


def highlight(text: str) -> str:
    """Colour the search hits, marked ``[[word]]``, in text already made safe by ``terminal_text``.

    These two sequences (bold yellow, reset) are the only ones the tool prints: archive text that
    holds ``[[`` can at worst colour itself yellow, and the colour is reset at the end.
    """
    if "[[" not in text:
        return text
    return text.replace("[[", HIGHLIGHT_ON).replace("]]", HIGHLIGHT_OFF) + HIGHLIGHT_OFF


def json_text(dumped: str) -> str:
    """JSON (as ``json.dumps`` wrote it) with every control character left raw written as an escape (``\\u202e``).

    These characters can only stand inside JSON strings, where the escape means the same
    character: a JSON reader gets exactly the data; a terminal or an editor gets nothing to obey.
    """
    return _JSON_RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", dumped)


def csv_cell(value: Any) -> Any:
    """A CSV cell: cleaned as a document, and quoted against formula injection with a leading '."""
    if not isinstance(value, str):
        return value
    raw = value
    value = clean_control(value)
    if raw.startswith(FORMULA_START) or value.lstrip(" \t\n").startswith(FORMULA_START):
        return "'" + value
    return value


_MARKDOWN_ACTIVE = re.compile(r"\\|<|!\[|\]\(")


def markdown_text(value: Any) -> Any:
    """Archive text as it goes into a Markdown brief: shown as written by any Markdown viewer, never
    obeyed. A raw HTML tag (``<img src=http://...>``, ``<script>``), an image (``![x](http://...)``)
    or an inline link (``[x](javascript:...)``) would be fetched or made live by GitHub, pandoc or an
    editor's preview: ``<`` is written ``&lt;`` (Python-Markdown has no escape for it), ``![`` and
    ``](`` are backslash-escaped, and so are backslashes, so that an escape in the text cannot undo
    one. What a reader of the raw file sees barely changes."""
    if not isinstance(value, str):
        return value
    return _MARKDOWN_ACTIVE.sub(lambda m: {"\\": "\\\\", "<": "&lt;", "![": "!\\[", "](": "]\\("}[m.group()], value)


def clean_context(value: Any) -> Any:
    """``clean_control`` on every string (keys too) of JSON-like data: the brief's context."""
    if isinstance(value, str):
        return clean_control(value)
    if isinstance(value, dict):
        return {clean_context(k): clean_context(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_context(v) for v in value]
    return value


def control_characters(text: str) -> list[tuple[int, str]]:
    """(line within ``text`` counted from 0, character) of every control character, for ``check``.

    A carriage return is a line ending here, not a finding."""
    found = []
    for match in UNSAFE.finditer(text):
        ch = match.group()
        if ch == "\r":
            continue
        found.append((text.count("\n", 0, match.start()), ch))
    return found


NAMES = {"\x00": "NUL", "\x07": "BEL", "\x08": "BS", "\x0b": "VT", "\x0c": "FF", "\x1b": "ESC", "\x7f": "DEL",
         "\x85": "NEL", "\x9b": "CSI", "\x9d": "OSC", "\u202a": "LRE", "\u202b": "RLE", "\u202c": "PDF",
         "\u202d": "LRO", "\u202e": "RLO", "\u2066": "LRI", "\u2067": "RLI", "\u2068": "FSI", "\u2069": "PDI"}


def describe(ch: str) -> str:
    """U+001B (ESC): how ``check`` names a character."""
    name = NAMES.get(ch)
    return f"U+{ord(ch):04X}" + (f" ({name})" if name else "")
