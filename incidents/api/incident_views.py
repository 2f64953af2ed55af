from django.db.models import Avg, Count, F, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from incidents import permissions, workflow
from incidents.choices import IncidentState
from incidents.models import Incident, InvalidTransition
from vbip_project.api import error_response

from .incident_filters import IncidentFilterSet
from .incident_serializers import (
    IncidentDetailSerializer,
    IncidentSerializer,
    IncidentUpdateSerializer,
    TransitionSerializer,
)


def conflict(exc: InvalidTransition) -> Response:
    return error_response(
        "invalid_transition",
        exc.message(),
        status.HTTP_409_CONFLICT,
        state=str(exc.current),
    )


class IncidentViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin, viewsets.GenericViewSet
):
    """Incidents of the customers the caller may see; engineers of the customer act on them."""

    filterset_class = IncidentFilterSet
    http_method_names = ["get", "patch", "post", "head", "options"]
    ordering = ["-last_seen", "-id"]

    def get_queryset(self):
        queryset = Incident.objects.select_related("customer", "server", "status_code", "assignee")
        if self.action == "retrieve":
            queryset = queryset.prefetch_related("events__actor", "events__origin")
        return permissions.restrict(queryset, self.request.user)

    def get_serializer_class(self):
        if self.action == "retrieve":
            return IncidentDetailSerializer
        if self.action == "partial_update":
            return IncidentUpdateSerializer
        if self.action in ("acknowledge", "resolve", "close", "escalate"):
            return TransitionSerializer
        return IncidentSerializer

    def _require_work(self, incident):
        if not permissions.can(self.request.user, permissions.WORK, incident.customer):
            raise PermissionDenied(_("You may see this customer's incidents but not act on them."))

    @extend_schema(request=IncidentUpdateSerializer, responses=IncidentDetailSerializer)
    def partial_update(self, request, *args, **kwargs):
        incident = self.get_object()
        self._require_work(incident)
        serializer = IncidentUpdateSerializer(incident, data=request.data, partial=True, context={"request": request})
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        reason = data.pop("reason", "")
        workflow.update(incident, user=request.user, reason=reason, **data)
        return Response(IncidentDetailSerializer(self.get_queryset().get(pk=incident.pk)).data)

    def update(self, request, *args, **kwargs):
        if not kwargs.get("partial"):
            return error_response("method_not_allowed", _("Use PATCH."), status.HTTP_405_METHOD_NOT_ALLOWED)
        return super().update(request, *args, **kwargs)

    def _transition(self, request, operation, **extra_fields):
        incident = self.get_object()
        self._require_work(incident)
        serializer = TransitionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        kwargs = {"user": request.user, "reason": serializer.validated_data["reason"]}
        for name, target in extra_fields.items():
            if name in serializer.validated_data:
                kwargs[target] = serializer.validated_data[name]
        try:
            operation(incident, **kwargs)
        except InvalidTransition as exc:
            return conflict(exc)
        return Response(IncidentDetailSerializer(self.get_queryset().get(pk=incident.pk)).data)

    @extend_schema(
        request=TransitionSerializer,
        responses={200: IncidentDetailSerializer, 409: OpenApiResponse(description="Invalid transition")},
    )
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        return self._transition(request, workflow.acknowledge)

    @extend_schema(
        request=TransitionSerializer,
        responses={200: IncidentDetailSerializer, 409: OpenApiResponse(description="Invalid transition")},
    )
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        return self._transition(request, workflow.resolve, resolution="resolution", resolution_method="method")

    @extend_schema(
        request=TransitionSerializer,
        responses={200: IncidentDetailSerializer, 409: OpenApiResponse(description="Invalid transition")},
    )
    @action(detail=True, methods=["post"])
    def close(self, request, pk=None):
        return self._transition(request, workflow.close)

    @extend_schema(
        request=TransitionSerializer,
        responses={200: IncidentDetailSerializer, 409: OpenApiResponse(description="Invalid transition")},
    )
    @action(detail=True, methods=["post"])
    def escalate(self, request, pk=None):
        return self._transition(request, workflow.escalate)

    @extend_schema(responses={200: OpenApiResponse(description="Similar past incidents, same code first")})
    @action(detail=True, methods=["get"])
    def similar(self, request, pk=None):
        incident = self.get_object()
        from incidents.diagnosis import similar_incidents

        evidence = incident.diagnosis.get("evidence") if isinstance(incident.diagnosis, dict) else None
        text = "\n".join(evidence) if isinstance(evidence, list) else ""
        raw_limit = str(request.query_params.get("limit", "5"))
        limit = min(max(int(raw_limit), 1), 50) if raw_limit.isdigit() else 5
        results = similar_incidents(
            family=incident.family,
            code=incident.code,
            text=text,
            customer=incident.customer,
            exclude_incident_id=incident.pk,
            limit=limit,
            user=request.user,
        )
        return Response({"incident": incident.pk, "results": results})

    @extend_schema(responses={200: OpenApiResponse(description="Counts by state, level, customer and code")})
    @action(detail=False, methods=["get"])
    def statistics(self, request):
        queryset = self.filter_queryset(self.get_queryset())
        now = timezone.now()
        by_state = dict(queryset.values_list("state").annotate(n=Count("id")).order_by())
        by_level = {
            str(level if level is not None else "unknown"): n
            for level, n in queryset.values_list("level").annotate(n=Count("id")).order_by()
        }
        by_customer = dict(queryset.values_list("customer__code").annotate(n=Count("id")).order_by())
        top_codes = [
            {"family": row["family"], "code": row["code"], "incidents": row["n"], "occurrences": row["occ"]}
            for row in queryset.values("family", "code")
            .annotate(n=Count("id"), occ=Sum("occurrences"))
            .order_by("-n", "family", "code")[:10]
        ]
        resolved = queryset.filter(resolved_at__isnull=False)
        mttr = resolved.aggregate(avg=Avg(F("resolved_at") - F("first_seen")))["avg"]
        return Response(
            {
                "total": queryset.count(),
                "active": queryset.filter(state__in=IncidentState.active()).count(),
                "overdue": queryset.filter(state__in=IncidentState.active(), sla_due__lt=now).count(),
                "by_state": {state: by_state.get(state, 0) for state in IncidentState.values},
                "by_level": by_level,
                "by_customer": by_customer,
                "top_codes": top_codes,
                "recurring": queryset.filter(Q(recurrences__gt=0)).count(),
                "mean_time_to_resolve_hours": round(mttr.total_seconds() / 3600, 2) if mttr else None,
            }
        )
