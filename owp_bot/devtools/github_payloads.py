"""Webhook payloads and REST objects in GitHub's shapes, and GitHub's webhook signature.

Each builder returns what GitHub sends for that event. Given `base` (a real example payload, such as one
from the published `@octokit/webhooks-examples` package), a builder keeps every field of the example and
overwrites only the ones it is told about, so tests exercise the real shape with the values a case needs.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import zlib
from typing import Any

from owp_bot.clock import iso

Payload = dict[str, Any]
WEB = "https://github.com"
API = "https://api.github.com"


def sign(secret: str, body: bytes) -> str:
    """The `X-Hub-Signature-256` header GitHub sends: HMAC-SHA256 of the raw body, hex, `sha256=` prefixed."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def stable_id(*parts: object) -> int:
    """A repeatable numeric id for a login, repo or label (GitHub ids are numbers)."""
    return zlib.crc32("/".join(str(p) for p in parts).encode()) + 1000


def overlay(base: Payload | None, fields: Payload) -> Payload:
    """`base` (deep-copied) with `fields` written over it; nested objects are merged, not replaced."""
    merged = copy.deepcopy(base) if base else {}
    for key, value in fields.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = overlay(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def user(login: str, kind: str = "User") -> Payload:
    return {
        "login": login,
        "id": stable_id("user", login),
        "node_id": f"U_{stable_id('user', login)}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{stable_id('user', login)}?v=4",
        "gravatar_id": "",
        "url": f"{API}/users/{login}",
        "html_url": f"{WEB}/{login}",
        "type": kind,
        "site_admin": False,
    }


def repository(full_name: str, private: bool = False) -> Payload:
    owner, name = full_name.split("/", 1)
    return {
        "id": stable_id("repo", full_name),
        "node_id": f"R_{stable_id('repo', full_name)}",
        "name": name,
        "full_name": full_name,
        "private": private,
        "owner": user(owner, "Organization"),
        "html_url": f"{WEB}/{full_name}",
        "url": f"{API}/repos/{full_name}",
        "default_branch": "main",
    }


def label(full_name: str, name: str) -> Payload:
    return {
        "id": stable_id("label", full_name, name),
        "node_id": f"LA_{stable_id('label', full_name, name)}",
        "url": f"{API}/repos/{full_name}/labels/{name}",
        "name": name,
        "color": "ededed",
        "default": False,
        "description": None,
    }


def issue(
    full_name: str,
    number: int,
    title: str,
    *,
    body: str | None = None,
    labels: list[str] | None = None,
    state: str = "open",
    author: str = "octocat",
    created_at: float = 0.0,
    updated_at: float | None = None,
    closed_at: float | None = None,
    comments: int = 0,
) -> Payload:
    url = f"{API}/repos/{full_name}/issues/{number}"
    return {
        "url": url,
        "repository_url": f"{API}/repos/{full_name}",
        "labels_url": url + "/labels{/name}",
        "comments_url": url + "/comments",
        "events_url": url + "/events",
        "html_url": f"{WEB}/{full_name}/issues/{number}",
        "id": stable_id("issue", full_name, number),
        "node_id": f"I_{stable_id('issue', full_name, number)}",
        "number": number,
        "title": title,
        "user": user(author),
        "labels": [label(full_name, n) for n in labels or []],
        "state": state,
        "locked": False,
        "assignee": None,
        "assignees": [],
        "milestone": None,
        "comments": comments,
        "created_at": iso(created_at),
        "updated_at": iso(updated_at if updated_at is not None else created_at),
        "closed_at": iso(closed_at),
        "author_association": "CONTRIBUTOR",
        "body": body,
    }


def pull_request(
    full_name: str,
    number: int,
    title: str,
    *,
    body: str | None = None,
    head_ref: str = "patch-1",
    author: str = "octocat",
    state: str = "open",
    merged: bool = False,
    created_at: float = 0.0,
    updated_at: float | None = None,
    merged_by: str | None = None,
) -> Payload:
    url = f"{API}/repos/{full_name}/pulls/{number}"
    updated = updated_at if updated_at is not None else created_at
    sha = f"{stable_id('sha', full_name, number, head_ref):x}".ljust(40, "0")
    return {
        "url": url,
        "id": stable_id("pull", full_name, number),
        "node_id": f"PR_{stable_id('pull', full_name, number)}",
        "html_url": f"{WEB}/{full_name}/pull/{number}",
        "diff_url": f"{WEB}/{full_name}/pull/{number}.diff",
        "patch_url": f"{WEB}/{full_name}/pull/{number}.patch",
        "issue_url": f"{API}/repos/{full_name}/issues/{number}",
        "number": number,
        "state": state,
        "locked": False,
        "title": title,
        "user": user(author),
        "body": body,
        "created_at": iso(created_at),
        "updated_at": iso(updated),
        "closed_at": iso(updated) if state == "closed" else None,
        "merged_at": iso(updated) if merged else None,
        "merge_commit_sha": sha if merged else None,
        "assignee": None,
        "assignees": [],
        "requested_reviewers": [],
        "requested_teams": [],
        "labels": [],
        "milestone": None,
        "draft": False,
        "head": {
            "label": f"{author}:{head_ref}",
            "ref": head_ref,
            "sha": sha,
            "user": user(author),
            "repo": repository(full_name),
        },
        "base": {
            "label": f"{full_name.split('/')[0]}:main",
            "ref": "main",
            "sha": "0" * 40,
            "user": user(full_name.split("/")[0], "Organization"),
            "repo": repository(full_name),
        },
        "author_association": "CONTRIBUTOR",
        "merged": merged,
        "mergeable": None,
        "rebaseable": None,
        "mergeable_state": "unknown",
        "merged_by": user(merged_by) if merged and merged_by else None,
        "comments": 0,
        "review_comments": 0,
        "maintainer_can_modify": False,
        "commits": 1,
        "additions": 1,
        "deletions": 0,
        "changed_files": 1,
    }


def comment(
    full_name: str,
    issue_number: int,
    comment_id: int,
    body: str,
    *,
    author: str = "octocat",
    kind: str = "User",
    created_at: float = 0.0,
    updated_at: float | None = None,
) -> Payload:
    return {
        "url": f"{API}/repos/{full_name}/issues/comments/{comment_id}",
        "html_url": f"{WEB}/{full_name}/issues/{issue_number}#issuecomment-{comment_id}",
        "issue_url": f"{API}/repos/{full_name}/issues/{issue_number}",
        "id": comment_id,
        "node_id": f"IC_{comment_id}",
        "user": user(author, kind),
        "created_at": iso(created_at),
        "updated_at": iso(updated_at if updated_at is not None else created_at),
        "author_association": "CONTRIBUTOR",
        "body": body,
    }


def review(
    full_name: str,
    pull_number: int,
    review_id: int,
    state: str,
    *,
    author: str = "maintainer",
    body: str | None = None,
    submitted_at: float = 0.0,
) -> Payload:
    return {
        "id": review_id,
        "node_id": f"PRR_{review_id}",
        "user": user(author),
        "body": body,
        "commit_id": "0" * 40,
        "submitted_at": iso(submitted_at),
        "state": state,
        "html_url": f"{WEB}/{full_name}/pull/{pull_number}#pullrequestreview-{review_id}",
        "pull_request_url": f"{API}/repos/{full_name}/pulls/{pull_number}",
        "author_association": "MEMBER",
    }


def installation_ref(installation_id: int) -> Payload:
    return {"id": installation_id, "node_id": f"MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9u{installation_id}"}


def installation(installation_id: int, account: str, app_id: int = 1) -> Payload:
    return {
        "id": installation_id,
        "account": user(account, "Organization"),
        "repository_selection": "selected",
        "access_tokens_url": f"{API}/app/installations/{installation_id}/access_tokens",
        "repositories_url": f"{API}/installation/repositories",
        "html_url": f"{WEB}/organizations/{account}/settings/installations/{installation_id}",
        "app_id": app_id,
        "target_id": stable_id("user", account),
        "target_type": "Organization",
        "permissions": {"issues": "write", "pull_requests": "read", "metadata": "read"},
        "events": ["issues", "issue_comment", "pull_request", "pull_request_review"],
        "created_at": 0,
        "updated_at": 0,
        "single_file_name": None,
        "suspended_at": None,
        "suspended_by": None,
    }


def _short_repo(full_name: str) -> Payload:
    return {
        "id": stable_id("repo", full_name),
        "node_id": f"R_{stable_id('repo', full_name)}",
        "name": full_name.split("/", 1)[1],
        "full_name": full_name,
        "private": False,
    }


# ------------------------------------------------------------------ event payloads


def _event(
    base: Payload | None,
    action: str | None,
    full_name: str | None,
    sender: str,
    sender_kind: str,
    installation_id: int | None,
    **objects: Any,
) -> Payload:
    fields: Payload = {"action": action} if action is not None else {}
    fields.update(objects)
    if full_name is not None:
        fields["repository"] = repository(full_name)
    fields["sender"] = user(sender, sender_kind)
    if installation_id is not None:
        fields["installation"] = installation_ref(installation_id)
    payload = overlay(base, fields)
    for name, value in objects.items():  # lists (labels, repositories) are the case's, not the example's
        payload[name] = copy.deepcopy(value)
    if installation_id is None:
        payload.pop("installation", None)
    return payload


def issues_event(
    action: str,
    issue_obj: Payload,
    full_name: str,
    *,
    sender: str = "maintainer",
    installation_id: int | None = None,
    changed_label: str | None = None,
    base: Payload | None = None,
) -> Payload:
    extra: Payload = {"label": label(full_name, changed_label)} if changed_label else {}
    payload = _event(base, action, full_name, sender, "User", installation_id, **extra)
    payload["issue"] = overlay(payload.get("issue"), issue_obj)
    payload["issue"]["labels"] = copy.deepcopy(issue_obj["labels"])
    return payload


def issue_comment_event(
    action: str,
    issue_obj: Payload,
    comment_obj: Payload,
    full_name: str,
    *,
    installation_id: int | None = None,
    base: Payload | None = None,
) -> Payload:
    sender = comment_obj["user"]
    payload = _event(base, action, full_name, sender["login"], sender["type"], installation_id)
    payload["issue"] = overlay(payload.get("issue"), issue_obj)
    payload["issue"]["labels"] = copy.deepcopy(issue_obj["labels"])
    payload["comment"] = overlay(payload.get("comment"), comment_obj)
    return payload


def pull_request_event(
    action: str,
    pull_obj: Payload,
    full_name: str,
    *,
    sender: str | None = None,
    installation_id: int | None = None,
    base: Payload | None = None,
) -> Payload:
    payload = _event(
        base,
        action,
        full_name,
        sender or pull_obj["user"]["login"],
        "User",
        installation_id,
        number=pull_obj["number"],
    )
    payload["pull_request"] = overlay(payload.get("pull_request"), pull_obj)
    return payload


def pull_request_review_event(
    action: str,
    review_obj: Payload,
    pull_obj: Payload,
    full_name: str,
    *,
    installation_id: int | None = None,
    base: Payload | None = None,
) -> Payload:
    payload = _event(base, action, full_name, review_obj["user"]["login"], "User", installation_id)
    payload["review"] = overlay(payload.get("review"), review_obj)
    payload["pull_request"] = overlay(payload.get("pull_request"), pull_obj)
    return payload


def installation_event(
    action: str,
    installation_id: int,
    account: str,
    repos: list[str],
    *,
    sender: str = "maintainer",
    base: Payload | None = None,
) -> Payload:
    payload = _event(base, action, None, sender, "User", None, repositories=[_short_repo(r) for r in repos])
    payload["installation"] = overlay(payload.get("installation"), installation(installation_id, account))
    return payload


def installation_repositories_event(
    action: str,
    installation_id: int,
    account: str,
    added: list[str],
    removed: list[str],
    *,
    sender: str = "maintainer",
    base: Payload | None = None,
) -> Payload:
    payload = _event(
        base,
        action,
        None,
        sender,
        "User",
        None,
        repositories_added=[_short_repo(r) for r in added],
        repositories_removed=[_short_repo(r) for r in removed],
    )
    payload["installation"] = overlay(payload.get("installation"), installation(installation_id, account))
    payload["repository_selection"] = "selected"
    return payload


def repository_event(
    action: str,
    full_name: str,
    changes: Payload,
    *,
    sender: str = "maintainer",
    installation_id: int | None = None,
    base: Payload | None = None,
) -> Payload:
    """`repository` renamed (`changes.repository.name.from`) or transferred (`changes.owner.from.organization`
    or `.user`): `repository` is the repo under its new name."""
    payload = _event(base, action, full_name, sender, "User", installation_id)
    payload["changes"] = copy.deepcopy(changes)
    return payload


def ping_event(hook_id: int = 1, *, app_id: int | None = None, base: Payload | None = None) -> Payload:
    fields: Payload = {
        "zen": "Keep it logically awesome.",
        "hook_id": hook_id,
        "hook": {
            "type": "App" if app_id else "Repository",
            "id": hook_id,
            "active": True,
            "events": ["issues", "issue_comment", "pull_request", "pull_request_review"],
        },
    }
    if app_id:
        fields["hook"]["app_id"] = app_id
    return overlay(base, fields)
