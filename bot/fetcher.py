"""Downloads a file a user named by its web address (a picture in an /import plan): Herald's `Fetcher`.

An address typed by a user is fetched with the care a server owes it: http and https only; the host must
resolve to public addresses only (not the loopback, the private networks, link-local cloud metadata…) unless
HERALD_FETCH_PRIVATE allows the local network; at most 3 redirects, each address checked again; the size
capped as the bytes arrive (and by Content-Length before); one timeout for the whole download.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import unquote

import httpx

from handlers.core.chat import MediaIn
from handlers.core.ports import FetchError

MAX_REDIRECTS = 3
USER_AGENT = "Herald (fetching a picture named in a plan)"


class HttpFetcher:
    def __init__(self, *, allow_private: bool = False, timeout: float = 20.0) -> None:
        self.allow_private = allow_private
        self.timeout = timeout

    async def fetch(self, url: str, *, max_bytes: int) -> MediaIn:
        try:
            return await asyncio.wait_for(self._fetch(url, max_bytes), self.timeout)
        except TimeoutError:
            raise FetchError(f"the site didn't send the file within {self.timeout:g} seconds") from None

    async def _fetch(self, url: str, max_bytes: int) -> MediaIn:
        async with httpx.AsyncClient(follow_redirects=False, timeout=self.timeout,
                                     headers={"user-agent": USER_AGENT}) as client:
            for _hop in range(MAX_REDIRECTS + 1):
                try:
                    target = httpx.URL(url)
                except httpx.InvalidURL:
                    raise FetchError("that isn't a web address I can fetch") from None
                if target.scheme not in ("http", "https") or not target.host:
                    raise FetchError("only http:// and https:// addresses can be fetched")
                await self._check_host(target)
                try:
                    async with client.stream("GET", target) as response:
                        if response.is_redirect and "location" in response.headers:
                            url = str(target.join(response.headers["location"]))
                            continue
                        if response.status_code != 200:
                            raise FetchError(f"the site answered {response.status_code} "
                                             f"{response.reason_phrase or ''}".rstrip())
                        declared = response.headers.get("content-length", "")
                        if declared.isdigit() and int(declared) > max_bytes:
                            raise FetchError(too_big(int(declared), max_bytes))
                        data = bytearray()
                        async for chunk in response.aiter_bytes():
                            data += chunk
                            if len(data) > max_bytes:
                                raise FetchError(too_big(len(data), max_bytes))
                        kind = response.headers.get("content-type", "application/octet-stream").split(";")[0]
                        name = unquote(target.path.rstrip("/").rsplit("/", 1)[-1]) or "file"
                        return MediaIn(name, kind.strip(), bytes(data))
                except httpx.HTTPError as exc:
                    raise FetchError(f"couldn't reach {target.host} ({type(exc).__name__})") from None
        raise FetchError(f"the site redirected more than {MAX_REDIRECTS} times")

    async def _check_host(self, target: httpx.URL) -> None:
        """Refuse a host that resolves to a loopback, private, link-local or otherwise non-public address."""
        if self.allow_private:
            return
        port = target.port or (443 if target.scheme == "https" else 80)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(target.host, port, type=socket.SOCK_STREAM)
        except OSError:
            raise FetchError(f"{target.host} can't be found (DNS)") from None
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            if not address.is_global:
                raise FetchError(f"{target.host} is a local or private address; Herald fetches only public "
                                 "web addresses")


def too_big(size: int, cap: int) -> str:
    return f"the file is {size / 2**20:.1f} MB; a picture fetched from the web can be at most {cap // 2**20} MB"
