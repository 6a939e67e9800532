"""Herald's command line: `python -m bot` runs it; `demo`, `key`, `rotate-key` and `migrate` are helpers."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

from bot.settings import Settings, SettingsError, load_settings


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    quiet = max(logging.WARNING, logging.getLevelName(settings.log_level))
    # httpx logs every request URL at INFO, and some carry tokens (Telegram's bot token, Discord webhooks)
    for noisy in ("apscheduler", "alembic", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(quiet)


async def run(settings: Settings) -> int:
    from bot.app import Herald, chat_fronts

    herald = Herald(settings)
    if herald.key_note:
        print(herald.key_note)
    fronts = chat_fronts(herald)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):  # a Procfile stop (SIGTERM) or Ctrl-C: stop cleanly
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)

    async def stop_when_the_lock_is_lost() -> None:  # another process took this worker's HERALD_WORKER_ID
        await herald.lock_lost.wait()
        stop.set()

    watcher = asyncio.create_task(stop_when_the_lock_is_lost())
    try:
        await herald.start()
        if not settings.console:
            print(f"Herald is running as a headless worker ({settings.worker_id})"
                  + (f": {', '.join(fronts)}" if fronts else "") + ". SIGTERM or Ctrl-C stops it.", flush=True)
            await stop.wait()
            return lost_lock(herald.lock_lost, herald.lock.lost_line())
        if fronts:
            print(f"Herald is running: {', '.join(fronts)}, and the console chat. Ctrl-C stops it.", flush=True)
        else:
            print("Herald is running on the console chat. Type /help to begin, /quit to stop.", flush=True)
        console = asyncio.create_task(herald.console.serve(sys.stdin, prompt=sys.stdin.isatty() and not fronts))
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({console, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if console.done() and fronts and not herald.console.closed:
            await stopped  # stdin closed (a Procfile process has none): keep serving the chat front ends
        for task in (console, stopped):
            task.cancel()
    finally:
        watcher.cancel()
        await herald.stop()
    return lost_lock(herald.lock_lost, herald.lock.lost_line())


def lost_lock(lost: asyncio.Event, line: str) -> int:
    """1 with one line on stderr when Herald stopped because another process took its worker id, else 0."""
    if not lost.is_set():
        return 0
    print(f"herald: {line}", file=sys.stderr, flush=True)
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="herald", description="Herald: your team's campaign assistant in chat.")
    parser.add_argument("action", nargs="?", default="run", choices=["run", "demo", "key", "rotate-key", "migrate"],
                        help="run (default): start Herald; demo: play a scripted session; "
                             "key: print a new HERALD_SECRET_KEY; rotate-key: seal every stored credential "
                             "again with the first key of HERALD_SECRET_KEY (or a new key in the key file); "
                             "migrate: update the database and exit")
    args = parser.parse_args(argv)
    if args.action == "key":
        from storage.crypto import SecretBox

        print(SecretBox.new_key())
        return 0
    try:
        if args.action == "demo":
            from bot.demo import play

            return asyncio.run(play())
        settings = load_settings()
        configure_logging(settings)
        if args.action == "migrate":
            from storage.db import Database

            Database(settings.database_url).migrate()
            print("The database is up to date.")
            return 0
        if args.action == "rotate-key":
            from bot.keys import rotate_key

            print(rotate_key(settings))
            return 0
        return asyncio.run(run(settings))
    except SettingsError as exc:
        print(f"herald: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
