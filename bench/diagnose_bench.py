"""Benchmark `incidents.diagnosis.diagnose()` with 3,000 status codes and 10,000 past incidents.

    .venv/bin/python bench/diagnose_bench.py                      # temporary SQLite file
    .venv/bin/python bench/diagnose_bench.py --database-url postgres://postgres@127.0.0.1:5432/postgres

With PostgreSQL a fresh database (vbip_diag_bench_<pid>) is created on that server and dropped
afterwards. The script migrates, loads the shipped catalogue when it exists and adds synthetic
codes up to --codes, creates --incidents past incidents (with stored evidence) over a few
customers, then times diagnose() over realistic texts: job logs and try-logs with a status,
English e-mails, code-less log lines that need message matching (some misspelt), and Korean
e-mails. Each text is diagnosed twice, as ingestion does (a customer, no user) and as the API
does (a curator who sees every customer). It prints p50/p95/max in milliseconds (goal: p95 < 50 ms),
per kind of text, and how often the intended code was found. Figures only, no assertions.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchdb import fresh_postgres

ROOT = Path(__file__).resolve().parents[1]

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
    "was reset by peer",
    "access was denied",
    "could not be mounted",
    "configuration mismatch",
]
QUALIFIERS = [
    "during backup",
    "during restore",
    "during duplication",
    "while writing the image",
    "after the retry limit",
    "on the media server",
    "in the requested pool",
    "for the selected client",
    "before the window closed",
    "while reading the file list",
]
CATEGORY_OF_SUBJECT = {
    "client": "client",
    "media server": "media",
    "storage unit": "disk_storage",
    "disk pool": "disk_storage",
    "volume pool": "media",
    "policy": "policy_config",
    "schedule": "policy_config",
    "catalog image": "catalog",
    "snapshot": "virtualization",
    "backup image": "catalog",
    "database agent": "database_agent",
    "certificate": "security_certificates",
    "host name": "network",
    "socket": "network",
    "network connection": "network",
    "deduplication pool": "deduplication",
    "storage lifecycle policy": "replication_slp",
    "cloud storage server": "cloud",
    "virtual machine": "virtualization",
    "file list": "client",
    "license": "policy_config",
    "Kubernetes namespace": "kubernetes",
    "bpcd daemon": "client",
    "credentials": "security_certificates",
    "media ID": "media",
    "tape drive": "tape_hardware",
    "robotic library": "tape_hardware",
}
SUBJECTS = list(CATEGORY_OF_SUBJECT)
PROCESSES = ["bpbrm", "bptm", "bpbkar", "nbjm", "bpdbm", "bpcd"]
KIND_LABELS = {
    "log": "job log / try-log with a status",
    "email_en": "English e-mail with an error code",
    "codeless": "code-less log lines (message matching)",
    "codeless_typo": "code-less, misspelt message (fuzzy)",
    "email_ko": "Korean e-mail (code or message)",
}


def _timestamp(rng) -> str:
    return f"{rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}/2026 {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"


def _noise_lines(rng, count: int) -> list[str]:
    lines = []
    for _ in range(count):
        process = rng.choice(PROCESSES)
        pid = rng.randint(1000, 99999)
        lines.append(
            rng.choice(
                [
                    f"{_timestamp(rng)} - Info {process} (pid={pid}) started on nbu01.acme.local:1556",
                    f"{_timestamp(rng)} - Info {process} (pid={pid}) wrote {rng.randint(1, 900)} GB to web-{rng.randint(1, 99)}",
                    f"{_timestamp(rng)} - connecting to 10.0.{rng.randint(0, 9)}.{rng.randint(1, 254)} as jobid={rng.randint(1000, 9999)}",
                    f"{_timestamp(rng)} - Info {process} (pid={pid}) NetBackup 10.3.0.1 begin writing",
                    f"{_timestamp(rng)} - Info {process} (pid={pid}) EXITING with status 0",
                ]
            )
        )
    return lines


def _misspell(rng, message: str) -> str:
    words = message.split()
    long_words = [i for i, w in enumerate(words) if len(w) >= 6]
    for index in rng.sample(long_words, min(2, len(long_words))):
        word = words[index]
        cut = rng.randint(1, len(word) - 2)
        words[index] = word[:cut] + word[cut + 1 :]
    return " ".join(words)


def make_texts(rng, codes: list[tuple[str, int, str]], count: int) -> list[tuple[str, str, int]]:
    """(kind, text, intended code) for `count` texts spread over the kinds."""
    netbackup = [c for c in codes if c[0] == "netbackup" and c[1] >= 2]
    texts = []
    kinds = list(KIND_LABELS)
    for index in range(count):
        kind = kinds[index % len(kinds)]
        family, code, message = rng.choice(netbackup)
        process = rng.choice(PROCESSES)
        pid = rng.randint(1000, 99999)
        if kind == "log":
            lines = _noise_lines(rng, rng.randint(8, 25))
            lines.append(f"{_timestamp(rng)} - Error {process} (pid={pid}) {message}")
            lines.append(
                rng.choice([f"{message}  ({code})", f"EXIT STATUS {code}", f"Try 2: status {code}: {message}"])
            )
            text = "\n".join(lines)
        elif kind == "email_en":
            text = (
                f"Hello team,\n\nLast night the backup of web-{rng.randint(1, 99)} (job {rng.randint(1000, 9999)}) "
                f"failed at {_timestamp(rng)} with error code {code}.\nThe job wrote {rng.randint(1, 500)} GB "
                f"before it stopped.\n\nRegards,\nOperations"
            )
        elif kind == "codeless":
            lines = _noise_lines(rng, rng.randint(3, 12))
            lines.append(f"{_timestamp(rng)} - Error {process} (pid={pid}) {message}: errno = {rng.randint(1, 130)}")
            text = "\n".join(lines)
        elif kind == "codeless_typo":
            text = f"{_timestamp(rng)} - Error {process} (pid={pid}) {_misspell(rng, message)}"
        else:
            if index % 2:
                text = (
                    f"안녕하세요.\n금일 새벽 web-{rng.randint(1, 99)} 서버 백업이 실패했습니다.\n"
                    f"에러코드 {code} 확인 부탁드립니다.\n감사합니다."
                )
            else:
                text = (
                    f"안녕하세요.\n{_timestamp(rng)} 에 백업 작업이 '{message}' 메시지로 실패했습니다.\n"
                    f"백업 크기 {rng.randint(1, 500)} GB, 작업 번호 {rng.randint(1000, 9999)}.\n감사합니다."
                )
        texts.append((kind, text, code))
    return texts


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


def _line(label: str, values: list[float]) -> str:
    return (
        f"{label:<45} n={len(values):4d}  p50 {statistics.median(values):6.1f} ms  "
        f"p95 {_percentile(values, 0.95):6.1f} ms  max {max(values):6.1f} ms"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codes", type=int, default=3000, help="status codes in the knowledge base (default 3000)")
    parser.add_argument("--incidents", type=int, default=10_000, help="past incidents (default 10000)")
    parser.add_argument("--texts", type=int, default=400, help="texts to diagnose (default 400)")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""), help="PostgreSQL server URL")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    workdir = Path(tempfile.mkdtemp(prefix="vbip-diagnose-bench-"))
    drop = None
    if args.database_url.startswith(("postgres://", "postgresql://")):
        database_url, drop = fresh_postgres(args.database_url, "vbip_diag_bench")
        label = "PostgreSQL"
    else:
        database_url = args.database_url or f"sqlite:///{workdir / 'bench.sqlite3'}"
        label = "SQLite"
    os.environ.update(
        DJANGO_SETTINGS_MODULE="vbip_project.settings", VBIP_DOTENV="0", DATABASE_URL=database_url, DEBUG="false"
    )
    os.environ.setdefault("SECRET_KEY", "diagnose-bench-only-not-secret")

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.utils import timezone

    from errorcodes.management.commands.load_catalog import CATALOG
    from errorcodes.models import StatusCode
    from errorcodes.services import CodeRecord, upsert_status_codes
    from incidents import diagnosis
    from incidents.models import BackupServer, Customer, Incident, make_fingerprint

    rng = random.Random(args.seed)
    try:
        started = time.perf_counter()
        call_command("migrate", verbosity=0)
        if CATALOG.is_file():
            out = io.StringIO()
            call_command("load_catalog", stdout=out)
            catalogue = out.getvalue().strip()
        else:
            catalogue = "absent"
        existing = set(StatusCode.objects.values_list("family", "code"))
        records = []
        messages = set(StatusCode.objects.values_list("message", flat=True))
        code = 10_000
        while len(existing) + len(records) < args.codes:
            subject = rng.choice(SUBJECTS)
            message = f"{subject} {rng.choice(PROBLEMS)} {rng.choice(QUALIFIERS)}"
            if message in messages:
                continue
            messages.add(message)
            code += rng.randint(1, 3)
            records.append(
                CodeRecord(
                    family="netbackup",
                    code=code,
                    message=message,
                    recommended_action="Check the job details. Re-run the job when the cause is fixed.",
                    category=CATEGORY_OF_SUBJECT[subject],
                    level=rng.choice([1, 1, 2, 2, 2, 3]),
                    source="diagnose bench",
                )
            )
        upsert_status_codes(records)
        codes = list(StatusCode.objects.values_list("family", "code", "message"))
        by_key = {(f, c): pk for pk, f, c in StatusCode.objects.values_list("pk", "family", "code")}

        customers = []
        for number in range(20):
            customer = Customer.objects.create(code=f"C{number:02d}", name=f"Customer {number}")
            server = BackupServer.objects.create(customer=customer, hostname=f"nbu01.c{number:02d}.local")
            customers.append((customer, server))
        # Incidents concentrate on a few hundred codes, as real failures do.
        common = rng.sample([c for c in codes if c[1] >= 2], min(300, len(codes)))
        now = timezone.now()
        incidents = []
        states = ["resolved"] * 6 + ["closed"] * 2 + ["open", "diagnosed"]
        for number in range(args.incidents):
            family, code, message = rng.choice(common)
            customer, server = rng.choice(customers)
            client = f"host{number}"
            seen = now - timezone.timedelta(minutes=rng.randint(0, 60 * 24 * 365))
            state = rng.choice(states)
            process = rng.choice(PROCESSES)
            evidence = [f"{_timestamp(rng)} - Error {process} (pid={rng.randint(1000, 99999)}) {message}"]
            incidents.append(
                Incident(
                    customer=customer,
                    server=server,
                    fingerprint=make_fingerprint(customer.pk, server.pk, client, "FS_Daily", "Full", family, code),
                    family=family,
                    code=code,
                    status_code_id=by_key[(family, code)],
                    client=client,
                    policy="FS_Daily",
                    schedule="Full",
                    level=2,
                    state=state,
                    first_seen=seen,
                    last_seen=seen,
                    resolution="re-ran the job" if state == "resolved" else "",
                    resolution_method="automatic" if state == "resolved" else "",
                    diagnosis={"evidence": evidence, "code": code, "family": family},
                )
            )
        Incident.objects.bulk_create(incidents, batch_size=1000)
        curator = get_user_model().objects.create_superuser("bench", "bench@example.com", "bench-only")
        setup_s = time.perf_counter() - started
        print(f"database: {label}; catalogue: {catalogue}")
        print(
            f"data: {StatusCode.objects.count()} status codes, {Incident.objects.count()} past incidents, "
            f"{len(customers)} customers (setup {setup_s:.1f} s)"
        )

        diagnosis.reset_index()
        started = time.perf_counter()
        diagnosis.get_index()
        print(f"message index build (first call, cached afterwards): {(time.perf_counter() - started) * 1000:.0f} ms")

        texts = make_texts(rng, codes, args.texts)
        for _kind, text, _code in texts[:10]:  # warm caches (connections, regexes) outside the measurement
            diagnosis.diagnose(text, customer=customers[0][0])

        print(f"load average (1/5/15 min) at the start: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")
        timings: dict[str, list[float]] = {kind: [] for kind in KIND_LABELS}
        modes = {"ingestion (customer, no user)": [], "API (curator sees all)": []}
        found = dict.fromkeys(KIND_LABELS, 0)
        totals = dict.fromkeys(KIND_LABELS, 0)
        for kind, text, code in texts:
            customer = rng.choice(customers)[0]
            for mode, kwargs in (
                ("ingestion (customer, no user)", {"customer": customer}),
                ("API (curator sees all)", {"customer": customer, "user": curator}),
            ):
                began = time.perf_counter()
                result = diagnosis.diagnose(text, **kwargs)
                elapsed = (time.perf_counter() - began) * 1000
                timings[kind].append(elapsed)
                modes[mode].append(elapsed)
            totals[kind] += 1
            found[kind] += result["code"] == code

        everything = [value for values in timings.values() for value in values]
        print(f"diagnose() over {len(texts)} texts, each twice:")
        print(_line("all", everything))
        for mode, values in modes.items():
            print(_line(mode, values))
        for kind, values in timings.items():
            print(_line(KIND_LABELS[kind], values) + f"  intended code found {found[kind]}/{totals[kind]}")
        verdict = "met" if _percentile(everything, 0.95) < 50 else "NOT met"
        print(f"goal p95 < 50 ms: {verdict}")
        # Wall times on a shared machine include waiting for the CPU; the load says how much.
        load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
        print(f"load average (1/5/15 min) at the end: {load} on {os.cpu_count()} CPUs")
    finally:
        if drop is not None:
            drop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
