from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from incidents.models import BackupServer, Customer
from incidents.netbackup import MAX_PAGE_LIMIT
from incidents.polling import poll_server, pollable_servers
from incidents.tasks import ensure_poll_chain


def page_limit(value: str) -> int:
    number = int(value)
    if not 1 <= number <= MAX_PAGE_LIMIT:
        raise ValueError(value)
    return number


class Command(BaseCommand):
    @property
    def help(self):
        return _(
            "Poll NetBackup primary servers' REST API for failed jobs, store them (idempotently) and print a line "
            "per server. Without options every poll-enabled server is polled; --server polls that server even when "
            "its periodic polling is off. --schedule instead makes sure the periodic poll is queued for the worker."
        )

    def add_arguments(self, parser):
        parser.add_argument("--server", metavar="HOSTNAME", help=_("poll only this server (its host name)"))
        parser.add_argument("--customer", metavar="CODE", help=_("poll only this customer's servers"))
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help=_("fetch and count the jobs, store nothing, move no watermark"),
        )
        parser.add_argument(
            "--page-limit",
            type=page_limit,
            metavar="N",
            help=_("jobs per page, 1-100 (default: the NETBACKUP_POLL_PAGE_LIMIT setting or 100)"),
        )
        parser.add_argument(
            "--schedule",
            action="store_true",
            help=_("queue the periodic poll for the task worker unless it is queued already, then exit"),
        )

    def handle(self, *args, server, customer, dry_run, page_limit, schedule, **options):
        if schedule:
            self._schedule()
            return
        servers = self._select(server, customer)
        if not servers:
            self.stdout.write(_("No server has polling enabled; nothing to do."))
            return
        counts = {"ok": 0, "failed": 0, "skipped": 0}
        for backup_server in servers:
            result = poll_server(backup_server, dry_run=dry_run, page_limit=page_limit)
            counts[result.outcome] += 1
            if result.error:
                self.stderr.write(result.summary())
            else:
                self.stdout.write(result.summary())
            for rejection in result.rejected[:20]:
                self.stderr.write(
                    _("  rejected %(where)s: %(reason)s")
                    % {
                        "where": rejection.get("location") or rejection.get("index", "?"),
                        "reason": rejection.get("reason", ""),
                    }
                )
        self.stdout.write(
            _("Polled %(total)d server(s): %(ok)d ok, %(failed)d failed, %(skipped)d skipped.")
            % {"total": len(servers), **counts}
        )
        if counts["failed"]:
            raise CommandError(
                _("%(failed)d of %(total)d server(s) failed; see last_poll_error on each")
                % {"failed": counts["failed"], "total": len(servers)}
            )

    def _select(self, hostname, customer_code) -> list[BackupServer]:
        customer = None
        if customer_code:
            try:
                customer = Customer.objects.get(code__iexact=customer_code)
            except Customer.DoesNotExist:
                raise CommandError(_("No customer with code %(code)r") % {"code": customer_code})
        if hostname:
            servers = BackupServer.objects.filter(hostname__iexact=hostname).select_related("customer")
            if customer is not None:
                servers = servers.filter(customer=customer)
            servers = list(servers)
            if not servers:
                raise CommandError(_("No server with host name %(host)r") % {"host": hostname})
            if len(servers) > 1:
                raise CommandError(
                    _("%(host)r belongs to several customers (%(codes)s); add --customer")
                    % {"host": hostname, "codes": ", ".join(s.customer.code for s in servers)}
                )
            return servers
        servers = pollable_servers()
        if customer is not None:
            servers = servers.filter(customer=customer)
            if not servers.exists():
                raise CommandError(_("Customer %(code)s has no poll-enabled server") % {"code": customer.code})
        return list(servers)

    def _schedule(self):
        chain = ensure_poll_chain()
        if chain is None:
            raise CommandError(
                _("The configured task backend cannot schedule work for later; use django_tasks_db.DatabaseBackend")
            )
        if chain.created:
            message = _("Periodic NetBackup poll queued for %(when)s (task %(id)s).")
        else:
            message = _("Periodic NetBackup poll already queued for %(when)s (task %(id)s).")
        when = chain.run_after.isoformat() if chain.run_after else "-"
        self.stdout.write(message % {"when": when, "id": chain.task_id})
