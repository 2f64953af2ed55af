"""Status spellings and which statuses open incidents."""

import pytest

from incidents.choices import JobSource
from incidents.jobdata import BadValue, normalise_status
from incidents.models import BackupJob, Incident
from incidents.parsers import job_from_ours
from incidents.services import ingest_jobs
from tests.conftest import api_client_for, make_status_code

from .factories import make_customer, make_job_data, make_job_payload, make_netbackup_job, make_server, netbackup_body

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("spelling", [96, "96", 96.0, "96.0", "status 96", "Status: 96", " 96 ", "EXIT STATUS 96"])
def test_every_spelling_of_a_status_means_the_same_code(spelling):
    assert normalise_status(spelling) == 96


@pytest.mark.parametrize("spelling", ["abc", 96.5, "-3", True, "status", "96 apples"])
def test_nonsense_status_is_refused_naming_the_field(spelling):
    with pytest.raises(BadValue) as caught:
        normalise_status(spelling, "status")
    assert caught.value.field == "status"


@pytest.mark.parametrize("spelling", [96, "96", 96.0, "status 96"])
def test_all_spellings_land_on_one_incident_through_the_api(curator, spelling):
    server = make_server(make_customer("ACME"))
    client = api_client_for(curator)
    response = client.post("/api/v1/jobs/", make_job_payload(server, status=spelling), format="json")
    assert response.status_code == 200, response.json()
    assert BackupJob.objects.get().status == 96
    assert Incident.objects.get().code == 96


def test_spellings_in_one_batch_collapse_into_one_incident(curator):
    server = make_server(make_customer("ACME"))
    items = [make_job_payload(server, status=spelling) for spelling in (96, "96", 96.0, "status 96")]
    response = api_client_for(curator).post("/api/v1/jobs/", items, format="json")
    assert response.json()["incidents_opened"] == 1
    assert Incident.objects.get().occurrences == 4


def test_netbackup_status_spellings_are_normalised(curator):
    server = make_server(make_customer("ACME"))
    body = netbackup_body(make_netbackup_job(status="96"), make_netbackup_job(status=96.0))
    response = api_client_for(curator).post(
        "/api/v1/jobs/?customer=ACME&server=" + server.hostname, body, format="json"
    )
    assert response.json()["created"] == 2
    assert set(BackupJob.objects.values_list("status", flat=True)) == {96}


def test_status_zero_is_success_and_opens_nothing():
    server = make_server(make_customer("ACME"))
    result = ingest_jobs(server=server, jobs=[make_job_data(status=0)], source=JobSource.API)
    assert (result.created, result.incidents_opened) == (1, 0)
    assert not Incident.objects.exists()


def test_status_one_opens_an_incident_when_the_customer_reports_warnings():
    make_status_code(code=1, level=1, message="the requested operation was partially successful", category="other")
    server = make_server(make_customer("ACME", report_warnings=True))
    result = ingest_jobs(server=server, jobs=[make_job_data(status=1)], source=JobSource.API)
    assert result.incidents_opened == 1
    incident = Incident.objects.get()
    assert incident.code == 1
    assert incident.level == 1


def test_status_one_opens_even_when_the_knowledge_base_calls_it_informational():
    make_status_code(code=1, level=0, message="the requested operation was partially successful")
    server = make_server(make_customer("ACME", report_warnings=True))
    assert ingest_jobs(server=server, jobs=[make_job_data(status=1)], source=JobSource.API).incidents_opened == 1
    assert Incident.objects.get().level == 0


def test_status_one_opens_nothing_when_the_customer_does_not_report_warnings():
    server = make_server(make_customer("ACME", report_warnings=False))
    result = ingest_jobs(server=server, jobs=[make_job_data(status=1)], source=JobSource.API)
    assert (result.created, result.incidents_opened) == (1, 0)
    assert not Incident.objects.exists()


def test_status_two_and_above_always_open_an_incident():
    server = make_server(make_customer("ACME", report_warnings=False))
    result = ingest_jobs(server=server, jobs=[make_job_data(status=2), make_job_data(status=13)], source=JobSource.API)
    assert result.incidents_opened == 2


@pytest.mark.parametrize("state", ["ACTIVE", "QUEUED", "REQUEUED", "SUSPENDED"])
def test_unfinished_job_with_a_status_opens_nothing(state):
    server = make_server(make_customer("ACME"))
    result = ingest_jobs(server=server, jobs=[make_job_data(status=96, state=state)], source=JobSource.API)
    assert (result.created, result.incidents_opened) == (1, 0)


def test_finished_job_without_status_is_rejected_naming_the_field():
    with pytest.raises(BadValue) as caught:
        job_from_ours({"job_id": 1, "state": "DONE"})
    assert caught.value.field == "status"


def test_running_job_without_status_is_accepted():
    assert job_from_ours({"job_id": 1, "state": "ACTIVE"}).status is None
