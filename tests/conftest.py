"""Personas and factories shared by the whole suite."""

from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from errorcodes.choices import LevelSource
from errorcodes.models import StatusCode
from vbip_project.accounts import roles
from vbip_project.accounts.models import ApiToken

SHARED_DIR = Path(__file__).resolve().parents[1].parent / "shared"


def make_user(username, *, role=None, **extra):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(username=username, password="pw-for-tests-only", **extra)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


def make_status_code(**overrides) -> StatusCode:
    values = {
        "family": "netbackup",
        "code": 58,
        "message": "can't connect to client",
        "explanation": "The server could not open a connection to the client.",
        "recommended_action": "Check the client is up and bpcd answers.",
        "category": "network",
        "severity": "error",
        "level": 1,
        "confidence": 0.8,
        "classification_reason": "test",
        "level_source": LevelSource.CLASSIFIER,
    }
    values.update(overrides)
    return StatusCode.objects.create(**values)


def api_client_for(user=None, *, read_only=False) -> APIClient:
    client = APIClient()
    if user is not None:
        _token, raw = ApiToken.issue(user, read_only=read_only)
        client.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
        client.raw_token = raw
    return client


@pytest.fixture(autouse=True)
def _reset_language():
    """A request in Korean leaves the thread's language active; start and end every test in English."""
    from django.utils import translation

    translation.activate("en")
    yield
    translation.activate("en")


@pytest.fixture
def curator(db):
    return make_user("curator", role=roles.CURATORS)


@pytest.fixture
def engineer(db):
    return make_user("engineer", role=roles.ENGINEERS)


@pytest.fixture
def viewer(db):
    return make_user("viewer", role=roles.VIEWERS)


@pytest.fixture
def integration(db):
    return make_user("integration", role=roles.INTEGRATIONS)


@pytest.fixture
def admin_user(db):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_superuser("root", "root@example.com", "pw-for-tests-only")


@pytest.fixture
def anon_client():
    return APIClient()


@pytest.fixture
def curator_client(curator):
    return api_client_for(curator)


@pytest.fixture
def engineer_client(engineer):
    return api_client_for(engineer)


@pytest.fixture
def shared_dir():
    if not SHARED_DIR.is_dir():
        pytest.skip(f"../shared is not beside the project ({SHARED_DIR}); vendor reference files are absent")
    return SHARED_DIR
