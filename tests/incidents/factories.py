"""Builders for customers, servers and job payloads, shared by the incidents tests.

Keep these simple and stable: other test modules import them.

- make_customer(code="ACME", **overrides) -> Customer
- make_server(customer=None, hostname=None, **overrides) -> BackupServer
- make_job_payload(server=None, **overrides) -> dict in our own POST /api/v1/jobs/ shape
- make_netbackup_job(job_id=None, **attributes) -> one JSON:API `job` resource as GET /admin/jobs returns it
- netbackup_body(*jobs, next_cursor=None) -> {"data": [...], "meta": {"pagination": ...}}
- make_job_data(**overrides) -> incidents.jobdata.JobData
"""

import itertools
from datetime import timedelta

from django.utils import timezone

from incidents.jobdata import JobData
from incidents.models import BackupServer, Customer
from tests.incidents.nbjobs import build_job_attributes, iso, job_resource

_job_ids = itertools.count(500_000)


def next_job_id() -> int:
    return next(_job_ids)


def make_customer(code: str = "ACME", **overrides) -> Customer:
    values = {"code": code, "name": f"{code} Corporation"}
    values.update(overrides)
    return Customer.objects.create(**values)


def make_server(customer: Customer | None = None, hostname: str | None = None, **overrides) -> BackupServer:
    customer = customer or make_customer()
    values = {"hostname": hostname or f"nbu01.{customer.code.lower()}.local"}
    values.update(overrides)
    return BackupServer.objects.create(customer=customer, **values)


def make_job_payload(server: BackupServer | None = None, /, **overrides) -> dict:
    """A failed (status 58) job in our own shape, ended now; `job_id` is unique unless given.

    `server` (positional) fills in "customer" and "server"; overrides may still replace them by name.
    """
    now = timezone.now()
    payload = {
        "customer": server.customer.code if server else "ACME",
        "server": server.hostname if server else "nbu01.acme.local",
        "job_id": next_job_id(),
        "job_type": "BACKUP",
        "state": "DONE",
        "status": 58,
        "client": "web01",
        "policy": "FS_Daily",
        "schedule": "Full",
        "started_at": (now - timedelta(minutes=5)).isoformat(),
        "ended_at": now.isoformat(),
        "details": "Error bpbrm (pid=4242) cannot connect to client web01 (58)",
    }
    payload.update(overrides)
    return payload


def make_netbackup_job(job_id: int | None = None, **attributes) -> dict:
    """One `job` resource with the full attribute set of the vendor's job schema.

    Defaults describe a finished backup that failed with status 58 and was last updated now;
    pass attributes by their vendor names to change them (`status=0`, `clientName="db01"`).
    """
    job_id = next_job_id() if job_id is None else job_id
    now = timezone.now()
    values = build_job_attributes(job_id, updated=now, endTime=iso(now))
    values.update(attributes)
    return job_resource(values)


def netbackup_body(*jobs: dict, next_cursor: str | None = None) -> dict:
    return {
        "data": list(jobs),
        "meta": {"pagination": {"limit": max(len(jobs), 1), "next": next_cursor or ""}},
    }


def make_job_data(**overrides) -> JobData:
    """A JobData as a parser would produce it: failed with 58, ended now."""
    now = timezone.now()
    values = {
        "job_id": next_job_id(),
        "status": 58,
        "state": "DONE",
        "job_type": "BACKUP",
        "client": "web01",
        "policy": "FS_Daily",
        "schedule": "Full",
        "started_at": now - timedelta(minutes=5),
        "ended_at": now,
        "details": "",
    }
    values.update(overrides)
    return JobData(**values)
