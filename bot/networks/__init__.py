"""Network connectors, one module each, all implementing handlers.core.ports.Network."""

from __future__ import annotations

import httpx

from handlers.core.ports import Clock, Network
from storage.db import Database


class NetworkDirectory:
    """The handlers' `Networks` port: connectors by network key."""

    def __init__(self, connectors: dict[str, Network]) -> None:
        self._connectors = dict(connectors)
        self.client: httpx.AsyncClient | None = None  # the shared HTTP client, closed when Herald stops

    def get(self, key: str) -> Network | None:
        return self._connectors.get(key)

    def keys(self) -> list[str]:
        return sorted(self._connectors)

    def add(self, network: Network) -> None:
        self._connectors[network.key] = network


def build_networks(
    db: Database, clock: Clock, client: httpx.AsyncClient | None = None, *,
    telegram_token: str | None = None, telegram_api_url: str | None = None, discord_token: str | None = None,
) -> NetworkDirectory:
    """Every connector Herald has: the sandbox, the social networks over one shared HTTP client, and
    Telegram / Discord channels (posting as Herald's own bot when its token is set)."""
    from bot.networks.bluesky import BlueskyNetwork
    from bot.networks.discord_channel import DiscordChannelNetwork
    from bot.networks.facebook import FacebookNetwork
    from bot.networks.http import new_client
    from bot.networks.instagram import InstagramNetwork
    from bot.networks.linkedin import LinkedInNetwork
    from bot.networks.mastodon import MastodonNetwork
    from bot.networks.pinterest import PinterestNetwork
    from bot.networks.sandbox import SandboxNetwork
    from bot.networks.telegram_channel import TelegramChannelNetwork
    from bot.networks.threads import ThreadsNetwork
    from bot.networks.tiktok import TikTokNetwork
    from bot.networks.x import XNetwork
    from bot.networks.youtube import YouTubeNetwork

    client = client or new_client()
    directory = NetworkDirectory({"sandbox": SandboxNetwork(db, clock)})
    for cls in (XNetwork, MastodonNetwork, BlueskyNetwork, FacebookNetwork, InstagramNetwork, ThreadsNetwork,
                LinkedInNetwork, PinterestNetwork, TikTokNetwork, YouTubeNetwork):
        directory.add(cls(client, clock))
    directory.add(TelegramChannelNetwork(client, clock, bot_token=telegram_token, api_url=telegram_api_url))
    directory.add(DiscordChannelNetwork(client, clock, bot_token=discord_token))
    directory.client = client
    return directory
