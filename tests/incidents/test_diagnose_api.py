"""POST /api/v1/diagnose/: who may call it, what it refuses, what it answers."""

from datetime import timedelta

import pytest
from django.utils import timezone, translation

from errorcodes.choices import LevelSource
from incidents import diagnosis
from incidents.models import BackupServer, Customer, Incident, make_fingerprint
from incidents.permissions import grant
from tests.conftest import api_client_for, make_status_code, make_user
from vbip_project.accounts import roles

URL = "/api/v1/diagnose/"


@pytest.fixture(autouse=True)
def fresh_index():
    diagnosis.reset_index()
    with translation.override("en"):
        yield
    diagnosis.reset_index()


@pytest.fixture
def kb(db):
    make_status_code(code=58, message="can't connect to client", category="network", level=1)
    make_status_code(
        code=96,
        message="unable to allocate new media for backup, storage unit has none available",
        category="media",
        level=2,
        level_source=LevelSource.CURATOR,
        recommended_action="Add media to the volume pool.",
    )


def _incident(customer, code=58, **extra):
    server, _created = BackupServer.objects.get_or_create(customer=customer, hostname=f"nbu.{customer.code}.local")
    now = timezone.now() - timedelta(days=extra.pop("days_ago", 0))
    client = extra.pop("client", f"web-{Incident.objects.count() + 1}")
    return Incident.objects.create(
        customer=customer,
        server=server,
        fingerprint=make_fingerprint(customer.pk, server.pk, client, "P", "S", "netbackup", code),
        family="netbackup",
        code=code,
        client=client,
        policy="P",
        schedule="S",
        first_seen=now,
        last_seen=now,
        **extra,
    )


@pytest.fixture
def customers(kb):
    acme = Customer.objects.create(code="ACME", name="Acme")
    beta = Customer.objects.create(code="BETA", name="Beta")
    _incident(acme, state="resolved", resolution="restarted bpcd", resolution_method="manual")
    _incident(beta, state="resolved", resolution="fixed DNS", resolution_method="manual")
    return acme, beta


@pytest.fixture
def acme_engineer(customers):
    user = make_user("eng-acme", role=roles.ENGINEERS)
    grant(user, customers[0], "engineer")
    return user


def test_anonymous_is_refused(db, anon_client):
    response = anon_client.post(URL, {"text": "EXIT STATUS 58"}, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_log_text_is_diagnosed(kb, engineer_client):
    response = engineer_client.post(
        URL, {"text": "10/23/2026 01:02:03 - Error bpbrm (pid=5579) connect failed\nEXIT STATUS 58"}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) >= {
        "status_code",
        "candidates",
        "level",
        "confidence",
        "confidence_parts",
        "evidence",
        "reasons",
        "recommended_actions",
        "similar_incidents",
    }
    assert body["status_code"]["code"] == 58 and body["status_code"]["message"] == "can't connect to client"
    assert body["level"] == 1
    assert body["evidence"][0] == "EXIT STATUS 58"
    assert body["candidates"][0]["how"] == "exact code"
    assert len(body["confidence_parts"]) == 3


def test_korean_email_is_diagnosed(kb, engineer_client):
    text = "안녕하세요.\n금일 새벽 web01 백업이 실패했습니다.\n에러 코드: 96\n확인 부탁드립니다."
    body = engineer_client.post(URL, {"text": text}, format="json").json()
    assert body["status_code"]["code"] == 96
    assert body["evidence"] == ["에러 코드: 96"]
    assert body["recommended_actions"][0] == "Add media to the volume pool."


def test_code_alone_is_enough(kb, engineer_client):
    response = engineer_client.post(URL, {"code": 96}, format="json")
    assert response.status_code == 200
    assert response.json()["status_code"]["code"] == 96


@pytest.mark.parametrize("payload", [{}, {"text": ""}, {"text": "   \n "}, {"family": "netbackup"}, {"code": None}])
def test_missing_text_without_code_is_400_naming_text(kb, engineer_client, payload):
    response = engineer_client.post(URL, payload, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == "text"
    assert body["detail"].startswith("text:")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"text": ["EXIT STATUS 58"]}, "text"),
        ({"text": "x" * 200_001}, "text"),
        ({"text": "status 58", "family": "nope"}, "family"),
        ({"code": -1}, "code"),
        ({"code": "abc"}, "code"),
        ({"code": 2**31}, "code"),
        ({"text": "status 58", "customer": "NOPE"}, "customer"),
    ],
)
def test_bad_fields_are_400_naming_the_field(kb, engineer_client, payload, field):
    response = engineer_client.post(URL, payload, format="json")
    assert response.status_code == 400
    assert response.json()["field"] == field


def test_customer_the_user_cannot_see_is_refused_like_an_unknown_one(customers, acme_engineer):
    client = api_client_for(acme_engineer)
    hidden = client.post(URL, {"text": "status 58", "customer": "BETA"}, format="json")
    unknown = client.post(URL, {"text": "status 58", "customer": "NOPE"}, format="json")
    assert hidden.status_code == unknown.status_code == 400
    assert hidden.json()["field"] == "customer"
    assert "BETA" in hidden.json()["detail"] and "Beta" not in hidden.json()["detail"]


def test_similar_incidents_are_only_of_customers_the_user_may_see(customers, acme_engineer):
    client = api_client_for(acme_engineer)
    body = client.post(URL, {"text": "status 58", "customer": "ACME"}, format="json").json()
    assert [r["customer"] for r in body["similar_incidents"]] == ["ACME"]
    assert body["similar_incidents"][0]["resolution"] == "restarted bpcd"
    # Without naming a customer the restriction still holds.
    body = client.post(URL, {"text": "status 58"}, format="json").json()
    assert [r["customer"] for r in body["similar_incidents"]] == ["ACME"]


def test_curator_sees_similar_incidents_of_every_customer_with_the_named_one_first(customers, curator_client):
    body = curator_client.post(URL, {"text": "status 58", "customer": "BETA"}, format="json").json()
    assert [r["customer"] for r in body["similar_incidents"]] == ["BETA", "ACME"]


def test_engineer_without_customers_still_diagnoses_but_sees_no_incidents(customers, engineer_client):
    response = engineer_client.post(URL, {"text": "status 58"}, format="json")
    assert response.status_code == 200
    assert response.json()["similar_incidents"] == []


@pytest.mark.parametrize("role", [roles.VIEWERS, roles.INTEGRATIONS, roles.CURATORS])
def test_any_signed_in_role_may_diagnose(kb, role):
    client = api_client_for(make_user(f"user-{role}", role=role))
    assert client.post(URL, {"text": "status 58"}, format="json").status_code == 200


def test_read_only_token_may_diagnose_because_nothing_is_saved(kb, engineer):
    client = api_client_for(engineer, read_only=True)
    assert client.post(URL, {"text": "status 58"}, format="json").status_code == 200


def test_get_is_not_allowed(kb, engineer_client):
    assert engineer_client.get(URL).status_code == 405


def test_diagnosing_saves_nothing(customers, curator_client):
    before = Incident.objects.count()
    curator_client.post(URL, {"text": "status 58", "customer": "ACME"}, format="json")
    assert Incident.objects.count() == before


def test_endpoint_is_in_the_openapi_schema(db, curator_client):
    schema = curator_client.get("/api/schema/", {"format": "json"}).json()
    assert "/api/v1/diagnose/" in schema["paths"]
    assert "post" in schema["paths"]["/api/v1/diagnose/"]
