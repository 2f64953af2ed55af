"""Query-string filters for the incidents app's lists (jobs, customers, servers)."""

import django_filters
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .choices import JobSource, Tier
from .models import BackupJob, BackupServer, Customer


class JobFilterSet(django_filters.FilterSet):
    customer = django_filters.CharFilter(field_name="server__customer__code", lookup_expr="iexact", label=_("customer"))
    server = django_filters.CharFilter(field_name="server__hostname", lookup_expr="iexact", label=_("server"))
    job_id = django_filters.NumberFilter(label=_("job id"))
    status = django_filters.NumberFilter(label=_("status"))
    min_status = django_filters.NumberFilter(field_name="status", lookup_expr="gte", label=_("status at least"))
    failed = django_filters.BooleanFilter(method="filter_failed", label=_("failed (status 2 or more)"))
    state = django_filters.CharFilter(lookup_expr="iexact", label=_("job state"))
    client = django_filters.CharFilter(lookup_expr="iexact", label=_("client"))
    policy = django_filters.CharFilter(lookup_expr="iexact", label=_("policy"))
    schedule = django_filters.CharFilter(lookup_expr="iexact", label=_("schedule"))
    job_type = django_filters.CharFilter(lookup_expr="iexact", label=_("job type"))
    source = django_filters.MultipleChoiceFilter(choices=JobSource.choices, label=_("source"))
    incident = django_filters.NumberFilter(field_name="incident_id", label=_("incident"))
    since = django_filters.IsoDateTimeFilter(field_name="ended_at", lookup_expr="gte", label=_("ended at or after"))
    until = django_filters.IsoDateTimeFilter(field_name="ended_at", lookup_expr="lte", label=_("ended at or before"))
    ordering = django_filters.OrderingFilter(
        fields=(("ended_at", "ended_at"), ("job_id", "job_id"), ("status", "status"), ("ingested_at", "ingested_at")),
        label=_("ordering"),
    )

    class Meta:
        model = BackupJob
        fields = []

    def filter_failed(self, queryset, name, value):
        if value is None:
            return queryset
        return queryset.filter(status__gte=2) if value else queryset.filter(Q(status__lt=2) | Q(status__isnull=True))

    @property
    def qs(self):
        queryset = super().qs
        # A unique tie-breaker keeps pages from repeating or skipping jobs with equal sort keys.
        ordering = list(queryset.query.order_by)
        if ordering and "id" not in {field.lstrip("-") for field in ordering}:
            queryset = queryset.order_by(*ordering, "-id")
        return queryset


class CustomerFilterSet(django_filters.FilterSet):
    tier = django_filters.MultipleChoiceFilter(choices=Tier.choices, label=_("tier"))
    is_active = django_filters.BooleanFilter(label=_("active"))
    q = django_filters.CharFilter(method="filter_q", label=_("search"), help_text=_("Part of the code or name"))

    class Meta:
        model = Customer
        fields = []

    def filter_q(self, queryset, name, value):
        value = value.strip()
        return queryset.filter(Q(code__icontains=value) | Q(name__icontains=value)) if value else queryset


class ServerFilterSet(django_filters.FilterSet):
    customer = django_filters.CharFilter(field_name="customer__code", lookup_expr="iexact", label=_("customer"))
    hostname = django_filters.CharFilter(lookup_expr="icontains", label=_("host name"))
    is_active = django_filters.BooleanFilter(label=_("active"))
    poll_enabled = django_filters.BooleanFilter(label=_("polled"))

    class Meta:
        model = BackupServer
        fields = []
