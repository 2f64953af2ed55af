"""Diagnosis: reading codes from messy text, matching messages, confidence, hardware rule, similar incidents."""

from datetime import timedelta
from itertools import count

import pytest
from django.utils import timezone, translation

from errorcodes.choices import LevelSource
from errorcodes.models import StatusCode
from errorcodes.services import CodeRecord, upsert_status_codes
from incidents import diagnosis
from incidents.diagnosis import (
    HOW_ORDER,
    WEIGHTS,
    action_steps,
    diagnose,
    extract_code,
    find_code_mentions,
    get_index,
    match_messages,
    normalise,
    similar_incidents,
)
from incidents.models import BackupServer, Customer, Incident, make_fingerprint
from incidents.permissions import grant
from tests.conftest import make_status_code, make_user
from vbip_project.accounts import roles


@pytest.fixture(autouse=True)
def fresh_index():
    # Test transactions roll back without signals; every test starts from the database it builds.
    # English, whatever language an earlier test left active: some assertions read the reasons.
    diagnosis.reset_index()
    with translation.override("en"):
        yield
    diagnosis.reset_index()


KB = [
    # family, code, message, category, level, level_source, recommended action
    ("netbackup", 0, "the requested operation was successfully completed", "informational", 0, "curator", ""),
    ("netbackup", 1, "the requested operation was partially successful", "informational", 1, "curator", ""),
    ("netbackup", 13, "file read failed", "client", 1, "classifier", "Check the client's disk.\nRe-run."),
    ("netbackup", 23, "socket read failed", "network", 1, "curator", "Check the network between server and client."),
    ("netbackup", 24, "socket write failed", "network", 1, "curator", ""),
    ("netbackup", 41, "network connection timed out", "network", 1, "curator", ""),
    ("netbackup", 42, "network read failed", "network", 1, "curator", ""),
    ("netbackup", 52, "timed out waiting for media manager to mount volume", "media", 1, "classifier", ""),
    (
        "netbackup",
        58,
        "can't connect to client",
        "network",
        1,
        "curator",
        "1. Check that the client is up. 2. Check that bpcd answers on the client.",
    ),
    ("netbackup", 84, "media write error", "media", 3, "curator", ""),
    (
        "netbackup",
        96,
        "unable to allocate new media for backup, storage unit has none available",
        "media",
        2,
        "classifier",
        "Add media to the volume pool; check the robot inventory.",
    ),
    ("netbackup", 239, "the specified client does not exist in the specified policy", "policy_config", 2, "import", ""),
    ("netbackup", 2074, "Disk volume is down", "disk_storage", 2, "curator", ""),
    ("media_manager", 12, "invalid protocol request", "tape_hardware", 2, "curator", ""),
    ("robotic_error", 5, "robotic door is open", "tape_hardware", 3, "curator", ""),
    ("robotic", 3, "robotic library is busy", "tape_hardware", 2, "curator", ""),
    ("device_config", 2, "device path is not valid", "tape_hardware", 2, "curator", ""),
    ("device_management", 5, "drive is down", "tape_hardware", 3, "curator", ""),
]


@pytest.fixture
def kb(db):
    rows = {}
    for family, code, message, category, level, source, action in KB:
        rows[(family, code)] = make_status_code(
            family=family,
            code=code,
            message=message,
            category=category,
            level=level,
            level_source=source,
            confidence=1.0 if source == LevelSource.CURATOR else 0.6,
            recommended_action=action,
        )
    return rows


# --------------------------------------------------------------------------------------
# Reading codes from text

WRITTEN_CODES = [
    # job logs and try-logs
    ("10/23/2026 01:02:03 - Error bpbrm (pid=5579) from client web01: cannot connect (58)", "netbackup", 58),
    ("10/23/2026 01:02:03 - end writing; write time: 0:00:01\nthe job failed  (58)", "netbackup", 58),
    ("EXIT STATUS 96: unable to allocate new media for backup", "netbackup", 96),
    ("10/23/2026 01:02:03 - Info bptm (pid=8812) EXITING with status 96 <----------", "netbackup", 96),
    ("Job 1234 on nbu01 failed, status: 2074", "netbackup", 2074),
    ("ERROR - status code 13 while reading /data", "netbackup", 13),
    ("NetBackup status code: 96", "netbackup", 96),
    ("Status 58 reported for web01", "netbackup", 58),
    ("Backup of web01 ended (status 239)", "netbackup", 239),
    ("Backup of web01 ended (status 239) at 10:58:13", "netbackup", 239),
    ('{"tryStatusCode": 96, "tryStatusMessage": "unable to allocate new media"}', "netbackup", 96),
    ("Try 1 (2026-10-23T01:00:00Z - 2026-10-23T01:10:00Z): status 96: unable to allocate", "netbackup", 96),
    # e-mails, Korean
    ("안녕하세요.\nweb01 백업이 실패했습니다. 에러코드 58 확인 부탁드립니다.", "netbackup", 58),
    ("에러 코드: 58", "netbackup", 58),
    ("오늘 새벽 작업에서 오류코드 96 발생했습니다.", "netbackup", 96),
    ("상태코드 13 으로 종료됨", "netbackup", 13),
    ("에러코드는 2074번 입니다", "netbackup", 2074),
    ("[장애] web01 백업 실패 (58)", "netbackup", 58),
    ("어제 밤 web01 백업이 58번 에러로 실패했습니다", "netbackup", 58),
    ("96 오류 발생, 확인 바랍니다", "netbackup", 96),
    ("백업 작업 오류: 2074", "netbackup", 2074),
    # e-mails, English
    ("Hello team,\nthe backup of web01 failed with error code 58 last night.\nRegards", "netbackup", 58),
    ("Error Code: 58", "netbackup", 58),
    ("The error code is 96.", "netbackup", 96),
    ("NetBackup error 58 on web01", "netbackup", 58),
    # families
    ("Media Manager status code 12", "media_manager", 12),
    ("TLD(0) robotic error code 5 on the library", "robotic_error", 5),
    ("robotic status code 3", "robotic", 3),
    ("device configuration status code 2", "device_config", 2),
    ("device management status code 5", "device_management", 5),
]


@pytest.mark.parametrize(("text", "family", "code"), WRITTEN_CODES, ids=[t[:40] for t, _f, _c in WRITTEN_CODES])
def test_written_code_is_read_with_its_family(text, family, code):
    found = extract_code(text)
    assert found is not None
    assert found[:2] == (family, code)
    assert found[2] in text


NOT_CODES = [
    "bpbrm (pid=5579) started on nbu01",
    "Job 1234 started; jobid=1234 parentjob=1230",
    "connecting to nbu01 and web-58 at 10.0.0.58",
    "2026-11-23 10:58:13 begin writing backup id web01_1763859493",
    "started 11/23/2026 10:58 PM",
    "wrote 58 GB in 1024 KB blocks, 96% done",
    "connected to nbu01.acme.local:1556",
    "NetBackup 10.3.0.1 on Linux",
    "HTTP status 503 from https://nbu01:1556/netbackup/admin/jobs",
    "HTTP status code 404 when fetching try-logs",
    "status: 10.3.0.1",
    "status: 2026-11-23",
    "status 58 GB written",
    "Restarted as job (1234)",
    "Retry attempt (2)",
    "첨부파일 (2)",
    "어제 에러 2건, 오류 3회 발생",
    "서버58 에러 로그 확인",
    "에러 발생 시각 10:58",
    "socket read failed: errno = 104",
    "",
]


@pytest.mark.parametrize("text", NOT_CODES, ids=[t[:40] or "empty" for t in NOT_CODES])
def test_lookalike_numbers_are_not_codes(text):
    assert extract_code(text) is None


LOOKALIKES_AROUND_A_CODE = [
    ("10/23/2026 10:58:13 - Error bpbrm (pid=5579) job 1234 on web-58 (10.0.0.58:1556): status 24", 24),
    ("Job 1234 (jobid=1234) wrote 58 GB on nbu01 10.3.0.1\nEXIT STATUS 84", 84),
    ("2026-11-23 10:58:13 client web-58 error code 13, 1024 KB transferred", 13),
    ("web-58 서버 백업 실패, 11/23/2026 10:58, 58 GB, 에러코드 96", 96),
    ("HTTP status 503 first, then the job ended with status code 41", 41),
]


@pytest.mark.parametrize(("text", "code"), LOOKALIKES_AROUND_A_CODE, ids=[t[:40] for t, _c in LOOKALIKES_AROUND_A_CODE])
def test_lookalike_numbers_do_not_hide_or_replace_the_real_code(text, code):
    assert extract_code(text)[1] == code


FINAL_OVER_INTERMEDIATE = [
    # A sub-process that exited cleanly, then the job's final status.
    ("bpbkar (pid=1) EXITING with status 0\n10/23/2026 01:02:03 - the job failed (96)", 96),
    # "(0)" sub-step successes around the failure never win.
    ("step one done (0)\nbptm: no media available (96)\ncleanup done (0)", 96),
    # The explicit exit status beats an intermediate labelled status.
    ("bpbrm status: 58 (retrying)\nEXIT STATUS 96", 96),
    # The trailing status of the last line that names a code beats an earlier labelled one.
    ("Try 1: status 58: can't connect\nTry 2: socket write failed (24)", 24),
    # A failure beats a later partial success.
    ("bptm EXITING with status 84\nsummary: status 1", 84),
    # A later failure beats an earlier one of the same form.
    ("Try 1: status 58\nTry 2: status 96", 96),
    # A success is returned when it is all there is.
    ("EXIT STATUS 0", 0),
]


@pytest.mark.parametrize(("text", "code"), FINAL_OVER_INTERMEDIATE, ids=[t[:40] for t, _c in FINAL_OVER_INTERMEDIATE])
def test_final_failure_status_wins_over_intermediate_ones(text, code):
    assert extract_code(text)[1] == code


def test_every_written_code_is_listed_in_reading_order():
    mentions = find_code_mentions("Try 1: status 58\nbptm EXITING with status 0\nEXIT STATUS 96")
    assert [(m.code, m.form) for m in mentions] == [(58, "labelled"), (0, "labelled"), (96, "final")]


def test_number_right_after_a_family_phrase_far_away_stays_netbackup():
    text = "media manager reported nothing unusual during the whole of last night's run; status code 96"
    assert extract_code(text)[:2] == ("netbackup", 96)


# --------------------------------------------------------------------------------------
# Matching messages when no code is written


def test_curly_and_straight_quotes_and_case_normalise_alike():
    assert normalise("Can’t connect to Client") == normalise("can't connect to client") == "cannot connect to client"
    assert normalise("CANNOT connect to client") == "cannot connect to client"


@pytest.mark.parametrize(
    "text",
    ["can't connect to client", "CAN'T CONNECT TO CLIENT", "can’t connect to client", "Cannot connect to client."],
)
def test_whole_message_in_any_case_or_quotes_is_an_exact_match(kb, text):
    result = diagnose(text)
    assert (result["family"], result["code"]) == ("netbackup", 58)
    assert result["candidates"][0] == {
        "family": "netbackup",
        "code": 58,
        "message": "can't connect to client",
        "score": 100,
        "how": "exact message",
    }
    assert result["identified_by"] == "exact message"


def test_message_embedded_in_a_log_line_is_found_and_the_errno_is_not_a_code(kb):
    line = "10/23/2026 01:02:03 - Error bpbrm (pid=1234) socket read failed: errno = 104"
    result = diagnose(f"10/23/2026 01:02:01 - Info bpbrm (pid=1234) starting\n{line}")
    assert result["code"] == 23
    assert result["candidates"][0]["how"] == "embedded message"
    assert result["evidence"][0] == line
    assert all(c["code"] != 104 for c in result["candidates"])


def test_embedded_message_with_curly_quote_in_an_email(kb):
    result = diagnose("Hi,\nlast night the job said: Can’t connect to client web01.\nThanks")
    assert (result["code"], result["identified_by"]) == (58, "embedded message")
    assert result["evidence"] == ["last night the job said: Can’t connect to client web01."]


def test_part_of_a_message_lists_every_message_containing_it(kb):
    result = diagnose("read failed")
    partial = [c for c in result["candidates"] if c["how"] == "partial message"]
    assert {c["code"] for c in partial} == {13, 23, 42}
    assert [c["score"] for c in partial] == sorted((c["score"] for c in partial), reverse=True)
    # The shortest message that contains the words is the closest.
    assert result["code"] == 13


def test_misspelt_message_is_matched_fuzzily(kb):
    result = diagnose("10/23/2026 01:02:03 - Error bpbrm (pid=77) sockt read faild on web01")
    assert result["code"] == 23
    assert result["identified_by"] == "fuzzy"
    assert 70 <= result["candidates"][0]["score"] < 100


def test_korean_email_with_an_english_message_and_no_code(kb):
    result = diagnose(
        "안녕하세요,\n어제 밤 web01 백업이 'can’t connect to client' 메시지로 실패했습니다.\n확인 부탁드립니다."
    )
    assert result["code"] == 58
    assert result["identified_by"] == "embedded message"


def test_text_unrelated_to_any_message_identifies_nothing(kb):
    result = diagnose("lunch is at noon in the cafeteria")
    assert result["status_code"] is None and result["code"] is None
    assert result["candidates"] == []
    assert result["level"] == 2
    assert result["confidence"] == 0.0
    assert any("try-log" in action for action in result["recommended_actions"])


def test_family_given_restricts_message_matching(kb):
    result = diagnose("invalid protocol request", family="media_manager")
    assert (result["family"], result["code"]) == ("media_manager", 12)
    assert diagnose("socket read failed", family="media_manager")["code"] is None


def test_inactive_codes_are_not_matched_by_message(kb):
    kb[("netbackup", 23)].is_active = False
    kb[("netbackup", 23)].save()
    assert all(c["code"] != 23 for c in diagnose("socket read failed")["candidates"])


def test_deleted_code_disappears_from_matching(kb):
    get_index()
    StatusCode.objects.filter(family="netbackup", code=24).delete()
    assert all(c["code"] != 24 for c in diagnose("socket write failed")["candidates"])


def test_index_is_rebuilt_after_a_bulk_import_without_signals(kb, monkeypatch):
    monkeypatch.setattr(diagnosis, "INDEX_RECHECK_SECONDS", 0)
    first = get_index()
    assert get_index() is first  # nothing changed: the same index is reused
    upsert_status_codes([CodeRecord(family="netbackup", code=2106, message="Disk storage server is down", level=2)])
    assert diagnosis._index is first  # no signal told us: only the stamp can notice
    rebuilt = get_index()
    assert rebuilt is not first
    assert diagnose("Disk storage server is down")["code"] == 2106


def test_index_is_rechecked_only_every_few_seconds(kb, django_assert_num_queries):
    get_index()
    with django_assert_num_queries(0):
        get_index()


def test_match_messages_orders_by_how_then_score(kb):
    found = match_messages("socket read failed\nbpbrm (pid=1) network read failed on web01 while writing")
    assert [(m.entry.code, m.how) for m in found] == [(23, "exact message"), (42, "embedded message")]
    assert found[0].score == 100 > found[1].score >= 80


def test_fuzzy_matching_runs_only_when_nothing_matched_exactly(kb):
    assert [m.how for m in match_messages("socket read failed\nnetwork conection timed ot")] == ["exact message"]
    found = match_messages("network conection timed ot")
    assert [(m.entry.code, m.how) for m in found[:1]] == [(41, "fuzzy")]
    assert match_messages("network conection timed ot", fuzzy=False) == []


# --------------------------------------------------------------------------------------
# Candidates and confidence


def test_written_code_comes_first_then_other_written_codes_then_messages(kb):
    text = "Try 1: status 58\nbpbrm socket read failed\nEXIT STATUS 96"
    result = diagnose(text)
    assert [(c["code"], c["how"]) for c in result["candidates"]] == [
        (96, "exact code"),
        (58, "exact code"),
        (23, "embedded message"),
    ]
    assert result["candidates"][0]["score"] == 100
    assert result["candidates"][1]["score"] < 100


def test_candidates_are_at_most_five_and_ordered(kb):
    text = "\n".join(
        [
            "socket read failed",
            "socket write failed",
            "file read failed",
            "network read failed",
            "network connection timed out",
            "media write error",
            "Disk volume is down",
        ]
    )
    candidates = diagnose(text)["candidates"]
    assert len(candidates) == 5
    keys = [(HOW_ORDER.index(c["how"]), -c["score"]) for c in candidates[1:]]
    assert keys == sorted(keys)


def test_confidence_is_the_weighted_sum_of_its_parts(kb):
    result = diagnose("EXIT STATUS 58\nbpbrm: connection refused by web01 (errno 111)")
    parts = {p["name"]: p for p in result["confidence_parts"]}
    assert set(parts) == {"identification", "evidence", "level"}
    assert sum(p["weight"] for p in parts.values()) == pytest.approx(1.0)
    assert {name: p["weight"] for name, p in parts.items()} == WEIGHTS
    assert result["confidence"] == pytest.approx(sum(p["value"] * p["weight"] for p in parts.values()), abs=1e-4)
    assert all(0.0 <= p["value"] <= 1.0 and p["note"] for p in parts.values())
    assert parts["identification"]["value"] == 0.95
    assert parts["evidence"]["value"] == 0.9  # network words for a network code
    assert parts["level"]["value"] == 1.0  # curator


def test_explicit_code_is_surer_than_a_matched_message(kb):
    written = diagnose("status code 23")
    matched = diagnose("socket reed failed on web01")
    assert matched["code"] == 23
    ident = {
        r["code"]: next(p for p in r["confidence_parts"] if p["name"] == "identification") for r in (written, matched)
    }
    assert ident[23]["value"] > 0  # both identified
    assert written["confidence_parts"][0]["value"] > matched["confidence_parts"][0]["value"]


def test_curator_level_is_trusted_more_than_the_classifier(kb):
    curated = diagnose(code=58)
    classified = diagnose(code=13)
    level_part = {
        r["code"]: next(p for p in r["confidence_parts"] if p["name"] == "level")["value"]
        for r in (curated, classified)
    }
    assert level_part == {58: 1.0, 13: 0.6}
    imported = next(p for p in diagnose(code=239)["confidence_parts"] if p["name"] == "level")
    assert imported["value"] == 0.9


def test_evidence_of_another_category_lowers_confidence(kb):
    agreeing = diagnose("status 58: connection timed out, firewall dropped the port")
    disagreeing = diagnose("status 58: disk pool full, no space left on the storage unit")
    value = {
        "agree": agreeing["confidence_parts"][1]["value"],
        "disagree": disagreeing["confidence_parts"][1]["value"],
    }
    assert value == {"agree": 0.9, "disagree": 0.2}
    assert agreeing["confidence"] > disagreeing["confidence"]


def test_code_own_message_in_the_text_is_full_agreement(kb):
    result = diagnose("EXIT STATUS 58: can't connect to client")
    assert result["confidence_parts"][1]["value"] == 1.0
    assert "EXIT STATUS 58: can't connect to client" in result["evidence"]


def test_given_code_contradicted_by_the_text_is_less_sure(kb):
    result = diagnose("bpbrm status: 58", code=96)
    assert result["code"] == 96
    assert result["confidence_parts"][0]["value"] == 0.85
    assert "58" in result["confidence_parts"][0]["note"]
    assert [c["code"] for c in result["candidates"][:2]] == [96, 58]


def test_given_code_without_text_is_fully_identified(kb):
    result = diagnose(code=96)
    assert result["status_code"]["message"].startswith("unable to allocate new media")
    assert result["confidence_parts"][0]["value"] == 1.0
    assert result["confidence_parts"][1]["value"] == 0.5  # no text to agree or disagree
    assert result["level"] == 2


def test_unknown_written_code_is_reported_but_not_invented(kb):
    result = diagnose("EXIT STATUS 9876")
    assert result["code"] == 9876 and result["status_code"] is None
    assert result["candidates"][0] == {
        "family": "netbackup",
        "code": 9876,
        "message": None,
        "score": 100,
        "how": "exact code",
    }
    assert result["level"] == 2
    assert any("not in the knowledge base" in reason for reason in result["reasons"])


def test_status_code_block_carries_the_knowledge_base_fields(kb):
    status_code = diagnose("EXIT STATUS 58")["status_code"]
    assert status_code == {
        "family": "netbackup",
        "code": 58,
        "message": "can't connect to client",
        "category": "network",
        "level": 1,
        "level_source": "curator",
        "explanation": "The server could not open a connection to the client.",
        "recommended_action": "1. Check that the client is up. 2. Check that bpcd answers on the client.",
    }


def test_bad_family_or_code_is_refused(db):
    with pytest.raises(ValueError, match="family"):
        diagnose("status 58", family="nope")
    with pytest.raises(ValueError, match="code"):
        diagnose("", code=-1)
    with pytest.raises(ValueError, match="code"):
        diagnose("", code="abc")


# --------------------------------------------------------------------------------------
# Level, hardware rule and actions

HARDWARE_LINES = [
    "tape drive HP.ULTRIUM8 (index 2) reported a SCSI reservation conflict",
    "HBA port reset while writing",
    "firmware of the library does not match",
    "hardware error reported by the device",
    "medium error on volume A00012",
    "I/O error on device /dev/nst0",
    "로봇 암이 멈췄습니다",
]


@pytest.mark.parametrize("line", HARDWARE_LINES, ids=[t[:30] for t in HARDWARE_LINES])
def test_hardware_evidence_never_yields_an_automatic_level(kb, line):
    result = diagnose(f"EXIT STATUS 52\n{line}")
    assert result["status_code"]["level"] == 1
    assert result["level"] == 3
    assert any("Hardware evidence" in reason for reason in result["reasons"])
    assert line in result["evidence"]
    assert result["recommended_actions"][-1] == "Open a vendor case or dispatch on-site support."
    level_part = next(p for p in result["confidence_parts"] if p["name"] == "level")
    assert level_part["value"] == 0.8


def test_curator_level_one_is_raised_too_when_hardware_is_named(kb):
    assert diagnose("status 58 after the robot arm stopped")["level"] == 3


def test_hardware_configuration_text_is_raised_to_two_not_three(kb):
    result = diagnose("EXIT STATUS 52\ndrive 3 device path is misconfigured in tpconfig")
    assert result["level"] == 2
    assert any("configuring" in reason for reason in result["reasons"])


def test_success_matched_from_a_message_with_hardware_words_is_not_informational(kb):
    result = diagnose("the requested operation was successfully completed but the tape drive reports a medium error")
    assert result["code"] == 0 and result["identified_by"] == "embedded message"
    assert result["level"] == 3


def test_written_success_code_stays_informational_even_near_hardware_words(kb):
    assert diagnose("EXIT STATUS 0\ndrive 2 cleaned")["level"] == 0


def test_unidentified_failure_naming_hardware_goes_on_site(kb):
    result = diagnose("the tape library stopped answering, SCSI timeout on every drive")
    assert result["code"] is None and result["level"] == 3


def test_level_two_code_is_not_lowered_or_changed_by_hardware_words(kb):
    assert diagnose("EXIT STATUS 96\nthe robot has no scratch tapes")["level"] == 2


def test_hardware_words_inside_other_words_do_not_count(kb):
    # "hbase" is not an HBA and "overdrive" is not a drive
    assert diagnose("status 58 from the hbase overdrive cluster")["level"] == 1


def test_recommended_actions_are_the_code_steps_then_the_level_action(kb):
    assert diagnose(code=58)["recommended_actions"] == [
        "Check that the client is up.",
        "Check that bpcd answers on the client.",
        "Re-run the job; a retry is safe for this code.",
    ]
    assert diagnose(code=13)["recommended_actions"] == [
        "Check the client's disk.",
        "Re-run.",
        "Re-run the job; a retry is safe for this code.",
    ]
    assert diagnose(code=96)["recommended_actions"][-1] == "Have an engineer approve the fix before it runs."
    assert diagnose(code=0)["recommended_actions"] == ["Nothing to fix: confirm and close the incident."]


def test_action_steps_split_lines_numbers_bullets_and_sentences():
    assert action_steps("- first\n* second\n3) third. Fourth sentence.") == [
        "first",
        "second",
        "third.",
        "Fourth sentence.",
    ]
    assert action_steps("") == []


# --------------------------------------------------------------------------------------
# Similar incidents

_seq = count(1)


def _customer(code):
    customer = Customer.objects.create(code=code, name=f"{code} Corp")
    server = BackupServer.objects.create(customer=customer, hostname=f"nbu01.{code.lower()}.local")
    return customer, server


def _incident(customer, server, *, code=58, family="netbackup", days_ago=0, state="open", evidence=(), **extra):
    n = next(_seq)
    seen = timezone.now() - timedelta(days=days_ago)
    values = {"client": f"client{n}", "policy": "FS_Daily", "schedule": "Full"}
    values.update(extra)
    return Incident.objects.create(
        customer=customer,
        server=server,
        fingerprint=make_fingerprint(
            customer.pk, server.pk, values["client"], values["policy"], values["schedule"], family, code
        ),
        family=family,
        code=code,
        status_code=StatusCode.objects.filter(family=family, code=code).first(),
        state=state,
        first_seen=seen,
        last_seen=seen,
        diagnosis={"evidence": list(evidence)},
        **values,
    )


@pytest.fixture
def history(kb):
    acme, acme_server = _customer("ACME")
    beta, beta_server = _customer("BETA")
    items = {
        "acme_resolved_old": _incident(
            acme, acme_server, days_ago=20, state="resolved", resolution="restarted bpcd", resolution_method="manual"
        ),
        "acme_open_new": _incident(acme, acme_server, days_ago=1),
        "beta_resolved_newer": _incident(
            beta, beta_server, days_ago=2, state="resolved", resolution="re-ran", resolution_method="automatic"
        ),
        "acme_socket": _incident(
            acme,
            acme_server,
            code=23,
            days_ago=5,
            state="resolved",
            evidence=["10/01/2026 01:00:00 - Error bpbrm (pid=99) socket read failed: errno = 104"],
        ),
        "beta_socket": _incident(
            beta,
            beta_server,
            code=24,
            days_ago=3,
            evidence=["10/02/2026 02:00:00 - Error bpbrm (pid=12) socket read failed: connection reset"],
        ),
        "acme_disk": _incident(acme, acme_server, code=2074, days_ago=1, evidence=["Disk volume is down on dp1"]),
    }
    return {"acme": acme, "beta": beta, **items}


def test_same_code_first_own_customer_then_resolved_then_recent(history):
    found = similar_incidents(family="netbackup", code=58, text="", customer=history["acme"])
    assert [r["id"] for r in found] == [
        history["acme_resolved_old"].pk,
        history["acme_open_new"].pk,
        history["beta_resolved_newer"].pk,
    ]
    assert {r["why"] for r in found} == {"same code"}
    first = found[0]
    assert first["customer"] == "ACME"
    assert (first["resolution"], first["resolution_method"], first["state"]) == ("restarted bpcd", "manual", "resolved")
    assert set(first) >= {"id", "customer", "client", "policy", "state", "occurrences", "last_seen", "score", "why"}


def test_same_code_without_customer_prefers_resolved_then_recent(history):
    found = similar_incidents(family="netbackup", code=58, text="")
    assert [r["id"] for r in found] == [
        history["beta_resolved_newer"].pk,
        history["acme_resolved_old"].pk,
        history["acme_open_new"].pk,
    ]


def test_similar_text_follows_the_same_code_within_the_category(history):
    text = "10/23/2026 03:00:00 - Error bpbrm (pid=4242) socket read failed: errno = 104"
    found = similar_incidents(family="netbackup", code=58, text=text, customer=history["acme"], limit=5)
    assert [r["why"] for r in found] == ["same code"] * 3 + ["similar text"] * 2
    assert [r["id"] for r in found[3:]] == [history["acme_socket"].pk, history["beta_socket"].pk]
    assert found[3]["score"] >= found[4]["score"] >= 70
    # The disk incident is of another category and reads differently.
    assert history["acme_disk"].pk not in [r["id"] for r in found]


def test_limit_and_exclusion_are_respected(history):
    found = similar_incidents(
        family="netbackup",
        code=58,
        text="",
        customer=history["acme"],
        exclude_incident_id=history["acme_resolved_old"].pk,
        limit=1,
    )
    assert [r["id"] for r in found] == [history["acme_open_new"].pk]
    assert similar_incidents(family="netbackup", code=58, text="", limit=0) == []


def test_user_sees_only_similar_incidents_of_their_customers(history):
    engineer = make_user("eng-acme", role=roles.ENGINEERS)
    grant(engineer, history["acme"], "engineer")
    text = "socket read failed: errno = 104"
    found = similar_incidents(family="netbackup", code=58, text=text, user=engineer)
    assert found and {r["customer"] for r in found} == {"ACME"}
    stranger = make_user("eng-none", role=roles.ENGINEERS)
    assert similar_incidents(family="netbackup", code=58, text=text, user=stranger) == []


def test_stored_diagnosis_without_a_user_only_lists_the_customers_own_incidents(history):
    result = diagnose("EXIT STATUS 58", customer=history["acme"])
    assert result["similar_incidents"]
    assert {r["customer"] for r in result["similar_incidents"]} == {"ACME"}
    assert diagnose("EXIT STATUS 58")["similar_incidents"] == []  # no customer, no user: nobody's data


def test_diagnose_with_a_user_lists_similar_incidents_by_text_without_a_code(history):
    curator = make_user("cur", role=roles.CURATORS)
    result = diagnose("Error bpbrm (pid=1) socket read faild", user=curator)
    assert result["code"] == 23
    ids = [r["id"] for r in result["similar_incidents"]]
    assert ids[0] == history["acme_socket"].pk
    assert history["beta_socket"].pk in ids


def test_diagnose_excludes_the_incident_being_diagnosed(history):
    own = history["acme_open_new"]
    result = diagnose("EXIT STATUS 58", customer=history["acme"], exclude_incident_id=own.pk)
    assert own.pk not in [r["id"] for r in result["similar_incidents"]]


def test_korean_evidence_is_compared_by_its_words(history):
    korean = _incident(
        history["acme"],
        BackupServer.objects.get(customer=history["acme"]),
        code=2074,
        evidence=['10/03/2026 고객사 백업 서버 "디스크" 용량 부족으로 백업 실패'],
    )
    found = similar_incidents(family=None, code=None, text="디스크 용량 부족으로 백업 실패했습니다")
    assert [r["id"] for r in found][:1] == [korean.pk]
    assert found[0]["why"] == "similar text"


def test_incidents_without_stored_evidence_are_skipped_for_text(history):
    Incident.objects.filter(pk=history["acme_socket"].pk).update(diagnosis={})
    found = similar_incidents(family="netbackup", code=58, text="socket read failed: errno = 104")
    assert [r["id"] for r in found if r["why"] == "similar text"] == [history["beta_socket"].pk]


def test_korean_category_words_count_with_their_particles(kb):
    found = diagnosis.category_words("디스크가 가득 차서 용량이 부족합니다. 네트워크는 정상입니다.")
    assert found["disk_storage"] == ["디스크", "용량"]
    assert found["network"] == ["네트워크"]
    assert "network" not in diagnosis.category_words("the report was sent")  # "port" inside "report"


def test_routine_info_lines_naming_a_drive_are_not_hardware_evidence(kb):
    text = (
        "10/23/2026 01:00:00 - Info bptm (pid=4411) using tape drive HP.ULTRIUM8 (index 2)\n"
        "10/23/2026 01:00:05 - Info bptm (pid=4411) mounted A00012 on drive 2\n"
        "EXIT STATUS 58"
    )
    assert diagnose(text)["level"] == 1
    failing = text + "\n10/23/2026 01:00:09 - Error bptm (pid=4411) drive 2 reported a SCSI reservation conflict"
    assert diagnose(failing)["level"] == 3
