from django.conf import settings
from django.db import connection
from django.db.utils import DatabaseError
from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view, authentication_classes, permission_classes, throttle_classes
from rest_framework.permissions import AllowAny
from rest_framework.response import Response


@extend_schema(
    responses=inline_serializer(
        "Health",
        {
            "status": serializers.CharField(),
            "database": serializers.CharField(),
            "version": serializers.CharField(),
            "time": serializers.DateTimeField(),
            "tasks": serializers.DictField(),
        },
    ),
    auth=[],
)
@api_view(["GET"])
@authentication_classes([])
@permission_classes([AllowAny])
@throttle_classes([])
def health(request):
    """Liveness and database reachability, for load balancers and monitoring."""
    body = {"status": "ok", "database": "ok", "version": settings.VBIP_VERSION, "time": timezone.now()}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        body.update(status="error", database="unreachable", error=exc.__class__.__name__)
        return Response(body, status=503)
    body["tasks"] = _task_queue()
    return Response(body)


def _task_queue() -> dict:
    """Queue depth and the age of the oldest task that is due: a growing age means no worker runs."""
    from django.db.models import Min
    from django_tasks_db.models import DBTaskResult

    now = timezone.now()
    due = DBTaskResult.objects.ready()
    oldest = due.aggregate(oldest=Min("enqueued_at"))["oldest"]
    return {
        "ready": due.count(),
        "running": DBTaskResult.objects.running().count(),
        "oldest_ready_age_seconds": round((now - oldest).total_seconds(), 1) if oldest else None,
    }
