import pytest

from incidents import permissions
from incidents.models import IncidentEvent
from tests.conftest import make_user
from tests.incidents.incident_helpers import customer_with_server, make_incident

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def engineer_world():
    acme, acme_srv = customer_with_server("ACME")
    beta, beta_srv = customer_with_server("BETA")
    engineer = make_user("eng_a")
    permissions.grant(engineer, acme, "engineer")
    return {
        "engineer": engineer,
        "inc_a": make_incident(acme, acme_srv, code=96, level=2, client="db01"),
        "inc_b": make_incident(beta, beta_srv, code=58, level=1, client="web07"),
    }


def test_engineer_signs_in_sees_own_incidents_and_acknowledges(page, live_server, engineer_world):
    sign_in(page, live_server, "eng_a")
    page.goto(f"{live_server.url}/incidents/")
    table = page.locator("table")
    assert "db01" in table.inner_text()
    assert "web07" not in table.inner_text()

    page.click(f"a[href='/incidents/{engineer_world['inc_a'].pk}/']")
    page.fill("form[action$='/acknowledge/'] input[name=reason]", "taking this one")
    with page.expect_navigation():
        page.click("form[action$='/acknowledge/'] button")
    assert "taking this one" in page.locator("table").first.inner_text()
    assert IncidentEvent.objects.filter(incident=engineer_world["inc_a"], verb="acknowledged").exists()
    # the acknowledge form is gone once acknowledged
    assert page.locator("form[action$='/acknowledge/']").count() == 0


def test_language_switch_to_korean(page, live_server, engineer_world):
    sign_in(page, live_server, "eng_a")
    page.goto(f"{live_server.url}/incidents/")
    page.select_option("select[name=language]", "ko")
    # The form posts on change and redirects back: wait for the page that comes back in Korean.
    page.wait_for_selector("html[lang=ko]", state="attached")
    assert page.locator("html").get_attribute("lang") == "ko"
    assert "인시던트" in page.locator("h1").inner_text()
