"""Resolution-level classifier: weighted word rules blended with the nearest curated examples.

Deterministic, explainable and fast enough to run inside an import of thousands of codes:

1. Text is tokenised once (lower case, light suffix stemming); everything known about a
   token (its stem, which rule words it satisfies) is cached, so a call is mostly dict lookups.
2. Word rules (resolution-levels.md put into words) score each level. Message words count
   fully, explanation and recommended-action words less.
3. Curated examples (StatusCode rows a curator decided) are TF-IDF vectors in an inverted
   index; the k nearest by cosine vote for their levels. This is how the classifier learns:
   a curator's decision moves every similar uncurated code.
4. Guards run last and always win: hardware → 3 (or 2 when it is about configuring that
   hardware), and anything that deletes, expires, relabels or overwrites data is never level 1.

The reason names the rules, the words that fired them, the nearest curated examples and the
guards, so a curator can see why and disagree.
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import itemgetter, mul

from django.utils.translation import get_language, gettext, gettext_noop

from .choices import Category, Family, Level, Severity

# --------------------------------------------------------------------------------------
# Results and examples


@dataclass(frozen=True)
class Classification:
    level: int
    confidence: float
    reason: str
    category: str | None = None
    severity: str | None = None
    rules: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Example:
    """A curated status code the classifier learns from."""

    family: str
    code: int
    message: str
    level: int
    explanation: str = ""
    recommended_action: str = ""
    category: str | None = None
    severity: str | None = None

    @property
    def key(self) -> tuple[str, int]:
        return (self.family, self.code)

    @classmethod
    def from_mapping(cls, data) -> Example:
        return cls(
            family=Family.normalise(data.get("family")) or Family.NETBACKUP,
            code=int(data["code"]),
            message=data.get("message") or "",
            level=int(data["level"]),
            explanation=data.get("explanation") or "",
            recommended_action=data.get("recommended_action") or "",
            category=data.get("category") or None,
            severity=data.get("severity") or None,
        )


# --------------------------------------------------------------------------------------
# Tokens

_WORD = re.compile(r"[a-z0-9]+")
_APOSTROPHES = str.maketrans("", "", "'’`")


def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Only for similarity: these words say nothing about the fault. Negations and
# "cannot"/"unable" stay, and phrase rules see every word anyway.
STOP_WORDS = _word_set(
    """
    a an the of to in on at for from by with as is are was were be been being it its this that these
    those and or if then than there their they them he she we you your our which who whom what when
    where while also any all some each other such into onto over under about after before during
    may might can could should would will shall must do does did done has have had having
    more most only own same so too very just s t following see information see_also use used using
    netbackup status code occurs occurred error message
    """
)

_VOWELS = set("aeiouy")


def _has_vowel(text: str) -> bool:
    return any(ch in _VOWELS for ch in text)


def stem(word: str) -> str:
    """A small, predictable suffix stripper: enough to join expire/expired/expiring/expiration."""
    if len(word) <= 3 or word.isdigit():
        return word
    w = word
    if w.endswith("ies") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith("sses"):
        w = w[:-2]
    elif w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    for suffix in ("ing", "ed"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3 and _has_vowel(w[: -len(suffix)]):
            w = w[: -len(suffix)]
            # stopped → stop, relabelled → relabel, but install/called stay whole
            doubled = len(w) > 3 and w[-1] == w[-2] and w[-1] not in "lsz"
            if doubled or (w.endswith("ell") and len(w) > 5):
                w = w[:-1]
            break
    for suffix in ("ization", "ation", "ition", "ment", "ion", "ate"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 4:
            w = w[: -len(suffix)]
            break
    if w.endswith("e") and len(w) > 3:
        w = w[:-1]
    return w


# --------------------------------------------------------------------------------------
# Rules


@dataclass(frozen=True)
class Rule:
    """Words that point to a level.

    `terms` lists alternatives separated by "|"; an alternative is one or more terms joined by "+",
    all of which must appear in the same field. A term is a word or a phrase (consecutive words,
    "timed out"); words are compared after stemming, and a trailing * matches any word that starts
    so ("robot*" finds robotic, robots). `unless` alternatives cancel the rule in that field."""

    name: str
    level: int
    weight: float
    terms: str
    category: str | None = None
    unless: str = ""
    fields: tuple[str, ...] = ("message", "explanation", "recommended_action")


# Message words decide; the explanation and the recommended action add context, and the action
# often mentions fixes for neighbouring problems, so it counts least.
FIELD_WEIGHTS = {"message": 1.0, "explanation": 0.45, "recommended_action": 0.25}
MESSAGE = ("message",)

C = Category
RULES: tuple[Rule, ...] = (
    # ---- level 0: success, intended operator actions, nothing to do
    Rule(
        gettext_noop("success"),
        0,
        5.0,
        "success* | completed successfully | successfully completed | request completed | operation completed"
        " | is complete | has completed | has been completed | done | no error",
        C.INFORMATIONAL,
        unless="not success* | unsuccessful | no+success* | fail* | partial* | but | however | incomplete"
        " | not complete* | not done",
        fields=MESSAGE,
    ),
    Rule(
        gettext_noop("intended operator action"),
        0,
        5.0,
        "cancel*+by | cancel*+user* | cancel*+operator* | cancel*+administrator* | cancel*+request*"
        " | by administrator | by the administrator | by an administrator | by operator | by the operator"
        " | by the user | by user | administrator request | operator request | user request | suspend*"
        " | operator denied | denied by the operator | terminated by | stopped by user",
        C.INFORMATIONAL,
        unless="signal | not cancel* | cannot cancel* | unable to cancel* | fail* | error* | because",
        fields=MESSAGE,
    ),
    Rule(
        gettext_noop("nothing to do"),
        0,
        4.0,
        "nothing to | nothing was | found no | due to run | no entries | there are no | has been validated"
        " | corrected automatically | automatically corrected | repaired automatically | sideband"
        " | daemon*+already | service*+already running | informational | for information only",
        C.INFORMATIONAL,
        unless="not available | unavailable | available | fail* | error* | cannot | unable",
        fields=MESSAGE,
    ),
    Rule(
        gettext_noop("documented as harmless"),
        0,
        3.0,
        "no action needed | no action is needed | no action required | no action is required | nothing needs"
        " | nothing to fix | notice only | for information only | purely informational | informational only",
        C.INFORMATIONAL,
        fields=("explanation", "recommended_action"),
    ),
    # ---- level 1: transient causes; a retry is safe
    Rule(
        gettext_noop("transient network"),
        1,
        2.5,
        "socket* | timed out | time out | timeout* | connection reset | reset by peer | connection refused"
        " | refused | connection closed | connection lost | connection was lost | lost connection"
        " | connection broken | broken pipe | unreachable | network connection | network error | network failure"
        " | network problem | network is | network read | network write | network protocol | cannot connect"
        " | cant connect | can not connect | could not connect | unable to connect | failed to connect"
        " | fail to connect | connect failed | no connection | not connected | cannot communicate"
        " | unable to communicate | failed to communicate | communicat* | no response | not responding"
        " | did not respond | interrupt* | econnreset | etimedout",
        C.NETWORK,
    ),
    Rule(
        gettext_noop("transient process or messaging glitch"),
        1,
        2.5,
        "signal | fork* | child process | process id | getpid | memory | ipc | message queue | pipe | handshak*"
        " | protocol error | unexpected message | unexpected data | premature eof | unexpected eof | end point"
        " | corba | offline | did not start | failed to start | failed sending | failed receiving | error sending"
        " | error receiving | transient | momentar*",
        C.OTHER,
    ),
    Rule(
        gettext_noop("client busy or briefly unavailable"),
        1,
        2.5,
        "busy | temporarily | temporary | try again later | retry later | too many connections | too many processes"
        " | in progress | in use | allocated for use | currently unavailable | not currently available",
        C.CLIENT,
    ),
    Rule(
        gettext_noop("backup window closed"),
        1,
        3.0,
        "backup window | window closed | window has closed | outside the window | window+clos*",
        C.POLICY_CONFIG,
    ),
    Rule(gettext_noop("snapshot failed"), 1, 2.0, "snapshot*", C.VIRTUALIZATION, fields=MESSAGE),
    Rule(
        gettext_noop("resource briefly busy or locked"),
        1,
        2.0,
        "lock* | resource* busy | waiting for | wait for | queued | deferred | not attempted",
        unless="lock file+delet* | locked out",
    ),
    Rule(
        gettext_noop("safe retry"),
        1,
        1.0,
        "retry* | try again | rerun | re-run | resubmit*",
        fields=("explanation", "recommended_action"),
    ),
    # ---- level 2: configuration, shared resources, credentials, permissions, agents, services
    Rule(
        gettext_noop("configuration"),
        2,
        2.5,
        "configur* | misconfigur* | invalid | not valid | not defined | undefined | does not exist | do not exist"
        " | not exist | no such | incorrect | unknown | unrecognized | unrecognised | not supported | unsupported"
        " | not allowed | incompatib* | mismatch* | syntax | usage | argument* | parameter* | bp.conf | vm.conf"
        " | registry | policy | policies | missing | not specified | must be specified | already exist* | duplicate"
        " | not unique | disabled | cannot find | could not find | not found",
        C.POLICY_CONFIG,
    ),
    Rule(
        gettext_noop("configuration words"),
        2,
        1.0,
        "setting* | option* | schedule* | version | install* | selection* | attribute* | file list | exclude list",
        C.POLICY_CONFIG,
    ),
    Rule(
        gettext_noop("shared storage or media exhausted"),
        2,
        3.0,
        "storage unit* | disk pool* | disk volume* | volume pool* | scratch | full | no space | out of space"
        " | insufficient space | not enough space | space+disk | capacity | quota | high water mark | none available"
        " | no media | media+not available | media+unavailable | allocat*+media | allocat*+storage"
        " | allocat*+volume | no more | exhausted | exceed* | maximum | not enough | insufficient | ran out",
        C.DISK_STORAGE,
    ),
    Rule(gettext_noop("licence"), 2, 3.0, "licen*", C.POLICY_CONFIG),
    Rule(
        gettext_noop("credentials or certificates"),
        2,
        3.0,
        "certificate* | credential* | password* | authenticat* | authoriz* | authoris* | login | logon | log on as"
        " | ssl | tls | revoked | revocation | crl | token* | trust* | private key | public key | security | secure"
        " | nbac | encrypt*",
        C.SECURITY_CERTIFICATES,
    ),
    Rule(
        gettext_noop("name resolution"),
        2,
        3.0,
        "host name | hostname* | resolv* | dns | unknown host | gethostbyname | name lookup | host lookup"
        " | ip address | reverse lookup | hosts file",
        C.NETWORK,
    ),
    Rule(
        gettext_noop("permissions"),
        2,
        3.0,
        "permission* | access denied | denied | not permitted | not authorized | unauthorized | privilege*"
        " | read-only | read only | access+not allowed | not owner | administrator rights | root user",
        C.SECURITY_CERTIFICATES,
        unless="operator denied | denied by the operator",
    ),
    Rule(
        gettext_noop("database agent"),
        2,
        2.5,
        "oracle | rman | sql server | mssql | sql | db2 | sybase | exchange server | microsoft exchange | sharepoint"
        " | sap | informix | lotus | mysql | postgres* | database agent | script* | dbbackup",
        C.DATABASE_AGENT,
        unless="catalog database | emm database | nbdb | relational database",
    ),
    Rule(
        gettext_noop("service must be restarted"),
        2,
        2.5,
        "restart* | service*+not running | daemon*+not running | not running | is not active | not active"
        " | not started | reboot*",
        C.OTHER,
        unless="restart the job",
    ),
    Rule(
        gettext_noop("virtualization platform"),
        2,
        1.5,
        "vmware | vcenter | virtualcenter | vsphere | hyper-v | virtual machine* | esx* | datastore* | vm",
        C.VIRTUALIZATION,
    ),
    Rule(gettext_noop("cloud storage"), 2, 1.5, "cloud | s3 | bucket* | azure | aws | object storage", C.CLOUD),
    Rule(
        gettext_noop("kubernetes"),
        2,
        1.5,
        "kubernetes | k8s | namespace* | pod | pods | persistent volume",
        C.KUBERNETES,
    ),
    Rule(gettext_noop("deduplication"), 2, 1.0, "msdp | dedup* | puredisk | spoold | spad", C.DEDUPLICATION),
    Rule(
        gettext_noop("replication and lifecycle"),
        2,
        1.0,
        "slp | lifecycle | replicat* | duplicat* | auto image replication",
        C.REPLICATION_SLP,
    ),
    # ---- level 3: hardware, damaged media, corruption, vendor support
    Rule(
        gettext_noop("hardware"),
        3,
        3.0,
        "drive* | robot* | tape* | library | libraries | scsi | hba | firmware | fibre | fiber channel | hardware"
        " | changer | acsls | tld | tl8 | tl4 | tlh | stacker | picker | gripper | ioctl"
        " | device driver | device path | control path | device*+not respond* | no device respond*"
        " | discover* device*",
        C.TAPE_HARDWARE,
        unless="drive letter | c drive | disk drive | network drive | mapped drive | shared drive",
    ),
    Rule(
        gettext_noop("hardware fault"),
        3,
        4.0,
        "hardware error | hardware failure | hardware fault | firmware*+mismatch* | firmware*+incompatib*"
        " | not ready | inoperable | reservation conflict | sense key | sense data | path*+down | offline domain"
        " | misplaced | door is open | door open",
        C.TAPE_HARDWARE,
    ),
    Rule(
        gettext_noop("physical media handling"),
        3,
        2.5,
        "eject* | inject* | media access port | slot* | door | cabinet | cartridge* | barcode* | bar code | mount*"
        " | unmount* | dismount* | write protect* | write-protect* | cleaning",
        C.TAPE_HARDWARE,
    ),
    Rule(
        gettext_noop("media read, write or position error"),
        3,
        4.0,
        "write error | read error | open error | close error | position* error | cannot position | positioning"
        " | i o error | io error | input output error | unrecoverable | damaged | bad media | media error"
        " | media failure | medium error | tape mark | end of media | end of tape | blank media | unmountable"
        " | media header | backup header | crc | parity",
        C.MEDIA,
    ),
    Rule(
        gettext_noop("corruption"),
        3,
        4.0,
        "corrupt* | inconsisten* | integrity | checksum* | invalid archive | invalid image format | bad image"
        " | erroneous | conflicting entr* | out of sequence | not in tar format",
        C.CATALOG,
        unless="corrected automatically | automatically corrected | repaired automatically",
    ),
    Rule(
        gettext_noop("internal fault, contact vendor support"),
        3,
        4.0,
        "contact support | contact technical support | contact veritas | veritas support | technical support"
        " | customer support | support representative | internal error | internal software error"
        " | unexpected internal | logic error | database error | database system error | manager system error"
        " | database access failure | exceptional condition | fatal | assertion | panic",
        C.OTHER,
    ),
)

# "Clearly about configuration of that hardware": with one of these, hardware words mean level 2.
HARDWARE_CONFIG_TERMS = (
    "configur* | misconfigur* | not configured | not defined | invalid | not valid | does not exist | not exist"
    " | no such | already exist* | duplicate | not unique | unknown | incorrect | mismatch* | not supported"
    " | unsupported | cannot auto | tpconfig | device host | drive index | drive name | drive type | drive number"
    " | robot number | robot type | robotic type | device type | serial number | usage | syntax | argument*"
    " | parameter* | option* | in use by | already in use | licen* | permission* | denied | maximum mounts"
    " | incomplete | not robotic"
)

# "Deletes, expires, relabels or overwrites data": never level 1, whatever else is said.
DESTRUCTIVE_TERMS = (
    "delet* | expir* | relabel* | re-label* | labelin* | labellin* | label the | label media | label a | overwrit*"
    " | overwritten | eras* | purg* | prun* | destroy* | wipe* | reformat* | format* the | format* media"
    " | format* tape | format* disk | format* volume | decommission* | remov* image* | remov* backup* | remov* data"
    " | remov* media | remov* the image* | remov* the backup*"
)
# "expired" next to a time limit or a secret is not about data ("the certificate has expired").
NOT_DATA_EXPIRY = _word_set(
    "time timer timers timeout timeouts period limit interval session sessions certificate certificates cert "
    "certs password passwords credential credentials token tokens licence license licences licenses key keys "
    "account accounts lease trial subscription ca crl"
)
DATA_NOUNS = _word_set(
    "image images backup backups data media volume volumes fragment fragments copy copies catalog tape tapes "
    "file files snapshot snapshots"
)
EXPIRY_WINDOW = 3
HARDWARE_RULE = "hardware"
# Level-0 rules that state what happened ("completed successfully", "cancelled by the operator").
STATEMENTS = frozenset({"success", "intended operator action"})
HARDWARE_FAULTS = frozenset(
    {"hardware fault", "media read, write or position error", "corruption", "internal fault, contact vendor support"}
)

# Robot and device families are about tape hardware unless the words say otherwise. Only the
# category leans this way: how serious a family's codes are is learned from curated examples
# (the family is a term of the similarity vectors).
FAMILY_CATEGORY = {
    Family.ROBOTIC_ERROR: C.TAPE_HARDWARE,
    Family.ROBOTIC: C.TAPE_HARDWARE,
    Family.DEVICE_CONFIG: C.TAPE_HARDWARE,
    Family.DEVICE_MANAGEMENT: C.TAPE_HARDWARE,
    Family.MEDIA_MANAGER: C.MEDIA,
}

# Plain values: enum attribute access costs more than the rest of a comparison in the hot path.
FAMILIES = frozenset(Family.values)
CATEGORIES = frozenset(Category.values)
SEVERITIES = frozenset(Severity.values)
INFORMATIONAL, AUTOMATIC, APPROVAL, ONSITE = (int(level) for level in Level)
DEFAULT_SEVERITY = {
    0: Severity.INFO.value,
    1: Severity.WARNING.value,
    2: Severity.ERROR.value,
    3: Severity.CRITICAL.value,
}

# Blending knobs: rules are trusted by how much they found (saturating at RULE_SATURATION points),
# neighbours by how similar the closest one is (saturating at KNN_SATURATION cosine).
RULE_TRUST = 1.0
RULE_SATURATION = 4.0
KNN_TRUST = 1.0
KNN_SATURATION = 0.55
K_NEIGHBOURS = 5
DEFAULT_CONFIDENCE = 0.3
MAX_QUERY_TERMS = 16
# A term in more than this share of the examples (and at least this many) is "common".
COMMON_TERM_SHARE = 0.02
COMMON_TERM_MIN_POSTINGS = 12
RERANK_CANDIDATES = 20
# How far level 1 must lead level 2 (in blended probability) to be chosen.
CAUTION_MARGIN = 0.15
# Level 1 also needs a transient rule found in the message or explanation, or a curated level-1 code this similar.
EXPLICIT_EVIDENCE = 1.0
CLOSE_NEIGHBOUR = 0.5
# Level 0 (closed unseen) without a success/intent rule needs a curated level-0 code at least this similar.
CLOSE_INFORMATIONAL = 0.6
MIN_SIMILARITY = 0.12
# Curators' categories are finer than the rules' (a timeout may be "client" or "network"), so a
# similar curated code outweighs the rule words.
CATEGORY_NEIGHBOUR = 12.0
# Similarity weights of the fields: message 2, explanation 1, recommended action 1/3.
MESSAGE_TERM_REPEAT = 6
EXPLANATION_TERM_REPEAT = 3
FAMILY_TOKEN_WEIGHT = 0.6
FAMILY_TERM = "§"


class _Matcher:
    """Compiled form of word terms. Every word of every term becomes a key that the token cache
    attaches to matching tokens; phrases are sequences of such keys on consecutive tokens."""

    def __init__(self):
        self.exact: set[str] = set()  # stems
        self.prefixes: list[tuple[str, str]] = []  # (raw prefix, key)
        # (first word key, second word key) → [(word keys, key, length)]
        self.phrases: dict[tuple[str, str], list[tuple[tuple[str, ...], str, int]]] = {}
        self.phrase_starts: set[str] = set()
        self.displays: dict[str, str] = {}

    def _word(self, word: str) -> str:
        if word.endswith("*"):
            raw = word[:-1]
            key = raw + "*"
            if (raw, key) not in self.prefixes:
                self.prefixes.append((raw, key))
            return key
        key = stem(word)
        self.exact.add(key)
        return key

    def atom(self, text: str) -> str:
        """Register one word or phrase; return its key."""
        display = " ".join(text.lower().split())
        words = re.findall(r"[a-z0-9]+\*?", display.translate(_APOSTROPHES))
        if not words:
            raise ValueError(f"empty term {text!r}")
        keys = tuple(self._word(w) for w in words)
        if len(keys) == 1:
            key = keys[0]
        else:
            key = " ".join(keys)
            if key not in self.displays:
                self.phrases.setdefault(keys[:2], []).append((keys, key, len(keys)))
                self.phrase_starts.add(keys[0])
        self.displays.setdefault(key, display.replace("*", ""))
        return key

    def alternative(self, text: str) -> tuple[str, ...]:
        return tuple(self.atom(part) for part in text.split("+"))


class _Terms:
    """Compiled alternatives. Single words are matched by one set intersection; conjunctions
    ("snapshot + start") only when their first word is there."""

    __slots__ = ("alternatives", "singles", "conjunctions", "order")

    def __init__(self, alternatives: Iterable[tuple[str, ...]]):
        self.alternatives = tuple(alternatives)
        self.singles = frozenset(alt[0] for alt in self.alternatives if len(alt) == 1)
        self.conjunctions: dict[str, list[tuple[str, ...]]] = {}
        for alt in self.alternatives:
            if len(alt) > 1:
                self.conjunctions.setdefault(alt[0], []).append(alt)
        self.order = {alt: i for i, alt in reversed(list(enumerate(self.alternatives)))}

    def atoms(self) -> set[str]:
        return {atom for alt in self.alternatives for atom in alt}

    def matches(self, present: set[str]) -> list[tuple[str, ...]]:
        found = [(atom,) for atom in self.singles.intersection(present)]
        if self.conjunctions:
            for first in present.intersection(self.conjunctions):
                found.extend(alt for alt in self.conjunctions[first] if all(a in present for a in alt))
        # Sets have no stable order; the reason must be identical for identical input.
        if len(found) > 1:
            found.sort(key=self.order.__getitem__)
        return found

    def first(self, present: set[str]) -> tuple[str, ...] | None:
        found = self.matches(present)
        return found[0] if found else None


@dataclass(frozen=True)
class _CompiledRule:
    rule: Rule
    terms: _Terms
    unless: _Terms


@dataclass
class _Field:
    raws: list[str]
    terms: list[str]  # stems that count for similarity (no stop words)
    present: set[str]  # rule keys: words, prefixes and phrases found


_EMPTY_FIELD = _Field([], [], set())


# Fields of a cached token: (stem, rule keys, keys that start a phrase, similarity term or None).
_STARTS = itemgetter(2)


class _Lexicon:
    """Rules compiled once per process; the per-token cache is shared by all classifiers."""

    def __init__(self, rules: Iterable[Rule]):
        self.matcher = _Matcher()
        self.alternative_displays: dict[tuple[str, ...], str] = {}
        self.rules: list[_CompiledRule] = []
        self.by_atom: dict[str, list[int]] = {}
        for rule in rules:
            terms = self._terms(rule.terms)
            index = len(self.rules)
            self.rules.append(_CompiledRule(rule, terms, self._terms(rule.unless)))
            for atom in sorted(terms.atoms()):
                self.by_atom.setdefault(atom, []).append(index)
        self.rule_atoms = frozenset(self.by_atom)
        self.hardware = next(r for r in self.rules if r.rule.name == HARDWARE_RULE)
        self.hardware_config = self._terms(HARDWARE_CONFIG_TERMS)
        self.destructive = self._terms(DESTRUCTIVE_TERMS)
        self.expiry_key = self.matcher.atom("expir*")
        self._tokens: dict[str, tuple[str, tuple[str, ...]]] = {}
        self._lock = threading.Lock()

    def display(self, alternative: tuple[str, ...]) -> str:
        """How an alternative reads in a reason ("snapshot + start")."""
        return self.alternative_displays[alternative]

    def _terms(self, text: str) -> _Terms:
        terms = _Terms(self.matcher.alternative(t) for t in text.split("|") if t.strip())
        for alternative in terms.alternatives:
            self.alternative_displays[alternative] = " + ".join(self.matcher.displays[a] for a in alternative)
        return terms

    def token(self, raw: str) -> tuple:
        """(stem, rule keys, keys that start a phrase, similarity term or None) of one word; cached."""
        info = self._tokens.get(raw)
        if info is None:
            s = stem(raw)
            keys = [s] if s in self.matcher.exact else []
            keys.extend(key for prefix, key in self.matcher.prefixes if raw.startswith(prefix))
            starts = tuple(key for key in keys if key in self.matcher.phrase_starts)
            term = s if s not in STOP_WORDS and raw not in STOP_WORDS and len(s) > 1 else None
            info = (s, tuple(keys), starts, term)
            # A vendor guide has a few thousand distinct words; the bound keeps odd input from growing memory.
            if len(self._tokens) < 200_000:
                with self._lock:
                    self._tokens[raw] = info
        return info

    def analyse(self, text: str) -> _Field:
        if not text:
            return _EMPTY_FIELD
        text = text.lower()
        if "'" in text or "’" in text:
            text = text.replace("'", "").replace("’", "")
        raws = _WORD.findall(text)
        get = self._tokens.get
        infos = [get(raw) or self.token(raw) for raw in raws]
        present = set().union(*[info[1] for info in infos if info[1]])
        n = len(infos)
        phrases = self.matcher.phrases
        for i in compress(range(n - 1), map(_STARTS, infos)):
            following = infos[i + 1][1]
            for first in infos[i][2]:
                for second in following:
                    for phrase, key, size in phrases.get((first, second), ()):
                        if size == 2 or (i + size <= n and all(phrase[j] in infos[i + j][1] for j in range(2, size))):
                            present.add(key)
        return _Field(raws, [info[3] for info in infos if info[3]], present)


# --------------------------------------------------------------------------------------
# Words of the reason. Translated once per language: gettext per call would cost more than the rules.

MESSAGES = {
    "default": gettext_noop("No rule matched and no curated example is similar; an engineer decides → 2"),
    "hardware_config": gettext_noop(
        "Hardware guard: hardware named (%(words)s) and the message is about its configuration (%(config)s) → 2"
    ),
    "hardware": gettext_noop("Hardware guard: hardware named (%(words)s) → 3"),
    "destructive": gettext_noop(
        "Destructive guard: never level 1, it deletes, expires, relabels or overwrites data (%(words)s) → 2"
    ),
    "caution": gettext_noop(
        "Close call between automatic (%(automatic)s) and level %(level)s (%(rival)s): the careful level wins"
        " → %(level)s"
    ),
    "fault_mentioned": gettext_noop(
        "Automatic only if a retry cannot make things worse, and the text also points at %(rules)s → 2"
    ),
    "no_evidence": gettext_noop(
        "Automatic needs explicit transient words or a close curated example, and neither is there → 2"
    ),
    "not_informational": gettext_noop(
        "Informational needs words of success, intent or nothing to do, or a close curated example → %(level)s"
    ),
    "statement": gettext_noop("The message reports success or an intended action → 0"),
    "rule": gettext_noop("Rule '%(rule)s' (%(words)s) → %(level)s"),
    "nearest": gettext_noop("nearest curated: %(examples)s"),
}
_texts_by_language: dict[str | None, dict] = {}


def _texts() -> dict:
    language = get_language()
    texts = _texts_by_language.get(language)
    if texts is None:
        texts = {key: gettext(text) for key, text in MESSAGES.items()}
        # Rule names under their own keys: "hardware" is both a rule and a message.
        texts.update({("rule", rule.name): gettext(rule.name) for rule in RULES})
        _texts_by_language[language] = texts
    return texts


# --------------------------------------------------------------------------------------
# Classifier


@dataclass
class _Hit:
    rule: Rule
    score: float
    evidence: list[str]
    in_message: bool = False


def _tf(weight: float) -> float:
    """Sublinear term frequency: a word said twice is not twice as telling."""
    return 1.0 + math.log(weight) if weight >= 1 else weight


def _tf_of_count(count: int) -> float:
    return _tf(count / EXPLANATION_TERM_REPEAT)


_TF_TABLE_SIZE = 64
_TF = [_tf_of_count(count) for count in range(_TF_TABLE_SIZE)]


class Classifier:
    """Classifies status codes; learns from `examples` (curated codes)."""

    def __init__(self, examples: Iterable[Example | dict] = (), *, rules: Iterable[Rule] | None = None):
        self.lexicon = _LEXICON if rules is None else _Lexicon(rules)
        self.examples: list[Example] = [e if isinstance(e, Example) else Example.from_mapping(e) for e in examples]
        self._build_index()

    # ---- similarity index

    @staticmethod
    def _term_counts(analysed: dict[str, _Field]) -> Counter:
        """Similarity terms with their weighted counts (message ×6, explanation ×3, action ×1):
        whole numbers, so Counter's C code does the counting."""
        return Counter(
            analysed["message"].terms * MESSAGE_TERM_REPEAT
            + analysed["explanation"].terms * EXPLANATION_TERM_REPEAT
            + analysed["recommended_action"].terms
        )

    def _analyse(self, message: str, explanation: str, recommended_action: str) -> dict[str, _Field]:
        analyse = self.lexicon.analyse
        return {
            "message": analyse(message),
            "explanation": analyse(explanation),
            "recommended_action": analyse(recommended_action),
        }

    def _build_index(self):
        docs = []
        df: dict[str, int] = {}
        for example in self.examples:
            analysed = self._analyse(example.message, example.explanation, example.recommended_action)
            terms = {term: _tf_of_count(count) for term, count in self._term_counts(analysed).items()}
            # The family is a term too: codes of one family resemble each other a little.
            terms[FAMILY_TERM + example.family] = FAMILY_TOKEN_WEIGHT
            docs.append(terms)
            for term in terms:
                df[term] = df.get(term, 0) + 1
        n = len(docs)
        self.idf = {term: math.log((1 + n) / (1 + count)) + 1.0 for term, count in df.items()}
        self._unseen_idf = math.log(1 + n) + 1.0
        self.postings: dict[str, list[tuple[int, float]]] = {}
        for doc_id, terms in enumerate(docs):
            vector = {t: w * self.idf[t] for t, w in terms.items()}
            norm = math.sqrt(sum(v * v for v in vector.values())) or 1.0
            for term, value in vector.items():
                self.postings.setdefault(term, []).append((doc_id, value / norm))
        limit = max(COMMON_TERM_MIN_POSTINGS, int(n * COMMON_TERM_SHARE))
        self.term_weights = {term: dict(entries) for term, entries in self.postings.items()}
        self.common_terms = frozenset(term for term, entries in self.postings.items() if len(entries) > limit)
        self.positions = {example.key: i for i, example in enumerate(self.examples)}
        # What the reason says about an example, prepared once.
        self.labels = [f"{e.family} {e.code} '{_short(e.message)}'" for e in self.examples]

    def _neighbours(self, family: str, analysed: dict[str, _Field], exclude) -> list[tuple[float, int]]:
        """The nearest curated examples as (cosine, example index), best first."""
        if not self.examples:
            return []
        idf_get = self.idf.get
        unseen = self._unseen_idf
        counts = self._term_counts(analysed)
        if max(counts.values(), default=0) < _TF_TABLE_SIZE:
            tfs = list(map(_TF.__getitem__, counts.values()))
        else:
            tfs = list(map(_tf_of_count, counts.values()))
        # A word no example has cannot make anything similar, but it does make the text less like them.
        values = list(map(mul, tfs, map(idf_get, counts, repeat(unseen))))
        norm_sq = sum(map(mul, values, values))
        vector = list(compress(zip(values, counts, strict=True), map(self.idf.__contains__, counts)))
        if not vector:
            return []
        family_term = FAMILY_TERM + family
        family_q = FAMILY_TOKEN_WEIGHT * (idf_get(family_term) or unseen)
        norm_sq += family_q * family_q
        # The strongest terms decide the nearest examples; the long tail of common words only nudges
        # every score a little and costs most of the time. The norm keeps them all.
        vector.sort(reverse=True)
        strongest = vector[:MAX_QUERY_TERMS]
        # Rare terms find the candidates; common terms ("client", "failed", the family) only re-rank
        # the best of them, so a query costs a few hundred steps however many examples share a word.
        postings = self.postings
        common_terms = self.common_terms
        seeds = [(q, term) for q, term in strongest if term not in common_terms]
        if seeds:
            common = [(q, term) for q, term in strongest if term in common_terms]
        else:
            seeds, common = strongest, []  # only common words: all of them find the candidates
        if family_term in postings:
            common.append((family_q, family_term))
        scores: dict[int, float] = {}
        get = scores.get
        for q, term in seeds:
            for doc_id, d in postings[term]:
                scores[doc_id] = get(doc_id, 0.0) + q * d
        # sorted() is stable: equal scores keep the examples' order, so the same input always gets
        # the same neighbours.
        shortlist = [doc_id for doc_id, _ in sorted(scores.items(), key=_SECOND, reverse=True)[:RERANK_CANDIDATES]]
        if common and shortlist:
            candidates = set(shortlist)
            weights_by_term = self.term_weights
            for q, term in common:
                weights = weights_by_term[term]
                # A dict view & a set walks the smaller side: the shortlist, not the term's examples.
                for doc_id in weights.keys() & candidates:
                    scores[doc_id] += q * weights[doc_id]
        norm = math.sqrt(norm_sq)
        threshold = MIN_SIMILARITY * norm
        excluded = {self.positions[k] for k in exclude if k in self.positions} if exclude else ()
        best = sorted(shortlist, key=get, reverse=True)[: K_NEIGHBOURS + len(excluded)]
        return [
            (min(scores[doc_id] / norm, 1.0), doc_id)
            for doc_id in best
            if scores[doc_id] >= threshold and doc_id not in excluded
        ][:K_NEIGHBOURS]

    # ---- rules

    def _rule_hits(self, analysed: dict[str, _Field]) -> dict[str, _Hit]:
        lexicon = self.lexicon
        displays = lexicon.alternative_displays
        hits: dict[str, _Hit] = {}
        for field_name, fld in analysed.items():
            present = fld.present
            if not present:
                continue
            field_weight = FIELD_WEIGHTS[field_name]
            candidates: set[int] = set()
            for atom in lexicon.rule_atoms.intersection(present):
                candidates.update(lexicon.by_atom[atom])
            for index in sorted(candidates):
                compiled = lexicon.rules[index]
                rule = compiled.rule
                if field_name not in rule.fields:
                    continue
                if compiled.unless.alternatives and compiled.unless.first(present):
                    continue
                matched = compiled.terms.matches(present)
                if not matched:
                    continue
                # A rule counts once (its best field); more distinct words add a little, with a cap.
                score = rule.weight * field_weight * min(1.0 + 0.15 * (len(matched) - 1), 1.45)
                hit = hits.get(rule.name)
                if hit is None:
                    hit = hits[rule.name] = _Hit(rule, score, [], field_name == "message")
                else:
                    hit.score = max(hit.score, score)
                    hit.in_message = hit.in_message or field_name == "message"
                for alt in matched:
                    word = displays[alt]
                    if word not in hit.evidence:
                        hit.evidence.append(word)
        return hits

    def _destructive_words(self, analysed: dict[str, _Field]) -> list[str]:
        lexicon = self.lexicon
        words: list[str] = []
        for fld in analysed.values():
            if not fld.present:
                continue
            for alternative in lexicon.destructive.matches(fld.present):
                if alternative == (lexicon.expiry_key,) and not _expires_data(fld, lexicon):
                    continue
                word = lexicon.display(alternative)
                if word not in words:
                    words.append(word)
        return words

    # ---- the decision

    def classify(
        self,
        *,
        family,
        code,
        message,
        explanation="",
        recommended_action="",
        exclude: Iterable[tuple[str, int]] = (),
    ) -> Classification:
        """Level 0-3 with confidence and reason. `exclude`: (family, code) keys of curated examples to
        ignore, for leave-one-out evaluation."""
        if family not in FAMILIES:
            family = Family.normalise(family) or str(family or "")
        texts = _texts()
        analysed = self._analyse(message or "", explanation or "", recommended_action or "")
        hits = self._rule_hits(analysed)
        lexicon = self.lexicon

        rule_scores = [0.0, 0.0, 0.0, 0.0]
        for hit in hits.values():
            rule_scores[hit.rule.level] += hit.score

        found = self._neighbours(family, analysed, exclude)
        examples = self.examples
        neighbours = [(similarity, examples[index]) for similarity, index in found]
        knn_votes = [0.0, 0.0, 0.0, 0.0]
        for similarity, example in neighbours:
            knn_votes[example.level] += similarity * similarity
        top_similarity = neighbours[0][0] if neighbours else 0.0

        rule_total = sum(rule_scores)
        knn_total = sum(knn_votes)
        rule_p = [s / rule_total for s in rule_scores] if rule_total else [0.0] * 4
        knn_p = [v / knn_total for v in knn_votes] if knn_total else [0.0] * 4
        # Trust rules by how much evidence they found, neighbours by how close the closest one is.
        rule_trust = RULE_TRUST * min(rule_total / RULE_SATURATION, 1.0)
        knn_trust = KNN_TRUST * min(1.0, top_similarity / KNN_SATURATION) ** 1.5 if knn_total else 0.0
        combined = [rule_trust * rule_p[i] + knn_trust * knn_p[i] for i in range(4)]
        total = sum(combined)

        ranked = sorted(hits.values(), key=_hit_order)
        rules_fired = [h.rule.name for h in ranked]
        notes: list[str] = []
        if total <= 0:
            level = APPROVAL
            probabilities = [0.0, 0.0, 0.0, 0.0]
            notes.append(texts["default"])
            rules_fired.append("default")
        else:
            probabilities = [c / total for c in combined]
            # Ties go to the more careful (higher) level.
            level = 3
            for candidate in (2, 1, 0):
                if probabilities[candidate] > probabilities[level] + 1e-9:
                    level = candidate
            if level == INFORMATIONAL and not _informational_evidence(hits, neighbours):
                # Closing an incident unseen needs the words for it, not only look-alike codes.
                level = max((AUTOMATIC, APPROVAL, ONSITE), key=lambda i: (probabilities[i], i))
                notes.append(texts["not_informational"] % {"level": level})
                rules_fired.append("caution")
            if level != INFORMATIONAL and _states_success(hits):
                # The first rule of thumb: a message that reports success or an operator's intent is
                # informational, whatever the hardware or the neighbours it mentions.
                notes.append(texts["statement"])
                rules_fired.append("reported success")
                level = INFORMATIONAL
            elif level == AUTOMATIC:
                level = self._caution(probabilities, hits, neighbours, notes, rules_fired, texts)

        # ---- guards, last: the policy wins over evidence
        guarded = False
        message_present = analysed["message"].present
        hardware = hits.get(HARDWARE_RULE)
        # "The robot inventory completed successfully" names hardware but reports success.
        if hardware is not None and level != INFORMATIONAL and _hardware_named(lexicon, message_present):
            config = lexicon.hardware_config.first(message_present)
            hardware_words = ", ".join(hardware.evidence[:3])
            if config and level != APPROVAL and not (level == ONSITE and set(hits) & HARDWARE_FAULTS):
                notes.append(texts["hardware_config"] % {"words": hardware_words, "config": lexicon.display(config)})
                level = APPROVAL
                guarded = True
            elif not config and level < ONSITE and (level < APPROVAL or not _level2_evidence(hits)):
                notes.append(texts["hardware"] % {"words": hardware_words})
                level = ONSITE
                guarded = True
            if guarded:
                rules_fired.append("hardware guard")

        if level == AUTOMATIC:
            words = self._destructive_words(analysed)
            if words:
                notes.append(texts["destructive"] % {"words": ", ".join(words)})
                level = APPROVAL
                guarded = True
                rules_fired.append("destructive guard")

        parts = [
            texts["rule"]
            % {
                "rule": texts.get(("rule", h.rule.name), h.rule.name),
                "words": ", ".join(h.evidence[:4]),
                "level": h.rule.level,
            }
            for h in ranked[:4]
        ]
        if found:
            labels = self.labels
            parts.append(
                texts["nearest"]
                % {
                    "examples": ", ".join(
                        f"{labels[index]} ({similarity:.2f}) → {examples[index].level}"
                        for similarity, index in found[:3]
                    )
                }
            )
        parts.extend(notes)
        reason = "; ".join(parts) + "."

        strength = min(1.0, rule_trust + knn_trust)
        confidence = _confidence(level, probabilities, rule_p, knn_p, strength, top_similarity, guarded)
        category = self._category(family, level, hits, neighbours)
        severity = self._severity(level, neighbours)
        return Classification(level, confidence, reason, category, severity, tuple(dict.fromkeys(rules_fired)))

    @staticmethod
    def _caution(probabilities, hits, neighbours, notes, rules_fired, texts) -> int:
        """A retry runs with nobody watching: level 1 must clearly lead, on explicit evidence."""
        rival = max((APPROVAL, ONSITE), key=lambda i: (probabilities[i], i))
        if probabilities[AUTOMATIC] - probabilities[rival] < CAUTION_MARGIN:
            notes.append(
                texts["caution"]
                % {
                    "automatic": f"{probabilities[AUTOMATIC]:.2f}",
                    "rival": f"{probabilities[rival]:.2f}",
                    "level": rival,
                }
            )
            rules_fired.append("caution")
            return rival
        # Naming a tape is not enough (the tape may simply be busy); a reported fault is.
        faults = [h for h in hits.values() if h.rule.name in HARDWARE_FAULTS and h.score >= EXPLICIT_EVIDENCE]
        if faults:
            notes.append(texts["fault_mentioned"] % {"rules": ", ".join(texts[("rule", h.rule.name)] for h in faults)})
            rules_fired.append("caution")
            return APPROVAL
        explicit = any(h.rule.level == AUTOMATIC and h.score >= EXPLICIT_EVIDENCE for h in hits.values())
        close = any(sim >= CLOSE_NEIGHBOUR and ex.level == AUTOMATIC for sim, ex in neighbours)
        if not (explicit or close):
            notes.append(texts["no_evidence"])
            rules_fired.append("caution")
            return APPROVAL
        return AUTOMATIC

    @staticmethod
    def _category(family, level, hits, neighbours) -> str:
        votes: dict[str, float] = {}
        for hit in hits.values():
            if hit.rule.category:
                votes[hit.rule.category] = votes.get(hit.rule.category, 0.0) + hit.score
        for similarity, example in neighbours:
            if example.category in CATEGORIES:
                votes[example.category] = (
                    votes.get(example.category, 0.0) + CATEGORY_NEIGHBOUR * similarity * similarity
                )
        leaning = FAMILY_CATEGORY.get(family)
        if leaning:
            votes[leaning] = votes.get(leaning, 0.0) + 1.0
        if level == INFORMATIONAL:
            votes[Category.INFORMATIONAL] = votes.get(Category.INFORMATIONAL, 0.0) + 2.0
        if not votes:
            return Category.OTHER.value
        return str(max(sorted(votes), key=lambda c: votes[c]))

    @staticmethod
    def _severity(level, neighbours) -> str:
        for similarity, example in neighbours:
            if similarity >= 0.5 and example.level == level and example.severity in SEVERITIES:
                return example.severity
        return DEFAULT_SEVERITY[level]


def _hit_order(hit: _Hit):
    return (-hit.score, hit.rule.name)


def _informational_evidence(hits: dict[str, _Hit], neighbours) -> bool:
    if any(h.rule.level == INFORMATIONAL for h in hits.values()):
        return True
    return any(similarity >= CLOSE_INFORMATIONAL and ex.level == INFORMATIONAL for similarity, ex in neighbours)


def _states_success(hits: dict[str, _Hit]) -> bool:
    """The message itself says success or intent, and reports no fault."""
    said = any(h.in_message and h.rule.name in STATEMENTS for h in hits.values())
    return said and not any(h.in_message and h.rule.name in HARDWARE_FAULTS for h in hits.values())


def _hardware_named(lexicon: _Lexicon, present: set[str]) -> bool:
    compiled = lexicon.hardware
    if compiled.unless.alternatives and compiled.unless.first(present):
        return False
    return compiled.terms.first(present) is not None


def _level2_evidence(hits: dict[str, _Hit]) -> bool:
    return any(hit.rule.level == APPROVAL and hit.score >= 1.0 for hit in hits.values())


def _expires_data(fld: _Field, lexicon: _Lexicon) -> bool:
    """'expiring images' is about data; 'the certificate has expired' or 'timer expired' is not."""
    key = lexicon.expiry_key
    raws = fld.raws
    for i, raw in enumerate(raws):
        if key not in lexicon.token(raw)[1]:
            continue
        window = raws[max(0, i - EXPIRY_WINDOW) : i + EXPIRY_WINDOW + 1]
        if any(w in DATA_NOUNS for w in window) or not any(w in NOT_DATA_EXPIRY for w in window):
            return True
    return False


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _confidence(level, probabilities, rule_p, knn_p, strength, top_similarity, guarded) -> float:
    """How sure: the share of the blended vote the level got, its lead, how much evidence there was
    (strength 0..1), and whether the rules and the curated neighbours agree."""
    if not any(probabilities):
        return DEFAULT_CONFIDENCE
    p_level = probabilities[level]
    runner_up = max(p for i, p in enumerate(probabilities) if i != level)
    confidence = 0.2 + 0.45 * p_level * strength + 0.15 * max(p_level - runner_up, 0.0)
    rule_top = _top(rule_p)
    knn_top = _top(knn_p)
    if rule_top is not None and knn_top is not None:
        if rule_top == knn_top == level:
            confidence += 0.15
        elif rule_top != knn_top:
            confidence -= 0.1
    if knn_top == level:
        confidence += 0.1 * top_similarity
    if guarded:
        # The guards enforce the policy: sure of the floor, less of the exact level.
        confidence = max(min(confidence, 0.85), 0.6)
    return round(max(0.05, min(confidence, 0.98)), 4)


def _top(shares) -> int | None:
    best = max(shares)
    return shares.index(best) if best > 0 else None


_LEXICON = _Lexicon(RULES)
_SECOND = itemgetter(1)

# --------------------------------------------------------------------------------------
# The shared instance


_lock = threading.Lock()
_cached: tuple[tuple, Classifier] | None = None


def _curated_rows():
    from .choices import LevelSource
    from .models import StatusCode

    return StatusCode.objects.filter(level_source=LevelSource.CURATOR)


def _curated_signature() -> tuple:
    """Changes whenever curated codes are added, removed or edited, by any path (admin, catalogue
    load, a script), so a stale classifier is never used even if nobody called reset_classifier()."""
    from django.db.models import Count, Max

    summary = _curated_rows().aggregate(count=Count("id"), last_id=Max("id"), last_change=Max("updated_at"))
    return (summary["count"], summary["last_id"], summary["last_change"])


def _curated_examples() -> list[Example]:
    rows = _curated_rows().values_list(
        "family", "code", "message", "level", "explanation", "recommended_action", "category", "severity"
    )
    return [Example(*row) for row in rows.order_by("family", "code")]


def get_classifier() -> Classifier:
    """The classifier that has learned from the curated codes now in the database.

    Built once and shared by all threads; rebuilt when the curated codes change (one small
    aggregate query per call tells) or after reset_classifier()."""
    global _cached
    signature = _curated_signature()  # outside the lock: threads do not queue behind one query
    with _lock:
        if _cached is None or _cached[0] != signature:
            _cached = (signature, Classifier(_curated_examples()))
        return _cached[1]


def reset_classifier() -> None:
    """Forget the shared classifier; the next get_classifier() builds it again."""
    global _cached
    with _lock:
        _cached = None
