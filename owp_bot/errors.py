"""Problems: errors that become `application/problem+json` answers (RFC 9457) with an actionable detail."""

from __future__ import annotations

from typing import Any

TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Invalid request",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


class Problem(Exception):
    """Raise anywhere (handlers, operations); the error middleware answers with it."""

    def __init__(self, status: int, detail: str, *, title: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title or TITLES.get(status, "Error")
        self.detail = detail
        self.extra = extra

    def __reduce__(self) -> tuple[Any, ...]:  # pickled whole: a front process gets the writer's (writer_link.py)
        return _problem, (self.status, self.detail, self.title, self.extra)

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": "about:blank", "title": self.title, "status": self.status, "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


def _problem(status: int, detail: str, title: str, extra: dict[str, Any]) -> Problem:
    return Problem(status, detail, title=title, **extra)


def not_found(kind: str, ident: str, hint: str = "") -> Problem:
    return Problem(404, f"{kind} {ident} not found" + (f"; {hint}" if hint else ""))
