from tests.conftest import api_client_for, make_status_code, make_user
from tests.incidents.incident_helpers import customer_with_server, make_incident
from vbip_project.accounts import roles


def test_metrics_need_authentication(anon_client, db):
    assert anon_client.get("/metrics").status_code == 401


def test_metrics_refused_without_view_permission(db):
    outsider = make_user("outsider")
    assert api_client_for(outsider).get("/metrics").status_code == 403


def test_metrics_report_database_figures(db):
    make_status_code(code=96, level=2, level_source="curator")
    customer, server = customer_with_server("ACME")
    make_incident(customer, server, state="diagnosed", level=2)
    viewer = make_user("monitor", role=roles.VIEWERS)
    response = api_client_for(viewer).get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    body = response.content.decode()
    assert 'vbip_status_codes{level="2",source="curator"} 1.0' in body
    assert 'vbip_incidents{customer="ACME",level="2",state="diagnosed"} 1.0' in body
