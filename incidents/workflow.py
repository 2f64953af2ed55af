"""What people do to incidents: acknowledge, assign, resolve, escalate, close.

Each operation locks the row, checks the transition, and writes an IncidentEvent.
Invalid transitions raise InvalidTransition (the API answers 409).
"""

from django.db import transaction
from django.utils import timezone

from .choices import IncidentState, ResolutionMethod
from .models import Incident, IncidentEvent, InvalidTransition


def acknowledge(incident: Incident, *, user, reason: str) -> Incident:
    """An engineer takes the incident: it is diagnosed and, if nobody has it, assigned to them."""
    with transaction.atomic():
        locked = Incident.objects.select_for_update().get(pk=incident.pk)
        if locked.state not in (IncidentState.OPEN, IncidentState.DIAGNOSED) or locked.acknowledged_at:
            raise InvalidTransition(locked.state, "acknowledged")
        before = {"state": locked.state, "assignee": locked.assignee_id, "acknowledged_at": None}
        locked.state = IncidentState.DIAGNOSED
        locked.acknowledged_at = timezone.now()
        if locked.assignee_id is None:
            locked.assignee = user
        locked.save(update_fields=["state", "acknowledged_at", "assignee", "updated_at"])
        IncidentEvent.record(
            locked,
            "acknowledged",
            actor=user,
            before=before,
            after={
                "state": locked.state,
                "assignee": locked.assignee_id,
                "acknowledged_at": locked.acknowledged_at.isoformat(),
            },
            reason=reason,
        )
    incident.refresh_from_db()
    return incident


def resolve(incident: Incident, *, user, reason: str, resolution: str = "", method: str = "") -> Incident:
    return incident.transition(
        IncidentState.RESOLVED,
        actor=user,
        reason=reason,
        verb="resolved",
        resolution=resolution or reason,
        resolution_method=method or ResolutionMethod.MANUAL,
    )


def escalate(incident: Incident, *, user, reason: str) -> Incident:
    return incident.transition(IncidentState.ESCALATED, actor=user, reason=reason, verb="escalated")


def close(incident: Incident, *, user, reason: str) -> Incident:
    return incident.transition(IncidentState.CLOSED, actor=user, reason=reason, verb="closed")


def update(incident: Incident, *, user, reason: str = "", **changes) -> Incident:
    """Change assignee or notes, recording what changed."""
    with transaction.atomic():
        locked = Incident.objects.select_for_update().get(pk=incident.pk)
        before, after = {}, {}
        for key, value in changes.items():
            old = getattr(locked, key)
            if old != value:
                before[key] = getattr(locked, f"{key}_id") if key == "assignee" else old
                after[key] = value.pk if key == "assignee" and value is not None else value
                setattr(locked, key, value)
        if not after:
            return incident
        locked.save(update_fields=[*after.keys(), "updated_at"])
        verb = "assigned" if set(after) == {"assignee"} else "updated"
        IncidentEvent.record(locked, verb, actor=user, before=before, after=after, reason=reason)
    incident.refresh_from_db()
    return incident
