"""The resolution-level classifier: policy per level, guards, explanations, learning, and the CLI."""

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from errorcodes.choices import Category, LevelSource, Severity
from errorcodes.classifier import Classification, Classifier, Example, get_classifier, reset_classifier
from errorcodes.models import StatusCode
from tests.conftest import make_status_code

CATALOG = Path(__file__).resolve().parents[2] / "errorcodes" / "catalog" / "status_codes.json"


@pytest.fixture(autouse=True)
def fresh_shared_classifier():
    # The shared classifier is process-wide; curated rows of one test must not teach the next.
    reset_classifier()
    yield
    reset_classifier()


@pytest.fixture(scope="module")
def blank():
    """Rules only: no curated examples, as on a fresh installation."""
    return Classifier()


def classify(classifier, message, *, family="netbackup", code=9999, explanation="", recommended_action=""):
    return classifier.classify(
        family=family, code=code, message=message, explanation=explanation, recommended_action=recommended_action
    )


# ---- level 0


@pytest.mark.parametrize(
    "message",
    [
        "the requested operation was successfully completed",
        "Backup completed successfully",
        "request completed",
        "STATUS_SUCCESS",
    ],
)
def test_success_messages_are_informational(blank, message):
    result = classify(blank, message, code=0)
    assert result.level == 0
    assert "success" in result.rules
    assert result.category == Category.INFORMATIONAL
    assert result.severity == Severity.INFO


@pytest.mark.parametrize(
    "message",
    [
        "The job was cancelled by the operator",
        "termination requested by administrator",
        "suspend requested by administrator",
        "The eject command was aborted by the user",
    ],
)
def test_intended_operator_actions_are_informational(blank, message):
    result = classify(blank, message)
    assert result.level == 0
    assert "intended operator action" in result.rules


def test_failure_worded_with_success_is_not_informational(blank):
    result = classify(blank, "no images were successfully processed: socket read failed")
    assert result.level != 0
    assert "success" not in result.rules


def test_look_alike_informational_codes_do_not_close_a_failure():
    examples = [
        Example("netbackup", 279, "vault session process is complete", 0),
        Example("netbackup", 296, "vault session process called but nothing to do", 0),
    ]
    result = Classifier(examples).classify(family="netbackup", code=9, message="vault session process stalled")
    assert result.level != 0
    assert "Informational needs words" in result.reason


# ---- level 1


@pytest.mark.parametrize(
    "message",
    [
        "socket read failed",
        "network connection timed out",
        "client connection refused",
        "timed out connecting to client",
        "connection reset by peer while sending data",
        "host is unreachable",
    ],
)
def test_transient_network_failures_are_automatic(blank, message):
    result = classify(blank, message)
    assert result.level == 1
    assert "transient network" in result.rules
    assert "Rule 'transient network'" in result.reason


@pytest.mark.parametrize(
    ("message", "rule"),
    [
        ("client backup was not attempted because backup window closed", "backup window closed"),
        ("Client is busy, retry later", "client busy or briefly unavailable"),
        ("Snapshot creation failed", "snapshot failed"),
        ("the requested resource is busy", "client busy or briefly unavailable"),
    ],
)
def test_other_transient_causes_are_automatic(blank, message, rule):
    result = classify(blank, message)
    assert result.level == 1
    assert rule in result.rules


# ---- level 2


@pytest.mark.parametrize(
    ("message", "rule"),
    [
        (
            "unable to allocate new media for backup, storage unit has none available",
            "shared storage or media exhausted",
        ),
        ("Disk storage unit is full", "shared storage or media exhausted"),
        ("The certificate is expired", "credentials or certificates"),
        ("Failed to resolve the host name of the media server", "name resolution"),
        ("permission denied", "permissions"),
        ("The Oracle RMAN script returned an error", "database agent"),
        ("The specified policy does not exist", "configuration"),
        ("The license for this feature is not installed", "licence"),
        ("Media Manager device daemon is not active", "service must be restarted"),
    ],
)
def test_configuration_shared_resources_and_credentials_need_approval(blank, message, rule):
    result = classify(blank, message)
    assert result.level == 2
    assert rule in result.rules


def test_message_no_rule_knows_goes_to_an_engineer_with_low_confidence(blank):
    result = classify(blank, "quux frobnication incomplete")
    assert result.level == 2
    assert result.rules == ("default",)
    assert result.confidence <= 0.35
    assert "engineer decides" in result.reason


# ---- level 3 and the hardware guard


@pytest.mark.parametrize(
    "message",
    [
        "tape drive reported a hardware error",
        "robotic library is down on server",
        "SCSI command failure on drive",
        "HBA firmware mismatch detected",
        "The drive is not ready or inoperable",
    ],
)
def test_hardware_faults_are_on_site(blank, message):
    result = classify(blank, message)
    assert result.level == 3
    assert "hardware" in result.rules
    assert result.category == Category.TAPE_HARDWARE


@pytest.mark.parametrize(
    ("message", "rule"),
    [
        ("media write error", "media read, write or position error"),
        ("media position error", "media read, write or position error"),
        ("image record has been corrupted", "corruption"),
        (
            "An unexpected internal error occurred. Contact Veritas Technical Support.",
            "internal fault, contact vendor support",
        ),
    ],
)
def test_damaged_media_corruption_and_vendor_cases_are_on_site(blank, message, rule):
    result = classify(blank, message)
    assert result.level == 3
    assert rule in result.rules


@pytest.mark.parametrize(
    "message",
    [
        "Invalid drive type in the device configuration",
        "robot number does not exist",
        "Drive name is already in use by another drive",
        "invalid robot type",
    ],
)
def test_configuring_hardware_needs_approval_not_a_site_visit(blank, message):
    result = classify(blank, message)
    assert result.level == 2
    assert "hardware" in result.rules


def test_hardware_is_never_automatic_even_when_transient_words_win(blank):
    result = classify(blank, "timed out waiting for the tape drive to respond")
    assert result.level == 3


def test_hardware_guard_overrides_curated_neighbours():
    examples = [Example("netbackup", 500 + i, f"robot connection timed out on host {i}", 1) for i in range(3)]
    result = Classifier(examples).classify(family="netbackup", code=9, message="robot connection timed out on host")
    assert result.level == 3
    assert "hardware guard" in result.rules
    assert "Hardware guard: hardware named (robot) → 3" in result.reason


@pytest.mark.parametrize(
    "message", ["Robot inventory completed successfully", "Tape drive cleaning was cancelled by the operator"]
)
def test_hardware_reporting_success_or_an_operator_action_stays_informational(blank, message):
    result = classify(blank, message)
    assert result.level == 0
    assert "hardware guard" not in result.rules


def test_drive_letter_is_not_hardware(blank):
    result = classify(blank, "network connection timed out while reading the D: drive letter mapping")
    assert "hardware" not in result.rules
    assert result.level == 1


# ---- the destructive guard


@pytest.mark.parametrize(
    "message",
    [
        "timed out while expiring images",
        "the operation timed out while deleting expired images",
        "socket read failed during image deletion",
        "network connection lost while overwriting the backup",
        "client busy: image expiration deferred",
        "connection reset while purging old fragments",
        "retry later: erase of the volume was interrupted",
        "lock held while pruning catalog entries",
        "network connection reset while relabeling the media",
        "Timeout occurred; the media will be relabeled on the next attempt",
    ],
)
def test_anything_that_destroys_data_is_never_automatic(blank, message):
    result = classify(blank, message)
    assert result.level != 1
    assert result.level >= 2


@pytest.mark.parametrize(
    "message",
    [
        "timed out while expiring images",
        "socket read failed during image deletion",
        "connection reset while purging old fragments",
    ],
)
def test_destructive_guard_says_so_in_the_reason(blank, message):
    result = classify(blank, message)
    assert result.level == 2
    assert "destructive guard" in result.rules
    assert "never level 1" in result.reason


def test_destructive_words_in_the_explanation_also_block_automatic(blank):
    result = classify(
        blank,
        "the operation timed out",
        explanation="The server was deleting the expired backup images of the client when the timer ran out.",
    )
    assert result.level == 2
    assert "destructive guard" in result.rules


def test_expired_timer_or_certificate_is_not_destroyed_data(blank):
    timer = classify(blank, "connection timeout expired")
    assert timer.level == 1
    assert "destructive guard" not in timer.rules
    certificate = classify(blank, "The certificate has expired")
    assert certificate.level == 2
    assert "destructive guard" not in certificate.rules


def test_curated_neighbours_cannot_make_a_destructive_message_automatic():
    examples = [
        Example("netbackup", 100 + i, f"image expiration timed out on media server {name}", 1)
        for i, name in enumerate(["alpha", "beta", "gamma"])
    ]
    result = Classifier(examples).classify(
        family="netbackup", code=5, message="image expiration timed out on media server delta"
    )
    assert result.level == 2
    assert "destructive guard" in result.rules


# ---- result shape


@pytest.mark.parametrize(
    "message",
    [
        "socket read failed",
        "tape drive reported a hardware error",
        "quux frobnication",
        "timed out while expiring images",
        "Backup completed successfully",
        "",
    ],
)
def test_result_is_complete_and_within_bounds(blank, message):
    result = classify(blank, message, explanation="Some explanation.", recommended_action="Retry the job.")
    assert isinstance(result, Classification)
    assert result.level in (0, 1, 2, 3)
    assert 0.0 <= result.confidence <= 1.0
    assert result.reason.strip()
    assert result.category in Category.values
    assert result.severity in Severity.values
    assert result.rules


def test_agreeing_evidence_is_more_confident_than_none(blank):
    sure = classify(blank, "socket read failed: network connection timed out")
    unsure = classify(blank, "quux frobnication")
    assert sure.confidence > unsure.confidence


def test_same_input_gives_the_same_result():
    examples = [
        Example("netbackup", 41, "network connection timed out", 1, "The connection timed out.", "", "network"),
        Example("netbackup", 84, "media write error", 3, "The drive reported a write error.", "", "media"),
        Example("netbackup", 96, "unable to allocate new media", 2, "No media in the pool.", "", "media"),
    ]
    args = {
        "family": "netbackup",
        "code": 5000,
        "message": "write error while the network connection timed out",
        "explanation": "The drive stopped.",
    }
    first = Classifier(examples).classify(**args)
    assert Classifier(examples).classify(**args) == first
    assert Classifier(list(examples)).classify(**args) == first
    again = Classifier(examples)
    assert again.classify(**args) == again.classify(**args)


def test_family_is_accepted_in_any_spelling(blank):
    result = blank.classify(family="Media Manager", code=1, message="request completed")
    assert result.level == 0


# ---- learning from curated examples


def test_reason_names_the_nearest_curated_example():
    examples = [Example("netbackup", 41, "network connection timed out", 1)]
    result = Classifier(examples).classify(family="netbackup", code=9, message="the network connection timed out")
    assert "nearest curated: netbackup 41 'network connection timed out'" in result.reason
    assert "→ 1" in result.reason


def test_exclude_leaves_an_example_out():
    examples = [
        Example("netbackup", 281, "vault core error", 2),
        Example("netbackup", 282, "vault core warning", 3),
    ]
    classifier = Classifier(examples)
    result = classifier.classify(family="netbackup", code=281, message="vault core error", exclude=[("netbackup", 281)])
    assert "netbackup 281" not in result.reason
    assert "netbackup 282" in result.reason


@pytest.mark.django_db
def test_curated_example_teaches_a_similar_uncurated_message():
    paraphrase = {
        "family": "netbackup",
        "code": 7777,
        "message": "Generation of the vault session report failed",
    }
    before = get_classifier().classify(**paraphrase)
    assert before.level == 2
    assert before.rules == ("default",)

    make_status_code(
        code=300,
        message="vault session report generation failed",
        explanation="The vault session report could not be generated; regenerating the report is harmless.",
        level=1,
        level_source=LevelSource.CURATOR,
        category="other",
    )
    make_status_code(
        code=301,
        message="vault report generation failed",
        explanation="Report generation for the vault session failed.",
        level=1,
        level_source=LevelSource.CURATOR,
        category="other",
    )
    reset_classifier()
    after = get_classifier().classify(**paraphrase)
    assert after.level == 1
    assert "nearest curated: netbackup 300" in after.reason or "nearest curated: netbackup 301" in after.reason


@pytest.mark.django_db
def test_only_curator_levels_are_learned_from():
    make_status_code(code=310, message="vault catalog shuffle stalled", level=3, level_source=LevelSource.CLASSIFIER)
    make_status_code(code=311, message="vault catalog shuffle stalled again", level=3, level_source=LevelSource.IMPORT)
    classifier = get_classifier()
    assert classifier.examples == []
    result = classifier.classify(family="netbackup", code=312, message="vault catalog shuffle stalled")
    assert "nearest curated" not in result.reason


@pytest.mark.django_db
def test_shared_classifier_is_reused_until_curated_codes_change():
    first = get_classifier()
    assert get_classifier() is first
    make_status_code(code=320, message="socket read failed", level=1, level_source=LevelSource.CURATOR)
    # No reset_classifier(): a new curated code is noticed on its own.
    second = get_classifier()
    assert second is not first
    assert [e.code for e in second.examples] == [320]
    assert get_classifier() is second
    reset_classifier()
    assert get_classifier() is not second


def test_threads_share_one_classifier_built_once(monkeypatch):
    import threading

    import errorcodes.classifier as module

    builds = []

    def examples():
        builds.append(threading.get_ident())
        return [Example("netbackup", 41, "network connection timed out", 1)]

    monkeypatch.setattr(module, "_curated_signature", lambda: ("same",))
    monkeypatch.setattr(module, "_curated_examples", examples)
    start = threading.Barrier(8)
    seen = []

    def worker():
        start.wait()
        seen.append(get_classifier())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(builds) == 1
    assert len(seen) == 8
    assert all(classifier is seen[0] for classifier in seen)


# ---- classify_status_codes


def run_command(*args):
    out = StringIO()
    call_command("classify_status_codes", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.fixture
def three_sources(db):
    """A wrong level 3 for a plainly transient message, from each source. (The curated one says
    something unrelated: a curated socket message at level 3 would, rightly, teach level 3.)"""
    common = {"level": 3, "confidence": 0.5, "classification_reason": "old"}
    return {
        "curator": make_status_code(
            code=23, message="vault catalog shuffle stalled", level_source=LevelSource.CURATOR, **common
        ),
        "import": make_status_code(code=24, message="socket read failed", level_source=LevelSource.IMPORT, **common),
        "classifier": make_status_code(
            code=25, message="socket read failed", level_source=LevelSource.CLASSIFIER, **common
        ),
    }


def test_command_reclassifies_classifier_codes_and_keeps_curator_and_import(three_sources):
    output = run_command()
    assert "changed 1, unchanged 0, kept curator 1, kept import 1" in output
    for obj in three_sources.values():
        obj.refresh_from_db()
    assert three_sources["classifier"].level == 1
    assert "transient network" in three_sources["classifier"].classification_reason
    assert three_sources["curator"].level == 3
    assert three_sources["curator"].classification_reason == "old"
    assert three_sources["import"].level == 3


def test_command_with_all_also_reclassifies_import_levels(three_sources):
    output = run_command("--all")
    assert "changed 2, unchanged 0, kept curator 1, kept import 0" in output
    three_sources["import"].refresh_from_db()
    three_sources["curator"].refresh_from_db()
    assert three_sources["import"].level == 1
    assert three_sources["import"].level_source == LevelSource.CLASSIFIER
    assert three_sources["curator"].level == 3


def test_command_twice_changes_nothing_the_second_time(three_sources):
    run_command("--all")
    assert "changed 0, unchanged 2, kept curator 1, kept import 0" in run_command("--all")


def test_command_dry_run_saves_nothing(three_sources):
    output = run_command("--all", "--dry-run")
    assert "changed 2" in output
    assert "dry run" in output
    assert set(StatusCode.objects.values_list("level", flat=True)) == {3}


def test_command_family_limits_the_run(three_sources):
    make_status_code(
        family="media_manager", code=23, message="socket read failed", level=3, level_source=LevelSource.CLASSIFIER
    )
    output = run_command("--family", "Media Manager")

    assert "changed 1, unchanged 0, kept curator 0, kept import 0" in output
    assert StatusCode.objects.get(family="media_manager", code=23).level == 1
    three_sources["classifier"].refresh_from_db()
    assert three_sources["classifier"].level == 3


def test_command_rejects_an_unknown_family(db):
    with pytest.raises(CommandError, match="'tape-o-matic'"):
        run_command("--family", "tape-o-matic")


# ---- the shipped catalogue


@pytest.fixture(scope="module")
def catalogue_examples():
    if not CATALOG.is_file():
        pytest.skip(f"the shipped catalogue {CATALOG} is not there yet")
    entries = json.loads(CATALOG.read_text(encoding="utf-8"))
    return [Example.from_mapping(entry) for entry in entries if entry.get("level") is not None]


def test_catalogue_codes_left_out_one_at_a_time_mostly_get_their_curated_level(catalogue_examples):
    # Quick leave-one-out (one index, the code itself excluded); bench/classifier_eval.py rebuilds per code.
    classifier = Classifier(catalogue_examples)
    results = [
        (
            example,
            classifier.classify(
                family=example.family,
                code=example.code,
                message=example.message,
                explanation=example.explanation,
                recommended_action=example.recommended_action,
                exclude=[example.key],
            ),
        )
        for example in catalogue_examples
    ]
    agreement = sum(result.level == example.level for example, result in results) / len(results)
    serious = [result for example, result in results if example.level >= 2]
    automatic_when_serious = sum(result.level == 1 for result in serious) / len(serious)
    assert agreement >= 0.8
    assert automatic_when_serious <= 0.03
