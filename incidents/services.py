"""Storing jobs, and turning their failures into deduplicated incidents.

`ingest_jobs` is the one entry point every ingestion path uses (the API, file imports, the
command line and the NetBackup poller). It is idempotent: the same job stored twice changes
nothing, a newer `lastUpdateTime` updates, an older or equal one is ignored.

Incident rules (see the architecture and resolution-level notes):
- status 0 is success; status 1 (partially successful) opens an incident only when the customer
  asks for warnings; 2 and above are failures.
- fingerprint = customer, server, client, policy, schedule, family, code; while an incident of a
  fingerprint is active, repeats add occurrences to it.
- a resolved incident that fails again within RECURRENCE_WINDOW of being resolved reopens and
  counts a recurrence; later, or once closed, a new incident opens.
- level 0 (informational) failures open no incident at all: the job is stored and visible in
  the job list, but there is nothing to fix. A status-1 warning is the exception: the customer
  asked for warnings, so it opens whatever its level.

Efficiency: a batch costs a constant number of queries whatever its size (one read of the
batch's jobs, one locked read of the incidents of its fingerprints, one read of the knowledge
base when it opens incidents, then multi-row writes), inside one transaction.

Concurrency: incidents are locked in id order and opened with ON CONFLICT DO NOTHING, so two
requests reporting the same failure at once queue, and the one that loses the race to open the
incident adds its failures to the winner's. A race on the same job retries the whole batch,
which then finds the job stored.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import IntegrityError, OperationalError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from errorcodes.models import StatusCode
from vbip_project.bulk import insert_rows, update_rows

from .choices import IncidentState
from .diagnosis import diagnose
from .jobdata import JobData
from .models import RECURRENCE_WINDOW, BackupJob, Incident, IncidentEvent, make_fingerprint
from .parsers import UNFINISHED_STATES, rejection

BATCH_SIZE = 1000
SYSTEM_ACTOR = "ingest"
JOB_FAMILY = "netbackup"  # job statuses are NetBackup status codes
MAX_ATTEMPTS = 4
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1

TEXT_FIELDS = ("job_type", "state", "client", "policy", "schedule", "policy_type", "schedule_type")
TEXT_LIMITS = {name: BackupJob._meta.get_field(name).max_length for name in TEXT_FIELDS}
# Fields compared when neither side carries lastUpdateTime (bpdbjobs, CSV, Excel).
CONTENT_FIELDS = (
    "parent_job_id",
    *TEXT_FIELDS,
    "status",
    "started_at",
    "ended_at",
    "kilobytes",
    "files",
    "try_count",
    "try_log",
    "last_update_time",
)
UPDATE_FIELDS = (*CONTENT_FIELDS, "raw", "source", "incident", "updated_at")
ACTIVE_STATES = frozenset(IncidentState.active())
INCIDENT_FIELDS = (
    "id",
    "fingerprint",
    "state",
    "level",
    "occurrences",
    "recurrences",
    "first_seen",
    "last_seen",
    "resolved_at",
    "resolution_method",
    "sla_due",
    "updated_at",
)


@dataclass
class IngestResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    incidents_opened: int = 0
    incidents_updated: int = 0
    incidents_reopened: int = 0  # also counted in incidents_updated
    rejected: list[dict] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return self.created + self.updated + self.unchanged

    def add(self, other: IngestResult) -> None:
        for name in ("created", "updated", "unchanged", "incidents_opened", "incidents_updated", "incidents_reopened"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.rejected.extend(other.rejected)

    def sort_rejected(self) -> None:
        self.rejected.sort(key=lambda entry: (entry.get("index", entry.get("line", -1)), entry.get("location", "")))

    def as_dict(self) -> dict:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "incidents_opened": self.incidents_opened,
            "incidents_updated": self.incidents_updated,
            "incidents_reopened": self.incidents_reopened,
            "rejected": list(self.rejected),
        }

    def summary(self) -> str:
        return _(
            "created {created}, updated {updated}, unchanged {unchanged}, rejected {rejected}; "
            "incidents opened {opened}, updated {updated_incidents} (reopened {reopened})"
        ).format(
            created=self.created,
            updated=self.updated,
            unchanged=self.unchanged,
            rejected=len(self.rejected),
            opened=self.incidents_opened,
            updated_incidents=self.incidents_updated,
            reopened=self.incidents_reopened,
        )


def ingest_jobs(*, server, jobs: list[JobData], source: str, actor=None, rejected=None) -> IngestResult:
    """Store `jobs` of `server` and open or update their incidents.

    `rejected` carries the parser's rejections so the result lists them all; jobs that cannot
    be stored (a value too long or out of range) are added to it. Each batch of BATCH_SIZE jobs
    is one transaction, retried when a concurrent request wins a race on the same rows.
    """
    result = IngestResult(rejected=list(rejected or []))
    context = _Context(
        server=server,
        customer=server.customer,
        source=source,
        origin=actor if actor is not None and getattr(actor, "is_authenticated", False) else None,
    )
    valid = []
    for job in jobs:
        problem = _validate(job)
        if problem is None:
            valid.append(job)
        else:
            field_name, reason = problem
            result.rejected.append(rejection(job.location or f"job {job.job_id}", reason, field_name))
    for start in range(0, len(valid), BATCH_SIZE):
        result.add(_store_with_retry(context, valid[start : start + BATCH_SIZE]))
    result.sort_rejected()
    return result


# --------------------------------------------------------------------------- validation


def _validate(job: JobData) -> tuple[str, str] | None:
    """Values the database would refuse, as (field, reason); strips NUL characters PostgreSQL rejects."""
    if not isinstance(job.job_id, int) or not 0 < job.job_id <= INT64_MAX:
        return "job_id", _("job_id: must be a positive whole number")
    if job.status is not None and not 0 <= job.status <= INT32_MAX:
        return "status", _("status: {value} is out of range").format(value=job.status)
    for name in ("parent_job_id", "kilobytes", "files"):
        value = getattr(job, name)
        if value is not None and not -INT64_MAX <= value <= INT64_MAX:
            return name, _("{field}: {value} is out of range").format(field=name, value=value)
    if job.try_count is not None and not 0 <= job.try_count <= INT32_MAX:
        return "try_count", _("try_count: {value} is out of range").format(value=job.try_count)
    for name in TEXT_FIELDS:
        value = getattr(job, name) or ""
        if "\x00" in value:
            value = value.replace("\x00", "")
        setattr(job, name, value)
        if len(value) > TEXT_LIMITS[name]:
            return name, _("{field}: longer than {limit} characters").format(field=name, limit=TEXT_LIMITS[name])
    if job.details and "\x00" in job.details:
        job.details = job.details.replace("\x00", "")
    if not isinstance(job.raw, dict):
        job.raw = {"value": job.raw}
    for name in ("started_at", "ended_at", "last_update_time"):
        value = getattr(job, name)
        if value is not None and (not isinstance(value, datetime) or timezone.is_naive(value)):
            return name, _("{field}: must be a date and time with a time zone").format(field=name)
    return None


# --------------------------------------------------------------------------- batches


@dataclass
class _Context:
    server: object
    customer: object
    source: str
    origin: object = None
    diagnoses: dict = field(default_factory=dict)  # (family, code, text) -> diagnosis
    knowledge: dict = field(default_factory=dict)  # (family, code) -> StatusCode | None


@dataclass
class _Hit:
    job: JobData
    fingerprint: str
    seen: datetime


def _store_with_retry(context: _Context, batch: list[JobData]) -> IngestResult:
    attempt = 0
    while True:
        attempt += 1
        try:
            with transaction.atomic():
                return _store_batch(context, batch)
        except IntegrityError:
            # A concurrent request stored one of these jobs first (races to open the same incident
            # end without an error, see _open_incidents); the retry finds the job and compares.
            if attempt >= MAX_ATTEMPTS:
                raise
        except OperationalError as exc:
            if attempt >= MAX_ATTEMPTS or not _is_transient(exc):
                raise


def _is_transient(exc: OperationalError) -> bool:
    code = getattr(getattr(exc, "__cause__", None), "pgcode", None)
    return code in ("40P01", "40001")  # deadlock detected, serialization failure


def _job_values(job: JobData) -> dict:
    return {
        "parent_job_id": job.parent_job_id,
        "job_type": job.job_type,
        "state": job.state,
        "client": job.client,
        "policy": job.policy,
        "schedule": job.schedule,
        "policy_type": job.policy_type,
        "schedule_type": job.schedule_type,
        "status": job.status,
        "started_at": job.started_at,
        "ended_at": job.ended_at,
        "kilobytes": job.kilobytes,
        "files": job.files,
        "try_count": job.try_count,
        "try_log": job.details,
        "last_update_time": job.last_update_time,
        "raw": job.raw,
    }


def _content(values: dict) -> tuple:
    return tuple(values[name] for name in CONTENT_FIELDS)


def _is_newer(new: dict, old: dict) -> bool:
    """Whether `new` should replace `old` (both dicts of CONTENT_FIELDS)."""
    new_time, old_time = new["last_update_time"], old["last_update_time"]
    if new_time is not None and old_time is not None:
        return new_time > old_time
    if new_time is not None:
        return True
    if old_time is not None:
        # A report without lastUpdateTime never overwrites what the REST API told us.
        return False
    return _content(new) != _content(old)


def _qualifies(job: JobData, customer) -> bool:
    if job.status is None or job.status == 0 or job.state in UNFINISHED_STATES:
        return False
    return job.status >= 2 or customer.report_warnings


def _store_batch(context: _Context, batch: list[JobData]) -> IngestResult:
    result = IngestResult()
    server, customer = context.server, context.customer
    now = timezone.now()

    # The same job twice in one batch: the newest wins, the others count as repeats.
    winners: dict[int, tuple[JobData, dict]] = {}
    for job in batch:
        values = _job_values(job)
        previous = winners.get(job.job_id)
        if previous is None:
            winners[job.job_id] = (job, values)
        elif _is_newer(values, previous[1]):
            winners[job.job_id] = (job, values)
            result.updated += 1
        else:
            result.unchanged += 1

    existing = {
        row["job_id"]: row
        for row in BackupJob.objects.filter(server=server, job_id__in=list(winners)).values(
            "id", "job_id", "incident_id", "incident__fingerprint", *CONTENT_FIELDS
        )
    }

    creates: list[tuple[JobData, dict]] = []
    updates: list[tuple[dict, JobData, dict]] = []
    hits: list[_Hit] = []
    for job_id, (job, values) in winners.items():
        row = existing.get(job_id)
        if row is None:
            creates.append((job, values))
        elif _is_newer(values, row):
            updates.append((row, job, values))
        else:
            result.unchanged += 1
            continue
        if not _qualifies(job, customer):
            continue
        fingerprint = make_fingerprint(
            customer.pk, server.pk, job.client, job.policy, job.schedule, JOB_FAMILY, job.status
        )
        if row is not None and row["incident_id"] and row["incident__fingerprint"] == fingerprint:
            continue  # an update of a job already counted in its incident
        seen = job.ended_at or job.last_update_time or job.started_at or now
        hits.append(_Hit(job, fingerprint, seen))
    result.created += len(creates)
    result.updated += len(updates)

    # Jobs that touch no incident are written first: the incident rows locked below stay locked
    # until commit, and concurrent batches for the same customer queue on them.
    hit_ids = {hit.job.job_id for hit in hits}
    _write_jobs(
        context,
        [c for c in creates if c[0].job_id not in hit_ids],
        [u for u in updates if u[1].job_id not in hit_ids],
        {},
        now,
    )
    links = _incidents_for(context, hits, now, result)
    _write_jobs(
        context,
        [c for c in creates if c[0].job_id in hit_ids],
        [u for u in updates if u[1].job_id in hit_ids],
        links,
        now,
    )
    return result


def _write_jobs(context: _Context, creates, updates, links: dict[int, int], now: datetime) -> None:
    if creates:
        creates.sort(key=lambda pair: pair[0].job_id)  # one lock order for concurrent batches
        insert_rows(
            BackupJob,
            [
                {
                    **values,
                    "server_id": context.server.pk,
                    "job_id": job.job_id,
                    "source": context.source,
                    "incident_id": links.get(job.job_id),
                    "ingested_at": now,
                    "updated_at": now,
                }
                for job, values in creates
            ],
        )
    if updates:
        updates.sort(key=lambda triple: triple[1].job_id)
        objects = []
        for row, job, values in updates:
            obj = BackupJob(pk=row["id"], server=context.server, job_id=job.job_id, source=context.source, **values)
            obj.incident_id = links.get(job.job_id, row["incident_id"])
            obj.updated_at = now
            objects.append(obj)
        update_rows(BackupJob, objects, list(UPDATE_FIELDS))


# --------------------------------------------------------------------------- incidents


@dataclass
class _Touch:
    """What a batch does to one existing incident."""

    incident: Incident
    before: dict
    jobs: list[int] = field(default_factory=list)
    reopened: bool = False
    last_seen: datetime | None = None


@dataclass
class _New:
    fingerprint: str
    hits: list[_Hit]


def _preferred(candidate: Incident, current: Incident) -> bool:
    candidate_active, current_active = candidate.state in ACTIVE_STATES, current.state in ACTIVE_STATES
    if candidate_active != current_active:
        return candidate_active
    return (candidate.resolved_at or candidate.last_seen) > (current.resolved_at or current.last_seen)


def _incidents_for(context: _Context, hits: list[_Hit], now: datetime, result: IngestResult) -> dict[int, int]:
    """Absorb, reopen or open incidents for `hits`; return {job id: incident id}."""
    if not hits:
        return {}
    by_fingerprint: dict[str, list[_Hit]] = defaultdict(list)
    for hit in hits:
        by_fingerprint[hit.fingerprint].append(hit)
    for group in by_fingerprint.values():
        group.sort(key=lambda hit: (hit.seen, hit.job.job_id))
    earliest = min(hit.seen for hit in hits)

    # Locked in id order so that two batches touching the same incidents queue instead of deadlocking;
    # a resolution racing with this batch waits too, and we see its result.
    candidates = (
        Incident.objects.select_for_update()
        .filter(fingerprint__in=list(by_fingerprint))
        .filter(
            Q(state__in=ACTIVE_STATES) | Q(state=IncidentState.RESOLVED, resolved_at__gte=earliest - RECURRENCE_WINDOW)
        )
        .order_by("pk")
        # The diagnosis JSON can be large and is not needed to count occurrences.
        .only(*INCIDENT_FIELDS)
    )
    current: dict[str, Incident] = {}
    for incident in candidates:
        known = current.get(incident.fingerprint)
        if known is None or _preferred(incident, known):
            current[incident.fingerprint] = incident

    touched: dict[int, _Touch] = {}
    new: list[_New] = []
    for fingerprint, group in by_fingerprint.items():
        incident = current.get(fingerprint)
        pending = None
        for hit in group:
            if pending is not None:
                pending.hits.append(hit)
                continue
            if incident is not None and incident.state in ACTIVE_STATES:
                _absorb(touched, incident, hit)
            elif incident is not None and incident.state == IncidentState.RESOLVED:
                if hit.seen < incident.resolved_at:
                    # Failed before the fix was made, reported late: part of the resolved episode.
                    _absorb(touched, incident, hit)
                elif hit.seen - incident.resolved_at <= RECURRENCE_WINDOW:
                    _reopen(touched, incident, hit, context.customer)
                else:
                    pending = _New(fingerprint, [hit])
            else:
                pending = _New(fingerprint, [hit])
        if pending is not None:
            new.append(pending)

    links: dict[int, int] = {}
    events: list[dict] = []
    created = _open_incidents(context, new, touched, now)
    for incident, pending in created:
        job_ids = [hit.job.job_id for hit in pending.hits]
        links.update(dict.fromkeys(job_ids, incident.pk))
        events.append(
            _event(
                context,
                incident,
                "opened",
                after={
                    "state": incident.state,
                    "level": incident.level,
                    "occurrences": incident.occurrences,
                    "first_seen": incident.first_seen.isoformat(),
                    "jobs": job_ids,
                },
                reason=_("Job {job} failed with status {code}.").format(job=job_ids[0], code=incident.code),
            )
        )
    if touched:
        _update_touched(touched, now)
        for touch in touched.values():
            links.update(dict.fromkeys(touch.jobs, touch.incident.pk))
            events.append(_touch_event(context, touch))
    if events:
        insert_rows(IncidentEvent, events)
    result.incidents_opened += len(created)
    result.incidents_updated += len(touched)
    result.incidents_reopened += sum(1 for touch in touched.values() if touch.reopened)
    return links


def _snapshot(incident: Incident) -> dict:
    return {
        "state": incident.state,
        "occurrences": incident.occurrences,
        "recurrences": incident.recurrences,
        "last_seen": incident.last_seen.isoformat() if incident.last_seen else None,
        "resolved_at": incident.resolved_at.isoformat() if incident.resolved_at else None,
        "resolution_method": incident.resolution_method,
        "sla_due": incident.sla_due.isoformat() if incident.sla_due else None,
    }


def _touch(touched: dict[int, _Touch], incident: Incident) -> _Touch:
    touch = touched.get(incident.pk)
    if touch is None:
        touch = touched[incident.pk] = _Touch(incident=incident, before=_snapshot(incident))
    return touch


def _absorb(touched, incident: Incident, hit: _Hit) -> None:
    touch = _touch(touched, incident)
    touch.jobs.append(hit.job.job_id)
    incident.occurrences += 1
    if hit.seen > incident.last_seen:
        incident.last_seen = hit.seen


def _reopen(touched, incident: Incident, hit: _Hit, customer) -> None:
    touch = _touch(touched, incident)
    touch.reopened = True
    touch.jobs.append(hit.job.job_id)
    incident.state = IncidentState.OPEN
    incident.recurrences += 1
    incident.occurrences += 1
    incident.last_seen = max(incident.last_seen, hit.seen)
    incident.resolved_at = None
    incident.resolution_method = ""
    hours = customer.sla_hours(incident.level)
    incident.sla_due = hit.seen + timedelta(hours=hours) if hours else None


def _update_touched(touched: dict[int, _Touch], now: datetime) -> None:
    # The rows are locked (select_for_update above), so values computed here cannot lose a
    # concurrent increment; one UPDATE covers every incident of the batch.
    fields = ["occurrences", "last_seen", "updated_at"]
    if any(touch.reopened for touch in touched.values()):
        fields += ["state", "recurrences", "resolved_at", "resolution_method", "sla_due"]
    objects = []
    for touch in touched.values():
        touch.incident.updated_at = now
        objects.append(touch.incident)
    update_rows(Incident, objects, fields)


# --------------------------------------------------------------------------- bulk row writing
#
# bulk_create and bulk_update compile every value of every row through the field's expression
# machinery (and bulk_update builds a CASE WHEN per row and field). In the ingestion benchmark
# that compilation cost more than the database itself, so the hot writes below send plain
# multi-row statements with the values adapted once per field type. Values reaching them have
# been validated (_validate) or built here; nothing user-typed is formatted into the SQL text.


def _touch_event(context: _Context, touch: _Touch) -> dict:
    incident = touch.incident
    after = _snapshot(incident)
    after["jobs"] = touch.jobs
    if touch.reopened:
        return _event(
            context,
            incident,
            "reopened",
            before=touch.before,
            after=after,
            reason=_("Failed again within {hours} hours of being resolved.").format(
                hours=int(RECURRENCE_WINDOW.total_seconds() // 3600)
            ),
        )
    keys = ("occurrences", "last_seen")
    return _event(
        context,
        incident,
        "occurrence",
        before={key: touch.before[key] for key in keys},
        after={**{key: after[key] for key in keys}, "jobs": touch.jobs},
        reason=_("The same failure happened again."),
    )


def _event(context: _Context, incident: Incident, verb: str, *, before=None, after=None, reason="") -> dict:
    return {
        "incident_id": incident.pk,
        "actor_id": None,
        "system": SYSTEM_ACTOR,
        "origin_id": context.origin.pk if context.origin is not None else None,
        "verb": verb,
        "before": before or {},
        "after": after or {},
        "reason": reason,
        "created_at": timezone.now(),
    }


# --------------------------------------------------------------------------- new incidents and diagnosis


def _knowledge(context: _Context, codes: set[int]) -> dict:
    missing = {code for code in codes if (JOB_FAMILY, code) not in context.knowledge}
    if missing:
        found = {entry.code: entry for entry in StatusCode.objects.filter(family=JOB_FAMILY, code__in=missing)}
        for code in missing:
            context.knowledge[(JOB_FAMILY, code)] = found.get(code)
    return context.knowledge


def _diagnose(context: _Context, text: str, code: int) -> dict:
    key = (JOB_FAMILY, code, text)
    if key not in context.diagnoses:
        context.diagnoses[key] = _run_diagnosis(context, text, code)
    return context.diagnoses[key]


def _run_diagnosis(context: _Context, text: str, code: int) -> dict:
    try:
        return diagnose(text, family=JOB_FAMILY, code=code, customer=context.customer)
    except ValueError:
        return {}  # a number the knowledge base cannot hold: an engineer looks at it undiagnosed


def _open_incidents(context: _Context, new: list[_New], touched: dict[int, _Touch], now: datetime):
    """Open an incident per fingerprint in `new`; return [(incident, _New)] of those opened.

    A concurrent batch may open the same fingerprint first. The insert skips those rows (ON
    CONFLICT DO NOTHING waits for the other transaction, so its incident is committed by then),
    and their failures are absorbed into the winner instead: no batch is thrown away and retried.
    """
    pending = _new_incidents(context, new)
    opened: list[tuple[Incident, _New]] = []
    for _attempt in range(MAX_ATTEMPTS):
        if not pending:
            return opened
        pending.sort(key=lambda pair: pair[0].fingerprint)  # one lock order for concurrent batches
        rows = []
        for incident, _group in pending:
            incident.created_at = incident.updated_at = now
            rows.append({field.attname: getattr(incident, field.attname) for field in _INSERTED_INCIDENT_FIELDS})
        returned = insert_rows(Incident, rows, ignore_conflicts=True, returning=("id", "fingerprint"))
        inserted = {fingerprint: pk for pk, fingerprint in returned}
        lost = []
        for incident, group in pending:
            if incident.fingerprint in inserted:
                incident.pk = inserted[incident.fingerprint]
                incident._state.adding = False
                opened.append((incident, group))
            else:
                lost.append((incident, group))
        if not lost:
            return opened
        winners = {
            incident.fingerprint: incident
            for incident in Incident.objects.select_for_update()
            .filter(fingerprint__in=[incident.fingerprint for incident, _group in lost], state__in=ACTIVE_STATES)
            .order_by("pk")
            .only(*INCIDENT_FIELDS)
        }
        pending = []
        for incident, group in lost:
            winner = winners.get(incident.fingerprint)
            if winner is None:  # opened and closed again meanwhile: try to open ours once more
                pending.append((incident, group))
                continue
            for hit in group.hits:
                _absorb(touched, winner, hit)
    if pending:
        raise IntegrityError("could neither open nor find the active incident of a fingerprint")
    return opened


_INSERTED_INCIDENT_FIELDS = [field for field in Incident._meta.concrete_fields if not field.primary_key]


def _new_incidents(context: _Context, new: list[_New]) -> list[tuple[Incident, _New]]:
    """Diagnose each new fingerprint and build its (unsaved) incident; level 0 failures open none."""
    if not new:
        return []
    knowledge = _knowledge(context, {pending.hits[0].job.status for pending in new})
    built: list[tuple[Incident, _New]] = []
    for pending in new:
        first = pending.hits[0].job
        code = first.status
        diagnosis = _diagnose(context, first.details, code)
        entry = knowledge.get((JOB_FAMILY, code))
        level = diagnosis.get("level")
        if level is None and entry is not None:
            level = entry.level
        if level == 0 and code >= 2:
            continue  # informational: nothing to fix, no incident (the job is still stored)
        confidence = diagnosis.get("confidence")
        if confidence is None and entry is not None:
            confidence = entry.confidence
        incident = Incident(
            customer=context.customer,
            server=context.server,
            fingerprint=pending.fingerprint,
            family=JOB_FAMILY,
            code=code,
            status_code=entry,
            client=first.client,
            policy=first.policy,
            schedule=first.schedule,
            level=level,
            confidence=confidence,
            state=IncidentState.DIAGNOSED if diagnosis.get("status_code") else IncidentState.OPEN,
            occurrences=len(pending.hits),
            first_seen=pending.hits[0].seen,
            last_seen=max(hit.seen for hit in pending.hits),
            diagnosis=diagnosis,
        )
        incident.sla_due = incident.compute_sla_due()
        built.append((incident, pending))
    return built
