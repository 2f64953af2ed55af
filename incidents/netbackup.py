"""Client for the parts of the NetBackup REST API the poller uses: the jobs list and try-logs.

Authentication is an API key sent as the raw `Authorization` header. The media type
carries the API version, negotiated per server newest first and then reused. TLS is
always verified, against the server's own CA certificate when one is stored.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import ssl
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlencode, urlsplit

import httpx
from django.conf import settings
from django.utils.translation import gettext as _

logger = logging.getLogger(__name__)

# Newest first. Jobs use cursor paging from API 9.0 on; older servers page by offset, which we do not speak.
DEFAULT_API_VERSIONS = ("14.0", "13.0", "12.0", "11.0", "10.0", "9.0")
MEDIA_TYPE = "application/vnd.netbackup+json;version={version}"
# A server that does not know the version we ask for answers one of these.
VERSION_REJECTED = frozenset({406, 415})
RETRYABLE = frozenset({429, 502, 503, 504})
JOBS_PATH = "/admin/jobs"
MAX_PAGE_LIMIT = 100


class NetBackupError(Exception):
    """Anything that stopped a NetBackup request; the message names the endpoint and never holds the API key."""

    def __init__(self, message: str, *, endpoint: str = "", status: int | None = None, error_code=None):
        super().__init__(message)
        self.endpoint = endpoint
        self.status = status
        self.error_code = error_code


class NetBackupConfigError(NetBackupError):
    """The server record cannot be used as it is (no URL, not https, bad CA certificate, no key)."""


class NetBackupAuthError(NetBackupError):
    """401/403: the key is wrong, expired or lacks a permission. Retrying will not help."""


class NetBackupTLSError(NetBackupError):
    """The server's certificate did not verify against the CA we trust for it."""


class NetBackupUnavailableError(NetBackupError):
    """Busy (503), timeouts or connection failures that outlasted our retries."""


class NetBackupVersionError(NetBackupError):
    """The server accepted none of the API versions we speak."""


class NetBackupProtocolError(NetBackupError):
    """The answer was not the JSON shape the API documents."""


class NetBackupHTTPError(NetBackupError):
    """Any other HTTP error status (400, 404, 500...)."""


@dataclass
class JobPage:
    number: int
    items: list[dict]
    next_cursor: str | None


def format_time(value: datetime) -> str:
    """UTC ISO-8601 with milliseconds, truncated (never rounded up, which could skip a job)."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def failed_jobs_filter(since: datetime | None) -> str:
    """The OData filter for finished jobs with a non-zero status (1 = partial success included)."""
    clauses = ["state eq 'DONE'", "status gt 0"]
    if since is not None:
        clauses.append(f"lastUpdateTime gt {format_time(since)}")
    return " and ".join(clauses)


def build_ssl_context(ca_certificate: str = "") -> ssl.SSLContext:
    """Trust only the server's CA when one is stored, else the system's CAs. Verification is never off."""
    if ca_certificate and ca_certificate.strip():
        try:
            return ssl.create_default_context(cadata=ca_certificate.strip())
        except (ssl.SSLError, ValueError) as exc:
            raise NetBackupConfigError(
                _("The stored CA certificate is not a valid PEM certificate: %(reason)s") % {"reason": exc}
            ) from None
    return ssl.create_default_context()


def _tls_failure(exc: BaseException) -> ssl.SSLError | None:
    seen = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    if "CERTIFICATE_VERIFY_FAILED" in str(exc):
        return ssl.SSLError(str(exc))
    return None


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _error_summary(response: httpx.Response) -> tuple[str, object]:
    """The vendor error body `{errorCode, errorMessage, errorDetails, ...}` as one line, and the code."""
    try:
        body = response.json()
    except ValueError:
        return "", None
    if not isinstance(body, dict):
        return "", None
    code = body.get("errorCode")
    parts = []
    if code is not None:
        parts.append(_("error code %(code)s") % {"code": code})
    if body.get("errorMessage"):
        parts.append(str(body["errorMessage"]))
    details = body.get("errorDetails")
    if isinstance(details, list) and details:
        parts.append("; ".join(str(d) for d in details[:3]))
    attribute_errors = body.get("attributeErrors")
    if isinstance(attribute_errors, dict) and attribute_errors:
        parts.append("; ".join(f"{k}: {v}" for k, v in list(attribute_errors.items())[:3]))
    return "; ".join(parts), code


class NetBackupClient:
    """A session with one NetBackup primary server. Use as a context manager, or call close()."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        ca_certificate: str = "",
        api_version: str = "",
        versions: tuple[str, ...] | None = None,
        timeout: float | None = None,
        max_attempts: int | None = None,
        backoff_seconds: float | None = None,
        backoff_max_seconds: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        name: str = "",
    ):
        if not base_url:
            raise NetBackupConfigError(_("No API base URL is stored for this server"))
        parts = urlsplit(base_url)
        if parts.scheme != "https" or not parts.hostname:
            # The API key travels in a header: plain HTTP would hand it to anyone on the path.
            raise NetBackupConfigError(_("The API base URL must be an https:// URL, got %(url)r") % {"url": base_url})
        if not api_key:
            raise NetBackupConfigError(_("No API key is stored for this server"))
        self.base_url = base_url.rstrip("/")
        self.host = parts.hostname
        self.name = name or parts.hostname
        self.__api_key = api_key
        self.versions = tuple(versions or getattr(settings, "NETBACKUP_API_VERSIONS", DEFAULT_API_VERSIONS))
        self.api_version = api_version or ""
        self.max_attempts = max(1, int(max_attempts or getattr(settings, "NETBACKUP_MAX_ATTEMPTS", 4)))
        self.backoff_seconds = float(
            backoff_seconds if backoff_seconds is not None else getattr(settings, "NETBACKUP_BACKOFF_SECONDS", 1.0)
        )
        self.backoff_max_seconds = float(
            backoff_max_seconds
            if backoff_max_seconds is not None
            else getattr(settings, "NETBACKUP_BACKOFF_MAX_SECONDS", 60.0)
        )
        self.sleep = sleep
        self.requests_sent = 0
        timeout = float(timeout or getattr(settings, "NETBACKUP_HTTP_TIMEOUT_SECONDS", 30))
        self._http = httpx.Client(
            verify=build_ssl_context(ca_certificate),
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": f"V-BIP/{getattr(settings, 'VBIP_VERSION', '0')}"},
        )

    @classmethod
    def for_server(cls, server, **kwargs) -> NetBackupClient:
        return cls(
            server.api_base_url,
            server.api_key,
            ca_certificate=server.ca_certificate,
            api_version=server.api_version,
            name=server.hostname,
            **kwargs,
        )

    def __repr__(self):
        return f"<NetBackupClient {self.base_url} api_version={self.api_version or '?'}>"

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        self._http.close()

    # --- requests ------------------------------------------------------------------------

    def get(self, path: str, params: dict | None = None) -> dict:
        """GET a JSON object, negotiating the API version on the way."""
        return self.request("GET", path, params=params)

    def request(self, method: str, path: str, *, params: dict | None = None, body: dict | None = None) -> dict:
        endpoint = f"{method} {path}"
        tried: list[str] = []
        candidates = [self.api_version] if self.api_version else []
        candidates += [v for v in self.versions if v != self.api_version]
        for version in candidates:
            response = self._send(method, path, params, body, version, endpoint)
            if response.status_code in VERSION_REJECTED:
                tried.append(version)
                if version == self.api_version:
                    logger.info("%s no longer accepts API %s; negotiating again", self.name, version)
                    self.api_version = ""
                continue
            if response.is_success and version != self.api_version:
                logger.info("%s speaks NetBackup API %s", self.name, version)
                self.api_version = version
            return self._decode(response, endpoint)
        raise NetBackupVersionError(
            _("%(endpoint)s: the server accepted none of the API versions %(versions)s")
            % {"endpoint": endpoint, "versions": ", ".join(tried)},
            endpoint=endpoint,
            status=406,
        )

    def _url(self, path: str, params: dict | None) -> str:
        url = self.base_url + path
        if params:
            # %20 rather than '+': the vendor documents percent-encoding for spaces in filter values.
            url += "?" + urlencode({k: v for k, v in params.items() if v is not None}, quote_via=quote, safe="")
        return url

    def _send(self, method, path, params, body, version, endpoint) -> httpx.Response:
        media_type = MEDIA_TYPE.format(version=version)
        url = self._url(path, params)
        content = None
        for attempt in range(1, self.max_attempts + 1):
            request_id = str(uuid.uuid4())
            headers = {"Accept": media_type, "Authorization": self.__api_key, "X-Request-ID": request_id}
            if body is not None:
                headers["Content-Type"] = media_type
                content = json.dumps(body).encode("utf-8")
            started = time.monotonic()
            self.requests_sent += 1
            try:
                response = self._http.request(method, url, headers=headers, content=content)
            except httpx.TransportError as exc:
                tls = _tls_failure(exc)
                if tls is not None:
                    reason = getattr(tls, "verify_message", None) or getattr(tls, "reason", None) or str(tls)
                    raise NetBackupTLSError(
                        _(
                            "%(endpoint)s: TLS verification of %(host)s failed (%(reason)s). Store the server's CA "
                            "certificate (GET /security/cacert) and check the host name in the API base URL."
                        )
                        % {"endpoint": endpoint, "host": self.host, "reason": reason},
                        endpoint=endpoint,
                    ) from None
                kind = _("timed out") if isinstance(exc, httpx.TimeoutException) else _("connection failed")
                problem = f"{kind} ({type(exc).__name__})"
                if attempt >= self.max_attempts:
                    raise NetBackupUnavailableError(
                        _("%(endpoint)s: %(problem)s after %(attempts)d attempts")
                        % {"endpoint": endpoint, "problem": problem, "attempts": attempt},
                        endpoint=endpoint,
                    ) from None
                delay = self._backoff(attempt)
                logger.warning(
                    "%s %s %s (request %s); retry %d/%d in %.1f s",
                    self.name,
                    endpoint,
                    problem,
                    request_id,
                    attempt + 1,
                    self.max_attempts,
                    delay,
                )
                self.sleep(delay)
                continue
            elapsed_ms = (time.monotonic() - started) * 1000
            logger.debug(
                "%s %s -> %s in %.0f ms (API %s, request %s)",
                self.name,
                endpoint,
                response.status_code,
                elapsed_ms,
                version,
                request_id,
            )
            if response.status_code not in RETRYABLE or attempt >= self.max_attempts:
                return response
            retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
            if retry_after is not None and retry_after > self.backoff_max_seconds:
                # Sleeping for as long as the server asks would stall every other server's poll;
                # the next scheduled poll picks this one up again.
                return response
            delay = max(self._backoff(attempt), retry_after or 0.0)
            logger.warning(
                "%s %s answered %s (request %s); retry %d/%d in %.1f s",
                self.name,
                endpoint,
                response.status_code,
                request_id,
                attempt + 1,
                self.max_attempts,
                delay,
            )
            self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _backoff(self, attempt: int) -> float:
        """Exponential with jitter: half fixed, half random, so a fleet of pollers does not retry in step."""
        ceiling = min(self.backoff_max_seconds, self.backoff_seconds * (2 ** (attempt - 1)))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _decode(self, response: httpx.Response, endpoint: str) -> dict:
        status = response.status_code
        if status >= 400:
            summary, code = _error_summary(response)
            text = f"{endpoint}: HTTP {status}" + (f" ({summary})" if summary else "")
            if status in (401, 403):
                hint = _("check the server's API key and its NetBackup role (jobs need |MANAGE|JOBS| view)")
                raise NetBackupAuthError(f"{text}; {hint}", endpoint=endpoint, status=status, error_code=code)
            if status in RETRYABLE:
                raise NetBackupUnavailableError(
                    _("%(text)s after %(attempts)d attempts") % {"text": text, "attempts": self.max_attempts},
                    endpoint=endpoint,
                    status=status,
                    error_code=code,
                )
            raise NetBackupHTTPError(text, endpoint=endpoint, status=status, error_code=code)
        if status == 204 or not response.content:
            return {}
        try:
            body = response.json()
        except ValueError as exc:
            raise NetBackupProtocolError(
                _("%(endpoint)s: the answer is not valid JSON (%(reason)s)") % {"endpoint": endpoint, "reason": exc},
                endpoint=endpoint,
                status=status,
            ) from None
        if not isinstance(body, dict):
            raise NetBackupProtocolError(
                _("%(endpoint)s: expected a JSON object, got %(type)s")
                % {"endpoint": endpoint, "type": type(body).__name__},
                endpoint=endpoint,
                status=status,
            )
        return body

    # --- jobs ----------------------------------------------------------------------------

    def iter_failed_jobs(self, *, since: datetime | None = None, page_limit: int = MAX_PAGE_LIMIT) -> Iterator[JobPage]:
        """Pages of finished jobs with status > 0 updated after `since`, oldest update first.

        Sorting on lastUpdateTime is what lets the caller advance its watermark page by page.
        """
        params = {
            "filter": failed_jobs_filter(since),
            "sort": "lastUpdateTime",
            "page[limit]": max(1, min(int(page_limit), MAX_PAGE_LIMIT)),
        }
        cursor: str | None = None
        seen: set[str] = set()
        number = 0
        while True:
            number += 1
            query = dict(params)
            if cursor:
                query["page[after]"] = cursor
            endpoint = f"GET {JOBS_PATH}"
            body = self.get(JOBS_PATH, query)
            data = body.get("data", [])
            if data is None:
                data = []
            if not isinstance(data, list):
                raise NetBackupProtocolError(
                    _("%(endpoint)s: 'data' should be a list of jobs") % {"endpoint": endpoint}, endpoint=endpoint
                )
            meta = body.get("meta") or {}
            pagination = meta.get("pagination") if isinstance(meta, dict) else None
            if pagination is not None and not isinstance(pagination, dict):
                raise NetBackupProtocolError(
                    _("%(endpoint)s: 'meta.pagination' should be an object") % {"endpoint": endpoint},
                    endpoint=endpoint,
                )
            following = (pagination or {}).get("next")
            following = str(following) if following not in (None, "") else None
            if following is not None and following in seen:
                raise NetBackupProtocolError(
                    _("%(endpoint)s: the server returned cursor %(cursor)r twice; stopping to avoid a loop")
                    % {"endpoint": endpoint, "cursor": following},
                    endpoint=endpoint,
                )
            if following is not None:
                seen.add(following)
            if not data:
                following = None
            yield JobPage(number=number, items=data, next_cursor=following)
            if following is None:
                return
            cursor = following

    def try_logs(self, job_id: int) -> list[dict]:
        path = f"{JOBS_PATH}/{int(job_id)}/try-logs"
        body = self.get(path)
        data = body.get("data", [])
        if isinstance(data, dict):
            data = [data]
        if not isinstance(data, list):
            raise NetBackupProtocolError(
                _("%(endpoint)s: 'data' should be a list of tries") % {"endpoint": f"GET {path}"},
                endpoint=f"GET {path}",
            )
        return data


def _first(attrs: dict, *names):
    for name in names:
        value = attrs.get(name)
        if value not in (None, ""):
            return value
    return None


def format_try_logs(tries: list[dict]) -> str:
    """Try-log resources as text for diagnosis: a header per try, then each line with time and severity.

    Accepts the documented names (tryLog, tryStartTime) and those real servers send (tryLogEntries,
    tryStartTimestamp).
    """
    blocks = []

    def number_of(item):
        attrs = item.get("attributes") if isinstance(item, dict) else None
        value = (attrs or {}).get("tryNumber")
        return value if isinstance(value, int) else 0

    for item in sorted((t for t in tries if isinstance(t, dict)), key=number_of):
        attrs = item.get("attributes")
        if not isinstance(attrs, dict):
            continue
        number = attrs.get("tryNumber")
        start = _first(attrs, "tryStartTime", "tryStartTimestamp")
        end = _first(attrs, "tryEndTime", "tryEndTimestamp")
        header = f"Try {number}" if number is not None else "Try"
        facts = []
        if start or end:
            facts.append(f"{start or '?'} - {end or '?'}")
        if attrs.get("tryMediaServer"):
            facts.append(f"media server {attrs['tryMediaServer']}")
        if facts:
            header += f" ({', '.join(facts)})"
        code = attrs.get("tryStatusCode")
        message = attrs.get("tryStatusMessage")
        if code is not None:
            header += f": status {code}"
            if message:
                header += f": {message}"
        elif message:
            header += f": {message}"
        lines = [header]
        entries = attrs.get("tryLog")
        if entries is None:
            entries = attrs.get("tryLogEntries")
        for entry in entries or []:
            if isinstance(entry, str):
                lines.append(entry)
                continue
            if not isinstance(entry, dict):
                continue
            pieces = [str(entry[key]) for key in ("timestamp", "severity") if entry.get(key)]
            pieces.append(str(entry.get("message") or ""))
            lines.append(" ".join(pieces).rstrip())
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
