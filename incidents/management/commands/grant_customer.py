from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from incidents import permissions
from incidents.choices import CustomerRole
from incidents.models import Customer


class Command(BaseCommand):
    help = (
        "Grant USERNAME a role on one customer: engineer (see and act), viewer (see) or "
        "integration (see and ingest jobs). Adds the user to the role's group as well."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("customer_code")
        parser.add_argument("--role", required=True, choices=CustomerRole.values)
        parser.add_argument("--revoke", action="store_true", help="take the role's permissions away instead")

    def handle(self, *args, username, customer_code, role, revoke, **options):
        try:
            user = get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"no user named {username!r}")
        try:
            customer = Customer.objects.get(code__iexact=customer_code)
        except Customer.DoesNotExist:
            raise CommandError(f"no customer with code {customer_code!r}")
        if revoke:
            permissions.revoke(user, customer, role)
            self.stdout.write(f"revoked {role} on {customer.code} from {username}")
            return
        perms = permissions.grant(user, customer, role)
        self.stdout.write(f"granted {role} on {customer.code} to {username} ({', '.join(perms)})")
