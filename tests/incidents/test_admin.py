import pytest
from django.test import Client

from incidents.models import BackupJob, BackupServer
from tests.conftest import make_user
from vbip_project.accounts import roles

from .incident_helpers import customer_with_server, make_incident


@pytest.fixture
def admin_client_logged(admin_user):
    client = Client()
    client.force_login(admin_user)
    return client


@pytest.fixture
def admin_world(db):
    customer, server = customer_with_server("ACME")
    incident = make_incident(customer, server, code=96, level=2)
    job = BackupJob.objects.create(server=server, job_id=4711, status=96, source="api", incident=incident)
    incident.transition("resolved", reason="fixed", resolution="freed media")
    return {"customer": customer, "server": server, "incident": incident, "job": job}


@pytest.mark.parametrize(
    "url",
    [
        "/admin/incidents/customer/",
        "/admin/incidents/backupserver/",
        "/admin/incidents/backupjob/",
        "/admin/incidents/incident/",
        "/admin/incidents/incidentevent/",
        "/admin/incidents/incident/?state=resolved",
        "/admin/incidents/backupjob/?q=4711",
    ],
)
def test_admin_lists_render(admin_client_logged, admin_world, url):
    response = admin_client_logged.get(url)
    assert response.status_code == 200


def test_admin_change_pages_render(admin_client_logged, admin_world):
    for url in (
        f"/admin/incidents/customer/{admin_world['customer'].pk}/change/",
        f"/admin/incidents/customer/{admin_world['customer'].pk}/permissions/",
        f"/admin/incidents/backupserver/{admin_world['server'].pk}/change/",
        f"/admin/incidents/backupjob/{admin_world['job'].pk}/change/",
        f"/admin/incidents/incident/{admin_world['incident'].pk}/change/",
    ):
        assert admin_client_logged.get(url).status_code == 200, url


def test_incident_change_page_shows_events(admin_client_logged, admin_world):
    body = admin_client_logged.get(f"/admin/incidents/incident/{admin_world['incident'].pk}/change/").content.decode()
    assert "resolved" in body
    assert "fixed" in body


def test_jobs_are_read_only_in_admin(admin_client_logged, admin_world):
    assert admin_client_logged.get("/admin/incidents/backupjob/add/").status_code == 403
    response = admin_client_logged.post(f"/admin/incidents/backupjob/{admin_world['job'].pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert BackupJob.objects.filter(pk=admin_world["job"].pk).exists()


def test_api_key_is_never_rendered_and_kept_when_left_blank(admin_client_logged, admin_world):
    server = admin_world["server"]
    server.api_key = "SECRET-KEY-VALUE-123"
    server.save()
    body = admin_client_logged.get(f"/admin/incidents/backupserver/{server.pk}/change/").content.decode()
    assert "SECRET-KEY-VALUE-123" not in body
    listing = admin_client_logged.get("/admin/incidents/backupserver/").content.decode()
    assert "SECRET-KEY-VALUE-123" not in listing
    response = admin_client_logged.post(
        f"/admin/incidents/backupserver/{server.pk}/change/",
        {
            "customer": server.customer_id,
            "hostname": server.hostname,
            "netbackup_version": "10.3",
            "is_active": "on",
            "api_base_url": "https://nbu01.acme.local:1556/netbackup",
            "api_key": "",
            "ca_certificate": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    server = BackupServer.objects.get(pk=server.pk)
    assert server.api_key == "SECRET-KEY-VALUE-123"
    assert server.netbackup_version == "10.3"


def test_staff_engineer_sees_only_granted_customers_in_admin(admin_world):
    from incidents import permissions

    other, other_server = customer_with_server("BETA")
    make_incident(other, other_server, client="hidden-client")
    engineer = make_user("staff_eng", role=roles.ENGINEERS)
    permissions.grant(engineer, admin_world["customer"], "engineer")
    # Engineers are not staff and do not use the admin; staff see everything (like curators).
    client = Client()
    client.force_login(engineer)
    assert client.get("/admin/incidents/incident/").status_code == 302
