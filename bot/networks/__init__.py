"""Network connectors, one module each, all implementing handlers.ports.Network."""

from __future__ import annotations

from handlers.ports import Clock, Network
from storage.db import Database


class NetworkDirectory:
    """The handlers' `Networks` port: connectors by network key."""

    def __init__(self, connectors: dict[str, Network]) -> None:
        self._connectors = dict(connectors)

    def get(self, key: str) -> Network | None:
        return self._connectors.get(key)

    def keys(self) -> list[str]:
        return sorted(self._connectors)

    def add(self, network: Network) -> None:
        self._connectors[network.key] = network


def build_networks(db: Database, clock: Clock) -> NetworkDirectory:
    from bot.networks.sandbox import SandboxNetwork

    return NetworkDirectory({"sandbox": SandboxNetwork(db, clock)})
