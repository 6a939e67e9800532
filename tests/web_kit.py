"""What the web tests share: a real Herald with its one web app on 127.0.0.1, and a real headless Chromium
(Debian's `chromium` and `chromium-driver`) driven by Selenium.

The browser fixture skips, saying why, when Chromium isn't installed — except in CI (`CI=true`), where a missing
browser fails the run instead. Selenium is synchronous and the web app runs in the test's event loop, so every
browser call goes through `Browser` (in a thread), never blocking the loop that must answer the browser.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.app import web_app
from tests.conftest import FakeClock, Team, make_herald

PUBLIC = "https://plan.acme.example"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


class Browser:
    """A headless Chromium; each call runs in a thread so the web app keeps answering."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver

    async def open(self, url: str) -> None:
        await asyncio.to_thread(self.driver.get, url)

    async def run(self, call: Any, *args: Any) -> Any:
        return await asyncio.to_thread(call, *args)

    async def text(self, css: str = "body") -> str:
        from selenium.webdriver.common.by import By

        return await asyncio.to_thread(lambda: self.driver.find_element(By.CSS_SELECTOR, css).text)

    async def all_text(self, css: str) -> list[str]:
        from selenium.webdriver.common.by import By

        return await asyncio.to_thread(lambda: [e.text for e in self.driver.find_elements(By.CSS_SELECTOR, css)])

    async def click(self, css: str) -> None:
        """Clicks a link or a button and returns once the page it leads to has loaded."""
        from selenium.webdriver.common.by import By

        await asyncio.to_thread(self._navigate, By.CSS_SELECTOR, css)

    async def click_link(self, text: str) -> None:
        from selenium.webdriver.common.by import By

        await asyncio.to_thread(self._navigate, By.LINK_TEXT, text)

    def _navigate(self, by: str, what: str) -> None:
        """Marks the page it leaves with a window property, clicks, then waits for a loaded page without the mark.

        No element of the old page is held across the click: while Chromium swaps documents, asking about an old
        element can fail with errors Selenium doesn't treat as stale ("Node with given id does not belong to the
        document"), and a script asked mid-swap can fail the same way; both are retried until the new page has
        loaded (20 s, then a timeout naming what was clicked).
        """
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver.execute_script("window.__heraldLeaving = true")
        self.driver.find_element(by, what).click()
        WebDriverWait(self.driver, 20, ignored_exceptions=(WebDriverException,)).until(
            lambda driver: driver.execute_script(
                "return window.__heraldLeaving === undefined && document.readyState === 'complete'"),
            f"no new page loaded after clicking {what!r}")

    async def type(self, css: str, words: str) -> None:
        from selenium.webdriver.common.by import By

        def run() -> None:
            field = self.driver.find_element(By.CSS_SELECTOR, css)
            field.clear()
            field.send_keys(words)

        await asyncio.to_thread(run)

    async def image_width(self, css: str) -> int:
        """The natural width of the first image matching `css` once the browser has loaded it (0: it failed)."""
        from selenium.webdriver.support.ui import WebDriverWait

        script = f"const i = document.querySelector({css!r}); return i && i.complete ? i.naturalWidth : null"
        return int(await asyncio.to_thread(
            lambda: WebDriverWait(self.driver, 20).until(lambda d: d.execute_script(script) is not None)
            and self.driver.execute_script(script)))

    async def shot(self, name: str) -> None:
        """With HERALD_SCREENSHOTS=<folder> set, saves what the browser shows as <folder>/<name>.png (README's
        pictures in docs/ are made so); otherwise nothing."""
        folder = os.environ.get("HERALD_SCREENSHOTS")
        if folder:
            await asyncio.to_thread(self.driver.save_screenshot, str(Path(folder) / f"{name}.png"))

    async def script(self, source: str, *args: Any) -> Any:
        return await asyncio.to_thread(self.driver.execute_script, source, *args)

    @property
    def title(self) -> str:
        return str(self.driver.title)


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        reason = "Chromium isn't installed here (apt-get install chromium chromium-driver): the web pages go untested"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", f"--user-data-dir={tmp_path_factory.mktemp('chromium')}", "--window-size=1280,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield Browser(driver)
    finally:
        driver.quit()


@pytest.fixture
def browser(chromium: Browser) -> Browser:
    """The module's Chromium with no cookies left from an earlier test, at desktop size."""
    chromium.driver.delete_all_cookies()
    chromium.driver.set_window_size(1280, 900)
    return chromium


@dataclass
class Site:
    team: Team
    web: Any
    base: str  # where the web app answers (instead of PUBLIC)
    http: httpx.AsyncClient

    def local(self, url: str) -> str:
        """A public address Herald printed, on the test's web app."""
        return url.replace(PUBLIC, self.base)


@pytest.fixture
async def site(db_url: str, clock: FakeClock) -> AsyncIterator[Site]:
    herald = make_herald(db_url, clock, HERALD_PUBLIC_URL=PUBLIC)
    await herald.start()
    web = web_app(herald, host="127.0.0.1", port=0)
    await web.start()
    base = f"http://127.0.0.1:{web.port}"
    try:
        async with httpx.AsyncClient(base_url=base, follow_redirects=False) as http:
            yield Site(Team(herald, clock, db_url), web, base, http)
    finally:
        await web.stop()
        await herald.stop()


def address(out: str, prefix: str) -> str:
    """The first address in Herald's answer that starts with `prefix` (e.g. PUBLIC + '/calendar/')."""
    for word in out.split():
        if word.startswith(prefix):
            return word
    raise AssertionError(f"no {prefix} address in {out!r}")
