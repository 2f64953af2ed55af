"""Background work through a real worker process (manage.py db_worker), not an in-process stand-in."""

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.db import connection
from django_tasks_db.models import DBTaskResult

from incidents.models import BackupJob, Incident
from incidents.tasks import poll_netbackup_servers
from tests.incidents.factories import make_customer, make_server
from tests.incidents.fake_netbackup import API_KEY, FakeNetBackup

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    settings = connection.settings_dict
    if settings["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings['NAME']}"
    user = settings.get("USER") or "postgres"
    host = settings.get("HOST") or "127.0.0.1"
    port = settings.get("PORT") or 5432
    return f"postgres://{user}@{host}:{port}/{settings['NAME']}"


def worker(*args) -> subprocess.Popen:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DATABASE_URL": database_url(),
        "SECRET_KEY": "e2e-worker-not-secret",
        "DEBUG": "false",
        "VBIP_DOTENV": "0",
        "DJANGO_SETTINGS_MODULE": "vbip_project.settings",
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "db_worker", "--batch", "--no-startup-delay", "--no-reload", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_worker_process_polls_netbackup_and_opens_incidents():
    now = datetime.now(UTC).replace(microsecond=0)
    with FakeNetBackup() as nbu:
        for i in range(5):
            nbu.add_job(client=f"client{i % 2}", status=58, updated=now - timedelta(minutes=30 - i))
        customer = make_customer()
        server = make_server(
            customer, api_base_url=nbu.base_url, api_key=API_KEY, ca_certificate=nbu.ca_pem, poll_enabled=True
        )
        result = poll_netbackup_servers.enqueue(server_ids=[server.pk])
        assert DBTaskResult.objects.get(pk=result.id).status == "READY"

        proc = worker()
        output, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, output

    task = DBTaskResult.objects.get(pk=result.id)
    assert task.status == "SUCCESSFUL", (task.exception_class_path, task.traceback, output)
    assert BackupJob.objects.filter(server=server).count() == 5
    assert Incident.objects.filter(server=server).count() == 2  # one per client fingerprint
    assert sum(Incident.objects.filter(server=server).values_list("occurrences", flat=True)) == 5


def test_two_workers_run_one_task_once():
    if connection.vendor != "postgresql":
        pytest.skip("several workers sharing one queue is the PostgreSQL deployment; SQLite has one writer")
    now = datetime.now(UTC).replace(microsecond=0)
    with FakeNetBackup() as nbu:
        nbu.add_job(client="db01", status=96, updated=now - timedelta(minutes=10))
        customer = make_customer()
        server = make_server(
            customer, api_base_url=nbu.base_url, api_key=API_KEY, ca_certificate=nbu.ca_pem, poll_enabled=True
        )
        result = poll_netbackup_servers.enqueue(server_ids=[server.pk])
        procs = [worker(), worker()]
        outputs = [proc.communicate(timeout=120)[0] for proc in procs]
        job_list_requests = [r for r in nbu.requests if r.path.endswith("/admin/jobs")]
    assert all(proc.returncode == 0 for proc in procs), outputs
    task = DBTaskResult.objects.get(pk=result.id)
    assert task.status == "SUCCESSFUL"
    assert len(task.worker_ids) == 1
    assert len(job_list_requests) == 1
    assert Incident.objects.filter(server=server).count() == 1
