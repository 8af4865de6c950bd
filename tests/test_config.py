"""Configuration: durations, defaults, and clear errors with exit code 2 (never a traceback)."""

from __future__ import annotations

import gc
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import pytest
from aiohttp import web

from owp_bot import config
from owp_bot.cli import freeze_startup_objects
from owp_bot.config import ConfigError, load_settings, parse_duration

TOKEN = "a-long-enough-admin-token"


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("90s", 90), ("5m", 300), ("4h", 14400), ("1d", 86400),
                                               (" 1.5h ", 5400), (30, 30)])
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "5 minutes", "-5m", "0", "1w"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_duration(text, "OWP_LEASE_TTL")


def test_defaults_and_overrides(tmp_path: Path) -> None:
    settings = load_settings({"OWP_ADMIN_TOKEN": TOKEN})
    assert (settings.host, settings.port, settings.lease_ttl, settings.offer_ttl, settings.heartbeat_timeout,
            settings.sweep_interval, settings.db_path) == ("127.0.0.1", 8787, 14400, 300, 900, 30,
                                                           Path("data/pool.db"))
    custom = load_settings({"OWP_ADMIN_TOKEN": TOKEN, "OWP_LEASE_TTL": "2h", "OWP_PORT": "9000",
                            "OWP_DB_PATH": str(tmp_path / "x.db"), "OWP_PUBLIC_DASHBOARD": "false"})
    assert (custom.lease_ttl, custom.port, custom.db_path, custom.public_dashboard) == (
        7200, 9000, tmp_path / "x.db", False)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"OWP_PORT": "eighty", "OWP_OFFER_TTL": "never"})
    message = str(caught.value)
    assert "OWP_PORT" in message and "OWP_OFFER_TTL" in message and "OWP_ADMIN_TOKEN is not set" in message


def test_lease_cap_must_cover_one_lease() -> None:
    with pytest.raises(ConfigError, match="OWP_LEASE_MAX"):
        load_settings({"OWP_ADMIN_TOKEN": TOKEN, "OWP_LEASE_TTL": "4h", "OWP_LEASE_MAX": "1h"})


@pytest.mark.parametrize(("raw", "speed"), [(None, 60.0), ("0.5", 0.5), ("2.5", 2.5), (" 60 ", 60.0),
                                             ("100000", 100_000.0)])
def test_the_demo_speed_is_a_positive_decimal(raw: str | None, speed: float) -> None:
    env = {"OWP_ADMIN_TOKEN": TOKEN} if raw is None else {"OWP_ADMIN_TOKEN": TOKEN, "OWP_DEMO_SPEED": raw}
    assert load_settings(env).demo_speed == speed


@pytest.mark.parametrize("raw", ["0", "-2.5", "0.0", "fast", "2x", "nan", "inf", "100001"])
def test_a_demo_speed_not_above_zero_or_not_a_number_says_what_to_write(raw: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"OWP_ADMIN_TOKEN": TOKEN, "OWP_DEMO_SPEED": raw})
    assert f"OWP_DEMO_SPEED={raw!r} is not a speed; use a number of simulated seconds per real second above 0 " \
           "and at most 100000, such as 60 (an hour a minute), 2.5 or 0.5" in str(caught.value)


@pytest.mark.parametrize("password", ["p@ss", "pa/ss", "pa?ss", "pa#ss", "p@ss/w:rd"])
def test_a_database_password_as_typed_into_the_url_is_refused_with_the_fix(password: str) -> None:
    """Unencoded, part of such a password would be taken for the host, port or database."""
    url = "postgresql://owp:{}@db.internal:5432/owp"
    with pytest.raises(ConfigError, match=r"percent-encode @ / \? # % in the password") as caught:
        load_settings({"OWP_ADMIN_TOKEN": TOKEN, "OWP_DATABASE_URL": url.format(password)})
    assert password not in str(caught.value) and "PGPASSWORD" in str(caught.value)
    encoded = url.format(quote(password, safe=""))
    assert urlsplit(encoded).hostname == "db.internal" and unquote(urlsplit(encoded).password or "") == password
    assert load_settings({"OWP_ADMIN_TOKEN": TOKEN, "OWP_DATABASE_URL": encoded}).database_url == encoded


@pytest.mark.parametrize(("env", "expected"), [
    ({}, "OWP_ADMIN_TOKEN is not set"),
    ({"OWP_ADMIN_TOKEN": "short"}, "too short"),
    ({"OWP_ADMIN_TOKEN": TOKEN, "OWP_HEARTBEAT_TIMEOUT": "forever"}, "OWP_HEARTBEAT_TIMEOUT"),
    ({"OWP_ADMIN_TOKEN": TOKEN, "OWP_OFFER_TTL": "400d"}, "OWP_OFFER_TTL='400d' is too long; use at most 365d"),
    ({"OWP_ADMIN_TOKEN": TOKEN, "OWP_LEASE_TTL": "9" * 400}, "OWP_LEASE_TTL"),  # a float's infinity
    ({"OWP_ADMIN_TOKEN": TOKEN, "OWP_DB_PATH": "/proc/no-such-dir/pool.db"},
     "cannot open the SQLite database /proc/no-such-dir/pool.db"),
    ({"OWP_ADMIN_TOKEN": TOKEN, "OWP_DATABASE_URL": "postgresql://owp:s3cret@127.0.0.1:1/owp"},
     "cannot connect to PostgreSQL at postgresql://owp:***@127.0.0.1:1/owp"),  # the password masked
    ({"OWP_ADMIN_TOKEN": TOKEN,
      "OWP_DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/test?search_path=owp_no_such_schema"},
     "has no schema to create the pool's tables in"),
    ({"OWP_ADMIN_TOKEN": TOKEN, "OWP_PROCESSES": "0"}, "OWP_PROCESSES=0 is out of range; use 1..64"),
    ({"OWP_ADMIN_TOKEN": TOKEN, "OWP_PROCESSES": "2", "OWP_DEMO_MODE": "true"}, "leave OWP_PROCESSES at 1"),
])
def test_the_server_refuses_to_start_with_exit_code_2(env: dict[str, str], expected: str, tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "owp_bot", "serve"], capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "OWP_DB_PATH": str(tmp_path / "p.db"), **env}, check=False)
    assert result.returncode == 2
    assert expected in result.stderr and "Traceback" not in result.stderr


def test_the_event_loop_is_uvloop_where_installed_unless_asyncio_is_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings({"OWP_ADMIN_TOKEN": TOKEN}).event_loop == "auto"
    assert load_settings({"OWP_ADMIN_TOKEN": TOKEN, "OWP_EVENT_LOOP": " AsyncIO "}).event_loop == "asyncio"
    with pytest.raises(ConfigError, match="OWP_EVENT_LOOP='tokio' is not a loop; use auto, uvloop or asyncio"):
        load_settings({"OWP_ADMIN_TOKEN": TOKEN, "OWP_EVENT_LOOP": "tokio"})
    monkeypatch.setattr(config, "uvloop_installed", lambda: False)
    with pytest.raises(ConfigError, match="uvloop is not installed; pip install uvloop"):
        load_settings({"OWP_ADMIN_TOKEN": TOKEN, "OWP_EVENT_LOOP": "uvloop"})


def test_the_access_log_logs_problems_unless_told_otherwise() -> None:
    assert load_settings({"OWP_ADMIN_TOKEN": TOKEN}).access_log == "problems"
    assert load_settings({"OWP_ADMIN_TOKEN": TOKEN, "OWP_ACCESS_LOG": " All "}).access_log == "all"
    with pytest.raises(ConfigError, match="OWP_ACCESS_LOG='yes' is not a choice; use problems"):
        load_settings({"OWP_ADMIN_TOKEN": TOKEN, "OWP_ACCESS_LOG": "yes"})


@pytest.mark.parametrize(("choice", "loop"), [("auto", "uvloop"), ("asyncio", "asyncio"), ("uvloop", "uvloop")])
def test_the_server_runs_on_the_loop_chosen(choice: str, loop: str, tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {"PATH": "/usr/bin:/bin", "OWP_DB_PATH": str(tmp_path / "p.db"), "OWP_ADMIN_TOKEN": TOKEN,
           "OWP_EVENT_LOOP": choice}
    with subprocess.Popen([sys.executable, "-m", "owp_bot", "serve", "--port", str(port)], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as server:
        try:
            assert server.stdout is not None
            assert server.stdout.readline().strip() == f"OWP Pool listening on http://127.0.0.1:{port} ({loop})"
            _wait_until_healthy(port)
        finally:
            server.terminate()
            assert server.wait(timeout=30) == 0


@pytest.mark.parametrize("command", [["serve"], ["serve", "--processes", "2"], ["demo", "--workers", "1"]])
def test_a_port_in_use_is_a_clear_error_with_exit_code_2(command: list[str], tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "OWP_DB_PATH": str(tmp_path / "p.db"), "OWP_ADMIN_TOKEN": TOKEN}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        extra = ["--data", str(tmp_path / "demo")] if command[0] == "demo" else []
        result = subprocess.run([sys.executable, "-m", "owp_bot", *command, "--port", str(port), *extra],
                                capture_output=True, text=True, timeout=60, env=env, check=False)
    assert result.returncode == 2, result.stderr
    assert f"cannot listen on http://127.0.0.1:{port}: the port is in use" in result.stderr
    assert "--port" in result.stderr and "Traceback" not in result.stderr
    assert "listening on" not in result.stdout and "dashboard and API" not in result.stdout  # said once it is


def _wait_until_healthy(port: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
                assert answer.status == 200
                return
        except OSError:
            assert time.monotonic() < deadline, "the server did not answer /healthz within 30 s"
            time.sleep(0.1)


async def test_serve_hides_what_exists_once_started_from_the_garbage_collector() -> None:
    """`owp serve` freezes its startup objects: full collections then walk only what came later (they took
    30-40 ms with the event loop stopped)."""
    try:
        await freeze_startup_objects(web.Application())
        assert gc.get_freeze_count() > 1000
    finally:
        gc.unfreeze()
