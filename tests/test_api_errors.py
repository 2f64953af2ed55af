"""The JSON error format every API endpoint shares (vbip_project.api.exception_handler)."""

import pytest
from django.core.cache import cache
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from django.test import RequestFactory
from rest_framework import exceptions
from rest_framework.throttling import UserRateThrottle

from tests.conftest import make_status_code
from vbip_project.api import api_not_found, exception_handler

DETAIL_URL = "/api/v1/status-codes/netbackup/58/"


@pytest.fixture
def code58(db):
    return make_status_code()


def handle(exc):
    response = exception_handler(exc, {"view": None, "request": None})
    return response.status_code, response.data


def test_field_error_names_the_field_and_keeps_its_code(curator_client, code58):
    response = curator_client.patch(DETAIL_URL, {"level": 7, "reason": "x"}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_choice"
    assert body["field"] == "level"
    assert body["detail"].startswith("level: ")
    assert "7" in body["detail"]
    assert body["errors"] == {"level": [body["detail"].removeprefix("level: ")]}


def test_code_and_detail_come_from_the_same_nested_field():
    exc = exceptions.ValidationError(
        {
            "items": [
                {},
                {"code": [exceptions.ErrorDetail("Not a number.", code="invalid_number")]},
            ],
            "name": [exceptions.ErrorDetail("Too long.", code="max_length")],
        }
    )
    status, body = handle(exc)
    assert status == 400
    assert body["field"] == "items[1].code"
    assert body["detail"] == "items[1].code: Not a number."
    assert body["code"] == "invalid_number"


def test_non_field_error_has_no_field():
    status, body = handle(exceptions.ValidationError("The pair does not exist.", code="unknown_pair"))
    assert status == 400
    assert body["field"] is None
    assert body["detail"] == "The pair does not exist."
    assert body["code"] == "unknown_pair"


def test_django_404_and_permission_denied_become_json():
    assert handle(Http404("gone")) == (404, {"code": "not_found", "detail": str(exceptions.NotFound.default_detail)})
    status, body = handle(DjangoPermissionDenied())
    assert (status, body["code"]) == (403, "permission_denied")


def test_malformed_json_is_400_parse_error(curator_client, code58):
    response = curator_client.generic("PATCH", DETAIL_URL, "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_auth_errors_are_json(anon_client, engineer_client, code58):
    response = anon_client.get(DETAIL_URL)
    assert (response.status_code, response.json()["code"]) == (401, "not_authenticated")
    response = engineer_client.patch(DETAIL_URL, {"explanation": "x"}, format="json")
    assert (response.status_code, response.json()["code"]) == (403, "permission_denied")
    assert response.json()["detail"]


def test_missing_object_and_wrong_method_are_json(curator_client, code58):
    response = curator_client.get("/api/v1/status-codes/netbackup/4242/")
    assert (response.status_code, response.json()["code"]) == (404, "not_found")
    response = curator_client.delete(DETAIL_URL)
    assert (response.status_code, response.json()["code"]) == (405, "method_not_allowed")


def test_unrouted_api_path_view_answers_json_404():
    response = api_not_found(RequestFactory().get("/api/v1/nothing-here/"))
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert b'"not_found"' in response.content


@pytest.fixture
def tight_user_throttle(monkeypatch):
    # DRF copies the rates onto the throttle class when it is imported, so overriding the
    # setting is not enough: patch the class attribute (monkeypatch restores it) and start
    # from an empty cache so earlier requests by a user with the same id do not count.
    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {**UserRateThrottle.THROTTLE_RATES, "user": "3/minute"})
    cache.clear()
    yield
    cache.clear()


def test_too_many_requests_is_429_throttled_with_retry_after(tight_user_throttle, engineer_client, code58):
    for _ in range(3):
        assert engineer_client.get(DETAIL_URL).status_code == 200
    response = engineer_client.get(DETAIL_URL)
    assert response.status_code == 429
    body = response.json()
    assert body["code"] == "throttled"
    assert 0 < body["retry_after_seconds"] <= 60
    assert int(response["Retry-After"]) == body["retry_after_seconds"]


def test_throttle_counts_per_user(tight_user_throttle, engineer_client, curator_client, code58):
    for _ in range(3):
        engineer_client.get(DETAIL_URL)
    assert engineer_client.get(DETAIL_URL).status_code == 429
    assert curator_client.get(DETAIL_URL).status_code == 200


def test_unknown_api_path_is_json_404(anon_client, db):
    response = anon_client.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
