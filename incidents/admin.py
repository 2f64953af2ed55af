import json

from django import forms
from django.contrib import admin
from django.db.models import Count, Q
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from guardian.admin import GuardedModelAdmin

from . import permissions
from .choices import IncidentState
from .models import BackupJob, BackupServer, Customer, Incident, IncidentEvent


class RestrictedAdminMixin:
    """Admin querysets go through the same per-customer choke point as the API and pages."""

    customer_field = "customer"

    def get_queryset(self, request):
        return permissions.restrict(super().get_queryset(request), request.user, customer_field=self.customer_field)


class ReadOnlyAdminMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Customer)
class CustomerAdmin(RestrictedAdminMixin, GuardedModelAdmin):
    customer_field = "self"
    list_display = [
        "code",
        "name",
        "tier",
        "report_warnings",
        "live_execution_enabled",
        "server_count",
        "active_incidents",
    ]
    list_filter = ["tier", "live_execution_enabled", "is_active"]
    search_fields = ["code", "name"]
    fieldsets = [
        (None, {"fields": ["code", "name", "tier", "is_active", "contacts"]}),
        (
            _("Service level (hours per level)"),
            {"fields": ["sla_hours_level1", "sla_hours_level2", "sla_hours_level3"]},
        ),
        (_("Behaviour"), {"fields": ["report_warnings", "live_execution_enabled", "maintenance_windows"]}),
    ]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                _servers=Count("servers", distinct=True),
                _active=Count("incidents", filter=Q(incidents__state__in=IncidentState.active()), distinct=True),
            )
        )

    @admin.display(description=_("servers"), ordering="_servers")
    def server_count(self, obj):
        return obj._servers

    @admin.display(description=_("active incidents"), ordering="_active")
    def active_incidents(self, obj):
        return obj._active


class BackupServerForm(forms.ModelForm):
    api_key = forms.CharField(
        label=_("API key"),
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("Leave empty to keep the stored key. It is never shown again."),
    )
    clear_api_key = forms.BooleanField(label=_("Remove the stored API key"), required=False)

    class Meta:
        model = BackupServer
        fields = [
            "customer",
            "hostname",
            "netbackup_version",
            "is_active",
            "api_base_url",
            "api_key",
            "ca_certificate",
            "poll_enabled",
        ]

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("api_key") and not cleaned.get("clear_api_key") and self.instance.pk:
            cleaned["api_key"] = BackupServer.objects.filter(pk=self.instance.pk).values_list("api_key", flat=True)[0]
        if cleaned.get("clear_api_key"):
            cleaned["api_key"] = ""
        return cleaned


@admin.register(BackupServer)
class BackupServerAdmin(RestrictedAdminMixin, admin.ModelAdmin):
    form = BackupServerForm
    list_display = [
        "hostname",
        "customer",
        "netbackup_version",
        "api_version",
        "poll_enabled",
        "key_set",
        "last_polled_at",
    ]
    list_filter = ["poll_enabled", "customer", "is_active"]
    search_fields = ["hostname", "customer__code", "customer__name"]
    list_select_related = ["customer"]
    readonly_fields = ["api_version", "poll_watermark", "last_polled_at", "last_poll_error"]
    fieldsets = [
        (None, {"fields": ["customer", "hostname", "netbackup_version", "is_active"]}),
        (_("REST API"), {"fields": ["api_base_url", "api_key", "clear_api_key", "ca_certificate", "poll_enabled"]}),
        (_("Polling state"), {"fields": ["api_version", "poll_watermark", "last_polled_at", "last_poll_error"]}),
    ]

    @admin.display(description=_("API key set"), boolean=True)
    def key_set(self, obj):
        return obj.has_api_key


@admin.register(BackupJob)
class BackupJobAdmin(RestrictedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    customer_field = "server__customer"
    list_display = [
        "job_id",
        "server",
        "job_type",
        "state",
        "status",
        "client",
        "policy",
        "schedule",
        "ended_at",
        "source",
    ]
    list_filter = ["source", "state", "job_type", "server__customer"]
    search_fields = ["=job_id", "client", "policy", "server__hostname"]
    list_select_related = ["server"]
    date_hierarchy = "ended_at"
    exclude = ["raw"]
    readonly_fields = ["raw_pretty"]

    @admin.display(description=_("raw payload"))
    def raw_pretty(self, obj):
        return format_html(
            "<pre style='white-space:pre-wrap'>{}</pre>", json.dumps(obj.raw, indent=2, ensure_ascii=False)
        )


class IncidentEventInline(admin.TabularInline):
    model = IncidentEvent
    extra = 0
    can_delete = False
    fields = ["created_at", "actor_label", "verb", "before", "after", "reason"]
    readonly_fields = fields
    ordering = ["created_at", "id"]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description=_("actor"))
    def actor_label(self, obj):
        return obj.actor_label


@admin.register(Incident)
class IncidentAdmin(RestrictedAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "customer",
        "server",
        "family",
        "code",
        "client",
        "policy",
        "level",
        "state",
        "occurrences",
        "last_seen",
        "sla_due",
        "assignee",
    ]
    list_filter = ["state", "level", "family", "customer"]
    search_fields = ["=id", "=code", "client", "policy", "customer__code"]
    list_select_related = ["customer", "server", "assignee"]
    date_hierarchy = "last_seen"
    inlines = [IncidentEventInline]
    readonly_fields = [
        "customer",
        "server",
        "fingerprint",
        "family",
        "code",
        "status_code",
        "client",
        "policy",
        "schedule",
        "level",
        "confidence",
        "state",
        "occurrences",
        "recurrences",
        "first_seen",
        "last_seen",
        "sla_due",
        "acknowledged_at",
        "resolved_at",
        "diagnosis_pretty",
    ]
    fields = [*readonly_fields[:-1], "assignee", "resolution", "resolution_method", "notes", "diagnosis_pretty"]

    def has_add_permission(self, request):
        return False

    @admin.display(description=_("diagnosis"))
    def diagnosis_pretty(self, obj):
        return format_html(
            "<pre style='white-space:pre-wrap'>{}</pre>", json.dumps(obj.diagnosis, indent=2, ensure_ascii=False)
        )


@admin.register(IncidentEvent)
class IncidentEventAdmin(RestrictedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    customer_field = "incident__customer"
    list_display = ["created_at", "incident", "actor_label", "verb", "reason"]
    list_filter = ["verb"]
    search_fields = ["=incident__id", "reason"]
    list_select_related = ["incident__customer", "actor"]

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) or request.user.has_perm("incidents.view_incident")
