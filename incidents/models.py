import hashlib
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .choices import TRANSITIONS, IncidentState, JobSource, ResolutionMethod, Tier

RECURRENCE_WINDOW = timedelta(hours=24)

# Operations that are refused like transitions but are not states of their own.
NON_STATE_TARGETS = {"acknowledged": _("Acknowledged")}


class InvalidTransition(Exception):
    """A state change that the incident's current state does not allow (API: 409)."""

    def __init__(self, current, target):
        self.current, self.target = current, target
        super().__init__(f"cannot go from {current} to {target}")

    def message(self) -> str:
        """The refusal in the reader's language, with state names as people read them."""
        from django.utils.translation import gettext

        def label(value):
            if value in NON_STATE_TARGETS:
                return str(NON_STATE_TARGETS[value])
            try:
                return str(IncidentState(value).label)
            except ValueError:
                return str(value)

        return gettext("The incident is %(current)s; it cannot become %(target)s.") % {
            "current": label(self.current),
            "target": label(self.target),
        }


code_validator = RegexValidator(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$", _("Letters, digits, '.', '_' and '-' only."))


class CustomerQuerySet(models.QuerySet):
    def active(self):
        return self.filter(is_active=True)


class Customer(models.Model):
    """A company whose NetBackup environment we look after."""

    code = models.CharField(_("code"), max_length=32, unique=True, validators=[code_validator])
    name = models.CharField(_("name"), max_length=200)
    tier = models.CharField(_("tier"), max_length=10, choices=Tier.choices, default=Tier.SILVER)
    sla_hours_level1 = models.PositiveIntegerField(_("SLA hours, level 1"), default=1)
    sla_hours_level2 = models.PositiveIntegerField(_("SLA hours, level 2"), default=4)
    sla_hours_level3 = models.PositiveIntegerField(_("SLA hours, level 3"), default=24)
    contacts = models.JSONField(
        _("contacts"), default=list, blank=True, help_text=_('List of {"name", "email", "phone", "role"}')
    )
    report_warnings = models.BooleanField(
        _("open incidents for warnings"),
        default=True,
        help_text=_("Status 1 (partially successful) opens an incident when set."),
    )
    live_execution_enabled = models.BooleanField(
        _("live execution enabled"),
        default=False,
        help_text=_("Until an administrator enables it, recovery runs for this customer are dry runs."),
    )
    maintenance_windows = models.JSONField(
        _("maintenance windows"),
        default=list,
        blank=True,
        help_text=_('List of {"weekday": 0-6 (Monday=0), "start": "HH:MM", "end": "HH:MM"} in the server time zone'),
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = CustomerQuerySet.as_manager()

    class Meta:
        ordering = ["code"]
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        permissions = [
            ("access_customer", _("Can see the customer's servers, jobs and incidents")),
            ("work_customer", _("Can act on the customer's incidents")),
            ("ingest_customer", _("Can ingest jobs for the customer")),
        ]

    def __str__(self):
        return f"{self.code} · {self.name}"

    def clean(self):
        for window in self.maintenance_windows or []:
            try:
                weekday = int(window["weekday"])
                datetime.strptime(window["start"], "%H:%M")
                datetime.strptime(window["end"], "%H:%M")
            except (KeyError, TypeError, ValueError):
                raise ValidationError({"maintenance_windows": _("Each window needs weekday 0-6, start and end HH:MM.")})
            if not 0 <= weekday <= 6:
                raise ValidationError({"maintenance_windows": _("weekday must be 0 (Monday) to 6 (Sunday).")})

    def sla_hours(self, level: int | None) -> int | None:
        return {1: self.sla_hours_level1, 2: self.sla_hours_level2, 3: self.sla_hours_level3}.get(level)

    def in_maintenance(self, at: datetime | None = None) -> bool:
        at = timezone.localtime(at or timezone.now())
        minute = at.hour * 60 + at.minute
        for window in self.maintenance_windows or []:
            if int(window.get("weekday", -1)) != at.weekday():
                continue
            start_h, start_m = (int(x) for x in window["start"].split(":"))
            end_h, end_m = (int(x) for x in window["end"].split(":"))
            if start_h * 60 + start_m <= minute < end_h * 60 + end_m:
                return True
        return False


class BackupServer(models.Model):
    """A NetBackup primary server of a customer."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="servers", verbose_name=_("customer"))
    hostname = models.CharField(_("host name"), max_length=253)
    netbackup_version = models.CharField(_("NetBackup version"), max_length=20, blank=True)
    api_base_url = models.URLField(
        _("API base URL"), blank=True, help_text=_("For example https://nbu01.example.com:1556/netbackup")
    )
    api_version = models.CharField(
        _("negotiated API version"), max_length=10, blank=True, help_text=_("Found by probing, newest first")
    )
    ca_certificate = models.TextField(_("CA certificate (PEM)"), blank=True)
    # Kept out of list views, serializers, logs and repr; write-only in forms.
    api_key = models.CharField(_("API key"), max_length=512, blank=True)
    poll_enabled = models.BooleanField(_("poll the REST API"), default=False)
    poll_watermark = models.DateTimeField(
        _("poll watermark"), null=True, blank=True, help_text=_("lastUpdateTime of the newest job stored")
    )
    last_polled_at = models.DateTimeField(_("last polled"), null=True, blank=True)
    last_poll_error = models.TextField(_("last poll error"), blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["customer__code", "hostname"]
        verbose_name = _("backup server")
        verbose_name_plural = _("backup servers")
        constraints = [
            models.UniqueConstraint(fields=["customer", "hostname"], name="incidents_backupserver_unique_host"),
        ]

    def __str__(self):
        return self.hostname

    def __repr__(self):
        return f"<BackupServer {self.pk} {self.hostname}>"

    @property
    def has_api_key(self) -> bool:
        return bool(self.api_key)


class BackupJobQuerySet(models.QuerySet):
    def failed(self):
        return self.filter(status__gte=1)


class BackupJob(models.Model):
    """One NetBackup job as last seen; (server, job id) is unique and newer updates win."""

    server = models.ForeignKey(BackupServer, on_delete=models.CASCADE, related_name="jobs", verbose_name=_("server"))
    job_id = models.BigIntegerField(_("job id"))
    parent_job_id = models.BigIntegerField(_("parent job id"), null=True, blank=True)
    job_type = models.CharField(_("job type"), max_length=40, blank=True)
    state = models.CharField(_("state"), max_length=20, blank=True)
    status = models.IntegerField(_("status"), null=True, blank=True)
    client = models.CharField(_("client"), max_length=253, blank=True)
    policy = models.CharField(_("policy"), max_length=255, blank=True)
    schedule = models.CharField(_("schedule"), max_length=255, blank=True)
    policy_type = models.CharField(_("policy type"), max_length=40, blank=True)
    schedule_type = models.CharField(_("schedule type"), max_length=60, blank=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    kilobytes = models.BigIntegerField(_("kilobytes"), null=True, blank=True)
    files = models.BigIntegerField(_("files"), null=True, blank=True)
    try_count = models.PositiveIntegerField(_("tries"), null=True, blank=True)
    try_log = models.TextField(_("try log"), blank=True)
    raw = models.JSONField(_("raw payload"), default=dict, blank=True)
    source = models.CharField(_("source"), max_length=20, choices=JobSource.choices)
    last_update_time = models.DateTimeField(_("NetBackup lastUpdateTime"), null=True, blank=True)
    incident = models.ForeignKey(
        "Incident", on_delete=models.SET_NULL, null=True, blank=True, related_name="jobs", verbose_name=_("incident")
    )
    ingested_at = models.DateTimeField(_("ingested"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = BackupJobQuerySet.as_manager()

    class Meta:
        ordering = ["-ended_at", "-job_id"]
        verbose_name = _("backup job")
        verbose_name_plural = _("backup jobs")
        constraints = [
            models.UniqueConstraint(fields=["server", "job_id"], name="incidents_backupjob_unique_server_job"),
        ]
        indexes = [
            models.Index(fields=["-ended_at", "-job_id"], name="incidents_job_ended_idx"),
            models.Index(fields=["server", "status"], name="incidents_job_srv_status_idx"),
        ]

    def __str__(self):
        return f"{self.server} job {self.job_id} (status {self.status})"


def make_fingerprint(customer_id, server_id, client, policy, schedule, family, code) -> str:
    parts = [str(customer_id), str(server_id), client or "", policy or "", schedule or "", family or "", str(code)]
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


class IncidentQuerySet(models.QuerySet):
    def active(self):
        return self.filter(state__in=IncidentState.active())

    def open(self):
        return self.active()

    def for_customer(self, customer):
        return self.filter(customer=customer)

    def overdue(self, at=None):
        return self.active().filter(sla_due__lt=at or timezone.now())


class Incident(models.Model):
    """Failures of one fingerprint (customer, server, client, policy, schedule, family, code)."""

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="incidents", verbose_name=_("customer")
    )
    server = models.ForeignKey(
        BackupServer, on_delete=models.PROTECT, related_name="incidents", verbose_name=_("server")
    )
    fingerprint = models.CharField(_("fingerprint"), max_length=64, db_index=True)
    family = models.CharField(_("family"), max_length=32, default="netbackup")
    code = models.IntegerField(_("status code"))
    status_code = models.ForeignKey(
        "errorcodes.StatusCode",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="incidents",
        verbose_name=_("knowledge-base entry"),
    )
    client = models.CharField(_("client"), max_length=253, blank=True)
    policy = models.CharField(_("policy"), max_length=255, blank=True)
    schedule = models.CharField(_("schedule"), max_length=255, blank=True)
    level = models.PositiveSmallIntegerField(_("level"), null=True, blank=True)
    confidence = models.FloatField(_("confidence"), null=True, blank=True)
    state = models.CharField(_("state"), max_length=20, choices=IncidentState.choices, default=IncidentState.OPEN)
    occurrences = models.PositiveIntegerField(_("occurrences"), default=1, validators=[MinValueValidator(1)])
    recurrences = models.PositiveIntegerField(
        _("recurrences"), default=0, help_text=_("Times it came back within 24 hours of being resolved")
    )
    first_seen = models.DateTimeField(_("first seen"))
    last_seen = models.DateTimeField(_("last seen"))
    sla_due = models.DateTimeField(_("SLA due"), null=True, blank=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_incidents",
        verbose_name=_("assignee"),
    )
    acknowledged_at = models.DateTimeField(_("acknowledged"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)
    resolution = models.TextField(_("resolution"), blank=True)
    resolution_method = models.CharField(
        _("resolution method"), max_length=20, choices=ResolutionMethod.choices, blank=True
    )
    diagnosis = models.JSONField(_("diagnosis"), default=dict, blank=True)
    notes = models.TextField(_("notes"), blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = IncidentQuerySet.as_manager()

    class Meta:
        ordering = ["-last_seen", "-id"]
        verbose_name = _("incident")
        verbose_name_plural = _("incidents")
        constraints = [
            # Two ingest requests racing on the same failure must not open two incidents.
            models.UniqueConstraint(
                fields=["fingerprint"],
                condition=models.Q(state__in=IncidentState.active()),
                name="incidents_incident_one_active_per_fingerprint",
            ),
            models.CheckConstraint(
                condition=models.Q(occurrences__gte=1), name="incidents_incident_occurrences_positive"
            ),
        ]
        indexes = [
            models.Index(fields=["-last_seen", "-id"], name="incidents_inc_seen_idx"),
            models.Index(fields=["customer", "state"], name="incidents_inc_cust_state_idx"),
            models.Index(fields=["family", "code"], name="incidents_inc_code_idx"),
        ]

    def __str__(self):
        return f"#{self.pk} {self.customer.code} {self.client or '-'} {self.family} {self.code}"

    @property
    def is_active(self) -> bool:
        return self.state in IncidentState.active()

    def compute_sla_due(self):
        hours = self.customer.sla_hours(self.level)
        return self.first_seen + timedelta(hours=hours) if hours else None

    def transition(self, target: str, *, actor=None, reason: str = "", verb: str | None = None, origin=None, **changes):
        """Move to `target` under a row lock, write the event, and return the fresh incident."""
        with transaction.atomic():
            locked = type(self).objects.select_for_update().get(pk=self.pk)
            if target not in TRANSITIONS.get(locked.state, set()):
                raise InvalidTransition(locked.state, target)
            before = {"state": locked.state, **{k: _jsonable(getattr(locked, k)) for k in changes}}
            locked.state = target
            for key, value in changes.items():
                setattr(locked, key, value)
            if target == IncidentState.RESOLVED:
                locked.resolved_at = timezone.now()
            locked.save()
            after = {"state": target, **{k: _jsonable(v) for k, v in changes.items()}}
            IncidentEvent.record(
                locked, verb or target, actor=actor, origin=origin, before=before, after=after, reason=reason
            )
        self.refresh_from_db()
        return self


def _jsonable(value):
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, models.Model):
        return value.pk
    return value


class IncidentEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("incident events are append-only")

    def delete(self):
        raise TypeError("incident events are append-only")


class IncidentEvent(models.Model):
    """Append-only audit row: who (or which system part, on whose behalf) did what to an incident."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="events", verbose_name=_("incident"))
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("actor"),
    )
    system = models.CharField(
        _("system actor"), max_length=50, blank=True, help_text=_("Set when no person acted (ingest, worker, poller)")
    )
    origin = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("originating person"),
    )
    verb = models.CharField(_("verb"), max_length=40)
    before = models.JSONField(_("before"), default=dict, blank=True)
    after = models.JSONField(_("after"), default=dict, blank=True)
    reason = models.TextField(_("reason"), blank=True)
    created_at = models.DateTimeField(_("time"), default=timezone.now, db_index=True)

    objects = IncidentEventQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("incident event")
        verbose_name_plural = _("incident events")

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_label} {self.verb}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise TypeError("incident events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("incident events are append-only")

    @property
    def changes(self) -> list[tuple[str, object, object]]:
        """(field, before, after) for each field the event names, in a stable order."""
        before = self.before if isinstance(self.before, dict) else {}
        after = self.after if isinstance(self.after, dict) else {}
        names = list(dict.fromkeys([*before, *after]))
        return [(name, before.get(name), after.get(name)) for name in names]

    @property
    def actor_label(self) -> str:
        if self.actor_id:
            return str(self.actor)
        return self.system or "system"

    @classmethod
    def record(cls, incident, verb, *, actor=None, system="", origin=None, before=None, after=None, reason=""):
        if actor is not None and not getattr(actor, "is_authenticated", False):
            actor = None
        return cls.objects.create(
            incident=incident,
            actor=actor,
            system=system if actor is None else "",
            origin=origin,
            verb=verb,
            before=before or {},
            after=after or {},
            reason=reason or "",
        )
