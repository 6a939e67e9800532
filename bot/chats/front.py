"""The contract every chat front end (Telegram, Discord, the console) keeps with the rest of Herald.

bot/app.py starts and stops the front ends and hands them Herald's notices (`send`); bot/leader.py
decides, per platform and bot token (`leader_name`), which process receives the updates: it starts the
others send-only (`start(receive=False)`) and switches them with `start_receiving` / `stop_receiving`.
A front end turns its platform's updates into `handlers.core.chat.Command`s for the handler it was
given, and writes buttons with the shared codec of bot/chats/buttons.py.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from handlers.core.chat import ChatAddress, Reply


@runtime_checkable
class ChatFront(Protocol):
    """A chat front end, as bot/app.py and bot/leader.py use it."""

    @property
    def platform(self) -> str:
        """The chat platform it serves ("telegram", "discord", "console"): ChatRef.platform of its chats."""
        ...

    @property
    def leader_name(self) -> str | None:
        """The name of the lock that decides which process receives (one per bot token), or None when every
        process may receive (Telegram webhooks, the console)."""
        ...

    @property
    def receiving(self) -> bool:
        """Whether this process receives the platform's updates now."""
        ...

    async def start(self, *, receive: bool = True) -> None:
        """Start: receiving the updates, or (`receive=False`) only sending Herald's notices."""
        ...

    async def start_receiving(self) -> None:
        """This process became the receiver: start receiving (no-op when it already does)."""
        ...

    async def stop_receiving(self) -> None:
        """Another process receives from now on: go on only sending (no-op when not receiving)."""
        ...

    async def stop(self) -> None:
        ...

    async def send(self, chat: ChatAddress, reply: Reply) -> None:
        """Herald speaking on its own (a notice): a message in that chat. A notice with `reply.replaces` edits the
        message this process sent under that key into the chat, where the platform can edit (a new message,
        remembered, otherwise). A notice with `reply.pinned` True is pinned where the platform can pin (the
        console marks it 📌); False unpins the message sent under its `replaces` key."""
        ...
