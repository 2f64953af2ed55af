"""POST /api/v1/jobs/ (our shape and NetBackup bodies), GET /api/v1/jobs/, customers and servers."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from incidents.choices import CustomerRole, JobSource
from incidents.models import BackupJob, BackupServer, Customer, Incident
from incidents.permissions import grant
from tests.conftest import api_client_for, make_user

from .factories import make_customer, make_job_payload, make_netbackup_job, make_server, netbackup_body

pytestmark = pytest.mark.django_db

JOBS = "/api/v1/jobs/"


@pytest.fixture
def acme():
    return make_server(make_customer("ACME"), hostname="nbu01.acme.local")


@pytest.fixture
def globex():
    return make_server(make_customer("GLOBEX"), hostname="nbu01.globex.local")


@pytest.fixture
def acme_integration(acme):
    user = make_user("acme-bot")
    grant(user, acme.customer, CustomerRole.INTEGRATION)
    return api_client_for(user)


def nb_url(server):
    return f"{JOBS}?customer={server.customer.code}&server={server.hostname}"


# --------------------------------------------------------------------------- our shape


def test_one_job_in_our_shape_is_stored_and_opens_an_incident(acme, acme_integration):
    response = acme_integration.post(JOBS, make_job_payload(acme, job_id=1234), format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["created"] == 1 and body["incidents_opened"] == 1 and body["rejected"] == []
    job = BackupJob.objects.get()
    assert (job.job_id, job.status, job.source) == (1234, 58, JobSource.API)
    assert job.try_log.startswith("Error bpbrm")
    assert job.incident.customer == acme.customer


def test_list_with_one_bad_item_stores_the_good_ones_and_names_the_bad_field(acme, acme_integration):
    items = [make_job_payload(acme), make_job_payload(acme, status="abc"), make_job_payload(acme, ended_at="yesterday")]
    response = acme_integration.post(JOBS, items, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["created"] == 1
    assert [(r["index"], r["field"]) for r in body["rejected"]] == [(1, "status"), (2, "ended_at")]
    assert "status" in body["rejected"][0]["reason"] and "abc" in body["rejected"][0]["reason"]
    assert BackupJob.objects.count() == 1


def test_nothing_accepted_answers_400_with_code_detail_and_rejections(acme, acme_integration):
    items = [make_job_payload(acme, job_id="x"), "not an object"]
    response = acme_integration.post(JOBS, items, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "no_job_accepted"
    assert "job_id" in body["detail"]
    assert [(r["index"], r["field"]) for r in body["rejected"]] == [(0, "job_id"), (1, "item")]
    assert body["created"] == 0


def test_repeated_post_is_idempotent(acme, acme_integration):
    items = [make_job_payload(acme, job_id=i) for i in (1, 2, 3)]
    first = acme_integration.post(JOBS, items, format="json").json()
    second = acme_integration.post(JOBS, items, format="json")
    assert second.status_code == 200
    assert (first["created"], first["incidents_opened"]) == (3, 1)
    body = second.json()
    assert (body["created"], body["updated"], body["unchanged"]) == (0, 0, 3)
    assert (body["incidents_opened"], body["incidents_updated"]) == (0, 0)
    assert Incident.objects.get().occurrences == 3


def test_items_for_several_servers_land_on_each(acme, curator):
    other = make_server(acme.customer, hostname="nbu02.acme.local")
    items = [make_job_payload(acme, job_id=1), make_job_payload(other, job_id=1)]
    response = api_client_for(curator).post(JOBS, items, format="json")
    assert response.json()["created"] == 2
    assert set(BackupJob.objects.values_list("server__hostname", flat=True)) == {"nbu01.acme.local", "nbu02.acme.local"}


def test_query_parameters_fill_in_customer_and_server_of_our_shape(acme, acme_integration):
    payload = make_job_payload(acme)
    del payload["customer"], payload["server"]
    response = acme_integration.post(nb_url(acme), payload, format="json")
    assert response.status_code == 200
    assert BackupJob.objects.get().server == acme


def test_unknown_customer_or_server_is_rejected_never_created(acme, curator):
    items = [make_job_payload(acme, customer="NOPE"), make_job_payload(acme, server="ghost.acme.local")]
    response = api_client_for(curator).post(JOBS, items, format="json")
    assert response.status_code == 400
    rejected = response.json()["rejected"]
    assert [(r["index"], r["field"]) for r in rejected] == [(0, "customer"), (1, "server")]
    assert "NOPE" in rejected[0]["reason"] and "ghost.acme.local" in rejected[1]["reason"]
    assert Customer.objects.count() == 1 and BackupServer.objects.count() == 1


def test_server_of_another_customer_is_unknown_for_this_one(acme, globex, curator):
    response = api_client_for(curator).post(JOBS, make_job_payload(acme, server=globex.hostname), format="json")
    assert response.status_code == 400
    assert response.json()["rejected"][0]["field"] == "server"


def test_missing_customer_is_rejected_naming_the_field(acme, curator):
    payload = make_job_payload(acme)
    del payload["customer"]
    response = api_client_for(curator).post(JOBS, payload, format="json")
    assert response.status_code == 400
    assert response.json()["rejected"][0]["field"] == "customer"


def test_invalid_json_is_a_400_parse_error(acme_integration):
    response = acme_integration.post(JOBS, data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_empty_list_is_a_400(acme_integration):
    response = acme_integration.post(JOBS, [], format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "no_job_accepted"


def test_oversized_body_gets_413(acme, acme_integration, settings):
    settings.MAX_UPLOAD_BYTES = 2048
    items = [make_job_payload(acme, details="x" * 500) for _ in range(10)]
    response = acme_integration.post(JOBS, items, format="json")
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert not BackupJob.objects.exists()


# --------------------------------------------------------------------------- NetBackup bodies


def test_netbackup_body_is_ingested_as_is(acme, acme_integration):
    body = netbackup_body(
        make_netbackup_job(1, status=0), make_netbackup_job(2, status=96), make_netbackup_job(3, status=1)
    )
    response = acme_integration.post(nb_url(acme), body, format="json")
    assert response.status_code == 200
    result = response.json()
    assert (result["created"], result["incidents_opened"]) == (3, 2)
    job = BackupJob.objects.get(job_id=2)
    assert (job.source, job.client, job.policy, job.schedule, job.job_type) == (
        JobSource.NETBACKUP_JSON,
        "web01",
        "FS_Daily",
        "Full",
        "BACKUP",
    )
    assert job.raw["attributes"]["jobId"] == 2
    assert job.last_update_time is not None


def test_netbackup_repeat_with_same_last_update_time_is_unchanged_and_newer_updates(acme, acme_integration):
    job = make_netbackup_job(10)
    acme_integration.post(nb_url(acme), netbackup_body(job), format="json")
    again = acme_integration.post(nb_url(acme), netbackup_body(job), format="json").json()
    assert (again["unchanged"], again["incidents_updated"]) == (1, 0)
    later = timezone.now() + timedelta(minutes=5)
    newer = make_netbackup_job(10, lastUpdateTime=later.isoformat(), kilobytesTransferred=512)
    updated = acme_integration.post(nb_url(acme), netbackup_body(newer), format="json").json()
    assert updated["updated"] == 1
    assert BackupJob.objects.get(job_id=10).kilobytes == 512
    older = make_netbackup_job(10, lastUpdateTime=(later - timedelta(hours=1)).isoformat(), kilobytesTransferred=1)
    assert acme_integration.post(nb_url(acme), netbackup_body(older), format="json").json()["unchanged"] == 1
    assert BackupJob.objects.get(job_id=10).kilobytes == 512


def test_netbackup_bad_item_is_rejected_by_index_naming_the_attribute(acme, acme_integration):
    body = netbackup_body(make_netbackup_job(1), make_netbackup_job(2, status="broken"), {"type": "job"})
    response = acme_integration.post(nb_url(acme), body, format="json")
    assert response.status_code == 200
    rejected = response.json()["rejected"]
    assert [(r["index"], r["field"]) for r in rejected] == [(1, "attributes.status"), (2, "attributes")]


def test_netbackup_body_without_query_parameters_is_a_400_naming_them(acme, acme_integration):
    response = acme_integration.post(JOBS, netbackup_body(make_netbackup_job()), format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == "customer" and "customer" in body["detail"]
    response = acme_integration.post(f"{JOBS}?customer=ACME", netbackup_body(make_netbackup_job()), format="json")
    assert response.json()["field"] == "server"


def test_netbackup_body_for_unknown_customer_or_server_is_a_400(acme, curator):
    client = api_client_for(curator)
    response = client.post(f"{JOBS}?customer=NOPE&server=x", netbackup_body(make_netbackup_job()), format="json")
    assert response.status_code == 400 and response.json()["field"] == "customer"
    response = client.post(f"{JOBS}?customer=ACME&server=ghost", netbackup_body(make_netbackup_job()), format="json")
    assert response.status_code == 400 and response.json()["field"] == "server"
    assert not BackupJob.objects.exists()


def test_vendor_spec_example_body_is_accepted(acme, acme_integration, shared_dir):
    path = shared_dir / "data" / "netbackup-api" / "spec-examples.json"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    body = json.loads(path.read_text())["job"]
    response = acme_integration.post(nb_url(acme), body, format="json")
    assert response.status_code == 200, response.json()
    job = BackupJob.objects.get()
    assert (job.job_id, job.status, job.job_type, job.state) == (1, 0, "IMAGEDELETE", "DONE")
    assert not Incident.objects.exists()


JSON_TYPES = {"integer": int, "number": (int, float), "string": str, "boolean": bool}


@pytest.mark.parametrize("spec", ["admin_11.2.yaml", "admin_10.3.yaml"])
def test_factory_jobs_carry_the_vendor_job_schema_attributes_with_their_types(shared_dir, spec):
    """The shared test helper builds jobs the way the vendor spec describes them."""
    yaml = pytest.importorskip("yaml")
    path = shared_dir / "data" / "netbackup-api" / spec
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    schemas = yaml.safe_load(path.read_text())["components"]["schemas"]
    properties = schemas["getJobsResponse"]["properties"]["data"]["items"]["properties"]["attributes"]["properties"]
    attributes = make_netbackup_job(1)["attributes"]
    assert set(attributes) == set(properties)
    for name, schema in properties.items():
        expected = JSON_TYPES.get(schema.get("type"))
        if expected is not None:
            assert isinstance(attributes[name], expected), (name, schema.get("type"), attributes[name])


# --------------------------------------------------------------------------- permissions


def test_integration_for_one_customer_cannot_ingest_for_another(acme, globex, acme_integration):
    response = acme_integration.post(JOBS, make_job_payload(globex), format="json")
    assert response.status_code == 403
    assert "GLOBEX" in response.json()["detail"]
    response = acme_integration.post(nb_url(globex), netbackup_body(make_netbackup_job()), format="json")
    assert response.status_code == 403
    assert not BackupJob.objects.exists()


def test_mixed_request_with_a_forbidden_customer_stores_nothing(acme, globex, acme_integration):
    items = [make_job_payload(acme), make_job_payload(globex)]
    assert acme_integration.post(JOBS, items, format="json").status_code == 403
    assert not BackupJob.objects.exists()


@pytest.mark.parametrize("persona", ["engineer", "viewer"])
def test_engineers_and_viewers_cannot_ingest(acme, persona, request):
    user = request.getfixturevalue(persona)
    grant(user, acme.customer, CustomerRole.ENGINEER if persona == "engineer" else CustomerRole.VIEWER)
    response = api_client_for(user).post(JOBS, make_job_payload(acme), format="json")
    assert response.status_code == 403


def test_read_only_token_cannot_ingest(acme):
    user = make_user("ro-bot")
    grant(user, acme.customer, CustomerRole.INTEGRATION)
    response = api_client_for(user, read_only=True).post(JOBS, make_job_payload(acme), format="json")
    assert response.status_code == 403


def test_anonymous_cannot_ingest(acme, anon_client):
    assert anon_client.post(JOBS, make_job_payload(acme), format="json").status_code == 401


@pytest.mark.parametrize("persona", ["curator", "admin_user"])
def test_curators_and_staff_ingest_for_any_customer(acme, globex, persona, request):
    client = api_client_for(request.getfixturevalue(persona))
    response = client.post(JOBS, [make_job_payload(acme), make_job_payload(globex)], format="json")
    assert response.status_code == 200
    assert response.json()["created"] == 2


# --------------------------------------------------------------------------- GET /jobs/


@pytest.fixture
def some_jobs(acme, globex, curator):
    client = api_client_for(curator)
    now = timezone.now()
    client.post(
        JOBS,
        [
            make_job_payload(acme, job_id=1, status=0, client="web01", ended_at=(now - timedelta(days=2)).isoformat()),
            make_job_payload(acme, job_id=2, status=58, client="web02", policy="DB_Daily"),
            make_job_payload(globex, job_id=3, status=96),
        ],
        format="json",
    )


def test_job_list_shows_only_customers_the_user_may_see(acme, some_jobs, engineer):
    grant(engineer, acme.customer, CustomerRole.ENGINEER)
    body = api_client_for(engineer).get(JOBS).json()
    assert body["count"] == 2
    assert {row["customer"] for row in body["results"]} == {"ACME"}
    assert "raw" not in body["results"][0]


def test_job_detail_of_another_customer_is_404(acme, globex, some_jobs, engineer):
    grant(engineer, acme.customer, CustomerRole.ENGINEER)
    client = api_client_for(engineer)
    hidden = BackupJob.objects.get(job_id=3)
    assert client.get(f"{JOBS}{hidden.pk}/").status_code == 404
    visible = BackupJob.objects.get(job_id=2)
    detail = client.get(f"{JOBS}{visible.pk}/").json()
    assert detail["try_log"] and detail["raw"]["job_id"] == 2


def test_user_without_customers_sees_no_jobs(some_jobs, viewer):
    assert api_client_for(viewer).get(JOBS).json()["count"] == 0


@pytest.mark.parametrize(
    "query, expected",
    [
        ("customer=acme", {1, 2}),
        ("server=nbu01.globex.local", {3}),
        ("status=58", {2}),
        ("failed=true", {2, 3}),
        ("client=web01", {1, 3}),
        ("policy=db_daily", {2}),
        ("state=done", {1, 2, 3}),
    ],
)
def test_job_list_filters(some_jobs, curator, query, expected):
    body = api_client_for(curator).get(f"{JOBS}?{query}").json()
    assert {row["job_id"] for row in body["results"]} == expected


def test_job_list_filters_by_date_range(some_jobs, curator):
    since = (timezone.now() - timedelta(days=1)).isoformat()
    body = api_client_for(curator).get(JOBS, {"since": since}).json()
    assert {row["job_id"] for row in body["results"]} == {2, 3}
    body = api_client_for(curator).get(JOBS, {"until": since}).json()
    assert {row["job_id"] for row in body["results"]} == {1}


def test_job_list_is_paginated(some_jobs, curator):
    body = api_client_for(curator).get(JOBS, {"page_size": 2}).json()
    assert body["count"] == 3 and len(body["results"]) == 2 and body["next"]


# --------------------------------------------------------------------------- customers and servers


def test_curator_creates_a_customer(curator):
    response = api_client_for(curator).post(
        "/api/v1/customers/", {"code": "INITECH", "name": "Initech", "tier": "gold"}, format="json"
    )
    assert response.status_code == 201, response.json()
    customer = Customer.objects.get(code="INITECH")
    assert customer.tier == "gold" and not customer.live_execution_enabled


def test_live_execution_cannot_be_switched_on_through_the_api(curator):
    api_client_for(curator).post(
        "/api/v1/customers/", {"code": "X1", "name": "X", "live_execution_enabled": True}, format="json"
    )
    assert Customer.objects.get(code="X1").live_execution_enabled is False


def test_duplicate_customer_code_is_a_400_naming_code(acme, curator):
    response = api_client_for(curator).post("/api/v1/customers/", {"code": "acme", "name": "Again"}, format="json")
    assert response.status_code == 400
    assert response.json()["field"] == "code"


def test_bad_maintenance_window_is_a_400_naming_the_field(curator):
    response = api_client_for(curator).post(
        "/api/v1/customers/",
        {"code": "MW", "name": "MW", "maintenance_windows": [{"weekday": 9, "start": "01:00", "end": "02:00"}]},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["field"] == "maintenance_windows"


@pytest.mark.parametrize("persona", ["engineer", "viewer", "integration"])
def test_only_curators_and_staff_create_customers_and_servers(acme, persona, request):
    client = api_client_for(request.getfixturevalue(persona))
    assert client.post("/api/v1/customers/", {"code": "NEW", "name": "New"}, format="json").status_code == 403
    response = client.post("/api/v1/servers/", {"customer": "ACME", "hostname": "nbu09"}, format="json")
    assert response.status_code == 403
    assert not Customer.objects.filter(code="NEW").exists()


def test_customer_list_is_restricted(acme, globex, engineer):
    grant(engineer, acme.customer, CustomerRole.VIEWER)
    client = api_client_for(engineer)
    assert [row["code"] for row in client.get("/api/v1/customers/").json()["results"]] == ["ACME"]
    assert client.get("/api/v1/customers/GLOBEX/").status_code == 404
    assert client.get("/api/v1/customers/ACME/").status_code == 200


def test_server_api_key_is_write_only(acme, curator):
    client = api_client_for(curator)
    response = client.post(
        "/api/v1/servers/",
        {
            "customer": "ACME",
            "hostname": "nbu02.acme.local",
            "api_base_url": "https://nbu02.acme.local:1556/netbackup",
            "api_key": "secret-key-value",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert "api_key" not in response.json() and response.json()["has_api_key"] is True
    server = BackupServer.objects.get(hostname="nbu02.acme.local")
    assert server.api_key == "secret-key-value"
    for url in ("/api/v1/servers/", f"/api/v1/servers/{server.pk}/"):
        assert "secret-key-value" not in client.get(url).content.decode()


def test_server_for_unknown_customer_or_duplicate_host_is_a_400_naming_the_field(acme, curator):
    client = api_client_for(curator)
    response = client.post("/api/v1/servers/", {"customer": "NOPE", "hostname": "nbu05"}, format="json")
    assert response.status_code == 400 and response.json()["field"] == "customer"
    response = client.post("/api/v1/servers/", {"customer": "ACME", "hostname": "NBU01.acme.local"}, format="json")
    assert response.status_code == 400 and response.json()["field"] == "hostname"


def test_server_list_is_restricted(acme, globex, engineer):
    grant(engineer, globex.customer, CustomerRole.ENGINEER)
    client = api_client_for(engineer)
    assert [row["hostname"] for row in client.get("/api/v1/servers/").json()["results"]] == ["nbu01.globex.local"]
    assert client.get(f"/api/v1/servers/{acme.pk}/").status_code == 404


# --------------------------------------------------------------------------- values the database would refuse


def test_too_long_value_is_rejected_naming_the_field(acme, acme_integration):
    items = [make_job_payload(acme), make_job_payload(acme, client="c" * 300)]
    body = acme_integration.post(JOBS, items, format="json").json()
    assert body["created"] == 1
    assert [(r["index"], r["field"]) for r in body["rejected"]] == [(1, "client")]


def test_nul_characters_are_dropped_not_fatal(acme, acme_integration):
    payload = make_job_payload(acme, job_id=42, details="bad\u0000byte", note="x\u0000y", policy="P\u0000")
    response = acme_integration.post(JOBS, payload, format="json")
    assert response.status_code == 200, response.json()
    job = BackupJob.objects.get(job_id=42)
    assert (job.try_log, job.policy, job.raw["note"]) == ("badbyte", "P", "xy")


def test_inactive_customer_or_server_is_rejected(acme, curator):
    other = make_server(acme.customer, hostname="nbu02.acme.local", is_active=False)
    response = api_client_for(curator).post(JOBS, [make_job_payload(other)], format="json")
    assert response.status_code == 400
    assert response.json()["rejected"][0]["field"] == "server"
    acme.customer.is_active = False
    acme.customer.save()
    response = api_client_for(curator).post(JOBS, [make_job_payload(acme)], format="json")
    assert response.json()["rejected"][0]["field"] == "customer"
