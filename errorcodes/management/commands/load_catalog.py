import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from errorcodes.choices import LevelSource
from errorcodes.services import CodeRecord, upsert_status_codes

CATALOG = Path(__file__).resolve().parents[2] / "catalog" / "status_codes.json"


class Command(BaseCommand):
    help = (
        "Load the built-in catalogue of NetBackup status codes shipped with V-BIP. Idempotent: "
        "existing codes keep curator decisions; missing codes are added."
    )

    def add_arguments(self, parser):
        parser.add_argument("--path", default=str(CATALOG), help="catalogue file (default: the shipped one)")
        parser.add_argument("--dry-run", action="store_true", help="report what would change, save nothing")

    def handle(self, *args, path, dry_run, **options):
        try:
            entries = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CommandError(f"catalogue not found: {path}")
        except json.JSONDecodeError as exc:
            raise CommandError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}")
        records = [
            CodeRecord(
                family=entry.get("family", ""),
                code=entry.get("code"),
                message=entry.get("message", ""),
                explanation=entry.get("explanation", ""),
                recommended_action=entry.get("recommended_action", ""),
                category=entry.get("category"),
                severity=entry.get("severity"),
                level=entry.get("level"),
                level_reason=entry.get("level_reason") and f"Curated in the V-BIP catalogue: {entry['level_reason']}",
                typical_resolution_minutes=entry.get("typical_resolution_minutes"),
                source="V-BIP catalogue",
                location=f"entry {index}",
            )
            for index, entry in enumerate(entries)
        ]
        result = upsert_status_codes(
            records, dry_run=dry_run, level_source=LevelSource.CURATOR, change_reason="built-in catalogue"
        )
        for rejection in result.rejected:
            self.stderr.write(f"rejected {rejection}")
        self.stdout.write(f"catalogue: {result.summary()}")
        if result.rejected:
            raise CommandError(f"{len(result.rejected)} catalogue entries are invalid")
