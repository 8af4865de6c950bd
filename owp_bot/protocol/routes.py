"""The endpoint table: one declaration per endpoint drives routing, auth, validation, answers and the spec.

A module declares `api = Api("tag")` and its handlers with `@api.route(...)`; `create_app` adds every table to
the router and `spec.build_spec` documents the same tables, so code and spec cannot drift apart unnoticed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ValidationError

from owp_bot.errors import Problem
from owp_bot.keys import SCHEDULER

Auth = Literal["none", "worker", "admin", "worker_or_admin", "reader"]
Result = BaseModel | tuple[int, BaseModel] | web.StreamResponse
Handler = Callable[["Call"], Awaitable[Result]]
YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"})


@dataclass
class Call:
    """What a handler gets: the request, its validated body and query, and who is calling."""

    request: web.Request
    body: Any = None
    query: Any = None
    worker_id: str | None = None
    admin: bool = False
    headers: dict[str, str] = field(default_factory=dict)  # extra answer headers

    def path(self, name: str) -> str:
        return self.request.match_info[name]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    operation_id: str
    summary: str
    auth: Auth
    handler: Handler
    responses: dict[int, type[BaseModel] | None]
    body: type[BaseModel] | Literal["yaml"] | None = None
    query: type[BaseModel] | None = None
    tag: str = ""
    description: str = ""
    streams: tuple[str, ...] = ()  # other media types the 200 answer may stream (text/csv, …)


class Api:
    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.endpoints: list[Endpoint] = []

    def route(
        self, method: str, path: str, *, summary: str, auth: Auth, responses: dict[int, type[BaseModel] | None],
        body: type[BaseModel] | Literal["yaml"] | None = None, query: type[BaseModel] | None = None,
        description: str = "", streams: tuple[str, ...] = (),
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.endpoints.append(Endpoint(method, path, handler.__name__, summary, auth, handler, responses,
                                           body, query, self.tag, description or (handler.__doc__ or "").strip(),
                                           streams))
            return handler
        return register

    def add_to(self, app: web.Application) -> None:
        for endpoint in self.endpoints:
            app.router.add_route(endpoint.method, endpoint.path, _serve(endpoint), name=endpoint.operation_id)


def _serve(endpoint: Endpoint) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def serve(request: web.Request) -> web.StreamResponse:
        call = Call(request)
        await _authorise(endpoint.auth, call)
        if endpoint.query is not None:
            _known_parameters(endpoint, endpoint.query, request)
            call.query = _validate(endpoint.query, dict(request.query), "query")
        elif request.query:
            raise Problem(400, f"{endpoint.method} {endpoint.path} takes no query parameters; "
                               f"remove {', '.join(sorted(request.query))}")
        if endpoint.body == "yaml":
            call.body = await _text_body(request)
        elif endpoint.body is not None:
            call.body = _validate(endpoint.body, await _json_body(request), "body")
        result = await endpoint.handler(call)
        if isinstance(result, web.StreamResponse):
            return result
        status, model = result if isinstance(result, tuple) else (min(endpoint.responses), result)
        return web.Response(body=model.model_dump_json().encode(), status=status, headers=call.headers,
                            content_type="application/json")
    return serve


def _known_parameters(endpoint: Endpoint, query: type[BaseModel], request: web.Request) -> None:
    """An unknown query parameter is a 400, as on the endpoints that take none (docs/protocol.md, Errors)."""
    if query.model_config.get("extra") != "forbid":
        return
    unknown = sorted(set(request.query) - set(query.model_fields))
    if unknown:
        raise Problem(400, f"{endpoint.method} {endpoint.path} takes no query parameter {', '.join(unknown)}; "
                           f"remove it (known: {', '.join(query.model_fields)})")


async def _authorise(auth: Auth, call: Call) -> None:
    if auth == "none":
        return
    scheduler = call.request.app[SCHEDULER]
    header = call.request.headers.get("Authorization", "")
    admin_token = call.request.headers.get("X-Admin-Token")
    if admin_token is not None:
        if not scheduler.is_admin(admin_token):
            raise Problem(401, "X-Admin-Token is not the admin token of this pool")
        call.admin = True
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Problem(401, "use 'Authorization: Bearer <worker token>'")
        call.worker_id = await scheduler.authenticate(token.strip())
    if auth == "reader" and (call.admin or call.worker_id or scheduler.settings.public_dashboard):
        return
    if auth in ("admin",) and not call.admin:
        raise Problem(401, "this needs the admin token in the X-Admin-Token header")
    if auth == "worker" and call.worker_id is None:
        raise Problem(401, "this needs a worker token: 'Authorization: Bearer <token>' "
                           "(register with POST /v1/workers/register)")
    if auth == "worker_or_admin" and call.worker_id is None and not call.admin:
        raise Problem(401, "this needs a worker token (Authorization: Bearer) or the admin token (X-Admin-Token)")
    if auth == "reader" and not (call.admin or call.worker_id):
        raise Problem(401, "this pool is private; send the admin token (X-Admin-Token) or a worker token")


def _validate(model: type[BaseModel], data: Any, where: str) -> BaseModel:
    """JSON bodies arrive as bytes, query strings as a dict of text; models use StrictBool where `0` must
    not pass for `false`."""
    try:
        if isinstance(data, bytes):
            return model.model_validate_json(data)
        return model.model_validate(data)
    except ValidationError as exc:
        broken = [e for e in exc.errors(include_url=False) if e["type"] == "json_invalid"]
        if broken:  # parsed once, here: the JSON itself is broken, not a field of it
            raise Problem(400, f"the body is not valid JSON: {broken[0]['ctx']['error']}") from None
        errors = [{"field": ".".join(str(p) for p in e["loc"]) or where, "message": e["msg"]}
                  for e in exc.errors(include_url=False, include_context=False, include_input=False)]
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        raise Problem(422, f"invalid {where}: {summary}", errors=errors) from None


async def _json_body(request: web.Request) -> bytes:
    if not request.body_exists:
        raise Problem(400, "this needs a JSON body")
    if request.content_type != "application/json":
        raise Problem(415, f"send the body as application/json, not {request.content_type or 'no type'}")
    return await request.read()  # parsed and checked by the body's model (_validate)


async def _text_body(request: web.Request) -> str:
    if request.content_type not in YAML_TYPES:
        raise Problem(415, f"send the document as application/yaml, not {request.content_type or 'no type'}")
    raw = await request.read()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Problem(400, "the document is not UTF-8 text") from None
