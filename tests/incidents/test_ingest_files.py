"""File ingestion: bpdbjobs, CSV and Excel reports, JSON files; the import endpoint and the command."""

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from openpyxl import Workbook

from incidents.choices import CustomerRole, JobSource
from incidents.models import BackupJob, Incident
from incidents.parsers import detect_format, parse_bpdbjobs, parse_csv, parse_xlsx
from incidents.permissions import grant
from tests.conftest import api_client_for, make_user

from .factories import make_customer, make_job_payload, make_netbackup_job, make_server, netbackup_body

pytestmark = pytest.mark.django_db

DATA = Path(__file__).parent / "data"
IMPORT = "/api/v1/jobs/import/"


@pytest.fixture
def acme():
    return make_server(make_customer("ACME"), hostname="nbu01.acme.local")


@pytest.fixture
def acme_integration(acme):
    user = make_user("acme-bot")
    grant(user, acme.customer, CustomerRole.INTEGRATION)
    return api_client_for(user)


def upload(client, name, content, **fields):
    data = {"file": SimpleUploadedFile(name, content), "customer": "ACME", "server": "nbu01.acme.local", **fields}
    return client.post(IMPORT, data, format="multipart")


def rejected_lines(body):
    return [(entry.get("line"), entry["field"]) for entry in body["rejected"]]


# --------------------------------------------------------------------------- bpdbjobs


def test_bpdbjobs_lines_become_jobs_with_try_status_lines_as_details():
    result = parse_bpdbjobs((DATA / "bpdbjobs_all_columns.txt").read_text())
    jobs = {job.job_id: job for job in result.jobs}
    assert set(jobs) == {41234, 41235, 41236, 41240}
    failed = jobs[41234]
    assert (failed.status, failed.state, failed.job_type) == (58, "DONE", "BACKUP")
    assert (failed.policy, failed.schedule, failed.client) == ("FS_Daily", "Full", "web01.acme.local")
    assert failed.schedule_type == "FULL_BACKUP"
    assert failed.parent_job_id == 41230
    assert failed.try_count == 2
    assert failed.started_at == datetime(2026, 5, 1, 0, 0, tzinfo=UTC)
    assert failed.ended_at == datetime(2026, 5, 1, 0, 1, 5, tzinfo=UTC)
    # Escaped commas are part of the text, and every try's status lines reach the details.
    assert "for client web01.acme.local, policy FS_Daily, schedule Full" in failed.details
    assert "Connection refused (58)" in failed.details
    assert "exited with status 58: can't connect to client" in failed.details
    assert failed.details.count("try ") == 2
    success = jobs[41235]
    assert (success.status, success.kilobytes, success.schedule_type) == (0, 1048576, "DIFFERENTIAL_INCREMENTAL_BACKUP")
    running = jobs[41236]
    assert (running.state, running.status, running.ended_at) == ("ACTIVE", None, None)
    duplicate = jobs[41240]
    assert (duplicate.job_type, duplicate.status, duplicate.details) == ("DUPLICATE", 96, "")


def test_bpdbjobs_bad_lines_are_reported_by_line_naming_the_field():
    result = parse_bpdbjobs((DATA / "bpdbjobs_all_columns.txt").read_text())
    assert [(entry["line"], entry["field"]) for entry in result.rejected] == [
        (5, "jobid"),
        (6, "columns"),
        (7, "status"),
    ]


def test_bpdbjobs_import_stores_good_lines_and_opens_incidents(acme, acme_integration):
    content = (DATA / "bpdbjobs_all_columns.txt").read_bytes()
    response = upload(acme_integration, "jobs.txt", content)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["format"] == "bpdbjobs"
    assert (body["created"], body["incidents_opened"]) == (4, 2)
    assert rejected_lines(body) == [(5, "jobid"), (6, "columns"), (7, "status")]
    assert set(Incident.objects.values_list("code", flat=True)) == {58, 96}
    job = BackupJob.objects.get(job_id=41234)
    assert job.source == JobSource.BPDBJOBS
    assert "Connection refused (58)" in job.try_log
    assert job.raw["bpdbjobs"].startswith("41234,0,3,58,")


def test_bpdbjobs_reimport_changes_nothing(acme, acme_integration):
    content = (DATA / "bpdbjobs_all_columns.txt").read_bytes()
    upload(acme_integration, "jobs.txt", content)
    body = upload(acme_integration, "jobs.txt", content).json()
    assert (body["created"], body["updated"], body["unchanged"]) == (0, 0, 4)
    assert (body["incidents_opened"], body["incidents_updated"]) == (0, 0)
    assert Incident.objects.get(code=58).occurrences == 1


# --------------------------------------------------------------------------- CSV


def test_korean_csv_report_with_title_row(acme):
    result = parse_csv(
        (DATA / "daily_report_ko.csv").read_text(encoding="utf-8-sig"), customer=acme.customer, server=acme
    )
    jobs = {job.job_id: job for job in result.jobs}
    assert set(jobs) == {1001, 1002, 1003}
    failed = jobs[1001]
    assert (failed.status, failed.client, failed.policy, failed.job_type) == (58, "web01", "FS_Daily", "Full")
    assert failed.details == "can't connect to client, connection refused"
    assert failed.started_at.isoformat() == "2026-05-01T22:00:00+09:00"  # naive times are in the server's zone
    success = jobs[1002]
    assert success.status == 0
    assert success.kilobytes == 1572864  # 1.5 GB
    assert success.ended_at.isoformat() == "2026-05-01T22:30:00+09:00"  # start + 20 minutes
    assert jobs[1003].status == 1
    assert [(entry["line"], entry["field"]) for entry in result.rejected] == [
        (6, "에러코드"),
        (7, "시작시간"),
        (8, "고객사명"),
        (9, "백업서버"),
        (10, "Job ID"),
    ]
    assert "GLOBEX" in result.rejected[2]["reason"]


def test_english_csv_report_reports_lines_across_multiline_cells(acme):
    result = parse_csv((DATA / "daily_report_en.csv").read_text(), customer=acme.customer, server=acme)
    jobs = {job.job_id: job for job in result.jobs}
    assert set(jobs) == {2001, 2002, 2003}
    assert jobs[2001].status == 96
    assert jobs[2001].details.startswith("unable to allocate new media\nfor backup")
    assert jobs[2002].kilobytes == round(250.5 * 1024 * 1024)
    assert [(entry["line"], entry["field"]) for entry in result.rejected] == [(6, "Status"), (8, "Status")]
    assert "58" in result.rejected[0]["reason"]


def test_tab_separated_report_is_read(acme):
    text = (DATA / "daily_report_en.csv").read_text()
    tabbed = "\n".join(line.replace(",", "\t") for line in text.splitlines()[3:6])
    header = "Customer\tJob Type\tServer\tStatus\tStart Time\tEnd Time\tDuration (min)\tSize (GB)\tError Code"
    header += "\tError Message\tPolicy Name\tJob ID"
    result = parse_csv(header + "\n" + tabbed, customer=acme.customer, server=acme)
    assert {job.job_id for job in result.jobs} == {2002, 2003}
    assert [(entry["line"], entry["field"]) for entry in result.rejected] == [(4, "Status")]


def test_korean_csv_saved_by_excel_as_cp949_is_read(acme, acme_integration):
    content = (DATA / "daily_report_ko.csv").read_text(encoding="utf-8-sig").encode("cp949")
    body = upload(acme_integration, "report.csv", content).json()
    assert body["format"] == "csv"
    assert body["created"] == 3
    assert [entry["field"] for entry in body["rejected"]][:2] == ["에러코드", "시작시간"]


def test_csv_import_is_idempotent(acme, acme_integration):
    content = (DATA / "daily_report_en.csv").read_bytes()
    first = upload(acme_integration, "report.csv", content).json()
    second = upload(acme_integration, "report.csv", content).json()
    assert (first["created"], first["incidents_opened"]) == (3, 2)
    assert (second["created"], second["unchanged"], second["incidents_updated"]) == (0, 3, 0)
    assert BackupJob.objects.get(job_id=2001).source == JobSource.CSV


def test_csv_without_a_recognisable_header_is_a_400(acme_integration, acme):
    response = upload(acme_integration, "report.csv", b"a,b,c\n1,2,3\n")
    assert response.status_code == 400
    assert response.json()["rejected"][0]["field"] == "header"


# --------------------------------------------------------------------------- Excel


def xlsx_bytes(rows) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


XLSX_ROWS = [
    [
        "고객사명",
        "작업유형",
        "백업서버",
        "상태",
        "시작시간",
        "종료시간",
        "소요시간(분)",
        "백업크기(GB)",
        "에러코드",
        "에러메시지",
        "Policy Name",
        "Job ID",
    ],
    [
        "ACME",
        "Full",
        "nbu01",
        "실패",
        datetime(2026, 5, 3, 1, 0),
        datetime(2026, 5, 3, 1, 4),
        4,
        0,
        58,
        "연결 실패",
        "FS_Daily",
        3001.0,
    ],
    [
        "ACME",
        "Full",
        "nbu01",
        "성공",
        datetime(2026, 5, 3, 2, 0),
        datetime(2026, 5, 3, 3, 0),
        60,
        2,
        0,
        None,
        "FS_Daily",
        3002,
    ],
    [None, None, None, None, None, None, None, None, None, None, None, None],
    ["ACME", "Full", "nbu01", "실패", datetime(2026, 5, 3, 4, 0), "not a time", 4, 0, 96, None, "FS_Daily", 3003],
]


def test_xlsx_report_rows_are_read_with_row_numbers(acme):
    result = parse_xlsx(xlsx_bytes(XLSX_ROWS), customer=acme.customer, server=acme)
    jobs = {job.job_id: job for job in result.jobs}
    assert set(jobs) == {3001, 3002}
    assert jobs[3001].status == 58 and jobs[3001].details == "연결 실패"
    assert jobs[3001].started_at.isoformat() == "2026-05-03T01:00:00+09:00"
    assert jobs[3002].kilobytes == 2 * 1024 * 1024
    assert jobs[3001].raw["시작시간"] == "2026-05-03T01:00:00"
    assert [(entry["line"], entry["location"], entry["field"]) for entry in result.rejected] == [
        (5, "row 5", "종료시간")
    ]


def test_xlsx_import_through_the_api(acme, acme_integration):
    response = upload(acme_integration, "daily.xlsx", xlsx_bytes(XLSX_ROWS))
    assert response.status_code == 200
    body = response.json()
    assert (body["format"], body["created"], body["incidents_opened"]) == ("xlsx", 2, 1)
    assert rejected_lines(body) == [(5, "종료시간")]
    assert BackupJob.objects.get(job_id=3001).source == JobSource.XLSX


def test_broken_xlsx_is_a_400_naming_the_file(acme, acme_integration):
    response = upload(acme_integration, "daily.xlsx", b"PK\x03\x04 this is not a workbook")
    assert response.status_code == 400
    assert response.json()["rejected"][0]["field"] == "file"


# --------------------------------------------------------------------------- JSON files and formats


def test_json_file_in_netbackup_shape(acme, acme_integration):
    content = json.dumps(netbackup_body(make_netbackup_job(1), make_netbackup_job(2, status=0))).encode()
    body = upload(acme_integration, "jobs.json", content).json()
    assert (body["format"], body["created"], body["incidents_opened"]) == ("json", 2, 1)
    assert BackupJob.objects.get(job_id=1).source == JobSource.NETBACKUP_JSON


def test_json_file_items_for_another_customer_are_rejected(acme, acme_integration):
    items = [make_job_payload(acme, job_id=1), make_job_payload(acme, job_id=2, customer="GLOBEX")]
    body = upload(acme_integration, "jobs.json", json.dumps(items).encode()).json()
    assert body["created"] == 1
    assert [(entry["index"], entry["field"]) for entry in body["rejected"]] == [(1, "customer")]


def test_format_is_detected_from_content():
    assert detect_format((DATA / "bpdbjobs_all_columns.txt").read_bytes()) == "bpdbjobs"
    assert detect_format((DATA / "daily_report_ko.csv").read_bytes()) == "csv"
    assert detect_format(b'{"data": []}') == "json"
    assert detect_format(xlsx_bytes(XLSX_ROWS)) == "xlsx"


def test_explicit_format_overrides_detection(acme, acme_integration):
    content = (DATA / "bpdbjobs_all_columns.txt").read_bytes()
    body = upload(acme_integration, "jobs.bin", content, format="csv").json()
    assert body["format"] == "csv"
    assert body["created"] == 0


def test_unknown_format_is_a_400_naming_format(acme, acme_integration):
    response = upload(acme_integration, "x.txt", b"x", format="pdf")
    assert response.status_code == 400
    assert response.json()["field"] == "format"


# --------------------------------------------------------------------------- import endpoint rules


def test_oversized_upload_gets_413(acme, acme_integration, settings):
    settings.MAX_UPLOAD_BYTES = 1024
    response = upload(acme_integration, "big.csv", b"x" * (settings.MAX_UPLOAD_BYTES + 1))
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


def test_import_without_file_or_for_unknown_customer_names_the_field(acme, acme_integration):
    response = acme_integration.post(IMPORT, {"customer": "ACME", "server": "nbu01.acme.local"}, format="multipart")
    assert response.status_code == 400 and response.json()["field"] == "file"
    response = acme_integration.post(
        IMPORT, {"file": SimpleUploadedFile("a.csv", b"x"), "customer": "NOPE", "server": "s"}, format="multipart"
    )
    assert response.status_code == 400 and response.json()["field"] == "customer"
    response = acme_integration.post(
        IMPORT, {"file": SimpleUploadedFile("a.csv", b"x"), "customer": "ACME", "server": "ghost"}, format="multipart"
    )
    assert response.status_code == 400 and response.json()["field"] == "server"


def test_import_for_another_customer_is_403(acme, acme_integration):
    make_server(make_customer("GLOBEX"), hostname="nbu01.globex.local")
    data = {
        "file": SimpleUploadedFile("jobs.txt", (DATA / "bpdbjobs_all_columns.txt").read_bytes()),
        "customer": "GLOBEX",
        "server": "nbu01.globex.local",
    }
    assert acme_integration.post(IMPORT, data, format="multipart").status_code == 403
    assert not BackupJob.objects.exists()


def test_import_refused_to_read_only_tokens_and_engineers(acme, engineer):
    grant(engineer, acme.customer, CustomerRole.ENGINEER)
    assert upload(api_client_for(engineer), "jobs.txt", b"1,0,3,0").status_code == 403
    bot = make_user("ro-bot")
    grant(bot, acme.customer, CustomerRole.INTEGRATION)
    assert upload(api_client_for(bot, read_only=True), "jobs.txt", b"1,0,3,0").status_code == 403


# --------------------------------------------------------------------------- command


def run_command(*args, **options):
    out, err = io.StringIO(), io.StringIO()
    call_command("ingest_jobs", *args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def test_command_ingests_a_file_and_prints_summary_and_rejected_lines(acme):
    out, err = run_command(str(DATA / "daily_report_ko.csv"), customer="ACME", server="nbu01.acme.local")
    assert "created 3" in out and "rejected 5" in out and "incidents opened 2" in out
    assert "line 6: 에러코드" in err and "line 10: Job ID" in err
    assert BackupJob.objects.count() == 3


def test_command_dry_run_saves_nothing(acme):
    out, _err = run_command(
        str(DATA / "bpdbjobs_all_columns.txt"), customer="ACME", server="nbu01.acme.local", dry_run=True
    )
    assert "created 4" in out and "dry run" in out
    assert not BackupJob.objects.exists() and not Incident.objects.exists()


def test_command_rerun_is_idempotent(acme):
    path = str(DATA / "bpdbjobs_all_columns.txt")
    run_command(path, customer="ACME", server="nbu01.acme.local", format="bpdbjobs")
    out, _err = run_command(path, customer="ACME", server="nbu01.acme.local", format="bpdbjobs")
    assert "created 0, updated 0, unchanged 4" in out


@pytest.mark.parametrize(
    "options, message",
    [
        ({"customer": "NOPE", "server": "nbu01.acme.local"}, "--customer"),
        ({"customer": "ACME", "server": "ghost"}, "--server"),
    ],
)
def test_command_names_an_unknown_customer_or_server(acme, options, message):
    with pytest.raises(CommandError, match=message):
        run_command(str(DATA / "daily_report_ko.csv"), **options)


def test_command_fails_when_nothing_was_accepted(acme, tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("12,0,3,oops,P,S,c,m,1,1,1,x\n")
    with pytest.raises(CommandError):
        run_command(str(path), customer="ACME", server="nbu01.acme.local")


def test_command_reports_an_unreadable_path(acme, tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        run_command(str(tmp_path / "missing.csv"), customer="ACME", server="nbu01.acme.local")
