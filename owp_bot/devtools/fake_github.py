"""A local GitHub for tests and the demo: GitHub's REST shapes for what the pool calls, and signed webhooks.

`FakeGitHub` is an aiohttp server on 127.0.0.1 that answers installation tokens (checking the app JWT),
issues, comments, labels, pulls and the app-manifest conversion, and logs every call. Its helpers
(`open_issue`, `label_issue`, `open_pull`, `merge_pull`, `comment`, …) change its state *and* deliver the
matching webhook, signed with the webhook secret, to the pool it is connected to — as GitHub would.
Failures are injected with `fail(...)`: the next matching calls answer the given status and headers; what
happens on GitHub while a call is in flight, with `meanwhile(...)`. As on GitHub, a renamed or transferred repo's
former name redirects to its new one, and `GET /repositories/{id}` finds a repo by its id whatever its name.
Each change to an issue moves its `updated_at` on by at least a second (GitHub's has whole seconds), as a
person's changes one after the other would; a test of two changes within one second builds their payloads.
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from owp_bot.clock import Clock, SystemClock, iso
from owp_bot.devtools import github_payloads as gp

Examples = Callable[[str, str | None], gp.Payload | None]
BOT_LOGIN = "owp-pool[bot]"
PERMISSIONS = {"issues": "write", "pull_requests": "read", "metadata": "read"}


@dataclass
class FakeComment:
    id: int
    issue_number: int
    body: str
    author: str
    kind: str = "User"


@dataclass
class FakeIssue:
    number: int
    title: str
    body: str | None
    author: str
    labels: list[str] = field(default_factory=list)
    state: str = "open"
    comments: list[FakeComment] = field(default_factory=list)
    updated_at: float = 0.0
    # not in its repo any more, as GitHub's `GET …/issues/{number}` answers then: deleted (410 Gone), or
    # transferred to (repo, number) (301 Moved Permanently to the issue in its new repo)
    deleted: bool = False
    moved_to: tuple[str, int] | None = None


@dataclass
class FakePull:
    number: int
    title: str
    body: str | None
    author: str
    head_ref: str
    state: str = "open"
    merged: bool = False


@dataclass
class FakeRepo:
    full_name: str
    installation_id: int | None
    issues: dict[int, FakeIssue] = field(default_factory=dict)
    pulls: dict[int, FakePull] = field(default_factory=dict)
    next_number: int = 1
    id: int = 0  # GitHub's repository id: what the payload builders give its first name; kept across moves

    def __post_init__(self) -> None:
        self.id = self.id or gp.stable_id("repo", self.full_name)


@dataclass(frozen=True)
class RecordedCall:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    authorization: str


@dataclass
class Failure:
    method: str
    path: re.Pattern[str]
    status: int
    headers: dict[str, str]
    times: int


@dataclass
class Interlude:
    method: str
    path: re.Pattern[str]
    change: Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class Delivered:
    delivery_id: str
    event: str
    payload: gp.Payload
    status: int
    answer: Any


class FakeGitHub:
    """GitHub's REST API and webhook sender, on a real local port. Use `async with FakeGitHub(...) as gh`."""

    def __init__(
        self,
        *,
        webhook_secret: str,
        app_id: int = 1,
        app_private_key: str | None = None,
        clock: Clock | None = None,
        examples: Examples | None = None,
        bot_login: str = BOT_LOGIN,
        static_tokens: frozenset[str] = frozenset(),
    ) -> None:
        self.webhook_secret = webhook_secret
        self.app_id = app_id
        self.app_public_key = _public_key(app_private_key) if app_private_key else None
        self.clock = clock or SystemClock()
        self.examples = examples
        self.bot_login = bot_login
        self.static_tokens = set(static_tokens)
        self.repos: dict[str, FakeRepo] = {}
        self.former_names: dict[str, FakeRepo] = {}  # a renamed or transferred repo's old names: GitHub redirects them
        self.calls: list[RecordedCall] = []
        self.deliveries: list[Delivered] = []
        self.held: list[tuple[str, gp.Payload]] = []  # (event, payload) made while no pool was connected
        self.tokens: dict[str, int] = {}  # installation token -> installation id
        self.manifest_conversions: dict[str, gp.Payload] = {}
        self.pool_url: str | None = None
        self._failures: list[Failure] = []
        self._interludes: list[Interlude] = []
        self._next_comment_id = 1000
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.url = ""

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> str:
        app = web.Application(middlewares=[self._log_and_fail])
        routes = [
            ("POST", "/app/installations/{installation_id}/access_tokens", self._access_token),
            ("GET", "/app", self._app),
            ("GET", "/repositories/{repository_id:\\d+}", self._get_repository),
            ("GET", "/repos/{owner}/{name}", self._get_repo),
            ("GET", "/repos/{owner}/{name}/installation", self._repo_installation),
            ("GET", "/repos/{owner}/{name}/issues", self._list_issues),
            ("GET", "/repos/{owner}/{name}/issues/{number:\\d+}", self._get_issue),
            ("GET", "/repos/{owner}/{name}/issues/{number:\\d+}/comments", self._list_comments),
            ("POST", "/repos/{owner}/{name}/issues/{number:\\d+}/comments", self._create_comment),
            ("PATCH", "/repos/{owner}/{name}/issues/comments/{comment_id:\\d+}", self._edit_comment),
            ("POST", "/repos/{owner}/{name}/issues/{number:\\d+}/labels", self._add_labels),
            ("DELETE", "/repos/{owner}/{name}/issues/{number:\\d+}/labels/{label}", self._remove_label),
            ("GET", "/repos/{owner}/{name}/pulls", self._list_pulls),
            ("GET", "/repos/{owner}/{name}/pulls/{number:\\d+}", self._get_pull),
            ("POST", "/app-manifests/{code}/conversions", self._manifest_conversion),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, path, handler)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        return self.url

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeGitHub:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ set-up and inspection

    def add_repo(self, full_name: str, installation_id: int | None = 1) -> FakeRepo:
        repo = self.repos.setdefault(full_name, FakeRepo(full_name, installation_id))
        return repo

    def issue(self, full_name: str, number: int) -> FakeIssue:
        return self.repos[full_name].issues[number]

    def pull(self, full_name: str, number: int) -> FakePull:
        return self.repos[full_name].pulls[number]

    def bot_comments(self, full_name: str, number: int) -> list[FakeComment]:
        return [c for c in self.issue(full_name, number).comments if c.author == self.bot_login]

    def calls_to(self, method: str, path_contains: str = "") -> list[RecordedCall]:
        return [c for c in self.calls if c.method == method and path_contains in c.path]

    def fail(
        self,
        method: str,
        path_pattern: str,
        status: int,
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
    ) -> None:
        """The next `times` calls matching `method` and the regex `path_pattern` answer `status`."""
        self._failures.append(Failure(method, re.compile(path_pattern), status, headers or {}, times))

    def meanwhile(self, method: str, path_pattern: str, change: Callable[[], Awaitable[object]]) -> None:
        """The next call matching `method` and the regex `path_pattern` is answered only after `change` (a helper
        below, which delivers its webhook): what happens on GitHub while the pool's call is in flight."""
        self._interludes.append(Interlude(method, re.compile(path_pattern), change))

    def connect(self, pool_url: str) -> None:
        """Send the webhooks of the helpers below to this pool."""
        self.pool_url = pool_url.rstrip("/")

    # ------------------------------------------------------------------ webhooks

    async def deliver(
        self,
        pool_url: str | None,
        event: str,
        payload: gp.Payload,
        *,
        delivery_id: str | None = None,
        secret: str | None = None,
        signature: str | None = None,
        raw: bytes | None = None,
    ) -> Delivered:
        """POST one webhook delivery to `{pool_url}/webhooks/github`, signed like GitHub signs it."""
        target = (pool_url or self.pool_url or "").rstrip("/")
        if not target:
            raise RuntimeError("no pool to deliver to: pass pool_url or call connect(pool_url) first")
        body = raw if raw is not None else json.dumps(payload).encode()
        delivery_id = delivery_id or str(uuid.uuid4())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/fake",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery_id,
            "X-GitHub-Hook-ID": "1",
            "X-GitHub-Hook-Installation-Target-Type": "integration",
        }
        if signature is None:
            signature = gp.sign(secret if secret is not None else self.webhook_secret, body)
        if signature:
            headers["X-Hub-Signature-256"] = signature
        assert self._session is not None, "start the fake first"
        async with self._session.post(f"{target}/webhooks/github", data=body, headers=headers) as response:
            text = await response.text()
            try:
                answer: Any = json.loads(text)
            except json.JSONDecodeError:
                answer = text
        delivered = Delivered(delivery_id, event, payload, response.status, answer)
        self.deliveries.append(delivered)
        return delivered

    def example(self, event: str, action: str | None) -> gp.Payload | None:
        return self.examples(event, action) if self.examples else None

    async def _send(self, event: str, action: str | None, payload: gp.Payload) -> Delivered | None:
        about = payload.get("repository")
        if isinstance(about, dict) and about.get("full_name") in self.repos:  # a repo's id survives its moves
            about["id"] = self.repos[about["full_name"]].id  # of the repo the change was made on, delivered when it may
        if self.pool_url is None:
            self.held.append((event, payload))  # GitHub may send it late: a test can `deliver` it
            return None
        return await self.deliver(self.pool_url, event, payload)

    # ------------------------------------------------------------------ helpers: change, then deliver

    def _touch(self, item: FakeIssue) -> None:
        item.updated_at = max(float(int(self.clock.now())), item.updated_at + 1)

    def _issue_payload(self, repo: FakeRepo, item: FakeIssue) -> gp.Payload:
        now = self.clock.now()
        return gp.issue(
            repo.full_name,
            item.number,
            item.title,
            body=item.body,
            labels=item.labels,
            state=item.state,
            author=item.author,
            created_at=now,
            updated_at=item.updated_at,
            comments=len(item.comments),
            closed_at=now if item.state == "closed" else None,
        )

    async def _issues(
        self, repo: FakeRepo, item: FakeIssue, action: str, sender: str, changed_label: str | None = None
    ) -> Delivered | None:
        self._touch(item)
        payload = gp.issues_event(
            action,
            self._issue_payload(repo, item),
            repo.full_name,
            sender=sender,
            installation_id=repo.installation_id,
            changed_label=changed_label,
            base=self.example("issues", action),
        )
        return await self._send("issues", action, payload)

    async def open_issue(
        self,
        full_name: str,
        title: str,
        *,
        body: str | None = None,
        labels: list[str] | None = None,
        author: str = "maintainer",
    ) -> FakeIssue:
        repo = self.add_repo(full_name)
        item = FakeIssue(repo.next_number, title, body, author, list(labels or []))
        repo.issues[item.number] = item
        repo.next_number += 1
        await self._issues(repo, item, "opened", author)
        return item

    async def label_issue(
        self, full_name: str, number: int, *names: str, sender: str = "maintainer"
    ) -> Delivered | None:
        repo, item = self.repos[full_name], self.issue(full_name, number)
        delivered = None
        for name in names:
            if name not in item.labels:
                item.labels.append(name)
                delivered = await self._issues(repo, item, "labeled", sender, name)
        return delivered

    async def unlabel_issue(
        self, full_name: str, number: int, name: str, sender: str = "maintainer"
    ) -> Delivered | None:
        repo, item = self.repos[full_name], self.issue(full_name, number)
        item.labels.remove(name)
        return await self._issues(repo, item, "unlabeled", sender, name)

    async def edit_issue(
        self, full_name: str, number: int, *, title: str | None = None, sender: str = "maintainer"
    ) -> Delivered | None:
        repo, item = self.repos[full_name], self.issue(full_name, number)
        if title is not None:
            item.title = title
        return await self._issues(repo, item, "edited", sender)

    async def close_issue(self, full_name: str, number: int, sender: str = "maintainer") -> Delivered | None:
        repo, item = self.repos[full_name], self.issue(full_name, number)
        item.state = "closed"
        return await self._issues(repo, item, "closed", sender)

    async def reopen_issue(self, full_name: str, number: int, sender: str = "maintainer") -> Delivered | None:
        repo, item = self.repos[full_name], self.issue(full_name, number)
        item.state = "open"
        return await self._issues(repo, item, "reopened", sender)

    async def comment(
        self, full_name: str, number: int, body: str, *, author: str = "octocat", kind: str = "User"
    ) -> Delivered | None:
        repo, item = self.repos[full_name], self.issue(full_name, number)
        note = self._add_comment(item, body, author, kind)
        now = self.clock.now()
        payload = gp.issue_comment_event(
            "created",
            self._issue_payload(repo, item),
            gp.comment(full_name, number, note.id, body, author=author, kind=kind, created_at=now),
            full_name,
            installation_id=repo.installation_id,
            base=self.example("issue_comment", "created"),
        )
        return await self._send("issue_comment", "created", payload)

    def _pull_payload(self, repo: FakeRepo, pr: FakePull, merged_by: str | None = None) -> gp.Payload:
        return gp.pull_request(
            repo.full_name,
            pr.number,
            pr.title,
            body=pr.body,
            head_ref=pr.head_ref,
            author=pr.author,
            state=pr.state,
            merged=pr.merged,
            created_at=self.clock.now(),
            merged_by=merged_by,
        )

    async def _pulls(self, repo: FakeRepo, pr: FakePull, action: str, sender: str) -> Delivered | None:
        payload = gp.pull_request_event(
            action,
            self._pull_payload(repo, pr, sender if pr.merged else None),
            repo.full_name,
            sender=sender,
            installation_id=repo.installation_id,
            base=self.example("pull_request", action),
        )
        return await self._send("pull_request", action, payload)

    async def open_pull(
        self,
        full_name: str,
        number: int | None = None,
        *,
        title: str = "A fix",
        body: str | None = None,
        head_ref: str = "patch-1",
        user: str = "octocat",
    ) -> FakePull:
        repo = self.add_repo(full_name)
        if number is None:
            number = repo.next_number
        repo.next_number = max(repo.next_number, number + 1)
        pr = FakePull(number, title, body, user, head_ref)
        repo.pulls[number] = pr
        await self._pulls(repo, pr, "opened", user)
        return pr

    async def edit_pull(self, full_name: str, number: int, *, body: str | None = None) -> Delivered | None:
        repo, pr = self.repos[full_name], self.pull(full_name, number)
        pr.body = body
        return await self._pulls(repo, pr, "edited", pr.author)

    async def merge_pull(self, full_name: str, number: int, sender: str = "maintainer") -> Delivered | None:
        repo, pr = self.repos[full_name], self.pull(full_name, number)
        pr.state, pr.merged = "closed", True
        return await self._pulls(repo, pr, "closed", sender)

    async def close_pull(self, full_name: str, number: int, sender: str = "maintainer") -> Delivered | None:
        repo, pr = self.repos[full_name], self.pull(full_name, number)
        pr.state = "closed"
        return await self._pulls(repo, pr, "closed", sender)

    async def reopen_pull(self, full_name: str, number: int, sender: str = "maintainer") -> Delivered | None:
        repo, pr = self.repos[full_name], self.pull(full_name, number)
        pr.state = "open"
        return await self._pulls(repo, pr, "reopened", sender)

    async def review_pull(
        self, full_name: str, number: int, state: str, *, reviewer: str = "maintainer"
    ) -> Delivered | None:
        repo, pr = self.repos[full_name], self.pull(full_name, number)
        self._next_comment_id += 1
        payload = gp.pull_request_review_event(
            "submitted",
            gp.review(
                full_name,
                number,
                self._next_comment_id,
                state,
                author=reviewer,
                submitted_at=self.clock.now(),
            ),
            self._pull_payload(repo, pr),
            full_name,
            installation_id=repo.installation_id,
            base=self.example("pull_request_review", "submitted"),
        )
        return await self._send("pull_request_review", "submitted", payload)

    async def dismiss_review(
        self, full_name: str, number: int, review_id: int, *, reviewer: str = "maintainer",
        dismisser: str = "maintainer",
    ) -> Delivered | None:
        """A maintainer dismisses review `review_id` (GitHub sends the review with state `dismissed`)."""
        repo, pr = self.repos[full_name], self.pull(full_name, number)
        payload = gp.pull_request_review_event(
            "dismissed",
            gp.review(full_name, number, review_id, "dismissed", author=reviewer, submitted_at=self.clock.now()),
            self._pull_payload(repo, pr),
            full_name,
            installation_id=repo.installation_id,
            base=self.example("pull_request_review", "dismissed"),
        )
        payload["sender"] = gp.user(dismisser)
        return await self._send("pull_request_review", "dismissed", payload)

    async def rename_repo(self, full_name: str, name: str, *, sender: str = "maintainer") -> Delivered | None:
        """The repo is called `name` from now on (same owner); its old name redirects to the new one."""
        owner, old_name = full_name.split("/", 1)
        changes = {"repository": {"name": {"from": old_name}}}
        return await self._move_repo(full_name, f"{owner}/{name}", "renamed", changes, sender)

    async def transfer_repo(self, full_name: str, owner: str, *, sender: str = "maintainer") -> Delivered | None:
        """The repo moves to another owner (an organization), keeping its name."""
        old_owner, name = full_name.split("/", 1)
        changes = {"owner": {"from": {"organization": gp.user(old_owner, "Organization")}}}
        return await self._move_repo(full_name, f"{owner}/{name}", "transferred", changes, sender)

    async def _move_repo(
        self, full_name: str, new_name: str, action: str, changes: gp.Payload, sender: str
    ) -> Delivered | None:
        repo = self.repos.pop(full_name)
        repo.full_name = new_name
        self.repos[new_name] = repo
        self.former_names[full_name] = repo
        payload = gp.repository_event(
            action,
            new_name,
            changes,
            sender=sender,
            installation_id=repo.installation_id,
            base=self.example("repository", action),
        )
        return await self._send("repository", action, payload)

    async def install(self, installation_id: int, account: str, repos: list[str]) -> Delivered | None:
        for name in repos:
            self.add_repo(name, installation_id).installation_id = installation_id
        payload = gp.installation_event(
            "created", installation_id, account, repos, base=self.example("installation", "created")
        )
        for listed in payload["repositories"]:
            listed["id"] = self.repos[listed["full_name"]].id
        return await self._send("installation", "created", payload)

    # ------------------------------------------------------------------ the REST side

    def _add_comment(self, item: FakeIssue, body: str, author: str, kind: str) -> FakeComment:
        self._touch(item)
        self._next_comment_id += 1
        note = FakeComment(self._next_comment_id, item.number, body, author, kind)
        item.comments.append(note)
        return note

    @web.middleware
    async def _log_and_fail(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body: Any = None
        if request.body_exists:
            raw = await request.read()
            body = json.loads(raw) if raw else None
        self.calls.append(
            RecordedCall(
                request.method,
                request.path,
                dict(request.query),
                body,
                request.headers.get("Authorization", ""),
            )
        )
        for interlude in self._interludes:
            if interlude.method == request.method and interlude.path.search(request.path):
                self._interludes.remove(interlude)
                await interlude.change()
                break
        for failure in self._failures:
            if failure.times > 0 and failure.method == request.method and failure.path.search(request.path):
                failure.times -= 1
                message = {403: "API rate limit exceeded", 429: "You have exceeded a secondary rate limit"}
                return web.json_response(
                    {
                        "message": message.get(failure.status, "Server Error"),
                        "documentation_url": "https://docs.github.com/rest",
                    },
                    status=failure.status,
                    headers=failure.headers,
                )
        return await handler(request)  # type: ignore[no-any-return]

    def _check_app_jwt(self, request: web.Request) -> None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise _error(401, "A JSON web token could not be decoded")
        if self.app_public_key is None:
            return
        try:
            claims = jwt.decode(
                token,
                self.app_public_key,
                algorithms=["RS256"],
                options={"verify_exp": False, "verify_iat": False},
            )
        except jwt.PyJWTError:
            raise _error(401, "A JSON web token could not be decoded") from None
        now = self.clock.now()
        if str(claims.get("iss")) != str(self.app_id) or not claims["iat"] <= now + 60 or claims["exp"] < now:
            raise _error(401, "'Expiration time' claim ('exp') or issuer is invalid")

    def _check_token(self, request: web.Request, repo: FakeRepo) -> None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if token in self.static_tokens:
            return
        if scheme.lower() not in ("token", "bearer") or self.tokens.get(token) != repo.installation_id:
            raise _error(401, "Bad credentials")

    def _repo(self, request: web.Request, *, writable: bool = False) -> FakeRepo:
        name = f"{request.match_info['owner']}/{request.match_info['name']}"
        repo = self.repos.get(name)
        if repo is None and name in self.former_names:  # GitHub answers a moved repo's old name with a redirect
            moved = self.former_names[name]
            location = self.url + request.path_qs.replace(f"/repos/{name}", f"/repos/{moved.full_name}", 1)
            raise (web.HTTPMovedPermanently if request.method == "GET" else web.HTTPTemporaryRedirect)(location)
        if repo is None:
            raise _error(404, "Not Found")
        self._check_token(request, repo)
        if writable and self.tokens.get(request.headers.get("Authorization", "").partition(" ")[2]) is None:
            raise _error(403, "Resource not accessible by personal access token")
        return repo

    def _issue(self, request: web.Request, repo: FakeRepo) -> FakeIssue:
        item = repo.issues.get(int(request.match_info["number"]))
        if item is None:
            raise _error(404, "Not Found")
        return item

    async def _access_token(self, request: web.Request) -> web.Response:
        self._check_app_jwt(request)
        installation_id = int(request.match_info["installation_id"])
        if not any(r.installation_id == installation_id for r in self.repos.values()):
            raise _error(404, "Not Found")
        token = "ghs_" + secrets.token_urlsafe(27)
        self.tokens[token] = installation_id
        return web.json_response(
            {
                "token": token,
                "expires_at": iso(self.clock.now() + 3600),
                "permissions": PERMISSIONS,
                "repository_selection": "selected",
            },
            status=201,
        )

    async def _app(self, request: web.Request) -> web.Response:
        self._check_app_jwt(request)
        return web.json_response(
            {
                "id": self.app_id,
                "slug": "owp-pool",
                "name": "OWP Pool",
                "owner": gp.user("acme", "Organization"),
                "permissions": PERMISSIONS,
            }
        )

    async def _get_repository(self, request: web.Request) -> web.Response:
        """A repo by its id: its name now, whatever name it had."""
        repository_id = int(request.match_info["repository_id"])
        repo = next((r for r in self.repos.values() if r.id == repository_id), None)
        if repo is None:
            raise _error(404, "Not Found")
        self._check_token(request, repo)
        return web.json_response({**gp.repository(repo.full_name), "id": repo.id})

    async def _get_repo(self, request: web.Request) -> web.Response:
        repo = self._repo(request)
        return web.json_response({**gp.repository(repo.full_name), "id": repo.id})

    async def _repo_installation(self, request: web.Request) -> web.Response:
        self._check_app_jwt(request)
        repo = self.repos.get(f"{request.match_info['owner']}/{request.match_info['name']}")
        if repo is None or repo.installation_id is None:
            raise _error(404, "Not Found")
        return web.json_response(
            gp.installation(repo.installation_id, repo.full_name.split("/")[0], self.app_id)
        )

    def _page(self, request: web.Request, items: list[gp.Payload]) -> web.Response:
        per_page = min(int(request.query.get("per_page", "30")), 100)
        page = int(request.query.get("page", "1"))
        chunk = items[(page - 1) * per_page : page * per_page]
        headers = {}
        if page * per_page < len(items):
            query = {**request.query, "page": str(page + 1), "per_page": str(per_page)}
            next_url = request.url.with_query(query)
            headers["Link"] = f'<{self.url}{next_url.path_qs}>; rel="next"'
        return web.json_response(chunk, headers=headers)

    async def _list_issues(self, request: web.Request) -> web.Response:
        repo = self._repo(request)
        state = request.query.get("state", "open")
        wanted = {n for n in request.query.get("labels", "").split(",") if n}
        found: list[gp.Payload] = []
        for number in sorted(set(repo.issues) | set(repo.pulls)):
            if number in repo.issues:
                item = repo.issues[number]
                if (state == "all" or item.state == state) and wanted <= set(item.labels):
                    found.append(self._issue_payload(repo, item))
            elif not wanted:  # the issues API lists pull requests too, marked with `pull_request`
                pr = repo.pulls[number]
                if state == "all" or pr.state == state:
                    found.append(
                        {
                            **gp.issue(
                                repo.full_name,
                                number,
                                pr.title,
                                body=pr.body,
                                author=pr.author,
                                state=pr.state,
                            ),
                            "pull_request": {"url": f"pulls/{number}"},
                        }
                    )
        return self._page(request, found)

    async def _get_issue(self, request: web.Request) -> web.Response:
        repo = self._repo(request)
        item = self._issue(request, repo)
        if item.deleted:
            raise _error(410, "This issue was deleted")
        if item.moved_to is not None:
            target, number = item.moved_to
            raise web.HTTPMovedPermanently(f"{self.url}/repos/{target}/issues/{number}")
        return web.json_response(self._issue_payload(repo, item))

    async def _list_comments(self, request: web.Request) -> web.Response:
        repo = self._repo(request)
        item = self._issue(request, repo)
        return self._page(
            request,
            [
                gp.comment(repo.full_name, item.number, c.id, c.body, author=c.author, kind=c.kind)
                for c in item.comments
            ],
        )

    async def _create_comment(self, request: web.Request) -> web.Response:
        repo = self._repo(request, writable=True)
        item = self._issue(request, repo)
        body = (await request.json())["body"]
        note = self._add_comment(item, body, self.bot_login, "Bot")
        return web.json_response(
            gp.comment(
                repo.full_name,
                item.number,
                note.id,
                body,
                author=note.author,
                kind="Bot",
                created_at=self.clock.now(),
            ),
            status=201,
        )

    async def _edit_comment(self, request: web.Request) -> web.Response:
        repo = self._repo(request, writable=True)
        comment_id = int(request.match_info["comment_id"])
        for item in repo.issues.values():
            for note in item.comments:
                if note.id == comment_id:
                    note.body = (await request.json())["body"]
                    return web.json_response(
                        gp.comment(
                            repo.full_name,
                            item.number,
                            note.id,
                            note.body,
                            author=note.author,
                            kind=note.kind,
                        )
                    )
        raise _error(404, "Not Found")

    async def _add_labels(self, request: web.Request) -> web.Response:
        repo = self._repo(request, writable=True)
        item = self._issue(request, repo)
        for name in (await request.json())["labels"]:
            if name not in item.labels:
                item.labels.append(name)
                self._touch(item)
        return web.json_response([gp.label(repo.full_name, n) for n in item.labels])

    async def _remove_label(self, request: web.Request) -> web.Response:
        repo = self._repo(request, writable=True)
        item = self._issue(request, repo)
        name = request.match_info["label"]
        if name not in item.labels:
            raise _error(404, "Label does not exist")
        item.labels.remove(name)
        self._touch(item)
        return web.json_response([gp.label(repo.full_name, n) for n in item.labels])

    async def _list_pulls(self, request: web.Request) -> web.Response:
        repo = self._repo(request)
        state = request.query.get("state", "open")
        return self._page(
            request,
            [
                self._pull_payload(repo, pr)
                for n, pr in sorted(repo.pulls.items())
                if state == "all" or pr.state == state
            ],
        )

    async def _get_pull(self, request: web.Request) -> web.Response:
        repo = self._repo(request)
        pr = repo.pulls.get(int(request.match_info["number"]))
        if pr is None:
            raise _error(404, "Not Found")
        return web.json_response(self._pull_payload(repo, pr))

    async def _manifest_conversion(self, request: web.Request) -> web.Response:
        code = request.match_info["code"]
        if code in self.manifest_conversions:  # a code works once, like GitHub's
            raise _error(404, "Not Found")
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ).decode()
        answer = {
            "id": self.app_id,
            "slug": "owp-pool",
            "node_id": "A_1",
            "name": "OWP Pool",
            "owner": gp.user("acme", "Organization"),
            "html_url": "https://github.com/apps/owp-pool",
            "client_id": "Iv1.fake",
            "client_secret": secrets.token_hex(20),
            "webhook_secret": secrets.token_hex(20),
            "pem": pem,
            "permissions": PERMISSIONS,
        }
        self.manifest_conversions[code] = answer
        self.app_public_key = _public_key(pem)
        self.webhook_secret = str(answer["webhook_secret"])
        return web.json_response(answer, status=201)


def _error(status: int, message: str) -> web.HTTPException:
    cls = {401: web.HTTPUnauthorized, 403: web.HTTPForbidden, 404: web.HTTPNotFound, 410: web.HTTPGone}[status]
    return cls(
        text=json.dumps({"message": message, "documentation_url": "https://docs.github.com/rest"}),
        content_type="application/json",
    )


def _public_key(private_key_pem: str) -> Any:
    return serialization.load_pem_private_key(private_key_pem.encode(), password=None).public_key()
