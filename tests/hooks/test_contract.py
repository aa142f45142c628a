"""What the hook sends matches JobMojito's published OpenAPI request schema."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook
from tests.conftest import CONTRACT

POSITION = "7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d"


def _nullable_to_type_union(node: Any) -> Any:
    """Read OpenAPI 3.0's ``nullable: true`` as JSON Schema's ``type: [T, "null"]``.

    The contract marks nullable fields the 3.0 way, which a 2020-12 validator ignores.
    """
    if isinstance(node, dict):
        node = {key: _nullable_to_type_union(value) for key, value in node.items()}
        if node.pop("nullable", False) and isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
            if "enum" in node:
                node["enum"] = [*node["enum"], None]
        return node
    if isinstance(node, list):
        return [_nullable_to_type_union(item) for item in node]
    return node


@pytest.fixture(scope="module")
def request_schema() -> dict[str, Any]:
    spec = json.loads(CONTRACT.read_text())
    operation = spec["paths"]["/job-interview-set-state"]["post"]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema: dict[str, Any] = _nullable_to_type_union(spec["components"]["schemas"][ref.rsplit("/", 1)[-1]])
    return schema


@pytest.mark.parametrize(
    "kwargs",
    [
        {"status": "active"},
        {"status": "archived", "is_embedded": False},
        {"is_embedded": True},
        {"status": "completed", "is_embedded": True},
    ],
)
def test_set_state_requests_validate_against_the_contract(
    jobmojito_sandbox: Any, jobmojito_conn: Any, request_schema: dict[str, Any], kwargs: dict[str, Any]
) -> None:
    jobmojito_sandbox.seed([{"id": POSITION, "status": "draft"}])
    JobMojitoHook(jobmojito_conn()).set_interview_state(POSITION.upper(), **kwargs)
    (sent,) = [r for r in jobmojito_sandbox.requests_log() if r["path"].endswith("/job-interview-set-state")]
    jsonschema.validate(sent["json"], request_schema, format_checker=jsonschema.FormatChecker())
    assert sent["headers"].get("Content-Type", sent["headers"].get("content-type")) == "application/json"


def test_the_schema_check_itself_rejects_a_bad_request(request_schema: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"position_id": "x", "status": "actve"}, request_schema)
