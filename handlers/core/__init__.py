"""What every feature uses: the chat model (`chat`), the ports to the outside world (`ports`), errors,
the context, the command table with `Request` (`commands`), roles (`access`), lookups, the audit log,
team notices and exactly-once sends (`notices`), time words (`when`), counting helpers (`counting`) and
how Herald words things (`words`).

May import: `storage` only (and the standard library and data libraries). Nothing here registers a command.
"""
