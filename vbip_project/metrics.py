"""Prometheus metrics, computed from the database at scrape time.

Values come from the database rather than per-process counters, so every web
process answers the same numbers and nothing is lost when a worker restarts.
"""

from django.db.models import Count
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from rest_framework.decorators import api_view, permission_classes, renderer_classes, throttle_classes
from rest_framework.permissions import BasePermission
from rest_framework.renderers import BaseRenderer


class _Collector:
    def collect(self):
        from django_tasks_db.models import DBTaskResult

        from errorcodes.models import StatusCode
        from incidents.choices import IncidentState
        from incidents.models import BackupJob, BackupServer, Incident

        codes = GaugeMetricFamily("vbip_status_codes", "Status codes in the knowledge base", labels=["level", "source"])
        for row in StatusCode.objects.values("level", "level_source").annotate(n=Count("id")).order_by():
            codes.add_metric([str(row["level"]), row["level_source"]], row["n"])
        yield codes

        incidents = GaugeMetricFamily(
            "vbip_incidents", "Incidents by customer, state and level", labels=["customer", "state", "level"]
        )
        for row in Incident.objects.values("customer__code", "state", "level").annotate(n=Count("id")).order_by():
            incidents.add_metric([row["customer__code"], row["state"], str(row["level"])], row["n"])
        yield incidents

        overdue = GaugeMetricFamily("vbip_incidents_overdue", "Active incidents past their SLA", labels=["customer"])
        for row in (
            Incident.objects.filter(state__in=IncidentState.active(), sla_due__lt=timezone.now())
            .values("customer__code")
            .annotate(n=Count("id"))
            .order_by()
        ):
            overdue.add_metric([row["customer__code"]], row["n"])
        yield overdue

        jobs = GaugeMetricFamily("vbip_backup_jobs", "Backup jobs stored, by source", labels=["source"])
        for row in BackupJob.objects.values("source").annotate(n=Count("id")).order_by():
            jobs.add_metric([row["source"]], row["n"])
        yield jobs

        tasks = GaugeMetricFamily("vbip_tasks", "Background tasks by status", labels=["status"])
        for row in DBTaskResult.objects.values("status").annotate(n=Count("id")).order_by():
            tasks.add_metric([row["status"]], row["n"])
        yield tasks

        poll_age = GaugeMetricFamily(
            "vbip_netbackup_poll_age_seconds", "Seconds since each polled server was last polled", labels=["server"]
        )
        now = timezone.now()
        for hostname, last in BackupServer.objects.filter(poll_enabled=True).values_list("hostname", "last_polled_at"):
            poll_age.add_metric([hostname], (now - last).total_seconds() if last else float("inf"))
        yield poll_age


class _PlainTextRenderer(BaseRenderer):
    media_type = "text/plain"
    format = "txt"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data


class CanReadMetrics(BasePermission):
    """Staff, or anyone allowed to view incidents (a monitoring account's token)."""

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and (user.is_staff or user.has_perm("incidents.view_incident")))


@extend_schema(
    summary="Prometheus metrics",
    responses={(200, "text/plain"): OpenApiTypes.STR},
    description="Prometheus exposition format; staff or a token of a user who may view incidents.",
)
@api_view(["GET"])
@permission_classes([CanReadMetrics])
@renderer_classes([_PlainTextRenderer])
@throttle_classes([])
def metrics(request):
    registry = CollectorRegistry()
    registry.register(_Collector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
