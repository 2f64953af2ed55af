"""Forms of the curator admin: the change form, the "Set level" action and the catalogue upload."""

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from .choices import Family, Level
from .models import StatusCode

REASON_MAX_LENGTH = 1000

IMPORT_FORMAT_CHOICES = [
    ("auto", _("Detect from the file name")),
    ("json", _("JSON")),
    ("csv", _("CSV")),
    ("text", _("Plain text")),
    ("pdf", _("PDF")),
]


class StatusCodeAdminForm(forms.ModelForm):
    """The change form, plus the reason a curator must give when deciding a level."""

    level_change_reason = forms.CharField(
        label=_("Reason for level change"),
        required=False,
        max_length=REASON_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_(
            "Required when you set or change the level. It is kept in the history, and the level then "
            "counts as a curator decision that imports and re-classification never overwrite."
        ),
    )

    class Meta:
        model = StatusCode
        fields = (
            "family",
            "code",
            "message",
            "level",
            "explanation",
            "recommended_action",
            "curated_text",
            "category",
            "severity",
            "typical_resolution_minutes",
            "is_active",
            "source",
        )

    @property
    def level_decided(self) -> bool:
        """Whether saving this form makes the level a curator decision."""
        # On a new code the curator picks the level, even when it equals the default.
        return self.instance._state.adding or "level" in self.changed_data

    def clean_level_change_reason(self):
        return " ".join(self.cleaned_data.get("level_change_reason", "").split())

    def clean(self):
        cleaned = super().clean()
        if "level" in self.fields and self.level_decided and not cleaned.get("level_change_reason"):
            self.add_error("level_change_reason", _("Give a reason for the level you set."))
        return cleaned


class SetLevelForm(forms.Form):
    """The intermediate page of the "Set level" bulk action."""

    level = forms.TypedChoiceField(label=_("Resolution level"), choices=Level.choices, coerce=int)
    reason = forms.CharField(
        label=_("Reason"),
        max_length=REASON_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=_("Why these codes get this level. Kept in each code's history."),
    )

    def clean_reason(self):
        reason = " ".join(self.cleaned_data["reason"].split())
        if not reason:
            raise forms.ValidationError(_("Give a reason for the level you set."))
        return reason


class CatalogueImportForm(forms.Form):
    """Upload a status-code catalogue into the knowledge base (the same import as the command)."""

    file = forms.FileField(label=_("Catalogue file"))
    format = forms.ChoiceField(label=_("Format"), choices=IMPORT_FORMAT_CHOICES, initial="auto")
    family = forms.ChoiceField(
        label=_("Family"),
        choices=Family.choices,
        initial=Family.NETBACKUP,
        help_text=_("Used for entries that do not name their family."),
    )
    dry_run = forms.BooleanField(
        label=_("Dry run"), required=False, help_text=_("Show what would change without saving anything.")
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        limit = settings.MAX_UPLOAD_BYTES
        if upload.size > limit:
            raise forms.ValidationError(
                _("The file is %(size)s; uploads may be at most %(limit)s."),
                code="too_large",
                params={"size": filesizeformat(upload.size), "limit": filesizeformat(limit)},
            )
        return upload

    @property
    def importer_format(self) -> str | None:
        value = self.cleaned_data["format"]
        return None if value == "auto" else value
