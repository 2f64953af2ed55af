"""Polling NetBackup servers: pages stored, watermark, failures recorded, the command and the task."""

import logging
import threading
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.tasks import TaskResultStatus
from django.test import override_settings
from django_tasks_db.models import DBTaskResult

from incidents.choices import JobSource
from incidents.models import BackupJob, BackupServer, Incident
from incidents.netbackup import format_time
from incidents.polling import poll_server, poll_servers
from incidents.tasks import ensure_poll_chain, poll_netbackup_servers, waiting_poll_chain
from tests.incidents.factories import make_customer, make_server
from tests.incidents.fake_netbackup import API_KEY, FakeNetBackup, parse_iso

NOW = datetime.now(UTC).replace(microsecond=0)
IMMEDIATE_TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
FAST = {"sleep": lambda seconds: None, "timeout": 5}


@pytest.fixture
def nbu():
    with FakeNetBackup() as server:
        yield server


def server_for(nbu, customer=None, **overrides) -> BackupServer:
    values = {
        "api_base_url": nbu.base_url,
        "api_key": API_KEY,
        "ca_certificate": nbu.ca_pem,
        "poll_enabled": True,
    }
    values.update(overrides)
    return make_server(customer or make_customer(), **values)


def add_failures(nbu, count, *, start=NOW - timedelta(hours=2), **options):
    """`count` failed jobs on three clients, updated a minute apart, oldest first."""
    return [nbu.add_job(client=f"client{i % 3}", updated=start + timedelta(minutes=i), **options) for i in range(count)]


def newest(jobs):
    return max(parse_iso(j["lastUpdateTime"]) for j in jobs)


def poll(server, **options):
    options.setdefault("client_options", FAST)
    return poll_server(server, **options)


# --- pages, watermark, idempotency ---------------------------------------------------------


@pytest.mark.django_db
def test_poll_stores_every_page_and_moves_the_watermark_to_the_newest_job(nbu):
    jobs = add_failures(nbu, 7)
    nbu.add_job(status=0, updated=NOW - timedelta(minutes=5))  # success: not asked for
    nbu.add_job(status=0, state="ACTIVE", updated=NOW - timedelta(minutes=4))  # still running
    server = server_for(nbu)

    result = poll(server, page_limit=3)

    assert result.ok, result.error
    assert (result.pages, result.jobs, result.created) == (3, 7, 7)
    assert result.try_logs_fetched == 7
    stored = BackupJob.objects.filter(server=server)
    assert sorted(stored.values_list("job_id", flat=True)) == sorted(j["jobId"] for j in jobs)
    assert set(stored.values_list("source", flat=True)) == {JobSource.POLL}
    job = stored.get(job_id=jobs[0]["jobId"])
    assert "status 58: can't connect to client" in job.try_log
    assert "ERROR Error bpbrm (pid=30112) cannot connect on socket to client0" in job.try_log
    assert "EXITING with status 58" in job.try_log
    assert Incident.objects.filter(server=server).count() == 3  # one per client fingerprint
    assert result.incidents_opened == 3 and result.incidents_updated == 4
    server.refresh_from_db()
    assert server.poll_watermark == newest(jobs)
    assert server.last_polled_at is not None
    assert server.last_poll_error == ""
    assert server.api_version == "14.0"


@pytest.mark.django_db
def test_polling_again_stores_nothing_twice_and_fetches_no_try_log_again(nbu):
    add_failures(nbu, 5)
    server = server_for(nbu)
    first = poll(server, page_limit=2)
    occurrences = sorted(Incident.objects.values_list("occurrences", flat=True))
    nbu.requests.clear()

    second = poll(server, page_limit=2)

    assert first.created == 5
    assert (second.created, second.updated) == (0, 0)
    assert second.incidents_opened == second.incidents_updated == 0
    assert BackupJob.objects.count() == 5
    assert sorted(Incident.objects.values_list("occurrences", flat=True)) == occurrences
    assert nbu.requests_to(r"/admin/jobs/\d+/try-logs") == []
    # The second poll starts at the watermark (one millisecond of overlap for equal timestamps).
    sent = nbu.requests_to("/admin/jobs")[0].param("filter")
    assert sent.endswith(f"lastUpdateTime gt {format_time(first.watermark - timedelta(milliseconds=1))}")


@pytest.mark.django_db
def test_jobs_updated_after_the_watermark_are_picked_up_next_time(nbu):
    jobs = add_failures(nbu, 2)
    server = server_for(nbu)
    poll(server)
    later = nbu.add_job(status=96, client="db01", updated=NOW - timedelta(minutes=1))
    retried = dict(jobs[0], status=13, lastUpdateTime=(NOW - timedelta(seconds=30)).isoformat())
    nbu.jobs[jobs[0]["jobId"]] = retried  # the same job, failed again after a restart

    result = poll(server)

    assert (result.created, result.updated) == (1, 1)
    assert BackupJob.objects.get(job_id=later["jobId"]).status == 96
    assert BackupJob.objects.get(job_id=jobs[0]["jobId"]).status == 13
    server.refresh_from_db()
    assert server.poll_watermark == NOW - timedelta(seconds=30)


@pytest.mark.django_db
def test_partial_successes_are_fetched_and_stored(nbu):
    warning = nbu.add_job(status=1, updated=NOW - timedelta(minutes=3))
    server = server_for(nbu, make_customer("WARN", report_warnings=True))

    poll(server)

    job = BackupJob.objects.get(job_id=warning["jobId"])
    assert job.status == 1
    assert "partially successful" in job.try_log
    assert Incident.objects.filter(server=server, code=1).count() == 1


@pytest.mark.django_db
def test_first_poll_looks_back_a_configured_number_of_hours(nbu):
    recent = nbu.add_job(updated=NOW - timedelta(hours=1))
    nbu.add_job(updated=NOW - timedelta(hours=5))
    server = server_for(nbu)

    with override_settings(NETBACKUP_POLL_LOOKBACK_HOURS=2):
        poll(server)

    assert list(BackupJob.objects.values_list("job_id", flat=True)) == [recent["jobId"]]
    clause = nbu.requests_to("/admin/jobs")[0].param("filter").rsplit(" gt ", 1)[1]
    assert abs(parse_iso(clause) - (datetime.now(UTC) - timedelta(hours=2))) < timedelta(minutes=1)


@pytest.mark.django_db
def test_a_zero_look_back_fetches_the_whole_history_on_the_first_poll(nbu):
    nbu.add_job(updated=NOW - timedelta(days=30))
    server = server_for(nbu)
    with override_settings(NETBACKUP_POLL_LOOKBACK_HOURS=0):
        poll(server)
    assert nbu.requests_to("/admin/jobs")[0].param("filter") == "state eq 'DONE' and status gt 0"
    assert BackupJob.objects.count() == 1


@pytest.mark.django_db
def test_try_logs_in_the_spelling_real_servers_use_are_stored():
    with FakeNetBackup(try_log_style="real") as nbu:
        job = nbu.add_job(status=58, updated=NOW - timedelta(minutes=2))
        server = server_for(nbu)
        poll(server)
    text = BackupJob.objects.get(job_id=job["jobId"]).try_log
    assert text.startswith("Try 1 (")
    assert "EXITING with status 58" in text


# --- failures ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_busy_server_is_retried_and_the_poll_succeeds(nbu):
    jobs = add_failures(nbu, 2)
    nbu.busy(2, path="/admin/jobs")
    slept = []
    server = server_for(nbu)

    result = poll(server, client_options={"sleep": slept.append, "backoff_seconds": 0.5})

    assert result.ok and result.created == 2
    assert len(slept) == 2
    server.refresh_from_db()
    assert server.poll_watermark == newest(jobs)
    assert server.last_poll_error == ""


@pytest.mark.django_db
def test_a_rejected_key_records_the_error_keeps_the_watermark_and_does_not_retry():
    with FakeNetBackup(api_key="the-key-nbu-expects") as nbu:
        add_failures(nbu, 2)
        watermark = NOW - timedelta(days=1)
        server = server_for(nbu, poll_watermark=watermark)
        result = poll(server)

    assert not result.ok and result.outcome == "failed"
    assert "HTTP 401" in result.error and "Authentication failed" in result.error
    assert len(nbu.requests) == 1
    server.refresh_from_db()
    assert server.poll_watermark == watermark
    assert "HTTP 401" in server.last_poll_error
    assert server.last_polled_at is not None
    assert API_KEY not in server.last_poll_error
    assert BackupJob.objects.count() == 0


@pytest.mark.django_db
def test_malformed_json_fails_the_poll_with_a_protocol_error_and_stores_nothing(nbu):
    add_failures(nbu, 2)
    nbu.malformed("/admin/jobs")
    server = server_for(nbu)

    result = poll(server)

    assert "GET /admin/jobs" in result.error and "not valid JSON" in result.error
    server.refresh_from_db()
    assert server.poll_watermark is None
    assert "not valid JSON" in server.last_poll_error
    assert BackupJob.objects.count() == 0


@pytest.mark.django_db
def test_a_failure_mid_pagination_keeps_the_stored_pages_and_the_next_poll_finishes_the_rest(nbu):
    jobs = add_failures(nbu, 5)
    later_pages = nbu.busy(times=None, path="/admin/jobs")
    later_pages.when = lambda request: request.param("page[after]") is not None
    server = server_for(nbu)

    broken = poll(server, page_limit=2)

    assert broken.pages == 1 and "HTTP 503" in broken.error
    assert sorted(BackupJob.objects.values_list("job_id", flat=True)) == [j["jobId"] for j in jobs[:2]]
    server.refresh_from_db()
    assert server.poll_watermark == newest(jobs[:2])
    assert "HTTP 503" in server.last_poll_error

    later_pages.times = 0  # the server recovers
    nbu.requests.clear()
    healed = poll(server, page_limit=2)

    assert healed.ok, healed.error
    assert healed.created == 3 and healed.updated == 0
    assert BackupJob.objects.count() == 5
    assert BackupJob.objects.values("job_id").distinct().count() == 5
    assert Incident.objects.count() == 3
    assert sum(Incident.objects.values_list("occurrences", flat=True)) == 5
    # Only the jobs not yet held cost a try-log request.
    fetched = sorted(int(r.path.split("/")[3]) for r in nbu.requests_to(r"/admin/jobs/\d+/try-logs"))
    assert fetched == [j["jobId"] for j in jobs[2:]]
    server.refresh_from_db()
    assert server.poll_watermark == newest(jobs)
    assert server.last_poll_error == ""


@pytest.mark.django_db
def test_a_page_that_cannot_be_stored_leaves_the_watermark_at_the_last_stored_page(nbu, monkeypatch):
    from incidents import services

    jobs = add_failures(nbu, 4)
    real_ingest, calls = services.ingest_jobs, []

    def ingest_failing_on_page_two(**kwargs):
        calls.append(kwargs["jobs"])
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real_ingest(**kwargs)

    monkeypatch.setattr(services, "ingest_jobs", ingest_failing_on_page_two)
    server = server_for(nbu)

    result = poll(server, page_limit=2)

    assert "RuntimeError: disk full" in result.error
    assert sorted(BackupJob.objects.values_list("job_id", flat=True)) == [j["jobId"] for j in jobs[:2]]
    server.refresh_from_db()
    assert server.poll_watermark == newest(jobs[:2])
    assert "disk full" in server.last_poll_error


@pytest.mark.django_db
def test_a_job_whose_try_log_is_gone_is_stored_without_it_and_the_poll_goes_on(nbu):
    jobs = add_failures(nbu, 3)
    nbu.add_fault(status=404, path=f"/admin/jobs/{jobs[1]['jobId']}/try-logs", times=None)
    server = server_for(nbu)

    result = poll(server)

    assert result.ok and result.created == 3
    assert (result.try_logs_fetched, result.try_logs_missing) == (2, 1)
    assert BackupJob.objects.get(job_id=jobs[1]["jobId"]).try_log == ""
    server.refresh_from_db()
    assert server.poll_watermark == newest(jobs)


@pytest.mark.django_db
def test_a_timeout_is_retried_with_backoff_and_the_poll_succeeds(nbu):
    add_failures(nbu, 1)
    nbu.slow(3.0, times=1, path="/admin/jobs")
    slept = []
    server = server_for(nbu)

    result = poll(server, client_options={"sleep": slept.append, "timeout": 0.5, "backoff_seconds": 0.4})

    assert result.ok and result.created == 1
    assert len(slept) == 1 and 0.2 <= slept[0] <= 0.4


@pytest.mark.django_db
def test_an_item_the_parser_refuses_is_reported_and_the_others_are_stored(nbu):
    good = nbu.add_job(updated=NOW - timedelta(minutes=9))
    bad = nbu.add_job(updated=NOW - timedelta(minutes=8), startTime="sometime yesterday")
    server = server_for(nbu)

    result = poll(server)

    assert result.created == 1
    assert [r["location"] for r in result.rejected] == ["page 1 item 2"]
    assert "startTime" in result.rejected[0]["reason"]
    assert list(BackupJob.objects.values_list("job_id", flat=True)) == [good["jobId"]]
    server.refresh_from_db()
    assert server.poll_watermark == parse_iso(bad["lastUpdateTime"])  # no need to fetch it again


@pytest.mark.django_db
def test_a_server_without_an_api_url_records_a_clear_error(nbu):
    server = server_for(nbu, api_base_url="")
    result = poll(server)
    assert "No API base URL" in result.error
    server.refresh_from_db()
    assert "No API base URL" in server.last_poll_error


@pytest.mark.django_db
def test_the_api_key_never_reaches_the_logs(nbu, caplog):
    caplog.set_level(logging.DEBUG)
    add_failures(nbu, 3)
    server = server_for(nbu)
    poll(server, page_limit=1)  # a clean poll
    nbu.busy(times=None)
    poll(server)  # retries, then gives up
    nbu.faults.clear()
    nbu.api_key = "rotated-on-the-server"
    poll(server)  # refused key
    stranger = make_server(
        server.customer, "nbu02.acme.local", api_base_url=nbu.base_url, api_key=API_KEY, poll_enabled=True
    )
    poll(stranger)  # TLS failure: private CA not trusted

    assert len(caplog.records) > 10
    assert API_KEY not in caplog.text
    stranger.refresh_from_db()
    assert "TLS verification of 127.0.0.1 failed" in stranger.last_poll_error
    assert all(API_KEY not in (s.last_poll_error or "") for s in BackupServer.objects.all())


# --- versions ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_negotiated_version_is_stored_and_reused_on_the_next_poll():
    with FakeNetBackup(versions=("12.0",)) as nbu:
        add_failures(nbu, 1)
        server = server_for(nbu)
        poll(server)
        server.refresh_from_db()
        assert server.api_version == "12.0"
        nbu.requests.clear()
        poll(server)
    assert {r.headers["accept"] for r in nbu.requests} == {"application/vnd.netbackup+json;version=12.0"}


@pytest.mark.django_db
def test_a_stored_version_the_server_refuses_is_replaced_by_a_newly_negotiated_one():
    with FakeNetBackup(versions=("13.0",)) as nbu:
        server = server_for(nbu, api_version="14.0")
        result = poll(server)
    assert result.ok
    server.refresh_from_db()
    assert server.api_version == "13.0"


# --- several servers, concurrency ------------------------------------------------------------


@pytest.mark.django_db
def test_poll_servers_covers_only_enabled_active_servers(nbu):
    add_failures(nbu, 1)
    acme = make_customer("ACME")
    enabled = server_for(nbu, acme, hostname="nbu01.acme.local")
    server_for(nbu, acme, hostname="nbu02.acme.local", poll_enabled=False)
    server_for(nbu, acme, hostname="nbu03.acme.local", is_active=False)
    server_for(nbu, make_customer("GONE", is_active=False), hostname="nbu01.gone.local")

    results = poll_servers(client_options=FAST)

    assert [r.hostname for r in results] == [enabled.hostname]


@pytest.mark.django_db
def test_one_failing_server_does_not_stop_the_others(nbu):
    add_failures(nbu, 1)
    customer = make_customer()
    broken = server_for(nbu, customer, hostname="nbu00.acme.local", api_base_url="http://insecure.example")
    healthy = server_for(nbu, customer, hostname="nbu01.acme.local")

    results = {r.hostname: r for r in poll_servers(client_options=FAST)}

    assert "https://" in results[broken.hostname].error
    assert results[healthy.hostname].ok and results[healthy.hostname].created == 1


@pytest.mark.django_db
def test_dry_run_fetches_and_counts_but_stores_nothing(nbu):
    jobs = add_failures(nbu, 3)
    server = server_for(nbu)

    result = poll(server, dry_run=True, page_limit=2)

    assert (result.pages, result.jobs, result.created) == (2, 3, 0)
    assert result.watermark == newest(jobs)
    assert BackupJob.objects.count() == 0
    assert nbu.requests_to(r"/admin/jobs/\d+/try-logs") == []
    server.refresh_from_db()
    assert server.poll_watermark is None and server.last_polled_at is None


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks with SKIP LOCKED need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_a_server_another_worker_is_polling_is_skipped(nbu):
    add_failures(nbu, 2)
    server = server_for(nbu)
    locked, release = threading.Event(), threading.Event()

    def other_worker():
        try:
            with transaction.atomic():
                BackupServer.objects.select_for_update().get(pk=server.pk)
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    worker = threading.Thread(target=other_worker)
    worker.start()
    try:
        assert locked.wait(10)
        result = poll(server)
    finally:
        release.set()
        worker.join()

    assert result.outcome == "skipped" and "another worker" in result.skipped
    assert nbu.requests == []
    assert BackupJob.objects.count() == 0
    assert poll(server).created == 2  # once the other worker is done


# --- the command ---------------------------------------------------------------------------


def run_command(*args):
    out, err = StringIO(), StringIO()
    try:
        call_command("poll_netbackup", *args, stdout=out, stderr=err)
    except CommandError as exc:
        return out.getvalue(), err.getvalue(), exc
    return out.getvalue(), err.getvalue(), None


@pytest.mark.django_db
def test_command_polls_enabled_servers_and_prints_a_line_each_and_a_summary(nbu, settings):
    settings.NETBACKUP_BACKOFF_SECONDS = 0
    add_failures(nbu, 4)
    server = server_for(nbu)

    out, err, failure = run_command()

    assert failure is None, err
    lines = out.strip().splitlines()
    assert lines[0].startswith(f"{server.customer.code} {server.hostname}: 1 page(s), 4 job(s); created 4,")
    assert "incidents opened 3" in lines[0] and "API 14.0" in lines[0]
    assert lines[-1] == "Polled 1 server(s): 1 ok, 0 failed, 0 skipped."
    assert BackupJob.objects.count() == 4


@pytest.mark.django_db
def test_command_polls_a_named_server_even_when_periodic_polling_is_off(nbu):
    add_failures(nbu, 1)
    server = server_for(nbu, poll_enabled=False)
    out, _err, failure = run_command("--server", server.hostname.upper(), "--customer", server.customer.code)
    assert failure is None
    assert f"{server.hostname}: 1 page(s), 1 job(s)" in out
    assert BackupJob.objects.count() == 1


@pytest.mark.django_db
def test_command_reports_failures_and_exits_non_zero(nbu, settings):
    settings.NETBACKUP_BACKOFF_SECONDS = 0
    nbu.api_key = "something-else"
    server_for(nbu)
    out, err, failure = run_command()
    assert "FAILED" in err and "HTTP 401" in err
    assert "Polled 1 server(s): 0 ok, 1 failed, 0 skipped." in out
    assert failure is not None and "1 of 1 server(s) failed" in str(failure)
    assert API_KEY not in out + err


@pytest.mark.django_db
def test_command_dry_run_stores_nothing(nbu):
    add_failures(nbu, 2)
    server_for(nbu)
    out, _err, failure = run_command("--dry-run", "--page-limit", "1")
    assert failure is None
    assert "2 page(s), 2 job(s) would be ingested (dry run)" in out
    assert BackupJob.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--server", "nope.example"], "No server with host name 'nope.example'"),
        (["--customer", "NOPE"], "No customer with code 'NOPE'"),
        (["--page-limit", "500"], "invalid page_limit value"),
    ],
)
def test_command_names_what_it_could_not_find(nbu, args, message):
    server_for(nbu)
    _out, _err, failure = run_command(*args)
    assert failure is not None and message in str(failure)


@pytest.mark.django_db
def test_command_asks_for_a_customer_when_a_host_name_is_ambiguous(nbu):
    server_for(nbu, make_customer("ACME"), hostname="nbu01.shared")
    server_for(nbu, make_customer("BETA"), hostname="nbu01.shared")
    _out, _err, failure = run_command("--server", "nbu01.shared")
    assert failure is not None and "ACME, BETA" in str(failure) and "--customer" in str(failure)


@pytest.mark.django_db
def test_command_with_nothing_to_poll_says_so(nbu):
    out, _err, failure = run_command()
    assert failure is None and "nothing to do" in out


# --- the task ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_task_function_polls_every_enabled_server(nbu, settings):
    settings.NETBACKUP_BACKOFF_SECONDS = 0
    add_failures(nbu, 2)
    server = server_for(nbu)

    outcome = poll_netbackup_servers.func()

    assert [s["server"] for s in outcome["servers"]] == [server.hostname]
    assert outcome["servers"][0]["outcome"] == "ok" and outcome["servers"][0]["created"] == 2
    assert outcome["next_run_after"] is None
    assert BackupJob.objects.count() == 2


@pytest.mark.django_db
def test_task_is_a_valid_task_that_runs_on_the_immediate_backend(nbu, settings):
    settings.NETBACKUP_BACKOFF_SECONDS = 0
    add_failures(nbu, 1)
    server = server_for(nbu)
    with override_settings(TASKS=IMMEDIATE_TASKS):
        result = poll_netbackup_servers.enqueue(server_ids=[server.pk])
    assert result.status == TaskResultStatus.SUCCESSFUL, result.errors
    assert result.return_value["servers"][0]["created"] == 1
    assert BackupJob.objects.count() == 1


@pytest.mark.django_db
def test_rescheduling_keeps_a_single_chain_of_periodic_polls(settings):
    settings.NETBACKUP_POLL_INTERVAL_SECONDS = 600
    before = datetime.now(UTC)

    first = poll_netbackup_servers.func(reschedule=True)
    poll_netbackup_servers.func(reschedule=True)  # a second worker, or a duplicate link
    again = ensure_poll_chain()

    waiting = DBTaskResult.objects.filter(task_path=poll_netbackup_servers.module_path, status="READY")
    assert waiting.count() == 1
    link = waiting.get()
    assert link.args_kwargs == {"args": [], "kwargs": {"reschedule": True}}
    assert before + timedelta(seconds=600) <= link.run_after <= datetime.now(UTC) + timedelta(seconds=600)
    assert first["next_run_after"] == link.run_after.isoformat()
    assert again.created is False and again.task_id == str(link.id)
    assert waiting_poll_chain().pk == link.pk


@pytest.mark.django_db
def test_a_one_off_run_does_not_start_a_chain():
    poll_netbackup_servers.func()
    assert waiting_poll_chain() is None


@pytest.mark.django_db
def test_the_chain_is_rescheduled_even_when_polling_blows_up(monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr("incidents.tasks.poll_servers", explode)
    with pytest.raises(RuntimeError):
        poll_netbackup_servers.func(reschedule=True)
    assert waiting_poll_chain() is not None


@pytest.mark.django_db
def test_command_schedule_starts_the_chain_once():
    out1, _err, failure = run_command("--schedule")
    out2, _err, _failure = run_command("--schedule")
    assert failure is None
    assert "Periodic NetBackup poll queued for" in out1
    assert "already queued" in out2
    assert DBTaskResult.objects.filter(status="READY").count() == 1


@pytest.mark.django_db
def test_backends_that_cannot_defer_get_no_chain_and_the_command_says_why():
    with override_settings(TASKS=IMMEDIATE_TASKS):
        assert ensure_poll_chain() is None
        _out, _err, failure = run_command("--schedule")
    assert failure is not None and "DatabaseBackend" in str(failure)
