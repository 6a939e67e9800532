"""Network connectors, one module each, all implementing handlers.core.ports.Network.

Each connector declares its network's `profile` (label, aliases, text rules, read budget, best-time defaults,
hosts) beside its `publish_limits` and `connect_spec`; the directory hands those profiles to the handlers.
Adding a network: its connector module, one line in `build_networks`, its fake and contract test, a README row.
"""

from __future__ import annotations

import httpx

from handlers.core.ports import Clock, Network, NetworkProfile
from storage.db import Database


class NetworkDirectory:
    """The handlers' `Networks` port: connectors by network key, and the profiles they declare."""

    def __init__(self, connectors: dict[str, Network] | None = None) -> None:
        self._connectors: dict[str, Network] = {}
        self._words: dict[str, str] = {}  # key or alias (lower case) → key
        for network in (connectors or {}).values():
            self.add(network)
        self.client: httpx.AsyncClient | None = None  # the shared HTTP client, closed when Herald stops

    def get(self, key: str) -> Network | None:
        return self._connectors.get(key)

    def keys(self) -> list[str]:
        return sorted(self._connectors)

    def add(self, network: Network) -> None:
        """Register a connector (replacing one of the same key); its key and aliases name it from now on."""
        profile = network.profile
        if profile.key != network.key:
            raise ValueError(f"the {network.key} connector declares a profile for {profile.key}")
        for word in (profile.key, *profile.aliases):
            owner = self._words.get(word.lower())
            if owner is not None and owner != profile.key:
                raise ValueError(f"'{word}' already names {owner}; {profile.key} can't take it")
        self._connectors[network.key] = network
        for word in (profile.key, *profile.aliases):
            self._words[word.lower()] = profile.key

    def profiles(self) -> list[NetworkProfile]:
        return [network.profile for network in self._connectors.values()]

    def profile(self, key: str) -> NetworkProfile | None:
        network = self._connectors.get(key)
        return network.profile if network is not None else None

    def label(self, key: str) -> str:
        profile = self.profile(key)
        return profile.label if profile is not None else key

    def resolve(self, word: str) -> str | None:
        return self._words.get(word.strip().lower())


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
    directory = NetworkDirectory()
    for cls in (XNetwork, BlueskyNetwork, MastodonNetwork, ThreadsNetwork, LinkedInNetwork, InstagramNetwork,
                FacebookNetwork, TikTokNetwork, YouTubeNetwork, PinterestNetwork):
        directory.add(cls(client, clock))
    directory.add(TelegramChannelNetwork(client, clock, bot_token=telegram_token, api_url=telegram_api_url))
    directory.add(DiscordChannelNetwork(client, clock, bot_token=discord_token))
    directory.add(SandboxNetwork(db, clock, directory))
    directory.client = client
    return directory
