"""The team and its accounts: /setup, /timezone, /role, /link (`setup`); /connect, /accounts, /slots
(`accounts`); /audience (`audiences`); account health and token refreshes (`health`).

May import: `handlers.core` and `storage`. Importing the package registers its commands.
"""

from handlers.workspace import accounts, audiences, health, setup  # noqa: F401  (each module registers its commands)
