"""Schemathesis fixtures for TrainFlow (loaded through SCHEMATHESIS_HOOKS by run.sh).

At import, signed in as the demo administrator, it makes the objects that path ids should
reach (an installation with an uploaded file and a run, a notification, a renewal request, a
delegation, a push subscription) and reads the ids of the demo's people, departments, types and certifications.

Then, for every generated case:

* path parameters that are object ids point at those real objects (a negative case keeps a
  path parameter it made invalid), so operations reach past the lookup;
* in positive cases only, references in bodies (`department_id`, `user_id`, …) name real
  objects of the tenant, and the few rules that span several fields, which an OpenAPI 3.0
  schema cannot state (`docs/api.md`, "What the schema cannot state"), are met: a role with
  `audience = role`, a comment to reject, `ends_at` after `starts_at`, dates whose computed
  expiry stays before 3000, the connector's own configuration, the caller's current password,
  a real WebAssembly component for a package upload, a push endpoint at a known push service
  with a key that is a point of the curve.

Nothing else of a generated case is changed, so every limit the document states is still
exercised on both sides.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import struct
import zlib

import requests
import schemathesis

BASE = os.environ["TRAINFLOW_ST_BASE"].rstrip("/")
API = BASE + "/api/v1"
ADMIN = {"Authorization": "Bearer " + os.environ["TRAINFLOW_ST_ADMIN_TOKEN"]}
FUZZ_TENANT = os.environ["TRAINFLOW_ST_FUZZ_TENANT_ID"]
STATE = {"password": os.environ["TRAINFLOW_ST_PASSWORD"]}


def _call(method: str, path: str, headers: dict | None = None, **kwargs):
    resp = requests.request(
        method, API + path, headers={**ADMIN, **(headers or {})}, timeout=30, **kwargs
    )
    if resp.status_code >= 300:
        raise RuntimeError(f"fixture {method} {path}: {resp.status_code} {resp.text[:500]}")
    return resp.json()["data"] if resp.content else None


# A browser's push key (a point of P-256: the user agent's key of RFC 8291, appendix A).
PUSH_KEY = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"


def _setup() -> dict:
    me = _call("GET", "/users/me")
    people = _call("GET", "/users", params={"per_page": 100})
    # People without email (the demo's frontline employee) have an employee number instead.
    by_email = {p["email"]: p["id"] for p in people if p.get("email")}
    ids = {
        "admin": me["id"],
        "manager": by_email["manager@demo.trainflow.test"],
        "foreman": by_email["foreman@demo.trainflow.test"],
        # The person whose record is edited, deleted and restored.
        "victim": by_email["liam.morgan@demo.trainflow.test"],
        "employee": by_email["alice.brown@demo.trainflow.test"],
    }
    ids["department"] = _call("GET", "/departments")[0]["id"]
    types = _call("GET", "/certification-types")
    ids["type"] = types[0]["id"]
    certs = _call("GET", "/certifications", params={"user_id": ids["employee"]})
    ids["certification"] = certs[0]["id"]
    inst = _call(
        "POST",
        "/connectors/installations",
        json={
            "connector_id": "com.trainflow.csv",
            "name": "Schemathesis fixture",
            "config": {"entity": "org_unit", "columns": {"external_id": "Id", "name": "Name"}},
        },
    )
    ids["installation"] = inst["id"]
    upload = _call(
        "POST",
        f"/connectors/installations/{inst['id']}/files",
        params={"filename": "units.csv"},
        data=b"Id,Name\nU1,Fixture unit\n",
        headers={"content-type": "application/octet-stream"},
    )
    ids["file"] = upload["id"]
    ids["run"] = _call("POST", f"/connectors/installations/{inst['id']}/runs", json={})["id"]
    _call(
        "POST",
        "/notifications/broadcasts",
        json={"audience": "all", "title": "Fixture", "body": "A notification to read."},
    )
    ids["notification"] = _call("GET", "/notifications")[0]["id"]
    ids["subscription"] = _call(
        "POST",
        "/notifications/push/subscriptions",
        json={"endpoint": "https://fcm.googleapis.com/fcm/send/schemathesis-fixture",
              "keys": {"p256dh": PUSH_KEY, "auth": "BTBZMqHH6r4Tts7J_aSIgg"}},
    )["id"]
    # A renewal request of a certification without an open one.
    renewal = None
    for person in people:
        for cert in _call("GET", "/certifications", params={"user_id": person["id"]}):
            resp = requests.post(
                API + "/renewals",
                headers=ADMIN,
                json={"certification_id": cert["id"]},
                timeout=30,
            )
            if resp.status_code == 201:
                renewal = resp.json()["data"]["id"]
                break
        if renewal:
            break
    if renewal is None:
        raise RuntimeError("fixture: no certification could start a renewal")
    ids["renewal"] = renewal
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    ids["delegation"] = _call(
        "POST",
        "/delegations",
        json={
            "delegate_id": ids["manager"],
            "starts_at": (now + dt.timedelta(days=30)).isoformat().replace("+00:00", "Z"),
            "ends_at": (now + dt.timedelta(days=40)).isoformat().replace("+00:00", "Z"),
        },
    )["id"]
    _call("PUT", "/users/me/avatar", data=PNG, headers={"content-type": "image/png"})
    ids["tenant"] = _call("GET", "/tenant")["id"]
    # Learning: a course of its own for the paths' course ids (its modules keep 0 hours, so
    # its duration may change freely), the course it requires, one of its modules and lessons,
    # and the administrator's enrolment in the required course, whose text lesson progress is
    # reported on.
    course = lambda code, title: _call(
        "POST", "/courses", json={"code": code, "title": title, "status": "published"}
    )["id"]
    ids["course"] = course("ST-A", "Schemathesis course")
    ids["required_course"] = course("ST-B", "Schemathesis prerequisite")
    _call("POST", f"/courses/{ids['course']}/prerequisites",
          json={"required_course_id": ids["required_course"]})
    ids["module"] = _call("POST", f"/courses/{ids['course']}/modules", json={"title": "Fixture module"})["id"]
    ids["topic"] = _call("POST", f"/courses/{ids['course']}/topics", json={"title": "Fixture topic"})["id"]
    ids["lesson"] = _call("POST", f"/modules/{ids['module']}/lessons",
                          json={"title": "Fixture lesson", "body": "Read this."})["id"]
    ids["material"] = _call("POST", f"/lessons/{ids['lesson']}/materials", params={"filename": "notes.txt"},
                            data=b"Read me.", headers={"content-type": "text/plain"})["id"]
    required_module = _call("POST", f"/courses/{ids['required_course']}/modules", json={"title": "Only module"})["id"]
    ids["progress_lesson"] = _call("POST", f"/modules/{required_module}/lessons",
                                   json={"title": "Only lesson", "body": "Read this."})["id"]
    ids["enrolment"] = _call("POST", f"/courses/{ids['required_course']}/enrol")["id"]
    # Assessments: a bank of the course for the banks' paths, with a short-answer question;
    # an optional quiz in the required course (where the administrator is enrolled) drawn from
    # a bank of its own, and an attempt at it.
    ids["bank"] = _call("POST", f"/courses/{ids['course']}/question-banks", json={"name": "Fixture bank"})["id"]
    short = {"kind": "short_answer", "prompt": "Say yes.", "accepted_answers": ["yes"]}
    ids["question"] = _call("POST", f"/question-banks/{ids['bank']}/questions", json=short)["id"]
    ids["quiz_bank"] = _call("POST", f"/courses/{ids['required_course']}/question-banks",
                             json={"name": "Quiz bank"})["id"]
    ids["quiz_question"] = _call("POST", f"/question-banks/{ids['quiz_bank']}/questions", json=short)["id"]
    ids["quiz_lesson"] = _call("POST", f"/modules/{required_module}/lessons",
                               json={"title": "Fixture quiz", "kind": "assessment"})["id"]
    _call("PUT", f"/lessons/{ids['quiz_lesson']}/quiz", json={"bank_id": ids["quiz_bank"], "required": False})
    ids["attempt"] = _call("POST", f"/lessons/{ids['quiz_lesson']}/attempts")["id"]
    # Certificates: the administrator completes a course of one lesson.
    done = course("ST-C", "Schemathesis completed course")
    done_module = _call("POST", f"/courses/{done}/modules", json={"title": "Only module"})["id"]
    done_lesson = _call("POST", f"/modules/{done_module}/lessons", json={"title": "Only lesson", "body": "Read this."})["id"]
    done_enrolment = _call("POST", f"/courses/{done}/enrol")["id"]
    _call("POST", f"/enrolments/{done_enrolment}/progress", json={"lesson_id": done_lesson, "completed": True})
    cert = _call("GET", "/certificates", params={"course_id": done})[0]
    ids["certificate"], ids["code"] = cert["id"], cert["code"]
    # Skills: one of two levels, which the course teaches.
    ids["skill"] = _call("POST", "/skills", json={"name": "Fixture skill", "levels": ["Knows", "Does"]})["id"]
    _call("PUT", f"/courses/{ids['course']}/skills",
          json={"skills": [{"skill_id": ids["skill"], "kind": "teaches", "level": 2}]})
    _call("PUT", "/tenant/logo", data=PNG, headers={"content-type": "image/png"})
    return ids


def _png(width: int, height: int) -> bytes:
    """A real PNG (generated bytes never decode as a picture)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    row = b"\x00" + bytes(v for x in range(width) for v in (x * 10 % 256, 80, 160))
    rows = row * height
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


PNG = _png(24, 16)
IDS = _setup()
# The mass-registration template, as the API offers it.
TEMPLATE = requests.get(API + "/courses/registration-template", headers=ADMIN, timeout=30).content

# A partner package to upload (the misbehaving test connector of plugins/testing, with the
# manifest tests/tests/connectors.rs gives it): generated bytes are never a WebAssembly
# component whose description matches its manifest.
with open(os.environ["TRAINFLOW_ST_PACKAGE"], "rb") as f:
    PACKAGE = f.read()
PACKAGE_MANIFEST = json.dumps(
    {
        "id": "example.misbehaving",
        "name": "Sandbox test connector",
        "version": "0.1.0",
        "description": "Misbehaves on request.",
        "capabilities": {
            "file": False,
            "http_hosts": ["api.example.com", "localhost"],
            "secrets": ["api_token"],
        },
        "config_schema": {
            "type": "object",
            "properties": {
                "mode": {"type": "string"},
                "count": {"type": "integer"},
                "per_page": {"type": "integer"},
                "failures": {"type": "integer"},
                "url": {"type": "string"},
            },
            "additionalProperties": False,
        },
        "sha256": hashlib.sha256(PACKAGE).hexdigest(),
    }
)

# The real object each path's id names, by the collection the id follows.
PATH_IDS = {
    "users": IDS["victim"],
    "tenants": FUZZ_TENANT,
    "installations": IDS["installation"],
    "runs": IDS["run"],
    "notifications": IDS["notification"],
    "subscriptions": IDS["subscription"],
    "certification-types": IDS["type"],
    "approval-chains": IDS["type"],
    "certifications": IDS["certification"],
    "renewals": IDS["renewal"],
    "delegations": IDS["delegation"],
    "courses": IDS["course"],
    "prerequisites": IDS["required_course"],
    "modules": IDS["module"],
    "topics": IDS["topic"],
    "materials": IDS["material"],
    "lessons": IDS["lesson"],
    "enrolments": IDS["enrolment"],
    "question-banks": IDS["bank"],
    "questions": IDS["question"],
    "quiz-attempts": IDS["attempt"],
    "certificates": IDS["certificate"],
    "skills": IDS["skill"],
}

UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _is_uuid(value) -> bool:
    return isinstance(value, str) and bool(UUID_RE.match(value))


def _positive(case) -> bool:
    meta = case.meta
    return meta is not None and meta.generation.mode.is_positive


def _map_path(case) -> None:
    segments = case.operation.path.strip("/").split("/")
    for i, segment in enumerate(segments):
        if not (segment.startswith("{") and segment.endswith("}")):
            continue
        name = segment[1:-1]
        collection = segments[i - 1]
        if name not in case.path_parameters or collection not in PATH_IDS:
            continue
        current = case.path_parameters[name]
        # A negative case keeps the value it made invalid; `scope` also takes `default`.
        if _is_uuid(current) or (_positive(case) and name == "scope" and current != "default"):
            real = PATH_IDS[collection]
            if collection == "users" and case.operation.path.endswith("/activity"):
                real = IDS["admin"]
            if collection == "lessons" and ("/quiz" in case.operation.path or "/attempts" in case.operation.path):
                real = IDS["quiz_lesson"]
            if collection == "users" and case.operation.path.endswith("/pin"):
                # The victim may be deleted at the time; the PIN is set on someone who stays.
                real = IDS["employee"]
            case.path_parameters[name] = real


def _year(value) -> int | None:
    match = re.match(r"^([0-9]{4})-", value) if isinstance(value, str) else None
    return int(match.group(1)) if match else None


def _with_year(value: str, year: int) -> str:
    return f"{year:04d}{value[4:]}"


def _parse_time(value: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
    except ValueError:
        return None


def _repair(case) -> None:
    """Positive cases: real references, and the rules that span several fields."""
    body = case.body
    if not isinstance(body, dict):
        return
    path, method = case.operation.path, case.operation.method.upper()
    if path.endswith("/connectors/packages"):
        body["manifest"], body["component"] = PACKAGE_MANIFEST, PACKAGE
        return
    for field, real in [
        ("department_id", IDS["department"]),
        ("user_id", IDS["employee"]),
        ("type_id", IDS["type"]),
        ("certification_id", IDS["certification"]),
        ("delegate_id", IDS["manager"]),
        ("supervisor_id", IDS["foreman"]),
        ("manager_id", IDS["manager"]),
        ("file_id", IDS["file"]),
        ("owner_id", IDS["admin"]),
        ("required_course_id", IDS["required_course"]),
        ("lesson_id", IDS["progress_lesson"]),
    ]:
        if body.get(field) is not None:
            body[field] = real
    if path.endswith("/notifications/push/subscriptions"):
        # A push service the server posts to (jobs are off: nothing is sent) and a real key.
        digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
        body["endpoint"] = "https://fcm.googleapis.com/fcm/send/" + digest[:24]
        if isinstance(body.get("keys"), dict):
            body["keys"]["p256dh"] = PUSH_KEY
    elif path.endswith("/notifications/broadcasts"):
        if body.get("audience") == "role" and not body.get("role"):
            body["role"] = "employee"
        if body.get("audience") == "department":
            body["department_id"] = IDS["department"]
    elif path.endswith("/decision"):
        if body.get("decision") != "approve" and not (body.get("comment") or "").strip():
            body["comment"] = "Needs another look."
    elif path.endswith("/delegations") and method == "POST":
        starts, ends = _parse_time(body.get("starts_at", "")), _parse_time(body.get("ends_at", ""))
        if starts and ends and ends <= starts:
            body["starts_at"], body["ends_at"] = body["ends_at"], body["starts_at"]
            if ends == starts:
                body["starts_at"], body["ends_at"] = "2030-01-01T00:00:00Z", "2030-02-01T00:00:00Z"
    elif path.endswith("/certifications") and method == "POST":
        issued, expires = body.get("issued_on"), body.get("expires_on")
        if isinstance(issued, str) and isinstance(expires, str) and expires < issued:
            body["issued_on"], body["expires_on"] = expires, issued
        elif expires is None and (_year(issued) or 0) > 2970:
            # The type's validity (up to 20 years) must end by 2999-12-31.
            body["issued_on"] = _with_year(issued, 2026)
    elif path.endswith("/certification-types/preview"):
        start = body.get("start_date")
        cycles, validity = body.get("cycles") or 3, body.get("validity_months")
        months = cycles * validity if isinstance(cycles, int) and isinstance(validity, int) else None
        if isinstance(months, int) and (_year(start) or 0) + months // 12 + 1 > 2999:
            body["start_date"] = _with_year(start, 2026)
    elif "/approval-chains/" in path:
        for step in body.get("steps") or []:
            if isinstance(step, dict):
                step["user_ids"] = [IDS["manager"]] if step.get("relation") == "named" else []
    elif path.endswith("/connectors/installations") and method == "POST":
        body["connector_id"] = "com.trainflow.csv"
        body["config"] = {"entity": "org_unit", "columns": {"external_id": "Id", "name": "Name"}}
        for field in ("package_id", "credentials", "http_hosts"):
            body.pop(field, None)
        if (body.get("schedule") or "").strip():
            body["schedule"] = "0 2 * * *"
    elif path.endswith("/users") and method == "POST" or (
        path.endswith("/users/{id}") and method in ("PUT", "PATCH")
    ):
        # A person keeps an email or an employee number (the victim has no employee number).
        if not body.get("email") and not body.get("employee_number") and (
            method != "PATCH" or "email" in body or "employee_number" in body
        ):
            body["employee_number"] = "ST-" + hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:12]
    elif path.endswith("/assignments"):
        # An audience of real people, due today or later.
        if body.get("user_ids") is not None or (body.get("department_id") is None and body.get("role") is None):
            body["user_ids"] = [IDS["employee"]]
        due = body.get("due_on")
        if isinstance(due, str) and due < dt.date.today().isoformat():
            body["due_on"] = _with_year(due, 2999)
    elif "/modules" in path and method in ("POST", "PATCH") and not path.endswith("/lessons"):
        # The fixture course's modules take no hours (its duration is fuzzed too).
        if body.get("duration_hours") is not None:
            body["duration_hours"] = 0
    elif "/topics" in path and method in ("POST", "PATCH"):
        # The fixture course's topics take no hours (its duration is fuzzed too); a subtopic
        # goes under the fixture topic.
        if body.get("duration_hours") is not None:
            body["duration_hours"] = 0
        if body.get("parent_id") is not None:
            body["parent_id"] = IDS["topic"]
    elif path.endswith("/lessons") or path.endswith("/lessons/{id}"):
        # A text lesson has its text, a link lesson its address; an address is http(s).
        if body.get("url") is not None or body.get("kind") == "link":
            body["url"] = "https://example.com/lesson"
        if body.get("kind") in (None, "text") and (method == "POST" or "body" in body) and not (body.get("body") or "").strip():
            body["body"] = "Read this."
        # An assessment lesson is optional until quizzes can be taken.
        if body.get("kind") == "assessment" and body.get("required"):
            body["required"] = False
    elif path.endswith("/questions") or path.endswith("/questions/{id}"):
        # What each kind of question is made of (a kind left out keeps the fixture's).
        kind = body.get("kind") or "short_answer"
        body["kind"] = kind
        if kind == "short_answer":
            body["options"], body["correct_options"] = [], []
            answers = [a for a in body.get("accepted_answers") or [] if any(c.isalnum() for c in a)]
            body["accepted_answers"] = answers[:20] or ["yes"]
        else:
            body["accepted_answers"] = []
            if kind == "true_false":
                body["options"], body["correct_options"] = [], [0]
            else:
                n = min(max(len(body.get("options") or []), 2), 10)
                body["options"] = [f"Option {i + 1}" for i in range(n)]
                body["correct_options"] = [0]
    elif path.endswith("/courses/{id}/skills"):
        # The fixture skill, once per kind, at a level it has.
        kinds = []
        for s in body.get("skills") or []:
            if s.get("kind") in ("teaches", "requires") and s["kind"] not in kinds:
                kinds.append(s["kind"])
        body["skills"] = [{"skill_id": IDS["skill"], "kind": k, "level": 1} for k in kinds]
    elif path.endswith("/users/{id}/skills") and method == "PUT":
        body["skill_id"], body["level"] = IDS["skill"], 1
    elif path.endswith("/quiz"):
        body["bank_id"] = IDS["quiz_bank"]
    elif path.endswith("/submit"):
        # One answer at most, to the attempt's only question, in text.
        given = (body.get("answers") or [])[:1]
        body["answers"] = [{"question_id": IDS["quiz_question"], "text": (a.get("text") or "yes")} for a in given]
    elif path.endswith("/reporting-lines"):
        if body.get("supervisor_id") is not None:
            body["supervisor_id"] = IDS["foreman"]


@schemathesis.hook
def map_case(context, case):
    _map_path(case)
    path = case.operation.path
    if path.endswith("/avatar"):
        if path.startswith("/api/v1/users/{"):
            # The administrator's picture (set by the fixtures, again before each call).
            case.path_parameters["id"] = IDS["admin"]
        elif _positive(case) and case.operation.method.upper() == "PUT":
            case.body = PNG
    elif path.endswith("/logo"):
        if path.startswith("/api/v1/branding/{"):
            # The tenant's logo (set by the fixtures, again before each call).
            case.path_parameters["id"] = IDS["tenant"]
        elif _positive(case) and case.operation.method.upper() == "PUT":
            case.body = PNG
    if path == "/api/v1/lessons/{id}/materials" and _positive(case) and case.operation.method.upper() == "POST":
        # A file of a type lessons accept, named for it.
        case.query = {**(case.query or {}), "filename": "notes.txt"}
        case.body = b"Read me."
    if path == "/api/v1/courses/registrations" and _positive(case):
        # The template, as it is downloaded (it registers nothing).
        case.body = TEMPLATE
    if path.startswith("/api/v1/verifications/") and _positive(case):
        case.path_parameters["code"] = IDS["code"]
    if _positive(case):
        _repair(case)
    return case


@schemathesis.hook
def before_call(context, case, kwargs):
    # Cases are generated before any is sent: the current password is filled in when sent.
    if (
        case.operation.path.endswith("/users/me/password")
        and _positive(case)
        and isinstance(case.body, dict)
    ):
        case.body["current_password"] = STATE["password"]
    # A removed picture is set again before it is asked for.
    if case.operation.path == "/api/v1/users/{id}/avatar":
        _call("PUT", "/users/me/avatar", data=PNG, headers={"content-type": "image/png"})
    # Deleted learning fixtures are restored before they are used again.
    for marker, key, restore in (
        ("/courses/{id}", "course", "/courses/{}/restore"),
        ("/modules/{id}", "module", "/modules/{}/restore"),
        ("/topics", "topic", "/topics/{}/restore"),
        # A file's lesson and course too: a deleted one hides the file.
        ("/materials", "course", "/courses/{}/restore"),
        ("/materials", "lesson", "/lessons/{}/restore"),
        ("/materials/{id}", "material", "/materials/{}/restore"),
        ("/lessons/{id}", "lesson", "/lessons/{}/restore"),
        ("/question-banks/{id}", "bank", "/question-banks/{}/restore"),
        ("/questions/{id}", "question", "/questions/{}/restore"),
        # The skill, also before the courses and people that name it.
        ("/skills", "skill", "/skills/{}/restore"),
    ):
        if marker in case.operation.path and not case.operation.path.endswith("/restore"):
            requests.post(API + restore.format(IDS[key]), headers=ADMIN, timeout=30)
    # So is a removed logo.
    if case.operation.path == "/api/v1/branding/{id}/logo":
        _call("PUT", "/tenant/logo", data=PNG, headers={"content-type": "image/png"})


@schemathesis.hook
def after_call(context, case, response):
    # An uploaded file is removed again, so the fixture lesson never fills up.
    if case.operation.path == "/api/v1/lessons/{id}/materials" and response.status_code == 201:
        requests.delete(API + f"/materials/{response.json()['data']['id']}", headers=ADMIN, timeout=30)
    # A changed password is the one the next change must present.
    if (
        case.operation.path.endswith("/users/me/password")
        and response.status_code == 204
        and isinstance(case.body, dict)
    ):
        STATE["password"] = case.body.get("new_password", STATE["password"])

