from django.contrib.auth import get_user_model
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from incidents import permissions
from incidents.choices import ResolutionMethod
from incidents.models import BackupJob, Incident, IncidentEvent


class StatusCodeBriefSerializer(serializers.Serializer):
    family = serializers.CharField()
    code = serializers.IntegerField()
    message = serializers.CharField()
    level = serializers.IntegerField()
    category = serializers.CharField()


class IncidentEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_label", read_only=True)
    origin = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = IncidentEvent
        fields = ["id", "created_at", "actor", "origin", "verb", "before", "after", "reason"]


class IncidentJobSerializer(serializers.ModelSerializer):
    class Meta:
        model = BackupJob
        fields = ["job_id", "job_type", "state", "status", "started_at", "ended_at", "source"]


class IncidentSerializer(serializers.ModelSerializer):
    customer = serializers.SlugRelatedField(slug_field="code", read_only=True)
    server = serializers.SlugRelatedField(slug_field="hostname", read_only=True)
    status_code = StatusCodeBriefSerializer(read_only=True, allow_null=True)
    assignee = serializers.SlugRelatedField(slug_field="username", read_only=True)
    state_display = serializers.CharField(source="get_state_display", read_only=True)
    overdue = serializers.SerializerMethodField()

    class Meta:
        model = Incident
        fields = [
            "id",
            "customer",
            "server",
            "family",
            "code",
            "status_code",
            "client",
            "policy",
            "schedule",
            "level",
            "confidence",
            "state",
            "state_display",
            "occurrences",
            "recurrences",
            "first_seen",
            "last_seen",
            "sla_due",
            "overdue",
            "assignee",
            "acknowledged_at",
            "resolved_at",
            "resolution",
            "resolution_method",
            "notes",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_overdue(self, obj) -> bool:
        return bool(obj.is_active and obj.sla_due and obj.sla_due < timezone.now())


class IncidentDetailSerializer(IncidentSerializer):
    events = IncidentEventSerializer(many=True, read_only=True)
    recent_jobs = serializers.SerializerMethodField()

    class Meta(IncidentSerializer.Meta):
        fields = [*IncidentSerializer.Meta.fields, "diagnosis", "events", "recent_jobs"]
        read_only_fields = fields

    def get_recent_jobs(self, obj) -> list[dict]:
        jobs = obj.jobs.order_by("-ended_at", "-job_id")[:20]
        return IncidentJobSerializer(jobs, many=True).data


class IncidentUpdateSerializer(serializers.ModelSerializer):
    assignee = serializers.SlugRelatedField(
        slug_field="username", queryset=get_user_model().objects.filter(is_active=True), allow_null=True, required=False
    )
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000, write_only=True)

    class Meta:
        model = Incident
        fields = ["assignee", "notes", "reason"]

    def validate_assignee(self, user):
        if user is not None and not permissions.can(user, permissions.WORK, self.instance.customer):
            raise serializers.ValidationError(_("This user may not work on this customer's incidents."))
        return user


class TransitionSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, help_text=_("Why; kept in the incident's history"))
    resolution = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    resolution_method = serializers.ChoiceField(choices=ResolutionMethod.choices, required=False)

    def validate_reason(self, value):
        if not value.strip():
            raise serializers.ValidationError(_("A reason is required."))
        return value.strip()
