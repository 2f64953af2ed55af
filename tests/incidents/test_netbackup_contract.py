"""Every request the poller sends, and every answer the fake gives, checked against the vendor's OpenAPI file.

The spec is read at test time from ../shared (never copied into the project); without it these
tests skip. The filter check reads the table of filterable attributes and operators out of the
GET /admin/jobs `filter` parameter description, so it follows the spec, not our assumptions.
"""

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
import yaml

from incidents.polling import poll_server
from tests.conftest import SHARED_DIR
from tests.incidents.factories import make_server
from tests.incidents.fake_netbackup import API_KEY, FakeNetBackup

SPEC_PATH = SHARED_DIR / "data" / "netbackup-api" / "admin_11.2.yaml"
NOW = datetime.now(UTC).replace(microsecond=0)
FAST = {"sleep": lambda seconds: None, "timeout": 5}


@pytest.fixture(scope="module")
def spec():
    if not SPEC_PATH.is_file():
        pytest.skip(f"vendor OpenAPI file {SPEC_PATH} is absent")
    return yaml.load(SPEC_PATH.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


# --- reading the spec ------------------------------------------------------------------------


def deref(spec, node):
    while isinstance(node, dict) and "$ref" in node:
        target = spec
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def find_operation(spec, method: str, path: str):
    """(template, path item, operation) for a concrete path, or None."""
    for template, item in spec["paths"].items():
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path):
            return template, item, item.get(method.lower())
    return None


def query_parameters(spec, item, operation) -> dict:
    params = [deref(spec, p) for p in (item.get("parameters") or []) + (operation.get("parameters") or [])]
    return {p["name"]: p for p in params if p.get("in") == "query"}


def markdown_rows(description: str) -> list[list[str]]:
    rows = []
    for line in description.splitlines():
        line = line.strip()
        if not line.startswith("|") or set(line) <= set("|- "):
            continue
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows[1:]  # without the header


def filter_table(spec) -> dict[str, tuple[set[str], str]]:
    """attribute -> (allowed operators, schema) from the GET /admin/jobs filter description."""
    operation = spec["paths"]["/admin/jobs"]["get"]
    described = query_parameters(spec, spec["paths"]["/admin/jobs"], operation)["filter"]["description"]
    return {row[0]: (set(re.findall(r"[a-z]+", row[1])), row[3].lower()) for row in markdown_rows(described)}


def sort_names(spec) -> set[str]:
    operation = spec["paths"]["/admin/jobs"]["get"]
    described = query_parameters(spec, spec["paths"]["/admin/jobs"], operation)["sort"]["description"]
    return {row[0] for row in markdown_rows(described)}


def declared_media_types(operation) -> set[str]:
    types = set()
    for response in (operation.get("responses") or {}).values():
        types.update((response.get("content") or {}).keys())
    return types


def media_type_patterns(media_types) -> list[re.Pattern]:
    """The declared types with their version number generalised: the pattern any version must follow."""
    return [
        re.compile("^" + re.sub(r"version=\\?\d+\\\.\d+", r"version=\\d+\\.\\d+", re.escape(t)) + "$")
        for t in media_types
    ]


def header_schemes(spec) -> set[str]:
    schemes = spec.get("components", {}).get("securitySchemes", {})
    return {s["name"].lower() for s in schemes.values() if s.get("type") == "apiKey" and s.get("in") == "header"}


def job_item_schema(spec):
    operation = spec["paths"]["/admin/jobs"]["get"]
    content = next(iter(operation["responses"]["200"]["content"].values()))
    return deref(spec, deref(spec, content["schema"])["properties"]["data"])["items"]


CLAUSE = re.compile(r"^(?P<attr>[A-Za-z_]\w*)\s+(?P<op>[a-z]+)\s+(?P<value>.+)$")
VALUE_FORMS = {
    "integer": r"-?\d+",
    "big integer": r"-?\d+",
    "float": r"-?\d+(\.\d+)?",
    "string": r"'(?:[^']|'')*'",
    "date-time": r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})",
    "duration": r"P[0-9YMWDTHS.]+",
}


def filter_problems(text: str, table) -> list[str]:
    problems = []
    for clause in re.split(r"\s+(?:and|or)\s+", text.replace("(", " ").replace(")", " ").strip()):
        match = CLAUSE.match(clause.strip())
        if not match:
            problems.append(f"cannot read clause {clause!r}")
            continue
        attribute, operator, value = match["attr"], match["op"], match["value"].strip()
        if attribute not in table:
            problems.append(f"{attribute} is not filterable")
            continue
        operators, schema = table[attribute]
        if operator not in operators:
            problems.append(f"{attribute} does not allow {operator} (allowed: {sorted(operators)})")
        form = VALUE_FORMS.get(schema)
        if form and not re.fullmatch(form, value):
            problems.append(f"{attribute} {operator} {value!r} is not a valid {schema} literal")
    return problems


def schema_problems(spec, schema, value, where="$") -> list[str]:
    """A small JSON-schema subset: types, enums, date-times, required and *only declared* properties."""
    schema = deref(spec, schema) or {}
    problems = []
    for part in schema.get("allOf", []):
        problems += schema_problems(spec, part, value, where)
    kind = schema.get("type") or ("object" if "properties" in schema else None)
    if kind == "object":
        if not isinstance(value, dict):
            return [f"{where} should be an object"]
        properties = schema.get("properties")
        if properties is not None:
            for key, item in value.items():
                if key not in properties:
                    problems.append(f"{where}.{key} is not declared")
                else:
                    problems += schema_problems(spec, properties[key], item, f"{where}.{key}")
        problems += [f"{where}.{key} is required" for key in schema.get("required", []) if key not in value]
    elif kind == "array":
        if not isinstance(value, list):
            return [f"{where} should be an array"]
        for index, item in enumerate(value):
            problems += schema_problems(spec, schema.get("items", {}), item, f"{where}[{index}]")
    elif kind == "integer" and (not isinstance(value, int) or isinstance(value, bool)):
        problems.append(f"{where} should be an integer, is {value!r}")
    elif kind == "number" and (not isinstance(value, (int, float)) or isinstance(value, bool)):
        problems.append(f"{where} should be a number, is {value!r}")
    elif kind == "boolean" and not isinstance(value, bool):
        problems.append(f"{where} should be a boolean, is {value!r}")
    elif kind == "string":
        if not isinstance(value, str):
            problems.append(f"{where} should be a string, is {value!r}")
        elif schema.get("format") == "date-time":
            try:
                datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                problems.append(f"{where} is not a date-time: {value!r}")
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where} = {value!r} is not one of the declared values")
    return problems


# --- a full poll -------------------------------------------------------------------------------


@pytest.fixture
def full_poll(db, spec):
    """Two polls: several pages with try-logs, a busy answer, a version negotiation, then a watermark."""
    with FakeNetBackup(versions=("13.0",)) as nbu:
        for i in range(7):
            nbu.add_job(
                status=(1, 58, 96, 2074)[i % 4],
                client=f"client{i % 3}",
                updated=NOW - timedelta(hours=3) + timedelta(minutes=i),
            )
        nbu.busy(1, path="/admin/jobs")
        server = make_server(api_base_url=nbu.base_url, api_key=API_KEY, ca_certificate=nbu.ca_pem)
        first = poll_server(server, page_limit=3, client_options=FAST)
        nbu.add_job(status=13, updated=NOW - timedelta(minutes=5))
        second = poll_server(server, page_limit=3, client_options=FAST)
    assert first.ok and second.ok, (first.error, second.error)
    assert first.created == 7 and second.created == 1
    return nbu


def test_every_request_uses_a_path_and_method_the_spec_declares(spec, full_poll):
    base_path = urlsplit(spec["servers"][0]["url"]).path
    assert full_poll.requests
    used = set()
    for request in full_poll.requests:
        assert request.full_path.startswith(base_path + "/"), request.full_path
        found = find_operation(spec, request.method, request.path)
        assert found is not None, f"{request.path} matches no path of the spec"
        template, _item, operation = found
        assert operation is not None, f"{request.method} is not declared for {template}"
        used.add((request.method, template))
    assert used == {("GET", "/admin/jobs"), ("GET", "/admin/jobs/{jobId}/try-logs")}


def test_every_query_parameter_is_declared_for_its_operation(spec, full_poll):
    for request in full_poll.requests:
        _template, item, operation = find_operation(spec, request.method, request.path)
        declared = query_parameters(spec, item, operation)
        assert set(request.query) <= set(declared), f"{request.path}: undeclared {set(request.query) - set(declared)}"
        limit = request.param("page[limit]")
        if limit is not None:
            bounds = declared["page[limit]"].get("schema", {})
            assert bounds.get("minimum", 0) <= int(limit) <= bounds.get("maximum", 10**9)
    listed = full_poll.requests_to("/admin/jobs")
    assert {name for r in listed for name in r.query} == {"filter", "sort", "page[limit]", "page[after]"}


def test_the_filter_uses_only_attributes_and_operators_the_spec_allows(spec, full_poll):
    table = filter_table(spec)
    assert {"state", "status", "lastUpdateTime"} <= set(table)  # the table was read
    filters = {r.param("filter") for r in full_poll.requests_to("/admin/jobs")}
    assert any("lastUpdateTime gt" in f for f in filters)
    for text in filters:
        assert filter_problems(text, table) == [], text


def test_the_filter_check_catches_what_the_spec_does_not_allow(spec):
    table = filter_table(spec)
    assert filter_problems("policyName eq 'FS'", table) == [
        "policyName does not allow eq (allowed: " + str(sorted(table["policyName"][0])) + ")"
    ]
    assert filter_problems("colour eq 'red'", table) == ["colour is not filterable"]
    assert filter_problems("status gt '1'", table) == ["status gt \"'1'\" is not a valid integer literal"]
    assert filter_problems("lastUpdateTime gt yesterday", table)


def test_the_sort_key_is_sortable_in_the_spec(spec, full_poll):
    sortable = sort_names(spec)
    for request in full_poll.requests_to("/admin/jobs"):
        for key in request.param("sort").split(","):
            assert key.lstrip("-") in sortable


def test_accept_follows_the_declared_media_type_and_the_spec_version_comes_first(spec, full_poll):
    declared = set()
    for request in full_poll.requests:
        _template, _item, operation = find_operation(spec, request.method, request.path)
        media_types = declared_media_types(operation)
        declared |= media_types
        accept = request.headers["accept"]
        assert any(p.match(accept) for p in media_type_patterns(media_types)), accept
    # The first probe asks for exactly the version this spec documents; the fake only speaks 13.0.
    accepted = [r.headers["accept"] for r in full_poll.requests]
    assert accepted[0] in declared
    assert accepted[-1].endswith("version=13.0")


def test_the_api_key_goes_in_the_header_the_spec_declares(spec, full_poll):
    names = header_schemes(spec)
    assert "authorization" in names
    for request in full_poll.requests:
        for name in names:
            assert request.headers.get(name) == API_KEY  # raw key, no scheme prefix


# --- the fake speaks the documented API ------------------------------------------------------


def test_job_resources_of_the_fake_contain_only_declared_attributes_of_declared_types(spec, full_poll):
    item_schema = job_item_schema(spec)
    served = [
        job
        for response in full_poll.responses
        if response.request.path == "/admin/jobs" and response.status == 200
        for job in response.body["data"]
    ]
    assert len(served) >= 8
    for job in served:
        assert schema_problems(spec, item_schema, job, f"job {job['id']}") == []


def test_every_answer_of_the_fake_matches_the_declared_response_schema(spec, full_poll):
    checked = set()
    for response in full_poll.responses:
        _template, _item, operation = find_operation(spec, response.request.method, response.request.path)
        declared = operation["responses"].get(str(response.status))
        if declared is None or not declared.get("content"):
            continue
        schema = next(iter(declared["content"].values()))["schema"]
        assert schema_problems(spec, schema, response.body) == [], (response.request.path, response.status)
        checked.add((response.request.path.split("/")[-1], response.status))
    # Lists, try-logs, the busy answer and the version refusal were all checked.
    assert {("jobs", 200), ("try-logs", 200), ("jobs", 503), ("jobs", 406)} <= checked


def test_the_schema_check_catches_an_undeclared_attribute(spec):
    item_schema = job_item_schema(spec)
    with FakeNetBackup() as nbu:
        attributes = nbu.add_job(status=58)
        job = nbu._job_resource(dict(attributes, done=1, status="58"))
    problems = schema_problems(spec, item_schema, job)
    assert "$.attributes.done is not declared" in problems
    assert "$.attributes.status should be an integer, is '58'" in problems
