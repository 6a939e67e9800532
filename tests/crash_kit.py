"""What the crash harness (tests/test_crash.py) is built from.

- `Hook`: shared by the fake networks of one test. It records every create request (which network, which
  text, whether the whole answer was written) and, when armed for one run, stops at one point of
  publishing and tells the test by an asyncio event:
    * `upload`: the first media upload arrives (the delivery is claimed; its create isn't sent yet) and is
      held;
    * `create`: the first create request arrives and is held — the post made before the hold, after the
      worker is gone, or never, at random;
    * `answer`: the first create request arrives; the worker is frozen (SIGSTOP, so it can't read what
      follows), the post is made and the whole answer written to the socket. The kill lands after the
      answer and before it is stored.
- `CrashX`, `CrashMastodon`, `CrashBluesky`: the fakes of tests/fakes/ with the hook on their create and
  upload routes. X has no idempotency; Mastodon dedupes by `Idempotency-Key`; Bluesky by the record key
  Herald derives from the delivery. Mastodon answers an upload 200 with its URL (processed at once, as it
  does for small images), so the worker doesn't poll.
- `Worker`: one `python -m bot` subprocess — a headless worker (`HERALD_CONSOLE=false`) on the test's
  database — whose stdout (the team's console chat) and stderr are collected while it runs.
- `phase_of`: where a kill landed for one delivery, from the database and the hook's records.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from random import Random

from aiohttp import web
from PIL import Image

from tests.fakes.bluesky_api import FakeBluesky
from tests.fakes.loopback import LoopbackServer
from tests.fakes.mastodon_api import FakeMastodon
from tests.fakes.x_api import FakeX

ROOT = Path(__file__).resolve().parent.parent
BSKY_PASSWORD = "abcd-efgh-ijkl-mnop"

Handler = Callable[[web.Request], Awaitable[web.Response]]

# where a kill landed, for one delivery
BEFORE_CLAIM = "before the claim"
AFTER_CLAIM = "after the claim"
IN_FLIGHT = "network call in flight"
ANSWERED = "answer in, not stored"
SETTLED = "already settled"
PHASES = (BEFORE_CLAIM, AFTER_CLAIM, IN_FLIGHT, ANSWERED)


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (40, 120, 200)).save(out, "PNG")
    return out.getvalue()


PNG = png()


@dataclass
class Attempt:
    """One create request a fake network received."""

    network: str
    text: str
    answered: bool = False  # the whole answer was written back


@dataclass
class Hook:
    rng: Random
    mode: str | None = None  # None, "upload", "create" or "answer"; fires once, then disarms
    target: str | None = None  # the network whose request it waits for (None: any)
    freeze: Callable[[], None] | None = None  # for "answer": stops the worker before the answer is written
    attempts: list[Attempt] = field(default_factory=list)
    fired: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    what: str = ""  # what the fired hook did, for the run's log line

    def arm(self, mode: str | None, target: str | None = None, freeze: Callable[[], None] | None = None) -> None:
        self.mode, self.target, self.freeze, self.what = mode, target, freeze, ""
        self.fired = asyncio.Event()
        self.release = asyncio.Event()

    def disarm(self) -> None:
        self.mode = None
        self.release.set()  # let a held request finish (its client is gone)

    def _take(self, mode: str, network: str) -> bool:
        if self.mode != mode or self.target not in (None, network):
            return False
        self.mode = None
        return True

    def for_text(self, network: str, text: str) -> list[Attempt]:
        return [a for a in self.attempts if a.network == network and a.text == text]

    async def upload(self, network: str, request: web.Request, real: Handler) -> web.StreamResponse:
        if not self._take("upload", network):
            return await real(request)
        self.what = f"held the first media upload ({network})"
        self.fired.set()
        await self.release.wait()
        return web.json_response({"error": "the client went away"}, status=503)

    async def create(self, network: str, text: str, request: web.Request, real: Handler) -> web.StreamResponse:
        attempt = Attempt(network, text)
        self.attempts.append(attempt)
        if self._take("create", network):
            when = self.rng.choice(("before the hold", "after the worker died", "never"))
            self.what = f"held the first create ({network}); the post made {when}"
            response = await real(request) if when == "before the hold" else None
            self.fired.set()
            await self.release.wait()
            if when == "after the worker died":
                response = await real(request)
            return response or web.json_response({"error": "the client went away"}, status=503)
        freeze = self.freeze if self._take("answer", network) else None
        if freeze is not None:
            freeze()  # the worker can't read anything from here on
        response = await real(request)
        # write the whole answer now (aiohttp skips a response already sent), then note it
        await response.prepare(request)
        await response.write_eof()
        attempt.answered = True
        if freeze is not None:
            self.what = f"froze the worker and wrote the first create's answer ({network})"
            self.fired.set()
        return response


class CrashX(FakeX):
    network = "x"

    def __init__(self, hook: Hook) -> None:
        super().__init__()
        self.hook = hook

    async def create(self, request: web.Request) -> web.Response:
        text = (await request.json()).get("text", "")
        return await self.hook.create(self.network, text, request, super().create)  # type: ignore[return-value]

    async def upload(self, request: web.Request) -> web.Response:
        return await self.hook.upload(self.network, request, super().upload)  # type: ignore[return-value]

    def posts(self) -> dict[str, str]:
        """Remote id → text of every post this network holds."""
        return {tweet_id: tweet["text"] for tweet_id, tweet in self.tweets.items()}


class CrashMastodon(FakeMastodon):
    network = "mastodon"

    def __init__(self, hook: Hook) -> None:
        super().__init__()
        self.hook = hook

    async def create(self, request: web.Request) -> web.Response:
        text = (await request.json()).get("status", "")
        return await self.hook.create(self.network, text, request, super().create)  # type: ignore[return-value]

    async def upload(self, request: web.Request) -> web.Response:
        return await self.hook.upload(self.network, request, self._processed_upload)  # type: ignore[return-value]

    async def _processed_upload(self, request: web.Request) -> web.Response:
        answer = await super().upload(request)
        if answer.status != 202:
            return answer
        media_id = json.loads(answer.body)["id"]  # type: ignore[arg-type]
        self.media[media_id]["polls"] = self.processing_polls + 1  # small images are ready at once
        return web.json_response({"id": media_id, "type": "image", "url": f"{self.url}/m/{media_id}",
                                  "preview_url": None})

    def posts(self) -> dict[str, str]:
        return {status_id: status["content"] for status_id, status in self.statuses.items()}


class CrashBluesky(FakeBluesky):
    network = "bluesky"

    def __init__(self, hook: Hook) -> None:
        super().__init__(lambda: datetime.now(UTC), password=BSKY_PASSWORD)
        self.hook = hook

    async def create_record(self, request: web.Request) -> web.Response:
        text = ((await request.json()).get("record") or {}).get("text", "")
        return await self.hook.create(self.network, text, request, super().create_record)  # type: ignore[return-value]

    async def upload_blob(self, request: web.Request) -> web.Response:
        return await self.hook.upload(self.network, request, super().upload_blob)  # type: ignore[return-value]

    def posts(self) -> dict[str, str]:
        return {uri: record["text"] for uri, record in self.records.items()}


def connect_lines(x: LoopbackServer, mastodon: LoopbackServer, bluesky: LoopbackServer) -> dict[str, str]:
    """Account name → the /connect line for it, on its fake network."""
    return {
        "acme-x": f"/connect x name=acme-x base_url={x.url} access_token=tok-1",
        "acme-masto": f"/connect mastodon name=acme-masto base_url={mastodon.url} access_token=masto-token",
        "acme-bsky": f"/connect bluesky name=acme-bsky base_url={bluesky.url} handle=brand.bsky.social "
                     f"app_password={BSKY_PASSWORD}",
    }


class Worker:
    """`python -m bot` as a headless worker in a subprocess; its console chat output is `out`."""

    def __init__(self, env: Mapping[str, str], cwd: Path) -> None:
        self.env = dict(env)
        self.cwd = cwd
        self.process: asyncio.subprocess.Process | None = None
        self.out: list[str] = []
        self.err: list[str] = []
        self._readers: list[asyncio.Task[None]] = []

    @staticmethod
    def environment(database_url: str, secret_key: str, worker_id: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("HERALD_", "DATABASE_URL", "TELEGRAM_", "DISCORD_"))}
        env.update(
            PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", DATABASE_URL=database_url, HERALD_SECRET_KEY=secret_key,
            HERALD_WORKER_ID=worker_id, HERALD_CONSOLE="false", LOG_LEVEL="WARNING",
            # only publishing runs during a run: no metrics poll or account check calls the fakes meanwhile
            HERALD_SWEEP_SECONDS="5", HERALD_METRICS_POLL_SECONDS="86400", HERALD_ACCOUNT_CHECK_SECONDS="86400",
        )
        return env

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def new_output(self) -> list[str]:
        """The list the worker's stdout lines go into (a subclass may hand one that tells when a line comes)."""
        return []

    async def start(self) -> None:
        self.out, self.err = self.new_output(), []
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", cwd=self.cwd, env=self.env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        assert self.process.stdout is not None and self.process.stderr is not None
        self._readers = [asyncio.create_task(self._read(self.process.stdout, self.out)),
                         asyncio.create_task(self._read(self.process.stderr, self.err))]

    @staticmethod
    async def _read(stream: asyncio.StreamReader, into: list[str]) -> None:
        while line := await stream.readline():
            into.append(line.decode(errors="replace"))

    @property
    def output(self) -> str:
        return "".join(self.out)

    def freeze(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    async def kill(self) -> None:
        """SIGKILL: no clean-up of any kind runs."""
        assert self.process is not None
        if self.process.returncode is None:
            self.process.kill()
        await self._finish()

    async def stop(self) -> int:
        """SIGTERM, as a Procfile stop: the worker stops cleanly. Its exit code."""
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        return await self._finish()

    async def _finish(self) -> int:
        assert self.process is not None
        code = await asyncio.wait_for(self.process.wait(), timeout=30)
        await asyncio.gather(*self._readers)
        return code

    def tail(self) -> str:
        return "--- worker stdout ---\n" + self.output[-3000:] + "\n--- worker stderr ---\n" + "".join(self.err)[-3000:]


def phase_of(state_at_kill: str, attempts: list[Attempt]) -> str:
    """Where the kill landed for one delivery: its state in the database then, and what its network saw."""
    if state_at_kill == "pending":
        return BEFORE_CLAIM
    if state_at_kill != "sending":
        return SETTLED
    if not attempts:
        return AFTER_CLAIM
    return ANSWERED if any(a.answered for a in attempts) else IN_FLIGHT
