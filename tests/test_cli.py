"""The command line: `python -m bot` opens the console chat; `demo` plays the whole flow; `key` prints a key;
`rotate-key` seals every stored credential again with a new key."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from storage.crypto import SecretBox, SecretBoxError

ROOT = Path(__file__).resolve().parent.parent


def run_bot(args: list[str], cwd: Path, stdin: str = "", timeout: int = 90,
            **settings: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HERALD_", "DATABASE_URL", "TELEGRAM_", "DISCORD_"))}
    env["PYTHONPATH"] = str(ROOT)
    env.update(settings)
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=cwd, env=env, input=stdin,
                          capture_output=True, text=True, timeout=timeout)


def test_with_no_token_herald_opens_the_console_chat_on_sqlite(tmp_path: Path) -> None:
    done = run_bot([], tmp_path, stdin="/help\n/setup Acme\n/quit\n")
    assert done.returncode == 0, done.stderr
    assert "Herald is running on the console chat" in done.stdout
    assert "/draft <text>" in done.stdout
    assert "Workspace 'Acme' is ready" in done.stdout
    assert "Made a new secret key" in done.stdout
    assert (tmp_path / "herald.db").exists()
    assert stat.S_IMODE((tmp_path / "herald-secret.key").stat().st_mode) == 0o600
    again = run_bot([], tmp_path, stdin="/policy\n")
    assert again.returncode == 0, again.stderr
    assert "Made a new secret key" not in again.stdout
    assert "Approval policy of 'Acme'" in again.stdout


def test_the_demo_plays_the_whole_flow_and_exits_0(tmp_path: Path) -> None:
    done = run_bot(["demo"], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "bob approved #1 (1 of 1)" in out
    assert "#1 is published on all 2 account(s)" in out
    assert "📊 #1" in out and "Engagement rate" in out
    assert "📈 Report for the last 24 hours" in out
    assert "Demo finished" in out
    assert list(tmp_path.iterdir()) == []  # the demo leaves nothing behind


def test_key_prints_a_fresh_fernet_key(tmp_path: Path) -> None:
    done = run_bot(["key"], tmp_path)
    assert done.returncode == 0
    assert SecretBox.is_valid_key(done.stdout.strip())


CONNECT = "/setup Acme\n/connect sandbox name=brand token=canary-token-1\n/quit\n"


def sealed(tmp_path: Path) -> bytes:
    """The stored credentials of the account 'brand', as they lie in the database file."""
    with closing(sqlite3.connect(tmp_path / "herald.db")) as connection:
        row = connection.execute("SELECT credentials FROM account WHERE name = 'brand'").fetchone()
    return bytes(row[0])


def test_rotate_key_seals_every_credential_with_a_new_key_in_the_key_file(tmp_path: Path) -> None:
    made = run_bot([], tmp_path, stdin=CONNECT)
    assert "Connected brand" in made.stdout, made.stdout + made.stderr
    key_path = tmp_path / "herald-secret.key"
    old_key, before = key_path.read_text().strip(), sealed(tmp_path)
    assert stat.S_IMODE((tmp_path / "herald.db").stat().st_mode) == 0o600

    done = run_bot(["rotate-key"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Re-sealed the credentials of 1 account(s) with a new key" in done.stdout
    new_key = key_path.read_text().strip()
    assert SecretBox.is_valid_key(new_key) and "," not in new_key and new_key != old_key
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    after = sealed(tmp_path)
    assert after != before
    assert SecretBox(new_key).open(after) == {"token": "canary-token-1"}
    with pytest.raises(SecretBoxError):
        SecretBox(old_key).open(after)
    assert "canary-token-1" not in done.stdout + done.stderr
    again = run_bot([], tmp_path, stdin="/accounts\n")
    assert again.returncode == 0 and "brand" in again.stdout and "Made a new secret key" not in again.stdout


def test_rotate_key_with_new_and_old_keys_in_herald_secret_key(tmp_path: Path) -> None:
    old_key, new_key = SecretBox.new_key(), SecretBox.new_key()
    made = run_bot([], tmp_path, stdin=CONNECT, HERALD_SECRET_KEY=old_key)
    assert "Connected brand" in made.stdout, made.stdout + made.stderr
    both = run_bot([], tmp_path, stdin="/accounts\n", HERALD_SECRET_KEY=f"{new_key},{old_key}")
    assert both.returncode == 0 and "brand" in both.stdout, both.stderr  # several keys are accepted

    done = run_bot(["rotate-key"], tmp_path, HERALD_SECRET_KEY=f"{new_key},{old_key}")
    assert done.returncode == 0, done.stderr
    assert "Re-sealed the credentials of 1 account(s) with the first key" in done.stdout
    assert SecretBox(new_key).open(sealed(tmp_path)) == {"token": "canary-token-1"}
    with pytest.raises(SecretBoxError):
        SecretBox(old_key).open(sealed(tmp_path))
    assert not (tmp_path / "herald-secret.key").exists()


def test_rotate_key_without_the_key_that_opens_a_credential_changes_nothing(tmp_path: Path) -> None:
    made = run_bot([], tmp_path, stdin=CONNECT)
    assert "Connected brand" in made.stdout, made.stdout + made.stderr
    before = sealed(tmp_path)
    done = run_bot(["rotate-key"], tmp_path, HERALD_SECRET_KEY=SecretBox.new_key())
    assert done.returncode == 2
    assert "account brand (sandbox) can't be opened with any of its keys, so nothing was re-sealed" in done.stderr
    assert "Traceback" not in done.stderr
    assert sealed(tmp_path) == before


def test_a_missing_key_file_with_sealed_credentials_stops_start_up(tmp_path: Path) -> None:
    made = run_bot([], tmp_path, stdin=CONNECT)
    assert "Connected brand" in made.stdout, made.stdout + made.stderr
    (tmp_path / "herald-secret.key").unlink()
    done = run_bot([], tmp_path, stdin="/accounts\n")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "the key file" in lines[0] and "is missing" in lines[0], done.stderr
    assert "Put the key file back from your backup" in lines[0]
    assert not (tmp_path / "herald-secret.key").exists()  # no new key quietly made


async def test_with_a_telegram_token_herald_serves_the_group_until_sigterm(tmp_path: Path) -> None:
    """The real entry point, as a Procfile runs it: no terminal, TELEGRAM_BOT_TOKEN set, SIGTERM to stop."""
    import asyncio
    import signal

    from tests.fakes.telegram_api import FakeTelegram

    tg = FakeTelegram()
    await tg.start()
    alice = tg.user("Alice", username="alice")
    group = tg.group("Acme marketing", admins=(alice,))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HERALD_", "DATABASE_URL", "TELEGRAM_", "DISCORD_"))}
    env.update(PYTHONPATH=str(ROOT), TELEGRAM_BOT_TOKEN=tg.token, TELEGRAM_API_URL=tg.url)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        await tg.wait_call("setMyCommands", timeout=60)
        await tg.say(alice, group, "/setup Acme")
        reply = await tg.wait_sent(group, "Workspace 'Acme' is ready", timeout=30)
        assert "@alice is its admin" in reply["text"]
        process.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    finally:
        if process.returncode is None:
            process.kill()
        await tg.close()
    assert process.returncode == 0, err.decode()
    assert "Herald is running: Telegram (polling)" in out.decode()
