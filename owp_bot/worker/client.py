"""`WorkerClient`: the Open Work Protocol from a worker's side, over aiohttp.

Used by `owp worker …` (a person at a terminal) and by the demo's simulated workers, so both speak the
protocol exactly as a third-party client would. Answers are parsed into the wire models; an error answer
raises `ProtocolError` carrying the server's problem+json `detail`.

The worker's credentials live in a small JSON file with mode 0600 (`WorkerConfig`).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from aiohttp import ClientError, ClientSession, ClientTimeout
from pydantic import BaseModel

from owp_bot.protocol import models as wire

M = TypeVar("M", bound=BaseModel)


class ProtocolError(Exception):
    """The pool answered with an error; `detail` is its problem+json explanation of what to do."""

    def __init__(self, status: int, detail: str, body: dict[str, Any] | None = None, *,
                 retry_after: float = 0.0) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail
        self.body = body or {}
        self.retry_after = retry_after  # seconds, from a 429's or 503's Retry-After

    @property
    def transient(self) -> bool:
        """Asking again later may succeed: the pool is unreachable, restarting, busy, or rate-limiting."""
        return self.status in (0, 408, 429, 502, 503, 504)


class WorkerClient:
    """One worker's session with one pool. `token` is the bearer token `register` returns."""

    def __init__(self, base_url: str, token: str | None = None, *, worker_id: str | None = None,
                 session: ClientSession | None = None, timeout: float = 15.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.worker_id = worker_id
        self._session = session
        self._owns_session = session is None
        self._timeout = ClientTimeout(total=timeout)

    async def __aenter__(self) -> WorkerClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> ClientSession:
        if self._session is None:
            self._session = ClientSession(timeout=self._timeout)
        return self._session

    async def request(self, method: str, path: str, *, json_body: Any = None,
                      params: dict[str, Any] | None = None, data: bytes | None = None,
                      content_type: str | None = None, auth: bool = True) -> Any:
        headers = {"Accept": "application/json", **(self.credentials() if auth else {})}
        if content_type:
            headers["Content-Type"] = content_type
        try:
            async with self.session.request(method, self.base_url + path, json=json_body, data=data,
                                            params=params, headers=headers) as response:
                text = await response.text()
                status = response.status
                retry_after = _seconds(response.headers.get("Retry-After"))
        except (ClientError, TimeoutError) as exc:
            raise ProtocolError(0, f"cannot reach the pool at {self.base_url}: {exc or type(exc).__name__}; "
                                   "is the server running and the URL right?") from exc
        try:
            body = json.loads(text) if text else None
        except json.JSONDecodeError:
            body = None
        if status >= 400:
            detail = body.get("detail") if isinstance(body, dict) else None
            raise ProtocolError(status, str(detail or text[:200] or f"HTTP {status}"),
                                body if isinstance(body, dict) else None, retry_after=retry_after)
        return body

    def credentials(self) -> dict[str, str]:
        if not self.token:
            raise ProtocolError(401, "no worker token; run `owp worker register` first")
        return {"Authorization": f"Bearer {self.token}"}

    async def call(self, model: type[M], method: str, path: str, **kwargs: Any) -> M:
        return model.model_validate(await self.request(method, path, **kwargs))

    # ------------------------------------------------------------------ the protocol

    async def register(self, name: str, *, skills: list[str], capacity_points: int,
                       max_concurrent_tasks: int = 1, github_handle: str | None = None) -> wire.Registered:
        body = {"name": name, "skills": skills, "capacity_points": capacity_points,
                "max_concurrent_tasks": max_concurrent_tasks, "github_handle": github_handle}
        registered = await self.call(wire.Registered, "POST", "/v1/workers/register", auth=False,
                                      json_body={k: v for k, v in body.items() if v is not None})
        self.token, self.worker_id = registered.token, registered.worker_id
        return registered

    async def heartbeat(self, status: str = "idle", note: str | None = None) -> wire.HeartbeatAck:
        body = {"status": status} | ({"note": note} if note else {})
        return await self.call(wire.HeartbeatAck, "POST", "/v1/workers/heartbeat", json_body=body)

    async def offers(self) -> wire.Offers:
        """Reserve the best eligible tasks as offers (each until its `expires_at`); `why_none` when none."""
        return await self.call(wire.Offers, "POST", "/v1/work/offers")

    async def accept(self, offer_id: str) -> wire.OfferAccepted:
        return await self.call(wire.OfferAccepted, "POST", f"/v1/work/offers/{offer_id}/accept")

    async def reject(self, offer_id: str, reason: str, note: str | None = None) -> wire.OfferRejected:
        body = {"reason": reason} | ({"note": note} if note else {})
        path = f"/v1/work/offers/{offer_id}/reject"
        return await self.call(wire.OfferRejected, "POST", path, json_body=body)

    async def fetch_work(self) -> wire.Work:
        """`GET /v1/work`: lease the best eligible tasks straight into free capacity; list all leases."""
        return await self.call(wire.Work, "GET", "/v1/work")

    async def renew(self, lease_id: str) -> wire.LeaseRenewed:
        return await self.call(wire.LeaseRenewed, "POST", f"/v1/leases/{lease_id}/renew")

    async def report(self, task_id: str, status: str, *, message: str | None = None,
                     pr_url: str | None = None) -> wire.Task:
        body: dict[str, Any] = {"status": status}
        if message:
            body["message"] = message
        if pr_url:
            body["artifact"] = {"pr_url": pr_url}
        return await self.call(wire.Task, "POST", f"/v1/tasks/{task_id}/status", json_body=body)

    async def me(self) -> wire.Worker:
        return await self.call(wire.Worker, "GET", f"/v1/workers/{self._require_id()}")

    async def tasks(self, **query: str) -> list[wire.Task]:
        found: list[wire.Task] = []
        cursor = ""
        while True:
            params = {**query, "limit": "1000", **({"cursor": cursor} if cursor else {})}
            page = await self.call(wire.TaskList, "GET", "/v1/tasks", params=params)
            found += page.tasks
            if page.next_cursor is None:
                return found
            cursor = page.next_cursor

    async def leases(self) -> list[wire.Lease]:
        """The leases this worker holds, without taking new work (unlike `fetch_work`)."""
        return (await self.call(wire.Work, "GET", "/v1/work/leases")).leases

    def _require_id(self) -> str:
        if not self.worker_id:
            raise ProtocolError(401, "no worker id; run `owp worker register` first")
        return self.worker_id


def _seconds(retry_after: str | None) -> float:
    """Retry-After in seconds (its HTTP-date form is not used by the pool); 0 when absent or unreadable."""
    try:
        return max(0.0, float(retry_after)) if retry_after else 0.0
    except ValueError:
        return 0.0


# ------------------------------------------------------------------ credentials file


@dataclass(frozen=True)
class WorkerConfig:
    url: str
    worker_id: str
    token: str
    name: str = ""


def config_path(env: dict[str, str] | None = None) -> Path:
    """OWP_WORKER_CONFIG, else $XDG_CONFIG_HOME/owp/worker.json, else ~/.config/owp/worker.json."""
    env = dict(os.environ) if env is None else env
    if env.get("OWP_WORKER_CONFIG"):
        return Path(env["OWP_WORKER_CONFIG"]).expanduser()
    base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    return base / "owp" / "worker.json"


def save_config(config: WorkerConfig, path: Path) -> None:
    """Write the token readable by its owner only (0600), in a directory only the owner can list."""
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # the file may have existed with wider permissions
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(asdict(config), out, indent=2)
        out.write("\n")


def load_config(path: Path) -> WorkerConfig:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return WorkerConfig(url=data["url"], worker_id=data["worker_id"], token=data["token"],
                            name=data.get("name", ""))
    except FileNotFoundError:
        raise ProtocolError(401, f"no worker credentials at {path}; run `owp worker register --url URL "
                                 "--name NAME --skills a,b --capacity N` first") from None
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ProtocolError(400, f"{path} is not a worker credentials file ({exc}); register again") from None
