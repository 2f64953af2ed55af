from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.reverse import reverse

from ..choices import Category, Family, Level, LevelSource, Severity
from ..models import StatusCode
from ..services import CURATED_FIELDS, set_level

REASON_MAX_LENGTH = 1000
# Long enough for any vendor explanation, short enough that nobody posts a log file.
CLASSIFY_TEXT_MAX_LENGTH = 20000


def detail_url(obj: StatusCode, request=None) -> str:
    return reverse("api:statuscode-detail", kwargs={"family": obj.family, "code": obj.code}, request=request)


class StatusCodeSerializer(serializers.ModelSerializer):
    """A status code as the API shows it."""

    url = serializers.SerializerMethodField()
    family_name = serializers.CharField(source="get_family_display", read_only=True)
    level_name = serializers.CharField(source="get_level_display", read_only=True)
    category_name = serializers.CharField(source="get_category_display", read_only=True)
    severity_name = serializers.CharField(source="get_severity_display", read_only=True)

    class Meta:
        model = StatusCode
        fields = [
            "url",
            "family",
            "family_name",
            "code",
            "message",
            "explanation",
            "recommended_action",
            "category",
            "category_name",
            "severity",
            "severity_name",
            "level",
            "level_name",
            "confidence",
            "classification_reason",
            "level_source",
            "curated_text",
            "typical_resolution_minutes",
            "is_active",
            "source",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, obj) -> str:
        return detail_url(obj, self.context.get("request"))


class StatusCodeUpdateSerializer(serializers.ModelSerializer):
    """What a curator may change. A level given here becomes the curator's decision and needs a reason."""

    reason = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=REASON_MAX_LENGTH,
        help_text=_("Why: required when the level changes; recorded in the history."),
    )

    class Meta:
        model = StatusCode
        fields = [
            "message",
            "explanation",
            "recommended_action",
            "category",
            "severity",
            "level",
            "typical_resolution_minutes",
            "is_active",
            "reason",
        ]

    def _is_level_decision(self, attrs) -> bool:
        if "level" not in attrs:
            return False
        # Confirming the classifier's level also makes it the curator's, so it is a decision too.
        return attrs["level"] != self.instance.level or self.instance.level_source != LevelSource.CURATOR

    def validate(self, attrs):
        attrs["reason"] = (attrs.get("reason") or "").strip()
        if self._is_level_decision(attrs) and not attrs["reason"]:
            raise serializers.ValidationError(
                {"reason": [gettext("A reason is required when a curator sets the level.")]}, code="required"
            )
        return attrs

    def update(self, instance, validated_data):
        user = self.context["request"].user
        reason = validated_data.pop("reason", "")
        level_decision = self._is_level_decision(validated_data)
        level = validated_data.pop("level", None)
        changed = False
        for name, value in validated_data.items():
            if getattr(instance, name) != value:
                setattr(instance, name, value)
                changed = True
                if name in CURATED_FIELDS:
                    # Imports fill gaps but never overwrite a curator's words from now on.
                    instance.curated_text = True
        if level_decision:
            # set_level saves the other edits too, so the history shows one row for one request.
            set_level([instance], level=level, reason=reason, user=user)
        elif changed:
            instance._history_user = user
            instance._change_reason = reason or gettext("Edited through the API.")
            instance.save()
        return instance

    def to_representation(self, instance):
        return StatusCodeSerializer(instance, context=self.context).data


class HistoryChangeSerializer(serializers.Serializer):
    field = serializers.CharField()
    label = serializers.CharField()
    old = serializers.JSONField(allow_null=True)
    new = serializers.JSONField(allow_null=True)


class HistoryEntrySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    when = serializers.DateTimeField()
    who = serializers.CharField(allow_null=True, help_text=_("Username, or null for imports and scripts"))
    who_name = serializers.CharField(allow_null=True)
    action = serializers.ChoiceField(choices=["created", "changed", "deleted"])
    reason = serializers.CharField(allow_null=True)
    changes = HistoryChangeSerializer(many=True)


class CountBucketSerializer(serializers.Serializer):
    value = serializers.CharField()
    label = serializers.CharField()
    count = serializers.IntegerField()


class LevelBucketSerializer(serializers.Serializer):
    value = serializers.IntegerField()
    label = serializers.CharField()
    count = serializers.IntegerField()


class StatisticsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    average_confidence = serializers.FloatField(allow_null=True)
    by_level = LevelBucketSerializer(many=True)
    by_family = CountBucketSerializer(many=True)
    by_category = CountBucketSerializer(many=True)
    by_severity = CountBucketSerializer(many=True)
    by_level_source = CountBucketSerializer(many=True)


class FamilyField(serializers.CharField):
    """An optional status-code family: slug or a common spelling ("Media Manager"); blank means none."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(allow_blank=True, allow_null=True, **kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if value in (None, ""):
            return None
        family = Family.normalise(value)
        if family is None:
            raise serializers.ValidationError(
                gettext("Unknown family {value!r}; expected one of: {choices}.").format(
                    value=value, choices=", ".join(Family.values)
                ),
                code="invalid_choice",
            )
        return family


class ClassifyRequestSerializer(serializers.Serializer):
    family = FamilyField(
        help_text=_("Family slug, e.g. netbackup or media_manager; codes mean different things per family"),
    )
    code = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=2**31 - 1)
    message = serializers.CharField(max_length=StatusCode._meta.get_field("message").max_length)
    explanation = serializers.CharField(required=False, allow_blank=True, max_length=CLASSIFY_TEXT_MAX_LENGTH)
    recommended_action = serializers.CharField(required=False, allow_blank=True, max_length=CLASSIFY_TEXT_MAX_LENGTH)


class StoredLevelSerializer(serializers.Serializer):
    level = serializers.IntegerField()
    level_name = serializers.CharField()
    level_source = serializers.ChoiceField(choices=LevelSource.choices)
    url = serializers.URLField()


class ClassificationSerializer(serializers.Serializer):
    family = serializers.CharField(allow_null=True)
    code = serializers.IntegerField(allow_null=True)
    level = serializers.ChoiceField(choices=Level.choices)
    level_name = serializers.CharField()
    confidence = serializers.FloatField()
    reason = serializers.CharField()
    category = serializers.ChoiceField(choices=Category.choices, allow_null=True)
    severity = serializers.ChoiceField(choices=Severity.choices, allow_null=True)
    rules = serializers.ListField(child=serializers.CharField())
    stored = StoredLevelSerializer(
        allow_null=True,
        help_text=_("The knowledge base's current level for this family and code, when it holds the code"),
    )
