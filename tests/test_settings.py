"""Settings come from the environment and .env; a bad value stops start-up with one line naming it."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import KEY_FILE_NAME, SettingsError, load_settings, secret_key
from storage.crypto import SecretBox
from storage.db import Database

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("DATABASE_URL", "not a url", "must be a database URL"),
        ("DATABASE_URL", "mysql://root@localhost/herald", "Herald runs on sqlite or postgresql, not mysql"),
        ("HERALD_SECRET_KEY", "too-short", "must be a Fernet key"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL"),
        ("TELEGRAM_API_URL", "ftp://example.org", "must start with http:// or https://"),
        ("HERALD_GRACE_MINUTES", "-5", "greater than or equal to 0"),
        ("HERALD_GRACE_MINUTES", "soon", "valid integer"),
    ],
)
def test_a_bad_setting_is_refused_with_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str, value: str, says: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"Bad setting {variable}: ")
    assert says in message
    assert "\n" not in message


def test_settings_are_read_from_a_dotenv_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("LOG_LEVEL=debug\nHERALD_GRACE_MINUTES=30\n")
    settings = load_settings()
    assert settings.log_level == "DEBUG"
    assert settings.grace_minutes == 30
    assert settings.database_url == "sqlite:///herald.db"


def test_the_embedded_default_makes_a_private_key_file_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HERALD_SECRET_KEY", raising=False)
    settings = load_settings(DATABASE_URL=f"sqlite:///{tmp_path / 'data' / 'h.db'}")
    key, note = secret_key(settings)
    key_file = tmp_path / "data" / KEY_FILE_NAME
    assert note is not None and str(key_file) in note
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert SecretBox.is_valid_key(key)
    again, second_note = secret_key(settings)
    assert again == key and second_note is None


def test_postgresql_without_a_secret_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HERALD_SECRET_KEY", raising=False)
    settings = load_settings(DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1/herald")
    with pytest.raises(SettingsError, match="HERALD_SECRET_KEY: it is required"):
        secret_key(settings)


def test_the_secret_key_from_the_environment_is_used_and_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    key = SecretBox.new_key()
    monkeypatch.setenv("HERALD_SECRET_KEY", key)
    settings = load_settings()
    assert secret_key(settings) == (key, None)
    assert key not in repr(settings) and key not in str(settings.model_dump())


def test_several_keys_open_what_any_of_them_sealed_and_the_first_seals(monkeypatch: pytest.MonkeyPatch) -> None:
    old, new = SecretBox.new_key(), SecretBox.new_key()
    sealed_with_old = SecretBox(old).seal({"token": "t"})
    monkeypatch.setenv("HERALD_SECRET_KEY", f"{new}, {old}")
    box = SecretBox(secret_key(load_settings())[0])
    assert box.key_count == 2 and box.open(sealed_with_old) == {"token": "t"}
    assert SecretBox(new).open(box.seal({"token": "u"})) == {"token": "u"}
    assert SecretBox(new).open(box.rotate(sealed_with_old)) == {"token": "t"}
    monkeypatch.setenv("HERALD_SECRET_KEY", f"{new},not-a-key")
    with pytest.raises(SettingsError, match="Bad setting HERALD_SECRET_KEY: must be a Fernet key"):
        load_settings()


def test_the_sqlite_database_file_is_created_for_its_owner_only(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        db.migrate()
    finally:
        db.dispose()
    assert stat.S_IMODE((tmp_path / "fresh.db").stat().st_mode) == 0o600


def test_herald_refuses_to_start_on_a_bad_setting(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "DATABASE_URL": "oracle://x"}
    done = subprocess.run([sys.executable, "-m", "bot"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 2
    assert done.stderr.strip() == "herald: Bad setting DATABASE_URL: Herald runs on sqlite or postgresql, not oracle."
    assert not (tmp_path / "herald.db").exists()
