import sys

from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError
from django.utils.translation import gettext as _
from tqdm import tqdm

from errorcodes.choices import Family
from errorcodes.importers import FORMATS, ImportFormatError, iter_parsed
from errorcodes.services import Rejection, upsert_status_codes


class Command(BaseCommand):
    @property
    def help(self):
        # A property, not a lazy string: argparse cannot format lazy proxies.
        return _(
            "Import NetBackup status codes from a JSON extraction of the Status Codes Reference Guide, "
            "a CSV sheet, the guide as PDF or its text export. Codes are matched by family and code, so "
            "running it again changes nothing; a curator's level and text are never overwritten; new and "
            "changed codes are classified. Invalid entries are listed (JSON: 'entry N', counted from 0; "
            "CSV and text: 'line N'; PDF: 'page N, line M') and the valid ones are still imported."
        )

    def add_arguments(self, parser):
        parser.add_argument("path", help=_("file to import"))
        parser.add_argument(
            "--family",
            default=Family.NETBACKUP,
            help=_(
                "family for entries that do not name their own (default: netbackup; also: %(choices)s). "
                "Headings in the guide ('Media Manager status code: 12') always set their family."
            )
            % {"choices": ", ".join(Family.values[1:])},
        )
        parser.add_argument(
            "--format",
            choices=FORMATS,
            help=_("input format; guessed from the file extension, then from its content, when not given"),
        )
        parser.add_argument("--dry-run", action="store_true", help=_("show what would change and save nothing"))
        parser.add_argument("--no-progress", action="store_true", help=_("do not draw progress bars"))

    def handle(self, *args, path, family, format, dry_run, no_progress, **options):
        if Family.normalise(family) is None:
            raise CommandError(
                _("unknown family %(family)r; choose one of: %(choices)s")
                % {"family": family, "choices": ", ".join(Family.values)}
            )
        # OutputWrapper appends a newline to every write, which breaks tqdm's redraws: give it
        # the underlying stream (call_command's stderr=... in tests, the terminal otherwise).
        bar_file = getattr(self.stderr, "_out", sys.stderr)

        records, rejections = [], []
        page_bar = None

        def on_page(done, total):
            nonlocal page_bar
            if page_bar is None:
                page_bar = tqdm(
                    total=total,
                    desc=_("reading pages"),
                    unit=_(" pages"),
                    file=bar_file,
                    disable=no_progress,
                    leave=False,
                )
            page_bar.update(1)

        try:
            with tqdm(desc=_("reading"), unit=_(" codes"), file=bar_file, disable=no_progress, leave=False) as bar:
                for item in iter_parsed(path, format=format, family=family, on_page=on_page):
                    if isinstance(item, Rejection):
                        rejections.append(item)
                    else:
                        records.append(item)
                    bar.update()
        except ImportFormatError as exc:
            raise CommandError(str(exc))
        finally:
            if page_bar is not None:
                page_bar.close()

        if not records:
            self._list_rejections(rejections)
            raise CommandError(
                _("no valid status codes in %(path)s (%(rejected)d rejected)")
                % {"path": path, "rejected": len(rejections)}
            )

        try:
            with tqdm(
                total=len(records),
                desc=_("classifying"),
                unit=_(" codes"),
                file=bar_file,
                disable=no_progress,
                leave=False,
            ) as bar:
                result = upsert_status_codes(
                    records,
                    dry_run=dry_run,
                    change_reason="import_status_codes",
                    progress=bar.update,
                    rejected=rejections,
                )
        except IntegrityError:
            # Another import created some of the same codes between our read and our write; the
            # whole batch was rolled back, and running again is safe because the import is idempotent.
            raise CommandError(
                _("another import saved some of these codes at the same time; nothing was saved, run again")
            )

        self._list_rejections(result.rejected)
        if dry_run:
            self.stdout.write(self.style.WARNING(_("Dry run: nothing was saved.")))
        self.stdout.write(
            _("created %(created)d, updated %(updated)d, unchanged %(unchanged)d, rejected %(rejected)d")
            % {
                "created": result.created,
                "updated": result.updated,
                "unchanged": result.unchanged,
                "rejected": len(result.rejected),
            }
        )

    def _list_rejections(self, rejections):
        for rejection in rejections:
            self.stdout.write(self.style.WARNING(_("rejected %(rejection)s") % {"rejection": rejection}))
