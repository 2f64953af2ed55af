from django.db import models
from django.utils.translation import gettext_lazy as _


class Tier(models.TextChoices):
    GOLD = "gold", _("Gold")
    SILVER = "silver", _("Silver")
    BRONZE = "bronze", _("Bronze")


class JobSource(models.TextChoices):
    API = "api", _("API (our JSON)")
    NETBACKUP_JSON = "netbackup_json", _("NetBackup JSON:API body")
    POLL = "poll", _("NetBackup REST poll")
    BPDBJOBS = "bpdbjobs", _("bpdbjobs output")
    CSV = "csv", _("CSV report")
    XLSX = "xlsx", _("Excel report")


class IncidentState(models.TextChoices):
    OPEN = "open", _("Open")
    DIAGNOSED = "diagnosed", _("Diagnosed")
    AWAITING_APPROVAL = "awaiting_approval", _("Awaiting approval")
    RECOVERING = "recovering", _("Recovering")
    RESOLVED = "resolved", _("Resolved")
    ESCALATED = "escalated", _("Escalated")
    CLOSED = "closed", _("Closed")

    @classmethod
    def active(cls) -> list[str]:
        """States in which the incident still absorbs repeat failures of its fingerprint."""
        return [cls.OPEN, cls.DIAGNOSED, cls.AWAITING_APPROVAL, cls.RECOVERING, cls.ESCALATED]

    @property
    def is_active(self) -> bool:
        return self in IncidentState.active()


# Allowed transitions; anything else raises InvalidTransition (the API answers 409).
TRANSITIONS: dict[str, set[str]] = {
    IncidentState.OPEN: {
        IncidentState.DIAGNOSED,
        IncidentState.RESOLVED,
        IncidentState.ESCALATED,
        IncidentState.CLOSED,
    },
    IncidentState.DIAGNOSED: {
        IncidentState.AWAITING_APPROVAL,
        IncidentState.RECOVERING,
        IncidentState.RESOLVED,
        IncidentState.ESCALATED,
        IncidentState.CLOSED,
    },
    IncidentState.AWAITING_APPROVAL: {
        IncidentState.DIAGNOSED,
        IncidentState.RECOVERING,
        IncidentState.RESOLVED,
        IncidentState.ESCALATED,
        IncidentState.CLOSED,
    },
    IncidentState.RECOVERING: {IncidentState.RESOLVED, IncidentState.ESCALATED, IncidentState.DIAGNOSED},
    IncidentState.ESCALATED: {IncidentState.RESOLVED, IncidentState.CLOSED, IncidentState.DIAGNOSED},
    IncidentState.RESOLVED: {IncidentState.OPEN, IncidentState.CLOSED},
    IncidentState.CLOSED: set(),
}


class ResolutionMethod(models.TextChoices):
    AUTOMATIC = "automatic", _("Automatic recovery")
    APPROVED_FIX = "approved_fix", _("Approved fix")
    MANUAL = "manual", _("Manual by an engineer")
    VENDOR = "vendor", _("On-site / vendor")
    SELF_HEALED = "self_healed", _("Next job succeeded")
    NOT_NEEDED = "not_needed", _("Nothing to fix")


class CustomerRole(models.TextChoices):
    ENGINEER = "engineer", _("Engineer")
    VIEWER = "viewer", _("Viewer")
    INTEGRATION = "integration", _("Integration")
