"""Serializers for jobs, customers, servers and the ingestion answers."""

import re

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from ..choices import Tier
from ..models import BackupJob, BackupServer, Customer
from ..parsers import FORMATS

HOSTNAME_RE = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,251}[A-Za-z0-9_])?$")


class JobSerializer(serializers.ModelSerializer):
    customer = serializers.CharField(source="server.customer.code", read_only=True)
    server = serializers.CharField(source="server.hostname", read_only=True)
    incident = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = BackupJob
        fields = [
            "id",
            "customer",
            "server",
            "job_id",
            "parent_job_id",
            "job_type",
            "state",
            "status",
            "client",
            "policy",
            "schedule",
            "policy_type",
            "schedule_type",
            "started_at",
            "ended_at",
            "last_update_time",
            "kilobytes",
            "files",
            "try_count",
            "source",
            "incident",
            "ingested_at",
            "updated_at",
        ]
        read_only_fields = fields


class JobDetailSerializer(JobSerializer):
    class Meta(JobSerializer.Meta):
        fields = [*JobSerializer.Meta.fields, "try_log", "raw"]
        read_only_fields = fields


class RejectionSerializer(serializers.Serializer):
    location = serializers.CharField(help_text=_('"item 3", "line 12", "row 5"'))
    index = serializers.IntegerField(required=False, help_text=_("Position in a JSON list or data array"))
    line = serializers.IntegerField(required=False, help_text=_("Line of a text file or row of a sheet"))
    field = serializers.CharField(help_text=_("The field or column at fault"))
    reason = serializers.CharField()


class IngestResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    incidents_opened = serializers.IntegerField()
    incidents_updated = serializers.IntegerField()
    incidents_reopened = serializers.IntegerField()
    rejected = RejectionSerializer(many=True)


class ImportRequestSerializer(serializers.Serializer):
    file = serializers.FileField()
    customer = serializers.CharField(help_text=_("Customer code"))
    server = serializers.CharField(help_text=_("Host name of the customer's primary server"))
    format = serializers.ChoiceField(
        choices=FORMATS, required=False, allow_blank=True, help_text=_("Detected from the content when omitted")
    )

    def validate(self, attrs):
        customer = Customer.objects.filter(code__iexact=attrs["customer"].strip()).first()
        if customer is None:
            raise serializers.ValidationError(
                {"customer": [_("No customer with the code {code!r}.").format(code=attrs["customer"])]},
                code="does_not_exist",
            )
        server = customer.servers.filter(hostname__iexact=attrs["server"].strip()).first()
        if server is None:
            raise serializers.ValidationError(
                {
                    "server": [
                        _("{customer} has no server {host!r}.").format(customer=customer.code, host=attrs["server"])
                    ]
                },
                code="does_not_exist",
            )
        attrs["customer"], attrs["server"] = customer, server
        return attrs


class CustomerSerializer(serializers.ModelSerializer):
    tier = serializers.ChoiceField(choices=Tier.choices, required=False)

    class Meta:
        model = Customer
        fields = [
            "id",
            "code",
            "name",
            "tier",
            "sla_hours_level1",
            "sla_hours_level2",
            "sla_hours_level3",
            "contacts",
            "report_warnings",
            "live_execution_enabled",
            "maintenance_windows",
            "is_active",
            "created_at",
            "updated_at",
        ]
        # Live execution is switched on by an administrator in the admin, never through the API.
        read_only_fields = ["id", "live_execution_enabled", "created_at", "updated_at"]

    def validate_code(self, value):
        value = value.strip()
        clash = Customer.objects.filter(code__iexact=value)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError(_("A customer with this code exists already."), code="unique")
        return value

    def validate_contacts(self, value):
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise serializers.ValidationError(_('A list of {"name", "email", "phone", "role"} objects.'))
        return value

    def validate(self, attrs):
        probe = Customer(**{**self._current(), **attrs})
        try:
            probe.clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        return attrs

    def _current(self) -> dict:
        if self.instance is None:
            return {}
        return {name: getattr(self.instance, name) for name in ("code", "name", "maintenance_windows")}


class ServerSerializer(serializers.ModelSerializer):
    customer = serializers.SlugRelatedField(slug_field="code", queryset=Customer.objects.all())
    # Write-only: the key never leaves the server once stored (has_api_key tells whether one is set).
    api_key = serializers.CharField(
        write_only=True, required=False, allow_blank=True, max_length=512, style={"input_type": "password"}
    )
    ca_certificate = serializers.CharField(write_only=True, required=False, allow_blank=True)
    has_api_key = serializers.BooleanField(read_only=True)
    has_ca_certificate = serializers.SerializerMethodField()

    class Meta:
        model = BackupServer
        fields = [
            "id",
            "customer",
            "hostname",
            "netbackup_version",
            "api_base_url",
            "api_version",
            "api_key",
            "has_api_key",
            "ca_certificate",
            "has_ca_certificate",
            "poll_enabled",
            "poll_watermark",
            "last_polled_at",
            "last_poll_error",
            "is_active",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "id",
            "api_version",
            "poll_watermark",
            "last_polled_at",
            "last_poll_error",
            "created_at",
            "updated_at",
        ]
        # The (customer, hostname) rule is checked in validate() so the error names the host name.
        validators = []

    def get_has_ca_certificate(self, obj) -> bool:
        return bool(obj.ca_certificate)

    def validate_hostname(self, value):
        value = value.strip()
        if not HOSTNAME_RE.match(value):
            raise serializers.ValidationError(_("Not a valid host name."))
        return value

    def validate_ca_certificate(self, value):
        if value and "-----BEGIN CERTIFICATE-----" not in value:
            raise serializers.ValidationError(_("Expected a PEM certificate (-----BEGIN CERTIFICATE-----)."))
        return value

    def validate(self, attrs):
        customer = attrs.get("customer", getattr(self.instance, "customer", None))
        hostname = attrs.get("hostname", getattr(self.instance, "hostname", ""))
        clash = BackupServer.objects.annotate(host=Lower("hostname")).filter(customer=customer, host=hostname.lower())
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError(
                {
                    "hostname": [
                        _("{customer} has a server with this host name already.").format(customer=customer.code)
                    ]
                },
                code="unique",
            )
        return attrs
