"""Benchmark `manage.py import_status_codes` on a synthetic 10,000-code guide extraction.

    .venv/bin/python bench/import_bench.py                      # temporary SQLite file
    .venv/bin/python bench/import_bench.py --database-url postgres://postgres@127.0.0.1:5432/postgres

With PostgreSQL a fresh database (vbip_bench_<pid>) is created on that server and dropped
afterwards. The script migrates, loads the shipped catalogue (so the classifier has curated
examples), then times: parsing alone, classification alone, the first import (everything
created and classified), a re-import (everything unchanged), a revised guide (every
explanation changed: updated and classified again), and measures peak memory with tracemalloc
in a separate, untimed import into emptied tables. It prints figures only.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import textwrap
import time
import tracemalloc
from pathlib import Path

from benchdb import fresh_postgres

ROOT = Path(__file__).resolve().parents[1]

# Words that occur in real NetBackup status messages, recombined into messages that read
# like them without being any of them.
SUBJECTS = [
    "client",
    "media server",
    "master server",
    "storage unit",
    "disk pool",
    "volume pool",
    "tape drive",
    "robotic library",
    "policy",
    "schedule",
    "catalog image",
    "snapshot",
    "backup image",
    "database agent",
    "certificate",
    "host name",
    "socket",
    "network connection",
    "deduplication pool",
    "storage lifecycle policy",
    "cloud storage server",
    "virtual machine",
    "file list",
    "job",
    "license",
    "Kubernetes namespace",
    "bpcd daemon",
    "credentials",
    "SCSI device",
    "media ID",
]
PROBLEMS = [
    "could not be reached",
    "timed out",
    "is not available",
    "failed to respond",
    "was not found",
    "has expired",
    "is full",
    "write failed",
    "read failed",
    "is in use",
    "could not be allocated",
    "is not valid",
    "was cancelled by the operator",
    "partially completed",
    "was reset by peer",
    "access was denied",
    "position error",
    "could not be mounted",
    "configuration mismatch",
    "operation completed successfully",
]
QUALIFIERS = [
    "",
    "during backup",
    "during restore",
    "during duplication",
    "while writing the image",
    "after the retry limit",
    "on the media server",
    "in the requested pool",
    "for the selected client",
    "before the window closed",
]
CAUSES = [
    "The {s} did not answer before the timeout expired.",
    "A firewall or a routing change blocks the ports that NetBackup uses between hosts.",
    "The {s} ran out of space or of usable media while the job was active.",
    "The configuration in the policy does not match what the {s} reports.",
    "A hardware fault on the {s} stopped the operation.",
    "The operator stopped the job on purpose.",
    "The credentials stored for the {s} are no longer accepted.",
    "The catalog entry for the image is damaged or missing.",
    "The process on the remote host ended unexpectedly.",
    "Name resolution returned a different address for the {s}.",
]
ACTIONS = [
    "Verify that the {s} is up and that bpcd answers on the client.",
    "Check the job details in the Activity Monitor for the failing step.",
    "Rerun the job after the transient condition clears.",
    "Add media to the volume pool or free space on the disk pool.",
    "Review the policy attributes and correct the {s} settings.",
    "Replace the faulty drive or contact the hardware vendor.",
    "Renew the certificate and restart the affected services.",
    "Run bpclntcmd -pn from the client to test name resolution.",
    "Increase the client read timeout in the host properties.",
    "Consult the bptm and bpbrm debug logs on the media server.",
]
FAMILY_HEADINGS = {
    "netbackup": "NetBackup status code",
    "media_manager": "Media Manager status code",
    "device_config": "Device configuration status code",
    "device_management": "Device management status code",
    "robotic": "Robotic status code",
    "robotic_error": "Robotic error code",
}


def synthetic_extraction(count: int, seed: int = 7) -> dict:
    """A guide extraction shaped like the real tool's output: cut explanations, raw page lines."""
    rng = random.Random(seed)
    plan = [("media_manager", 200), ("device_config", 120), ("device_management", 120), ("robotic", 120)]
    plan.append(("robotic_error", 120))
    keys: list[tuple[str, int]] = []
    for family, size in plan:
        keys += [(family, code) for code in range(1, size + 1)]
    keys = keys[: count // 10]
    netbackup_codes = rng.sample(range(0, 14000), count - len(keys))
    keys = sorted([("netbackup", code) for code in netbackup_codes]) + keys

    entries = []
    page = 20
    for index, (family, code) in enumerate(keys):
        subject = rng.choice(SUBJECTS)
        qualifier = rng.choice(QUALIFIERS)
        message = " ".join(part for part in (subject, rng.choice(PROBLEMS), qualifier) if part)
        explanation = " ".join(rng.choice(CAUSES).format(s=subject) for _ in range(rng.randint(1, 4)))
        actions = [rng.choice(ACTIONS).format(s=rng.choice(SUBJECTS)) for _ in range(rng.randint(1, 4))]
        # The extractor stops the explanation at a line end, so the cut falls between words.
        cut = explanation.find(" ", rng.randint(40, max(41, len(explanation))))
        cut = len(explanation) if cut == -1 else cut
        raw = textwrap.wrap(explanation[cut:], 72)
        raw.append("Recommended Action: Do the following:" if len(actions) > 1 else f"Recommended Action: {actions[0]}")
        if len(actions) > 1:
            for action in actions:
                wrapped = textwrap.wrap(action, 70)
                raw += ["■ " + wrapped[0], *wrapped[1:]]
        if index % 3 == 2:
            raw += ["NetBackup status codes", str(page)]  # running footer and page number
            page += 1
        elif index + 1 < len(keys):
            next_family, next_code = keys[index + 1]
            raw += [f"{FAMILY_HEADINGS[next_family]}: {next_code}", "Message: (next entry on this page)"]
        entry = {
            "code": str(code),
            "message": message,
            "explanation": explanation[:cut],
            "raw_text": raw,
            "page": page,
            "source_file": "NetBackup_StatusCodes_Reference_Guide.pdf",
        }
        if family != "netbackup":
            entry["family"] = family
        entries.append(entry)
    return {"error_codes": entries}


def _maxrss_mib() -> float:
    # Linux reports KiB, macOS bytes.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codes", type=int, default=10_000, help="number of codes to generate (default 10000)")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""), help="PostgreSQL server URL")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-tracemalloc", action="store_true", help="skip the memory-traced import")
    parser.add_argument("--keep", action="store_true", help="keep the generated files and SQLite database")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    workdir = Path(tempfile.mkdtemp(prefix="vbip-import-bench-"))
    drop = None
    if args.database_url.startswith(("postgres://", "postgresql://")):
        database_url, drop = fresh_postgres(args.database_url, "vbip_bench")
        label = "PostgreSQL"
    else:
        database_url = args.database_url or f"sqlite:///{workdir / 'bench.sqlite3'}"
        label = "SQLite"
    os.environ.update(
        DJANGO_SETTINGS_MODULE="vbip_project.settings",
        VBIP_DOTENV="0",
        DATABASE_URL=database_url,
        DEBUG="false",
    )
    os.environ.setdefault("SECRET_KEY", "import-bench-only-not-secret")

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import transaction

    from errorcodes.classifier import get_classifier, reset_classifier
    from errorcodes.importers import parse_file
    from errorcodes.management.commands.load_catalog import CATALOG
    from errorcodes.models import StatusCode

    try:
        call_command("migrate", verbosity=0)
        if CATALOG.is_file():
            out = io.StringIO()
            call_command("load_catalog", stdout=out)
            catalogue = out.getvalue().strip()
        else:
            catalogue = "absent (classifier has no curated examples)"
        data = synthetic_extraction(args.codes, seed=args.seed)
        path = workdir / "status_codes_extraction.json"
        path.write_text(json.dumps(data), encoding="utf-8")
        count = len(data["error_codes"])
        size_mib = path.stat().st_size / 2**20
        print(f"database: {label}; catalogue: {catalogue}")
        print(f"input: {count} entries, {size_mib:.1f} MiB JSON")

        started = time.perf_counter()
        records, rejections = parse_file(path)
        parse_s = time.perf_counter() - started
        print(f"parse only: {parse_s:.2f} s ({count / parse_s:,.0f} entries/s), {len(rejections)} rejected")

        reset_classifier()
        started = time.perf_counter()
        classifier = get_classifier()
        warm_s = time.perf_counter() - started
        started = time.perf_counter()
        for record in records:
            classifier.classify(
                family=record.family,
                code=record.code,
                message=record.message,
                explanation=record.explanation,
                recommended_action=record.recommended_action,
            )
        classify_s = time.perf_counter() - started
        print(
            f"classify only: {classify_s:.2f} s ({len(records) / classify_s:,.0f} codes/s; "
            f"classifier build {warm_s * 1000:.0f} ms)"
        )
        reset_classifier()  # the import builds its own, as in production
        del records

        before_ids = set(StatusCode.objects.values_list("pk", flat=True))
        rss_before = _maxrss_mib()
        for label_run in ("first import", "re-import"):
            out = io.StringIO()
            started = time.perf_counter()
            call_command("import_status_codes", str(path), "--no-progress", stdout=out, stderr=io.StringIO())
            elapsed = time.perf_counter() - started
            summary = out.getvalue().strip().splitlines()[-1]
            print(f"{label_run}: {elapsed:.2f} s, {count / elapsed:,.0f} codes/s  [{summary}]")

        # A revised guide: every explanation changed, so every classifier-owned code is updated
        # and classified again (the path that bulk_update's CASE WHEN statements made slow).
        for entry in data["error_codes"]:
            entry["explanation"] = "In this release: " + entry["explanation"]
        revised = workdir / "status_codes_extraction_revised.json"
        revised.write_text(json.dumps(data), encoding="utf-8")
        out = io.StringIO()
        started = time.perf_counter()
        call_command("import_status_codes", str(revised), "--no-progress", stdout=out, stderr=io.StringIO())
        elapsed = time.perf_counter() - started
        summary = out.getvalue().strip().splitlines()[-1]
        print(f"revised guide: {elapsed:.2f} s, {count / elapsed:,.0f} codes/s  [{summary}]")
        print(f"peak RSS (ru_maxrss): {_maxrss_mib():.0f} MiB (before the imports {rss_before:.0f} MiB)")

        if not args.no_tracemalloc:
            history = StatusCode.history.model
            with transaction.atomic():
                history.objects.exclude(id__in=before_ids).delete()
                StatusCode.objects.exclude(pk__in=before_ids).delete()
            reset_classifier()
            tracemalloc.start()
            call_command("import_status_codes", str(path), "--no-progress", stdout=io.StringIO(), stderr=io.StringIO())
            _current, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            print(f"tracemalloc peak during a first import: {peak / 2**20:.1f} MiB")
    finally:
        if drop is not None:
            drop()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
