import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from incidents import permissions
from incidents.models import Incident, IncidentEvent
from tests.conftest import api_client_for, make_user
from vbip_project.accounts import roles

from .incident_helpers import customer_with_server, make_incident


@pytest.fixture
def world(db):
    acme, acme_srv = customer_with_server("ACME")
    beta, beta_srv = customer_with_server("BETA")
    eng_a = make_user("eng_a")
    permissions.grant(eng_a, acme, "engineer")
    eng_b = make_user("eng_b")
    permissions.grant(eng_b, beta, "engineer")
    view_a = make_user("view_a")
    permissions.grant(view_a, acme, "viewer")
    curator = make_user("cur", role=roles.CURATORS)
    return {
        "acme": acme,
        "beta": beta,
        "inc_a": make_incident(acme, acme_srv, code=96, level=2),
        "inc_b": make_incident(beta, beta_srv, code=58, level=1),
        "eng_a": eng_a,
        "eng_b": eng_b,
        "view_a": view_a,
        "curator": curator,
    }


def ids(response):
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def test_anonymous_gets_401(world, anon_client):
    response = anon_client.get("/api/v1/incidents/")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_engineer_lists_only_own_customers_incidents(world):
    assert ids(api_client_for(world["eng_a"]).get("/api/v1/incidents/")) == {world["inc_a"].pk}
    assert ids(api_client_for(world["eng_b"]).get("/api/v1/incidents/")) == {world["inc_b"].pk}


def test_curator_sees_all_incidents(world):
    assert ids(api_client_for(world["curator"]).get("/api/v1/incidents/")) == {world["inc_a"].pk, world["inc_b"].pk}


def test_other_customers_incident_is_404_in_detail_and_actions(world):
    client = api_client_for(world["eng_a"])
    other = world["inc_b"].pk
    assert client.get(f"/api/v1/incidents/{other}/").status_code == 404
    assert client.post(f"/api/v1/incidents/{other}/resolve/", {"reason": "x"}).status_code == 404
    assert client.patch(f"/api/v1/incidents/{other}/", {"notes": "x"}).status_code == 404
    assert client.get(f"/api/v1/incidents/{other}/similar/").status_code == 404


def test_user_without_grants_sees_nothing(world):
    nobody = make_user("nobody", role=roles.ENGINEERS)
    assert ids(api_client_for(nobody).get("/api/v1/incidents/")) == set()


def test_viewer_sees_but_cannot_act(world):
    client = api_client_for(world["view_a"])
    pk = world["inc_a"].pk
    assert client.get(f"/api/v1/incidents/{pk}/").status_code == 200
    response = client.post(f"/api/v1/incidents/{pk}/acknowledge/", {"reason": "mine"})
    assert response.status_code == 403
    assert client.patch(f"/api/v1/incidents/{pk}/", {"notes": "x"}, format="json").status_code == 403
    assert Incident.objects.get(pk=pk).acknowledged_at is None


def test_read_only_token_cannot_act(world):
    client = api_client_for(world["eng_a"], read_only=True)
    response = client.post(f"/api/v1/incidents/{world['inc_a'].pk}/acknowledge/", {"reason": "mine"})
    assert response.status_code == 403


def test_acknowledge_assigns_and_records_event(world):
    client = api_client_for(world["eng_a"])
    pk = world["inc_a"].pk
    response = client.post(f"/api/v1/incidents/{pk}/acknowledge/", {"reason": "looking at it"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["assignee"] == "eng_a"
    assert body["acknowledged_at"]
    event = IncidentEvent.objects.filter(incident_id=pk).last()
    assert event.verb == "acknowledged"
    assert event.actor == world["eng_a"]
    assert event.reason == "looking at it"
    assert event.before["state"] == "diagnosed"
    # acknowledging twice is an invalid transition
    again = client.post(f"/api/v1/incidents/{pk}/acknowledge/", {"reason": "again"}, format="json")
    assert again.status_code == 409
    assert again.json()["code"] == "invalid_transition"


def test_transition_requires_reason(world):
    client = api_client_for(world["eng_a"])
    response = client.post(f"/api/v1/incidents/{world['inc_a'].pk}/resolve/", {}, format="json")
    assert response.status_code == 400
    assert response.json()["field"] == "reason"


def test_resolve_then_close_and_invalid_transitions_are_409(world):
    client = api_client_for(world["eng_a"])
    pk = world["inc_a"].pk
    response = client.post(
        f"/api/v1/incidents/{pk}/resolve/",
        {"reason": "freed space", "resolution": "expired old images", "method": "manual"},
        format="json",
    )
    assert response.status_code == 200
    incident = Incident.objects.get(pk=pk)
    assert incident.state == "resolved"
    assert incident.resolved_at is not None
    assert incident.resolution == "expired old images"
    assert client.post(f"/api/v1/incidents/{pk}/escalate/", {"reason": "x"}, format="json").status_code == 409
    assert client.post(f"/api/v1/incidents/{pk}/close/", {"reason": "done"}, format="json").status_code == 200
    for verb in ("acknowledge", "resolve", "escalate", "close"):
        response = client.post(f"/api/v1/incidents/{pk}/{verb}/", {"reason": "x"}, format="json")
        assert response.status_code == 409, verb
    verbs = list(IncidentEvent.objects.filter(incident_id=pk).values_list("verb", flat=True))
    assert verbs == ["resolved", "closed"]


def test_patch_assignee_must_be_able_to_work_the_customer(world):
    client = api_client_for(world["eng_a"])
    pk = world["inc_a"].pk
    response = client.patch(f"/api/v1/incidents/{pk}/", {"assignee": "eng_b"}, format="json")
    assert response.status_code == 400
    assert response.json()["field"] == "assignee"
    response = client.patch(f"/api/v1/incidents/{pk}/", {"assignee": "eng_a", "notes": "call the DBA"}, format="json")
    assert response.status_code == 200
    assert response.json()["assignee"] == "eng_a"
    event = IncidentEvent.objects.filter(incident_id=pk).last()
    assert event.verb == "updated"
    assert event.after["notes"] == "call the DBA"


def test_filters(world):
    client = api_client_for(world["curator"])
    assert ids(client.get("/api/v1/incidents/?customer=acme")) == {world["inc_a"].pk}
    assert ids(client.get("/api/v1/incidents/?code=58")) == {world["inc_b"].pk}
    assert ids(client.get("/api/v1/incidents/?level=2")) == {world["inc_a"].pk}
    assert ids(client.get(f"/api/v1/incidents/?client={world['inc_b'].client}")) == {world["inc_b"].pk}
    assert ids(client.get("/api/v1/incidents/?state=resolved")) == set()
    assert ids(client.get("/api/v1/incidents/?q=96")) == {world["inc_a"].pk}
    assert ids(client.get("/api/v1/incidents/?since=2999-01-01T00:00:00Z")) == set()
    bad = client.get("/api/v1/incidents/?state=bogus")
    assert bad.status_code == 400


def test_statistics_are_restricted_and_count(world):
    body = api_client_for(world["eng_a"]).get("/api/v1/incidents/statistics/").json()
    assert body["total"] == 1
    assert body["by_customer"] == {"ACME": 1}
    assert body["by_state"]["diagnosed"] == 1
    body = api_client_for(world["curator"]).get("/api/v1/incidents/statistics/").json()
    assert body["total"] == 2


def test_events_are_append_only(world):
    event = IncidentEvent.record(world["inc_a"], "noted", system="test")
    event.reason = "changed"
    with pytest.raises(TypeError):
        event.save()
    with pytest.raises(TypeError):
        event.delete()
    with pytest.raises(TypeError):
        IncidentEvent.objects.filter(pk=event.pk).update(reason="x")
    with pytest.raises(TypeError):
        IncidentEvent.objects.filter(pk=event.pk).delete()


def test_grant_customer_command(db):
    customer, _server = customer_with_server("GAMMA")
    user = make_user("alice")
    call_command("grant_customer", "alice", "gamma", "--role", "viewer")
    assert permissions.can(user, permissions.ACCESS, customer)
    assert not permissions.can(user, permissions.WORK, customer)
    assert user.groups.filter(name=roles.VIEWERS).exists()
    call_command("grant_customer", "alice", "GAMMA", "--role", "engineer")
    user = type(user).objects.get(pk=user.pk)
    assert permissions.can(user, permissions.WORK, customer)
    call_command("grant_customer", "alice", "GAMMA", "--role", "engineer", "--revoke")
    user = type(user).objects.get(pk=user.pk)
    assert not permissions.can(user, permissions.WORK, customer)
    with pytest.raises(CommandError, match="no customer"):
        call_command("grant_customer", "alice", "NOPE", "--role", "viewer")
    with pytest.raises(CommandError, match="no user"):
        call_command("grant_customer", "bob", "GAMMA", "--role", "viewer")
