"""The normalised shape every ingestion path produces before anything is stored.

Parsers (our JSON, NetBackup JSON:API bodies, the REST poller, bpdbjobs, CSV and
Excel reports) all turn their input into `JobData`; `incidents.services` stores it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.utils import timezone
from django.utils.dateparse import parse_datetime


class BadValue(ValueError):
    """A field of an input item that cannot be understood; the message names the field."""

    def __init__(self, field_name: str, message: str):
        self.field = field_name
        super().__init__(f"{field_name}: {message}")


@dataclass
class JobData:
    job_id: int
    status: int | None
    state: str = "DONE"
    job_type: str = ""
    client: str = ""
    policy: str = ""
    schedule: str = ""
    policy_type: str = ""
    schedule_type: str = ""
    parent_job_id: int | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    last_update_time: datetime | None = None
    kilobytes: int | None = None
    files: int | None = None
    try_count: int | None = None
    details: str = ""  # try-log or error text: the main input for diagnosis
    raw: dict = field(default_factory=dict)
    location: str = ""  # "item 3", "line 12": for rejections


_STATUS_RE = re.compile(r"^\s*(?:(?:exit\s+)?status(?:\s+code)?\s*[:=]?\s*)?(-?\d+(?:\.0+)?)\s*$", re.IGNORECASE)


def normalise_status(value, field_name: str = "status") -> int | None:
    """96, "96", 96.0, "96.0", "status 96", "Status: 96" -> 96; None/"" -> None."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise BadValue(field_name, f"{value!r} is not a status code")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if math.isnan(value) or not value.is_integer():
            raise BadValue(field_name, f"{value!r} is not a whole number")
        number = int(value)
    else:
        text = str(value).strip()
        if text == "":
            return None
        match = _STATUS_RE.match(text)
        if not match:
            raise BadValue(field_name, f"{value!r} is not a status code")
        number = int(float(match.group(1)))
    if number < 0:
        raise BadValue(field_name, f"{value!r} is negative")
    return number


def parse_int(value, field_name: str, *, allow_none: bool = True) -> int | None:
    if value is None or (isinstance(value, str) and value.strip() == ""):
        if allow_none:
            return None
        raise BadValue(field_name, "is required")
    if isinstance(value, bool):
        raise BadValue(field_name, f"{value!r} is not a number")
    if isinstance(value, float):
        if math.isnan(value) or not value.is_integer():
            raise BadValue(field_name, f"{value!r} is not a whole number")
        return int(value)
    try:
        return int(str(value).strip().replace(",", ""))
    except ValueError:
        try:
            number = float(str(value).strip().replace(",", ""))
        except ValueError:
            raise BadValue(field_name, f"{value!r} is not a number") from None
        if not number.is_integer():
            raise BadValue(field_name, f"{value!r} is not a whole number")
        return int(number)


_EPOCH_NULL = datetime(1970, 1, 1, tzinfo=UTC)


def parse_time(value, field_name: str) -> datetime | None:
    """ISO-8601 (with or without zone: naive means the server time zone), epoch seconds, or empty.

    NetBackup reports running jobs' endTime as 1970-01-01T00:00:00Z: that means "none".
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        result = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if value <= 0:
            return None
        result = datetime.fromtimestamp(value, tz=UTC)
    else:
        text = str(value).strip()
        if not text:
            return None
        if text.isdigit():
            return parse_time(int(text), field_name)
        candidate = text.replace("Z", "+00:00") if text.endswith("Z") else text
        try:
            result = parse_datetime(candidate)
        except ValueError:
            result = None
        if result is None:
            for fmt in (
                "%Y-%m-%d %H:%M",
                "%Y/%m/%d %H:%M:%S",
                "%Y/%m/%d %H:%M",
                "%m/%d/%Y %H:%M:%S",
                "%Y.%m.%d %H:%M:%S",
            ):
                try:
                    result = datetime.strptime(text, fmt)
                    break
                except ValueError:
                    continue
        if result is None:
            raise BadValue(field_name, f"{value!r} is not a date and time")
    if timezone.is_naive(result):
        result = timezone.make_aware(result)
    if result <= _EPOCH_NULL:
        return None
    return result


def job_from_netbackup(item: dict, location: str = "") -> JobData:
    """One JSON:API `job` resource (GET /admin/jobs data[i]) -> JobData. Unknown attributes are kept in raw only."""
    if not isinstance(item, dict):
        raise BadValue("data", "each item must be an object")
    attrs = item.get("attributes")
    if not isinstance(attrs, dict):
        raise BadValue("attributes", "missing or not an object")
    job_id = parse_int(attrs.get("jobId", item.get("id")), "attributes.jobId", allow_none=False)
    parent = parse_int(attrs.get("parentJobId"), "attributes.parentJobId")
    return JobData(
        job_id=job_id,
        status=normalise_status(attrs.get("status"), "attributes.status"),
        state=str(attrs.get("state") or "").upper(),
        job_type=str(attrs.get("jobType") or ""),
        client=str(attrs.get("clientName") or ""),
        policy=str(attrs.get("policyName") or ""),
        schedule=str(attrs.get("scheduleName") or ""),
        policy_type=str(attrs.get("policyType") or ""),
        schedule_type=str(attrs.get("scheduleType") or ""),
        parent_job_id=parent or None,
        started_at=parse_time(attrs.get("startTime"), "attributes.startTime"),
        ended_at=parse_time(attrs.get("endTime"), "attributes.endTime"),
        last_update_time=parse_time(attrs.get("lastUpdateTime"), "attributes.lastUpdateTime"),
        kilobytes=parse_int(attrs.get("kilobytesTransferred"), "attributes.kilobytesTransferred"),
        files=parse_int(attrs.get("numberOfFiles"), "attributes.numberOfFiles"),
        try_count=parse_int(attrs.get("try"), "attributes.try"),
        details="",
        raw=item,
        location=location,
    )
