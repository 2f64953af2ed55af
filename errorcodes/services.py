"""Public operations on the knowledge base: upsert from importers, curator decisions, re-classification.

Other apps and the admin/API call these; they never write StatusCode rows directly.
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connections, router, transaction
from django.db.models import AutoField
from django.utils import timezone
from django.utils.translation import gettext as _

from .choices import Category, Family, Level, LevelSource, Severity
from .models import StatusCode

TEXT_FIELDS = ("message", "explanation", "recommended_action")
# What a curator's edit protects from later imports: the words and how the code is filed.
CURATED_FIELDS = (*TEXT_FIELDS, "category", "severity")
BATCH_SIZE = 1000
# Choices are looked up once per record; Django's enum `.values` rebuilds its list on every access.
_FAMILIES = frozenset(Family.values)
_CATEGORIES = frozenset(Category.values)
_SEVERITIES = frozenset(Severity.values)
_LEVELS = frozenset(Level.values)


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
    raw_family = record.family
    family = (
        str(raw_family) if isinstance(raw_family, str) and raw_family in _FAMILIES else Family.normalise(raw_family)
    )
    if family is None:
        raise InvalidRecord(_("unknown family %(family)r") % {"family": record.family})
    record.family = family
    code = record.code
    if isinstance(code, str):
        code = code.strip()
        if not code:
            raise InvalidRecord(_("no code"))
        if not (code.isascii() and code.isdigit()):
            raise InvalidRecord(_("code %(code)r is not a number") % {"code": code})
        code = int(code)
    if code is None:
        raise InvalidRecord(_("no code"))
    if isinstance(code, float):
        if not code.is_integer():
            raise InvalidRecord(_("code %(code)r is not a whole number") % {"code": code})
        code = int(code)
    if not isinstance(code, int) or isinstance(code, bool) or code < 0:
        raise InvalidRecord(_("code %(code)r is not a non-negative number") % {"code": record.code})
    record.code = code
    record.message = " ".join(str(record.message or "").split())
    if not record.message:
        raise InvalidRecord(_("empty message"))
    limit = StatusCode._meta.get_field("message").max_length
    if len(record.message) > limit:
        raise InvalidRecord(_("message longer than %(limit)d characters") % {"limit": limit})
    record.explanation = str(record.explanation or "").strip()
    record.recommended_action = str(record.recommended_action or "").strip()
    if record.category in ("", None):
        record.category = None
    elif not isinstance(record.category, str) or record.category not in _CATEGORIES:
        raise InvalidRecord(_("unknown category %(category)r") % {"category": record.category})
    if record.severity in ("", None):
        record.severity = None
    elif not isinstance(record.severity, str) or record.severity not in _SEVERITIES:
        raise InvalidRecord(_("unknown severity %(severity)r") % {"severity": record.severity})
    if record.level in ("", None):
        record.level = None
    else:
        try:
            level = int(record.level)
        except (TypeError, ValueError):
            raise InvalidRecord(_("level %(level)r is not 0, 1, 2 or 3") % {"level": record.level}) from None
        if level not in _LEVELS:
            raise InvalidRecord(_("level %(level)r is not 0, 1, 2 or 3") % {"level": record.level})
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
    if record.category and record.category != obj.category and not protect_text:
        obj.category = record.category
        changed = True
    if record.severity and record.severity != obj.severity and not protect_text:
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
            for name in (*TEXT_FIELDS, "category", "severity", "level_reason", "source"):
                if not getattr(first, name) and getattr(record, name):
                    setattr(first, name, getattr(record, name))
            if first.level is None and record.level is not None:  # level 0 is a decision, not a gap
                first.level = record.level
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
    with transaction.atomic():
        if to_create:
            _create_with_history(to_create, user=user, change_reason=change_reason)
        if to_update:
            _update_with_history(to_update, UPDATE_FIELDS, user=user, change_reason=change_reason)
    if level_source == LevelSource.CURATOR and (to_create or to_update):
        _forget_classifier()  # new curated examples: the next classification learns from them
    return result


UPDATE_FIELDS = (
    *TEXT_FIELDS,
    "category",
    "severity",
    "level",
    "confidence",
    "classification_reason",
    "level_source",
    "typical_resolution_minutes",
    "source",
)

# The write helpers below produce the same rows as simple_history's bulk_create_with_history and
# bulk_update_with_history, with plain multi-row INSERTs and executemany UPDATEs of prepared
# values. Measured on 10,000 codes with SQLite (bench/import_bench.py): the ORM's per-value SQL
# compilation made creating them and their history take about 3.8 s, and bulk_update's
# CASE WHEN statements made updating them take about 40 s; here it is 0.7 s and 0.9 s.
# On PostgreSQL (psycopg2) the rows travel by COPY instead, see _copy_rows and _update_by_copy.


def _create_with_history(objs: list[StatusCode], *, user, change_reason: str) -> None:
    """Insert new codes and their "+" history rows."""
    using = router.db_for_write(StatusCode)
    now = timezone.now()
    for obj in objs:
        obj.created_at = obj.updated_at = now
    _insert_rows(StatusCode, objs, using=using)
    # Re-read the ids rather than trusting RETURNING order, which SQL does not promise.
    ids: dict[tuple[str, int], int] = {}
    codes_by_family: dict[str, list[int]] = defaultdict(list)
    for obj in objs:
        codes_by_family[obj.family].append(obj.code)
    for family, codes in codes_by_family.items():
        for start in range(0, len(codes), 5000):
            rows = StatusCode.objects.using(using).filter(family=family, code__in=codes[start : start + 5000])
            ids.update(((family, code), pk) for code, pk in rows.values_list("code", "pk"))
    for obj in objs:
        obj.pk = ids[obj.key]
        obj._state.adding = False
        obj._state.db = using
    _insert_history(objs, "+", user=user, change_reason=change_reason, date=now, using=using)


def _update_with_history(objs: list[StatusCode], fields: Iterable[str], *, user, change_reason: str) -> None:
    """Write the given fields (and updated_at) of existing codes, with a "~" history row each."""
    using = router.db_for_write(StatusCode)
    connection = connections[using]
    now = timezone.now()
    for obj in objs:
        obj.updated_at = now
    meta = StatusCode._meta
    columns = [meta.get_field(name) for name in (*fields, "updated_at")]
    quote = connection.ops.quote_name
    sql = "UPDATE {} SET {} WHERE {} = %s".format(
        quote(meta.db_table), ", ".join(f"{quote(f.column)} = %s" for f in columns), quote(meta.pk.column)
    )
    prepared = [(f.attname, _preparer(f, connection)) for f in (*columns, meta.pk)]
    if _update_by_copy(connection, meta.db_table, [*columns, meta.pk], objs, prepared):
        _insert_history(objs, "~", user=user, change_reason=change_reason, date=now, using=using)
        return
    with connection.cursor() as cursor:
        for start in range(0, len(objs), BATCH_SIZE):
            params = [
                [prepare(getattr(obj, name)) for name, prepare in prepared] for obj in objs[start : start + BATCH_SIZE]
            ]
            _executemany(connection, cursor, sql, params)
    _insert_history(objs, "~", user=user, change_reason=change_reason, date=now, using=using)


def _update_by_copy(connection, table: str, columns: list, objs: list, prepared: list) -> bool:
    """On PostgreSQL with psycopg2: COPY the new values into a temporary table and apply them
    with one UPDATE ... FROM; False where that is not available.

    Measured on 10,000 codes (bench/import_bench.py): the batched UPDATE statements took about
    1.2 s, this about 0.5 s.
    """
    if connection.vendor != "postgresql":
        return False
    quote = connection.ops.quote_name
    # pg_temp is this session's own schema: the name can never reach a real table.
    staging = f"pg_temp.{quote(table + '_staged_update')}"
    names = ", ".join(quote(f.column) for f in columns)
    pk = quote(columns[-1].column)
    pairs = [(lambda obj, name=name: getattr(obj, name), prepare) for name, prepare in prepared]
    with connection.cursor() as cursor:
        if not hasattr(cursor.cursor, "copy_expert"):  # psycopg 3 has a different COPY interface
            return False
        # A failure leaves the table behind only outside a transaction; the next call drops it.
        cursor.execute(f"DROP TABLE IF EXISTS {staging}")
        cursor.execute(f"CREATE TEMPORARY TABLE {staging} AS SELECT {names} FROM {quote(table)} WITH NO DATA")
        _copy_rows(connection, f"COPY {staging} ({names}) FROM STDIN", objs, pairs)
        assignments = ", ".join(f"{quote(f.column)} = staged.{quote(f.column)}" for f in columns[:-1])
        cursor.execute(
            f"UPDATE {quote(table)} SET {assignments} FROM {staging} AS staged WHERE {quote(table)}.{pk} = staged.{pk}"
        )
        cursor.execute(f"DROP TABLE {staging}")
    return True


def _executemany(connection, cursor, sql: str, params: list) -> None:
    """executemany, but with psycopg2 in batches of statements: its executemany makes one round
    trip per row, about 0.4 ms each here, which made updating 10,000 codes take 4 s."""
    if connection.vendor == "postgresql":
        try:
            from psycopg2.extras import execute_batch
        except ImportError:
            pass  # psycopg 3 pipelines executemany itself
        else:
            if type(cursor.cursor).__module__.startswith("psycopg2"):
                execute_batch(cursor.cursor, sql, params, page_size=250)
                return
    cursor.executemany(sql, params)


def _insert_history(objs: list[StatusCode], history_type: str, *, user, change_reason: str, date, using: str) -> None:
    if not objs or not getattr(settings, "SIMPLE_HISTORY_ENABLED", True):
        return
    history_model = StatusCode.history.model
    tracked = [f.attname for f in history_model.tracked_fields]
    history_user = user if user is not None else history_model.get_default_history_user(objs[0])
    common = {
        "history_date": date,
        history_model._meta.get_field("history_user").attname: getattr(history_user, "pk", None),
        "history_change_reason": change_reason,
        "history_type": history_type,
    }
    # Plain dicts, not HistoricalStatusCode instances: the rows only travel to the INSERT.
    rows = [{**common, **{name: getattr(obj, name) for name in tracked}} for obj in objs]
    _insert_rows(history_model, rows, using=using)


_AS_IS_TYPES = {
    "CharField": (str,),
    "TextField": (str,),
    "IntegerField": (int,),
    "SmallIntegerField": (int,),
    "BigIntegerField": (int,),
    "AutoField": (int,),
    "BigAutoField": (int,),
    "PositiveIntegerField": (int,),
    "PositiveSmallIntegerField": (int,),
    "PositiveBigIntegerField": (int,),
    "FloatField": (float, int),
    "BooleanField": (bool,),
}


def _preparer(field, connection) -> Callable:
    """Values of plain types go to the driver as they are; the field prepares anything else
    (dates, lazy strings, model instances) exactly as the ORM would."""
    as_is = _AS_IS_TYPES.get(field.get_internal_type(), ())
    prepare = field.get_db_prep_save
    return lambda value: value if value is None or type(value) in as_is else prepare(value, connection)


def _insert_rows(model, rows: list, *, using: str) -> None:
    """INSERT rows without their auto id, in statements the backend accepts.

    `rows` are model instances, or dicts of attname -> value where a missing field takes its default.
    """
    if not rows:
        return
    connection = connections[using]
    fields = [f for f in model._meta.concrete_fields if not isinstance(f, AutoField) and not f.generated]
    if isinstance(rows[0], dict):
        defaults = {f.attname: f.get_default() for f in fields if f.has_default() or f.null}
        getters = [lambda row, name=f.attname: row[name] if name in row else defaults[name] for f in fields]
    else:
        getters = [lambda obj, name=f.attname: getattr(obj, name) for f in fields]
    pairs = list(zip(getters, [_preparer(f, connection) for f in fields], strict=True))
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    if _copy_rows(connection, f"COPY {quote(model._meta.db_table)} ({columns}) FROM STDIN", rows, pairs):
        return
    row_sql = "(" + ", ".join(["%s"] * len(fields)) + ")"
    batch = max(1, min(BATCH_SIZE, connection.ops.bulk_batch_size(fields, rows)))
    with connection.cursor() as cursor:
        for start in range(0, len(rows), batch):
            chunk = rows[start : start + batch]
            params = [prepare(get(row)) for row in chunk for get, prepare in pairs]
            cursor.execute(
                f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES {', '.join([row_sql] * len(chunk))}",
                params,
            )


def _copy_text(text: str) -> str:
    # COPY's text format escapes a backslash, tab, newline or carriage return inside a value.
    # Chained replace() is several times faster than str.translate() here.
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _copy_value(value) -> str:
    if value is None:
        return "\\N"
    kind = type(value)
    if kind is str:
        return _copy_text(value)
    if kind is bool:
        return "t" if value else "f"
    if kind is int or kind is float:
        return repr(value)
    # Dates and times print in ISO form with their offset, which PostgreSQL reads back unchanged.
    return _copy_text(str(value))


def _copy_rows(connection, sql: str, rows: list, pairs: list) -> bool:
    """Load rows with COPY FROM STDIN when the connection is psycopg2 on PostgreSQL; False otherwise.

    Measured on 10,000 codes (bench/import_bench.py): writing the codes and their history with
    multi-row INSERTs took about 2.2 s, most of it the server parsing 20,000-value statements;
    with COPY it takes about 0.7 s, Python's formatting included.
    """
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        raw = cursor.cursor
        if not hasattr(raw, "copy_expert"):  # psycopg 3 has a different COPY interface
            return False
        # One COPY per batch keeps the text in memory small; the statements themselves are cheap.
        for start in range(0, len(rows), BATCH_SIZE):
            text = "".join(
                "\t".join([_copy_value(prepare(get(row))) for get, prepare in pairs]) + "\n"
                for row in rows[start : start + BATCH_SIZE]
            )
            # A raw-cursor call: without this a unique violation would not arrive as Django's IntegrityError.
            with connection.wrap_database_errors:
                raw.copy_expert(sql, io.StringIO(text), size=1 << 20)
    return True


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
        _apply_classification(
            obj, classifier, keep_category=obj.category != Category.OTHER or obj.curated_text, keep_severity=True
        )
        if (obj.level, obj.confidence, obj.classification_reason, obj.level_source) != before:
            changed.append(obj)
            counts["changed"] += 1
        else:
            counts["unchanged"] += 1
    if changed:
        with transaction.atomic():
            _update_with_history(
                changed,
                ["level", "confidence", "classification_reason", "level_source", "category"],
                user=user,
                change_reason="re-classified",
            )
    return counts


def _forget_classifier():
    """Curated examples changed: the classifier rebuilds its memory on next use."""
    from .classifier import reset_classifier

    reset_classifier()
