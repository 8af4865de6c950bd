"""One-click app creation through GitHub's app-manifest flow, for an admin of this pool.

`GET /github/setup` asks for the admin token; `POST /github/setup` checks it, remembers a one-time `state`
and posts the manifest to GitHub; GitHub sends the browser back to `/github/setup/callback?code=…&state=…`,
where the code is exchanged (`POST /app-manifests/{code}/conversions`) for the app's id, private key and
webhook secret. They are stored, used at once, and never shown again.
"""

from __future__ import annotations

import html
import json
import secrets
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from owp_bot.errors import Problem
from owp_bot.keys import SCHEDULER
from owp_bot.protocol.routes import Api, Call
from owp_bot.scheduler import github_operations as gh
from owp_bot.scheduler.service import NOW
from owp_bot.webhooks.client import GitHubError
from owp_bot.webhooks.service import GITHUB

setup_api = Api("github")
STATE_TTL = 3600.0
# What the app asks for: app-manifest.yml documents the same (a test keeps the two equal).
PERMISSIONS = {"issues": "write", "pull_requests": "read", "metadata": "read"}
EVENTS = [
    "issues",
    "issue_comment",
    "pull_request",
    "pull_request_review",
    "repository",
    "installation",
    "installation_repositories",
]


def manifest(base_url: str, name: str = "OWP Pool") -> dict[str, Any]:
    """GitHub's app manifest for this pool at `base_url` (its public origin)."""
    return {
        "name": name,
        "url": base_url,
        "public": False,
        "description": "Hands pool:ready issues to volunteer contributors by lease, within each repo's "
        "review budget.",
        "hook_attributes": {"url": f"{base_url}/webhooks/github", "active": True},
        "redirect_url": f"{base_url}/github/setup/callback",
        "default_permissions": PERMISSIONS,
        "default_events": [e for e in EVENTS if not e.startswith("installation")],
    }


def _page(title: str, body: str, status: int = 200) -> web.Response:
    text = (
        f"<!doctype html><html lang=en><meta charset=utf-8><title>{html.escape(title)}</title>"
        "<style>body{font:16px system-ui;max-width:40rem;margin:3rem auto;padding:0 1rem}"
        "input,button{font:inherit;padding:.4rem}</style>"
        f"<h1>{html.escape(title)}</h1>{body}</html>"
    )
    return web.Response(
        text=text,
        content_type="text/html",
        status=status,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


def _origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


@setup_api.route(
    "GET", "/github/setup", summary="Create the GitHub App (form)", auth="none", responses={200: None}
)
async def setup_form(call: Call) -> web.StreamResponse:
    return _page(
        "Create the OWP Pool GitHub App",
        (
            "<p>This creates a GitHub App for this pool with the permissions it needs, using GitHub's "
            "app-manifest flow. You will confirm the app on GitHub and be sent back here.</p>"
            "<form method=post action=/github/setup>"
            "<p><label>Admin token <input type=password name=admin_token required autocomplete=off>"
            "</label></p>"
            "<p><label>Organization (empty: your account) <input name=organization></label></p>"
            "<p><button>Continue on GitHub</button></p></form>"
        ),
    )


@setup_api.route(
    "POST",
    "/github/setup",
    summary="Create the GitHub App (post the manifest to GitHub)",
    auth="none",
    responses={200: None, 400: None, 401: None, 415: None},
)
async def setup_start(call: Call) -> web.StreamResponse:
    request = call.request
    if request.body_exists and request.content_type != "application/x-www-form-urlencoded":
        raise Problem(415, "send the set-up form as application/x-www-form-urlencoded, as /github/setup does")
    try:
        form = await request.post()
    except ValueError:
        raise Problem(400, "the set-up form could not be read; submit the form at /github/setup") from None
    scheduler = request.app[SCHEDULER]
    if not scheduler.is_admin(str(form.get("admin_token", ""))):
        return _page("Not allowed", "<p>That is not this pool's admin token (OWP_ADMIN_TOKEN).</p>", 401)
    state = secrets.token_urlsafe(24)
    await scheduler.run(gh.remember_setup_state, state, scheduler.now() + STATE_TTL)
    org = str(form.get("organization", "")).strip()
    web_url = scheduler.settings.github_web_url
    target = f"{web_url}/organizations/{org}/settings/apps/new" if org else f"{web_url}/settings/apps/new"
    payload = html.escape(json.dumps(manifest(_origin(request))))
    return _page(
        "Continuing on GitHub…",
        (
            f'<form id=manifest method=post action="{html.escape(target)}?state={state}">'
            f'<input type=hidden name=manifest value="{payload}">'
            "<p><button>Create the app on GitHub</button></p></form>"
            "<script>document.getElementById('manifest').submit()</script>"
        ),
    )


class ManifestCallback(BaseModel):
    code: str = Field("", max_length=200, description="the one-time code GitHub sends back")
    state: str = Field("", max_length=200, description="the state /github/setup gave GitHub")


@setup_api.route(
    "GET",
    "/github/setup/callback",
    summary="GitHub's redirect after creating the app",
    auth="none",
    query=ManifestCallback,
    responses={200: None, 403: None, 502: None},
)
async def setup_callback(call: Call) -> web.StreamResponse:
    """Exchanges the one-time code for the app's credentials and stores them (they are never shown)."""
    request = call.request
    github = request.app[GITHUB]
    code, state = call.query.code, call.query.state
    if not code or not state or not await github.scheduler.run(gh.take_setup_state, state, NOW):
        raise Problem(403, "this set-up link is unknown, used or expired; start again at /github/setup")
    try:
        app, _ = await github.client.call("POST", f"/app-manifests/{code}/conversions")
    except GitHubError as error:
        raise Problem(
            502, f"GitHub did not convert the manifest code: {error}; start again at /github/setup"
        ) from None
    await github.scheduler.run(
        gh.store_credentials,
        int(app["id"]),
        str(app["slug"]),
        app.get("html_url"),
        str(app["pem"]),
        str(app["webhook_secret"]),
        app.get("client_id"),
        app.get("client_secret"),
        NOW,
    )
    await github.reload_credentials()
    install = f"{app.get('html_url') or ''}/installations/new"
    return _page(
        "The GitHub App is ready",
        (
            f"<p>App <b>{html.escape(str(app['slug']))}</b> (id {int(app['id'])}) was created; its private "
            "key and webhook secret are stored in the pool's database and will not be shown again.</p>"
            f'<p>Next: <a href="{html.escape(install)}">install it on your repositories</a>, then add '
            "each repo to the pool (<code>PUT /v1/repos/{owner}/{name}</code>) and run its initial sync "
            "(<code>POST /v1/github/repos/{owner}/{name}/sync</code>).</p>"
        ),
    )
