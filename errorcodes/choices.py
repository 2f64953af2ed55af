from django.db import models
from django.utils.translation import gettext_lazy as _


class Family(models.TextChoices):
    """Families of NetBackup status codes; the same number means different things per family."""

    NETBACKUP = "netbackup", _("NetBackup status code")
    MEDIA_MANAGER = "media_manager", _("Media Manager status code")
    DEVICE_CONFIG = "device_config", _("Device configuration status code")
    DEVICE_MANAGEMENT = "device_management", _("Device management status code")
    ROBOTIC = "robotic", _("Robotic status code")
    ROBOTIC_ERROR = "robotic_error", _("Robotic error code")

    @classmethod
    def normalise(cls, value) -> str | None:
        """Accept the slug, the label or common spellings ('Media Manager', 'media-manager')."""
        if value is None:
            return None
        text = str(value).strip().lower().replace("-", "_").replace(" ", "_")
        if not text:
            return None
        aliases = {
            "nbu": cls.NETBACKUP,
            "netbackup_status": cls.NETBACKUP,
            "netbackup_status_code": cls.NETBACKUP,
            "status": cls.NETBACKUP,
            "mm": cls.MEDIA_MANAGER,
            "media_manager_status_code": cls.MEDIA_MANAGER,
            "device_configuration": cls.DEVICE_CONFIG,
            "device_configuration_status_code": cls.DEVICE_CONFIG,
            "device_management_status_code": cls.DEVICE_MANAGEMENT,
            "robotic_status": cls.ROBOTIC,
            "robotic_status_code": cls.ROBOTIC,
            "robotic_error_code": cls.ROBOTIC_ERROR,
            "robot_error": cls.ROBOTIC_ERROR,
        }
        if text in cls.values:
            return text
        if text in aliases:
            return aliases[text].value
        return None


class Category(models.TextChoices):
    NETWORK = "network", _("Network")
    CLIENT = "client", _("Client")
    MEDIA = "media", _("Media")
    DISK_STORAGE = "disk_storage", _("Disk storage")
    TAPE_HARDWARE = "tape_hardware", _("Tape hardware")
    POLICY_CONFIG = "policy_config", _("Policy and configuration")
    CATALOG = "catalog", _("Catalog")
    DATABASE_AGENT = "database_agent", _("Database agent")
    VIRTUALIZATION = "virtualization", _("Virtualization")
    CLOUD = "cloud", _("Cloud")
    SECURITY_CERTIFICATES = "security_certificates", _("Security and certificates")
    DEDUPLICATION = "deduplication", _("Deduplication")
    REPLICATION_SLP = "replication_slp", _("Replication and SLP")
    KUBERNETES = "kubernetes", _("Kubernetes")
    INFORMATIONAL = "informational", _("Informational")
    OTHER = "other", _("Other")


class Severity(models.TextChoices):
    INFO = "info", _("Info")
    WARNING = "warning", _("Warning")
    ERROR = "error", _("Error")
    CRITICAL = "critical", _("Critical")


class Level(models.IntegerChoices):
    """Resolution level: what happens to an incident with this code (see resolution-levels.md)."""

    INFORMATIONAL = 0, _("0 · Informational")
    AUTOMATIC = 1, _("1 · Automatic")
    APPROVAL = 2, _("2 · Engineer approval")
    ONSITE = 3, _("3 · On-site / vendor")


class LevelSource(models.TextChoices):
    CLASSIFIER = "classifier", _("Classifier")
    CURATOR = "curator", _("Curator")
    IMPORT = "import", _("Import")
