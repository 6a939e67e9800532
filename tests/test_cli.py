"""The command line: `python -m bot` opens the console chat; `demo` plays the whole flow; `key` prints a key."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from storage.crypto import SecretBox

ROOT = Path(__file__).resolve().parent.parent


def run_bot(args: list[str], cwd: Path, stdin: str = "", timeout: int = 90) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HERALD_", "DATABASE_URL", "TELEGRAM_", "DISCORD_"))}
    env["PYTHONPATH"] = str(ROOT)
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
