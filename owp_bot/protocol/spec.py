"""Build the OpenAPI 3.1 document from the endpoint tables and wire models.

The built document is committed as `openapi.json` and served at `/openapi.json`; `owp openapi --check`
(and a test) fail when the code and the committed spec disagree.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from owp_bot import __version__
from owp_bot.protocol.models import OWNER_OR_NAME, Problem
from owp_bot.protocol.routes import YAML_TYPES, Api, Endpoint

SPEC_PATH = Path(__file__).parent / "openapi.json"
_PATH_PARAM = re.compile(r"{([a-z_]+)(?::((?:[^{}]|{[^{}]*})*))?}")  # {name} or {name:regex}
PROBLEM_TYPE = "application/problem+json"
PATH_PARAMS: dict[str, dict[str, Any]] = {"owner": {"pattern": OWNER_OR_NAME}, "name": {"pattern": OWNER_OR_NAME}}

DESCRIPTION = """The Open Work Protocol: volunteer contributors (workers) take time-limited leases on
maintainers' issues, within each repository's review budget. See docs/protocol.md for the protocol in prose."""


def build_spec(apis: Iterable[Api]) -> dict[str, Any]:
    endpoints = [e for api in apis for e in api.endpoints]
    models: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {(Problem, "serialization"): None}
    for endpoint in endpoints:
        if isinstance(endpoint.body, type):
            models[(endpoint.body, "validation")] = None
        for model in endpoint.responses.values():
            if model is not None:
                models[(model, "serialization")] = None
    key_map, schema = models_json_schema(list(models), ref_template="#/components/schemas/{model}")
    components: dict[str, Any] = dict(schema.get("$defs", {}))
    paths: dict[str, Any] = {}
    for endpoint in endpoints:
        path = _PATH_PARAM.sub(lambda m: "{" + m.group(1) + "}", endpoint.path)
        paths.setdefault(path, {})[endpoint.method.lower()] = _operation(endpoint, key_map)
    return {
        "openapi": "3.1.0",
        "info": {"title": "OWP Pool — Open Work Protocol", "version": __version__, "description": DESCRIPTION,
                 "license": {"name": "MIT", "identifier": "MIT"}},
        "servers": [{"url": "/"}],
        "tags": [{"name": tag} for tag in sorted({e.tag for e in endpoints})],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {
                "workerToken": {"type": "http", "scheme": "bearer",
                                "description": "the worker token returned once by POST /v1/workers/register"},
                "adminToken": {"type": "apiKey", "in": "header", "name": "X-Admin-Token",
                               "description": "the pool's OWP_ADMIN_TOKEN"},
            },
        },
    }


SECURITY: dict[str, list[dict[str, list[str]]]] = {  # who may call: OpenAPI security requirements
    "none": [], "worker": [{"workerToken": []}], "admin": [{"adminToken": []}],
    "worker_or_admin": [{"workerToken": []}, {"adminToken": []}],
    "reader": [{}, {"workerToken": []}, {"adminToken": []}],
}


def _ref(key_map: dict[Any, Any], model: type[BaseModel], mode: str) -> dict[str, Any]:
    return dict(key_map[(model, mode)])


def _operation(endpoint: Endpoint, key_map: dict[Any, Any]) -> dict[str, Any]:
    operation: dict[str, Any] = {"operationId": endpoint.operation_id, "summary": endpoint.summary,
                                 "tags": [endpoint.tag]}
    if endpoint.description:
        operation["description"] = endpoint.description
    parameters = [{"name": name, "in": "path", "required": True,
                   "schema": {"type": "string", **({"pattern": f"^{regex}$"} if regex else PATH_PARAMS.get(name, {}))}}
                  for name, regex in _PATH_PARAM.findall(endpoint.path)]
    if endpoint.query is not None:
        query_schema = endpoint.query.model_json_schema(ref_template="#/components/schemas/{model}")
        required = set(query_schema.get("required", []))
        for name, prop in query_schema.get("properties", {}).items():
            param: dict[str, Any] = {"name": name, "in": "query", "required": name in required, "schema": prop}
            if "description" in prop:
                param["description"] = prop["description"]
            parameters.append(param)
    if parameters:
        operation["parameters"] = parameters
    if endpoint.body == "yaml":
        operation["requestBody"] = {"required": True, "content": {
            t: {"schema": {"type": "string"}} for t in sorted(YAML_TYPES)}}
    elif endpoint.body is not None:
        operation["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": _ref(key_map, endpoint.body, "validation")}}}
    operation["security"] = SECURITY[endpoint.auth]
    responses: dict[str, Any] = {}
    for status, model in sorted(endpoint.responses.items()):
        answer: dict[str, Any] = {"description": "OK" if status < 300 else "see the body"}
        if model is not None:
            answer["content"] = {"application/json": {"schema": _ref(key_map, model, "serialization")}}
        if status == 200:
            streamed = {media: {"schema": {"type": "string"}} for media in endpoint.streams}
            answer.setdefault("content", {}).update(streamed)
        responses[str(status)] = answer
    problem = {"content": {PROBLEM_TYPE: {"schema": _ref(key_map, Problem, "serialization")}}}
    responses["4XX"] = {"description": "a problem with the request: the detail says what to do", **problem}
    responses["5XX"] = {"description": "the server could not answer", **problem}
    operation["responses"] = responses
    return operation


def dumps(spec: dict[str, Any]) -> str:
    return json.dumps(spec, indent=2, sort_keys=False, ensure_ascii=False) + "\n"
