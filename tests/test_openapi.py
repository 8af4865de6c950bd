"""The committed OpenAPI spec is the single source of truth: code and spec agree, and the live server
conforms to it (schemathesis, all checks)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from owp_bot.app import api_tables, create_app
from owp_bot.config import Settings
from owp_bot.protocol.spec import SPEC_PATH, build_spec, dumps
from tests.conftest import ADMIN_TOKEN

ROOT = Path(__file__).resolve().parent.parent
NOT_IN_SPEC = {"/openapi.json"}  # the spec itself
DASHBOARD = ("/dashboard", "/assets/")  # the dashboard's pages and files are not API


def test_committed_spec_is_what_the_code_builds() -> None:
    assert SPEC_PATH.read_text(encoding="utf-8") == dumps(build_spec(api_tables())), \
        "owp_bot/protocol/openapi.json is stale: run `owp openapi` and commit it"


def test_every_route_is_in_the_spec_and_every_spec_path_is_routed(tmp_path: Path) -> None:
    app = create_app(Settings(admin_token=ADMIN_TOKEN, db_path=tmp_path / "pool.db"))
    spec = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    documented = {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}
    routed = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("formatter") or info.get("path") or ""
        if path == "/":
            continue  # the dashboard's front page
        if route.method in ("HEAD", "*") or path in NOT_IN_SPEC or path.startswith(DASHBOARD):
            continue
        routed.add((route.method, path))
    assert routed == documented


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _call(url: str, method: str = "GET", body: dict[str, object] | None = None,
          headers: dict[str, str] | None = None) -> dict[str, object]:
    data = json.dumps(body).encode() if body is not None else None
    assert url.startswith("http://127.0.0.1:")  # our own server
    request = urllib.request.Request(url, data=data, method=method, headers={  # noqa: S310 - checked above
        "Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - checked above
        return json.loads(response.read())  # type: ignore[no-any-return]


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "OWP_ADMIN_TOKEN": ADMIN_TOKEN, "OWP_DB_PATH": str(tmp_path / "pool.db"),
           "OWP_LOG_LEVEL": "WARNING", "OWP_RATE_LIMITS": "off",
           "GITHUB_WEBHOOK_SECRET": "schemathesis-webhook-secret"}
    server = subprocess.Popen([sys.executable, "-m", "owp_bot", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                _call(f"{url}/readyz")
                break
            except OSError:
                time.sleep(0.1)
        yield url
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=20)


def test_the_live_server_conforms_to_its_spec(live_server: str, tmp_path: Path) -> None:
    admin = {"X-Admin-Token": ADMIN_TOKEN}
    _call(f"{live_server}/v1/repos/acme/api", "PUT", {"max_open_prs": 50}, admin)
    for i in range(20):
        _call(f"{live_server}/v1/tasks", "POST", {"repo": "acme/api", "title": f"task {i}"}, admin)
    token = _call(f"{live_server}/v1/workers/register", "POST",
                  {"name": "fuzz", "skills": [], "capacity_points": 100, "max_concurrent_tasks": 50})["token"]
    result = subprocess.run(
        [str(Path(sys.executable).with_name("schemathesis")), "--config-file", str(ROOT / "tests/schemathesis.toml"),
         "run", f"{live_server}/openapi.json", "--phases", "examples,coverage,fuzzing",
         "--max-examples", "12", "--seed", "7", "--generation-deterministic",
         "-H", f"X-Admin-Token: {ADMIN_TOKEN}", "-H", f"Authorization: Bearer {token}"],
        capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout or "No issues found" in result.stdout, result.stdout[-2000:]
