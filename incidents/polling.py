"""Poll NetBackup primary servers for failed jobs and store them.

A poll pages through `GET /admin/jobs` oldest update first. Each page is stored through the
idempotent ingest, and only then does the server's watermark move to the newest
`lastUpdateTime` on that page: when page 3 fails, pages 1-2 stay stored, the watermark sits at
the end of page 2, and the next poll starts there.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from .choices import JobSource
from .jobdata import BadValue, job_from_netbackup, parse_time
from .models import BackupJob, BackupServer
from .netbackup import (
    MAX_PAGE_LIMIT,
    JobPage,
    NetBackupClient,
    NetBackupError,
    NetBackupHTTPError,
    NetBackupProtocolError,
    format_try_logs,
)
from .parsers import rejection_from

logger = logging.getLogger(__name__)

MAX_ERROR_LENGTH = 2000


@dataclass
class PollResult:
    server_id: int
    customer: str
    hostname: str
    dry_run: bool = False
    error: str = ""
    skipped: str = ""
    pages: int = 0
    jobs: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    incidents_opened: int = 0
    incidents_updated: int = 0
    rejected: list = field(default_factory=list)
    try_logs_fetched: int = 0
    try_logs_reused: int = 0
    try_logs_missing: int = 0
    requests: int = 0
    api_version: str = ""
    watermark: datetime | None = None

    @classmethod
    def for_server(cls, server, **kwargs) -> PollResult:
        return cls(server_id=server.pk, customer=server.customer.code, hostname=server.hostname, **kwargs)

    @property
    def ok(self) -> bool:
        return not self.error and not self.skipped

    @property
    def outcome(self) -> str:
        return "failed" if self.error else "skipped" if self.skipped else "ok"

    def add(self, ingest) -> None:
        self.created += ingest.created
        self.updated += ingest.updated
        self.unchanged += ingest.unchanged
        self.incidents_opened += ingest.incidents_opened
        self.incidents_updated += ingest.incidents_updated
        self.rejected.extend(ingest.rejected)

    def as_dict(self) -> dict:
        return {
            "server_id": self.server_id,
            "customer": self.customer,
            "server": self.hostname,
            "outcome": self.outcome,
            "dry_run": self.dry_run,
            "error": self.error,
            "skipped": self.skipped,
            "pages": self.pages,
            "jobs": self.jobs,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "incidents_opened": self.incidents_opened,
            "incidents_updated": self.incidents_updated,
            "rejected": list(self.rejected),
            "try_logs_fetched": self.try_logs_fetched,
            "try_logs_reused": self.try_logs_reused,
            "try_logs_missing": self.try_logs_missing,
            "requests": self.requests,
            "api_version": self.api_version,
            "watermark": self.watermark.isoformat() if self.watermark else None,
        }

    def summary(self) -> str:
        name = f"{self.customer} {self.hostname}"
        if self.skipped:
            return _("%(server)s: skipped: %(reason)s") % {"server": name, "reason": self.skipped}
        counts = _(
            "%(pages)d page(s), %(jobs)d job(s); created %(created)d, updated %(updated)d, unchanged %(unchanged)d; "
            "incidents opened %(opened)d, updated %(inc_updated)d; rejected %(rejected)d; "
            "try-logs fetched %(fetched)d, reused %(reused)d, missing %(missing)d"
        ) % {
            "pages": self.pages,
            "jobs": self.jobs,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "opened": self.incidents_opened,
            "inc_updated": self.incidents_updated,
            "rejected": len(self.rejected),
            "fetched": self.try_logs_fetched,
            "reused": self.try_logs_reused,
            "missing": self.try_logs_missing,
        }
        if self.dry_run:
            counts = _("%(pages)d page(s), %(jobs)d job(s) would be ingested (dry run)") % {
                "pages": self.pages,
                "jobs": self.jobs,
            }
        where = _("watermark %(watermark)s, API %(version)s") % {
            "watermark": self.watermark.isoformat() if self.watermark else "-",
            "version": self.api_version or "-",
        }
        if self.error:
            return _("%(server)s: FAILED: %(error)s (%(counts)s; %(where)s)") % {
                "server": name,
                "error": self.error,
                "counts": counts,
                "where": where,
            }
        return f"{name}: {counts}; {where}"


def pollable_servers():
    """Servers the periodic poll covers: enabled, active, of an active customer."""
    return BackupServer.objects.filter(poll_enabled=True, is_active=True, customer__is_active=True).select_related(
        "customer"
    )


def poll_since(watermark: datetime | None, now: datetime) -> datetime | None:
    """Where a poll starts: just before the watermark, or a configured look-back on the first poll.

    One millisecond of overlap keeps jobs that share the watermark's timestamp across a page
    boundary from being skipped by `gt`; jobs already held are recognised and cost no try-log request.
    """
    if watermark is not None:
        return watermark - timedelta(milliseconds=1)
    hours = getattr(settings, "NETBACKUP_POLL_LOOKBACK_HOURS", 24)
    if not hours:
        return None
    return now - timedelta(hours=float(hours))


@contextmanager
def _server_lock(server, *, enabled: bool = True):
    """Yield the server while this worker holds it, or None when another worker is polling it.

    On PostgreSQL the row lock lives for one page (fetch + store), so pages commit as they go and
    an admin editing the server waits at most one page. SQLite has a single writer, which already
    serialises the stores; two pollers of one server there only repeat requests, and the idempotent
    ingest absorbs the repeat.
    """
    if not enabled or not connection.features.has_select_for_update_skip_locked:
        yield server
        return
    with transaction.atomic():
        held = BackupServer.objects.select_for_update(skip_locked=True).filter(pk=server.pk).exists()
        yield server if held else None


def _redact(text: str, secret: str) -> str:
    if secret and len(secret) >= 4:
        text = text.replace(secret, "[redacted]")
    return text


def _lenient_update_time(item) -> datetime | None:
    try:
        return parse_time(item["attributes"]["lastUpdateTime"], "attributes.lastUpdateTime")
    except (BadValue, KeyError, TypeError):
        return None


def _try_log_text(client: NetBackupClient, job, result: PollResult) -> str:
    try:
        tries = client.try_logs(job.job_id)
    except (NetBackupHTTPError, NetBackupProtocolError) as exc:
        # One aged-out or garbled try-log must not block every later job behind the watermark;
        # the job is stored with its status code, which is enough to open and diagnose the incident.
        logger.warning("try-logs of job %s unavailable: %s", job.job_id, exc)
        result.try_logs_missing += 1
        return ""
    result.try_logs_fetched += 1
    return format_try_logs(tries)


def _advance_watermark(server, newest: datetime) -> None:
    # Conditional so two pollers (or a slow one finishing late) can only move it forward.
    BackupServer.objects.filter(pk=server.pk).filter(
        Q(poll_watermark__isnull=True) | Q(poll_watermark__lt=newest)
    ).update(poll_watermark=newest)
    if server.poll_watermark is None or newest > server.poll_watermark:
        server.poll_watermark = newest


def _store_page(server, client: NetBackupClient, page: JobPage, result: PollResult, *, dry_run: bool) -> None:
    from .services import ingest_jobs

    result.jobs += len(page.items)
    jobs, rejected, stamps = [], [], []
    ids = []
    for item in page.items:
        try:
            ids.append(int(item["attributes"]["jobId"]))
        except (KeyError, TypeError, ValueError):
            continue
    held = dict(BackupJob.objects.filter(server=server, job_id__in=ids).values_list("job_id", "last_update_time"))
    for index, item in enumerate(page.items, start=1):
        location = f"page {page.number} item {index}"
        try:
            job = job_from_netbackup(item, location)
        except BadValue as exc:
            rejected.append(rejection_from(exc, location))
            stamp = _lenient_update_time(item)
            if stamp is not None:
                stamps.append(stamp)
            continue
        if job.last_update_time is not None:
            stamps.append(job.last_update_time)
        if not dry_run and job.status is not None and job.status >= 1:
            known = held.get(job.job_id)
            if known is not None and job.last_update_time is not None and known >= job.last_update_time:
                result.try_logs_reused += 1  # the ingest will leave it unchanged anyway
            else:
                job.details = _try_log_text(client, job, result)
        jobs.append(job)
    newest = max(stamps, default=None)
    if dry_run:
        result.rejected.extend(rejected)
        if newest is not None and (result.watermark is None or newest > result.watermark):
            result.watermark = newest
        return
    with transaction.atomic():
        outcome = ingest_jobs(server=server, jobs=jobs, source=JobSource.POLL, rejected=rejected)
        if newest is not None:
            _advance_watermark(server, newest)
    result.add(outcome)
    result.watermark = server.poll_watermark


def _record(server, result: PollResult, when: datetime) -> None:
    changes = {"last_polled_at": when, "last_poll_error": result.error[:MAX_ERROR_LENGTH]}
    if result.api_version and result.api_version != server.api_version:
        changes["api_version"] = result.api_version
    BackupServer.objects.filter(pk=server.pk).update(**changes)
    for name, value in changes.items():
        setattr(server, name, value)


def poll_server(
    server: BackupServer,
    *,
    dry_run: bool = False,
    page_limit: int | None = None,
    client_options: dict | None = None,
) -> PollResult:
    """Fetch the server's failed jobs since its watermark and store them page by page.

    Never raises for NetBackup or storage problems: they end the poll and are recorded on the
    server (`last_poll_error`) and in the result, so one bad server does not stop the others.
    """
    server.refresh_from_db(fields=["poll_watermark", "api_version", "api_base_url", "api_key", "ca_certificate"])
    result = PollResult.for_server(server, dry_run=dry_run)
    result.watermark = server.poll_watermark
    now = timezone.now()
    limit = page_limit or getattr(settings, "NETBACKUP_POLL_PAGE_LIMIT", MAX_PAGE_LIMIT)
    client = None
    try:
        client = NetBackupClient.for_server(server, **(client_options or {}))
        pages = client.iter_failed_jobs(since=poll_since(server.poll_watermark, now), page_limit=limit)
        while True:
            with _server_lock(server, enabled=not dry_run) as held:
                if held is None:
                    if result.pages == 0:
                        result.skipped = _("another worker is polling this server")
                    # Otherwise the other worker took over between two pages and carries on from the watermark.
                    break
                page = next(pages, None)
                if page is None:
                    break
                result.pages += 1
                _store_page(server, client, page, result, dry_run=dry_run)
            if page.next_cursor is None:
                break
    except NetBackupError as exc:
        result.error = _redact(str(exc), server.api_key)
    except Exception as exc:
        # A bug or a database problem on one server must not stop the polls of the others.
        logger.exception("polling %s failed", server.hostname)
        result.error = _redact(f"{type(exc).__name__}: {exc}", server.api_key)
    finally:
        if client is not None:
            result.api_version = client.api_version
            result.requests = client.requests_sent
            client.close()
    if result.error:
        logger.warning("poll of %s failed after %d page(s): %s", server.hostname, result.pages, result.error)
    if not dry_run and not result.skipped:
        _record(server, result, now)
    return result


def poll_servers(servers=None, **options) -> list[PollResult]:
    """Poll each server (default: every pollable one) in turn."""
    servers = pollable_servers() if servers is None else servers
    return [poll_server(server, **options) for server in servers]
