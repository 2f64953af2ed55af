import pytest
from django.test import Client

from incidents import permissions
from incidents.models import Incident, IncidentEvent
from tests.conftest import make_user

from .incident_helpers import customer_with_server, make_incident


@pytest.fixture
def pages(db):
    acme, acme_srv = customer_with_server("ACME")
    beta, beta_srv = customer_with_server("BETA")
    engineer = make_user("eng_a")
    permissions.grant(engineer, acme, "engineer")
    viewer = make_user("viewer_a")
    permissions.grant(viewer, acme, "viewer")
    return {
        "inc_a": make_incident(acme, acme_srv, code=96, level=2, client="db01"),
        "inc_b": make_incident(beta, beta_srv, code=58, level=1, client="web07"),
        "engineer": engineer,
        "viewer": viewer,
    }


def login(user, **client_kwargs):
    client = Client(**client_kwargs)
    client.force_login(user)
    return client


def test_pages_require_login(pages):
    response = Client().get("/incidents/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_login_page_renders(db):
    response = Client().get("/accounts/login/")
    assert response.status_code == 200
    assert b"csrfmiddlewaretoken" in response.content


def test_list_shows_only_own_customers(pages):
    response = login(pages["engineer"]).get("/incidents/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "db01" in body
    assert "web07" not in body


def test_detail_of_other_customer_is_404(pages):
    client = login(pages["engineer"])
    assert client.get(f"/incidents/{pages['inc_a'].pk}/").status_code == 200
    assert client.get(f"/incidents/{pages['inc_b'].pk}/").status_code == 404
    response = client.post(f"/incidents/{pages['inc_b'].pk}/resolve/", {"reason": "x"})
    assert response.status_code == 404


def test_list_filters_by_code(pages, curator):
    client = login(curator)
    body = client.get("/incidents/?code=58").content.decode()
    assert "web07" in body and "db01" not in body


def test_action_form_needs_csrf(pages):
    client = login(pages["engineer"], enforce_csrf_checks=True)
    response = client.post(f"/incidents/{pages['inc_a'].pk}/acknowledge/", {"reason": "mine"})
    assert response.status_code == 403
    assert Incident.objects.get(pk=pages["inc_a"].pk).acknowledged_at is None


def test_engineer_acknowledges_from_the_page(pages):
    client = login(pages["engineer"])
    pk = pages["inc_a"].pk
    response = client.post(f"/incidents/{pk}/acknowledge/", {"reason": "on it"}, follow=True)
    assert response.status_code == 200
    incident = Incident.objects.get(pk=pk)
    assert incident.assignee == pages["engineer"]
    assert IncidentEvent.objects.filter(incident=incident, verb="acknowledged", reason="on it").exists()
    assert "on it" in response.content.decode()


def test_action_without_reason_changes_nothing(pages):
    client = login(pages["engineer"])
    pk = pages["inc_a"].pk
    client.post(f"/incidents/{pk}/resolve/", {"reason": "  "})
    assert Incident.objects.get(pk=pk).state == "diagnosed"


def test_viewer_sees_no_action_forms_and_cannot_post(pages):
    client = login(pages["viewer"])
    pk = pages["inc_a"].pk
    body = client.get(f"/incidents/{pk}/").content.decode()
    assert f"/incidents/{pk}/resolve/" not in body
    assert client.post(f"/incidents/{pk}/resolve/", {"reason": "x"}).status_code == 403


def test_pages_render_in_korean(pages):
    client = login(pages["engineer"], headers={"accept-language": "ko"})
    body = client.get("/incidents/").content.decode()
    assert 'lang="ko"' in body
    assert "인시던트" in body


def test_history_shows_each_changed_field(pages):
    client = login(pages["engineer"])
    pk = pages["inc_a"].pk
    client.post(f"/incidents/{pk}/resolve/", {"reason": "freed media", "resolution": "expired old images"})
    body = client.get(f"/incidents/{pk}/").content.decode()
    assert "<code>state</code>: diagnosed → resolved" in body
    assert "<code>resolution</code>:" in body
    assert "expired old images" in body
