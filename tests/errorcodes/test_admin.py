"""The curator admin of the status-code knowledge base, driven through the Django test client."""

import csv
import io

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from errorcodes.choices import LevelSource
from errorcodes.classifier import get_classifier
from errorcodes.models import StatusCode
from errorcodes.resources import EXPORT_FIELDS
from tests.conftest import make_status_code, make_user
from vbip_project.accounts import roles

CHANGELIST = reverse("admin:errorcodes_statuscode_changelist")
ADD = reverse("admin:errorcodes_statuscode_add")
IMPORT = reverse("admin:errorcodes_statuscode_import_catalogue")
EXPORT = reverse("admin:errorcodes_statuscode_export")


def change_url(obj):
    return reverse("admin:errorcodes_statuscode_change", args=[obj.pk])


def history_url(obj):
    return reverse("admin:errorcodes_statuscode_history", args=[obj.pk])


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def form_data(obj, **overrides):
    """The POST body of the change form for `obj`, as a browser would send it unchanged."""
    data = {
        "message": obj.message,
        "level": str(obj.level),
        "level_change_reason": "",
        "explanation": obj.explanation,
        "recommended_action": obj.recommended_action,
        "category": obj.category,
        "severity": obj.severity,
        "typical_resolution_minutes": "" if obj.typical_resolution_minutes is None else obj.typical_resolution_minutes,
        "is_active": "on" if obj.is_active else "",
        "curated_text": "on" if obj.curated_text else "",
        "source": obj.source,
    }
    data.update(overrides)
    return data


def results(response):
    return list(response.context["cl"].result_list)


def upload(name, text):
    return SimpleUploadedFile(name, text.encode("utf-8"), content_type="text/csv")


@pytest.fixture
def superuser(admin_user):
    return admin_user


@pytest.fixture
def staff_curator(db):
    return make_user("kim.curator", role=roles.CURATORS, is_staff=True)


@pytest.fixture
def staff_viewer(db):
    return make_user("lee.viewer", role=roles.VIEWERS, is_staff=True)


@pytest.fixture
def staff_engineer(db):
    return make_user("park.engineer", role=roles.ENGINEERS, is_staff=True)


@pytest.fixture(params=["superuser", "staff_curator"])
def editor(request):
    """Each test using this runs as a superuser and as a plain member of the Curators group."""
    return request.getfixturevalue(request.param)


@pytest.fixture(params=["staff_viewer", "staff_engineer"])
def reader(request):
    """Staff users who may look at the knowledge base but not change it."""
    return request.getfixturevalue(request.param)


@pytest.fixture
def codes(db):
    return {
        "timeout": make_status_code(code=58, message="can't connect to client", level=1),
        "mm_58": make_status_code(family="media_manager", code=58, message="robotic library not ready", level=3),
        "write": make_status_code(
            code=84, message="media write error", category="tape_hardware", severity="critical", level=3
        ),
        "cert": make_status_code(
            code=8500,
            message="Connection to the peer failed, code 58 seen",
            category="security_certificates",
            level=2,
            level_source=LevelSource.CURATOR,
            is_active=False,
        ),
    }


# --------------------------------------------------------------------------- change list


def test_curators_group_has_the_model_permissions_the_admin_needs(staff_curator):
    for perm in ("add", "change", "view", "delete"):
        assert staff_curator.has_perm(f"errorcodes.{perm}_statuscode")


def test_changelist_renders_codes_for_editors(editor, codes):
    response = client_for(editor).get(CHANGELIST)

    assert response.status_code == 200
    assert {obj.pk for obj in results(response)} == {obj.pk for obj in codes.values()}
    assert "media write error" in response.text
    assert reverse("admin:errorcodes_statuscode_import_catalogue") in response.text


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"family__exact": "media_manager"}, {"mm_58"}),
        ({"level__exact": "3"}, {"mm_58", "write"}),
        ({"level_source__exact": "curator"}, {"cert"}),
        ({"category__exact": "tape_hardware"}, {"write"}),
        ({"severity__exact": "critical"}, {"write"}),
        ({"is_active__exact": "0"}, {"cert"}),
    ],
)
def test_changelist_filters_narrow_the_list(superuser, codes, query, expected):
    response = client_for(superuser).get(CHANGELIST, query)

    assert response.status_code == 200
    assert {obj.pk for obj in results(response)} == {codes[name].pk for name in expected}


def test_search_by_number_matches_the_code_exactly_in_every_family(superuser, codes):
    make_status_code(code=158, message="failed accessing daemon lock file")

    response = client_for(superuser).get(CHANGELIST, {"q": "58"})

    # 158 and the message mentioning "58" are not matches: a number means a code.
    assert {obj.pk for obj in results(response)} == {codes["timeout"].pk, codes["mm_58"].pk}


def test_search_by_words_matches_the_message(superuser, codes):
    response = client_for(superuser).get(CHANGELIST, {"q": "write error"})

    assert [obj.pk for obj in results(response)] == [codes["write"].pk]


def test_search_with_a_number_too_big_for_a_code_finds_nothing(superuser, codes):
    response = client_for(superuser).get(CHANGELIST, {"q": "9" * 30})

    assert response.status_code == 200
    assert results(response) == []


def test_changelist_queries_do_not_grow_with_the_number_of_codes(superuser):
    client = client_for(superuser)
    make_status_code(code=1, message="first")
    client.get(CHANGELIST)  # warm the session and content-type caches
    with CaptureQueriesContext(connection) as few:
        client.get(CHANGELIST)
    for code in range(2, 60):
        make_status_code(code=code, message=f"message {code}")
    with CaptureQueriesContext(connection) as many:
        response = client.get(CHANGELIST)

    assert len(results(response)) == 59
    assert len(many) == len(few)


# --------------------------------------------------------------------------- change form and history


def test_change_form_shows_the_classification(editor, codes):
    obj = codes["timeout"]
    StatusCode.objects.filter(pk=obj.pk).update(classification_reason="Matched the network-timeout rule.")

    response = client_for(editor).get(change_url(obj))

    assert response.status_code == 200
    assert "Classification" in response.text
    assert "Matched the network-timeout rule." in response.text
    assert "reason for level change" in response.text.lower()


def test_level_change_without_reason_is_refused(editor, codes):
    obj = codes["timeout"]

    response = client_for(editor).post(change_url(obj), form_data(obj, level="2"))

    assert response.status_code == 200
    assert "level_change_reason" in response.context["adminform"].form.errors
    obj.refresh_from_db()
    assert (obj.level, obj.level_source) == (1, LevelSource.CLASSIFIER)


def test_level_change_with_reason_becomes_a_curator_decision(editor, codes):
    obj = codes["timeout"]

    response = client_for(editor).post(
        change_url(obj), form_data(obj, level="2", level_change_reason="Customer firewall changes need approval")
    )

    assert response.status_code == 302
    obj.refresh_from_db()
    assert obj.level == 2
    assert obj.level_source == LevelSource.CURATOR
    assert obj.confidence == 1.0
    assert obj.classification_reason == (f"Set by curator {editor.username}: Customer firewall changes need approval")
    latest = obj.history.latest()
    assert latest.history_change_reason == "Customer firewall changes need approval"
    assert latest.history_user == editor


def test_text_edit_marks_the_text_curated_and_leaves_the_level_alone(editor, codes):
    obj = codes["timeout"]

    response = client_for(editor).post(change_url(obj), form_data(obj, message="cannot connect to the client"))

    assert response.status_code == 302
    obj.refresh_from_db()
    assert obj.message == "cannot connect to the client"
    assert obj.curated_text is True
    assert (obj.level, obj.level_source) == (1, LevelSource.CLASSIFIER)
    assert obj.history.latest().history_user == editor


def test_family_and_code_cannot_be_changed_on_an_existing_code(superuser, codes):
    obj = codes["timeout"]

    client_for(superuser).post(change_url(obj), form_data(obj, family="robotic", code="999"))

    obj.refresh_from_db()
    assert (obj.family, obj.code) == ("netbackup", 58)


def test_adding_a_code_requires_a_reason_for_its_level(superuser, db):
    client = client_for(superuser)
    data = {"family": "netbackup", "code": "4242", "message": "custom wrapper failed", "level": "2"}
    data |= {"category": "other", "severity": "error", "is_active": "on"}

    refused = client.post(ADD, {**data, "level_change_reason": ""})
    accepted = client.post(ADD, {**data, "level_change_reason": "Site-specific script; engineer checks it"})

    assert refused.status_code == 200
    assert accepted.status_code == 302
    obj = StatusCode.objects.get(family="netbackup", code=4242)
    assert obj.level_source == LevelSource.CURATOR
    assert obj.history.get().history_change_reason == "Site-specific script; engineer checks it"


def test_history_page_shows_who_why_and_which_fields_changed(editor, codes):
    obj = codes["timeout"]
    client = client_for(editor)
    client.post(change_url(obj), form_data(obj, level="3", level_change_reason="Always a faulty NIC at this site"))

    response = client.get(history_url(obj))

    assert response.status_code == 200
    assert "Always a faulty NIC at this site" in response.text
    assert editor.username in response.text
    # The diff against the previous version names the fields the curator's save changed.
    assert "Resolution level, Confidence, Classification reason, Level source" in response.text
    assert "1 · Automatic&nbsp;&rarr;&nbsp;3 · On-site / vendor" in response.text


def test_history_page_lists_changed_fields_of_the_oldest_row_on_a_page(superuser, codes, monkeypatch):
    from errorcodes.admin import StatusCodeAdmin

    monkeypatch.setattr(StatusCodeAdmin, "history_list_per_page", 1)
    obj = codes["timeout"]
    client = client_for(superuser)
    client.post(change_url(obj), form_data(obj, message="cannot connect to the client"))

    response = client.get(history_url(obj))

    assert "Message, Text curated" in response.text


def test_old_versions_cannot_be_saved_back(superuser, codes):
    obj = codes["timeout"]
    version = obj.history.earliest()
    url = reverse("admin:errorcodes_statuscode_simple_history", args=[obj.pk, version.history_id])
    client = client_for(superuser)

    assert client.get(url).status_code == 200
    assert client.post(url, form_data(obj, level="0")).status_code == 403
    obj.refresh_from_db()
    assert obj.level == 1


# --------------------------------------------------------------------------- bulk actions


def action_post(action, objs, **extra):
    return {"action": action, ACTION_CHECKBOX_NAME: [str(obj.pk) for obj in objs], **extra}


def test_set_level_action_asks_for_level_and_reason_first(editor, codes):
    selected = [codes["timeout"], codes["write"]]

    response = client_for(editor).post(CHANGELIST, action_post("set_level_action", selected, index="0"))

    assert response.status_code == 200
    assert "admin/errorcodes/statuscode/set_level.html" in [t.name for t in response.templates]
    assert "media write error" in response.text
    assert StatusCode.objects.filter(level_source=LevelSource.CURATOR).count() == 1


def test_set_level_action_without_reason_changes_nothing(editor, codes):
    selected = [codes["timeout"], codes["write"]]

    response = client_for(editor).post(
        CHANGELIST, action_post("set_level_action", selected, apply="yes", level="2", reason="   ")
    )

    assert response.status_code == 200
    assert "reason" in response.context["form"].errors
    assert StatusCode.objects.get(pk=codes["timeout"].pk).level == 1
    assert StatusCode.objects.get(pk=codes["write"].pk).level == 3


def test_set_level_action_with_reason_makes_curator_decisions(editor, codes):
    selected = [codes["timeout"], codes["write"]]

    response = client_for(editor).post(
        CHANGELIST,
        action_post("set_level_action", selected, apply="yes", level="2", reason="Reviewed with the storage team"),
        follow=True,
    )

    assert response.status_code == 200
    assert "set on 2 status codes as a curator decision; 2 changed" in response.text
    for obj in selected:
        obj.refresh_from_db()
        assert (obj.level, obj.level_source, obj.confidence) == (2, LevelSource.CURATOR, 1.0)
        latest = obj.history.latest()
        assert latest.history_change_reason == "Reviewed with the storage team"
        assert latest.history_user == editor
    assert StatusCode.objects.get(pk=codes["mm_58"].pk).level_source == LevelSource.CLASSIFIER


def test_set_level_action_on_all_filtered_codes(superuser, codes):
    response = client_for(superuser).post(
        CHANGELIST + "?family__exact=netbackup",
        action_post(
            "set_level_action", [codes["timeout"]], select_across="1", apply="yes", level="0", reason="Lab only"
        ),
    )

    assert response.status_code == 302
    levels = dict(StatusCode.objects.values_list("pk", "level"))
    assert [levels[codes[name].pk] for name in ("timeout", "write", "cert")] == [0, 0, 0]
    assert levels[codes["mm_58"].pk] == 3


def test_reclassify_action_keeps_curator_levels(editor, codes):
    classifier_owned = codes["timeout"]
    StatusCode.objects.filter(pk=classifier_owned.pk).update(level=0, confidence=0.01, classification_reason="stale")
    curated = codes["cert"]
    expected = get_classifier().classify(
        family=classifier_owned.family,
        code=classifier_owned.code,
        message=classifier_owned.message,
        explanation=classifier_owned.explanation,
        recommended_action=classifier_owned.recommended_action,
    )

    response = client_for(editor).post(
        CHANGELIST, action_post("reclassify_action", [classifier_owned, curated], index="0"), follow=True
    )

    assert "1 curator decisions kept" in response.text
    classifier_owned.refresh_from_db()
    assert classifier_owned.classification_reason == expected.reason
    assert classifier_owned.level == expected.level
    curated.refresh_from_db()
    assert (curated.level, curated.level_source, curated.classification_reason) == (2, LevelSource.CURATOR, "test")


# --------------------------------------------------------------------------- readers (viewers, engineers)


def test_readers_see_the_list_but_no_import_button(reader, codes):
    response = client_for(reader).get(CHANGELIST)

    assert response.status_code == 200
    assert IMPORT not in response.text


def test_readers_cannot_change_a_code(reader, codes):
    obj = codes["timeout"]

    response = client_for(reader).post(change_url(obj), form_data(obj, level="3", level_change_reason="no"))

    assert response.status_code == 403
    obj.refresh_from_db()
    assert obj.level == 1


def test_readers_cannot_run_bulk_actions(reader, codes):
    client = client_for(reader)
    client.post(CHANGELIST, action_post("set_level_action", [codes["timeout"]], apply="yes", level="3", reason="no"))
    client.post(CHANGELIST, action_post("reclassify_action", [codes["timeout"]], index="0"))

    codes["timeout"].refresh_from_db()
    assert (codes["timeout"].level, codes["timeout"].level_source) == (1, LevelSource.CLASSIFIER)
    assert codes["timeout"].history.count() == 1


def test_readers_cannot_import(reader):
    client = client_for(reader)

    assert client.get(IMPORT).status_code == 403
    response = client.post(IMPORT, {"file": upload("c.csv", "code,message\n5,x\n"), "format": "csv"})
    assert response.status_code == 403
    assert not StatusCode.objects.exists()


def test_readers_cannot_revert_through_the_history_form(reader, codes):
    obj = codes["timeout"]
    version = obj.history.earliest()
    url = reverse("admin:errorcodes_statuscode_simple_history", args=[obj.pk, version.history_id])

    response = client_for(reader).post(url, form_data(obj, level="0"))

    assert response.status_code == 403
    obj.refresh_from_db()
    assert obj.level == 1


# --------------------------------------------------------------------------- catalogue import

CATALOGUE_CSV = (
    "family,code,message,explanation,level\n"
    "netbackup,2001,no drives are available,All drives are busy or down.,\n"
    "netbackup,not-a-number,broken row,,\n"
    "media_manager,2002,robot door open,,3\n"
)


def import_post(file, **fields):
    return {"file": file, "format": "auto", "family": "netbackup", **fields}


def test_import_view_renders_the_upload_form(editor):
    response = client_for(editor).get(IMPORT)

    assert response.status_code == 200
    assert 'enctype="multipart/form-data"' in response.text


def test_import_csv_creates_codes_and_reports_bad_rows_with_their_line(editor, db):
    response = client_for(editor).post(IMPORT, import_post(upload("catalogue.csv", CATALOGUE_CSV)))

    assert response.status_code == 200
    result = response.context["result"]
    assert (result.created, result.updated, result.unchanged, len(result.rejected)) == (2, 0, 0, 1)
    assert "line 3" in response.text
    assert "not-a-number" in response.text
    assert set(StatusCode.objects.values_list("family", "code")) == {("netbackup", 2001), ("media_manager", 2002)}
    imported = StatusCode.objects.get(code=2002)
    assert (imported.level, imported.level_source) == (3, LevelSource.IMPORT)
    assert imported.history.get().history_user == editor


def test_import_keeps_curator_decisions(superuser, codes):
    text = "family,code,message,level\nnetbackup,8500,Connection to the peer failed,0\n"

    response = client_for(superuser).post(IMPORT, import_post(upload("update.csv", text)))

    assert response.context["result"].rejected == []
    curated = StatusCode.objects.get(pk=codes["cert"].pk)
    assert (curated.level, curated.level_source) == (2, LevelSource.CURATOR)


def test_import_dry_run_saves_nothing(editor, db):
    response = client_for(editor).post(IMPORT, import_post(upload("catalogue.csv", CATALOGUE_CSV), dry_run="on"))

    assert response.status_code == 200
    assert response.context["result"].created == 2
    assert response.context["result"].dry_run is True
    assert not StatusCode.objects.exists()


def test_import_again_changes_nothing(superuser, db):
    client = client_for(superuser)
    client.post(IMPORT, import_post(upload("catalogue.csv", CATALOGUE_CSV)))

    response = client.post(IMPORT, import_post(upload("catalogue.csv", CATALOGUE_CSV)))

    result = response.context["result"]
    assert (result.created, result.updated, result.unchanged) == (0, 0, 2)


@override_settings(MAX_UPLOAD_BYTES=1024)
def test_import_rejects_a_file_over_the_upload_limit(editor, db):
    rows = "".join(f"netbackup,{code},message number {code}\n" for code in range(3000, 3100))
    big = upload("big.csv", "family,code,message\n" + rows)
    assert big.size > 1024

    response = client_for(editor).post(IMPORT, import_post(big))

    assert response.status_code == 200
    assert "file" in response.context["form"].errors
    assert "at most 1.0" in response.text
    assert not StatusCode.objects.exists()


def test_import_of_an_unreadable_file_names_the_problem(editor, db):
    response = client_for(editor).post(IMPORT, import_post(upload("codes.csv", "just,some,words\n1,2,3\n")))

    assert response.status_code == 200
    assert "file" in response.context["form"].errors
    assert "code" in " ".join(response.context["form"].errors["file"])
    assert response.context["result"] is None


# --------------------------------------------------------------------------- export


def test_export_returns_csv_with_a_header_row(editor, codes):
    fields = {f"statuscoderesource_{name}": "on" for name in EXPORT_FIELDS}

    response = client_for(editor).post(EXPORT, {"format": "0", "resource": "0", **fields})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == list(EXPORT_FIELDS)
    assert {(row[0], row[1]) for row in rows[1:]} == {(obj.family, str(obj.code)) for obj in codes.values()}


def test_export_offers_csv_xlsx_and_json(superuser, db):
    response = client_for(superuser).get(EXPORT)

    labels = [label for _value, label in response.context["form"].fields["format"].choices]
    assert labels[1:] == ["csv", "xlsx", "json"]


def test_readers_can_open_a_code_read_only(reader, codes):
    response = client_for(reader).get(change_url(codes["timeout"]))

    assert response.status_code == 200
    assert 'name="level"' not in response.text
    assert "can&#x27;t connect to client" in response.text
    assert "reason for level change" not in response.text.lower()


def test_import_uses_the_chosen_format_when_the_name_does_not_tell(superuser, db):
    client = client_for(superuser)
    # "status" is a code column for the CSV reader, but nothing in the name or the first line says CSV.
    text = "status,message\n2003,drive cleaning required\n"

    guessed = client.post(IMPORT, import_post(upload("export.dat", text)))
    chosen = client.post(IMPORT, import_post(upload("export.dat", text), format="csv", family="robotic"))

    assert "file" in guessed.context["form"].errors
    assert chosen.context["result"].created == 1
    assert StatusCode.objects.get(code=2003).family == "robotic"
