"""Deduplication, idempotency and recurrence in incidents.services.ingest_jobs."""

import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from incidents import services
from incidents.choices import IncidentState, JobSource, ResolutionMethod
from incidents.models import BackupJob, Incident, IncidentEvent
from incidents.services import ingest_jobs
from tests.conftest import make_status_code, make_user

from .factories import make_customer, make_job_data, make_server

pytestmark = pytest.mark.django_db


@pytest.fixture
def server():
    return make_server(make_customer("ACME"))


def ingest(server, *jobs, actor=None):
    return ingest_jobs(server=server, jobs=list(jobs), source=JobSource.API, actor=actor)


def test_failed_job_opens_one_incident_linked_to_the_job(server):
    make_status_code(code=58, level=1)
    job = make_job_data(job_id=11)
    result = ingest(server, job)
    assert (result.created, result.incidents_opened) == (1, 1)
    incident = Incident.objects.get()
    stored = BackupJob.objects.get(job_id=11)
    assert stored.incident_id == incident.pk
    assert (incident.code, incident.family, incident.client, incident.policy) == (58, "netbackup", "web01", "FS_Daily")
    assert incident.occurrences == 1
    assert incident.first_seen == incident.last_seen == job.ended_at


def test_repeat_failure_adds_occurrence_to_the_open_incident(server):
    first, second = make_job_data(job_id=1), make_job_data(job_id=2, ended_at=timezone.now() + timedelta(hours=1))
    ingest(server, first)
    result = ingest(server, second)
    assert (result.created, result.incidents_opened, result.incidents_updated) == (1, 0, 1)
    incident = Incident.objects.get()
    assert incident.occurrences == 2
    assert incident.last_seen == second.ended_at
    assert set(incident.jobs.values_list("job_id", flat=True)) == {1, 2}
    event = incident.events.get(verb="occurrence")
    assert event.before["occurrences"] == 1 and event.after["occurrences"] == 2
    assert event.after["jobs"] == [2]


def test_older_repeat_keeps_the_latest_last_seen(server):
    recent = make_job_data(job_id=1)
    ingest(server, recent)
    ingest(server, make_job_data(job_id=2, ended_at=recent.ended_at - timedelta(hours=3)))
    incident = Incident.objects.get()
    assert incident.last_seen == recent.ended_at
    assert incident.occurrences == 2


def test_same_job_ingested_twice_changes_nothing(server):
    job = make_job_data(job_id=7, last_update_time=timezone.now())
    ingest(server, job)
    before = Incident.objects.get()
    result = ingest(server, make_job_data(job_id=7, last_update_time=job.last_update_time, ended_at=job.ended_at))
    assert (result.created, result.updated, result.unchanged) == (0, 0, 1)
    assert (result.incidents_opened, result.incidents_updated) == (0, 0)
    after = Incident.objects.get()
    assert after.occurrences == before.occurrences == 1
    assert IncidentEvent.objects.count() == 1  # only "opened"


def test_same_job_twice_in_one_batch_is_stored_once(server):
    job = make_job_data(job_id=7)
    result = ingest(server, job, make_job_data(job_id=7, ended_at=job.ended_at, started_at=job.started_at))
    assert (result.created, result.unchanged) == (1, 1)
    assert BackupJob.objects.count() == 1
    assert Incident.objects.get().occurrences == 1


def test_older_last_update_time_changes_nothing(server):
    now = timezone.now()
    ingest(server, make_job_data(job_id=5, status=58, last_update_time=now))
    result = ingest(server, make_job_data(job_id=5, status=0, last_update_time=now - timedelta(minutes=1)))
    assert (result.updated, result.unchanged) == (0, 1)
    assert BackupJob.objects.get(job_id=5).status == 58


def test_newer_last_update_time_updates_the_job(server):
    now = timezone.now()
    ingest(server, make_job_data(job_id=5, status=58, last_update_time=now, kilobytes=10))
    result = ingest(
        server, make_job_data(job_id=5, status=58, last_update_time=now + timedelta(minutes=1), kilobytes=99)
    )
    assert (result.updated, result.unchanged) == (1, 0)
    job = BackupJob.objects.get(job_id=5)
    assert job.kilobytes == 99
    assert job.last_update_time == now + timedelta(minutes=1)
    # Still the same failure of the same job: no second occurrence.
    assert Incident.objects.get().occurrences == 1
    assert result.incidents_updated == 0


def test_update_that_changes_the_status_moves_the_job_to_the_new_fingerprint(server):
    now = timezone.now()
    ingest(server, make_job_data(job_id=5, status=58, last_update_time=now))
    ingest(server, make_job_data(job_id=5, status=96, last_update_time=now + timedelta(minutes=1)))
    job = BackupJob.objects.get(job_id=5)
    assert job.incident.code == 96
    assert Incident.objects.count() == 2


def test_without_last_update_time_identical_content_is_unchanged_and_different_content_updates(server):
    job = make_job_data(job_id=9)
    ingest(server, job)
    same = make_job_data(job_id=9, started_at=job.started_at, ended_at=job.ended_at)
    assert ingest(server, same).unchanged == 1
    changed = make_job_data(job_id=9, started_at=job.started_at, ended_at=job.ended_at, kilobytes=1234)
    result = ingest(server, changed)
    assert result.updated == 1
    assert BackupJob.objects.get(job_id=9).kilobytes == 1234
    assert Incident.objects.get().occurrences == 1


def test_report_without_last_update_time_never_overwrites_the_api_version(server):
    ingest(server, make_job_data(job_id=9, kilobytes=1, last_update_time=timezone.now()))
    result = ingest(server, make_job_data(job_id=9, kilobytes=2))
    assert result.unchanged == 1
    assert BackupJob.objects.get(job_id=9).kilobytes == 1


def test_different_client_policy_or_schedule_is_a_different_incident(server):
    ingest(
        server,
        make_job_data(client="web01"),
        make_job_data(client="web02"),
        make_job_data(policy="DB_Daily"),
        make_job_data(schedule="Incr"),
        make_job_data(status=96),
    )
    assert Incident.objects.count() == 5


def test_same_failure_on_another_server_is_another_incident(server):
    other = make_server(server.customer, hostname="nbu02.acme.local")
    ingest(server, make_job_data())
    ingest(other, make_job_data())
    assert Incident.objects.count() == 2


def test_several_repeats_in_one_batch_open_one_incident_with_all_occurrences(server):
    result = ingest(server, *[make_job_data() for _ in range(5)])
    assert result.incidents_opened == 1
    incident = Incident.objects.get()
    assert incident.occurrences == 5
    assert incident.jobs.count() == 5


def test_new_incident_takes_level_and_diagnosis_from_the_knowledge_base(server):
    make_status_code(code=58, level=1, confidence=0.8)
    ingest(server, make_job_data(status=58))
    incident = Incident.objects.get()
    assert incident.level == 1
    assert incident.state == IncidentState.DIAGNOSED
    assert incident.status_code.code == 58
    assert incident.diagnosis["status_code"]["code"] == 58
    assert incident.sla_due == incident.first_seen + timedelta(hours=server.customer.sla_hours_level1)


def test_unknown_code_opens_an_undiagnosed_incident(server):
    ingest(server, make_job_data(status=4242))
    incident = Incident.objects.get()
    assert incident.state == IncidentState.OPEN
    assert incident.status_code is None


def test_level_zero_failure_opens_no_incident_but_the_job_is_stored(server):
    make_status_code(code=150, level=0, message="termination requested by administrator")
    result = ingest(server, make_job_data(job_id=3, status=150))
    assert (result.created, result.incidents_opened) == (1, 0)
    assert not Incident.objects.exists()
    assert BackupJob.objects.get(job_id=3).incident is None


def test_opened_event_has_the_system_actor_and_the_requesting_person(server):
    person = make_user("integrator")
    ingest(server, make_job_data(job_id=77), actor=person)
    event = IncidentEvent.objects.get()
    assert event.verb == "opened"
    assert event.system == "ingest"
    assert event.actor is None
    assert event.origin == person
    assert event.after["jobs"] == [77]


def _resolve(incident):
    return incident.transition(IncidentState.RESOLVED, reason="fixed", resolution_method=ResolutionMethod.MANUAL)


def test_recurrence_within_24_hours_reopens_and_counts():
    with time_machine.travel("2026-03-02 09:00:00+09:00", tick=False) as traveller:
        server = make_server(make_customer("ACME"))
        ingest(server, make_job_data(job_id=1))
        incident = _resolve(Incident.objects.get())
        traveller.shift(timedelta(hours=23))
        result = ingest(server, make_job_data(job_id=2))
    assert (result.incidents_opened, result.incidents_updated, result.incidents_reopened) == (0, 1, 1)
    incident.refresh_from_db()
    assert incident.state == IncidentState.OPEN
    assert incident.recurrences == 1
    assert incident.occurrences == 2
    assert incident.resolved_at is None
    event = incident.events.get(verb="reopened")
    assert event.before["state"] == "resolved" and event.after["state"] == "open"
    assert event.before["recurrences"] == 0 and event.after["recurrences"] == 1
    assert event.system == "ingest"


def test_recurrence_after_24_hours_opens_a_new_incident():
    with time_machine.travel("2026-03-02 09:00:00+09:00", tick=False) as traveller:
        server = make_server(make_customer("ACME"))
        ingest(server, make_job_data(job_id=1))
        old = _resolve(Incident.objects.get())
        traveller.shift(timedelta(hours=25))
        result = ingest(server, make_job_data(job_id=2))
    assert (result.incidents_opened, result.incidents_reopened) == (1, 0)
    old.refresh_from_db()
    assert old.state == IncidentState.RESOLVED and old.recurrences == 0
    new = Incident.objects.exclude(pk=old.pk).get()
    assert new.fingerprint == old.fingerprint
    assert new.occurrences == 1


def test_closed_incident_never_reopens():
    with time_machine.travel("2026-03-02 09:00:00+09:00", tick=False) as traveller:
        server = make_server(make_customer("ACME"))
        ingest(server, make_job_data(job_id=1))
        old = Incident.objects.get().transition(IncidentState.CLOSED, reason="not ours")
        traveller.shift(timedelta(hours=1))
        result = ingest(server, make_job_data(job_id=2))
    assert result.incidents_opened == 1
    old.refresh_from_db()
    assert old.state == IncidentState.CLOSED


def test_reopened_incident_absorbs_further_repeats_in_the_same_batch():
    with time_machine.travel("2026-03-02 09:00:00+09:00", tick=False) as traveller:
        server = make_server(make_customer("ACME"))
        ingest(server, make_job_data(job_id=1))
        incident = _resolve(Incident.objects.get())
        traveller.shift(timedelta(hours=2))
        now = timezone.now()
        result = ingest(server, make_job_data(job_id=2, ended_at=now), make_job_data(job_id=3, ended_at=now))
    assert (result.incidents_opened, result.incidents_reopened) == (0, 1)
    incident.refresh_from_db()
    assert (incident.occurrences, incident.recurrences) == (3, 1)


def test_failure_from_before_the_resolution_reported_late_does_not_reopen():
    with time_machine.travel("2026-03-02 09:00:00+09:00", tick=False) as traveller:
        server = make_server(make_customer("ACME"))
        ingest(server, make_job_data(job_id=1))
        failed_at = timezone.now() + timedelta(minutes=10)
        traveller.shift(timedelta(hours=1))
        incident = _resolve(Incident.objects.get())
        result = ingest(server, make_job_data(job_id=2, ended_at=failed_at))
    assert result.incidents_reopened == 0
    incident.refresh_from_db()
    assert incident.state == IncidentState.RESOLVED
    assert incident.occurrences == 2


def test_batch_costs_a_constant_number_of_queries(server):
    make_status_code(code=58, level=1)
    make_status_code(code=96, level=2, message="unable to allocate new media for backup")

    def run(size):
        # Half repeat existing incidents, half open new ones, plus successes and re-sent jobs.
        jobs = [make_job_data(client=f"c{i}", status=58 if i % 2 else 96) for i in range(size)]
        jobs += [make_job_data(status=0) for _ in range(size)]
        ingest(server, *[make_job_data(client=f"c{i}", status=58) for i in range(size)])
        with CaptureQueriesContext(connection) as queries:
            ingest(server, *jobs)
        return len(queries)

    small, large = run(4), run(40)
    assert small == large


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL: SQLite serialises all writers")
@pytest.mark.parametrize("same_job", [False, True], ids=["two-jobs", "same-job"])
def test_concurrent_ingests_of_one_failure_share_one_incident(monkeypatch, same_job):
    server = make_server(make_customer("ACME"))
    barrier = threading.Barrier(2, timeout=20)
    calls = {"n": 0}
    lock = threading.Lock()
    original = services._open_incidents

    def racing_open(*args):
        # Both requests have looked for an active incident and found none; only then may either insert.
        with lock:
            calls["n"] += 1
            first_round = calls["n"] <= 2
        if first_round:
            barrier.wait()
        return original(*args)

    attempts = []
    store_batch = services._store_batch

    def counting_store(context, batch):
        attempts.append(batch[0].job_id)
        return store_batch(context, batch)

    monkeypatch.setattr(services, "_open_incidents", racing_open)
    monkeypatch.setattr(services, "_store_batch", counting_store)
    ended = timezone.now()
    results, errors = [], []

    def worker(job_id):
        try:
            results.append(ingest(server, make_job_data(job_id=job_id, ended_at=ended)))
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    ids = (1, 1) if same_job else (1, 2)
    threads = [threading.Thread(target=worker, args=(job_id,)) for job_id in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors, errors
    # Two jobs: the loser's incident insert yields to the winner's row and absorbs into it (no retry).
    # The same job twice: the loser's job insert conflicts too, and its retry finds the job stored.
    assert len(attempts) == (3 if same_job else 2)
    incident = Incident.objects.get()
    assert incident.is_active
    expected = 1 if same_job else 2
    assert incident.occurrences == expected
    assert BackupJob.objects.filter(incident=incident).count() == expected
    assert sum(r.incidents_opened for r in results) == 1
    assert sum(r.incidents_updated for r in results) == (0 if same_job else 1)
    assert sum(r.created for r in results) == expected
