"""A local HTTPS server that speaks the NetBackup jobs API the way the vendor documents it.

It runs in a thread on 127.0.0.1 with an ephemeral port and a certificate from a throw-away
CA (trustme), filters and cursor-pages `/admin/jobs` for real, serves try-logs in the
documented spelling or the one real servers send, and can be told to misbehave: wrong key,
unsupported versions, 503s, malformed JSON, slow answers. Every request is recorded.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import trustme

from tests.incidents.nbjobs import build_job_attributes, iso

API_KEY = "A7-test-api-key-Zq9xW3rT5yU8"
PREFIX = "/netbackup"
MEDIA_TYPE_RE = re.compile(r"^application/vnd\.netbackup\+json;\s*version=(\d+\.\d+)$")
DATE_ATTRIBUTES = {"startTime", "endTime", "lastUpdateTime", "activeTryStartTime"}
STATUS_MESSAGES = {
    0: "the requested operation was successfully completed",
    1: "the requested operation was partially successful",
    13: "file read failed",
    58: "can't connect to client",
    96: "unable to allocate new media for backup, storage unit has none available",
    2074: "Disk volume is down",
}


@dataclass
class RecordedRequest:
    method: str
    path: str  # below the /netbackup prefix, e.g. /admin/jobs
    raw_query: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    full_path: str = ""  # as sent, with the /netbackup prefix

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class RecordedResponse:
    request: RecordedRequest
    status: int
    body: dict | bytes


@dataclass
class Fault:
    """Answer `status`/`body` instead of the real thing, `times` times (None: always).

    `status=None` with a `delay` answers normally after the delay (to provoke client timeouts).
    """

    status: int | None = 503
    body: dict | bytes | None = None
    headers: dict = field(default_factory=dict)
    delay: float = 0.0
    path: str | None = None  # regular expression matched against the whole API path
    when: Callable[[RecordedRequest], bool] | None = None
    times: int | None = 1

    def matches(self, request: RecordedRequest) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.path is not None and not re.fullmatch(self.path, request.path):
            return False
        return self.when is None or self.when(request)


class BadRequest(Exception):
    def __init__(self, message: str, attribute_errors: dict | None = None):
        super().__init__(message)
        self.attribute_errors = attribute_errors or {}


def parse_iso(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


JOB_ATTRIBUTES = frozenset(build_job_attributes(1))


# --- the OData filter subset the jobs endpoint documents ------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<lparen>\()|(?P<rparen>\))|(?P<string>'(?:[^']|'')*')"
    r"|(?P<date>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)"
    r"|(?P<number>-?\d+(?:\.\d+)?)|(?P<word>[A-Za-z_][A-Za-z0-9_]*))"
)
COMPARISONS = {"eq", "ne", "lt", "gt", "le", "ge"}


def tokenize(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise BadRequest(f"Cannot parse the filter near {text[position : position + 20]!r}.")
        kind = match.lastgroup
        tokens.append((kind, match.group(kind)))
        position = match.end()
        while position < len(text) and text[position].isspace():
            position += 1
    return tokens


def parse_filter(text: str) -> list:
    """Parse into a tree: ("and"|"or", left, right) or ("cmp", attribute, operator, value)."""
    tokens = tokenize(text)
    position = 0

    def peek():
        return tokens[position] if position < len(tokens) else (None, None)

    def take():
        nonlocal position
        token = peek()
        position += 1
        return token

    def expression():  # OData: "and" binds tighter than "or"
        node = conjunction()
        while peek() == ("word", "or"):
            take()
            node = ("or", node, conjunction())
        return node

    def conjunction():
        node = term()
        while peek() == ("word", "and"):
            take()
            node = ("and", node, term())
        return node

    def term():
        kind, value = take()
        if kind == "lparen":
            node = expression()
            if take()[0] != "rparen":
                raise BadRequest("Unbalanced parentheses in the filter.")
            return node
        if kind != "word":
            raise BadRequest(f"Expected an attribute name in the filter, got {value!r}.")
        attribute = value
        op_kind, operator = take()
        if op_kind != "word" or operator not in COMPARISONS:
            raise BadRequest(f"Unsupported operator {operator!r} in the filter.")
        literal_kind, literal = take()
        if literal_kind == "string":
            literal = literal[1:-1].replace("''", "'")
        elif literal_kind == "date":
            literal = parse_iso(literal)
        elif literal_kind == "number":
            literal = float(literal) if "." in literal else int(literal)
        else:
            raise BadRequest(f"Expected a value after {attribute} {operator}.")
        return ("cmp", attribute, operator, literal)

    tree = expression()
    if position != len(tokens):
        raise BadRequest("Unexpected text at the end of the filter.")
    return tree


def evaluate(tree, attributes: dict) -> bool:
    if tree[0] in ("and", "or"):
        left, right = evaluate(tree[1], attributes), evaluate(tree[2], attributes)
        return (left and right) if tree[0] == "and" else (left or right)
    _cmp, attribute, operator, literal = tree
    if attribute not in attributes:
        raise BadRequest(f"Filtering on {attribute!r} is not supported.", {attribute: "not filterable"})
    actual = attributes[attribute]
    if attribute in DATE_ATTRIBUTES:
        if not isinstance(literal, datetime):
            raise BadRequest(f"{attribute} needs an ISO-8601 date-time.", {attribute: "invalid date-time"})
        actual = parse_iso(actual)
    elif isinstance(actual, (int, float)) and not isinstance(literal, (int, float)):
        raise BadRequest(f"{attribute} needs a number.", {attribute: "invalid number"})
    elif isinstance(actual, str) and not isinstance(literal, str):
        raise BadRequest(f"{attribute} needs a quoted string.", {attribute: "invalid string"})
    return {
        "eq": actual == literal,
        "ne": actual != literal,
        "lt": actual < literal,
        "gt": actual > literal,
        "le": actual <= literal,
        "ge": actual >= literal,
    }[operator]


def filter_attributes(tree) -> list[tuple[str, str]]:
    if tree[0] in ("and", "or"):
        return filter_attributes(tree[1]) + filter_attributes(tree[2])
    return [(tree[1], tree[2])]


# --- the server ------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeNetBackup/1.0"

    def log_message(self, format, *args):  # keep test output quiet
        pass

    def handle(self):
        # The client may give up (timeout test) or refuse our certificate (TLS test) mid-request.
        with contextlib.suppress(ConnectionError, ssl.SSLError, TimeoutError, OSError):
            super().handle()

    def do_GET(self):
        self.server.fake._dispatch(self)

    def do_POST(self):
        self.server.fake._dispatch(self)

    def do_DELETE(self):
        self.server.fake._dispatch(self)

    def send_json(self, status: int, body, *, version: str | None = None, headers: dict | None = None):
        payload = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
        self.send_response(status)
        media = f"application/vnd.netbackup+json;version={version}" if version else "application/json"
        self.send_header("Content-Type", media)
        self.send_header("Content-Length", str(len(payload)))
        request_id = self.headers.get("X-Request-ID")
        if request_id:
            self.send_header("X-Request-ID", request_id)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address, handler, context: ssl.SSLContext, fake: FakeNetBackup):
        self.context = context
        self.fake = fake
        super().__init__(address, handler)

    def finish_request(self, request, client_address):
        # Handshake in the request thread, so one stalled client cannot block the accept loop.
        request.settimeout(10)
        # Headers and body go out in two writes; without this, Nagle + delayed ACK add 40 ms per request.
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            self.fake.tls_failures.append(str(exc))
            return
        super().finish_request(tls, client_address)

    def handle_error(self, request, client_address):
        pass


class FakeNetBackup:
    """Start with `with FakeNetBackup() as nbu:`; point a client at `nbu.base_url` trusting `nbu.ca_pem`."""

    def __init__(
        self,
        *,
        api_key: str | None = API_KEY,
        versions: tuple[str, ...] = ("14.0",),
        try_log_style: str = "spec",
        last_page_next: str | None = None,
        hostnames: tuple[str, ...] = ("127.0.0.1", "localhost"),
    ):
        self.api_key = api_key
        self.versions = tuple(versions)
        self.try_log_style = try_log_style  # "spec": tryLog/tryStartTime, "real": tryLogEntries/tryStartTimestamp
        self.last_page_next = last_page_next  # None: omit meta.pagination.next on the last page; "": send it empty
        self.jobs: dict[int, dict] = {}
        self.tries: dict[int, list[dict]] = {}
        self.faults: list[Fault] = []
        self.requests: list[RecordedRequest] = []
        self.tls_failures: list[str] = []
        self.responses: list[RecordedResponse] = []  # every answer, for checks against the vendor spec
        self._lock = threading.Lock()
        self.ca = trustme.CA()
        self.ca_pem = self.ca.cert_pem.bytes().decode("ascii")
        self._cert = self.ca.issue_cert(*hostnames)
        self._server: _TLSServer | None = None
        self._thread: threading.Thread | None = None
        self._next_id = 1000

    # lifecycle
    def start(self) -> FakeNetBackup:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._cert.configure_cert(context)
        self._server = _TLSServer(("127.0.0.1", 0), _Handler, context, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-netbackup", daemon=True
        )
        self._thread.start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}{PREFIX}"

    # data
    def add_job(self, job_id: int | None = None, *, tries: list[dict] | None = None, **options) -> dict:
        """Add a job (see `build_job_attributes` for the options); returns its attributes."""
        with self._lock:
            if job_id is None:
                job_id = self._next_id
                self._next_id += 1
            attrs = build_job_attributes(job_id, **options)
            if tries:
                attrs["try"] = len(tries)
            self.jobs[job_id] = attrs
            if tries is None:
                started = parse_iso(attrs["activeTryStartTime"])
                tries = [default_try(job_id, attrs["status"], started, attrs["clientName"])]
            self.tries[job_id] = tries
        return attrs

    def add_fault(self, fault: Fault | None = None, **kwargs) -> Fault:
        fault = fault or Fault(**kwargs)
        with self._lock:
            self.faults.append(fault)
        return fault

    def busy(self, times: int, *, retry_after: str | None = None, path: str | None = None) -> Fault:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        body = {"errorCode": 503, "errorMessage": "Server busy, try again later."}
        return self.add_fault(status=503, body=body, headers=headers, times=times, path=path)

    def malformed(self, path: str, *, times: int | None = None, when=None) -> Fault:
        return self.add_fault(status=200, body=b'{"data": [{"type": "job", "id": ', path=path, times=times, when=when)

    def slow(self, seconds: float, *, times: int | None = 1, path: str | None = None) -> Fault:
        return self.add_fault(status=None, delay=seconds, times=times, path=path)

    def requests_to(self, path_pattern: str) -> list[RecordedRequest]:
        return [r for r in list(self.requests) if re.fullmatch(path_pattern, r.path)]

    # request handling
    def _dispatch(self, handler: _Handler):
        parts = urlsplit(handler.path)
        full_path = unquote(parts.path)
        path = full_path[len(PREFIX) :] or "/" if full_path.startswith(PREFIX) else full_path
        request = RecordedRequest(
            method=handler.command,
            path=path,
            raw_query=parts.query,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in handler.headers.items()},
            full_path=full_path,
        )
        length = int(handler.headers.get("Content-Length") or 0)
        if length:
            handler.rfile.read(length)
        with self._lock:
            self.requests.append(request)
            fault = next((f for f in self.faults if f.matches(request)), None)
            if fault is not None and fault.times is not None:
                fault.times -= 1
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        version = self._accepted_version(request)
        status, body, headers = self._answer(request, fault, version, has_body=bool(length))
        with self._lock:
            self.responses.append(RecordedResponse(request, status, body))
        handler.send_json(status, body, version=version if status != 406 else None, headers=headers)

    def _answer(self, request: RecordedRequest, fault: Fault | None, version: str | None, *, has_body: bool):
        if fault is not None and fault.status is not None:
            body = fault.body if fault.body is not None else {"errorCode": fault.status, "errorMessage": "fault"}
            return fault.status, body, fault.headers
        if version is None:
            return (
                406,
                {
                    "errorCode": 406,
                    "errorMessage": "Unsupported API version in the Accept header.",
                    "errorDetails": [f"supported: {', '.join(self.versions)}"],
                },
                {},
            )
        if has_body and MEDIA_TYPE_RE.match(request.headers.get("content-type", "")) is None:
            return 415, {"errorCode": 415, "errorMessage": "Unsupported media type."}, {}
        if self.api_key is not None and request.headers.get("authorization") != self.api_key:
            return 401, {"errorCode": 9, "errorMessage": "Authentication failed: missing or invalid API key."}, {}
        try:
            status, body = self._route(request)
        except BadRequest as exc:
            status, body = 400, {"errorCode": 400, "errorMessage": str(exc), "attributeErrors": exc.attribute_errors}
        return status, body, {}

    def _accepted_version(self, request: RecordedRequest) -> str | None:
        match = MEDIA_TYPE_RE.match(request.headers.get("accept", "").strip())
        if match and match.group(1) in self.versions:
            return match.group(1)
        return None

    def _route(self, request: RecordedRequest):
        not_found = (404, {"errorCode": 404, "errorMessage": "No entity found."})
        if request.path == "/admin/jobs":
            if request.method != "GET":
                return 405, {"errorCode": 405, "errorMessage": "Method not allowed."}
            return 200, self._jobs_page(request)
        match = re.fullmatch(r"/admin/jobs/(\d+)/try-logs", request.path)
        if match:
            job_id = int(match.group(1))
            if request.method != "GET":
                return 405, {"errorCode": 405, "errorMessage": "Method not allowed."}
            with self._lock:
                tries = self.tries.get(job_id)
            if tries is None:
                return not_found
            data = [self._try_resource(job_id, t, index, len(tries)) for index, t in enumerate(tries, start=1)]
            return 200, {"data": data}
        match = re.fullmatch(r"/admin/jobs/(\d+)", request.path)
        if match:
            with self._lock:
                attrs = self.jobs.get(int(match.group(1)))
            return (200, {"data": self._job_resource(attrs)}) if attrs else not_found
        return not_found

    def _jobs_page(self, request: RecordedRequest) -> dict:
        known_params = {"filter", "sort", "page[limit]", "page[after]", "page[before]"}
        unknown = sorted(set(request.query) - known_params)
        if unknown:
            raise BadRequest(f"Unknown query parameters: {', '.join(unknown)}.")
        limit_text = request.param("page[limit]") or "10"
        if not limit_text.isdigit() or not 0 <= int(limit_text) <= 100:
            raise BadRequest("page[limit] must be 0 to 100.", {"page[limit]": "out of range"})
        limit = int(limit_text)
        with self._lock:
            jobs = [dict(a) for a in self.jobs.values()]
        order = self._sort_order(request.param("sort") or "-startTime", jobs)
        filter_text = request.param("filter")
        tree = parse_filter(filter_text) if filter_text else None
        for attribute, _operator in filter_attributes(tree) if tree else []:
            if attribute not in JOB_ATTRIBUTES:
                raise BadRequest(f"Filtering on {attribute!r} is not supported.", {attribute: "not filterable"})
        after = request.param("page[after]")
        start = 0
        if after is not None:
            positions = [i for i, a in enumerate(order) if str(a["jobId"]) == after]
            if not positions:
                raise BadRequest("The page[after] cursor is not valid.", {"page[after]": "unknown cursor"})
            start = positions[0] + 1
        matching = [a for a in order[start:] if tree is None or evaluate(tree, a)]
        page, rest = matching[:limit], matching[limit:]
        data = [self._job_resource(a) for a in page]
        pagination = {"limit": limit}
        if page:
            pagination["prev"] = str(page[0]["jobId"])
        if rest and page:
            pagination["next"] = str(page[-1]["jobId"])
        elif self.last_page_next is not None:
            pagination["next"] = self.last_page_next
        links = {"self": {"href": f"{self.base_url}/admin/jobs"}}
        if "next" in pagination and pagination["next"]:
            links["next"] = {"href": f"{self.base_url}/admin/jobs?page%5Bafter%5D={pagination['next']}"}
        return {"links": links, "data": data, "meta": {"pagination": pagination}}

    def _sort_order(self, sort: str, jobs: list[dict]) -> list[dict]:
        keys = [k.strip() for k in sort.split(",") if k.strip()]
        ordered = sorted(jobs, key=lambda a: a["jobId"])
        for key in reversed(keys):
            descending = key.startswith("-")
            name = key.lstrip("-")
            if any(name not in a for a in jobs):
                raise BadRequest(f"Sorting on {name!r} is not supported.", {"sort": name})
            convert = parse_iso if name in DATE_ATTRIBUTES else (lambda v: v)
            ordered = sorted(ordered, key=lambda a, n=name, c=convert: c(a[n]), reverse=descending)
        return ordered

    def _job_resource(self, attrs: dict) -> dict:
        job_id = attrs["jobId"]
        return {
            "links": {
                "self": {"href": f"/admin/jobs/{job_id}"},
                "file-lists": {"href": f"{self.base_url}/admin/jobs/{job_id}/file-lists"},
                "try-logs": {"href": f"{self.base_url}/admin/jobs/{job_id}/try-logs"},
            },
            "type": "job",
            "id": str(job_id),
            "meta": {"page": {"cursor": str(job_id)}},
            "attributes": dict(attrs),
        }

    def _try_resource(self, job_id: int, attempt: dict, number: int, total: int) -> dict:
        lines = [
            {k: v for k, v in (("timestamp", ts), ("severity", severity), ("message", message)) if v is not None}
            for ts, severity, message in attempt["lines"]
        ]
        common = {
            "tryNumber": number,
            "tryStatusCode": attempt["status"],
            "tryStatusMessage": attempt.get("message") or STATUS_MESSAGES.get(attempt["status"], "failed"),
            "tryKbps": 0,
            "tryKbWritten": 0,
            "tryFilesWritten": 0,
            "trySourceStorageUnit": "",
            "tryDestinationStorageUnit": "stu-msdp01",
            "tryMediaServer": attempt.get("media_server", "media01"),
            "tryProcessId": 2909,
            "trySessionId": 0,
        }
        if self.try_log_style == "real":
            attributes = {
                **common,
                "jobId": job_id,
                "tryStartTimestamp": attempt["start"],
                "tryEndTimestamp": attempt["end"],
                "tryLogEntries": lines,
            }
        else:
            attributes = {
                **common,
                "tryJobId": job_id,
                "tryStartTime": attempt["start"],
                "tryEndTime": attempt["end"],
                "tryTapesToEject": 0,
                "tryTransportMode": "LAN",
                "tryLog": lines,
            }
        links = {
            "self": {"href": f"/admin/jobs/{job_id}/try-logs/{number}"},
            "first": {"href": f"/admin/jobs/{job_id}/try-logs/1"},
            "last": {"href": f"/admin/jobs/{job_id}/try-logs/{total}"},
        }
        return {"links": links, "type": "parsedTryLogResponse", "id": f"{job_id}-{number}", "attributes": attributes}


def default_try(job_id: int, status: int, started: datetime, client: str) -> dict:
    """One try whose log ends the way NetBackup's do: the failing process and EXIT STATUS."""
    t = [iso(started + timedelta(seconds=s)) for s in (0, 2, 30, 31)]
    lines = [
        (t[0], "INFO", f"Info nbjm (pid=5123) starting backup job (jobid={job_id}) for client {client}"),
        (t[1], None, "started process bpbrm (pid=30112)"),
    ]
    if status >= 2:
        lines.append((t[2], "ERROR", f"Error bpbrm (pid=30112) cannot connect on socket to {client}"))
    else:
        lines.append((t[2], "WARNING", "Warning bpbrm (pid=30112) from client: some files could not be read"))
    lines.append((t[3], "INFO", f"Info bpbrm (pid=30112) EXITING with status {status}"))
    return {"status": status, "start": t[0], "end": t[3], "lines": lines}
