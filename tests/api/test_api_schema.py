"""Property-based tests over the app's own OpenAPI schema (schemathesis), every operation
of it (the original demo's routes, /v1, /health): whatever a client sends, the API never
answers with a server error (5xx), answers only status codes the schema documents, with
bodies and content types the schema describes, and refuses every request the schema says
is invalid (negative data rejection: a 4xx, never a 2xx, so no input is accepted more
loosely than documented). /health's 503 "no dispatcher" is the one documented exception
to 5xx (no dispatcher runs beside these tests).

Every operation gets EXAMPLES_PER_OPERATION generated requests, valid and invalid
(schemathesis' positive and negative modes), sent in-process to an app on the real test
Redis; the long tier sends LONG_EXAMPLES_PER_OPERATION. Valid names are mostly swapped
for a few fixed ones (one center, three ids, three skills), so generated requests also
meet existing agents and contacts: duplicates, busy agents, skills an agent has or lacks,
ended contacts.
"""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.python import asgi

from acd.api.app import create_app
from acd.keys import check_name
from acd.settings import Settings

EXAMPLES_PER_OPERATION = 40
LONG_EXAMPLES_PER_OPERATION = 200
CENTER = f"schema-{uuid.uuid4().hex[:8]}"
IDS = ["p0", "p1", "p2"]
SKILLS = ["s0", "s1", "s2"]

# The schema is the app's own, read without Redis; requests go to an app on the test Redis.
# (schemathesis.pytest.from_fixture, the lazy loader, fails under pytest 9.2: it sets
# Node._nodeid, which pytest 9.2 no longer has.)
schema = schemathesis.openapi.from_dict(create_app().openapi())
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                                max_examples=EXAMPLES_PER_OPERATION)


def _valid(value: object) -> bool:
    try:
        check_name("name", value)  # type: ignore[arg-type]
    except ValueError:
        return False
    return True


def _pooled(value: object, pool: list[str]) -> object:
    """A valid name becomes one of ``pool`` three times in four; anything else stays."""
    if not _valid(value):
        return value
    n = zlib.crc32(str(value).encode()) % (len(pool) + 1)
    return pool[n] if n < len(pool) else value


@schema.hook
def map_path_parameters(context: Any, path_parameters: dict[str, Any]) -> dict[str, Any]:
    for name, value in list((path_parameters or {}).items()):
        text = unquote(value) if isinstance(value, str) else value
        if name == "center" and _valid(text):
            path_parameters[name] = CENTER
        elif name in ("agent_id", "contact_id"):
            path_parameters[name] = _pooled(text, IDS)
        elif name == "skill":
            path_parameters[name] = _pooled(text, SKILLS)
        elif name in ("agent_key", "contact_key") and isinstance(text, str):
            kind, sep, rest = text.partition(":")
            if sep and kind == name.removesuffix("_key"):
                path_parameters[name] = f"{kind}:{_pooled(rest, IDS)}"
    return path_parameters


@schema.hook
def map_query(context: Any, query: dict[str, Any]) -> dict[str, Any]:
    if isinstance(query, dict) and isinstance(query.get("block_ms"), int):
        # A long poll with no events waits the whole block (and Redis rounds short blocks
        # up to its 100 ms timer): keep the run short, with a few real blocking reads.
        query["block_ms"] = 1 if query["block_ms"] > 4000 else 0
    return query


@schema.hook
def map_body(context: Any, body: Any) -> Any:
    if isinstance(body, dict):
        if "id" in body:
            body["id"] = _pooled(body["id"], IDS)
        if "skill" in body:
            body["skill"] = _pooled(body["skill"], SKILLS)
        if isinstance(body.get("skills"), list):
            body["skills"] = [_pooled(s, SKILLS) for s in body["skills"]]
    return body


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, negative_data_rejection]


@pytest.fixture(scope="module")
def schema_app(redis_url: str) -> Iterator[FastAPI]:
    # schemathesis sends its requests to Host "testserver" (schemathesis.python.asgi.HOST)
    yield create_app(Settings(redis_url=redis_url, acd_center=CENTER,
                              trusted_hosts=[asgi.HOST]))
    asgi.shutdown_lifespans()


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_every_answer_is_documented_and_no_server_error(
        case: Any, schema_app: FastAPI, api_headers: dict[str, str]) -> None:
    check(case, schema_app, api_headers)


@pytest.mark.long
@schema.parametrize()
@settings(max_examples=LONG_EXAMPLES_PER_OPERATION, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_every_answer_is_documented_many_examples(
        case: Any, schema_app: FastAPI, api_headers: dict[str, str]) -> None:
    check(case, schema_app, api_headers)


def check(case: Any, app: FastAPI, headers: dict[str, str]) -> None:
    response = case.call(app=app, timeout=15, headers=headers)
    # With the admin key every request reaches its route (no 401, 403 or Host 400).
    assert response.status_code not in (401, 403) and "TRUSTED_HOSTS" not in response.text
    if case.path == "/health" and response.status_code == 503:
        # Its documented answer when no dispatcher beats, and none runs here.
        assert response.json()["status"] == "no dispatcher", response.text
        return
    case.validate_response(response, checks=CHECKS)
