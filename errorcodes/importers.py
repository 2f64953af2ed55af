"""Read status codes from the files curators actually have: JSON extractions of the vendor's
Status Codes Reference Guide, CSV sheets, the guide as PDF, or its text export.

Every reader turns a file into `CodeRecord`s (and `Rejection`s for what it cannot use), lazily,
so the admin, the API and `manage.py import_status_codes` share one code path:

    records, rejections = parse_file(upload, family="netbackup")
    result = import_file(path)          # parse + services.upsert_status_codes

Locations in rejections follow the input: `entry 12` (position in the JSON array, from 0, as
`jq '.error_codes[12]'` addresses it), `line 40` (CSV or text), `page 7, line 3` (PDF).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from os import PathLike
from pathlib import Path
from typing import IO, Any

from django.utils.translation import gettext as _

from .choices import Category, Family, Severity
from .services import CodeRecord, ImportResult, InvalidRecord, Rejection, upsert_status_codes, validate_record

FORMATS = ("json", "csv", "text", "pdf")
_EXTENSIONS = {".json": "json", ".csv": "csv", ".tsv": "csv", ".txt": "text", ".text": "text", ".pdf": "pdf"}

Source = str | PathLike | IO[bytes] | IO[str] | bytes


class ImportFormatError(ValueError):
    """The input cannot be read or parsed at all (as opposed to single bad entries)."""


# --------------------------------------------------------------------------- public API


def parse_file(
    source: Source,
    *,
    format: str | None = None,
    family: str = Family.NETBACKUP,
    on_page: Callable[[int, int], None] | None = None,
) -> tuple[list[CodeRecord], list[Rejection]]:
    """Read a whole file into validated records plus the rejections, in input order."""
    records: list[CodeRecord] = []
    rejections: list[Rejection] = []
    for item in iter_parsed(source, format=format, family=family, on_page=on_page):
        (rejections if isinstance(item, Rejection) else records).append(item)
    return records, rejections


def iter_parsed(
    source: Source,
    *,
    format: str | None = None,
    family: str = Family.NETBACKUP,
    on_page: Callable[[int, int], None] | None = None,
) -> Iterator[CodeRecord | Rejection]:
    """Yield validated `CodeRecord`s and `Rejection`s one by one.

    Raises ImportFormatError before yielding anything when the file cannot be read, its
    format cannot be told, or its structure is wrong (invalid JSON, CSV without a code column).
    `on_page(done, total)` is called after each PDF page is read: text extraction is the slow
    part of a PDF import (tens of milliseconds a page), and no record comes out before it ends.
    """
    default_family = Family.normalise(family)
    if default_family is None:
        raise ImportFormatError(
            _("unknown family %(family)r; choose one of: %(choices)s")
            % {"family": family, "choices": ", ".join(Family.values)}
        )
    name, data = _read_source(source)
    fmt = (format or "").lower() or guess_format(name, data)
    if fmt not in FORMATS:
        raise ImportFormatError(
            _("unknown format %(format)r; choose one of: %(choices)s") % {"format": fmt, "choices": ", ".join(FORMATS)}
        )
    readers: dict[str, Callable[..., Iterator[CodeRecord | Rejection]]] = {
        "json": _read_json,
        "csv": _read_csv,
        "text": _read_text,
        "pdf": _read_pdf,
    }
    # The readers are generators; prime them so structural errors surface before the first
    # record (callers rely on "ImportFormatError or a stream", never half of each).
    items = readers[fmt](data, name=name, family=default_family, on_page=on_page)
    first = next(items, None)
    if first is None:
        return
    yield from _validated(_chain_first(first, items))


def import_file(
    source: Source,
    *,
    format: str | None = None,
    family: str = Family.NETBACKUP,
    dry_run: bool = False,
    user=None,
    change_reason: str = "import",
    progress: Callable[[int], None] | None = None,
    on_page: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Parse a file and upsert its codes; rejections of the parser and the service are merged.

    `progress(n)` reports codes merged (see upsert_status_codes), `on_page` PDF pages read.
    """
    records, rejections = parse_file(source, format=format, family=family, on_page=on_page)
    return upsert_status_codes(
        records, dry_run=dry_run, user=user, change_reason=change_reason, progress=progress, rejected=rejections
    )


def guess_format(name: str, data: bytes) -> str:
    """Tell the format from the file name, else from the first bytes."""
    suffix = Path(name or "").suffix.lower()
    if suffix in _EXTENSIONS:
        return _EXTENSIONS[suffix]
    head = data[:200_000].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"%PDF"):
        return "pdf"
    if head[:1] in (b"{", b"["):
        return "json"
    first_line = head.split(b"\n", 1)[0].decode("utf-8", "replace")
    if _HEADING_RE.search(head.decode("utf-8", "replace")):
        return "text"
    if re.search(r"[,;\t]", first_line) and re.search(r"code|코드", first_line, re.IGNORECASE):
        return "csv"
    raise ImportFormatError(
        _("cannot tell the format of %(name)s; pass --format (json, csv, text or pdf)") % {"name": name or _("input")}
    )


# --------------------------------------------------------------------------- plumbing


def _read_source(source: Source) -> tuple[str, bytes]:
    if isinstance(source, bytes):
        return "", source
    if isinstance(source, str | PathLike):
        path = Path(source)
        try:
            return str(path), path.read_bytes()
        except FileNotFoundError:
            raise ImportFormatError(_("file not found: %(path)s") % {"path": path})
        except IsADirectoryError:
            raise ImportFormatError(_("%(path)s is a directory, not a file") % {"path": path})
        except OSError as exc:
            raise ImportFormatError(_("cannot read %(path)s: %(error)s") % {"path": path, "error": exc.strerror})
    name = str(getattr(source, "name", "") or "")
    if hasattr(source, "seek"):
        # An upload may have been peeked at already; a pipe cannot rewind and is read from where it is.
        with contextlib.suppress(OSError, ValueError):
            source.seek(0)
    data = source.read()
    if isinstance(data, str):
        data = data.encode("utf-8")
    return name, data


def _decode(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        # Korean Windows (Excel "CSV" without UTF-8) writes CP949.
        return data.decode("cp949")
    except UnicodeDecodeError:
        raise ImportFormatError(_("%(name)s is neither UTF-8 nor CP949 text") % {"name": name or _("input")})


def _chain_first(first, rest):
    yield first
    yield from rest


def _validated(items: Iterable[CodeRecord | Rejection]) -> Iterator[CodeRecord | Rejection]:
    for item in items:
        if isinstance(item, Rejection):
            yield item
            continue
        try:
            yield validate_record(item)
        except InvalidRecord as exc:
            yield Rejection(item.location, str(exc))


def _clean(text: Any) -> str:
    return " ".join(str(text or "").split())


# --------------------------------------------------------------------------- guide layout

_HEADINGS = {
    "netbackup status code": Family.NETBACKUP.value,
    "media manager status code": Family.MEDIA_MANAGER.value,
    "device configuration status code": Family.DEVICE_CONFIG.value,
    "device management status code": Family.DEVICE_MANAGEMENT.value,
    "robotic status code": Family.ROBOTIC.value,
    "robotic error code": Family.ROBOTIC_ERROR.value,
}
_LINE_RE = re.compile(
    r"^\s*(?:"
    r"(?P<heading>(?i:" + "|".join(heading.replace(" ", r"\s+") for heading in _HEADINGS) + r"))\s*:\s*(?P<code>.*?)"
    # Labels are capitalised in the guide; a wrapped sentence may well start with "message:".
    r"|(?P<label>Message|Explanation|Recommended\s+[Aa]ctions?)\s*:\s*(?P<text>.*?)"
    r"|(?P<chapter>(?:Chapter|CHAPTER|Appendix|APPENDIX)\s+(?:\d+|[A-Z])\b.*?)"
    r"|(?P<number>(?:[Pp]age\s+)?\d{1,5})"
    r")\s*$"
)
_HEADING_RE = re.compile(
    r"^\s*(?:" + "|".join(heading.replace(" ", r"\s+") for heading in _HEADINGS) + r")\s*:",
    re.IGNORECASE | re.MULTILINE,
)
# Bullet glyphs, including what PDF text extraction makes of symbol-font bullets: DEL (\x7f) and
# private-use code points of the Symbol and Wingdings fonts.
_GLYPHS = "■□•●○▪▫◦‣∙·–*\x7f\uf06e\uf0a7\uf0b7\uf0d8"
_BULLET_RE = re.compile(r"^\s*(?:[" + _GLYPHS + r"\-]|\d{1,2}[.)])\s+")
_GLYPH_BULLET_RE = re.compile(r"^\s*[" + _GLYPHS + r"]\s+")
_DIGITS_RE = re.compile(r"\d+")
_TERMINAL_PUNCTUATION = (".", ":", ";", ",")


def _kind(line: str) -> tuple[str, Any]:
    """Classify one line of the guide.

    ('heading', (family, code text)), ('label', (section, inline text)), ('chapter', None),
    ('number', None) for a bare page number, or ('text', None).
    """
    match = _LINE_RE.match(line)
    if match is None:
        return "text", None
    if match.group("heading") is not None:
        return "heading", (_HEADINGS[" ".join(match.group("heading").lower().split())], match.group("code"))
    if match.group("label") is not None:
        word = match.group("label")[0]
        name = "message" if word == "M" else "explanation" if word == "E" else "recommended_action"
        return "label", (name, match.group("text"))
    if match.group("chapter") is not None:
        return "chapter", None
    return "number", None


def _label(line: str) -> tuple[str, str] | None:
    kind, payload = _kind(line)
    return payload if kind == "label" else None


def _is_number(line: str) -> bool:
    return _kind(line)[0] == "number"


def _shape(line: str) -> str:
    """Digits folded so 'Status codes 41' and 'Status codes 42' count as one running line."""
    return _DIGITS_RE.sub("#", " ".join(line.split())).lower()


def _may_be_running_line(line: str) -> bool:
    """Headers and footers are short, unpunctuated titles, never a label or a list item."""
    text = line.strip()
    return (
        0 < len(text) <= 100
        and not text.endswith(_TERMINAL_PUNCTUATION)
        and _kind(text)[0] == "text"
        and not _BULLET_RE.match(text)
        and any(ch.isalpha() for ch in text)
    )


def _running_lines(pages: Iterable[list[str]], *, edge: int | None = 3) -> set[str]:
    """Lines whose shape repeats at the top or bottom of many pages: running headers and footers.

    `edge=None` looks at whole pages (JSON extractions only keep the tail of a page).
    """
    shapes: dict[str, str | None] = {}  # line -> shape, None when it cannot be a running line
    pages_per_shape: Counter[str] = Counter()
    page_count = 0
    for lines in pages:
        page_count += 1
        candidates = [line for line in lines if line.strip() and not _is_number(line)]
        if edge is not None:
            candidates = candidates[:edge] + candidates[-edge:]
        on_page = set()
        for line in candidates:
            if line not in shapes:
                shapes[line] = _shape(line) if _may_be_running_line(line) else None
            if shapes[line] is not None:
                on_page.add(shapes[line])
        pages_per_shape.update(on_page)
    if page_count < 3:
        return set()
    threshold = max(3, math.ceil(0.3 * page_count))
    running = {shape for shape, count in pages_per_shape.items() if count >= threshold}
    return {line for line, shape in shapes.items() if shape in running}


def _join_lines(lines: Iterable[str], *, single_line: bool = False) -> str:
    """Re-flow visual lines into paragraphs; list items start a new line."""
    paragraphs: list[str] = []
    current = ""
    for raw in lines:
        line = " ".join(raw.split())
        if not line:
            if current:
                paragraphs.append(current)
                current = ""
            continue
        starts_item = bool(_BULLET_RE.match(line))
        if _GLYPH_BULLET_RE.match(line):
            line = "- " + _GLYPH_BULLET_RE.sub("", line, count=1)
        if current and starts_item and not single_line:
            paragraphs.append(current)
            current = line
        elif current.endswith("-") and line[:1].islower():
            current += line  # a word broken at its hyphen over a line end
        else:
            current = f"{current} {line}" if current else line
    if current:
        paragraphs.append(current)
    return " ".join(paragraphs) if single_line else "\n".join(paragraphs)


def _complete(short: str, fuller: str) -> str:
    """Complete a cut-short text with the continuation found elsewhere, without repeating it."""
    if not fuller:
        return short
    if not short:
        return fuller
    flat_short, flat_fuller = _clean(short), _clean(fuller)
    if flat_fuller.startswith(flat_short) or flat_short in flat_fuller:
        return fuller
    if flat_short.endswith(flat_fuller):
        return short
    # The continuation may repeat the last words of the cut text (the extractor cut mid-line):
    # find the longest tail of the cut text, eight characters or more, that starts the continuation.
    probe = flat_fuller[:8]
    start = flat_short.find(probe, max(0, len(flat_short) - len(flat_fuller))) if len(probe) == 8 else -1
    while start != -1:
        if flat_fuller.startswith(flat_short[start:]):
            return short.rstrip() + flat_fuller[len(flat_short) - start :]
        start = flat_short.find(probe, start + 1)
    if short.rstrip().endswith("-") and flat_fuller[:1].islower():
        return short.rstrip() + fuller
    return f"{short.rstrip()} {fuller}"


def _sections(lines: list[tuple[str, str]]) -> Iterator[tuple[str, str, Any]]:
    """Turn guide lines into events: ('entry', loc, (family, code)), ('label', loc, (name, text)),
    ('chapter', loc, None), ('text', loc, line).

    A heading counts only when the next line is `Message:`: the guide repeats the current topic
    ("NetBackup status code: 24") as a running page header, and the table of contents and cross
    references name codes too.
    """
    kinds = [_kind(line) for _loc, line in lines]
    count = len(lines)
    for index, (location, line) in enumerate(lines):
        kind, payload = kinds[index]
        if kind == "heading":
            following = next((kinds[i] for i in range(index + 1, min(index + 4, count)) if lines[i][1].strip()), None)
            if following is not None and following[0] == "label" and following[1][0] == "message":
                yield "entry", location, payload
            elif not (payload[1].isdigit() or index + 1 == count):
                yield "text", location, line  # a cross reference that starts a line
            # else: a running header naming the current topic, not a new entry
        elif kind == "label":
            yield "label", location, payload
        elif kind == "chapter":
            yield "chapter", location, None
        elif kind == "text":
            yield "text", location, line


class _Entry:
    __slots__ = ("family", "code", "location", "parts", "current", "source")

    def __init__(self, family: str, code: str, location: str, source: str):
        self.family, self.code, self.location, self.source = family, code, location, source
        self.parts: dict[str, list[str]] = {"message": [], "explanation": [], "recommended_action": []}
        self.current: str | None = None

    def record(self) -> CodeRecord:
        return CodeRecord(
            family=self.family,
            code=self.code,
            message=_join_lines(self.parts["message"], single_line=True),
            explanation=_join_lines(self.parts["explanation"]),
            recommended_action=_join_lines(self.parts["recommended_action"]),
            source=self.source,
            location=self.location,
        )


def _guide_records(lines: list[tuple[str, str]], *, source_for: Callable[[str], str]) -> Iterator[CodeRecord]:
    entry: _Entry | None = None
    for kind, location, payload in _sections(lines):
        if kind == "entry":
            if entry is not None:
                yield entry.record()
            family, code = payload
            entry = _Entry(family, code, location, source_for(location))
        elif entry is None:
            continue  # front matter, contents, chapter introductions
        elif kind == "chapter":
            yield entry.record()
            entry = None
        elif kind == "label":
            name, text = payload
            entry.current = name
            if text:
                entry.parts[name].append(text)
        elif entry.current is not None:
            entry.parts[entry.current].append(payload)
    if entry is not None:
        yield entry.record()


def _strip_page_noise(pages: list[list[tuple[str, str]]]) -> list[tuple[str, str]]:
    """Drop page numbers and running headers/footers; keep every other line with its location."""
    running = _running_lines([text for _loc, text in page] for page in pages)
    kept: list[tuple[str, str]] = []
    for page in pages:
        numbers = [_is_number(text) for _loc, text in page]
        meaningful = [i for i, (_loc, text) in enumerate(page) if text.strip() and not numbers[i]]
        edges = set(meaningful[:3] + meaningful[-3:])
        for index, (location, text) in enumerate(page):
            if numbers[index] or (index in edges and text in running):
                continue
            kept.append((location, text))
    return kept


# --------------------------------------------------------------------------- text export and PDF


def _read_text(data: bytes, *, name: str, family: str, on_page=None) -> Iterator[CodeRecord | Rejection]:
    text = _decode(data, name)
    if not text.strip():
        raise ImportFormatError(_("%(name)s is empty") % {"name": name or _("input")})
    pages: list[list[tuple[str, str]]] = [[]]
    form_feeds = "\f" in text
    line_at = _("line %(number)d")
    # Not splitlines(): it also breaks at form feeds, and line numbers must match an editor's.
    for number, line in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), start=1):
        # pdftotext separates pages with form feeds; without them a line holding only a
        # number is the best page boundary there is.
        for index, chunk in enumerate(line.split("\f")):
            if index:
                pages.append([])
            pages[-1].append((line_at % {"number": number}, chunk))
            if not form_feeds and _is_number(chunk):
                pages.append([])
    lines = _strip_page_noise(pages)
    base = Path(name).name if name else ""
    found = False
    for record in _guide_records(lines, source_for=lambda location: f"{base}, {location}" if base else ""):
        found = True
        yield record
    if not found:
        raise ImportFormatError(
            _("no status code headings (such as 'NetBackup status code: 96' followed by 'Message:') in %(name)s")
            % {"name": name or _("input")}
        )


def _read_pdf(data: bytes, *, name: str, family: str, on_page=None) -> Iterator[CodeRecord | Rejection]:
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        total = len(reader.pages)
        page_texts = []
        for page in reader.pages:
            page_texts.append(page.extract_text() or "")
            if on_page is not None:
                on_page(len(page_texts), total)
    except Exception as exc:  # pypdf raises many types for damaged or encrypted files; all mean "unreadable"
        raise ImportFormatError(
            _("cannot read %(name)s as PDF: %(error)s") % {"name": name or _("input"), "error": exc}
        )
    line_at = _("page %(page)d, line %(line)d")
    pages = [
        [(line_at % {"page": p, "line": n}, line) for n, line in enumerate(text.splitlines(), start=1)]
        for p, text in enumerate(page_texts, start=1)
    ]
    lines = _strip_page_noise(pages)
    base = Path(name).name if name else ""

    def source_for(location: str) -> str:
        page = location.split(",", 1)[0]
        return f"{base}, {page}" if base else page

    found = False
    for record in _guide_records(lines, source_for=source_for):
        found = True
        yield record
    if not found:
        raise ImportFormatError(
            _("no status code headings (such as 'NetBackup status code: 96' followed by 'Message:') in %(name)s")
            % {"name": name or _("input")}
        )


# --------------------------------------------------------------------------- JSON extraction


def _read_json(data: bytes, *, name: str, family: str, on_page=None) -> Iterator[CodeRecord | Rejection]:
    try:
        document = json.loads(_decode(data, name))
    except json.JSONDecodeError as exc:
        raise ImportFormatError(
            _("%(name)s: invalid JSON at line %(line)d column %(column)d: %(error)s")
            % {"name": name or _("input"), "line": exc.lineno, "column": exc.colno, "error": exc.msg}
        )
    if isinstance(document, dict):
        entries = document.get("error_codes")
        if entries is None:
            entries = document.get("status_codes", document.get("codes"))
    else:
        entries = document
    if not isinstance(entries, list):
        raise ImportFormatError(
            _('%(name)s: expected {"error_codes": [...]} or a list of entries') % {"name": name or _("input")}
        )
    if not entries:
        raise ImportFormatError(_("%(name)s holds no entries") % {"name": name or _("input")})

    raw_pages: dict[str, list[str]] = {}
    for index, entry in enumerate(entries):
        if isinstance(entry, dict):
            page = entry.get("page")
            raw_pages.setdefault(f"#{index}" if page in (None, "") else str(page), []).extend(_raw_lines(entry))
    running = _running_lines(raw_pages.values(), edge=None)
    del raw_pages

    entry_at, page_at = _("entry %(index)d"), _("page %(page)s")
    for index, entry in enumerate(entries):
        location = entry_at % {"index": index}
        if not isinstance(entry, dict):
            yield Rejection(location, _("not an object"))
            continue
        yield _json_record(entry, location=location, family=family, running=running, page_at=page_at)


_ACTION_IN_TEXT_RE = re.compile(r"\bRecommended\s+[Aa]ctions?\s*:")


def _json_record(entry: dict, *, location: str, family: str, running: set[str], page_at: str) -> CodeRecord:
    code = entry.get("code")
    if isinstance(code, str):
        code = code.strip()
    entry_family = entry.get("family")
    message = _strip_label(_clean(entry.get("message")), "message")
    # Re-flow wrapped lines as the guide readers do; list items keep their own lines.
    explanation = _join_lines(_strip_label(str(entry.get("explanation") or "").strip(), "explanation").split("\n"))
    action = _join_lines(str(entry.get("recommended_action") or "").split("\n"))

    # An explanation that ran into the next section carries its own "Recommended Action:".
    split = _ACTION_IN_TEXT_RE.split(explanation, maxsplit=1)
    if len(split) == 2:
        explanation = split[0].strip()
        action = action or _join_lines(split[1].splitlines())

    raw = _raw_lines(entry)
    if raw:
        own = (Family.normalise(entry_family) or family, str(code))
        lead, parts = _raw_sections(raw, running=running, own=own)
        if parts["explanation"]:
            explanation = _complete(explanation, parts["explanation"])
        elif lead:
            explanation = _complete(explanation, lead)
        if not message and parts["message"]:
            message = parts["message"]
        if parts["recommended_action"]:
            action = _complete(action, parts["recommended_action"]) if action else parts["recommended_action"]

    source_file = Path(str(entry.get("source_file") or "")).name
    page = entry.get("page")
    source = ", ".join(
        part for part in (source_file, (page_at % {"page": page}) if page not in (None, "") else "") if part
    )
    return CodeRecord(
        family=entry_family if entry_family not in (None, "") else family,
        code=code,
        message=message,
        explanation=explanation,
        recommended_action=action,
        category=_choice(entry.get("category"), Category),
        severity=_choice(entry.get("severity"), Severity),
        level=_level(entry.get("level")),
        level_reason=_clean(entry.get("level_reason")),
        source=str(entry.get("source") or source),
        location=location,
    )


def _raw_lines(entry: dict) -> list[str]:
    raw = entry.get("raw_text")
    if isinstance(raw, str):
        return raw.splitlines()
    if isinstance(raw, list):
        return [str(line) for line in raw]
    return []


def _strip_label(text: str, name: str) -> str:
    label = _label(text.split("\n", 1)[0]) if text else None
    if label is not None and label[0] == name:
        rest = text.split("\n", 1)[1] if "\n" in text else ""
        return "\n".join(part for part in (label[1], rest) if part).strip()
    return text


def _raw_sections(raw: list[str], *, running: set[str], own: tuple[str, str]) -> tuple[str, dict[str, str]]:
    """Split the page lines that follow an entry: (text before any label, {section: text}).

    Stops at the next confirmed heading of another code; the rest of the page belongs to it.
    """
    lines = [("", line) for line in raw if line not in running]
    lead: list[str] = []
    parts: dict[str, list[str]] = {"message": [], "explanation": [], "recommended_action": []}
    current: list[str] = lead
    for kind, _location, payload in _sections(lines):  # bare page numbers never come out of _sections
        if kind == "entry" and payload == own:
            continue  # the extraction repeated the entry's own heading
        if kind in ("entry", "chapter"):
            break
        if kind == "label":
            name, text = payload
            current = parts[name]
            current.clear()  # a repeated label restarts the section (extractor overlap)
            if text:
                current.append(text)
        else:
            current.append(payload)
    return _join_lines(lead), {
        "message": _join_lines(parts["message"], single_line=True),
        "explanation": _join_lines(parts["explanation"]),
        "recommended_action": _join_lines(parts["recommended_action"]),
    }


# --------------------------------------------------------------------------- CSV

_CSV_COLUMNS = {
    "family": ("family", "code_family", "패밀리", "계열", "제품군", "코드_종류"),
    "code": ("code", "status_code", "status", "error_code", "코드", "상태_코드", "상태코드", "오류_코드", "에러_코드"),
    "message": ("message", "msg", "title", "메시지", "메세지", "오류_메시지"),
    "explanation": ("explanation", "description", "cause", "설명", "원인"),
    "recommended_action": (
        "recommended_action",
        "action",
        "recommendation",
        "resolution",
        "권장_조치",
        "권장조치",
        "조치",
        "해결_방법",
        "조치_방법",
    ),
    "category": ("category", "분류", "카테고리", "범주"),
    "severity": ("severity", "심각도"),
    "level": ("level", "resolution_level", "레벨", "수준", "해결_수준", "등급"),
    "level_reason": ("level_reason", "reason", "근거", "사유"),
    "typical_resolution_minutes": ("typical_resolution_minutes", "minutes", "소요_시간", "처리_시간"),
    "source": ("source", "출처"),
}
_COLUMN_ALIASES = {alias: name for name, aliases in _CSV_COLUMNS.items() for alias in aliases}


def _column_name(header: str) -> str | None:
    key = re.sub(r"[\s\-/]+", "_", header.strip().strip("\ufeff").lower()).strip("_")
    return _COLUMN_ALIASES.get(key)


def _read_csv(data: bytes, *, name: str, family: str, on_page=None) -> Iterator[CodeRecord | Rejection]:
    text = _decode(data, name)
    if not text.strip():
        raise ImportFormatError(_("%(name)s is empty") % {"name": name or _("input")})
    # Sniff the header line only: it holds nothing but column names, while explanations
    # further down are free to contain semicolons or tabs.
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    try:
        header = next(reader)
    except StopIteration:
        header = []
    columns = [_column_name(cell) for cell in header]
    missing = [column for column in ("code", "message") if column not in columns]
    if missing:
        raise ImportFormatError(
            _("%(name)s: the CSV header needs the columns %(missing)s (found: %(found)s)")
            % {
                "name": name or _("input"),
                "missing": ", ".join(missing),
                "found": ", ".join(cell.strip() for cell in header) or _("nothing"),
            }
        )
    line_at = _("line %(number)d")
    last_line = reader.line_num
    for row in reader:
        start, last_line = last_line + 1, reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        values: dict[str, str] = {}
        for column, cell in zip(columns, row, strict=False):
            if column is not None and column not in values:
                values[column] = cell.strip()
        location = line_at % {"number": start}
        minutes = values.get("typical_resolution_minutes", "")
        if minutes and not (minutes.isascii() and minutes.isdigit()):
            yield Rejection(
                location, _("typical_resolution_minutes %(value)r is not a whole number") % {"value": minutes}
            )
            continue
        yield CodeRecord(
            family=values.get("family") or family,
            code=values.get("code", ""),
            message=values.get("message", ""),
            explanation=_multiline(values.get("explanation", "")),
            recommended_action=_multiline(values.get("recommended_action", "")),
            category=_choice(values.get("category"), Category),
            severity=_choice(values.get("severity"), Severity),
            level=_level(values.get("level")),
            level_reason=values.get("level_reason", ""),
            typical_resolution_minutes=int(minutes) if minutes else None,
            source=values.get("source") or (Path(name).name if name else ""),
            location=location,
        )


def _multiline(text: str) -> str:
    return "\n".join(line.strip() for line in text.replace("\r\n", "\n").split("\n") if line.strip())


def _choice(value: Any, choices) -> str | None:
    """Accept a choice by value or by its English label ('Disk storage'); leave unknowns for validation."""
    if value in (None, ""):
        return None
    text = str(value).strip()
    key = text.lower().replace(" ", "_").replace("-", "_")
    if key in choices.values:
        return key
    for member in choices:
        if str(member.label).lower() == text.lower():
            return member.value
    return text


def _level(value: Any) -> Any:
    """'2', 2, '2 · Engineer approval' -> 2; anything else goes to validation as it is."""
    if value in (None, ""):
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = re.match(r"^\s*(\d)(?![\d.,])", str(value))
    return int(match.group(1)) if match else value
