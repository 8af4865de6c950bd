"""Settings from the environment, parsed once into a frozen object; bad values raise ConfigError."""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from owp_bot.eventloop import CHOICES, uvloop_installed

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class ConfigError(ValueError):
    """Invalid configuration; the message says which variable and what is accepted."""


_CANNOT_LISTEN = {
    errno.EADDRINUSE: "the port is in use (another owp, or another server); stop it, or choose another port with "
                      "--port or OWP_PORT",
    errno.EACCES: "this user may not listen there (ports below 1024 need privileges); choose another port with "
                  "--port or OWP_PORT",
    errno.EADDRNOTAVAIL: "this machine has no such address; choose one with --host or OWP_HOST (127.0.0.1 for "
                         "this machine only, 0.0.0.0 for every interface)",
}


def cannot_listen(exc: OSError, host: str, port: int) -> ConfigError | OSError:
    """The error to raise when the server cannot listen on host:port: a ConfigError that says what to do when
    the address is the cause (taken, privileged, not this machine's), else `exc` itself."""
    advice = _CANNOT_LISTEN.get(exc.errno or 0) if exc.filename is None else None  # a file's error is not this
    return ConfigError(f"cannot listen on http://{host}:{port}: {advice}") if advice else exc


# A lease's, an offer's or liveness's duration, pool-wide or a repo's: longer ones would overflow the dates the
# pool answers with (an offer expiring in the year 33714 made every offer of its repo a 500).
MAX_TTL = 365 * 86400


def parse_duration(value: str | int | float, name: str = "duration", most: float | None = None) -> float:
    """`90`, `90s`, `5m`, `4h`, `1d` -> seconds. Zero and negatives are rejected, and more than `most`."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ConfigError(
                f"{name}={value!r} is not a duration; use seconds (300) or a number with s/m/h/d (5m, 4h, 1d)"
            )
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ConfigError(f"{name}={value!r} must be longer than zero")
    if most is not None and seconds > most:
        raise ConfigError(f"{name}={value!r} is too long; use at most {most / 86400:g}d")
    return seconds


def _parse_int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name}={value} is out of range; use {lo}..{hi}")
    return value


MAX_DEMO_SPEED = 100_000.0


def parse_demo_speed(value: str, name: str = "OWP_DEMO_SPEED") -> float:
    """`60`, `2.5`, `0.5` -> simulated seconds per real second; zero, negatives and non-numbers are refused."""
    try:
        speed = float(value)
    except ValueError:
        speed = 0.0  # refused below, with the rest
    if not 0 < speed <= MAX_DEMO_SPEED:  # NaN fails this too
        raise ConfigError(f"{name}={value!r} is not a speed; use a number of simulated seconds per real second "
                          f"above 0 and at most {MAX_DEMO_SPEED:g}, such as 60 (an hour a minute), 2.5 or 0.5")
    return speed


def _parse_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean; use true or false")


@dataclass(frozen=True)
class Settings:
    admin_token: str
    db_path: Path = Path("data/pool.db")
    database_url: str | None = None  # postgresql://…: the PostgreSQL store for several replicas; None: SQLite
    host: str = "127.0.0.1"
    port: int = 8787
    processes: int = 1  # >1: HTTP in that many front processes, writes in one writer process (fronts.py)
    lease_ttl: float = 4 * 3600
    lease_max: float = 72 * 3600
    offer_ttl: float = 5 * 60
    heartbeat_timeout: float = 15 * 60
    offline_grace: float = 15 * 60
    decline_cooldown: float = 24 * 3600
    sweep_interval: float = 30
    heartbeat_flush_interval: float = 1.0
    max_body_bytes: int = 1_048_576
    demo_mode: bool = False
    demo_speed: float = 60.0  # demo: simulated seconds per real second (`owp demo --speed`)
    public_dashboard: bool = True
    event_loop: str = "auto"  # auto: uvloop where installed, else asyncio (eventloop.py)
    access_log: str = "problems"  # requests logged at INFO: all, problems (4xx, 5xx, slow) or off
    # trust, reputation, analytics, rate limits (issue 3; docs in README "Configuration")
    default_trust_tier: str = "basic"
    reputation_head_start: float = 120.0  # 0: no head start for better-reputed workers
    promote_after_merged: int = 0  # 0: off
    promote_min_score: int = 75
    demote_after_expired: int = 0  # 0: off
    event_retention: float | None = None  # None: keep every event
    insights_interval: float = 300.0
    # (requests, per seconds), None: off. Off when built in code (tests); load_settings applies RATE_DEFAULTS.
    rate_limit_worker: tuple[int, float] | None = None
    rate_limit_admin: tuple[int, float] | None = None
    rate_limit_address: tuple[int, float] | None = None
    rate_limit_register: tuple[int, float] | None = None
    max_header_bytes: int = 8190
    body_timeout: float = 30.0  # a request body must arrive within this long (slow clients get 408)
    keepalive_timeout: float = 30.0  # an idle keep-alive connection is closed after this long
    # the GitHub App (issue 4; webhooks/); without app credentials a GITHUB_TOKEN still reads issues to import
    github_api_url: str = "https://api.github.com"
    github_web_url: str = "https://github.com"
    github_app_id: int | None = None
    github_private_key: str | None = None
    github_webhook_secret: str | None = None
    github_token: str | None = None
    github_ready_label: str = "pool:ready"
    github_outbox_poll: float = 5.0

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


_DURATIONS = {
    "lease_ttl": "OWP_LEASE_TTL",
    "lease_max": "OWP_LEASE_MAX",
    "offer_ttl": "OWP_OFFER_TTL",
    "heartbeat_timeout": "OWP_HEARTBEAT_TIMEOUT",
    "offline_grace": "OWP_OFFLINE_GRACE",
    "decline_cooldown": "OWP_DECLINE_COOLDOWN",
    "sweep_interval": "OWP_SWEEP_INTERVAL",
}


def parse_rate(value: str, name: str = "rate") -> tuple[int, float] | None:
    """`120/1m` -> (120, 60.0): that many requests per period, also the burst; `off` -> None."""
    if value.strip().lower() in {"off", "0", "none"}:
        return None
    count, _, period = value.partition("/")
    if not count.strip().isdigit() or int(count) < 1 or not period:
        raise ConfigError(f"{name}={value!r} is not a rate; use requests/period such as 120/1m or 10/1h, "
                          "or off")
    return int(count), parse_duration(period, name)


_TIERS = ("untrusted", "basic", "trusted")
ACCESS_LOGS = ("problems", "all", "off")
RATE_DEFAULTS = {"rate_limit_worker": "120/1m", "rate_limit_admin": "600/1m", "rate_limit_address": "60/1m",
                 "rate_limit_register": "10/1h"}


def _rates_off(env: Mapping[str, str]) -> bool:
    raw = env.get("OWP_RATE_LIMITS", "").strip().lower()
    if raw not in ("", "on", "off"):
        raise ConfigError(f"OWP_RATE_LIMITS={raw!r} is not on or off")
    return raw == "off"


def _insight_settings(env: Mapping[str, str], values: dict[str, object], problems: list[str]) -> None:
    for attr, name in (("rate_limit_worker", "OWP_RATE_LIMIT_WORKER"),
                       ("rate_limit_admin", "OWP_RATE_LIMIT_ADMIN"),
                       ("rate_limit_address", "OWP_RATE_LIMIT_ADDRESS"),
                       ("rate_limit_register", "OWP_RATE_LIMIT_REGISTER")):
        try:  # OWP_RATE_LIMITS=off turns every limit off (a proxy in front limits instead, or tests)
            values[attr] = None if _rates_off(env) else parse_rate(env.get(name) or RATE_DEFAULTS[attr], name)
        except ConfigError as exc:
            problems.append(str(exc))
    for attr, name, optional in (("reputation_head_start", "OWP_REPUTATION_HEAD_START", True),
                                 ("event_retention", "OWP_EVENT_RETENTION", True),
                                 ("insights_interval", "OWP_INSIGHTS_INTERVAL", False),
                                 ("body_timeout", "OWP_BODY_TIMEOUT", False),
                                 ("keepalive_timeout", "OWP_KEEPALIVE_TIMEOUT", False)):
        raw = env.get(name, "").strip()
        if raw in ("0", "off") and optional:
            values[attr] = 0.0 if attr == "reputation_head_start" else None
        elif raw:
            try:
                values[attr] = parse_duration(raw, name)
            except ConfigError as exc:
                problems.append(str(exc))
    tier = env.get("OWP_DEFAULT_TRUST_TIER", "").strip().lower()
    if tier and tier not in _TIERS:
        problems.append(f"OWP_DEFAULT_TRUST_TIER={tier!r} is not a trust tier; use {', '.join(_TIERS)}")
    elif tier:
        values["default_trust_tier"] = tier
    try:
        values["promote_after_merged"] = _parse_int(env, "OWP_PROMOTE_AFTER_MERGED", 0, 0, 100_000)
        values["promote_min_score"] = _parse_int(env, "OWP_PROMOTE_MIN_SCORE", 75, 0, 100)
        values["demote_after_expired"] = _parse_int(env, "OWP_DEMOTE_AFTER_EXPIRED", 0, 0, 100_000)
        values["max_header_bytes"] = _parse_int(env, "OWP_MAX_HEADER_BYTES", 8190, 1024, 65536)
    except ConfigError as exc:
        problems.append(str(exc))


def load_settings(env: Mapping[str, str] | None = None, *, require_admin_token: bool = True) -> Settings:
    """Read OWP_* variables. Every problem is reported at once, in one ConfigError."""
    env = os.environ if env is None else env
    problems: list[str] = []
    values: dict[str, object] = {}
    for attr, name in _DURATIONS.items():
        raw = env.get(name)
        if raw:
            try:
                values[attr] = parse_duration(raw, name, most=MAX_TTL)
            except ConfigError as exc:
                problems.append(str(exc))
    try:
        values["port"] = _parse_int(env, "OWP_PORT", 8787, 0, 65535)
        values["processes"] = _parse_int(env, "OWP_PROCESSES", 1, 1, 64)
        values["max_body_bytes"] = _parse_int(env, "OWP_MAX_BODY_BYTES", 1_048_576, 1024, 64 * 1_048_576)
        values["demo_mode"] = _parse_bool(env, "OWP_DEMO_MODE", False)
        if env.get("OWP_DEMO_SPEED"):
            values["demo_speed"] = parse_demo_speed(env["OWP_DEMO_SPEED"])
        values["public_dashboard"] = _parse_bool(env, "OWP_PUBLIC_DASHBOARD", True)
    except ConfigError as exc:
        problems.append(str(exc))
    _insight_settings(env, values, problems)
    event_loop = (env.get("OWP_EVENT_LOOP") or "auto").strip().lower()
    if event_loop not in CHOICES:
        problems.append(f"OWP_EVENT_LOOP={event_loop!r} is not a loop; use auto, uvloop or asyncio")
    elif event_loop == "uvloop" and not uvloop_installed():
        problems.append("OWP_EVENT_LOOP=uvloop but uvloop is not installed; pip install uvloop, "
                        "or use auto (uvloop where installed) or asyncio")
    else:
        values["event_loop"] = event_loop
    access_log = (env.get("OWP_ACCESS_LOG") or "problems").strip().lower()
    if access_log in ACCESS_LOGS:
        values["access_log"] = access_log
    else:
        problems.append(f"OWP_ACCESS_LOG={access_log!r} is not a choice; use problems (4xx, 5xx and requests "
                        "slower than a second), all (one line per request) or off")
    database_url = env.get("OWP_DATABASE_URL", "").strip()
    if database_url and database_url.split(":", 1)[0] not in {"postgresql", "postgres"}:
        problems.append(f"OWP_DATABASE_URL={database_url.split('@')[-1]!r} is not a PostgreSQL URL; use "
                        "postgresql://user@host:5432/dbname, or leave it unset for SQLite at OWP_DB_PATH")
    elif database_url and _unencoded_userinfo(database_url):
        problems.append("OWP_DATABASE_URL has an @ where the host should be: percent-encode @ / ? # % in the "
                        "password (%40 %2F %3F %23 %25), or leave the password out of the URL and set PGPASSWORD")
    elif database_url:
        values["database_url"] = database_url
    if values.get("demo_mode") and int(values.get("processes", 1)) > 1:  # type: ignore[call-overload]
        problems.append("OWP_DEMO_MODE runs its simulated workers in one process: leave OWP_PROCESSES at 1")
    admin_token = env.get("OWP_ADMIN_TOKEN", "")
    if require_admin_token and not admin_token:
        problems.append(
            "OWP_ADMIN_TOKEN is not set; set it to a long random secret "
            "(for example: export OWP_ADMIN_TOKEN=$(python -c 'import secrets; print(secrets.token_urlsafe(32))'))"
        )
    elif admin_token and len(admin_token) < 16:
        problems.append("OWP_ADMIN_TOKEN is too short; use at least 16 characters")
    lease_ttl = float(values.get("lease_ttl", Settings.lease_ttl))  # type: ignore[arg-type]
    lease_max = float(values.get("lease_max", Settings.lease_max))  # type: ignore[arg-type]
    if lease_max < lease_ttl:
        problems.append(f"OWP_LEASE_MAX ({lease_max:g}s) must be at least OWP_LEASE_TTL ({lease_ttl:g}s)")
    values.update(_github_settings(env, problems))
    if problems:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(problems))
    return Settings(
        admin_token=admin_token,
        db_path=Path(env.get("OWP_DB_PATH") or "data/pool.db"),
        host=env.get("OWP_HOST") or "127.0.0.1",
        **values,  # type: ignore[arg-type]
    )


def _unencoded_userinfo(url: str) -> bool:
    """An @ besides the one that ends the user and password: a password holding @ / ? # as it is, of which the URL
    parsers take a part for the host, port or database."""
    after_scheme = url.partition("//")[2]
    return after_scheme.count("@") > 1 or ("@" in after_scheme and "@" not in urlsplit(url).netloc)


def _github_settings(env: Mapping[str, str], problems: list[str]) -> dict[str, object]:
    """GITHUB_* variables (the names GitHub's own tooling uses) and OWP_GITHUB_* pool options."""
    values: dict[str, object] = {}
    for attr, name in (("github_api_url", "GITHUB_API_URL"), ("github_web_url", "GITHUB_WEB_URL")):
        raw = (env.get(name) or "").strip()
        if raw:
            if not raw.startswith(("http://", "https://")):
                problems.append(f"{name}={raw!r} is not a URL; use for example https://api.github.com")
            values[attr] = raw.rstrip("/")
    raw_id = (env.get("GITHUB_APP_ID") or "").strip()
    if raw_id:
        if raw_id.isdigit():
            values["github_app_id"] = int(raw_id)
        else:
            problems.append(f"GITHUB_APP_ID={raw_id!r} is not a number; it is the App ID on the app's settings page")
    key, key_path = env.get("GITHUB_PRIVATE_KEY"), env.get("GITHUB_PRIVATE_KEY_PATH")
    if key and key_path:
        problems.append("set GITHUB_PRIVATE_KEY or GITHUB_PRIVATE_KEY_PATH, not both")
    elif key_path:
        try:
            key = Path(key_path).read_text(encoding="utf-8")
        except OSError as exc:
            problems.append(f"GITHUB_PRIVATE_KEY_PATH={key_path!r} cannot be read: {exc.strerror}")
    if key:
        key = key.replace("\\n", "\n").strip() + "\n"  # a key pasted into one line of an .env file
        if "PRIVATE KEY-----" not in key:
            problems.append("GITHUB_PRIVATE_KEY is not a PEM private key (-----BEGIN RSA PRIVATE KEY-----)")
        values["github_private_key"] = key
    if bool(values.get("github_app_id")) != bool(key):
        problems.append("GITHUB_APP_ID and GITHUB_PRIVATE_KEY(_PATH) go together; set both or neither")
    for attr, name in (("github_webhook_secret", "GITHUB_WEBHOOK_SECRET"), ("github_token", "GITHUB_TOKEN")):
        if env.get(name):
            values[attr] = env[name]
    if env.get("OWP_GITHUB_READY_LABEL"):
        values["github_ready_label"] = env["OWP_GITHUB_READY_LABEL"].strip()
    if env.get("OWP_GITHUB_OUTBOX_POLL"):
        try:
            values["github_outbox_poll"] = parse_duration(env["OWP_GITHUB_OUTBOX_POLL"], "OWP_GITHUB_OUTBOX_POLL")
        except ConfigError as exc:
            problems.append(str(exc))
    return values
