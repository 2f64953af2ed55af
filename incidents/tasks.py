"""Background work of the incidents app, on Django's Tasks framework (worker: `manage.py db_worker`).

Periodic polling is a chain: each run of `poll_netbackup_servers(reschedule=True)` enqueues the
next one `NETBACKUP_POLL_INTERVAL_SECONDS` later. `ensure_poll_chain()` (also
`manage.py poll_netbackup --schedule`) starts the chain or finds the link already waiting; a lock
around "look for a waiting link, else enqueue one" keeps it to a single chain however many
workers or deploy hooks call it. Polling itself locks per server, so overlapping runs are safe.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connections, router
from django.tasks import TaskResultStatus, task
from django.utils import timezone

from .polling import poll_servers, pollable_servers

logger = logging.getLogger(__name__)

# Arbitrary, fixed id for PostgreSQL's advisory lock guarding the chain ("vbip" + 1).
CHAIN_LOCK_KEY = 0x7662697001


@dataclass
class PollChain:
    task_id: str
    run_after: datetime | None
    created: bool


@task()
def poll_netbackup_servers(server_ids: list[int] | None = None, reschedule: bool = False) -> dict:
    """Poll every poll-enabled NetBackup server (or those of `server_ids` among them) and store new failures.

    Idempotent: the watermark and the ingest make a repeated run fetch and store nothing twice.
    """
    try:
        servers = pollable_servers()
        if server_ids:
            servers = servers.filter(pk__in=server_ids)
        results = poll_servers(servers)
    finally:
        # Reschedule even when something above blew up: a broken chain would silently stop polling.
        chain = ensure_poll_chain() if reschedule else None
    return {
        "servers": [r.as_dict() for r in results],
        "next_run_after": chain.run_after.isoformat() if chain and chain.run_after else None,
    }


def _database_backend(backend) -> bool:
    try:
        from django_tasks_db.backend import DatabaseBackend
    except ImportError:  # pragma: no cover - the project depends on it
        return False
    return isinstance(backend, DatabaseBackend)


def waiting_poll_chain():
    """The queued (not yet started) link of the periodic chain, if there is one."""
    from django_tasks_db.models import DBTaskResult

    backend = poll_netbackup_servers.get_backend()
    return (
        DBTaskResult.objects.filter(
            task_path=poll_netbackup_servers.module_path,
            backend_name=backend.alias,
            status=TaskResultStatus.READY,
            args_kwargs__kwargs__reschedule=True,
        )
        .order_by("run_after")
        .first()
    )


def ensure_poll_chain(*, delay_seconds: float | None = None) -> PollChain | None:
    """Make sure exactly one periodic poll is waiting; enqueue it if none is.

    Returns None when the configured task backend cannot run tasks later (only the database
    backend can, and only its queue can be searched for a waiting link).
    """
    backend = poll_netbackup_servers.get_backend()
    if not backend.supports_defer or not _database_backend(backend):
        logger.warning(
            "periodic NetBackup polling needs the django_tasks_db backend; %s cannot schedule it",
            type(backend).__name__,
        )
        return None
    from django_tasks_db.models import DBTaskResult
    from django_tasks_db.utils import exclusive_transaction

    interval = delay_seconds if delay_seconds is not None else getattr(settings, "NETBACKUP_POLL_INTERVAL_SECONDS", 300)
    using = router.db_for_write(DBTaskResult)
    # SQLite: an exclusive transaction serialises callers. PostgreSQL: a transaction-scoped advisory
    # lock does, since two READ COMMITTED transactions could both see "no waiting link".
    with exclusive_transaction(using):
        if connections[using].vendor == "postgresql":
            with connections[using].cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CHAIN_LOCK_KEY])
        waiting = waiting_poll_chain()
        if waiting is not None:
            return PollChain(task_id=str(waiting.id), run_after=waiting.run_after, created=False)
        run_after = timezone.now() + timedelta(seconds=float(interval))
        result = poll_netbackup_servers.using(run_after=run_after).enqueue(reschedule=True)
    logger.info("next NetBackup poll at %s (task %s)", run_after.isoformat(), result.id)
    return PollChain(task_id=str(result.id), run_after=run_after, created=True)
