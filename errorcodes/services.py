"""Public operations on the knowledge base: upsert from importers, curator decisions, re-classification.

Other apps and the admin/API call these; they never write StatusCode rows directly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.db import transaction
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from .choices import Category, Family, Level, LevelSource, Severity
from .models import StatusCode

TEXT_FIELDS = ("message", "explanation", "recommended_action")
BATCH_SIZE = 1000


@dataclass
class CodeRecord:
    """One incoming status code from any importer, before it touches the database."""

    family: str
    code: int
    message: str
    explanation: str = ""
    recommended_action: str = ""
    category: str | None = None
    severity: str | None = None
    level: int | None = None
    level_reason: str = ""
    typical_resolution_minutes: int | None = None
    source: str = ""
    location: str = ""  # "entry 12", "line 40": where it stood in the input, for messages


@dataclass
class Rejection:
    location: str
    reason: str

    def __str__(self):
        return f"{self.location}: {self.reason}" if self.location else self.reason


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    dry_run: bool = False

    def summary(self) -> str:
        text = (
            f"created {self.created}, updated {self.updated}, unchanged {self.unchanged}, rejected {len(self.rejected)}"
        )
        return f"{text} (dry run: nothing saved)" if self.dry_run else text

    def as_dict(self) -> dict:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": [{"location": r.location, "reason": r.reason} for r in self.rejected],
            "dry_run": self.dry_run,
        }


class InvalidRecord(ValueError):
    pass


def validate_record(record: CodeRecord) -> CodeRecord:
    """Normalise a record in place; raise InvalidRecord with a reason a person understands."""
    family = Family.normalise(record.family)
    if family is None:
        raise InvalidRecord(f"unknown family {record.family!r}")
    record.family = family
    code = record.code
    if isinstance(code, str):
        code = code.strip()
        if not code:
            raise InvalidRecord("no code")
        if not code.isdigit():
            raise InvalidRecord(f"code {code!r} is not a number")
        code = int(code)
    if code is None:
        raise InvalidRecord("no code")
    if isinstance(code, float):
        if not code.is_integer():
            raise InvalidRecord(f"code {code!r} is not a whole number")
        code = int(code)
    if not isinstance(code, int) or isinstance(code, bool) or code < 0:
        raise InvalidRecord(f"code {record.code!r} is not a non-negative number")
    record.code = code
    record.message = " ".join((record.message or "").split())
    if not record.message:
        raise InvalidRecord("empty message")
    if len(record.message) > StatusCode._meta.get_field("message").max_length:
        raise InvalidRecord("message longer than 500 characters")
    record.explanation = (record.explanation or "").strip()
    record.recommended_action = (record.recommended_action or "").strip()
    if record.category in ("", None):
        record.category = None
    elif record.category not in Category.values:
        raise InvalidRecord(f"unknown category {record.category!r}")
    if record.severity in ("", None):
        record.severity = None
    elif record.severity not in Severity.values:
        raise InvalidRecord(f"unknown severity {record.severity!r}")
    if record.level in ("", None):
        record.level = None
    else:
        try:
            level = int(record.level)
        except (TypeError, ValueError):
            raise InvalidRecord(f"level {record.level!r} is not 0, 1, 2 or 3") from None
        if level not in Level.values:
            raise InvalidRecord(f"level {record.level!r} is not 0, 1, 2 or 3")
        record.level = level
    return record


def _classifier():
    from .classifier import get_classifier

    return get_classifier()


def _apply_classification(obj: StatusCode, classifier, *, keep_category: bool, keep_severity: bool) -> None:
    result = classifier.classify(
        family=obj.family,
        code=obj.code,
        message=obj.message,
        explanation=obj.explanation,
        recommended_action=obj.recommended_action,
    )
    obj.level = result.level
    obj.confidence = round(result.confidence, 4)
    obj.classification_reason = result.reason
    obj.level_source = LevelSource.CLASSIFIER
    if not keep_category and result.category:
        obj.category = result.category
    if not keep_severity and result.severity:
        obj.severity = result.severity


def _merge(obj: StatusCode, record: CodeRecord, *, curator_owned: bool, given_level_source: str) -> tuple[bool, bool]:
    """Fold a record into an existing row. Returns (changed, text_changed)."""
    changed = text_changed = False
    protect_text = curator_owned or obj.curated_text
    for name in TEXT_FIELDS:
        new = getattr(record, name)
        old = getattr(obj, name)
        if not new or new == old:
            continue
        if protect_text and old:
            continue  # a curator's words are never overwritten; gaps may be filled
        setattr(obj, name, new)
        changed = text_changed = True
    if record.category and record.category != obj.category and not curator_owned:
        obj.category = record.category
        changed = True
    if record.severity and record.severity != obj.severity and not curator_owned:
        obj.severity = record.severity
        changed = True
    if record.typical_resolution_minutes is not None and obj.typical_resolution_minutes is None:
        obj.typical_resolution_minutes = record.typical_resolution_minutes
        changed = True
    if record.source and not obj.source:
        obj.source = record.source[:200]
        changed = True
    if record.level is not None and not curator_owned:
        reason = record.level_reason or f"Level given by {given_level_source} ({record.source or 'import'})."
        if (obj.level, obj.level_source, obj.classification_reason) != (record.level, given_level_source, reason):
            obj.level = record.level
            obj.level_source = given_level_source
            obj.confidence = 1.0 if given_level_source == LevelSource.CURATOR else 0.9
            obj.classification_reason = reason
            changed = True
    return changed, text_changed


def upsert_status_codes(
    records: Iterable[CodeRecord],
    *,
    dry_run: bool = False,
    level_source: str = LevelSource.IMPORT,
    user=None,
    change_reason: str = "import",
    progress: Callable[[int], None] | None = None,
    rejected: list[Rejection] | None = None,
) -> ImportResult:
    """Create or update codes by (family, code); idempotent.

    - A curator's level, category, severity and text are never overwritten (gaps are filled).
    - New codes without a given level, and classifier-owned codes whose text changed, are classified.
    - Invalid records are rejected with their location; the valid ones are saved.
    - A level given in the input is recorded with `level_source` (import, or curator for the
      shipped catalogue).
    """
    result = ImportResult(dry_run=dry_run, rejected=list(rejected or []))
    valid: dict[tuple[str, int], CodeRecord] = {}
    for record in records:
        try:
            validate_record(record)
        except InvalidRecord as exc:
            result.rejected.append(Rejection(record.location, str(exc)))
            continue
        key = (record.family, record.code)
        if key in valid:
            # A later duplicate completes the earlier one (extractions repeat a code
            # across page breaks); it does not count twice.
            first = valid[key]
            for name in (*TEXT_FIELDS, "category", "severity", "level", "level_reason", "source"):
                if not getattr(first, name) and getattr(record, name):
                    setattr(first, name, getattr(record, name))
            continue
        valid[key] = record

    classifier = _classifier()
    existing: dict[tuple[str, int], StatusCode] = {}
    families = {family for family, _code in valid}
    for family in families:
        codes = [code for fam, code in valid if fam == family]
        for start in range(0, len(codes), 5000):
            for obj in StatusCode.objects.filter(family=family, code__in=codes[start : start + 5000]):
                existing[obj.key] = obj

    to_create: list[StatusCode] = []
    to_update: list[StatusCode] = []
    done = 0
    for key, record in valid.items():
        obj = existing.get(key)
        if obj is None:
            obj = StatusCode(
                family=record.family,
                code=record.code,
                message=record.message,
                explanation=record.explanation,
                recommended_action=record.recommended_action,
                category=record.category or Category.OTHER,
                severity=record.severity or Severity.ERROR,
                typical_resolution_minutes=record.typical_resolution_minutes,
                source=record.source[:200],
            )
            if record.level is not None:
                obj.level = record.level
                obj.level_source = level_source
                obj.confidence = 1.0 if level_source == LevelSource.CURATOR else 0.9
                obj.classification_reason = (
                    record.level_reason or f"Level given by {level_source} ({record.source or 'import'})."
                )
            else:
                _apply_classification(
                    obj, classifier, keep_category=bool(record.category), keep_severity=bool(record.severity)
                )
            to_create.append(obj)
            result.created += 1
        else:
            curator_owned = obj.level_source == LevelSource.CURATOR
            changed, text_changed = _merge(obj, record, curator_owned=curator_owned, given_level_source=level_source)
            if text_changed and record.level is None and obj.level_source == LevelSource.CLASSIFIER:
                _apply_classification(
                    obj,
                    classifier,
                    keep_category=bool(record.category) or obj.category != Category.OTHER,
                    keep_severity=True,
                )
            if changed:
                to_update.append(obj)
                result.updated += 1
            else:
                result.unchanged += 1
        done += 1
        if progress and done % 500 == 0:
            progress(500)
    if progress and done % 500:
        progress(done % 500)

    if dry_run:
        return result
    update_fields = [
        *TEXT_FIELDS,
        "category",
        "severity",
        "level",
        "confidence",
        "classification_reason",
        "level_source",
        "typical_resolution_minutes",
        "source",
        "updated_at",
    ]
    with transaction.atomic():
        for start in range(0, len(to_create), BATCH_SIZE):
            bulk_create_with_history(
                to_create[start : start + BATCH_SIZE],
                StatusCode,
                batch_size=BATCH_SIZE,
                default_user=user,
                default_change_reason=change_reason,
            )
        if to_update:
            from django.utils import timezone

            now = timezone.now()
            for obj in to_update:
                obj.updated_at = now
            bulk_update_with_history(
                to_update,
                StatusCode,
                update_fields,
                batch_size=BATCH_SIZE,
                default_user=user,
                default_change_reason=change_reason,
            )
    return result


def set_level(codes: Iterable[StatusCode], *, level: int, reason: str, user) -> int:
    """A curator decides the level of some codes; it wins over import and classifier from now on."""
    reason = (reason or "").strip()
    if not reason:
        raise ValueError("A reason is required to set a level.")
    if level not in Level.values:
        raise ValueError(f"level must be 0, 1, 2 or 3, got {level!r}")
    count = 0
    with transaction.atomic():
        for obj in codes:
            obj.level = level
            obj.level_source = LevelSource.CURATOR
            obj.confidence = 1.0
            who = getattr(user, "username", None) or "curator"
            obj.classification_reason = f"Set by curator {who}: {reason}"
            obj._change_reason = reason
            obj._history_user = user
            obj.save()
            count += 1
    _forget_classifier()
    return count


def reclassify(codes: Iterable[StatusCode], *, include_imported: bool = False, user=None) -> dict[str, int]:
    """Re-run the classifier; curator levels always stay (and import levels unless asked)."""
    classifier = _classifier()
    counts = {"changed": 0, "unchanged": 0, "skipped_curator": 0, "skipped_import": 0}
    changed: list[StatusCode] = []
    for obj in codes:
        if obj.level_source == LevelSource.CURATOR:
            counts["skipped_curator"] += 1
            continue
        if obj.level_source == LevelSource.IMPORT and not include_imported:
            counts["skipped_import"] += 1
            continue
        before = (obj.level, obj.confidence, obj.classification_reason, obj.level_source)
        _apply_classification(obj, classifier, keep_category=obj.category != Category.OTHER, keep_severity=True)
        if (obj.level, obj.confidence, obj.classification_reason, obj.level_source) != before:
            changed.append(obj)
            counts["changed"] += 1
        else:
            counts["unchanged"] += 1
    if changed:
        bulk_update_with_history(
            changed,
            StatusCode,
            ["level", "confidence", "classification_reason", "level_source", "category"],
            batch_size=BATCH_SIZE,
            default_user=user,
            default_change_reason="re-classified",
        )
    return counts


def _forget_classifier():
    """Curated examples changed: the classifier rebuilds its memory on next use."""
    from .classifier import reset_classifier

    reset_classifier()


def lookup(family: str, code: int) -> StatusCode | None:
    return StatusCode.objects.filter(family=family, code=code).first()
