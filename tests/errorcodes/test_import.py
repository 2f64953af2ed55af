"""manage.py import_status_codes and errorcodes.importers: every format, bad entries, idempotency,
curator precedence and classification. Fixtures in data/ are invented text shaped like the guide."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError

from errorcodes.choices import Level, LevelSource
from errorcodes.classifier import Classification
from errorcodes.importers import ImportFormatError, import_file, parse_file
from errorcodes.models import StatusCode
from errorcodes.services import CodeRecord, set_level, upsert_status_codes
from tests.conftest import make_status_code

DATA = Path(__file__).parent / "data"
EXTRACTION = DATA / "guide_extraction.json"
TEXT_EXPORT = DATA / "guide_export.txt"
CSV_FILE = DATA / "codes.csv"
KOREAN_CSV = DATA / "codes_korean_semicolon.csv"

pytestmark = pytest.mark.django_db


def run(*args) -> tuple[list[str], str]:
    """Run the command; return its output lines and what went to stderr (the progress bars)."""
    out, err = io.StringIO(), io.StringIO()
    call_command("import_status_codes", *map(str, args), stdout=out, stderr=err)
    return out.getvalue().splitlines(), err.getvalue()


def code(family, number) -> StatusCode:
    return StatusCode.objects.get(family=family, code=number)


def line_of(path: Path, text: str) -> int:
    return path.read_text(encoding="utf-8").split("\n").index(text) + 1


def history_count() -> int:
    return StatusCode.history.count()


class SpyClassifier:
    """Records what it was asked; the level follows one word so a test can see a re-classification."""

    def __init__(self):
        self.calls = []

    def classify(self, *, family, code, message, explanation="", recommended_action=""):
        self.calls.append((family, code))
        level = Level.ONSITE if "drive" in explanation else Level.AUTOMATIC
        return Classification(level, 0.7, f"spy read: {explanation}", None, None, ("spy",))


@pytest.fixture
def spy(monkeypatch):
    classifier = SpyClassifier()
    monkeypatch.setattr("errorcodes.classifier.get_classifier", lambda: classifier)
    return classifier


# --------------------------------------------------------------------------- JSON extraction


def test_json_extraction_lands_valid_entries_and_lists_bad_ones_by_index():
    lines, _err = run(EXTRACTION)

    assert lines[-1] == "created 4, updated 0, unchanged 0, rejected 5"
    assert lines[:-1] == [
        "rejected entry 2: no code",
        "rejected entry 3: code '9a' is not a number",
        "rejected entry 4: empty message",
        "rejected entry 5: unknown family 'klingon'",
        "rejected entry 6: not an object",
    ]
    assert set(StatusCode.objects.values_list("family", "code")) == {
        ("netbackup", 96),
        ("netbackup", 97),
        ("netbackup", 150),
        ("media_manager", 12),
    }


def test_json_cut_explanation_is_completed_and_action_taken_from_raw_text():
    run(EXTRACTION)

    media = code("netbackup", 96)
    assert media.explanation == (
        "The resource broker could not hand out a new volume because the pool held no usable volumes at that time."
    )
    assert media.recommended_action == (
        "Do the following:\n- Add volumes to the pool or move scratch volumes into it.\n"
        "- Check which pool the policy names."
    )
    # Running header, page number and the next entry on the page stay out of the text.
    assert "Synthetic Status Guide" not in media.recommended_action
    assert "12" not in media.recommended_action
    assert "in use" not in media.recommended_action
    assert media.source == "synthetic_guide.pdf, page 12"


def test_json_explanation_repeated_in_raw_text_is_not_doubled():
    run(EXTRACTION)

    in_use = code("netbackup", 97)
    assert in_use.explanation == "Another job holds the volume. Wait for it to finish or pick a different volume."
    assert in_use.recommended_action == "Rerun the job later."


def test_json_bare_list_gives_the_same_records_as_the_object_form(tmp_path):
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(json.loads(EXTRACTION.read_text(encoding="utf-8"))["error_codes"]), encoding="utf-8")

    assert parse_file(bare) == parse_file(EXTRACTION)
    lines, _err = run(bare)
    assert lines[-1] == "created 4, updated 0, unchanged 0, rejected 5"


def test_family_option_applies_to_entries_without_their_own(tmp_path):
    path = tmp_path / "mm.json"
    entries = [
        {"code": "3", "message": "a volume is missing from the database"},
        {"code": "3", "family": "netbackup", "message": "a path name is not valid"},
    ]
    path.write_text(json.dumps(entries), encoding="utf-8")

    run(path, "--family", "media_manager")

    assert code("media_manager", 3).message == "a volume is missing from the database"
    assert code("netbackup", 3).message == "a path name is not valid"


def test_same_code_twice_in_one_file_counts_once_and_completes_itself(tmp_path):
    path = tmp_path / "dup.json"
    entries = [
        {"code": "40", "message": "the network link dropped", "explanation": ""},
        {"code": "40", "message": "the network link dropped", "explanation": "A switch port reset the link."},
    ]
    path.write_text(json.dumps({"error_codes": entries}), encoding="utf-8")

    lines, _err = run(path)

    assert lines[-1] == "created 1, updated 0, unchanged 0, rejected 0"
    assert code("netbackup", 40).explanation == "A switch port reset the link."


# --------------------------------------------------------------------------- CSV


def test_csv_ignores_unknown_columns_and_reports_bad_rows_by_line():
    lines, _err = run(CSV_FILE)

    assert lines == [
        "rejected line 4: no code",
        "rejected line 5: code '9x' is not a number",
        "rejected line 6: empty message",
        "rejected line 7: unknown family 'klingon'",
        "created 3, updated 0, unchanged 0, rejected 4",
    ]
    connect = code("netbackup", 58)
    assert connect.category == "network"
    assert connect.level == 1
    assert connect.level_source == LevelSource.IMPORT
    # A quoted field spanning two physical lines is one message; the next row's line stays right.
    assert code("netbackup", 196).message == "the backup window closed before the job could start"
    assert code("media_manager", 12).explanation == ""


def test_csv_with_bom_semicolons_and_korean_headers():
    lines, _err = run(KOREAN_CSV)

    assert lines[-1] == "created 2, updated 0, unchanged 0, rejected 0"
    disk = code("netbackup", 2074)
    assert disk.message == "the disk volume is down"
    assert disk.explanation == "The storage server marked the volume down."
    assert disk.level == Level.APPROVAL  # "2 · Engineer approval" read as level 2


def test_csv_with_only_the_required_columns(tmp_path):
    path = tmp_path / "minimal.csv"
    path.write_text("code,message\n13,the file could not be read\n", encoding="utf-8")

    lines, _err = run(path)

    assert lines[-1] == "created 1, updated 0, unchanged 0, rejected 0"
    assert code("netbackup", 13).level_source == LevelSource.CLASSIFIER


def test_csv_without_a_code_column_is_refused_naming_the_columns(tmp_path):
    path = tmp_path / "wrong.csv"
    path.write_text("number,text\n13,the file could not be read\n", encoding="utf-8")

    with pytest.raises(CommandError, match="needs the columns code, message"):
        run(path)
    assert not StatusCode.objects.exists()


# --------------------------------------------------------------------------- text export and PDF


def test_text_export_of_the_guide():
    lines, _err = run(TEXT_EXPORT)

    assert lines == [
        f"rejected line {line_of(TEXT_EXPORT, 'NetBackup status code: 4x2')}: code '4x2' is not a number",
        f"rejected line {line_of(TEXT_EXPORT, 'NetBackup status code: 77')}: empty message",
        "created 5, updated 0, unchanged 0, rejected 2",
    ]
    assert set(StatusCode.objects.values_list("family", "code")) == {
        ("netbackup", 0),
        ("netbackup", 24),
        ("netbackup", 130),
        ("media_manager", 12),
        ("robotic_error", 5),
    }
    socket = code("netbackup", 24)
    assert socket.message == "the peer closed the socket while data was being written"
    # The list item runs over a page break: footer, page number, header and running header go.
    assert socket.recommended_action == (
        "Try these steps:\n"
        "- Follow the network path between both hosts and look for drops.\n"
        "- Raise the keep-alive interval so that idle connections survive the quiet period."
    )
    syscall = code("netbackup", 130)
    assert syscall.explanation.endswith("see NetBackup status code: 24 on page 2 for a related case.")
    assert syscall.recommended_action == "Read the job log and fix the host problem it names."
    for row in StatusCode.objects.all():
        for text in (row.message, row.explanation, row.recommended_action):
            assert "Synthetic Status Guide" not in text
            assert "footer" not in text
    assert code("media_manager", 12).recommended_action == (
        "Restart the volume database service after the current jobs finish."
    )


def _write_guide_pdf(path: Path) -> None:
    """A three-page guide drawn with reportlab: running header, footer and page number on each page."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    pages = [
        (
            "NetBackup status code: 0",
            [
                "NetBackup status code: 0",
                "Message: the job finished without any problem",
                "Explanation: Every step of the job ended normally and nothing",
                "needs attention.",
                "Recommended Action: Nothing to do.",
                "NetBackup status code: 58",
                "Message: the client connection could not be opened",
                "Explanation: The server did not get an answer from the client",
                "daemon before the connect timeout.",
                "Recommended Action: Try these steps:",
                "\u2022 Check that the client is running and that the",
            ],
        ),
        (
            "NetBackup status code: 58",
            [
                "daemon listens on its port.",
                "\u2022 Test name resolution in both directions.",
                "Device management status code: 7",
                "Message: the drive went into a down state",
                "Explanation: The device manager stopped using the drive after",
                "repeated errors.",
            ],
        ),
        (
            "Device management status code: 7",
            [
                "Recommended Action: Ask the site engineer to check the drive.",
                "NetBackup status code: x9",
                "Message: an entry with a broken code",
                "Explanation: Present to check rejection by page.",
            ],
        ),
    ]
    pdf = canvas.Canvas(str(path), pagesize=A4)
    width, height = A4
    for number, (running, lines) in enumerate(pages, start=1):
        pdf.drawString(40, height - 40, "Synthetic Status Guide")
        pdf.drawString(40, height - 54, running)
        y = height - 90
        for line in lines:
            pdf.drawString(50, y, line)
            y -= 14
        pdf.drawString(40, 40, "V-BIP fixture footer rev 3")
        pdf.drawString(width - 60, 40, str(number))
        pdf.showPage()
    pdf.save()


def test_pdf_of_the_guide(tmp_path):
    path = tmp_path / "guide.pdf"
    _write_guide_pdf(path)

    lines, _err = run(path)

    assert lines[-1] == "created 3, updated 0, unchanged 0, rejected 1"
    assert lines[0].startswith("rejected page 3, line ")
    assert lines[0].endswith(": code 'x9' is not a number")
    connect = code("netbackup", 58)
    assert connect.explanation == "The server did not get an answer from the client daemon before the connect timeout."
    assert connect.recommended_action == (
        "Try these steps:\n"
        "- Check that the client is running and that the daemon listens on its port.\n"
        "- Test name resolution in both directions."
    )
    assert connect.source == "guide.pdf, page 1"
    drive = code("device_management", 7)
    assert drive.explanation == "The device manager stopped using the drive after repeated errors."
    assert drive.recommended_action == "Ask the site engineer to check the drive."


def test_unreadable_pdf_is_refused(tmp_path):
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.4\nthis is not really a PDF\n")

    with pytest.raises(CommandError, match="cannot read .*broken.pdf as PDF"):
        run(path)


# --------------------------------------------------------------------------- idempotency, dry run, history


def test_reimport_changes_nothing_and_writes_no_history():
    run(EXTRACTION)
    before = list(StatusCode.objects.values().order_by("pk"))
    history = history_count()

    lines, _err = run(EXTRACTION)

    assert lines[-1] == "created 0, updated 0, unchanged 4, rejected 5"
    assert history_count() == history
    assert list(StatusCode.objects.values().order_by("pk")) == before


def test_import_records_history_with_its_reason_and_user(curator):
    records, _rejections = parse_file(TEXT_EXPORT)
    upsert_status_codes(records, user=curator, change_reason="guide 11.1")

    created = code("netbackup", 24).history.get()
    assert created.history_type == "+"
    assert created.history_change_reason == "guide 11.1"
    assert created.history_user == curator
    assert created.message == "the peer closed the socket while data was being written"


def test_changed_text_updates_the_row_and_adds_one_history_row(tmp_path):
    run(CSV_FILE)
    path = tmp_path / "revised.csv"
    path.write_text(
        "code,message,explanation\n58,client connection could not be opened,The client daemon refused the call.\n",
        encoding="utf-8",
    )

    lines, _err = run(path)

    assert lines[-1] == "created 0, updated 1, unchanged 0, rejected 0"
    row = code("netbackup", 58)
    assert row.explanation == "The client daemon refused the call."
    assert [h.history_type for h in row.history.all()] == ["~", "+"]


def test_dry_run_saves_nothing_and_says_so():
    lines, _err = run(EXTRACTION, "--dry-run")

    assert lines[-2] == "Dry run: nothing was saved."
    assert lines[-1] == "created 4, updated 0, unchanged 0, rejected 5"
    assert not StatusCode.objects.exists()
    assert history_count() == 0


def test_progress_bars_go_to_stderr_not_stdout():
    lines, err = run(EXTRACTION)

    assert "classifying" in err
    assert not any("classifying" in line for line in lines)

    _lines, quiet = run(EXTRACTION, "--no-progress")
    assert quiet == ""


# --------------------------------------------------------------------------- curator precedence


def test_curator_level_and_text_survive_a_reimport_and_gaps_are_filled(tmp_path, curator):
    row = make_status_code(code=58, message="curator's own message", explanation="curator's explanation")
    row.recommended_action = ""
    row.save()
    set_level([row], level=Level.ONSITE, reason="seen on site twice", user=curator)
    path = tmp_path / "other.csv"
    path.write_text(
        "code,message,explanation,recommended_action,level\n"
        "58,a different message,a different explanation,Restart the client daemon.,1\n",
        encoding="utf-8",
    )

    lines, _err = run(path)

    assert lines[-1] == "created 0, updated 1, unchanged 0, rejected 0"
    row.refresh_from_db()
    assert (row.level, row.level_source) == (Level.ONSITE, LevelSource.CURATOR)
    assert row.classification_reason.endswith("seen on site twice")
    assert row.message == "curator's own message"
    assert row.explanation == "curator's explanation"
    assert row.recommended_action == "Restart the client daemon."

    lines, _err = run(path)
    assert lines[-1] == "created 0, updated 0, unchanged 1, rejected 0"


def test_curated_text_is_kept_even_when_the_level_is_the_classifiers(tmp_path, spy):
    make_status_code(
        code=58, message="curator's wording", curated_text=True, level_source=LevelSource.CLASSIFIER, source="curator"
    )
    path = tmp_path / "other.csv"
    path.write_text("code,message\n58,vendor wording\n", encoding="utf-8")

    lines, _err = run(path)

    assert lines[-1] == "created 0, updated 0, unchanged 1, rejected 0"
    assert code("netbackup", 58).message == "curator's wording"
    assert spy.calls == []


# --------------------------------------------------------------------------- classification


def test_new_codes_are_classified_with_a_reason():
    run(TEXT_EXPORT)

    for row in StatusCode.objects.all():
        assert row.level_source == LevelSource.CLASSIFIER
        assert row.classification_reason.strip()
        assert row.level in Level.values
        assert 0.0 <= row.confidence <= 1.0
    assert code("netbackup", 0).level == Level.INFORMATIONAL


def test_changed_text_of_a_classifier_owned_code_is_classified_again(tmp_path, spy):
    first = tmp_path / "first.csv"
    first.write_text("code,message,explanation\n84,media write failed,The write did not complete.\n", encoding="utf-8")
    run(first)
    assert code("netbackup", 84).level == Level.AUTOMATIC
    assert spy.calls == [("netbackup", 84)]

    run(first)
    assert spy.calls == [("netbackup", 84)]  # same text: nobody asks the classifier again

    second = tmp_path / "second.csv"
    second.write_text("code,message,explanation\n84,media write failed,The drive reported a hard error.\n")
    lines, _err = run(second)

    assert lines[-1] == "created 0, updated 1, unchanged 0, rejected 0"
    row = code("netbackup", 84)
    assert spy.calls == [("netbackup", 84), ("netbackup", 84)]
    assert row.level == Level.ONSITE
    assert row.level_source == LevelSource.CLASSIFIER
    assert row.classification_reason == "spy read: The drive reported a hard error."


def test_changed_text_of_an_imported_level_is_not_classified_again(tmp_path, spy):
    run(CSV_FILE)  # code 58 arrives with level 1 from the sheet
    path = tmp_path / "revised.csv"
    path.write_text("code,message,explanation\n58,client connection could not be opened,A drive failed.\n")

    run(path)

    assert ("netbackup", 58) not in spy.calls
    row = code("netbackup", 58)
    assert (row.level, row.level_source) == (1, LevelSource.IMPORT)


# --------------------------------------------------------------------------- failures and the library API


def test_missing_file_fails(tmp_path):
    with pytest.raises(CommandError, match="file not found"):
        run(tmp_path / "absent.json")


def test_invalid_json_fails_naming_the_line(tmp_path):
    path = tmp_path / "bad.json"
    # A missing comma: every Python version reports it on line 3 (trailing-comma wording differs).
    path.write_text('{"error_codes": [\n{"code": "1"},\n{"code": 2 "x"}]}', encoding="utf-8")

    with pytest.raises(CommandError, match="invalid JSON at line 3"):
        run(path)


def test_file_without_any_valid_entry_fails_after_listing_the_rejections(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([{"code": "x", "message": "m"}, {"code": "1", "message": ""}]), encoding="utf-8")
    out = io.StringIO()

    with pytest.raises(CommandError, match="no valid status codes"):
        call_command("import_status_codes", str(path), "--no-progress", stdout=out)

    assert out.getvalue().splitlines() == [
        "rejected entry 0: code 'x' is not a number",
        "rejected entry 1: empty message",
    ]
    assert not StatusCode.objects.exists()


def test_unknown_family_option_is_refused():
    with pytest.raises(CommandError, match="unknown family 'nope'"):
        run(EXTRACTION, "--family", "nope")


def test_format_is_guessed_from_content_when_the_name_says_nothing(tmp_path):
    def keys(records):
        return [(r.family, r.code, r.message, r.explanation) for r in records]

    for name, source in (("extraction.dat", EXTRACTION), ("sheet.dat", CSV_FILE), ("guide.dat", TEXT_EXPORT)):
        path = tmp_path / name
        path.write_bytes(source.read_bytes())
        guessed, expected = parse_file(path), parse_file(source)
        assert keys(guessed[0]) == keys(expected[0])
        assert [r.location for r in guessed[1]] == [r.location for r in expected[1]]


def test_explicit_format_overrides_the_extension(tmp_path):
    path = tmp_path / "sheet.txt"
    path.write_bytes(CSV_FILE.read_bytes())

    records, rejections = parse_file(path, format="csv")

    assert [r.code for r in records] == [58, 12, 196]
    assert len(rejections) == 4


def test_import_file_accepts_an_upload_and_returns_the_result():
    upload = SimpleUploadedFile("codes.csv", CSV_FILE.read_bytes(), content_type="text/csv")

    result = import_file(upload)

    assert (result.created, result.updated, result.unchanged) == (3, 0, 0)
    assert [str(r) for r in result.rejected][0] == "line 4: no code"
    assert code("netbackup", 58).source == "codes.csv"


def test_parse_file_refuses_what_it_cannot_read():
    with pytest.raises(ImportFormatError, match="cannot tell the format"):
        parse_file(io.BytesIO(b"just some words"))


def test_records_from_parse_file_are_validated():
    records, _rejections = parse_file(EXTRACTION)

    assert all(isinstance(r, CodeRecord) and isinstance(r.code, int) for r in records)


def test_command_exit_status(tmp_path):
    """A real process: 1 with the reason on stderr when the file cannot be read."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}",
    }
    manage = Path(__file__).resolve().parents[2] / "manage.py"
    proc = subprocess.run(
        [sys.executable, str(manage), "import_status_codes", str(tmp_path / "absent.csv")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert proc.returncode == 1
    assert "file not found" in proc.stderr


def test_help_describes_the_formats_and_locations():
    from errorcodes.management.commands.import_status_codes import Command

    text = Command().create_parser("manage.py", "import_status_codes").format_help()

    assert "--dry-run" in text
    assert "'entry N'" in text
    assert "--format {json,csv,text,pdf}" in text


def test_pdf_reading_reports_each_page(tmp_path):
    path = tmp_path / "guide.pdf"
    _write_guide_pdf(path)
    pages = []

    records, _rejections = parse_file(path, on_page=lambda done, total: pages.append((done, total)))

    assert pages == [(1, 3), (2, 3), (3, 3)]
    assert len(records) == 3


def test_csv_row_with_a_bad_optional_number_is_rejected_and_the_rest_land(tmp_path):
    path = tmp_path / "minutes.csv"
    path.write_text(
        "code,message,typical_resolution_minutes\n13,the file could not be read,abc\n14,the file could not be written,30\n",
        encoding="utf-8",
    )

    lines, _err = run(path)

    assert lines == [
        "rejected line 2: typical_resolution_minutes 'abc' is not a whole number",
        "created 1, updated 0, unchanged 0, rejected 1",
    ]
    assert code("netbackup", 14).typical_resolution_minutes == 30


def test_json_values_of_the_wrong_type_are_rejected_not_fatal(tmp_path):
    path = tmp_path / "odd.json"
    entries = [
        {"code": "1", "message": "a list as family", "family": ["netbackup"]},
        {"code": [2], "message": "a list as code"},
        {"code": "3", "message": "a list as category", "category": ["network"]},
        {"code": 4, "message": "an integer code is fine"},
    ]
    path.write_text(json.dumps(entries), encoding="utf-8")

    lines, _err = run(path)

    assert lines == [
        "rejected entry 0: unknown family ['netbackup']",
        "rejected entry 1: code [2] is not a non-negative number",
        "rejected entry 2: unknown category \"['network']\"",
        "created 1, updated 0, unchanged 0, rejected 3",
    ]


def test_a_concurrent_import_of_the_same_codes_asks_to_run_again(monkeypatch):
    from django.db import IntegrityError

    def collide(*args, **kwargs):
        raise IntegrityError("duplicate key value violates unique constraint")

    monkeypatch.setattr("errorcodes.management.commands.import_status_codes.upsert_status_codes", collide)

    with pytest.raises(CommandError, match="at the same time; nothing was saved, run again"):
        run(EXTRACTION)


def test_curator_category_edit_survives_reimport_and_reclassification(curator_client):
    from errorcodes.services import reclassify

    make_status_code(code=4242, message="disk pool is full", category="other", level_source=LevelSource.CLASSIFIER)
    response = curator_client.patch(
        "/api/v1/status-codes/netbackup/4242/", {"category": "disk_storage", "severity": "critical"}, format="json"
    )
    assert response.status_code == 200, response.content
    upsert_status_codes(
        [CodeRecord(family="netbackup", code=4242, message="disk pool is full", category="media", severity="warning")]
    )
    reclassify(StatusCode.objects.filter(code=4242))
    row = code("netbackup", 4242)
    assert (row.category, row.severity) == ("disk_storage", "critical")
    assert row.curated_text


def test_awkward_characters_survive_create_update_and_history():
    # PostgreSQL writes go through COPY, where backslashes, tabs and newlines are escapes.
    nasty = "path C:\\Program Files\\Veritas \\N tab\there\r\nline two ■ 한국어 \\."
    upsert_status_codes([CodeRecord(family="netbackup", code=4343, message="odd text", explanation=nasty)])
    row = code("netbackup", 4343)
    assert row.explanation == nasty.strip()
    changed = nasty + " (revised)"
    upsert_status_codes([CodeRecord(family="netbackup", code=4343, message="odd text", explanation=changed)])
    row = code("netbackup", 4343)
    assert row.explanation == changed.strip()
    explanations = list(row.history.order_by("history_id").values_list("explanation", flat=True))
    assert explanations == [nasty.strip(), changed.strip()]
