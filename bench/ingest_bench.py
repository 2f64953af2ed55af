#!/usr/bin/env python
"""Ingestion benchmark: NetBackup JSON:API job bodies posted to a running V-BIP on PostgreSQL.

What it does, end to end:
1. creates a fresh PostgreSQL database (default postgres@127.0.0.1:5432, trust auth) and migrates it;
2. creates a customer, a server and an integration user with an API token;
3. starts `manage.py runserver --noreload` on a free loopback port against that database;
4. posts --jobs jobs (default 100,000; --failed-ratio of them failed, spread over --fingerprints
   fingerprints) in --batch-size batches as GET /admin/jobs bodies, from --clients concurrent clients;
5. checks the outcome in the database: every job stored, exactly one incident per fingerprint,
   occurrences adding up to the failed jobs;
6. inserts the same rows with a bare bulk INSERT (psycopg2 execute_values) and with COPY into scratch
   tables with the columns of incidents_backupjob, in the same batches: the physical limit;
7. prints jobs per second for both, the ratio, the incidents, and peak memory of server and client;
8. drops the database.

Figures only: nothing here asserts timings. Run: .venv/bin/python bench/ingest_bench.py
"""

from __future__ import annotations

import argparse
import io
import json
import os
import queue
import random
import resource
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg2
from psycopg2.extras import execute_values

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.incidents.nbjobs import build_job_attributes, iso  # noqa: E402  (after the path above)

PYTHON = sys.executable
CODES = [58, 96, 13, 2074, 156, 84, 24, 6, 71, 25]  # failure statuses the fingerprints cycle through
CUSTOMER, HOSTNAME = "BENCH", "nbu01.bench.local"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--fingerprints", type=int, default=500)
    parser.add_argument("--failed-ratio", type=float, default=0.2)
    parser.add_argument("--clients", type=int, default=2, help="concurrent HTTP clients")
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432", help="PostgreSQL server URL (no db)")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database at the end")
    parser.add_argument("--seed", type=int, default=3)
    return parser.parse_args()


# --------------------------------------------------------------------------- data


def make_attributes(job_id: int, status: int, client: str, policy: str, schedule: str, ended: datetime) -> dict:
    """The vendor job schema's attribute set (the same builder the tests' fake NetBackup uses)."""
    return build_job_attributes(
        job_id,
        status=status,
        client=client,
        policy=policy,
        schedule=schedule,
        updated=ended + timedelta(seconds=1),
        endTime=iso(ended),
        parentJobId=job_id,
    )


def make_resources(args) -> tuple[list[dict], set[tuple]]:
    rng = random.Random(args.seed)
    failed = int(args.jobs * args.failed_ratio)
    # Every fingerprint fails at least once; the rest of the failures land on random fingerprints.
    fingerprint_of_failure = list(range(args.fingerprints)) + [
        rng.randrange(args.fingerprints) for _ in range(failed - args.fingerprints)
    ]
    kinds = fingerprint_of_failure + [None] * (args.jobs - failed)
    rng.shuffle(kinds)
    base = datetime(2026, 6, 1, tzinfo=UTC)
    fingerprints = set()
    resources = []
    for index, kind in enumerate(kinds):
        job_id = 1_000_000 + index
        ended = base + timedelta(seconds=index * 3)
        if kind is None:
            client, policy, schedule, status = f"app{rng.randrange(2000):04d}", "FS_Daily", "Full", 0
        else:
            client = f"host{kind:04d}"
            policy = ("FS_Daily", "DB_Hourly", "VM_Weekly")[kind % 3]
            schedule = ("Full", "Incr")[kind % 2]
            status = CODES[kind % len(CODES)]
            fingerprints.add((client, policy, schedule, status))
        resources.append(
            {
                "links": {"self": {"href": f"/admin/jobs/{job_id}"}},
                "type": "job",
                "id": str(job_id),
                "meta": {"page": {"cursor": str(job_id)}},
                "attributes": make_attributes(job_id, status, client, policy, schedule, ended),
            }
        )
    return resources, fingerprints


# --------------------------------------------------------------------------- database and server


def pg_connect(url: str, dbname: str):
    conn = psycopg2.connect(f"{url}/{dbname}")
    return conn


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def manage(env, *args, capture=False) -> str:
    proc = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


SETUP = f"""
from incidents.models import Customer, BackupServer
from incidents.permissions import grant
from vbip_project.accounts.models import ApiToken, User
customer = Customer.objects.create(code={CUSTOMER!r}, name="Benchmark Ltd")
server = BackupServer.objects.create(customer=customer, hostname={HOSTNAME!r})
user = User.objects.create_user("bench-integration")
grant(user, customer, "integration")
token, raw = ApiToken.issue(user, name="bench")
print("BENCH-SETUP", server.pk, raw)
"""


def peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for(url: str, proc, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the server did not answer {url} within {timeout:.0f} s")


# --------------------------------------------------------------------------- the run


def post_all(base_url: str, token: str, bodies: list[bytes], clients: int) -> tuple[float, list[dict]]:
    work: queue.Queue = queue.Queue()
    for index, body in enumerate(bodies):
        work.put((index, body))
    answers: list[dict | None] = [None] * len(bodies)
    failures: list[str] = []
    url = f"{base_url}/api/v1/jobs/?customer={CUSTOMER}&server={HOSTNAME}"
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}

    def client_loop():
        with httpx.Client(timeout=300, headers=headers) as client:
            while True:
                try:
                    index, body = work.get_nowait()
                except queue.Empty:
                    return
                response = client.post(url, content=body)
                if response.status_code != 200:
                    failures.append(f"batch {index}: HTTP {response.status_code} {response.text[:300]}")
                    continue
                answers[index] = response.json()

    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise SystemExit("posting failed:\n" + "\n".join(failures[:5]))
    return elapsed, answers


COLUMNS = (
    "server_id, job_id, parent_job_id, job_type, state, status, client, policy, schedule, policy_type, "
    "schedule_type, started_at, ended_at, kilobytes, files, try_count, try_log, raw, source, last_update_time, "
    "incident_id, ingested_at, updated_at"
)


def baseline_rows(resources: list[dict], server_id: int) -> list[tuple]:
    """The rows the pipeline stores, as tuples ready for the database."""
    now = datetime.now(UTC)
    rows = []
    for item in resources:
        a = item["attributes"]
        rows.append(
            (
                server_id,
                a["jobId"],
                a["parentJobId"],
                a["jobType"],
                a["state"],
                a["status"],
                a["clientName"],
                a["policyName"],
                a["scheduleName"],
                a["policyType"],
                a["scheduleType"],
                a["startTime"],
                a["endTime"],
                a["kilobytesTransferred"],
                a["numberOfFiles"],
                a["try"],
                "",
                json.dumps(item),
                "netbackup_json",
                a["lastUpdateTime"],
                None,
                now,
                now,
            )
        )
    return rows


def bare_insert(conn, bodies: list[bytes], server_id: int, table: str) -> float:
    """Seconds the database takes to INSERT every row, batch by batch, one commit per batch.

    Turning a body into row tuples happens outside the clock: only the database's share counts.
    """
    seconds = 0.0
    with conn.cursor() as cur:
        for body in bodies:
            rows = baseline_rows(json.loads(body)["data"], server_id)
            started = time.perf_counter()
            execute_values(cur, f"INSERT INTO {table} ({COLUMNS}) VALUES %s", rows, page_size=len(rows))
            conn.commit()
            seconds += time.perf_counter() - started
    return seconds


def _copy_value(value) -> str:
    if value is None:
        return "\\N"
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def bare_copy(conn, bodies: list[bytes], server_id: int, table: str) -> float:
    seconds = 0.0
    with conn.cursor() as cur:
        for body in bodies:
            rows = baseline_rows(json.loads(body)["data"], server_id)
            chunk = "".join("\t".join(_copy_value(v) for v in row) + "\n" for row in rows)
            started = time.perf_counter()
            cur.copy_expert(f"COPY {table} ({COLUMNS}) FROM STDIN", io.StringIO(chunk))
            conn.commit()
            seconds += time.perf_counter() - started
    return seconds


def truncate(conn, table: str) -> None:
    with conn.cursor() as cur:
        cur.execute(f"TRUNCATE {table}")
    conn.commit()


def main():
    args = parse_args()
    dbname = f"vbip_bench_{os.getpid()}"
    admin = pg_connect(args.pg, "postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{dbname}"')
    print(f"database {dbname} created")
    env = {
        **os.environ,
        "DATABASE_URL": f"{args.pg}/{dbname}",
        "SECRET_KEY": secrets.token_urlsafe(32),
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "VBIP_DOTENV": "0",
        "API_THROTTLE_USER": "1000000/minute",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    server_proc = None
    conn = None
    try:
        manage(env, "migrate", "--noinput", "-v0")
        output = manage(env, "shell", "-c", SETUP)
        _marker, server_id, token = next(line for line in output.splitlines() if line.startswith("BENCH-SETUP")).split()
        server_id = int(server_id)

        started = time.perf_counter()
        resources, fingerprints = make_resources(args)
        bodies = [
            json.dumps({"data": resources[start : start + args.batch_size]}).encode()
            for start in range(0, len(resources), args.batch_size)
        ]
        total_jobs, failed = len(resources), sum(1 for r in resources if r["attributes"]["status"])
        del resources
        print(
            f"data: {total_jobs:,} jobs ({failed:,} failed) over {len(fingerprints)} failure fingerprints, "
            f"{len(bodies)} bodies, {sum(map(len, bodies)) / 1e6:.1f} MB of JSON "
            f"(built in {time.perf_counter() - started:.1f} s, outside every measurement)"
        )

        conn = pg_connect(args.pg, dbname)
        with conn.cursor() as cur:
            for table, like in (
                ("bench_bare", "INCLUDING DEFAULTS INCLUDING IDENTITY"),
                ("bench_indexed", "INCLUDING ALL"),
            ):
                cur.execute(f"CREATE TABLE {table} (LIKE incidents_backupjob {like})")
        conn.commit()
        # The bare INSERT runs before and after the pipeline; their mean is the reference, so a
        # machine that gets busier or quieter during the run skews the ratio less.
        bare_before = bare_insert(conn, bodies, server_id, "bench_bare")
        truncate(conn, "bench_bare")
        print(f"bare INSERT before the pipeline: {total_jobs / bare_before:,.0f} rows/s")

        port = free_port()
        server_log = tempfile.NamedTemporaryFile("w", prefix="ingest_bench_server_", suffix=".log", delete=False)  # noqa: SIM115
        print(f"server log: {server_log.name}")
        server_proc = subprocess.Popen(
            [PYTHON, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
            cwd=ROOT,
            env=env,
            stdout=server_log,
            stderr=subprocess.STDOUT,
        )
        base_url = f"http://127.0.0.1:{port}"
        wait_for(f"{base_url}/api/health/", server_proc)
        print(f"server: runserver (threaded) pid {server_proc.pid} on {base_url}")

        cpu_before = cpu_seconds(server_proc.pid)
        elapsed, answers = post_all(base_url, token, bodies, args.clients)
        server_cpu = cpu_seconds(server_proc.pid) - cpu_before
        server_rss = peak_rss_kb(server_proc.pid)
        rate = total_jobs / elapsed
        print(
            f"pipeline: {total_jobs:,} jobs in {elapsed:.2f} s = {rate:,.0f} jobs/s "
            f"({args.clients} clients, batches of {args.batch_size}); server process CPU {server_cpu:.1f} s "
            f"= {server_cpu / total_jobs * 1e6:.0f} us per job"
        )
        totals = {
            key: sum(answer[key] for answer in answers)
            for key in ("created", "updated", "unchanged", "incidents_opened", "incidents_updated")
        }
        totals["rejected"] = sum(len(answer["rejected"]) for answer in answers)

        bare_after = bare_insert(conn, bodies, server_id, "bench_bare")
        truncate(conn, "bench_bare")
        print(f"bare INSERT after the pipeline: {total_jobs / bare_after:,.0f} rows/s")
        indexed_seconds = bare_insert(conn, bodies, server_id, "bench_indexed")
        copy_seconds = bare_copy(conn, bodies, server_id, "bench_bare")

        with conn.cursor() as cur:
            cur.execute("SELECT count(*), count(incident_id) FROM incidents_backupjob")
            stored, linked = cur.fetchone()
            cur.execute(
                "SELECT count(*), count(DISTINCT fingerprint), coalesce(sum(occurrences), 0) FROM incidents_incident"
            )
            incidents, distinct, occurrences = cur.fetchone()
        conn.commit()
        client_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

        bare_rate = total_jobs / ((bare_before + bare_after) / 2)
        indexed_rate, copy_rate = total_jobs / indexed_seconds, total_jobs / copy_seconds
        print()
        print(f"pipeline            {rate:9,.0f} jobs/s    goal >= 3,000")
        print(f"bare INSERT         {bare_rate:9,.0f} rows/s    pipeline = {rate / bare_rate:.0%} of it, goal >= 30%")
        print(f"  same, with the table's indexes  {indexed_rate:,.0f} rows/s (pipeline = {rate / indexed_rate:.0%})")
        print(f"  COPY instead of INSERT          {copy_rate:,.0f} rows/s (pipeline = {rate / copy_rate:.0%})")
        print(
            f"answers             created {totals['created']:,}, updated {totals['updated']}, "
            f"unchanged {totals['unchanged']}, rejected {totals['rejected']}, "
            f"incidents opened {totals['incidents_opened']}, updated {totals['incidents_updated']:,} (summed per batch)"
        )
        print(
            f"database            jobs {stored:,}/{total_jobs:,}; incidents {incidents} with {distinct} distinct "
            f"fingerprints (expected {len(fingerprints)}); occurrences {occurrences:,} (expected {failed:,}); "
            f"jobs linked to an incident {linked:,}"
        )
        print(f"peak memory         server RSS {server_rss / 1024:.0f} MB, client RSS {client_rss / 1024:.0f} MB")
        ok = (
            stored == total_jobs
            and incidents == distinct == len(fingerprints)
            and occurrences == failed == linked
            and totals["rejected"] == 0
        )
        print("check               " + ("OK: every job stored, one incident per fingerprint" if ok else "MISMATCH"))
        if not ok:
            raise SystemExit(1)
    finally:
        if conn is not None:
            conn.close()
        if server_proc is not None:
            server_proc.terminate()
            try:
                server_proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server_proc.kill()
        if not args.keep_db:
            with admin.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            print(f"database {dbname} dropped")
        admin.close()


if __name__ == "__main__":
    main()
