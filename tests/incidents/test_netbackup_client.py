"""The NetBackup REST client against a local HTTPS server that speaks the documented API."""

import json
import logging
import re
import socket
from datetime import UTC, datetime, timedelta

import pytest
import trustme

from incidents.netbackup import (
    DEFAULT_API_VERSIONS,
    NetBackupAuthError,
    NetBackupClient,
    NetBackupConfigError,
    NetBackupHTTPError,
    NetBackupProtocolError,
    NetBackupTLSError,
    NetBackupUnavailableError,
    NetBackupVersionError,
    failed_jobs_filter,
    format_time,
    format_try_logs,
)
from tests.incidents.fake_netbackup import API_KEY, FakeNetBackup, build_job_attributes, evaluate, parse_filter

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def nbu():
    with FakeNetBackup() as server:
        yield server


@pytest.fixture
def sleeps():
    return []


def client_for(nbu, sleeps=None, **options) -> NetBackupClient:
    options.setdefault("ca_certificate", nbu.ca_pem)
    options.setdefault("timeout", 5)
    options.setdefault("sleep", (sleeps if sleeps is not None else []).append)
    return NetBackupClient(nbu.base_url, options.pop("api_key", API_KEY), **options)


def collect(client, **kwargs):
    return list(client.iter_failed_jobs(**kwargs))


def add_failed_jobs(nbu, count, *, start=NOW - timedelta(hours=1), status=58):
    return [nbu.add_job(status=status, updated=start + timedelta(minutes=i)) for i in range(count)]


# --- listing and paging ------------------------------------------------------------------


def test_failed_jobs_are_listed_across_cursor_pages(nbu):
    jobs = add_failed_jobs(nbu, 5)
    with client_for(nbu) as client:
        pages = collect(client, since=NOW - timedelta(hours=2), page_limit=2)

    assert [[item["attributes"]["jobId"] for item in page.items] for page in pages] == [
        [jobs[0]["jobId"], jobs[1]["jobId"]],
        [jobs[2]["jobId"], jobs[3]["jobId"]],
        [jobs[4]["jobId"]],
    ]
    assert pages[-1].next_cursor is None
    listed = nbu.requests_to("/admin/jobs")
    assert [r.param("page[after]") for r in listed] == [None, str(jobs[1]["jobId"]), str(jobs[3]["jobId"])]
    assert {r.param("sort") for r in listed} == {"lastUpdateTime"}
    assert {r.param("page[limit]") for r in listed} == {"2"}


def test_filter_asks_for_finished_jobs_with_nonzero_status_since_the_watermark(nbu):
    since = datetime(2024, 5, 1, 10, 0, 0, 123999, tzinfo=UTC)
    with client_for(nbu) as client:
        collect(client, since=since)

    sent = nbu.requests_to("/admin/jobs")[0]
    assert sent.param("filter") == "state eq 'DONE' and status gt 0 and lastUpdateTime gt 2024-05-01T10:00:00.123Z"
    # Spaces percent-encoded, as the vendor asks for filter values, and the bracketed keys encoded.
    assert "%20eq%20" in sent.raw_query and "+" not in sent.raw_query
    assert "page%5Blimit%5D=100" in sent.raw_query


def test_server_honours_the_filter_so_partial_successes_come_but_successes_and_running_jobs_do_not(nbu):
    partial = nbu.add_job(status=1, updated=NOW - timedelta(minutes=9))
    failed = nbu.add_job(status=96, updated=NOW - timedelta(minutes=8))
    nbu.add_job(status=0, updated=NOW - timedelta(minutes=7))
    nbu.add_job(status=0, state="ACTIVE", updated=NOW - timedelta(minutes=6))
    nbu.add_job(status=58, updated=NOW - timedelta(days=3))  # before the watermark
    with client_for(nbu) as client:
        pages = collect(client, since=NOW - timedelta(hours=1))

    listed = [item["attributes"]["jobId"] for page in pages for item in page.items]
    assert listed == [partial["jobId"], failed["jobId"]]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("state eq 'DONE' and (status eq 0 or status eq 58)", True),
        ("status eq 0 and state eq 'DONE' or clientName eq 'web01'", True),
        ("status eq 0 and (state eq 'DONE' or clientName eq 'web01')", False),
        ("lastUpdateTime gt 2024-05-01T10:00:00.000Z and jobId ne 7", True),
        ("lastUpdateTime le 2024-05-01T10:00:00Z", False),
    ],
)
def test_the_fake_server_evaluates_odata_filters_like_the_vendor_documents(text, expected):
    attributes = build_job_attributes(7000, status=58, client="web01", updated=datetime(2024, 6, 1, tzinfo=UTC))
    assert evaluate(parse_filter(text), attributes) is expected


def test_the_fake_server_refuses_filters_it_cannot_read(nbu):
    nbu.add_job()
    with client_for(nbu) as client, pytest.raises(NetBackupHTTPError, match="HTTP 400.*not supported"):
        client.get("/admin/jobs", {"filter": "colour eq 'red'"})


def test_first_poll_without_a_watermark_sends_no_time_clause(nbu):
    with client_for(nbu) as client:
        collect(client, since=None)
    assert nbu.requests_to("/admin/jobs")[0].param("filter") == "state eq 'DONE' and status gt 0"


def test_an_empty_next_cursor_ends_the_paging(sleeps):
    with FakeNetBackup(last_page_next="") as nbu:
        add_failed_jobs(nbu, 3)
        with client_for(nbu) as client:
            pages = collect(client, page_limit=2)
    assert [len(p.items) for p in pages] == [2, 1]
    assert len(nbu.requests_to("/admin/jobs")) == 2


def test_a_server_repeating_a_cursor_is_stopped_instead_of_looping(nbu):
    job = nbu.add_job(status=58)
    looping = {"data": [nbu._job_resource(job)], "meta": {"pagination": {"next": "7"}}}
    nbu.add_fault(status=200, body=looping, path="/admin/jobs", times=None)
    with client_for(nbu) as client, pytest.raises(NetBackupProtocolError, match="cursor '7' twice"):
        collect(client)
    assert len(nbu.requests_to("/admin/jobs")) == 2


# --- headers, versions ---------------------------------------------------------------------


def test_requests_carry_the_raw_api_key_the_versioned_media_type_and_a_request_id(nbu):
    add_failed_jobs(nbu, 3)
    with client_for(nbu) as client:
        collect(client, page_limit=1)

    sent = nbu.requests
    assert {r.headers["authorization"] for r in sent} == {API_KEY}  # no "Bearer " prefix
    assert {r.headers["accept"] for r in sent} == {"application/vnd.netbackup+json;version=14.0"}
    request_ids = [r.headers["x-request-id"] for r in sent]
    assert len(set(request_ids)) == len(request_ids) == 3


def test_version_is_negotiated_newest_first_and_then_reused():
    with FakeNetBackup(versions=("12.0",)) as nbu:
        jobs = add_failed_jobs(nbu, 3)
        with client_for(nbu) as client:
            collect(client, page_limit=2)
            client.try_logs(jobs[0]["jobId"])
            assert client.api_version == "12.0"

    versions = [r.headers["accept"].rsplit("=", 1)[1] for r in nbu.requests]
    assert versions == ["14.0", "13.0", "12.0", "12.0", "12.0"]


def test_a_stored_version_the_server_no_longer_accepts_is_negotiated_again():
    with FakeNetBackup(versions=("13.0",)) as nbu, client_for(nbu, api_version="14.0") as client:
        collect(client)
        assert client.api_version == "13.0"
    assert [r.headers["accept"].rsplit("=", 1)[1] for r in nbu.requests] == ["14.0", "13.0"]


def test_a_stored_older_version_is_used_without_probing_newer_ones():
    with FakeNetBackup(versions=("14.0", "12.0")) as nbu, client_for(nbu, api_version="12.0") as client:
        collect(client)
    assert [r.headers["accept"] for r in nbu.requests] == ["application/vnd.netbackup+json;version=12.0"]


def test_a_server_accepting_none_of_our_versions_raises_a_version_error():
    with (
        FakeNetBackup(versions=("4.0",)) as nbu,
        client_for(nbu) as client,
        pytest.raises(NetBackupVersionError) as caught,
    ):
        collect(client)
    assert len(nbu.requests) == len(DEFAULT_API_VERSIONS)
    assert "14.0" in str(caught.value) and "9.0" in str(caught.value)
    assert client.api_version == ""


# --- failures --------------------------------------------------------------------------------


def test_a_busy_server_is_retried_with_growing_jittered_backoff(nbu, sleeps):
    add_failed_jobs(nbu, 1)
    nbu.busy(2)
    with client_for(nbu, sleeps, backoff_seconds=1.0) as client:
        pages = collect(client)

    assert len(pages[0].items) == 1
    assert len(nbu.requests_to("/admin/jobs")) == 3
    assert len(sleeps) == 2
    assert 0.5 <= sleeps[0] <= 1.0  # half fixed, half random, of 1 s
    assert 1.0 <= sleeps[1] <= 2.0  # then of 2 s


def test_retry_after_is_honoured(nbu, sleeps):
    nbu.busy(1, retry_after="7")
    with client_for(nbu, sleeps, backoff_seconds=0.1) as client:
        collect(client)
    assert sleeps == [7.0]


def test_a_retry_after_beyond_the_cap_ends_the_request_instead_of_stalling(nbu, sleeps):
    nbu.busy(1, retry_after="3600")
    with client_for(nbu, sleeps, backoff_max_seconds=60) as client, pytest.raises(NetBackupUnavailableError):
        collect(client)
    assert sleeps == []
    assert len(nbu.requests) == 1


def test_a_server_busy_past_all_attempts_raises_unavailable_with_the_vendor_message(nbu, sleeps):
    nbu.busy(times=None)
    with client_for(nbu, sleeps, max_attempts=3) as client, pytest.raises(NetBackupUnavailableError) as caught:
        collect(client)
    message = str(caught.value)
    assert "GET /admin/jobs: HTTP 503" in message
    assert "Server busy, try again later." in message
    assert "3 attempts" in message
    assert len(nbu.requests) == 3 and len(sleeps) == 2


def test_a_wrong_api_key_fails_at_once_with_a_clear_auth_error(sleeps):
    with (
        FakeNetBackup(api_key="the-right-key-123") as nbu,
        client_for(nbu, sleeps) as client,
        pytest.raises(NetBackupAuthError) as caught,
    ):
        collect(client)
    message = str(caught.value)
    assert caught.value.status == 401
    assert caught.value.error_code == 9
    assert "GET /admin/jobs: HTTP 401" in message
    assert "Authentication failed" in message
    assert "API key" in message
    assert API_KEY not in message and API_KEY not in repr(client)
    assert len(nbu.requests) == 1 and sleeps == []


def test_forbidden_is_an_auth_error_too(nbu, sleeps):
    nbu.add_fault(status=403, body={"errorCode": 8000, "errorMessage": "No permission"}, times=None)
    with client_for(nbu, sleeps) as client, pytest.raises(NetBackupAuthError, match="No permission"):
        collect(client)
    assert len(nbu.requests) == 1


def test_the_vendor_error_body_is_parsed_into_the_message(nbu):
    body = {
        "errorCode": 1234,
        "errorMessage": "Invalid filter",
        "attributeErrors": {"filter": "unknown attribute"},
        "errorDetails": ["see the API reference"],
    }
    nbu.add_fault(status=400, body=body, path="/admin/jobs")
    with client_for(nbu) as client, pytest.raises(NetBackupHTTPError) as caught:
        collect(client)
    message = str(caught.value)
    assert message.startswith("GET /admin/jobs: HTTP 400 (")
    for part in ("error code 1234", "Invalid filter", "see the API reference", "filter: unknown attribute"):
        assert part in message
    assert caught.value.error_code == 1234


def test_malformed_json_raises_a_protocol_error_naming_the_endpoint(nbu):
    nbu.malformed("/admin/jobs")
    with client_for(nbu) as client, pytest.raises(NetBackupProtocolError) as caught:
        collect(client)
    assert "GET /admin/jobs" in str(caught.value)
    assert "not valid JSON" in str(caught.value)


def test_malformed_try_logs_name_their_job_endpoint(nbu):
    job = nbu.add_job(status=58)
    nbu.malformed(r"/admin/jobs/\d+/try-logs")
    with client_for(nbu) as client, pytest.raises(NetBackupProtocolError) as caught:
        client.try_logs(job["jobId"])
    assert f"GET /admin/jobs/{job['jobId']}/try-logs" in str(caught.value)


def test_a_json_answer_of_the_wrong_shape_is_a_protocol_error(nbu):
    nbu.add_fault(status=200, body={"data": {"not": "a list"}}, path="/admin/jobs")
    with client_for(nbu) as client, pytest.raises(NetBackupProtocolError, match="'data' should be a list"):
        collect(client)


def test_a_timeout_is_retried_with_backoff(nbu, sleeps):
    add_failed_jobs(nbu, 2)
    nbu.slow(3.0, times=1)
    with client_for(nbu, sleeps, timeout=0.5, backoff_seconds=0.2) as client:
        pages = collect(client)
    assert len(pages[0].items) == 2
    assert len(nbu.requests_to("/admin/jobs")) == 2
    assert len(sleeps) == 1 and 0.1 <= sleeps[0] <= 0.2


def test_timeouts_that_persist_raise_unavailable(nbu, sleeps):
    nbu.slow(3.0, times=None)
    with client_for(nbu, sleeps, timeout=0.5, max_attempts=2) as client, pytest.raises(NetBackupUnavailableError) as e:
        collect(client)
    assert "timed out" in str(e.value) and "2 attempts" in str(e.value)
    assert len(sleeps) == 1


def test_a_refused_connection_is_retried_then_reported(sleeps):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = NetBackupClient(f"https://127.0.0.1:{port}/netbackup", API_KEY, sleep=sleeps.append, max_attempts=3)
    with client, pytest.raises(NetBackupUnavailableError, match="connection failed"):
        collect(client)
    assert len(sleeps) == 2


# --- TLS and configuration -----------------------------------------------------------------


def test_a_certificate_from_another_ca_is_refused_with_a_tls_error(nbu, sleeps):
    stranger = trustme.CA().cert_pem.bytes().decode()
    with client_for(nbu, sleeps, ca_certificate=stranger) as client, pytest.raises(NetBackupTLSError) as caught:
        collect(client)
    assert "TLS verification" in str(caught.value)
    assert "certificate" in str(caught.value).lower()
    assert nbu.requests == []  # nothing, not even the key, went over the connection
    assert sleeps == []  # no retries: a certificate does not fix itself


def test_without_a_stored_ca_the_system_cas_are_used_and_a_private_ca_is_refused(nbu):
    with client_for(nbu, ca_certificate="") as client, pytest.raises(NetBackupTLSError):
        collect(client)


def test_a_certificate_for_another_host_name_is_refused(sleeps):
    with (
        FakeNetBackup(hostnames=("nbu01.example.test",)) as nbu,
        client_for(nbu, sleeps) as client,
        pytest.raises(NetBackupTLSError) as caught,
    ):
        collect(client)
    assert "127.0.0.1" in str(caught.value)
    assert nbu.requests == [] and sleeps == []


@pytest.mark.parametrize(
    ("base_url", "message"),
    [
        ("", "No API base URL"),
        ("http://nbu01.example.test:1556/netbackup", "must be an https:// URL"),
        ("nbu01.example.test", "must be an https:// URL"),
    ],
)
def test_unusable_base_urls_are_refused(base_url, message):
    with pytest.raises(NetBackupConfigError, match=message):
        NetBackupClient(base_url, API_KEY)


def test_an_invalid_ca_certificate_is_a_config_error():
    with pytest.raises(NetBackupConfigError, match="not a valid PEM"):
        NetBackupClient("https://nbu01.example.test/netbackup", API_KEY, ca_certificate="-----BEGIN nonsense")


def test_a_missing_api_key_is_a_config_error():
    with pytest.raises(NetBackupConfigError, match="No API key"):
        NetBackupClient("https://nbu01.example.test/netbackup", "")


def test_the_api_key_is_never_logged_nor_shown(nbu, caplog, sleeps):
    caplog.set_level(logging.DEBUG)
    add_failed_jobs(nbu, 2)
    nbu.busy(1)
    errors = []
    with client_for(nbu, sleeps) as client:
        collect(client, page_limit=1)
        client.try_logs(next(iter(nbu.jobs)))
        nbu.api_key = "another-key-456"
        with pytest.raises(NetBackupAuthError) as caught:
            collect(client)
        errors.append(caught.value)
    assert caplog.records, "the client should log its requests"
    assert API_KEY not in caplog.text
    assert all(API_KEY not in str(e) and API_KEY not in repr(e) for e in errors)
    assert API_KEY not in repr(client)


# --- try-logs --------------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["spec", "real"])
def test_try_logs_in_either_spelling_become_readable_text(style):
    tries = [
        {
            "status": 1,
            "start": "2024-05-01T01:00:00Z",
            "end": "2024-05-01T01:10:00Z",
            "lines": [("2024-05-01T01:00:01Z", "INFO", "started process bpbrm (pid=11)")],
        },
        {
            "status": 58,
            "start": "2024-05-01T02:00:00Z",
            "end": "2024-05-01T02:01:00Z",
            "media_server": "media02",
            "lines": [
                ("2024-05-01T02:00:01Z", "ERROR", "Error bpbrm (pid=12) cannot connect on socket to web01"),
                ("2024-05-01T02:00:02Z", None, "Info bpbrm (pid=12) EXITING with status 58"),
            ],
        },
    ]
    with FakeNetBackup(try_log_style=style) as nbu:
        job = nbu.add_job(status=58, tries=tries)
        with client_for(nbu) as client:
            text = format_try_logs(client.try_logs(job["jobId"]))

    assert text.split("\n") == [
        "Try 1 (2024-05-01T01:00:00Z - 2024-05-01T01:10:00Z, media server media01): status 1: "
        "the requested operation was partially successful",
        "2024-05-01T01:00:01Z INFO started process bpbrm (pid=11)",
        "",
        "Try 2 (2024-05-01T02:00:00Z - 2024-05-01T02:01:00Z, media server media02): status 58: can't connect to client",
        "2024-05-01T02:00:01Z ERROR Error bpbrm (pid=12) cannot connect on socket to web01",
        "2024-05-01T02:00:02Z Info bpbrm (pid=12) EXITING with status 58",
    ]


def test_try_logs_of_the_vendor_examples_are_formatted(shared_dir):
    examples = shared_dir / "data" / "netbackup-api" / "spec-examples.json"
    if not examples.is_file():
        pytest.skip(f"{examples} is absent")
    found = [value for value in json.loads(examples.read_text()).values() if _has_try_logs(value)]
    if not found:
        pytest.skip("spec-examples.json holds no try-log example")
    text = format_try_logs(found[0]["data"])
    assert re.search(r"^Try 1 \(.+\): status \d+: ", text)
    assert re.search(r"^\S+Z (INFO|WARNING|ERROR) ", text, re.MULTILINE)


def _has_try_logs(value):
    try:
        return value["data"][0]["type"] == "parsedTryLogResponse"
    except (KeyError, IndexError, TypeError):
        return False


def test_try_logs_tolerate_missing_fields_and_order_tries_by_number():
    tries = [
        {"type": "parsedTryLogResponse", "attributes": {"tryNumber": 2, "tryStatusCode": 13, "tryLog": ["raw line"]}},
        {"type": "parsedTryLogResponse", "attributes": {"tryNumber": 1, "tryLogEntries": [{"message": "only text"}]}},
        {"type": "parsedTryLogResponse"},
        "garbage",
    ]
    assert format_try_logs(tries) == "Try 1\nonly text\n\nTry 2: status 13\nraw line"


def test_unknown_job_try_logs_are_a_404_http_error(nbu):
    with client_for(nbu) as client, pytest.raises(NetBackupHTTPError) as caught:
        client.try_logs(424242)
    assert caught.value.status == 404


# --- helpers ---------------------------------------------------------------------------------


def test_times_are_sent_in_utc_with_milliseconds_truncated_never_rounded_up():
    from zoneinfo import ZoneInfo

    seoul = datetime(2024, 5, 1, 19, 0, 0, 999999, tzinfo=ZoneInfo("Asia/Seoul"))
    assert format_time(seoul) == "2024-05-01T10:00:00.999Z"
    assert failed_jobs_filter(seoul).endswith("lastUpdateTime gt 2024-05-01T10:00:00.999Z")


def test_retry_after_is_read_as_seconds_or_as_an_http_date():
    from email.utils import format_datetime

    from incidents.netbackup import _retry_after_seconds

    in_a_minute = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    assert _retry_after_seconds("12") == 12.0
    assert 55 <= _retry_after_seconds(in_a_minute) <= 60
    assert _retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert _retry_after_seconds("soon") is None
    assert _retry_after_seconds(None) is None
