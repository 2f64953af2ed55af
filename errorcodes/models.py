from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from .choices import Category, Family, Level, LevelSource, Severity


class StatusCodeQuerySet(models.QuerySet):
    def active(self):
        return self.filter(is_active=True)

    def curated(self):
        return self.filter(level_source=LevelSource.CURATOR)

    def of_family(self, family):
        return self.filter(family=family)

    def search(self, text: str):
        text = (text or "").strip()
        if not text:
            return self
        query = (
            models.Q(message__icontains=text)
            | models.Q(explanation__icontains=text)
            | models.Q(recommended_action__icontains=text)
        )
        if text.isdigit():
            query |= models.Q(code=int(text))
        return self.filter(query)


class StatusCode(models.Model):
    """One NetBackup status code of one family, with its triage level."""

    family = models.CharField(_("family"), max_length=32, choices=Family.choices, default=Family.NETBACKUP)
    code = models.IntegerField(_("code"), validators=[MinValueValidator(0)])
    message = models.CharField(_("message"), max_length=500)
    explanation = models.TextField(_("explanation"), blank=True)
    recommended_action = models.TextField(_("recommended action"), blank=True)
    category = models.CharField(_("category"), max_length=32, choices=Category.choices, default=Category.OTHER)
    severity = models.CharField(_("severity"), max_length=16, choices=Severity.choices, default=Severity.ERROR)
    level = models.PositiveSmallIntegerField(_("resolution level"), choices=Level.choices, default=Level.APPROVAL)
    confidence = models.FloatField(
        _("confidence"), default=0.5, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    classification_reason = models.TextField(_("classification reason"), blank=True)
    level_source = models.CharField(
        _("level source"), max_length=16, choices=LevelSource.choices, default=LevelSource.CLASSIFIER
    )
    curated_text = models.BooleanField(
        _("text curated"),
        default=False,
        help_text=_("A curator edited the text; imports fill gaps but never overwrite it."),
    )
    typical_resolution_minutes = models.PositiveIntegerField(_("typical resolution (minutes)"), null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    source = models.CharField(_("source"), max_length=200, blank=True, help_text=_("Where the text came from"))
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    history = HistoricalRecords(excluded_fields=["updated_at"])

    objects = StatusCodeQuerySet.as_manager()

    class Meta:
        ordering = ["family", "code"]
        verbose_name = _("status code")
        verbose_name_plural = _("status codes")
        constraints = [
            models.UniqueConstraint(fields=["family", "code"], name="errorcodes_statuscode_unique_family_code"),
            models.CheckConstraint(
                condition=models.Q(level__gte=0, level__lte=3), name="errorcodes_statuscode_level_range"
            ),
            models.CheckConstraint(
                condition=models.Q(confidence__gte=0.0, confidence__lte=1.0),
                name="errorcodes_statuscode_confidence_range",
            ),
            models.CheckConstraint(condition=models.Q(code__gte=0), name="errorcodes_statuscode_code_non_negative"),
        ]
        indexes = [
            models.Index(fields=["code"], name="errorcodes_code_idx"),
            models.Index(fields=["level", "family"], name="errorcodes_level_family_idx"),
        ]

    def __str__(self):
        return f"{self.get_family_display()} {self.code}: {self.message}"

    @property
    def is_curated(self) -> bool:
        return self.level_source == LevelSource.CURATOR

    @property
    def key(self) -> tuple[str, int]:
        return (self.family, self.code)
