"""The status-code knowledge base over the REST API: auth, filters, curation, history, statistics, classify."""

import re

import pytest
from django.db.models import Avg
from rest_framework.test import APIClient

from errorcodes.choices import Level, LevelSource
from errorcodes.classifier import get_classifier
from errorcodes.models import StatusCode
from errorcodes.services import CodeRecord, reclassify, upsert_status_codes
from tests.conftest import api_client_for, make_status_code, make_user
from vbip_project.accounts.models import ApiToken

LIST_URL = "/api/v1/status-codes/"
STATS_URL = "/api/v1/status-codes/statistics/"
CLASSIFY_URL = "/api/v1/classify/"


def detail_url(family, code):
    return f"/api/v1/status-codes/{family}/{code}/"


def history_url(family, code):
    return f"/api/v1/status-codes/{family}/{code}/history/"


def keys(response):
    return {(row["family"], row["code"]) for row in response.json()["results"]}


@pytest.fixture
def codes(db):
    """A small knowledge base that differs on every filterable field."""
    return {
        "ok": make_status_code(
            code=0,
            message="the requested operation was successfully completed",
            explanation="Nothing to do.",
            recommended_action="",
            category="informational",
            severity="info",
            level=0,
            confidence=0.95,
            level_source=LevelSource.CLASSIFIER,
        ),
        "client": make_status_code(code=58, confidence=0.8),
        "disk": make_status_code(
            code=129,
            message="Disk storage unit is full",
            explanation="The disk storage unit has no free space left.",
            recommended_action="Expire images or add capacity.",
            category="disk_storage",
            severity="error",
            level=2,
            confidence=0.9,
            level_source=LevelSource.IMPORT,
        ),
        "media": make_status_code(
            family="media_manager",
            code=58,
            message="no media available in the volume pool",
            explanation="The pool has no usable tapes for this storage unit.",
            category="media",
            severity="warning",
            level=2,
            confidence=1.0,
            level_source=LevelSource.CURATOR,
        ),
        "robot": make_status_code(
            family="robotic_error",
            code=2,
            message="robotic library hardware failure",
            explanation="The robot reported a mechanical fault.",
            category="tape_hardware",
            severity="critical",
            level=3,
            confidence=0.7,
            level_source=LevelSource.CURATOR,
            is_active=False,
        ),
    }


@pytest.fixture
def viewer_client(viewer):
    return api_client_for(viewer)


# --- authentication and roles -------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, url",
    [
        ("get", LIST_URL),
        ("get", STATS_URL),
        ("get", detail_url("netbackup", 58)),
        ("patch", detail_url("netbackup", 58)),
        ("get", history_url("netbackup", 58)),
        ("post", CLASSIFY_URL),
    ],
)
def test_anonymous_request_is_refused_with_401(anon_client, codes, method, url):
    response = getattr(anon_client, method)(url, {}, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Token")


@pytest.mark.parametrize(
    "header",
    ["Token vbip_not-a-real-token", "Bearer vbip_not-a-real-token", "Token", "Token two parts"],
)
def test_unknown_or_malformed_token_is_refused_with_401(codes, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get(LIST_URL)
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_expired_token_is_refused_with_401(engineer, codes):
    from datetime import timedelta

    from django.utils import timezone

    _token, raw = ApiToken.issue(engineer, expires_at=timezone.now() - timedelta(seconds=1))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
    response = client.get(LIST_URL)
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_revoked_token_is_refused_with_401(engineer, codes):
    token, raw = ApiToken.issue(engineer)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get(LIST_URL).status_code == 200
    token.revoke()
    response = client.get(LIST_URL)
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_every_role_reads_the_knowledge_base(codes, curator, engineer, viewer, integration):
    for user in (curator, engineer, viewer, integration):
        response = api_client_for(user).get(detail_url("netbackup", 58))
        assert response.status_code == 200, user.username


def test_user_without_a_role_cannot_read(codes):
    response = api_client_for(make_user("nobody")).get(LIST_URL)
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_read_only_token_reads_but_cannot_patch(curator, codes):
    client = api_client_for(curator, read_only=True)
    assert client.get(detail_url("netbackup", 58)).status_code == 200
    response = client.patch(detail_url("netbackup", 58), {"explanation": "changed"}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert "read-only" in response.json()["detail"]
    assert StatusCode.objects.get(family="netbackup", code=58).explanation != "changed"


@pytest.mark.parametrize("persona", ["engineer", "viewer", "integration"])
def test_non_curators_cannot_patch(request, codes, persona):
    client = api_client_for(request.getfixturevalue(persona))
    response = client.patch(detail_url("netbackup", 58), {"level": 3, "reason": "because"}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert StatusCode.objects.get(family="netbackup", code=58).level == 1


def test_curator_patch_succeeds(curator_client, codes):
    response = curator_client.patch(detail_url("netbackup", 58), {"typical_resolution_minutes": 15}, format="json")
    assert response.status_code == 200
    assert response.json()["typical_resolution_minutes"] == 15


def test_session_login_reads_and_writes_only_with_csrf_token(curator, codes):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(curator)
    # The browsable API renders its forms with a CSRF token, which sets the cookie a browser would get.
    page = client.get(LIST_URL, HTTP_ACCEPT="text/html")
    assert page.status_code == 200
    assert b"can&#x27;t connect to client" in page.content or b"can't connect to client" in page.content
    csrf = client.cookies["csrftoken"].value

    refused = client.patch(detail_url("netbackup", 58), {"explanation": "by session"}, format="json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]

    accepted = client.patch(
        detail_url("netbackup", 58), {"explanation": "by session"}, format="json", HTTP_X_CSRFTOKEN=csrf
    )
    assert accepted.status_code == 200
    assert StatusCode.objects.get(family="netbackup", code=58).explanation == "by session"


# --- list, filters, search, ordering, pagination --------------------------------------------------


@pytest.mark.parametrize(
    "query, expected",
    [
        ({"family": "media_manager"}, {"media"}),
        ({"family": ["robotic_error", "media_manager"]}, {"media", "robot"}),
        ({"level": 2}, {"disk", "media"}),
        ({"level": [0, 3]}, {"ok", "robot"}),
        ({"category": "network"}, {"client"}),
        ({"severity": "critical"}, {"robot"}),
        ({"level_source": "curator"}, {"media", "robot"}),
        ({"level_source": "import"}, {"disk"}),
        ({"is_active": "false"}, {"robot"}),
        ({"min_confidence": 0.9}, {"ok", "disk", "media"}),
        ({"family": "netbackup", "level": 1}, {"client"}),
    ],
)
def test_list_filters(engineer_client, codes, query, expected):
    response = engineer_client.get(LIST_URL, query)
    assert response.status_code == 200
    assert keys(response) == {codes[name].key for name in expected}


@pytest.mark.parametrize(
    "query, field",
    [({"level": 7}, "level"), ({"family": "nosuch"}, "family"), ({"min_confidence": "high"}, "min_confidence")],
)
def test_invalid_filter_value_is_400_naming_the_filter(engineer_client, codes, query, field):
    response = engineer_client.get(LIST_URL, query)
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == field
    assert body["detail"].startswith(f"{field}:")


def test_search_by_code_number_matches_every_family(engineer_client, codes):
    response = engineer_client.get(LIST_URL, {"q": "58"})
    assert keys(response) == {codes["client"].key, codes["media"].key}


def test_search_by_text_is_case_insensitive_over_message_explanation_and_action(engineer_client, codes):
    assert keys(engineer_client.get(LIST_URL, {"q": "STORAGE UNIT"})) == {codes["disk"].key, codes["media"].key}
    assert keys(engineer_client.get(LIST_URL, {"q": "mechanical"})) == {codes["robot"].key}
    assert keys(engineer_client.get(LIST_URL, {"q": "add capacity"})) == {codes["disk"].key}
    assert keys(engineer_client.get(LIST_URL, {"q": "no such words anywhere"})) == set()


def test_search_combines_with_filters(engineer_client, codes):
    response = engineer_client.get(LIST_URL, {"q": "58", "family": "media_manager"})
    assert keys(response) == {codes["media"].key}


def test_ordering(engineer_client, codes):
    by_code_desc = [row["code"] for row in engineer_client.get(LIST_URL, {"ordering": "-code"}).json()["results"]]
    assert by_code_desc == sorted(by_code_desc, reverse=True)
    by_level = [row["level"] for row in engineer_client.get(LIST_URL, {"ordering": "level"}).json()["results"]]
    assert by_level == [0, 1, 2, 2, 3]
    default = [(row["family"], row["code"]) for row in engineer_client.get(LIST_URL).json()["results"]]
    assert default == sorted(default)


def test_unknown_ordering_is_400(engineer_client, codes):
    response = engineer_client.get(LIST_URL, {"ordering": "key_hash"})
    assert response.status_code == 400
    assert response.json()["field"] == "ordering"


def test_pagination_follows_next_links_without_repeats(engineer_client, db):
    for number in range(100, 107):
        make_status_code(code=number, message=f"message {number}")
    first = engineer_client.get(LIST_URL, {"page_size": 3}).json()
    assert set(first) == {"count", "next", "previous", "results"}
    assert first["count"] == 7
    assert first["previous"] is None
    assert len(first["results"]) == 3
    assert "page=2" in first["next"] and "page_size=3" in first["next"]

    seen = [row["code"] for row in first["results"]]
    page = first
    while page["next"]:
        page = engineer_client.get(page["next"]).json()
        seen.extend(row["code"] for row in page["results"])
    assert seen == list(range(100, 107))
    assert page["previous"] is not None


def test_page_past_the_end_is_404_json(engineer_client, codes):
    response = engineer_client.get(LIST_URL, {"page": 99})
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


# --- detail ---------------------------------------------------------------------------------------


def test_detail_has_every_documented_field(engineer_client, codes):
    response = engineer_client.get(detail_url("netbackup", 129))
    assert response.status_code == 200
    body = response.json()
    for name in (
        "family",
        "code",
        "message",
        "explanation",
        "recommended_action",
        "category",
        "severity",
        "level",
        "level_name",
        "confidence",
        "classification_reason",
        "level_source",
        "typical_resolution_minutes",
        "is_active",
        "created_at",
        "updated_at",
    ):
        assert name in body, name
    assert body["level"] == 2
    assert body["level_name"] == str(Level.APPROVAL.label)
    assert body["level_source"] == "import"
    assert body["url"].endswith(detail_url("netbackup", 129))


def test_same_number_in_two_families_are_different_codes(engineer_client, codes):
    netbackup = engineer_client.get(detail_url("netbackup", 58)).json()
    media = engineer_client.get(detail_url("media_manager", 58)).json()
    assert netbackup["message"] == "can't connect to client"
    assert media["message"] == "no media available in the volume pool"


@pytest.mark.parametrize(
    "family, code",
    [
        ("nosuch", 58),
        ("netbackup", "abc"),
        ("netbackup", "1.5"),
        ("netbackup", "²"),
        ("netbackup", "-1"),
        ("netbackup", "99999999999999999999"),
        ("netbackup", 4242),
    ],
)
def test_detail_of_missing_code_is_404_json(curator_client, codes, family, code):
    for url in (detail_url(family, code), history_url(family, code)):
        response = curator_client.get(url)
        assert response.status_code == 404, url
        assert response.json()["code"] == "not_found"
    response = curator_client.patch(detail_url(family, code), {"level": 3, "reason": "x"}, format="json")
    assert response.status_code == 404


@pytest.mark.parametrize("method", ["put", "delete"])
def test_replacing_or_deleting_a_code_is_not_allowed(curator_client, codes, method):
    response = getattr(curator_client, method)(detail_url("netbackup", 58), {}, format="json")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert StatusCode.objects.filter(family="netbackup", code=58).exists()


# --- curation -------------------------------------------------------------------------------------


def test_curator_level_becomes_the_curators_decision(curator_client, codes):
    response = curator_client.patch(
        detail_url("netbackup", 58), {"level": 2, "reason": "Needs a firewall change"}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["level"] == 2
    assert body["level_source"] == "curator"
    assert body["confidence"] == 1.0
    assert "curator" in body["classification_reason"]
    assert "Needs a firewall change" in body["classification_reason"]
    obj = StatusCode.objects.get(family="netbackup", code=58)
    assert (obj.level, obj.level_source, obj.confidence) == (2, LevelSource.CURATOR, 1.0)


def test_curator_level_survives_reclassification_and_import(curator_client, codes):
    curator_client.patch(detail_url("netbackup", 0), {"level": 3, "reason": "test override"}, format="json")
    counts = reclassify(StatusCode.objects.all(), include_imported=True)
    assert counts["skipped_curator"] >= 1
    upsert_status_codes([CodeRecord(family="netbackup", code=0, message="the operation succeeded", level=0)])
    obj = StatusCode.objects.get(family="netbackup", code=0)
    assert (obj.level, obj.level_source) == (3, LevelSource.CURATOR)


def test_level_change_without_reason_is_400_naming_reason_and_saves_nothing(curator_client, codes):
    before = StatusCode.history.count()
    for payload in ({"level": 3}, {"level": 3, "reason": "   "}, {"level": 3, "explanation": "new words"}):
        response = curator_client.patch(detail_url("netbackup", 58), payload, format="json")
        assert response.status_code == 400
        assert response.json()["field"] == "reason"
        assert response.json()["detail"].startswith("reason:")
    obj = StatusCode.objects.get(family="netbackup", code=58)
    assert (obj.level, obj.level_source, obj.curated_text) == (1, LevelSource.CLASSIFIER, False)
    assert StatusCode.history.count() == before


def test_confirming_the_classifiers_level_also_needs_a_reason(curator_client, codes):
    response = curator_client.patch(detail_url("netbackup", 58), {"level": 1}, format="json")
    assert response.status_code == 400
    assert response.json()["field"] == "reason"
    response = curator_client.patch(detail_url("netbackup", 58), {"level": 1, "reason": "checked"}, format="json")
    assert response.status_code == 200
    assert response.json()["level_source"] == "curator"


def test_repeating_a_curators_level_needs_no_reason_and_adds_no_history(curator_client, codes):
    before = codes["media"].history.count()
    response = curator_client.patch(detail_url("media_manager", 58), {"level": 2}, format="json")
    assert response.status_code == 200
    assert codes["media"].history.count() == before


def test_invalid_level_is_400_invalid_choice(curator_client, codes):
    response = curator_client.patch(detail_url("netbackup", 58), {"level": 7, "reason": "x"}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_choice"
    assert body["field"] == "level"
    assert body["detail"].startswith("level:")


def test_blank_message_is_400_naming_message(curator_client, codes):
    response = curator_client.patch(detail_url("netbackup", 58), {"message": "  "}, format="json")
    assert response.status_code == 400
    assert response.json()["field"] == "message"


def test_identity_and_derived_fields_are_not_writable(curator_client, codes):
    response = curator_client.patch(
        detail_url("netbackup", 58),
        {"code": 999, "family": "robotic", "confidence": 0.01, "level_source": "curator"},
        format="json",
    )
    assert response.status_code == 200
    obj = StatusCode.objects.get(pk=codes["client"].pk)
    assert (obj.family, obj.code, obj.confidence, obj.level_source) == ("netbackup", 58, 0.8, LevelSource.CLASSIFIER)


def test_text_edit_marks_text_curated_and_imports_keep_it(curator_client, codes):
    response = curator_client.patch(
        detail_url("netbackup", 58), {"recommended_action": "Run bptestbpcd from the media server."}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["curated_text"] is True
    assert response.json()["level_source"] == "classifier"
    upsert_status_codes(
        [CodeRecord(family="netbackup", code=58, message="can't connect to client", recommended_action="Vendor text")]
    )
    assert StatusCode.objects.get(pk=codes["client"].pk).recommended_action == "Run bptestbpcd from the media server."


def test_unchanged_text_does_not_mark_it_curated(curator_client, codes):
    response = curator_client.patch(detail_url("netbackup", 58), {"message": "can't connect to client"}, format="json")
    assert response.status_code == 200
    assert response.json()["curated_text"] is False


# --- history --------------------------------------------------------------------------------------


def test_patch_records_history_with_user_reason_and_changes(curator, curator_client, codes):
    response = curator_client.patch(
        detail_url("netbackup", 58),
        {"level": 3, "reason": "Bad NIC on the client", "explanation": "Hardware."},
        format="json",
    )
    assert response.status_code == 200

    record = codes["client"].history.latest()
    assert record.history_user == curator
    assert record.history_change_reason == "Bad NIC on the client"

    history = curator_client.get(history_url("netbackup", 58))
    assert history.status_code == 200
    body = history.json()
    assert body["count"] == 2
    newest, created = body["results"]
    assert newest["who"] == "curator"
    assert newest["action"] == "changed"
    assert newest["reason"] == "Bad NIC on the client"
    changes = {change["field"]: (change["old"], change["new"]) for change in newest["changes"]}
    assert changes["level"] == (1, 3)
    assert changes["level_source"] == ("classifier", "curator")
    assert changes["explanation"] == ("The server could not open a connection to the client.", "Hardware.")
    assert changes["curated_text"] == (False, True)
    assert "message" not in changes
    assert created["action"] == "created"
    assert {change["field"] for change in created["changes"]} >= {"family", "code", "message", "level"}


def test_text_edit_without_reason_gets_a_default_history_reason(curator, curator_client, codes):
    curator_client.patch(detail_url("netbackup", 58), {"explanation": "Shorter."}, format="json")
    record = codes["client"].history.latest()
    assert record.history_user == curator
    assert record.history_change_reason


def test_history_shows_imports_without_a_user(curator_client, codes):
    upsert_status_codes(
        [CodeRecord(family="netbackup", code=58, message="can't connect to client", typical_resolution_minutes=30)]
    )
    newest = curator_client.get(history_url("netbackup", 58)).json()["results"][0]
    assert newest["who"] is None
    assert newest["reason"] == "import"
    assert {change["field"] for change in newest["changes"]} == {"typical_resolution_minutes"}


@pytest.mark.parametrize("persona", ["engineer", "viewer"])
def test_history_is_for_curators_only(request, codes, persona):
    response = api_client_for(request.getfixturevalue(persona)).get(history_url("netbackup", 58))
    assert response.status_code == 403


# --- statistics -----------------------------------------------------------------------------------


def _counts(buckets):
    return {bucket["value"]: bucket["count"] for bucket in buckets}


def test_statistics_match_the_data(viewer_client, codes):
    response = viewer_client.get(STATS_URL)
    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 5
    assert _counts(body["by_level"]) == {0: 1, 1: 1, 2: 2, 3: 1}
    assert _counts(body["by_family"]) == {
        "netbackup": 3,
        "media_manager": 1,
        "robotic_error": 1,
        "device_config": 0,
        "device_management": 0,
        "robotic": 0,
    }
    categories = _counts(body["by_category"])
    assert categories["disk_storage"] == 1 and categories["network"] == 1 and categories["cloud"] == 0
    assert _counts(body["by_level_source"]) == {"classifier": 2, "import": 1, "curator": 2}
    assert _counts(body["by_severity"]) == {"info": 1, "warning": 1, "error": 2, "critical": 1}
    expected_average = StatusCode.objects.aggregate(avg=Avg("confidence"))["avg"]
    assert body["average_confidence"] == pytest.approx(expected_average, abs=1e-4)
    assert body["by_level"][2]["label"] == str(Level.APPROVAL.label)


def test_statistics_follow_the_list_filters(viewer_client, codes):
    body = viewer_client.get(STATS_URL, {"family": "netbackup"}).json()
    assert body["total"] == 3
    assert _counts(body["by_level"]) == {0: 1, 1: 1, 2: 1, 3: 0}
    assert body["average_confidence"] == pytest.approx((0.95 + 0.8 + 0.9) / 3, abs=1e-4)


def test_statistics_of_an_empty_knowledge_base(viewer_client, db):
    body = viewer_client.get(STATS_URL).json()
    assert body["total"] == 0
    assert body["average_confidence"] is None
    assert set(_counts(body["by_level"]).values()) == {0}


# --- classify -------------------------------------------------------------------------------------


def test_classify_answers_like_the_classifier_and_saves_nothing(engineer_client, codes):
    codes_before = list(StatusCode.objects.values_list("pk", "level", "confidence", "classification_reason"))
    history_before = StatusCode.history.count()
    payload = {
        "family": "netbackup",
        "code": 4207,
        "message": "Could not fetch snapshot metadata or state files",
        "explanation": "The snapshot could not be started.",
    }
    response = engineer_client.post(CLASSIFY_URL, payload, format="json")
    assert response.status_code == 200
    body = response.json()
    expected = get_classifier().classify(
        family="netbackup",
        code=4207,
        message=payload["message"],
        explanation=payload["explanation"],
        recommended_action="",
    )
    assert body["level"] == expected.level
    assert body["level_name"] == str(Level(expected.level).label)
    assert body["confidence"] == pytest.approx(expected.confidence, abs=1e-4)
    assert body["reason"] == expected.reason
    assert body["rules"] == list(expected.rules)
    assert {"category", "severity"} <= set(body)
    assert body["stored"] is None
    assert not StatusCode.objects.filter(family="netbackup", code=4207).exists()
    assert list(StatusCode.objects.values_list("pk", "level", "confidence", "classification_reason")) == codes_before
    assert StatusCode.history.count() == history_before


def test_classify_needs_only_a_message(engineer_client, db):
    response = engineer_client.post(CLASSIFY_URL, {"message": "socket read failed"}, format="json")
    assert response.status_code == 200
    assert response.json()["family"] is None
    assert 0 <= response.json()["confidence"] <= 1


def test_classify_reports_the_stored_level_of_a_known_code(engineer_client, codes):
    response = engineer_client.post(
        CLASSIFY_URL, {"family": "media-manager", "code": 58, "message": "no media available"}, format="json"
    )
    assert response.status_code == 200
    stored = response.json()["stored"]
    assert stored["level"] == 2
    assert stored["level_source"] == "curator"
    assert stored["url"].endswith(detail_url("media_manager", 58))


@pytest.mark.parametrize(
    "payload, field",
    [
        ({}, "message"),
        ({"message": ""}, "message"),
        ({"message": "   "}, "message"),
        ({"message": "x" * 501}, "message"),
        ({"message": "x", "family": "nosuch"}, "family"),
        ({"message": "x", "code": -1}, "code"),
        ({"message": "x", "code": "abc"}, "code"),
    ],
)
def test_classify_bad_input_is_400_naming_the_field(engineer_client, db, payload, field):
    response = engineer_client.post(CLASSIFY_URL, payload, format="json")
    assert response.status_code == 400
    assert response.json()["field"] == field
    assert response.json()["detail"].startswith(f"{field}:")


def test_read_only_token_may_classify(viewer, db):
    response = api_client_for(viewer, read_only=True).post(CLASSIFY_URL, {"message": "timed out"}, format="json")
    assert response.status_code == 200


def test_schema_documents_the_knowledge_base_endpoints(anon_client, db):
    response = anon_client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    text = response.content.decode()
    for path in (
        "/api/v1/status-codes/",
        "/api/v1/status-codes/{family}/{code}/",
        "/api/v1/status-codes/{family}/{code}/history/",
        "/api/v1/status-codes/statistics/",
        "/api/v1/classify/",
    ):
        assert re.search(re.escape(path), text), path
