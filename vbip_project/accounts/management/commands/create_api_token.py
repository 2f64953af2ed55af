from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from vbip_project.accounts.models import ApiToken


class Command(BaseCommand):
    help = "Create an API token for USERNAME. The token is printed once, as the last word of the last line."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--read-only", action="store_true", help="the token may only read (GET)")
        parser.add_argument("--expires-days", type=int, default=None, help="the token expires after N days")
        parser.add_argument("--name", default="", help="a label to recognise the token by")

    def handle(self, *args, username, read_only, expires_days, name, **options):
        try:
            user = get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"no user named {username!r}")
        if not user.is_active:
            raise CommandError(f"user {username!r} is inactive")
        expires_at = None
        if expires_days is not None:
            if expires_days < 1:
                raise CommandError("--expires-days must be at least 1")
            expires_at = timezone.now() + timedelta(days=expires_days)
        token, raw = ApiToken.issue(user, name=name, read_only=read_only, expires_at=expires_at)
        scope = "read-only" if read_only else "read-write"
        expiry = f"expires {expires_at:%Y-%m-%d %H:%M %Z}" if expires_at else "never expires"
        self.stdout.write(
            f"Created {scope} token {token.prefix}… for {username} ({expiry}). Store it now; it is not shown again."
        )
        self.stdout.write(f"token: {raw}")
