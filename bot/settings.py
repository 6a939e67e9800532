"""Herald's settings, read from the environment and `.env` (pydantic-settings).

A bad value stops start-up with one line that names the variable (`SettingsError`).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import stat
from contextlib import closing
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from storage.crypto import SecretBox, split_keys

DEFAULT_DATABASE = "sqlite:///herald.db"
KEY_FILE_NAME = "herald-secret.key"


class SettingsError(Exception):
    """One clear line about a bad setting."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = Field(DEFAULT_DATABASE, validation_alias="DATABASE_URL")
    herald_secret_key: SecretStr | None = Field(None, validation_alias="HERALD_SECRET_KEY")
    telegram_bot_token: SecretStr | None = Field(None, validation_alias="TELEGRAM_BOT_TOKEN")
    telegram_api_url: str = Field("https://api.telegram.org", validation_alias="TELEGRAM_API_URL")
    # Telegram webhook mode (behind a load balancer); unset = long polling
    telegram_webhook_url: str | None = Field(None, validation_alias="TELEGRAM_WEBHOOK_URL")
    telegram_webhook_listen: str = Field("0.0.0.0", validation_alias="TELEGRAM_WEBHOOK_LISTEN")
    telegram_webhook_port: int = Field(8443, ge=1, le=65535, validation_alias="TELEGRAM_WEBHOOK_PORT")
    telegram_webhook_secret: SecretStr | None = Field(None, validation_alias="TELEGRAM_WEBHOOK_SECRET")
    discord_bot_token: SecretStr | None = Field(None, validation_alias="DISCORD_BOT_TOKEN")
    discord_api_url: str | None = Field(None, validation_alias="DISCORD_API_URL")
    # the Google Analytics Data API (GA4 visits and conversions); another base for tests and development only
    ga4_api_url: str = Field("https://analyticsdata.googleapis.com", validation_alias="HERALD_GA4_API_URL")
    # slash commands sync to these servers at once (global sync can take a while to show)
    discord_guild_ids: str = Field("", validation_alias="DISCORD_GUILD_IDS")
    # where networks that fetch images by URL (Instagram, Threads, TikTok photos) can reach Herald's media
    public_url: str | None = Field(None, validation_alias="HERALD_PUBLIC_URL")
    http_port: int = Field(8080, ge=1, le=65535, validation_alias="HERALD_HTTP_PORT")
    # true behind a load balancer that appends the visitor's address to X-Forwarded-For: short-link clicks are
    # told apart by that address (hashed, never stored) instead of the balancer's
    trust_forwarded_for: bool = Field(False, validation_alias="HERALD_TRUST_FORWARDED_FOR")
    account_check_seconds: int = Field(900, ge=30, le=86400, validation_alias="HERALD_ACCOUNT_CHECK_SECONDS")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field("INFO", validation_alias="LOG_LEVEL")
    grace_minutes: int = Field(15, ge=0, le=24 * 60, validation_alias="HERALD_GRACE_MINUTES")
    # days a published, failed or expired post keeps its media; cancelled and rejected posts' go at once
    media_retention_days: int = Field(90, ge=1, le=3650, validation_alias="HERALD_MEDIA_RETENTION_DAYS")
    # true: pictures named by web address (an /import plan) may come from the local network (loopback, private
    # addresses); by default Herald fetches only public addresses
    fetch_private: bool = Field(False, validation_alias="HERALD_FETCH_PRIVATE")
    sweep_seconds: int = Field(30, ge=5, le=3600, validation_alias="HERALD_SWEEP_SECONDS")
    metrics_poll_seconds: int = Field(60, ge=5, le=86400, validation_alias="HERALD_METRICS_POLL_SECONDS")
    # Names this process in delivery claims; at start it settles only its own interrupted sends.
    # Defaults to the host name; several workers on one host must each set their own.
    worker_id: str = Field(default_factory=socket.gethostname, min_length=1, max_length=64,
                           validation_alias="HERALD_WORKER_ID")
    # how often a running worker makes sure it still holds its HERALD_WORKER_ID (a dropped database
    # connection loses a PostgreSQL lock: it is taken again, or the worker stops if another process took it)
    lock_check_seconds: float = Field(15, ge=0.1, le=3600, validation_alias="HERALD_LOCK_CHECK_SECONDS")
    # false: a headless worker (no console chat on stdin); it runs until SIGTERM. For extra workers and
    # for a Procfile process, where stdin is closed.
    console: bool = Field(True, validation_alias="HERALD_CONSOLE")

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError("must be a database URL such as sqlite:///herald.db or postgresql+psycopg://user@host/db") from None
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError(f"Herald runs on sqlite or postgresql, not {url.get_backend_name()}")
        return value

    @field_validator("herald_secret_key")
    @classmethod
    def _fernet_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not SecretBox.is_valid_key(value.get_secret_value()):
            raise ValueError("must be a Fernet key (32 url-safe base64 bytes), or several separated by commas "
                             "(the first seals, the others only open); make one with `python -m bot key`")
        return value

    @field_validator("telegram_api_url", "telegram_webhook_url", "discord_api_url", "public_url", "ga4_api_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("discord_guild_ids")
    @classmethod
    def _guild_ids(cls, value: str) -> str:
        ids = [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]
        if any(not part.isdigit() for part in ids):
            raise ValueError("must be Discord server ids (numbers) separated by commas")
        return ",".join(ids)

    def guild_ids(self) -> list[int]:
        return [int(part) for part in self.discord_guild_ids.split(",") if part]

    def is_sqlite(self) -> bool:
        return make_url(self.database_url).get_backend_name() == "sqlite"

    def sqlite_path(self) -> Path | None:
        url = make_url(self.database_url)
        if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
            return None
        return Path(url.database)


ENV_NAMES = {
    name: (field.validation_alias if isinstance(field.validation_alias, str) else name.upper())
    for name, field in Settings.model_fields.items()
}


def load_settings(**overrides: object) -> Settings:
    """Read the settings; raise SettingsError naming the variable when one is wrong."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = str(error["loc"][0]) if error["loc"] else "?"
        name = ENV_NAMES.get(loc, loc)
        message = str(error["msg"]).removeprefix("Value error, ")
        raise SettingsError(f"Bad setting {name}: {message}.") from None


def key_file(settings: Settings) -> Path | None:
    """Where the key lives when HERALD_SECRET_KEY isn't set: beside the SQLite database file (else None)."""
    db_path = settings.sqlite_path()
    return db_path.resolve().parent / KEY_FILE_NAME if db_path is not None else None


def write_key_file(path: Path, keys: list[str]) -> None:
    """Write the key file, one key a line, first the one that seals: mode 0600, replaced in one step."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = path.with_name(path.name + ".new")
    fresh.unlink(missing_ok=True)
    fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "w") as handle:
        handle.write("".join(key + "\n" for key in keys))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(fresh, path)


def holds_sealed_credentials(db_path: Path) -> bool:
    """Whether the SQLite database at db_path exists and keeps encrypted credentials of an account."""
    if not db_path.exists():
        return False
    try:
        with closing(sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True)) as connection:
            return connection.execute("SELECT 1 FROM account WHERE credentials IS NOT NULL LIMIT 1").fetchone() is not None
    except sqlite3.Error:  # no account table yet (a new or foreign file): nothing sealed to lose
        return False


def secret_key(settings: Settings) -> tuple[str, str | None]:
    """The Fernet key(s), comma-separated, the first sealing; on the embedded SQLite default without
    HERALD_SECRET_KEY, read from the key file beside the database, made once (0600) when there is none.

    Returns (keys, note) where note is a line to show once when a key file was just created. A missing
    key file while the database keeps encrypted credentials stops start-up: a new key couldn't open them.
    """
    if settings.herald_secret_key is not None:
        return settings.herald_secret_key.get_secret_value(), None
    db_path = settings.sqlite_path()
    key_path = key_file(settings)
    if db_path is None or key_path is None:
        raise SettingsError(
            "Bad setting HERALD_SECRET_KEY: it is required with this DATABASE_URL; "
            "make one with `python -m bot key` and keep it safe."
        )
    if key_path.exists():
        keys = split_keys(key_path.read_text())
        if not keys or not SecretBox.is_valid_key(",".join(keys)):
            raise SettingsError(f"Bad setting HERALD_SECRET_KEY: the key file {key_path} is damaged.")
        return ",".join(keys), None
    if holds_sealed_credentials(db_path):
        raise SettingsError(
            f"Bad setting HERALD_SECRET_KEY: the key file {key_path} is missing, and {db_path} keeps credentials "
            "encrypted with it. Put the key file back from your backup (or set HERALD_SECRET_KEY to that key); "
            "a new key couldn't open them, so I made none."
        )
    key = SecretBox.new_key()
    key_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
    except FileExistsError:  # another worker on this host made it a moment ago: use that one
        return secret_key(settings)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key, (
        f"Made a new secret key for stored credentials in {key_path} (mode 0600). "
        "Back it up: without it, connected accounts must be reconnected. "
        "Set HERALD_SECRET_KEY to use your own."
    )
