import contextlib
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils.translation import gettext as _
from tqdm import tqdm

from incidents.models import Customer
from incidents.parsers import FORMATS, parse_file
from incidents.services import BATCH_SIZE, IngestResult, ingest_jobs


class Command(BaseCommand):
    help = _(
        "Ingest a job report for one customer's server: bpdbjobs -report -all_columns output, a CSV or Excel "
        "daily report (Korean or English headers) or a JSON file. Bad lines are reported and skipped; "
        "repeated jobs change nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help=_("The report file, or - for standard input"))
        parser.add_argument("--customer", required=True, help=_("Customer code"))
        parser.add_argument("--server", required=True, help=_("Host name of the customer's primary server"))
        parser.add_argument("--format", choices=FORMATS, help=_("Detected from the content when omitted"))
        parser.add_argument(
            "--dry-run", action="store_true", help=_("Parse and count everything, then roll back: nothing is saved")
        )

    def handle(self, *args, **options):
        customer = Customer.objects.filter(code__iexact=options["customer"]).first()
        if customer is None:
            raise CommandError(_("--customer: no customer with the code {code!r}").format(code=options["customer"]))
        server = customer.servers.filter(hostname__iexact=options["server"]).first()
        if server is None:
            raise CommandError(
                _("--server: {customer} has no server {host!r}").format(customer=customer.code, host=options["server"])
            )
        data = self._read(options["path"])
        parsed = parse_file(data, fmt=options["format"], filename=options["path"], customer=customer, server=server)

        result = IngestResult(rejected=list(parsed.rejected))
        batches = [parsed.jobs[start : start + BATCH_SIZE] for start in range(0, len(parsed.jobs), BATCH_SIZE)]
        progress = tqdm(total=len(parsed.jobs), unit=_("jobs"), disable=not sys.stderr.isatty() or len(batches) < 2)
        # A real run commits batch by batch (ingest_jobs makes each one a transaction); a dry run
        # wraps them all in one that is rolled back after counting.
        scope = transaction.atomic() if options["dry_run"] else contextlib.nullcontext()
        with scope, progress:
            for batch in batches:
                result.add(ingest_jobs(server=server, jobs=batch, source=parsed.source))
                progress.update(len(batch))
            if options["dry_run"]:
                transaction.set_rollback(True)
        result.sort_rejected()

        for entry in result.rejected:
            self.stderr.write(f"{entry['location']}: {entry['reason']}")
        summary = _("{format}: {summary}").format(format=parsed.format, summary=result.summary())
        if options["dry_run"]:
            summary += " " + _("(dry run: nothing saved)")
        self.stdout.write(summary)
        if not result.accepted:
            raise CommandError(_("No job was accepted."))

    def _read(self, path: str) -> bytes:
        if path == "-":
            return sys.stdin.buffer.read()
        try:
            return Path(path).read_bytes()
        except OSError as exc:
            raise CommandError(
                _("{path}: cannot read the file ({error})").format(path=path, error=exc.strerror)
            ) from None
