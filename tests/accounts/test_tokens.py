"""API tokens: the create_api_token command, authentication rules, and the admin pages that issue and revoke them."""

import re
from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from errorcodes.models import StatusCode
from tests.conftest import make_status_code, make_user
from vbip_project.accounts import roles
from vbip_project.accounts.models import ApiToken, User, hash_token

LIST_URL = "/api/v1/status-codes/"
DETAIL_URL = "/api/v1/status-codes/netbackup/58/"
TOKEN_RE = re.compile(r"vbip_[A-Za-z0-9_-]{20,}")


def create_token(*args) -> str:
    out = StringIO()
    call_command("create_api_token", *args, stdout=out)
    return out.getvalue().strip().splitlines()[-1].split()[-1]


def client_with(raw) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
    return client


@pytest.fixture
def code58(db):
    return make_status_code()


# --- create_api_token ------------------------------------------------------------------------------


def test_command_prints_a_token_that_authenticates_and_is_stored_hashed(curator, code58):
    raw = create_token("curator", "--name", "monitoring")
    assert raw.startswith("vbip_")
    token = ApiToken.objects.get(user=curator)
    assert token.key_hash == hash_token(raw)
    assert raw not in token.key_hash
    assert raw.startswith(token.prefix)
    assert (token.name, token.read_only, token.expires_at) == ("monitoring", False, None)

    response = client_with(raw).patch(DETAIL_URL, {"typical_resolution_minutes": 5}, format="json")
    assert response.status_code == 200


def test_command_read_only_token_reads_but_gets_403_on_writes(curator, code58):
    raw = create_token("curator", "--read-only")
    client = client_with(raw)
    assert client.get(DETAIL_URL).status_code == 200
    response = client.patch(DETAIL_URL, {"level": 3, "reason": "x"}, format="json")
    assert response.status_code == 403
    assert StatusCode.objects.get(pk=code58.pk).level == 1


def test_command_token_expires_after_the_given_days(engineer, code58):
    raw = create_token("engineer", "--expires-days", "2")
    token = ApiToken.objects.get(user=engineer)
    assert timedelta(days=2) - timedelta(minutes=1) < token.expires_at - timezone.now() <= timedelta(days=2)
    with time_machine.travel(timezone.now() + timedelta(days=1), tick=False):
        assert client_with(raw).get(LIST_URL).status_code == 200
    with time_machine.travel(timezone.now() + timedelta(days=2, minutes=1), tick=False):
        response = client_with(raw).get(LIST_URL)
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_command_token_revoked_is_401(engineer, code58):
    raw = create_token("engineer")
    assert client_with(raw).get(LIST_URL).status_code == 200
    ApiToken.objects.get(user=engineer).revoke()
    assert client_with(raw).get(LIST_URL).status_code == 401


@pytest.mark.parametrize(
    "args, message",
    [
        (["ghost"], "ghost"),
        (["engineer", "--expires-days", "0"], "--expires-days"),
    ],
)
def test_command_refuses_bad_input_with_a_clear_error(engineer, args, message):
    with pytest.raises(CommandError, match=message):
        create_token(*args)
    assert not ApiToken.objects.exists()


def test_command_refuses_an_inactive_user(db):
    make_user("gone", is_active=False)
    with pytest.raises(CommandError, match="inactive"):
        create_token("gone")


def test_each_run_issues_a_new_distinct_token(engineer):
    first, second = create_token("engineer"), create_token("engineer")
    assert first != second
    assert ApiToken.objects.filter(user=engineer).count() == 2


# --- authentication details ------------------------------------------------------------------------


def test_token_of_a_deactivated_user_is_401(engineer, code58):
    raw = create_token("engineer")
    engineer.is_active = False
    engineer.save()
    response = client_with(raw).get(LIST_URL)
    assert response.status_code == 401


def test_token_use_is_recorded_at_most_once_a_minute(engineer, code58):
    raw = create_token("engineer")
    token = ApiToken.objects.get(user=engineer)
    assert token.last_used_at is None
    client_with(raw).get(LIST_URL)
    token.refresh_from_db()
    first = token.last_used_at
    assert first is not None
    client_with(raw).get(LIST_URL)
    token.refresh_from_db()
    assert token.last_used_at == first
    with time_machine.travel(timezone.now() + timedelta(minutes=5), tick=False):
        client_with(raw).get(LIST_URL)
    token.refresh_from_db()
    assert token.last_used_at > first


# --- admin: tokens ---------------------------------------------------------------------------------


@pytest.fixture
def admin_client(admin_user):
    client = Client()
    client.force_login(admin_user)
    return client


def test_admin_issues_a_token_and_shows_it_exactly_once(admin_client, curator, code58):
    assert admin_client.get("/admin/accounts/apitoken/add/").status_code == 200
    response = admin_client.post(
        "/admin/accounts/apitoken/add/",
        {
            "user": curator.pk,
            "name": "nightly report",
            "read_only": "on",
            "expires_at_0": (timezone.localdate() + timedelta(days=30)).isoformat(),
            "expires_at_1": "12:00:00",
        },
        follow=True,
    )
    assert response.status_code == 200
    shown = TOKEN_RE.findall(response.content.decode())
    assert len(set(shown)) == 1
    raw = shown[0]
    token = ApiToken.objects.get()
    assert token.key_hash == hash_token(raw)
    assert (token.user, token.name, token.read_only) == (curator, "nightly report", True)
    assert token.expires_at is not None

    client = client_with(raw)
    assert client.get(DETAIL_URL).status_code == 200
    assert client.patch(DETAIL_URL, {"explanation": "x"}, format="json").status_code == 403

    for url in ("/admin/accounts/apitoken/", f"/admin/accounts/apitoken/{token.pk}/change/"):
        page = admin_client.get(url).content.decode()
        assert raw not in page
        assert token.key_hash not in page
        assert token.prefix in page


def test_admin_token_list_shows_scope_expiry_and_state_but_never_the_hash(admin_client, curator):
    active, _raw = ApiToken.issue(curator, name="live", read_only=True)
    revoked, _raw = ApiToken.issue(curator, name="old")
    revoked.revoke()
    page = admin_client.get("/admin/accounts/apitoken/").content.decode()
    for token in (active, revoked):
        assert token.prefix in page
        assert token.key_hash not in page
    assert "read-only" in page and "read-write" in page
    assert "Revoked" in page and "Active" in page

    only_revoked = admin_client.get("/admin/accounts/apitoken/", {"state": "revoked"}).content.decode()
    assert revoked.prefix in only_revoked
    assert active.prefix not in only_revoked


def test_admin_revoke_action_revokes_and_the_token_stops_working(admin_client, engineer, code58):
    token, raw = ApiToken.issue(engineer)
    keep, keep_raw = ApiToken.issue(engineer)
    response = admin_client.post(
        "/admin/accounts/apitoken/",
        {"action": "revoke_tokens", "_selected_action": [token.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "Revoked 1 token" in response.content.decode()
    token.refresh_from_db()
    keep.refresh_from_db()
    assert token.revoked_at is not None
    assert keep.revoked_at is None
    assert client_with(raw).get(LIST_URL).status_code == 401
    assert client_with(keep_raw).get(LIST_URL).status_code == 200


def test_admin_cannot_widen_an_issued_tokens_scope(admin_client, engineer):
    token, _raw = ApiToken.issue(engineer, read_only=True)
    response = admin_client.post(
        f"/admin/accounts/apitoken/{token.pk}/change/",
        {"name": "renamed", "read_only": "", "expires_at_0": "", "expires_at_1": ""},
    )
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.name == "renamed"
    assert token.read_only is True


def test_staff_without_token_permissions_cannot_issue_tokens(db):
    staff = make_user("staffer", is_staff=True)
    client = Client()
    client.force_login(staff)
    assert client.get("/admin/accounts/apitoken/add/").status_code == 403


# --- admin: users ----------------------------------------------------------------------------------


def test_admin_user_pages_show_display_name_roles_and_tokens(admin_client, curator):
    curator.display_name = "김 큐레이터"
    curator.save()
    ApiToken.issue(curator, name="laptop")
    page = admin_client.get("/admin/accounts/user/").content.decode()
    assert "김 큐레이터" in page
    assert roles.CURATORS in page
    change = admin_client.get(f"/admin/accounts/user/{curator.pk}/change/").content.decode()
    assert 'name="display_name"' in change
    assert "laptop" in change


def test_admin_creates_a_user_with_display_name_and_role(admin_client):
    engineers = Group.objects.get(name=roles.ENGINEERS)
    response = admin_client.post(
        "/admin/accounts/user/add/",
        {
            "username": "newbie",
            "display_name": "New Engineer",
            "email": "newbie@example.com",
            "usable_password": "true",
            "password1": "a-long-enough-passphrase",
            "password2": "a-long-enough-passphrase",
            "groups": [engineers.pk],
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    user = User.objects.get(username="newbie")
    assert user.display_name == "New Engineer"
    assert user.check_password("a-long-enough-passphrase")
    assert list(user.groups.all()) == [engineers]
