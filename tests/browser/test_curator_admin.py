import pytest

from errorcodes.models import StatusCode
from tests.conftest import make_status_code, make_user
from vbip_project.accounts import roles

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_curator_sets_a_level_in_bulk_with_a_reason(page, live_server):
    make_status_code(code=96, message="unable to allocate new media for backup", level=1, level_source="classifier")
    make_status_code(code=58, message="can't connect to client", level=1, level_source="classifier")
    make_user("kb_curator", role=roles.CURATORS, is_staff=True)

    sign_in(page, live_server, "kb_curator")
    page.goto(f"{live_server.url}/admin/errorcodes/statuscode/?q=96")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1
    rows.first.locator("input.action-select").check()
    page.select_option("select[name=action]", "set_level_action")
    with page.expect_navigation():
        page.click("button[name=index]")

    page.select_option("select[name=level]", "2")
    page.fill("textarea[name=reason]", "Media pools are shared: an engineer approves.")
    with page.expect_navigation():
        page.click("input[type=submit][value='Set level']")

    assert "1" in page.locator("ul.messagelist").inner_text()
    decided = StatusCode.objects.get(family="netbackup", code=96)
    assert (decided.level, decided.level_source) == (2, "curator")
    assert decided.history.first().history_change_reason == "Media pools are shared: an engineer approves."
    untouched = StatusCode.objects.get(family="netbackup", code=58)
    assert (untouched.level, untouched.level_source) == (1, "classifier")
