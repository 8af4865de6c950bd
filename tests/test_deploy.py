"""Deployment without a Docker engine: lint the Dockerfile (hadolint), validate the compose file
(`docker-compose config`), check `.env.example` lists every variable, run the image's own start command and
health check outside Docker, and back up a live database with `owp backup`."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from aiohttp import ClientSession
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from owp_bot.cli import backup, main
from owp_bot.config import Settings, load_settings
from tests.conftest import ADMIN_TOKEN, start_server

ROOT = Path(__file__).parents[1]
BIN = Path(sys.executable).parent
CLIENT_ONLY = {"OWP_WORKER_CONFIG"}  # read by `owp worker` on a contributor's machine, not by the server


def tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    assert found, f"{name} is missing; install the test extra: pip install -e '.[test]'"
    return found


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", "\n".join(line for line in dockerfile.splitlines()
                                                 if not line.lstrip().startswith("#")))
    found = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def runtime_stage(dockerfile: str) -> list[tuple[str, str]]:
    steps = instructions(dockerfile)
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def env_of(steps: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for word, rest in steps:
        if word == "ENV":
            env.update(pair.split("=", 1) for pair in shlex.split(rest))
    return env


def exec_form(steps: list[tuple[str, str]], word: str) -> list[str]:
    rest = next(rest for w, rest in reversed(steps) if w == word)
    return list(json.loads(rest))


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text(encoding="utf-8")


def test_hadolint_passes() -> None:
    result = subprocess.run([tool("hadolint"), "--no-color", "Dockerfile"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_builds_front_ends_in_node_and_runs_slim_as_non_root(dockerfile: str) -> None:
    stages = [rest for word, rest in instructions(dockerfile) if word == "FROM"]
    assert stages[0].startswith("node:20") and stages[-1].startswith("python:3.11-slim")
    runtime = runtime_stage(dockerfile)
    assert any(w == "COPY" and "--from=frontends" in rest and "web/static" in rest for w, rest in runtime)
    user = next(rest for w, rest in reversed(runtime) if w == "USER")
    assert user.split(":")[0] not in ("0", "root")
    assert ("VOLUME", '["/data"]') in runtime and env_of(runtime)["OWP_DB_PATH"].startswith("/data/")
    health = next(rest for w, rest in runtime if w == "HEALTHCHECK")
    assert "/healthz" in health and "--interval" in health


def test_the_package_ships_every_data_file_the_server_reads() -> None:
    """The image installs the package (not the checkout): SQL, migrations, the spec, the demo's tasks."""
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"][
        "package-data"]["owp_bot"]
    package = ROOT / "owp_bot"
    shipped = {path for pattern in patterns for path in package.glob(pattern)}
    data = {path for path in package.rglob("*") if path.is_file() and path.suffix not in (".py", ".pyc")
            and "__pycache__" not in path.parts}
    assert not sorted(data - shipped), "add to [tool.setuptools.package-data] in pyproject.toml"


def compose_config(folder: Path, dotenv: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` of a copy of the deployment files in `folder`, with `dotenv` as its .env."""
    for name in ("docker-compose.yml", "Dockerfile", ".env.example"):
        shutil.copy(ROOT / name, folder / name)
    if dotenv is not None:
        (folder / ".env").write_text(dotenv, encoding="utf-8")
    return subprocess.run([tool("docker-compose"), *args, "config", "--format", "json"], cwd=folder,
                          capture_output=True, text=True, timeout=60)


def example_dotenv(**values: str) -> str:
    """.env.example with the admin token and `values` set, as a deployment's .env."""
    dotenv = (ROOT / ".env.example").read_text(encoding="utf-8").replace(
        "OWP_ADMIN_TOKEN=\n", f"OWP_ADMIN_TOKEN={ADMIN_TOKEN}\n")
    for name, value in values.items():
        dotenv = dotenv.replace(f"\n{name}=\n", "\n") + f"{name}={value}\n"
    return dotenv


GITHUB_KEY_MOUNT = {"type": "bind", "target": "/run/secrets", "read_only": True}


def test_compose_file_is_valid_and_keeps_data_on_a_volume(tmp_path: Path) -> None:
    result = compose_config(tmp_path, example_dotenv())
    assert result.returncode == 0, result.stderr
    service = json.loads(result.stdout)["services"]["pool"]
    assert service["restart"] == "unless-stopped"
    assert service["environment"]["OWP_ADMIN_TOKEN"] == ADMIN_TOKEN  # from .env
    assert service["environment"]["OWP_DB_PATH"].startswith("/data/")
    assert [(v["type"], v["target"]) for v in service["volumes"]] == [("volume", "/data"), ("bind", "/run/secrets")]
    assert not (tmp_path / "secrets").exists()  # without a key (the demo) the directory need not exist: the
    # mount creates it (`docker-compose config` leaves that option out of what it prints, so read the file)
    raw = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert raw["x-github-key"]["bind"] == {"create_host_path": True}
    (tmp_path / ".env").unlink()
    missing = subprocess.run([tool("docker-compose"), "config", "--quiet"], cwd=tmp_path, capture_output=True,
                             text=True, timeout=60)
    assert missing.returncode != 0 and ".env" in missing.stderr  # a deployment without its .env is refused


def test_compose_gives_every_server_the_github_key_file_and_any_postgres_password(tmp_path: Path) -> None:
    """GITHUB_PRIVATE_KEY_PATH names a file in ./secrets, which every server service mounts read-only; the
    replicas get the PostgreSQL password apart from their URL, so @ / : (and $, quoted) in it break nothing. Each
    service's environment, with its mount made by hand, is one the server starts with."""
    password = "p@ss/w:rd?#%$x"
    result = compose_config(tmp_path, example_dotenv(
        OWP_POSTGRES_PASSWORD=f"'{password}'", GITHUB_APP_ID="12345",
        GITHUB_PRIVATE_KEY_PATH="/run/secrets/github-app.pem"), "--profile", "postgres")
    assert result.returncode == 0, result.stderr
    # the rendered file writes a $ of a value as $$ (a compose file's own escape), which the container gets as $
    services = json.loads(result.stdout.replace("$$", "$"))["services"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == password
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()).decode()
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "github-app.pem").write_text(key, encoding="utf-8")
    for name in ("pool", "replica-a", "replica-b"):
        environment = services[name]["environment"]
        mount = next(v for v in services[name]["volumes"] if v["type"] == "bind")
        assert {k: mount[k] for k in (*GITHUB_KEY_MOUNT, "source")} == {
            **GITHUB_KEY_MOUNT, "source": str(tmp_path / "secrets")}, name
        in_container = environment["GITHUB_PRIVATE_KEY_PATH"]
        assert in_container.startswith(mount["target"] + "/")
        settings = load_settings({**environment, "GITHUB_PRIVATE_KEY_PATH": in_container.replace(
            mount["target"], mount["source"], 1)})
        assert (settings.github_app_id, settings.github_private_key) == (12345, key)
        if name != "pool":
            assert environment["PGPASSWORD"] == password  # asyncpg reads it when the URL has no password
            assert settings.database_url == "postgresql://owp@postgres:5432/owp"


def test_env_example_lists_every_variable_with_a_comment() -> None:
    read = set()
    for source in (ROOT / "owp_bot").rglob("*.py"):
        read |= set(re.findall(r'"((?:OWP|GITHUB)_[A-Z0-9_]+)"', source.read_text(encoding="utf-8")))
    lines = (ROOT / ".env.example").read_text(encoding="utf-8").splitlines()
    listed = {}
    for i, line in enumerate(lines):
        match = re.match(r"^#?\s?((?:OWP|GITHUB)_[A-Z0-9_]+)=", line)
        if match:
            listed[match.group(1)] = i
    unlisted = sorted(read - CLIENT_ONLY - set(listed))
    assert not unlisted, f"add to .env.example, each with a comment: {unlisted}"
    for name, i in listed.items():  # the line above says what it is
        assert lines[i - 1].startswith("# ") and not re.match(r"^# [A-Z0-9_]+=", lines[i - 1]), name


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def image_process(tmp_path: Path, dockerfile: str) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    """The image's ENTRYPOINT + CMD with the image's ENV; /data is a temporary directory here."""
    runtime = runtime_stage(dockerfile)
    image_env = env_of(runtime)
    data = tmp_path / "data"
    env = {"PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "HOME": str(tmp_path), **image_env,
           "OWP_DB_PATH": image_env["OWP_DB_PATH"].replace("/data", str(data), 1),
           "OWP_PORT": str(_free_port()), "OWP_ADMIN_TOKEN": ADMIN_TOKEN}
    command = exec_form(runtime, "ENTRYPOINT") + exec_form(runtime, "CMD")
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as process:
        try:
            yield process, env
        finally:
            if process.poll() is None:
                process.kill()


def test_the_image_start_command_boots_and_passes_its_health_check(
        image_process: tuple[subprocess.Popen[str], dict[str, str]], dockerfile: str) -> None:
    process, env = image_process
    url = f"http://127.0.0.1:{env['OWP_PORT']}"
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:  # noqa: S310 (local URL)
                assert json.load(response)["status"] == "ok"
                break
        except OSError:
            assert time.monotonic() < deadline, "the server did not answer /healthz within 30 s"
            time.sleep(0.2)
    with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:  # noqa: S310
        assert response.status == 200
    health = next(rest for w, rest in runtime_stage(dockerfile) if w == "HEALTHCHECK")
    check = json.loads(health[health.index("CMD") + 3:].strip())
    assert subprocess.run(check, env=env, timeout=30).returncode == 0
    assert Path(env["OWP_DB_PATH"]).exists()
    process.send_signal(signal.SIGTERM)  # `docker stop`
    assert process.wait(timeout=20) == 0


async def test_backup_copies_a_live_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings(admin_token=ADMIN_TOKEN, db_path=tmp_path / "pool.db")
    server = await start_server(settings)
    try:
        async with ClientSession() as session, session.put(
                str(server.make_url("/v1/repos/acme/api")), json={"max_open_prs": 2},
                headers={"X-Admin-Token": ADMIN_TOKEN}) as response:
            assert response.status == 201
        assert backup(settings.db_path, tmp_path / "backups" / "pool-copy.db") == 0  # while it runs
    finally:
        await server.close()
    copy = sqlite3.connect(tmp_path / "backups" / "pool-copy.db")
    try:
        assert copy.execute("SELECT id, max_open_prs FROM repos").fetchall() == [("acme/api", 2)]
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        copy.close()
    assert "backed up" in capsys.readouterr().out
    assert main(["backup", str(tmp_path / "x.db"), "--db", str(tmp_path / "missing.db")]) == 1
    assert "no database" in capsys.readouterr().err
