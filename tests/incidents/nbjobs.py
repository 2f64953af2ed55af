"""NetBackup `job` resources as GET /admin/jobs returns them, for tests, the fake server and benches.

One builder, with only the attribute names the vendor's job schema declares (the contract test
checks the fake server's answers, which use it, against the vendor OpenAPI file).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def iso(value: datetime) -> str:
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond:06d}Z"


def build_job_attributes(
    job_id: int,
    *,
    status: int = 58,
    client: str = "web01",
    policy: str = "FS_Daily",
    schedule: str = "Full",
    updated: datetime | None = None,
    state: str = "DONE",
    job_type: str = "BACKUP",
    **overrides,
) -> dict:
    """Job attributes shaped like the spec example, using only names the spec's job schema declares.

    (The vendor example itself also carries `done` and `killable`, which its schema does not.)
    """
    updated = updated or datetime.now(UTC) - timedelta(minutes=30)
    started = updated - timedelta(minutes=12)
    attrs = {
        "jobId": job_id,
        "parentJobId": 0,
        "activeProcessId": 8624,
        "mainProcessId": 0,
        "jobType": job_type,
        "jobSubType": "SCHEDULED",
        "policyType": "STANDARD",
        "policyName": policy,
        "scheduleType": "FULL_BACKUP",
        "scheduleName": schedule,
        "clientName": client,
        "controlHost": "",
        "jobOwner": "root",
        "jobGroup": "",
        "backupId": f"{client}_{int(started.timestamp())}",
        "sourceMediaId": "",
        "sourceStorageUnitName": "",
        "sourceMediaServerName": "",
        "destinationMediaId": "",
        "destinationStorageUnitName": "stu-msdp01",
        "destinationMediaServerName": "media01",
        "dataMovement": "STANDARD",
        "streamNumber": 0,
        "copyNumber": 1,
        "priority": 0,
        "retentionLevel": 1,
        "compression": 0,
        "status": status,
        "state": state,
        "numberOfFiles": 0 if status >= 2 else 1200,
        "estimatedFiles": 1200,
        "kilobytesTransferred": 0 if status >= 2 else 524288,
        "kilobytesToTransfer": 0,
        "transferRate": 0,
        "percentComplete": 100,
        "restartable": 1,
        "suspendable": 0,
        "resumable": 0,
        "cancellable": 0,
        "frozenImage": 0,
        "transportType": "LAN",
        "currentOperation": 0,
        "jobQueueReason": 0,
        "jobQueueResource": "",
        "robotName": "",
        "vaultName": "",
        "profileName": "",
        "sessionId": 0,
        "numberOfTapeToEject": 0,
        "submissionType": 0,
        "dumpHost": "",
        "instanceDatabaseName": "",
        "auditUserName": "",
        "auditDomainName": "",
        "auditDomainType": 0,
        "restoreBackupIDs": "",
        "startTime": iso(started),
        "endTime": iso(updated - timedelta(seconds=1)),
        "activeTryStartTime": iso(started),
        "lastUpdateTime": iso(updated),
        "kilobytesDataTransferred": 0,
        "try": 1,
        "assetID": "",
        "assetDisplayableName": "",
        "workloadDisplayName": "",
        "elapsedTime": "PT12M",
        "activeElapsedTime": "PT12M",
        "childCount": 0,
        "jobPath": str(job_id),
        "acceleratorOptimization": 0,
        "applicationType": "NONE",
        "compressionSpaceRatio": 0,
        "currentFile": "",
        "dteMode": "OFF",
        "dedupRatio": 0,
        "dedupSpaceRatio": 0,
        "offHostType": "STANDARD",
    }
    attrs.update(overrides)
    return attrs


def job_resource(attributes: dict) -> dict:
    """Wrap attributes as one JSON:API `job` resource, links and cursor included."""
    job_id = attributes["jobId"]
    return {
        "links": {
            "self": {"href": f"/admin/jobs/{job_id}"},
            "try-logs": {"href": f"https://nbu01.example.test:1556/netbackup/admin/jobs/{job_id}/try-logs"},
        },
        "type": "job",
        "id": str(job_id),
        "meta": {"page": {"cursor": str(job_id)}},
        "attributes": attributes,
    }
