"""GITHUB_* settings: parsed once, every mistake named."""

from __future__ import annotations

from pathlib import Path

import pytest

from owp_bot.config import ConfigError, load_settings

BASE = {"OWP_ADMIN_TOKEN": "x" * 20}


def test_defaults_and_values(tmp_path: Path, app_private_key: str) -> None:
    assert load_settings(BASE).github_api_url == "https://api.github.com"
    key_file = tmp_path / "app.pem"
    key_file.write_text(app_private_key)
    settings = load_settings({**BASE, "GITHUB_API_URL": "https://ghe.example/api/v3/", "GITHUB_APP_ID": "12",
                              "GITHUB_PRIVATE_KEY_PATH": str(key_file), "GITHUB_WEBHOOK_SECRET": "s",
                              "OWP_GITHUB_READY_LABEL": "help wanted", "OWP_GITHUB_OUTBOX_POLL": "2s"})
    assert settings.github_api_url == "https://ghe.example/api/v3"
    assert (settings.github_app_id, settings.github_webhook_secret) == (12, "s")
    assert settings.github_private_key == app_private_key
    assert (settings.github_ready_label, settings.github_outbox_poll) == ("help wanted", 2.0)
    one_line = app_private_key.strip().replace("\n", "\\n")  # as pasted into an .env file
    pasted = load_settings({**BASE, "GITHUB_APP_ID": "12", "GITHUB_PRIVATE_KEY": one_line})
    assert pasted.github_private_key == app_private_key


def test_every_mistake_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({**BASE, "GITHUB_API_URL": "api.github.com", "GITHUB_APP_ID": "my-app",
                       "GITHUB_PRIVATE_KEY_PATH": str(tmp_path / "missing.pem")})
    message = str(raised.value)
    assert "GITHUB_API_URL='api.github.com' is not a URL" in message
    assert "GITHUB_APP_ID='my-app' is not a number" in message
    assert "GITHUB_PRIVATE_KEY_PATH" in message and "cannot be read" in message
    with pytest.raises(ConfigError, match="go together"):
        load_settings({**BASE, "GITHUB_APP_ID": "12"})
    with pytest.raises(ConfigError, match="not a PEM private key"):
        load_settings({**BASE, "GITHUB_APP_ID": "12", "GITHUB_PRIVATE_KEY": "hunter2"})
