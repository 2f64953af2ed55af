"""Turn every job input we accept into `JobData`, with a rejection per item that cannot be read.

Inputs: our own JSON shape, NetBackup `GET /admin/jobs` bodies (JSON:API), `bpdbjobs -report
-all_columns` output, and CSV / Excel daily reports with Korean or English headers. Parsers
never touch the database; `incidents.services.ingest_jobs` stores what they produce.

A rejection is a dict: `location` ("item 3", "line 12", "row 5"), `index` (JSON items) or
`line` (text lines; the row number for Excel), `field` and `reason`. The reason names the field
as the user wrote it (a CSV header, a JSON key), so a person can find and fix it.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils.translation import gettext as _

from .choices import JobSource
from .jobdata import BadValue, JobData, job_from_netbackup, normalise_status, parse_int, parse_time

FORMATS = ("bpdbjobs", "csv", "xlsx", "json")
FORMAT_SOURCES = {
    "bpdbjobs": JobSource.BPDBJOBS,
    "csv": JobSource.CSV,
    "xlsx": JobSource.XLSX,
    "json": JobSource.API,
}

# States in which NetBackup has not given the job its final status yet.
UNFINISHED_STATES = frozenset({"QUEUED", "ACTIVE", "REQUEUED", "SUSPENDED"})


# --------------------------------------------------------------------------- rejections


def rejection(location: str, reason: str, field_name: str = "") -> dict:
    """A rejection dict; `index` or `line` is derived from the location ("item 3", "line 12", "row 5")."""
    entry: dict = {"location": location}
    kind, _sep, number = location.partition(" ")
    if number.isdigit():
        if kind == "item":
            entry["index"] = int(number)
        elif kind in ("line", "row"):
            entry["line"] = int(number)
    entry["field"] = field_name
    entry["reason"] = reason
    return entry


def rejection_from(exc: BadValue, location: str) -> dict:
    return rejection(location, str(exc), exc.field)


@dataclass
class ParsedItem:
    """One accepted JSON item, with the customer and server it names (our shape) or inherits."""

    index: int
    customer: str
    server: str
    job: JobData


@dataclass
class ParseResult:
    jobs: list[JobData] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)
    source: str = JobSource.API
    format: str = ""
    items: list[ParsedItem] = field(default_factory=list)  # JSON only: customer/server per item


# --------------------------------------------------------------------------- JSON bodies


def is_netbackup_body(body) -> bool:
    return isinstance(body, dict) and "data" in body


OUR_STRING_FIELDS = ("job_type", "client", "policy", "schedule", "policy_type", "schedule_type")
OUR_INT_FIELDS = ("parent_job_id", "kilobytes", "files", "try_count")
OUR_TIME_FIELDS = ("started_at", "ended_at", "last_update_time")


def _text(value, field_name: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise BadValue(field_name, _("must be text"))


def job_from_ours(item, location: str = "") -> JobData:
    """One item of our own JSON shape -> JobData (customer and server are read by the caller)."""
    if not isinstance(item, dict):
        raise BadValue("item", _("each job must be a JSON object"))
    job_id = parse_int(item.get("job_id"), "job_id", allow_none=False)
    state = _text(item.get("state"), "state").upper() or "DONE"
    status = normalise_status(item.get("status"), "status")
    if status is None and state not in UNFINISHED_STATES:
        raise BadValue("status", _("is required for a finished job"))
    values = {name: _text(item.get(name), name) for name in OUR_STRING_FIELDS}
    for name in OUR_INT_FIELDS:
        values[name] = parse_int(item.get(name), name)
    for name in OUR_TIME_FIELDS:
        values[name] = parse_time(item.get(name), name)
    details = item.get("details")
    if isinstance(details, list):
        if not all(isinstance(line, str) for line in details):
            raise BadValue("details", _("must be text or a list of lines"))
        details = "\n".join(details)
    elif details is not None and not isinstance(details, str):
        raise BadValue("details", _("must be text or a list of lines"))
    return JobData(
        job_id=job_id, status=status, state=state, details=details or "", raw=item, location=location, **values
    )


def parse_json_body(body, *, customer: str = "", server: str = "") -> ParseResult:
    """Our shape (one object or a list) or a NetBackup JSON:API body, already decoded.

    `customer` and `server` (query parameters) apply to NetBackup bodies and fill in our-shape
    items that do not name their own.
    """
    if is_netbackup_body(body):
        return _parse_netbackup(body, customer=customer, server=server)
    result = ParseResult(source=JobSource.API, format="json")
    items = body if isinstance(body, list) else [body]
    for index, item in enumerate(items):
        location = f"item {index}"
        try:
            job = job_from_ours(item, location)
            item_customer = _text(item.get("customer"), "customer") or customer
            item_server = _text(item.get("server"), "server") or server
        except BadValue as exc:
            result.rejected.append(rejection_from(exc, location))
            continue
        if not item_customer:
            result.rejected.append(rejection(location, _("customer: is required"), "customer"))
            continue
        if not item_server:
            result.rejected.append(rejection(location, _("server: is required"), "server"))
            continue
        result.items.append(ParsedItem(index, item_customer, item_server, job))
        result.jobs.append(job)
    return result


def _parse_netbackup(body: dict, *, customer: str, server: str) -> ParseResult:
    result = ParseResult(source=JobSource.NETBACKUP_JSON, format="json")
    data = body.get("data")
    if isinstance(data, dict):  # GET /admin/jobs/{jobId} answers one resource, not a list
        data = [data]
    if not isinstance(data, list):
        result.rejected.append(rejection("body", _("data: must be a list of job resources"), "data"))
        return result
    for index, item in enumerate(data):
        location = f"item {index}"
        if isinstance(item, dict) and item.get("type") not in (None, "job"):
            result.rejected.append(
                rejection(location, _("type: expected 'job', got {value!r}").format(value=item.get("type")), "type")
            )
            continue
        try:
            job = job_from_netbackup(item, location)
        except BadValue as exc:
            result.rejected.append(rejection_from(exc, location))
            continue
        result.items.append(ParsedItem(index, customer, server, job))
        result.jobs.append(job)
    return result


# --------------------------------------------------------------------------- bpdbjobs

# Numeric codes of `bpdbjobs -report -all_columns`, mapped to the names the REST API uses so
# jobs from both sources look alike.
BPDBJOBS_JOB_TYPES = {
    0: "BACKUP",
    1: "ARCHIVE",
    2: "RESTORE",
    3: "VERIFY",
    4: "DUPLICATE",
    5: "IMPORT",
    6: "DBBACKUP",
    7: "VAULT",
    8: "LABEL",
    9: "ERASE",
    10: "TPREQ",
    11: "TPCLEAN",
    12: "TPFORMAT",
    13: "VMPHYSINV",
    14: "DQTS",
    15: "DBRECOVER",
    16: "MCONTENTS",
    17: "IMAGEDELETE",
    18: "LIVEUPDATE",
}
BPDBJOBS_STATES = {0: "QUEUED", 1: "ACTIVE", 2: "REQUEUED", 3: "DONE", 4: "SUSPENDED", 5: "INCOMPLETE"}
BPDBJOBS_SCHEDULE_TYPES = {
    0: "FULL_BACKUP",
    1: "DIFFERENTIAL_INCREMENTAL_BACKUP",
    2: "USER_BACKUP",
    3: "USER_ARCHIVE",
    4: "CUMULATIVE_INCREMENTAL_BACKUP",
}
# Leading columns whose position is stable across NetBackup versions; everything after them is
# read defensively (see _bpdbjobs_tries).
BPDBJOBS_MIN_FIELDS = 11
_UNESCAPED_COMMA = re.compile(r"(?<!\\),")
_BPDBJOBS_LINE = re.compile(r"^\s*\d+\s*,\s*\d+\s*,\s*\d+\s*,")


def _split_bpdbjobs(line: str) -> list[str]:
    return [part.replace("\\,", ",") for part in _UNESCAPED_COMMA.split(line)]


def _code(fields: list[str], index: int, names: dict, field_name: str) -> str:
    value = fields[index].strip() if index < len(fields) else ""
    if value == "":
        return ""
    number = parse_int(value, field_name)
    return names.get(number, str(number))


def _bpdbjobs_tries(fields: list[str]) -> tuple[str, int | None]:
    """Try blocks and the parent job id, from the variable part of an -all_columns line.

    Layout after the 32 fixed columns: the file list (count, then paths), the try count, and per
    try: pid, storage unit, server, started, elapsed, ended, status, status text, the number of
    status lines, those lines, bytes written, files written; then the parent job id. The layout
    varies between versions, so any inconsistency just yields what was read so far.
    """
    lines: list[str] = []
    parent = None
    try:
        position = 31
        position += 1 + int(fields[position])  # file list
        tries = int(fields[position])
        position += 1
        for number in range(1, tries + 1):
            block = fields[position : position + 9]
            if len(block) < 9:
                break
            status, description, count = block[6].strip(), block[7].strip(), int(block[8])
            header = _("try {number}: status {status}").format(number=number, status=status or "-")
            lines.append(f"{header} {description}".rstrip())
            position += 9
            lines.extend(line.strip() for line in fields[position : position + count])
            position += count + 2  # the status lines, then bytes and files written
        if position < len(fields) and fields[position].strip().isdigit():
            parent = int(fields[position]) or None
    except (IndexError, ValueError):
        pass
    return "\n".join(lines), parent


def job_from_bpdbjobs(line: str, location: str = "") -> JobData:
    fields = _split_bpdbjobs(line.rstrip("\r\n"))
    if len(fields) < BPDBJOBS_MIN_FIELDS:
        raise BadValue(
            "columns",
            _("expected at least {minimum} comma-separated columns, found {found}").format(
                minimum=BPDBJOBS_MIN_FIELDS, found=len(fields)
            ),
        )
    job_id = parse_int(fields[0], "jobid", allow_none=False)
    state = _code(fields, 2, BPDBJOBS_STATES, "state")
    status = normalise_status(fields[3].strip() or None, "status")
    if status is None and state not in UNFINISHED_STATES:
        raise BadValue("status", _("is required for a finished job"))
    details, parent = _bpdbjobs_tries(fields)

    def column(index):
        return fields[index].strip() if index < len(fields) else ""

    return JobData(
        job_id=job_id,
        status=status,
        state=state or "DONE",
        job_type=_code(fields, 1, BPDBJOBS_JOB_TYPES, "jobtype"),
        policy=column(4),
        schedule=column(5),
        client=column(6),
        started_at=parse_time(parse_int(column(8), "started"), "started"),
        ended_at=parse_time(parse_int(column(10), "ended"), "ended"),
        try_count=parse_int(column(12), "try"),
        kilobytes=parse_int(column(14), "kbytes"),
        files=parse_int(column(15), "files"),
        # The policy type stays a number: bpdbjobs reports the class type code, not the name.
        policy_type=column(21),
        schedule_type=_code(fields, 22, BPDBJOBS_SCHEDULE_TYPES, "schedtype"),
        parent_job_id=parent,
        details=details,
        raw={"bpdbjobs": line.rstrip("\r\n")},
        location=location,
    )


def parse_bpdbjobs(text: str) -> ParseResult:
    result = ParseResult(source=JobSource.BPDBJOBS, format="bpdbjobs")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        location = f"line {number}"
        try:
            result.jobs.append(job_from_bpdbjobs(line, location))
        except BadValue as exc:
            result.rejected.append(rejection_from(exc, location))
    return result


# --------------------------------------------------------------------------- CSV / Excel reports

# Normalised header (lower case, no spaces or punctuation, unit in brackets removed) -> column.
REPORT_HEADERS = {
    "customer": ("고객사명", "고객사", "고객명", "customer", "customername", "company"),
    "job_type": ("작업유형", "작업종류", "jobtype", "type"),
    "server": ("백업서버", "서버", "마스터서버", "server", "backupserver", "masterserver", "primaryserver"),
    "status": ("상태", "결과", "status", "result", "jobstatus"),
    "started_at": ("시작시간", "시작일시", "시작시각", "starttime", "start", "started", "startedat"),
    "ended_at": ("종료시간", "종료일시", "종료시각", "endtime", "end", "ended", "endedat"),
    "duration": ("소요시간", "duration", "elapsed", "elapsedtime"),
    "size": ("백업크기", "크기", "용량", "size", "backupsize"),
    "code": ("에러코드", "오류코드", "상태코드", "errorcode", "statuscode", "code", "exitstatus"),
    "message": ("에러메시지", "오류메시지", "에러내용", "errormessage", "message", "details"),
    "policy": ("policyname", "정책명", "정책", "policy"),
    "job_id": ("jobid", "작업id", "작업번호", "잡id", "job"),
    "client": ("client", "clientname", "클라이언트", "클라이언트명", "호스트", "호스트명"),
    "schedule": ("schedule", "schedulename", "스케줄", "스케줄명"),
}
_HEADER_LOOKUP = {alias: column for column, aliases in REPORT_HEADERS.items() for alias in aliases}
_UNIT = re.compile(r"[(\[]\s*([^)\]]*?)\s*[)\]]")
_HEADER_NOISE = re.compile(r"[\s_\-./:#]+")
MIN_HEADER_COLUMNS = 3
HEADER_SEARCH_ROWS = 10

SIZE_UNITS_KB = {"kb": 1, "mb": 1024, "gb": 1024**2, "tb": 1024**3}
DURATION_UNITS_MIN = {"분": 1.0, "min": 1.0, "mins": 1.0, "minutes": 1.0, "초": 1 / 60, "sec": 1 / 60, "s": 1 / 60}
DURATION_UNITS_MIN.update({"시간": 60.0, "h": 60.0, "hr": 60.0, "hours": 60.0})

STATUS_WORDS = {
    0: ("success", "successful", "succeeded", "ok", "done", "completed", "complete", "성공", "정상", "완료"),
    1: ("partial", "partiallysuccessful", "partialsuccess", "warning", "warn", "부분성공", "부분완료", "경고"),
    2: ("failed", "failure", "fail", "error", "실패", "오류", "에러"),
}
_STATUS_LOOKUP = {word: outcome for outcome, words in STATUS_WORDS.items() for word in words}


def _normalise_header(header) -> tuple[str, str]:
    text = str(header or "").strip()
    unit_match = _UNIT.search(text)
    unit = unit_match.group(1).strip().lower() if unit_match else ""
    key = _HEADER_NOISE.sub("", _UNIT.sub("", text)).lower()
    return key, unit


@dataclass
class _Columns:
    index: dict[str, int]  # column -> position
    names: dict[str, str]  # column -> header as written (for messages)
    units: dict[str, str]
    headers: list[str]


def _find_header(row) -> _Columns | None:
    index, names, units = {}, {}, {}
    for position, header in enumerate(row):
        key, unit = _normalise_header(header)
        column = _HEADER_LOOKUP.get(key)
        if column and column not in index:
            index[column], names[column], units[column] = position, str(header).strip(), unit
    if len(index) < MIN_HEADER_COLUMNS or "job_id" not in index:
        return None
    return _Columns(index, names, units, [str(h or "").strip() for h in row])


def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _number(value, field_name: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    try:
        return float(str(value).strip().replace(",", ""))
    except ValueError:
        raise BadValue(field_name, _("{value!r} is not a number").format(value=value)) from None


def _outcome(value, field_name: str) -> int | None:
    """Status column: a number, or words such as Success / 실패 / Partial."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return normalise_status(value, field_name)
    except BadValue:
        pass
    word = _HEADER_NOISE.sub("", str(value)).lower()
    if word in _STATUS_LOOKUP:
        return _STATUS_LOOKUP[word]
    raise BadValue(field_name, _("{value!r} is not a known job status").format(value=value))


def _matches_customer(value: str, customer) -> bool:
    lowered = value.strip().lower()
    return lowered in (customer.code.lower(), customer.name.strip().lower())


def _matches_server(value: str, server) -> bool:
    mine, theirs = server.hostname.lower(), value.strip().lower()
    # Reports often carry the short host name while we store the FQDN, or the other way round.
    return mine == theirs or mine.split(".")[0] == theirs.split(".")[0]


def job_from_report_row(row, columns: _Columns, location: str, *, customer=None, server=None) -> JobData:
    def get(column):
        position = columns.index.get(column)
        if position is None or position >= len(row):
            return None
        value = row[position]
        return value.strip() if isinstance(value, str) else value

    def name(column):
        return columns.names.get(column, column)

    if customer is not None and get("customer") and not _matches_customer(str(get("customer")), customer):
        raise BadValue(
            name("customer"),
            _("the row belongs to {value!r}, not to {customer}").format(value=get("customer"), customer=customer.code),
        )
    if server is not None and get("server") and not _matches_server(str(get("server")), server):
        raise BadValue(
            name("server"),
            _("the row belongs to server {value!r}, not to {server}").format(value=get("server"), server=server),
        )
    job_id = parse_int(get("job_id"), name("job_id"), allow_none=False)
    code = normalise_status(get("code"), name("code")) if "code" in columns.index else None
    outcome = _outcome(get("status"), name("status")) if "status" in columns.index else None
    status = _reconcile_status(code, outcome, name("code"), name("status"), get("status"))

    started = parse_time(get("started_at"), name("started_at"))
    ended = parse_time(get("ended_at"), name("ended_at"))
    duration = _number(get("duration"), name("duration"))
    if ended is None and started is not None and duration is not None:
        per_unit = DURATION_UNITS_MIN.get(columns.units.get("duration", ""), 1.0)
        ended = started + timedelta(minutes=duration * per_unit)
    size = _number(get("size"), name("size"))
    kilobytes = None
    if size is not None:
        kilobytes = round(size * SIZE_UNITS_KB.get(columns.units.get("size", ""), SIZE_UNITS_KB["gb"]))

    raw = {header: _cell_text(row[i]) for i, header in enumerate(columns.headers) if header and i < len(row)}
    return JobData(
        job_id=job_id,
        status=status,
        state="DONE",
        job_type=_cell_text(get("job_type")),
        client=_cell_text(get("client")),
        policy=_cell_text(get("policy")),
        schedule=_cell_text(get("schedule")),
        started_at=started,
        ended_at=ended,
        kilobytes=kilobytes,
        details=_cell_text(get("message")),
        raw=raw,
        location=location,
    )


def _reconcile_status(code, outcome, code_name, status_name, status_value) -> int:
    """The error-code column is the status; the status column must agree with it."""
    if code is None and outcome is None:
        raise BadValue(code_name, _("the row has neither an error code nor a status"))
    if code is None:
        if outcome >= 2:
            raise BadValue(code_name, _("a failed job needs its error code"))
        return outcome
    if outcome is None:
        return code
    agrees = (outcome == 0 and code == 0) or (outcome == 1 and code == 1) or (outcome >= 2 and code >= 2)
    if not agrees:
        raise BadValue(
            status_name,
            _("{value!r} does not agree with error code {code}").format(value=status_value, code=code),
        )
    return code


def _parse_rows(rows, *, kind: str, source: str, fmt: str, customer=None, server=None) -> ParseResult:
    """rows: iterable of (line or row number, list of cells)."""
    result = ParseResult(source=source, format=fmt)
    columns = None
    searched = 0
    for number, row in rows:
        if not any(_cell_text(cell) for cell in row):
            continue
        location = f"{kind} {number}"
        if columns is None:
            columns = _find_header(row)
            searched += 1
            if columns is None and searched >= HEADER_SEARCH_ROWS:
                break
            continue  # the header row itself, or a title row above it
        try:
            result.jobs.append(job_from_report_row(row, columns, location, customer=customer, server=server))
        except BadValue as exc:
            result.rejected.append(rejection_from(exc, location))
    if columns is None:
        expected = ", ".join(sorted({aliases[0] for aliases in REPORT_HEADERS.values()}))
        result.rejected.append(
            rejection(
                "header",
                _("no header row found: expected columns such as Job ID, Status, Error Code ({expected})").format(
                    expected=expected
                ),
                "header",
            )
        )
    return result


def decode_text(data: bytes) -> str:
    """UTF-8 (with or without BOM); Korean Excel saves CSV as CP949, so that is the fallback."""
    for encoding in ("utf-8-sig", "cp949"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _delimiter(sample: str) -> str:
    """Comma, tab or semicolon: whichever the first lines use most (csv.Sniffer guesses wrong on
    report title rows and on messages full of punctuation)."""
    lines = [line for line in sample.splitlines() if line.strip()][:5]
    counts = {delimiter: sum(line.count(delimiter) for line in lines) for delimiter in (",", "\t", ";")}
    return max(counts, key=lambda delimiter: (counts[delimiter], delimiter == ","))


def parse_csv(text: str, *, customer=None, server=None) -> ParseResult:
    reader = csv.reader(io.StringIO(text), delimiter=_delimiter(text[:8192]))

    def rows():
        start = 1
        for row in reader:
            yield start, row
            start = reader.line_num + 1

    return _parse_rows(rows(), kind="line", source=JobSource.CSV, fmt="csv", customer=customer, server=server)


def parse_xlsx(data: bytes, *, customer=None, server=None) -> ParseResult:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        result = ParseResult(source=JobSource.XLSX, format="xlsx")
        result.rejected.append(rejection("file", _("not a readable Excel workbook: {error}").format(error=exc), "file"))
        return result
    try:
        sheet = workbook.active
        rows = ((number, list(row)) for number, row in enumerate(sheet.iter_rows(values_only=True), start=1))
        return _parse_rows(rows, kind="row", source=JobSource.XLSX, fmt="xlsx", customer=customer, server=server)
    finally:
        workbook.close()


# --------------------------------------------------------------------------- files


def detect_format(data: bytes, filename: str = "") -> str:
    lowered = filename.lower()
    if data[:4] == b"PK\x03\x04" or lowered.endswith((".xlsx", ".xlsm")):
        return "xlsx"
    if lowered.endswith(".json"):
        return "json"
    head = decode_text(data[:8192]).lstrip("\ufeff \t\r\n")
    if head[:1] in ("{", "["):
        return "json"
    first = next((line for line in head.splitlines() if line.strip()), "")
    if _BPDBJOBS_LINE.match(first) and len(_split_bpdbjobs(first)) >= BPDBJOBS_MIN_FIELDS:
        return "bpdbjobs"
    return "csv"


def parse_file(data: bytes, *, fmt: str | None = None, filename: str = "", customer=None, server=None) -> ParseResult:
    """A whole uploaded file for one customer and server. JSON items that name another
    customer or server are rejected rather than silently moved."""
    fmt = fmt or detect_format(data, filename)
    if fmt == "xlsx":
        return parse_xlsx(data, customer=customer, server=server)
    text = decode_text(data)
    if fmt == "bpdbjobs":
        return parse_bpdbjobs(text)
    if fmt == "csv":
        return parse_csv(text, customer=customer, server=server)
    if fmt == "json":
        return _parse_json_file(text, customer=customer, server=server)
    raise ValueError(f"unknown format {fmt!r}")


def _parse_json_file(text: str, *, customer=None, server=None) -> ParseResult:
    try:
        body = json.loads(text)
    except ValueError as exc:
        result = ParseResult(format="json")
        result.rejected.append(rejection("file", _("not valid JSON: {error}").format(error=exc), "file"))
        return result
    result = parse_json_body(
        body,
        customer=customer.code if customer is not None else "",
        server=server.hostname if server is not None else "",
    )
    kept = []
    for item in result.items:
        if customer is not None and item.customer.lower() != customer.code.lower():
            reason = _("customer: the item belongs to {value!r}, not to {customer}").format(
                value=item.customer, customer=customer.code
            )
            result.rejected.append(rejection(item.job.location, reason, "customer"))
        elif server is not None and not _matches_server(item.server, server):
            reason = _("server: the item belongs to {value!r}, not to {server}").format(
                value=item.server, server=server
            )
            result.rejected.append(rejection(item.job.location, reason, "server"))
        else:
            kept.append(item)
    result.items = kept
    result.jobs = [item.job for item in kept]
    result.rejected.sort(key=lambda entry: entry.get("index", -1))
    return result
