from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils.translation import gettext as _
from tqdm import tqdm

from errorcodes.choices import Family
from errorcodes.classifier import reset_classifier
from errorcodes.models import StatusCode
from errorcodes.services import reclassify


class Command(BaseCommand):
    @property
    def help(self):
        # A property, not a lazy string: argparse needs a real str, and the language is only known at run time.
        return _(
            "Re-run the resolution-level classifier over the knowledge base. By default only codes whose level "
            "came from the classifier are re-classified; --all also re-classifies levels given by an import. "
            "A curator's level is never changed."
        )

    def add_arguments(self, parser):
        parser.add_argument(
            "--all",
            action="store_true",
            dest="include_imported",
            help=_("also re-classify codes whose level came from an import (curator levels always stay)"),
        )
        parser.add_argument("--family", help=_("only this family (e.g. netbackup, media_manager, robotic_error)"))
        parser.add_argument("--dry-run", action="store_true", help=_("report what would change, save nothing"))

    def handle(self, *args, include_imported, family, dry_run, verbosity, **options):
        codes = StatusCode.objects.all()
        if family:
            normalised = Family.normalise(family)
            if normalised is None:
                raise CommandError(
                    _("--family: unknown family %(family)r; choose one of: %(choices)s")
                    % {"family": family, "choices": ", ".join(Family.values)}
                )
            codes = codes.of_family(normalised)
        total = codes.count()
        # Curated rows changed since the cached classifier was built must count.
        reset_classifier()
        with (
            transaction.atomic(),
            tqdm(
                total=total,
                desc=_("classifying"),
                unit=_("code"),
                disable=verbosity == 0 or None,
                mininterval=0.5,
            ) as bar,
        ):
            counts = reclassify(
                _ticking(codes.order_by("family", "code").iterator(chunk_size=2000), bar),
                include_imported=include_imported,
            )
            if dry_run:
                transaction.set_rollback(True)
        summary = _(
            "changed %(changed)d, unchanged %(unchanged)d, kept curator %(curator)d, kept import %(imported)d"
        ) % {
            "changed": counts["changed"],
            "unchanged": counts["unchanged"],
            "curator": counts["skipped_curator"],
            "imported": counts["skipped_import"],
        }
        if dry_run:
            summary += " " + _("(dry run: nothing saved)")
        self.stdout.write(summary)


def _ticking(codes, bar):
    for code in codes:
        yield code
        bar.update(1)
