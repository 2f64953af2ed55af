"""Building incidents directly, for tests of what people do with them."""

from itertools import count

from django.utils import timezone

from incidents.models import BackupServer, Customer, Incident, make_fingerprint

_seq = count(1)


def customer_with_server(code="ACME", hostname=None, **extra):
    customer = Customer.objects.create(code=code, name=f"{code} Corp", **extra)
    server = BackupServer.objects.create(customer=customer, hostname=hostname or f"nbu01.{code.lower()}.local")
    return customer, server


def make_incident(customer, server, **overrides) -> Incident:
    n = next(_seq)
    values = {
        "client": f"client{n}",
        "policy": "FS_Daily",
        "schedule": "Full",
        "family": "netbackup",
        "code": 58,
        "level": 1,
        "state": "diagnosed",
        "first_seen": timezone.now(),
        "last_seen": timezone.now(),
    }
    values.update(overrides)
    values["fingerprint"] = make_fingerprint(
        customer.pk, server.pk, values["client"], values["policy"], values["schedule"], values["family"], values["code"]
    )
    return Incident.objects.create(customer=customer, server=server, **values)
