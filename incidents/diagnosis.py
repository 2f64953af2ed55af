"""Diagnosis of a failed backup job from whatever text we have about it.

`diagnose()` runs for every new incident (called by incidents.services) and behind
`POST /api/v1/diagnose/`. It works in four steps, each of which leaves its trace in
the answer so an engineer can check it:

1. Identify the status code. A code the caller gives (the job's status) wins. Otherwise
   the code is read from the text: labelled numbers in logs and e-mails (`EXIT STATUS 96`,
   `status: 2074`, `(status 239)`, `Error Code: 58`, `에러코드 58`, `58번 에러`) and a bare
   `(58)` at the end of a line. Numbers that only look like codes (pids, job ids, host names,
   addresses, dates, times, sizes, ports, versions, HTTP statuses) are never read: only a
   label or the trailing-parenthesis form makes a number a candidate, and a number that runs
   on into `.3`, `:13`, `/23`, `-11` or a unit is refused. Among several codes, failures (2+)
   beat a partial success (1), which beats success (0); then final forms (`EXIT STATUS`, the
   trailing `(NN)` of the last line that names a code) beat intermediate ones; then the later
   mention wins. When no code is written (or only a 0, the success of some step), the text
   is matched against the messages of the knowledge base: the whole text or line, a message
   embedded in a log line, the text as a part of a message and, only when none of these
   found anything, fuzzy matching (rapidfuzz) on candidates picked through an inverted index
   of the messages' rarer words (typos included). The index is built once per process and
   rebuilt when StatusCode rows change (signals, plus a count/newest-change stamp checked at
   most every few seconds for bulk imports and other processes).
2. Take the level from the knowledge base, then apply the hardware rule: hardware evidence
   in the text (drive, robot, tape library, SCSI, HBA, firmware, "hardware error",
   "medium error", "I/O error on device"; routine "Info" lines excepted) never yields an
   automatic level. Level 1, a 0 that came from matching a message, or an unidentified
   failure is raised to 3, or to 2 when the text is clearly about configuring that hardware.
3. Compose the confidence from named parts (below), each returned with its value, weight
   and a note.
4. Find similar past incidents (same code first, then similar evidence text) and list the
   recommended actions (the code's recommended action in steps, then what the level implies).

Confidence
----------
    confidence = Σ value(part) × weight(part), rounded to 4 places; the weights sum to 1.

- ``identification`` (weight 0.40): how the code was found. Given by the caller 1.0 (0.85
  when the text names a different failure code); written as a final status 0.95; written
  with a label 0.90; a trailing ``(NN)`` on an earlier line 0.80; the whole text is a
  message 0.90; a message embedded in a line 0.85 × score/100; the text is part of a
  message 0.75 × score/100; fuzzy 0.70 × score/100; nothing found 0.
- ``evidence`` (weight 0.25): do the words of the text agree with the code's category?
  The code's own message is in the text 1.0; words of its category 0.9; no words pointing
  to any category, no text, or a code of no particular category 0.5; only words of other
  categories 0.2; no code 0.
- ``level`` (weight 0.35): how far the level can be trusted. Decided by a curator 1.0; given
  by an import 0.9; from the classifier its own confidence; raised by the hardware rule 0.8
  (a safety policy, not knowledge of this code); no code 0.

Candidates
----------
At most five, the identified code first, the rest ordered by how they were found (``HOW_ORDER``)
then score. Scores (0-100): the deciding written or given code 100; other written codes 60 + 5 ×
rank (65-80); a whole text or line equal to a message 100; an embedded message 80-99 (how much
of the line it fills); the text as part of a message 60-95 (how much of the message it is);
fuzzy 0.7 × rapidfuzz partial_ratio + 30 × the share of the message's word weight found.

Similar incidents
-----------------
Same (family, code) first: the customer's own, then resolved ones, then the most recent
(score 100, why "same code"). Then rapidfuzz token_set_ratio (≥ 70) between the evidence
words (numbers and log noise removed) and the stored evidence of the latest SIMILAR_POOL
incidents of the code's category (why "similar text").
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache

from django.db.models import Case, Count, IntegerField, Max, Q, TextField, Value, When
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.db.models.signals import post_delete, post_save
from django.utils.translation import gettext as _
from rapidfuzz import fuzz, process

from errorcodes.choices import Category, Family, Level, LevelSource
from errorcodes.models import StatusCode

from .choices import IncidentState
from .models import Customer, Incident

MAX_CODE = 2**31 - 1
MAX_EVIDENCE_LINES = 8
MAX_EVIDENCE_CHARS = 400
CANDIDATES = 5
SIMILAR_POOL = 2000  # past incidents compared by text: a bounded, recent slice keeps this fast
INDEX_RECHECK_SECONDS = 5.0

WEIGHTS = {"identification": 0.40, "evidence": 0.25, "level": 0.35}

# How a candidate was found, most reliable first; also the order of the candidate list.
HOW_ORDER = ("exact code", "exact message", "embedded message", "partial message", "fuzzy")

# --------------------------------------------------------------------------------------
# Finding written codes

_NUM = r"(?P<num>\d{1,5})"
# The number must stop here: running on into a version (10.3), an address (10.0.0.58), a time
# (10:58), a date (11/23, 2026-11) or a size/duration unit makes it something else.
_STOPS = (
    r"(?!\d)(?![.,:/-]\d)"
    r"(?!\s*(?:%|[kmgtpe]i?b(?:ytes?)?\b|bytes?\b|ms\b|sec(?:ond)?s?\b|min(?:ute)?s?\b|hours?\b|hrs?\b"
    r"|files?\b|jobs?\b|분|초|시간|개|건|회|차|번째|명|대|바이트))"
)
_LABELS = (
    # (rank, label); rank 4 = the job's final status, 2 = a labelled status somewhere in the text.
    (4, r"\bexit\s+status\s*[:=]?\s*"),
    (4, r"\bnetbackup\s+(?:status|error)(?:\s+code)?\s*[:=]?\s*"),
    (4, r"\bfinal\s+status(?:\s+code)?\s*[:=]?\s*"),
    (2, r"\bexit(?:ing|ed)\s+with\s+status\s*[:=]?\s*"),
    (2, r"(?:\b|(?<=try))(?:status|error)[\s_-]*code\s*[\"']?\s*(?:(?:is|was|of|no\.?|number|#)\s*)?[:=]?\s*\(?\s*"),
    (2, r"\bstatus\s*[:=]?\s*\(?\s*"),
    (2, r"(?:에러|오류|장애|상태|종료)\s*코드\s*(?:는|은|가|값|번호)?\s*[:=]?\s*\(?\s*"),
    (2, r"(?:에러|오류)\s*[:=]?\s*"),
)
_LABEL_RES = [(rank, re.compile(label + _NUM + _STOPS, re.IGNORECASE)) for rank, label in _LABELS]
# Korean e-mails also put the number first: "58번 에러", "96 오류 발생".
_LABEL_RES.append((2, re.compile(r"(?<![\w.:/-])" + _NUM + r"\s*번?\s*(?:에러|오류)")))
# A web or API status is not a NetBackup code.
_NOT_OURS_BEFORE = re.compile(r"(?:https?|http/\d(?:\.\d)?|response|rest\s+api)\W{0,3}$", re.IGNORECASE)
_TRAILING_PAREN = re.compile(r"\(\s*" + _NUM + r"\s*\)\s*[.!。]?\s*$")
# "(2)" after these words counts attempts, copies, attachments or ids, not a status.
_NOT_CODE_PAREN_BEFORE = re.compile(
    r"(?:\bjob\s*id|\bjobid|\bjob|\bpid|\bid|\bport|\btry|\btries|\battempts?|\bretry|\bretries|\bcopy|\bcopies"
    r"|\bstreams?|\bpage|\bstep|\bx|\bfiles?|\battachments?|첨부(?:\s*파일)?|파일|재시도|시도)\s*[:#=]?\s*$",
    re.IGNORECASE,
)
_FAMILY_HINT = re.compile(
    r"(?P<mm>media\s*manager|미디어\s*매니저)|(?P<re>robotic\s+error)|(?P<ro>robotic)"
    r"|(?P<dc>device\s+config(?:uration)?)|(?P<dm>device\s+management)",
    re.IGNORECASE,
)
_FAMILY_GROUPS = {
    "mm": Family.MEDIA_MANAGER.value,
    "re": Family.ROBOTIC_ERROR.value,
    "ro": Family.ROBOTIC.value,
    "dc": Family.DEVICE_CONFIG.value,
    "dm": Family.DEVICE_MANAGEMENT.value,
}
DEFAULT_FAMILY = Family.NETBACKUP.value
_FAMILY_WINDOW = 40


@dataclass(frozen=True)
class CodeMention:
    """A status code written in the text."""

    family: str
    code: int
    line: str
    line_no: int
    position: int
    rank: int  # 4 final status, 3 trailing (NN) of the last line naming a code, 2 labelled, 1 trailing (NN)
    form: str  # "final", "labelled", "trailing"

    @property
    def tier(self) -> int:
        return 2 if self.code >= 2 else self.code  # failure > partial success > success


def _family_before(line: str, start: int, end: int) -> str:
    window = line[max(0, start - _FAMILY_WINDOW) : end]
    family = DEFAULT_FAMILY
    for match in _FAMILY_HINT.finditer(window):
        family = _FAMILY_GROUPS[match.lastgroup]
    return family


def find_code_mentions(text: str) -> list[CodeMention]:
    """Every status code written in `text`, in reading order."""
    mentions: dict[int, CodeMention] = {}
    offset = 0
    for line_no, line in enumerate((text or "").splitlines()):
        stripped = line.strip()
        hinted = _FAMILY_HINT.search(line) is not None
        for rank, regex in _LABEL_RES:
            for match in regex.finditer(line):
                if _NOT_OURS_BEFORE.search(line, max(0, match.start() - 20), match.start()):
                    continue
                code = int(match.group("num"))
                position = offset + match.start("num")
                known = mentions.get(position)
                if code > MAX_CODE or (known is not None and known.rank >= rank):
                    continue
                mentions[position] = CodeMention(
                    family=_family_before(line, match.start(), match.start("num")) if hinted else DEFAULT_FAMILY,
                    code=code,
                    line=stripped,
                    line_no=line_no,
                    position=position,
                    rank=rank,
                    form="final" if rank == 4 else "labelled",
                )
        match = _TRAILING_PAREN.search(line)
        if match and not _NOT_CODE_PAREN_BEFORE.search(line, max(0, match.start() - 30), match.start()):
            position = offset + match.start("num")
            if position not in mentions:
                mentions[position] = CodeMention(
                    family=_family_before(line, match.start(), match.start()) if hinted else DEFAULT_FAMILY,
                    code=int(match.group("num")),
                    line=stripped,
                    line_no=line_no,
                    position=position,
                    rank=1,
                    form="trailing",
                )
        offset += len(line) + 1
    found = sorted(mentions.values(), key=lambda m: m.position)
    if found:
        # The trailing "(NN)" of the last line that names any code is how job details end: the job's status.
        last_line = found[-1].line_no
        found = [
            dataclasses.replace(m, rank=3) if m.form == "trailing" and m.line_no == last_line else m for m in found
        ]
    return found


def choose_mention(mentions: list[CodeMention]) -> CodeMention | None:
    """The mention that decides: a failure over a warning over a success, a final form, then the latest."""
    if not mentions:
        return None
    return max(mentions, key=lambda m: (m.tier, m.rank, m.position))


def extract_code(text: str) -> tuple[str, int, str] | None:
    """(family, code, evidence line) of the status code written in `text`, or None."""
    chosen = choose_mention(find_code_mentions(text))
    if chosen is None:
        return None
    return chosen.family, chosen.code, chosen.line


# --------------------------------------------------------------------------------------
# Words

_QUOTES = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u00b4": "'",
        "`": "'",
        "\uff07": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\uff02": '"',
    }
)
_CONTRACTIONS = (
    (re.compile(r"\bcan'?t\b|\bcan\s+not\b"), "cannot"),
    (re.compile(r"\bwon't\b"), "will not"),
    (re.compile(r"n't\b"), " not"),
)
_TOKEN = re.compile(r"[^\W_]+")
STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "to",
        "in",
        "on",
        "for",
        "from",
        "is",
        "was",
        "be",
        "been",
        "are",
        "by",
        "at",
        "as",
        "it",
        "or",
        "and",
        "with",
        "this",
        "that",
    ]
)
# Words every log line carries; they say nothing about which message is meant.
_LOG_NOISE = frozenset(
    [
        "info",
        "warning",
        "warn",
        "error",
        "err",
        "critical",
        "debug",
        "pid",
        "bpbrm",
        "bptm",
        "bpbkar",
        "bpcd",
        "bpdbm",
        "nbjm",
        "nbpem",
        "nbrb",
        "bpsched",
        "bpfis",
        "bpbackup",
        "vnetd",
        "jobid",
        "job",
        "try",
    ]
)
_FAILURE_LINE = re.compile(
    r"error|fail|cannot|can'?t|unable|denied|timed?\s*out|refused|abort|invalid|not\s+found|exceed|full|"
    r"unreachable|reset|corrupt|conflict|mismatch|does\s+not\s+match|not\s+respond|offline|\bdown\b|stopped|"
    r"에러|오류|실패|장애|불가|멈|정지|고장|다운",
    re.IGNORECASE,
)
# NetBackup job details and try-logs mark routine lines "Info"; a tape job names its drive in them.
_INFO_LINE = re.compile(r"(?:^|\s)info\b", re.IGNORECASE)


def normalise(text: str) -> str:
    """Lower case, straight quotes, expanded negations, single spaces: the form messages are compared in."""
    return " ".join(tokens(text))


def tokens(text: str) -> list[str]:
    text = (text or "").translate(_QUOTES).lower()
    for regex, replacement in _CONTRACTIONS:
        text = regex.sub(replacement, text)
    return _TOKEN.findall(text)


# --------------------------------------------------------------------------------------
# The message index


@dataclass(frozen=True)
class _Entry:
    pk: int
    family: str
    code: int
    norm: str
    words: tuple[str, ...]


@dataclass
class MessageMatch:
    entry: _Entry
    how: str
    score: int
    line: str


class MessageIndex:
    """Normalised knowledge-base messages, looked up by whole text, by word sequence and by rare words."""

    def __init__(self, rows):
        self.entries: list[_Entry] = []
        self.by_words: dict[tuple[str, ...], list[int]] = defaultdict(list)
        self.by_head: dict[tuple[str, str], list[int]] = defaultdict(list)
        self.postings: dict[str, list[int]] = defaultdict(list)
        for pk, family, code, message in rows:
            words = tuple(tokens(message))
            if not words:
                continue
            index = len(self.entries)
            self.entries.append(_Entry(pk, family, code, " ".join(words), words))
            self.by_words[words].append(index)
            if len(words) >= 2:
                self.by_head[words[:2]].append(index)
            for word in set(words) - STOP_WORDS:
                self.postings[word].append(index)
        count = max(len(self.entries), 1)
        self.idf = {word: math.log(1 + count / len(ids)) for word, ids in self.postings.items()}
        self.weight = [sum(self.idf[w] for w in set(e.words) - STOP_WORDS) or 1.0 for e in self.entries]
        self.padded = [f" {e.norm} " for e in self.entries]
        # Words in a fifth of all messages ("failed", "client") cannot narrow the search.
        self.max_df = max(50, count // 5)
        self.vocabulary = list(self.postings)
        self._near: dict[str, list[tuple[str, float]]] = {}

    def __len__(self):
        return len(self.entries)

    def whole(self, words: list[str]) -> list[int]:
        return self.by_words.get(tuple(words), [])

    def embedded(self, words: list[str]) -> list[tuple[int, int]]:
        """(entry, start) for every message of two or more words found as a word sequence."""
        found = []
        for start in range(len(words) - 1):
            for index in self.by_head.get((words[start], words[start + 1]), ()):
                size = len(self.entries[index].words)
                if tuple(words[start : start + size]) == self.entries[index].words:
                    found.append((index, start))
        return found

    def containing(self, words: list[str]) -> list[int]:
        """Messages of which the words are a part (someone typed only a piece of the message)."""
        needle = f" {' '.join(words)} "
        return [i for i, padded in enumerate(self.padded) if needle in padded]

    def near_words(self, word: str) -> list[tuple[str, float]]:
        """Known words spelt like `word` (similarity 0-1): a typo still points to the right messages."""
        if word in self.postings:
            return [(word, 1.0)]
        if len(word) < 4 or not word.isalpha():
            return []
        near = self._near.get(word)
        if near is None:
            near = [
                (known, score / 100)
                for known, score, _i in process.extract(
                    word, self.vocabulary, scorer=fuzz.ratio, score_cutoff=80, limit=3
                )
            ]
            if len(self._near) < 50_000:
                self._near[word] = near
        return near

    def fuzzy(self, lines: list[str], exclude: set[int], limit: int = 10) -> list[tuple[int, int, str]]:
        """(entry, score 0-100, line) for messages close to some line.

        Candidates are the messages sharing rare words (or words spelt like them) with the text, enough
        to cover half the weight of the message; rapidfuzz then scores each candidate against each line.
        """
        known: dict[str, float] = {}
        words = set()
        for line in lines:
            words.update(line.split())
        for word in sorted(words - STOP_WORDS - _LOG_NOISE)[:200]:
            for near, similarity in self.near_words(word):
                if similarity > known.get(near, 0.0):
                    known[near] = similarity
        weights: dict[int, float] = defaultdict(float)
        for word, similarity in known.items():
            ids = self.postings[word]
            if len(ids) > self.max_df:
                continue
            gain = self.idf[word] * similarity
            for index in ids:
                weights[index] += gain
        coverage = {i: w / self.weight[i] for i, w in weights.items() if i not in exclude}
        shortlisted = sorted((i for i, c in coverage.items() if c >= 0.5), key=lambda i: -coverage[i])[:40]
        if not shortlisted:
            return []
        choices = {i: self.entries[i].norm for i in shortlisted}
        best: dict[int, tuple[int, str]] = {}
        for line in lines:
            for _norm, raw, index in process.extract(
                line, choices, scorer=fuzz.partial_ratio, limit=limit, score_cutoff=70
            ):
                score = round(0.7 * raw + 30 * min(coverage[index], 1.0))
                if score >= 70 and score > best.get(index, (0, ""))[0]:
                    best[index] = (score, line)
        ranked = sorted(best.items(), key=lambda item: -item[1][0])[:limit]
        return [(index, score, line) for index, (score, line) in ranked]


_index_lock = threading.Lock()
_index: MessageIndex | None = None
_index_stamp: tuple | None = None
_index_checked = 0.0


def _stamp() -> tuple:
    # Bulk imports send no signals; the row count and the newest change time catch them.
    totals = StatusCode.objects.aggregate(n=Count("pk"), latest=Max("updated_at"))
    return totals["n"], totals["latest"]


def get_index() -> MessageIndex:
    """The message index, rebuilt when the knowledge base changed (checked at most every few seconds)."""
    global _index, _index_stamp, _index_checked
    with _index_lock:
        now = time.monotonic()
        if _index is not None and now - _index_checked < INDEX_RECHECK_SECONDS:
            return _index
        stamp = _stamp()
        _index_checked = now
        if _index is None or stamp != _index_stamp:
            rows = StatusCode.objects.filter(is_active=True).values_list("pk", "family", "code", "message")
            _index = MessageIndex(rows.order_by("family", "code"))
            _index_stamp = stamp
        return _index


def reset_index(*args, **kwargs) -> None:
    """Forget the message index; the next diagnosis rebuilds it."""
    global _index, _index_stamp
    with _index_lock:
        _index = None
        _index_stamp = None


post_save.connect(reset_index, sender=StatusCode, dispatch_uid="incidents.diagnosis.reset_index.save")
post_delete.connect(reset_index, sender=StatusCode, dispatch_uid="incidents.diagnosis.reset_index.delete")


def match_messages(text: str, *, index: MessageIndex | None = None, fuzzy: bool = True) -> list[MessageMatch]:
    """Knowledge-base messages found in `text`, best first (by how they were found, then score).

    Fuzzy matching, the slowest step, runs only when `fuzzy` is set and nothing matched exactly.
    """
    index = index if index is not None else get_index()
    raw_lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if not raw_lines or not len(index):
        return []
    best: dict[int, MessageMatch] = {}

    def keep(entry_index: int, how: str, score: int, line: str):
        match = MessageMatch(index.entries[entry_index], how, score, line)
        known = best.get(entry_index)
        if known is None or (HOW_ORDER.index(how), -score) < (HOW_ORDER.index(known.how), -known.score):
            best[entry_index] = match

    all_words = tokens(text)
    for entry_index in index.whole(all_words):
        keep(entry_index, "exact message", 100, raw_lines[0] if len(raw_lines) == 1 else text.strip())
    normalised_lines = []
    for line in raw_lines:
        words = tokens(line)
        if not words:
            continue
        normalised_lines.append((line, words))
        for entry_index in index.whole(words):
            keep(entry_index, "exact message", 100, line)
        meaningful = [w for w in words if w.isalpha() and w not in _LOG_NOISE] or words
        for entry_index, _start in index.embedded(words):
            size = len(index.entries[entry_index].words)
            # A message that fills most of the line is surer than a short one inside a long line.
            score = 80 + round(19 * min(size / max(len(meaningful), 1), 1.0))
            keep(entry_index, "embedded message", score, line)
    significant = [w for w in all_words if w not in STOP_WORDS]
    if len(significant) >= 2 and len(all_words) <= 12 and len(raw_lines) == 1:
        needle = " ".join(all_words)
        for entry_index in index.containing(all_words):
            share = len(needle) / max(len(index.entries[entry_index].norm), 1)
            keep(entry_index, "partial message", 60 + round(35 * min(share, 1.0)), raw_lines[0])
    if best or not fuzzy:
        return _ranked(best.values())
    fuzzy_lines = [item for item in normalised_lines if _FAILURE_LINE.search(item[0])][-30:]
    if not fuzzy_lines:
        fuzzy_lines = normalised_lines[-30:]
    norm_to_line = {" ".join(words): line for line, words in fuzzy_lines}
    for entry_index, score, norm in index.fuzzy(list(norm_to_line), exclude=set(best)):
        keep(entry_index, "fuzzy", score, norm_to_line[norm])
    return _ranked(best.values())


def _ranked(matches) -> list[MessageMatch]:
    # Equal scores: the longer message says more.
    return sorted(matches, key=lambda m: (HOW_ORDER.index(m.how), -m.score, -len(m.entry.words)))


# --------------------------------------------------------------------------------------
# Evidence words

_CATEGORY_WORDS = {
    Category.NETWORK: r"network|socket|connect(?:ion|ed|ing)?|timed?\s*out|timeout|refused|reset|unreachable|"
    r"firewall|errno|dns|host\s+name|resolve|port|네트워크|연결|타임아웃|방화벽",
    Category.CLIENT: r"client\s+(?:process|software|service|agent|host)|bpcd|bpbkar|file\s+read|"
    r"file\s+list|클라이언트",
    Category.MEDIA: r"media|volume|scratch|volume\s+pool|barcode|미디어|볼륨",
    Category.DISK_STORAGE: r"disk|storage\s+unit|stu|disk\s+pool|no\s+space|space|full|capacity|디스크|용량|공간",
    Category.TAPE_HARDWARE: r"drive|robot(?:ic)?|tape|library|scsi|hba|firmware|hardware|드라이브|테이프|라이브러리",
    Category.POLICY_CONFIG: r"policy|schedule|configur\w*|selection|exclude\s+list|정책|스케줄|설정",
    Category.CATALOG: r"catalog|image|bpdbm|nbdb|카탈로그|이미지",
    Category.DATABASE_AGENT: r"oracle|rman|sql\s*server|mssql|db2|sap|exchange|sybase|database|script|오라클|데이터베이스",
    Category.VIRTUALIZATION: r"vmware|vcenter|esxi?|hyper-?v|snapshot|virtual\s+machine|vm|가상|스냅샷",
    Category.CLOUD: r"cloud|s3|azure|bucket|object\s+storage|클라우드",
    Category.SECURITY_CERTIFICATES: r"certificate|cert|ssl|tls|credential|authenticat\w*|authoriz\w*|"
    r"permission|access\s+denied|password|token|인증서|인증|권한|비밀번호",
    Category.DEDUPLICATION: r"dedup\w*|msdp|spoold|spad|pd\.conf|fingerprint|중복\s*제거",
    Category.REPLICATION_SLP: r"slp|replicat\w*|duplicat\w*|lifecycle|auto\s+image\s+replication|air|복제",
    Category.KUBERNETES: r"kubernetes|k8s|pod|namespace|persistent\s+volume|pvc|쿠버네티스",
}
_HANGUL_WORD = re.compile(r"[\uac00-\ud7a3][\uac00-\ud7a3\s]*")


def _category_regex(pattern: str) -> re.Pattern:
    # English words need word boundaries ("port" is not "report"); Korean words take particles
    # ("디스크가", "용량이"), so they match as the start of a word.
    alternatives = pattern.split("|")
    korean = [a for a in alternatives if _HANGUL_WORD.fullmatch(a)]
    english = [a for a in alternatives if a not in korean]
    parts = [rf"(?<![\w-])(?:{'|'.join(english)})(?![\w-])"] if english else []
    if korean:
        parts.append(rf"(?<![\uac00-\ud7a3])(?:{'|'.join(korean)})")
    return re.compile("|".join(parts), re.IGNORECASE)


_CATEGORY_RES = {category: _category_regex(pattern) for category, pattern in _CATEGORY_WORDS.items()}
_HARDWARE = re.compile(
    r"(?<![\w-])(?:drives?|robot(?:ic|s)?|tape\s+librar(?:y|ies)|scsi|hba|firmware|hardware\s+error|"
    r"medium\s+error|i/o\s+error\s+on\s+(?:the\s+)?(?:device|drive|tape))(?![\w-])"
    r"|드라이브|로봇|테이프\s*라이브러리|하드웨어|펌웨어",
    re.IGNORECASE,
)
_HARDWARE_CONFIG = re.compile(
    r"(?<![\w-])(?:configur\w*|misconfigur\w*|not\s+configured|device\s+path|zoning|mapping|mapped|tpconfig|"
    r"settings?|defined|definition)(?![\w-])|설정|구성",
    re.IGNORECASE,
)


def category_words(text: str) -> dict[str, list[str]]:
    """Words of each category present in `text` (category -> distinct words, as written)."""
    found = {}
    for category, regex in _CATEGORY_RES.items():
        words = sorted({m.group(0).lower() for m in regex.finditer(text or "")})
        if words:
            found[category] = words
    return found


def hardware_evidence(text: str) -> tuple[list[str], list[str], bool]:
    """(hardware words, lines naming hardware, whether those lines are about configuring it).

    Routine "Info" lines that name a drive without any sign of failure are not evidence.
    """
    words, lines, about_config = set(), [], False
    for line in (text or "").splitlines():
        named = [m.group(0).lower() for m in _HARDWARE.finditer(line)]
        if not named or (_INFO_LINE.search(line) and not _FAILURE_LINE.search(line)):
            continue
        words.update(named)
        lines.append(line.strip())
        if _HARDWARE_CONFIG.search(line):
            about_config = True
    return sorted(words), lines, about_config


# --------------------------------------------------------------------------------------
# Diagnosis


@dataclass
class _Identification:
    family: str | None = None
    code: int | None = None
    how: str | None = None
    value: float = 0.0
    note: str = ""
    lines: tuple[str, ...] = ()
    by_message: bool = False


def _clean_family(family) -> str | None:
    if family in (None, ""):
        return None
    normalised = Family.normalise(family)
    if normalised is None:
        raise ValueError(f"unknown family {family!r}; expected one of: {', '.join(Family.values)}")
    return normalised


def _clean_code(code) -> int | None:
    if code is None or code == "":
        return None
    if isinstance(code, bool):
        raise ValueError(f"code {code!r} is not a status code")
    if isinstance(code, str):
        if not code.strip().isdigit():
            raise ValueError(f"code {code!r} is not a status code")
        code = int(code.strip())
    if isinstance(code, float):
        if not code.is_integer():
            raise ValueError(f"code {code!r} is not a whole number")
        code = int(code)
    if not isinstance(code, int) or not 0 <= code <= MAX_CODE:
        raise ValueError(f"code {code!r} is not a status code")
    return code


def _resolve_customer(customer) -> Customer | None:
    if customer is None or customer == "":
        return None
    if isinstance(customer, Customer):
        return customer
    if isinstance(customer, int):
        return Customer.objects.filter(pk=customer).first()
    return Customer.objects.filter(code=str(customer)).first()


def _short(line: str) -> str:
    line = " ".join(line.split())
    return line if len(line) <= MAX_EVIDENCE_CHARS else line[: MAX_EVIDENCE_CHARS - 1] + "…"


def _status_code_dict(row: StatusCode) -> dict:
    return {
        "family": row.family,
        "code": row.code,
        "message": row.message,
        "category": row.category,
        "level": row.level,
        "level_source": row.level_source,
        "explanation": row.explanation,
        "recommended_action": row.recommended_action,
    }


def _rows_for(keys: list[tuple[str, int]]) -> dict[tuple[str, int], StatusCode]:
    if not keys:
        return {}
    by_family: dict[str, set[int]] = defaultdict(set)
    for family, code in keys:
        by_family[family].add(code)
    query = Q()
    for family, codes in by_family.items():
        query |= Q(family=family, code__in=sorted(codes))
    return {row.key: row for row in StatusCode.objects.filter(query)}


_MENTION_VALUES = {4: 0.95, 3: 0.95, 2: 0.90, 1: 0.80}
_MATCH_FACTORS = {"exact message": 0.90, "embedded message": 0.85, "partial message": 0.75, "fuzzy": 0.70}


def _identify(family, code, mentions, chosen, matches) -> _Identification:
    if code is not None:
        family = family or (chosen.family if chosen is not None and chosen.code == code else DEFAULT_FAMILY)
        same = [m.line for m in mentions if m.code == code]
        contradicting = [m for m in mentions if m.code != code and m.tier == 2]
        if contradicting and code >= 2 and not same:
            other = choose_mention(contradicting)
            return _Identification(
                family,
                code,
                "exact code",
                0.85,
                _("Code {code} was given; the text names {other} instead.").format(code=code, other=other.code),
                (other.line,),
            )
        return _Identification(
            family, code, "exact code", 1.0, _("Code {code} was given.").format(code=code), tuple(same[-1:])
        )
    usable = [m for m in matches if family is None or m.entry.family == family]
    failing = [m for m in usable if m.entry.code != 0]
    # A written 0 is some step that succeeded; a failure message elsewhere in the text says more.
    if chosen is not None and not (chosen.code == 0 and failing):
        return _Identification(
            family or chosen.family,
            chosen.code,
            "exact code",
            _MENTION_VALUES[chosen.rank],
            {
                "final": _("Written in the text as the final status."),
                "labelled": _("Written in the text with a label."),
                "trailing": _("Written in the text as a trailing (number)."),
            }[chosen.form]
            if chosen.rank != 3
            else _("Written in the text as the trailing status of the last line."),
            (chosen.line,),
        )
    if usable:
        best = failing[0] if chosen is not None else usable[0]
        value = _MATCH_FACTORS[best.how] * (best.score / 100 if best.how != "exact message" else 1.0)
        note = _("No code is written; the text matches the message of {family} {code} ({how}, score {score}).")
        if chosen is not None:
            note = _(
                "The only written status is 0 (a step that succeeded); the text matches the message of "
                "{family} {code} ({how}, score {score})."
            )
        return _Identification(
            best.entry.family,
            best.entry.code,
            best.how,
            round(value, 4),
            note.format(family=best.entry.family, code=best.entry.code, how=best.how, score=best.score),
            (best.line,),
            by_message=True,
        )
    return _Identification(note=_("No status code is written and no known message matches."))


def _evidence_part(text: str, row: StatusCode | None, message_in_text: bool, found: dict) -> tuple[float, str]:
    if row is None:
        return 0.0, _("No status code to compare the text with.")
    if not text.strip():
        return 0.5, _("No text to compare with the code's category.")
    if message_in_text:
        return 1.0, _("The code's own message is in the text.")
    if row.category in (Category.OTHER, Category.INFORMATIONAL):
        return 0.5, _("The code belongs to no particular category.")
    if row.category in found:
        return 0.9, _("Words of the category {category}: {words}.").format(
            category=row.category, words=", ".join(found[row.category][:6])
        )
    if found:
        return 0.2, _("The text speaks of {others}, not of {category}.").format(
            others=", ".join(sorted(found)), category=row.category
        )
    return 0.5, _("No words in the text point to a category.")


def _level_part(row: StatusCode | None, raised: bool) -> tuple[float, str]:
    if row is None:
        return 0.0, _("No knowledge-base entry gives a level.")
    if raised:
        return 0.8, _("Level set by the hardware rule (a safety policy), not by the knowledge base.")
    if row.level_source == LevelSource.CURATOR:
        return 1.0, _("Level decided by a curator.")
    if row.level_source == LevelSource.IMPORT:
        return 0.9, _("Level given by an import.")
    return float(row.confidence), _("Level from the classifier, with its confidence {value:.2f}.").format(
        value=row.confidence
    )


_STEP_SPLIT = re.compile(r"\n+|;\s+|(?<=[.!?])\s+(?=[A-Z가-힣(\"'])|\s+(?=\d{1,2}[.)]\s)")
_STEP_PREFIX = re.compile(r"^\s*(?:[-*•·]+|\(?\d{1,2}[.)]|[a-z][.)])\s*")


def action_steps(text: str) -> list[str]:
    """A recommended action split into its steps (lines, numbered items, sentences)."""
    steps = []
    for piece in _STEP_SPLIT.split(text or ""):
        step = _STEP_PREFIX.sub("", piece).strip()
        if step and step not in steps:
            steps.append(step)
    return steps


def level_actions(level: int | None, identified: bool) -> list[str]:
    if not identified:
        return [_("Read the job's try-log and identify the status code, then diagnose again with it.")]
    return {
        Level.INFORMATIONAL: [_("Nothing to fix: confirm and close the incident.")],
        Level.AUTOMATIC: [_("Re-run the job; a retry is safe for this code.")],
        Level.APPROVAL: [_("Have an engineer approve the fix before it runs.")],
        Level.ONSITE: [_("Open a vendor case or dispatch on-site support.")],
    }.get(level, [])


def diagnose(
    text: str = "",
    *,
    family: str | None = None,
    code: int | None = None,
    customer=None,
    exclude_incident_id=None,
    similar_limit: int = 5,
    user=None,
) -> dict:
    """Diagnose a failed job from its text (try-log, job details, an e-mail) and/or its status code.

    `customer` (a Customer or its code) puts that customer's past incidents first among the similar
    ones. With `user`, similar incidents are limited to the customers that user may see; without one
    (a diagnosis stored on an incident), to `customer` alone, so no other customer's data is copied in.
    Raises ValueError for a family or code that cannot exist.
    """
    text = text or ""
    family = _clean_family(family)
    code = _clean_code(code)
    customer = _resolve_customer(customer)

    mentions = find_code_mentions(text)
    chosen = choose_mention(mentions)
    # Fuzzy matching, the slowest step, only helps when no failure code is given or written.
    written_failure = chosen is not None and chosen.code != 0
    matches = match_messages(text, fuzzy=code is None and not written_failure) if text.strip() else []
    matches = matches[: CANDIDATES * 3]
    keys = [(family or DEFAULT_FAMILY, code)] if code is not None else []
    if chosen is not None:
        keys.append((family or chosen.family, chosen.code))
    keys += [(m.entry.family, m.entry.code) for m in matches]
    keys += [(family or m.family, m.code) for m in reversed(mentions) if m.code != 0]
    rows = _rows_for(list(dict.fromkeys(keys))[: CANDIDATES * 5])
    # The index may predate a deletion: only messages whose code still exists count.
    matches = [m for m in matches if (m.entry.family, m.entry.code) in rows]

    ident = _identify(family, code, mentions, chosen, matches)
    key = (ident.family, ident.code)
    row = rows.get(key) if ident.code is not None else None
    if ident.code is not None and row is None and ident.family is not None:
        row = StatusCode.objects.filter(family=ident.family, code=ident.code).first()
    own_match = next((m for m in matches if (m.entry.family, m.entry.code) == key), None)
    message_in_text = own_match is not None and own_match.how in ("exact message", "embedded message")

    candidates = _candidates(ident, row, own_match, mentions, matches, rows, family)

    reasons: list[str] = [ident.note]
    evidence: list[str] = list(ident.lines)
    if ident.code is not None:
        if row is None:
            reasons.append(
                _("{family} status {code} is not in the knowledge base; an engineer decides.").format(
                    family=ident.family, code=ident.code
                )
            )
        else:
            reasons.append(
                _("{family} status {code}: {message}").format(family=row.family, code=row.code, message=row.message)
            )
        if message_in_text and not ident.by_message:
            evidence.append(own_match.line)
            reasons.append(_("The text also carries the code's own message."))

    if row is not None:
        level = row.level
        reasons.append(
            _("Level {level} from the knowledge base ({source}).").format(level=row.level, source=row.level_source)
        )
    else:
        level = Level.APPROVAL
        if ident.code is None:
            reasons.append(_("Nothing identified: level 2, an engineer decides."))
    level, raised, hardware_reason, hardware_lines = _hardware_rule(text, level, row, ident)
    if hardware_reason:
        reasons.append(hardware_reason)
        evidence.extend(hardware_lines)

    evidence_value, evidence_note = _evidence_part(text, row, message_in_text, category_words(_telling_lines(text)))
    level_value, level_note = _level_part(row, raised)
    parts = [
        _part("identification", ident.value, ident.note),
        _part("evidence", evidence_value, evidence_note),
        _part("level", level_value, level_note),
    ]
    confidence = round(sum(p["value"] * p["weight"] for p in parts), 4)

    actions = action_steps(row.recommended_action) if row is not None else []
    for step in level_actions(level, ident.code is not None):
        if step not in actions:
            actions.append(step)

    evidence = [_short(line) for line in dict.fromkeys(line for line in evidence if line and line.strip())]
    evidence = evidence[:MAX_EVIDENCE_LINES]

    similar = []
    if similar_limit and (ident.code is not None or text.strip()):
        similar = similar_incidents(
            family=ident.family,
            code=ident.code,
            text="\n".join(evidence) or text,
            customer=customer,
            exclude_incident_id=exclude_incident_id,
            limit=similar_limit,
            user=user,
            only_customer=user is None,
            category=row.category if row is not None else None,
        )

    return {
        "family": ident.family,
        "code": ident.code,
        "identified_by": ident.how,
        "status_code": _status_code_dict(row) if row is not None else None,
        "candidates": candidates,
        "level": int(level),
        "confidence": confidence,
        "confidence_parts": parts,
        "evidence": evidence,
        "reasons": reasons,
        "recommended_actions": actions,
        "similar_incidents": similar,
    }


def _telling_lines(text: str, limit: int = 50) -> str:
    """The lines that say what went wrong (the last `limit` failure lines, else the last lines)."""
    lines = [line for line in text.splitlines() if line.strip()]
    failing = [line for line in lines if _FAILURE_LINE.search(line)]
    return "\n".join((failing or lines)[-limit:])[-20_000:]


def _part(name: str, value: float, note: str) -> dict:
    return {"name": name, "value": round(float(value), 4), "weight": WEIGHTS[name], "note": note}


def _candidates(ident, row, own_match, mentions, matches, rows, family) -> list[dict]:
    """The identified code first, then other written codes, then matched messages; at most CANDIDATES."""
    first = []
    if ident.code is not None:
        first.append(
            {
                "family": ident.family,
                "code": ident.code,
                "message": row.message if row is not None else None,
                "score": own_match.score if ident.by_message else 100,
                "how": ident.how,
            }
        )
    seen = {(ident.family, ident.code)}
    rest = []
    for mention in reversed(mentions):
        key = (family or mention.family, mention.code)
        if key in seen or mention.tier == 0:
            continue
        seen.add(key)
        known = rows.get(key)
        # Written, but not the deciding mention: below the decision, above guesses.
        rest.append(
            {
                "family": key[0],
                "code": key[1],
                "message": known.message if known is not None else None,
                "score": 60 + 5 * mention.rank,
                "how": "exact code",
            }
        )
    for match in matches:
        key = (match.entry.family, match.entry.code)
        if key in seen:
            continue
        seen.add(key)
        rest.append(
            {"family": key[0], "code": key[1], "message": rows[key].message, "score": match.score, "how": match.how}
        )
    rest.sort(key=lambda c: (HOW_ORDER.index(c["how"]), -c["score"]))
    return (first + rest)[:CANDIDATES]


def _hardware_rule(text: str, level: int, row, ident) -> tuple[int, bool, str, list[str]]:
    """(level, raised over the knowledge base, reason, lines): hardware evidence never yields an automatic level."""
    words, lines, about_config = hardware_evidence(text)
    if not words:
        return level, False, "", []
    from_match = ident.by_message and level == Level.INFORMATIONAL
    if not (level == Level.AUTOMATIC or from_match or row is None):
        return level, False, "", []
    about_config = about_config or ident.family == Family.DEVICE_CONFIG
    new_level = Level.APPROVAL if about_config else Level.ONSITE
    if new_level == level:
        return level, False, "", []
    if about_config:
        reason = _(
            "Hardware evidence ({words}) never allows an automatic level: level {old} raised to {new} "
            "because the text is about configuring the hardware."
        )
    else:
        reason = _("Hardware evidence ({words}) never allows an automatic level: level {old} raised to {new}.")
    reason = reason.format(words=", ".join(words[:5]), old=level, new=new_level)
    return new_level, row is not None, reason, lines[:3]


# --------------------------------------------------------------------------------------
# Similar incidents

_RESOLVED_STATES = [IncidentState.RESOLVED, IncidentState.CLOSED]


def _similarity_text(text: str) -> str:
    """Words that describe a failure, without the numbers (pids, times, ids) that differ every time."""
    lines = [line for line in text.splitlines() if line.strip()]
    failing = [line for line in lines if _FAILURE_LINE.search(line)]
    picked = (failing or lines)[-20:]
    words = [w for w in tokens("\n".join(picked)) if w.isalpha() and w not in _LOG_NOISE and w not in STOP_WORDS]
    return " ".join(words[:120])


# Stored evidence is a few short lines; the same incidents come back in every pool, so their words
# are worked out once. Bounded: about 20,000 short strings.
@lru_cache(maxsize=20_000)
def _stored_similarity_text(value: str | None) -> str:
    return _similarity_text(_evidence_text(value)) if value else ""


def _evidence_text(value) -> str:
    """Stored evidence (a JSON list of lines, as text) as plain text."""
    if not isinstance(value, str):
        return "\n".join(str(item) for item in value) if isinstance(value, list) else ""
    if "\\u" in value or "\\n" in value:
        # Escaped non-ASCII (Korean) or line breaks: decode so their words count.
        try:
            decoded = json.loads(value)
        except ValueError:
            return value
        return _evidence_text(decoded) if isinstance(decoded, list) else str(decoded)
    return value.replace('", "', "\n").replace('","', "\n")


def _similar_row(row: dict, score: int, why: str) -> dict:
    last_seen = row["last_seen"]
    return {
        "id": row["id"],
        "customer": row["customer__code"],
        "client": row["client"],
        "policy": row["policy"],
        "family": row["family"],
        "code": row["code"],
        "state": row["state"],
        "occurrences": row["occurrences"],
        "last_seen": last_seen.isoformat() if last_seen else None,
        "score": score,
        "why": why,
        "resolution": row["resolution"],
        "resolution_method": row["resolution_method"],
    }


_SIMILAR_FIELDS = (
    "id",
    "customer_id",
    "customer__code",
    "client",
    "policy",
    "family",
    "code",
    "state",
    "occurrences",
    "last_seen",
    "resolution",
    "resolution_method",
)


def similar_incidents(
    *,
    family: str | None,
    code: int | None,
    text: str = "",
    customer=None,
    exclude_incident_id=None,
    limit: int = 5,
    user=None,
    only_customer: bool = False,
    category: str | None = None,
) -> list[dict]:
    """Past incidents like this one: the same code first, then those whose evidence reads alike.

    Same code: the customer's own first (when given), resolved ones first (their resolution is the
    useful part), then the most recent. Similar text: rapidfuzz over the stored evidence of the
    latest SIMILAR_POOL incidents of the code's category (all categories when none is known).
    With `user`, only customers that user may see; with `only_customer`, only `customer`'s incidents.
    """
    from .permissions import restrict

    if limit <= 0:
        return []
    customer = _resolve_customer(customer)
    if code is not None:
        family = Family.normalise(family) or DEFAULT_FAMILY
    base = Incident.objects.all()
    if user is not None:
        base = restrict(base, user)
    if only_customer:
        if customer is None:
            return []
        base = base.filter(customer=customer)
    if exclude_incident_id is not None:
        base = base.exclude(pk=exclude_incident_id)

    results: list[dict] = []
    if code is not None:
        same = base.filter(family=family, code=code).annotate(
            own=Case(When(customer=customer, then=Value(1)), default=Value(0), output_field=IntegerField())
            if customer is not None
            else Value(0, output_field=IntegerField()),
            settled=Case(
                When(Q(state__in=_RESOLVED_STATES) | ~Q(resolution_method=""), then=Value(1)),
                default=Value(0),
                output_field=IntegerField(),
            ),
        )
        for row in same.order_by("-own", "-settled", "-last_seen", "-id").values(*_SIMILAR_FIELDS)[:limit]:
            results.append(_similar_row(row, 100, "same code"))
    if len(results) >= limit:
        return results

    query = _similarity_text(text or "")
    if not query:
        return results
    pool = base
    if code is not None:
        pool = pool.exclude(family=family, code=code)
        if category is None:
            category = StatusCode.objects.filter(family=family, code=code).values_list("category", flat=True).first()
    if category:
        # A subquery, not a join: with the join SQLite walks every incident in time order (5x slower).
        pool = pool.filter(status_code_id__in=StatusCode.objects.filter(category=category).values("pk"))
    # The evidence comes back as JSON text, not decoded: decoding thousands of rows costs more than the rest.
    evidence = Cast(KeyTextTransform("evidence", "diagnosis"), TextField())
    recent = pool.order_by("-last_seen", "-id").values_list("id", evidence)[:SIMILAR_POOL]
    # Evidence of the same failure reads the same once numbers are gone: score each distinct text once.
    ids_by_text: dict[str, list[int]] = defaultdict(list)
    for pk, value in recent:
        words = _stored_similarity_text(value)
        if words:
            ids_by_text[words].append(pk)
    if not ids_by_text:
        return results
    wanted = (limit - len(results)) * 3
    scores: dict[int, int] = {}
    found = process.extract(query, list(ids_by_text), scorer=fuzz.token_set_ratio, limit=wanted, score_cutoff=70)
    for words, score, _index in found:
        for pk in ids_by_text[words]:
            if len(scores) < wanted:
                scores[pk] = round(score)
    own_id = customer.pk if customer is not None else None
    ordered = sorted(
        base.filter(pk__in=scores).values(*_SIMILAR_FIELDS),
        key=lambda r: (
            -scores[r["id"]],
            r["customer_id"] != own_id,
            -(r["last_seen"].timestamp() if r["last_seen"] else 0),
        ),
    )
    for row in ordered[: limit - len(results)]:
        results.append(_similar_row(row, scores[row["id"]], "similar text"))
    return results
