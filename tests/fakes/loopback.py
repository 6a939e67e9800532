"""A real HTTP server on 127.0.0.1 for contract tests: records every request, injects faults.

Each fake network (tests/fakes/<network>.py) builds on `LoopbackServer`: it adds routes that
answer with the network's documented shapes, and tests read `server.seen` to check what the
connector sent (method, path, headers, body). Faults are queued per route:

    server.fail("POST", "/2/tweets", status=429, headers={"retry-after": "30"})
    server.fail("POST", "/2/tweets", drop=True)      # close the connection after reading the request
    server.fail("POST", "/2/tweets", delay=5)        # answer late (the client's timeout fires)
    server.fail("POST", "/2/tweets", status=200, raw=b"<html>")  # malformed JSON

Tests wait for what the client did with `await server.wait_until(predicate)`: the predicate is checked
again each time the server has answered a request (or a fake says its state changed), never on a timer;
the timeout only bounds a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")


@dataclass
class Seen:
    """One request the server received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    content_type: str
    form: dict[str, Any] = field(default_factory=dict)

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Fault:
    method: str
    path: str
    status: int = 500
    body: Any = None
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False
    after: bool = False  # run the real handler first (the post exists), then fail the answer
    times: int = 1


class Changes:
    """Something tests watch (a server's requests, a process's output): whoever changes it calls `changed()`,
    and `wait_until(predicate)` checks again then, never on a timer."""

    def __init__(self) -> None:
        self._change: asyncio.Event | None = None

    def changed(self) -> None:
        """Wake every `wait_until`."""
        if self._change is not None:
            self._change.set()
            self._change = None

    async def wait_until(self, predicate: Callable[[], T], timeout: float = 10.0,
                         what: str = "it didn't happen in time") -> T:
        """The first truthy value of `predicate()`, checked now and after each change; AssertionError(`what`)
        if none comes within `timeout` seconds (a bound on a failure, not a wait)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if self._change is None:
                self._change = asyncio.Event()
            change = self._change  # taken before the check: a change after it wakes this waiter
            value = predicate()
            if value:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(what)
            with contextlib.suppress(TimeoutError):  # the loop's next check raises
                await asyncio.wait_for(change.wait(), remaining)


class LoopbackServer:
    """An aiohttp server on a free 127.0.0.1 port. Use `async with` or start()/close()."""

    def __init__(self) -> None:
        self.app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        self.seen: list[Seen] = []
        self.faults: list[Fault] = []
        self._runner: web.AppRunner | None = None
        self.url = ""
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.changes = Changes()
        self.app.router.add_route("*", "/{tail:.*}", self._dispatch)

    def route(self, method: str, path: str, handler: Handler) -> None:
        """Add a route (also after start); `{name}` in the path matches one segment, read it from
        `request.match_info` like aiohttp's own routes."""
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path))
        self._routes.append((method.upper(), re.compile(pattern + "$"), handler))

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        for method, pattern, handler in self._routes:
            match = pattern.match(request.path)
            if match and method in (request.method, "*"):
                request.match_info.update(match.groupdict())
                return await handler(request)
        return web.json_response({"error": f"no route {request.method} {request.path}"}, status=404)

    def fail(self, method: str, path: str, **kwargs: Any) -> Fault:
        fault = Fault(method.upper(), path, **kwargs)
        self.faults.append(fault)
        return fault

    def requests(self, method: str | None = None, path: str | None = None) -> list[Seen]:
        return [s for s in self.seen if (method is None or s.method == method.upper())
                and (path is None or s.path == path or (path.endswith("*") and s.path.startswith(path[:-1])))]

    def changed(self) -> None:
        """Wake every `wait_until`: the server's state may have changed (a request was answered)."""
        self.changes.changed()

    async def wait_until(self, predicate: Callable[[], T], timeout: float = 10.0,
                         what: str = "the client didn't do it in time") -> T:
        """The first truthy `predicate()`, checked now and after each request (see `Changes.wait_until`)."""
        return await self.changes.wait_until(predicate, timeout, what)

    async def start(self) -> str:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        sockets = site._server.sockets  # type: ignore[union-attr]
        port = sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> LoopbackServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.method == method and (fault.path == path or
                                           (fault.path.endswith("*") and path.startswith(fault.path[:-1]))):
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        form: dict[str, Any] = {}
        ctype = request.content_type
        # multipart is parsed from the stream (the parts land in `form`, `body` stays empty);
        # everything else is read whole (aiohttp caches it, so handlers can read it again)
        body = b"" if ctype == "multipart/form-data" else await request.read()
        if ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            posted = await request.post()
            for key in posted:
                value = posted[key]
                form[key] = value if isinstance(value, str) else {
                    "filename": value.filename, "content_type": value.content_type, "data": value.file.read()}
        self.seen.append(Seen(request.method, request.path, dict(request.query),
                              {k.lower(): v for k, v in request.headers.items()}, body, ctype, form))
        self.changed()  # the request is seen (its answer may take a while: a delay fault)
        try:
            return await self._answer_or_fault(request, handler)
        finally:
            self.changed()

    async def _answer_or_fault(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        fault = self._take_fault(request.method, request.path)
        if fault is None:
            return await handler(request)
        if fault.after:
            await handler(request)
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.drop:
            transport = request.transport
            if transport is not None:
                transport.close()
            raise ConnectionResetError("dropped by the test")
        if fault.raw is not None:
            return web.Response(status=fault.status, body=fault.raw, headers=fault.headers,
                                content_type="application/json")
        return web.json_response(fault.body if fault.body is not None else {"error": "fault injected"},
                                 status=fault.status, headers=fault.headers)
